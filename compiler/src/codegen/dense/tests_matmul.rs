//! Tests of `lower_gemm` and `lower_matmul` against the interpreter.

use super::test_util::{check, Env};
use super::{lower_gemm, lower_matmul};
use crate::codegen::{Arg, CodegenError, Epilogue};
use sparsec_ir::{DType, Op, TensorType};

fn gemm_op(alpha: f32, beta: f32, ta: bool, tb: bool) -> Op {
    Op::Gemm {
        alpha,
        beta,
        trans_a: ta as i64,
        trans_b: tb as i64,
    }
}

#[test]
fn gemm_layouts_scalars_and_c_broadcasts() {
    let shapes = [
        (5, 7, 3),
        (1, 13, 9),
        (33, 17, 65),
        (70, 9, 6),
        (1, 1, 1),
        (4, 1, 5),
    ];
    let mut cases = 0;
    for &(m, k, n) in &shapes {
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            for b_weight in [false, true] {
                for c_shape in [
                    None,
                    Some(vec![]),
                    Some(vec![n]),
                    Some(vec![1, n]),
                    Some(vec![m, 1]),
                    Some(vec![m, n]),
                ] {
                    let mut env = Env::new();
                    let a = env.input(&if ta { [k, m] } else { [m, k] });
                    let bs = if tb { [n, k] } else { [k, n] };
                    let b = if b_weight {
                        env.weight(&bs)
                    } else {
                        env.input(&bs)
                    };
                    let c = c_shape.map(|s| env.input(&s));
                    let node = env.node(gemm_op(0.75, -1.5, ta, tb), vec![Some(a), Some(b), c]);
                    let lk = check(&env, node, &[], 1, lower_gemm);
                    assert_eq!(
                        lk.args
                            .iter()
                            .filter(|a| matches!(a, Arg::Packed(_)))
                            .count(),
                        // A constant B is packed when its layout is not the fast one:
                        // row-major for a matrix-vector product, column-major otherwise.
                        (b_weight && (m == 1) != tb) as usize
                    );
                    cases += 1;
                }
            }
        }
    }
    assert_eq!(cases, shapes.len() * 4 * 2 * 6);
}

#[test]
fn gemm_each_epilogue_and_a_chain() {
    for &(m, k, n) in &[(6, 10, 11), (40, 8, 3)] {
        let mut env = Env::new();
        let a = env.input(&[m, k]);
        // Row-major, so read in place.
        let b = env.weight(&[k, n]);
        let c = env.weight(&[n]);
        let node = env.node(
            gemm_op(1.0, 1.0, false, false),
            vec![Some(a), Some(b), Some(c)],
        );
        let bias = env.input(&[n]);
        let res = env.input(&[m, n]);
        let epilogues = [
            vec![Epilogue::Bias(bias)],
            vec![Epilogue::AddTensor(res)],
            vec![Epilogue::Relu],
            vec![Epilogue::Clip(-0.5, 0.25)],
            vec![Epilogue::LeakyRelu(0.1)],
            vec![
                Epilogue::Bias(bias),
                Epilogue::AddTensor(res),
                Epilogue::LeakyRelu(0.2),
                Epilogue::Clip(-0.3, 2.0),
            ],
        ];
        for e in &epilogues {
            check(&env, node, e, 1, lower_gemm);
        }
        let lk = check(&env, node, &epilogues[5], 1, lower_gemm);
        assert_eq!(lk.op, "gemm+bias+add+leaky_relu+clip");
        // Activation, B read in place, C, bias, residual, result.
        assert!(
            matches!(lk.args[..], [Arg::Value(x), Arg::Value(w), Arg::Value(cc), Arg::Value(bb), Arg::Value(r), Arg::Value(_)]
            if x == a && w == b && cc == c && bb == bias && r == res)
        );
    }
}

#[test]
fn matmul_batched_broadcast_and_vectors() {
    let cases: &[(&[usize], &[usize])] = &[
        (&[5, 4], &[4, 6]),
        (&[1, 7], &[7, 9]),
        (&[2, 3, 5, 4], &[4, 6]),
        (&[3, 1, 5, 4], &[2, 4, 6]),
        (&[2, 5, 4], &[2, 4, 1]),
        (&[4], &[2, 4, 6]),
        (&[2, 5, 4], &[4]),
        (&[4], &[4]),
        (&[1, 4], &[3, 4, 2]),
        (&[65, 3], &[3, 2]),
    ];
    for &(sa, sb) in cases {
        for b_weight in [false, true] {
            let mut env = Env::new();
            let a = env.input(sa);
            let b = if b_weight {
                env.weight(sb)
            } else {
                env.input(sb)
            };
            let node = env.node(Op::MatMul {}, vec![Some(a), Some(b)]);
            let rank = env.data[&env.g.node(node).outputs[0]].rank();
            check(&env, node, &[], rank.saturating_sub(1), lower_matmul);
            if sb.len() > 1 && rank > 0 {
                let out = env.data[&env.g.node(node).outputs[0]].shape().to_vec();
                let bias = env.input(&[sb[sb.len() - 1]]);
                let res = env.input(&out);
                let e = [
                    Epilogue::Bias(bias),
                    Epilogue::AddTensor(res),
                    Epilogue::Relu,
                ];
                check(&env, node, &e, rank - 1, lower_matmul);
            }
        }
    }
}

#[test]
fn rejects_what_it_cannot_lower() {
    let mut env = Env::new();
    let a = env.input(&[3, 4]);
    let b = env.input(&[4, 5]);
    let node = env.node(Op::MatMul {}, vec![Some(a), Some(b)]);
    let wrong = env.input(&[3]);
    let err = lower_matmul(&env.g, node, &[Epilogue::Bias(wrong)]).unwrap_err();
    assert!(
        matches!(err, CodegenError::Unsupported(ref s) if s.contains("bias")),
        "{err}"
    );
    assert!(lower_gemm(&env.g, node, &[]).is_err());
    // A symbolic or non-f32 result is refused, not guessed.
    let xi = env.g.add_input("i", TensorType::known(DType::I64, &[3, 4]));
    let bi = env.g.add_input("j", TensorType::known(DType::I64, &[4, 5]));
    let ni = env.g.add_node(
        "ni",
        Op::MatMul {},
        vec![Some(xi), Some(bi)],
        vec![("y".into(), TensorType::known(DType::I64, &[3, 5]))],
    );
    let err = lower_matmul(&env.g, ni, &[]).unwrap_err();
    assert!(err.to_string().contains("`ni`"), "{err}");
}
