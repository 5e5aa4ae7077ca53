//! Tests of `lower_select` against the interpreter: every op with broadcast, strided and
//! contiguous operands of several shapes (sizes not multiple of 4, size-1 dims), on whole and
//! uneven scrambled sub-ranges, and the cases it must leave to the fallback.

use super::lower_select;
use crate::codegen::movement::tests::{build, check_with, random, In};
use sparsec_ir::{DType, Op, Tensor};

fn check(op: Op, ins: &[In]) {
    check_with(|g, n| lower_select(g, n).expect("lowers"), op, ins);
}

/// A bool tensor with a mix of true and false.
fn mask(shape: &[usize], seed: u64) -> Tensor {
    let t = random(DType::F32, shape, seed);
    Tensor::from_bool(shape, t.to_f32_vec().iter().map(|&v| v >= 0.0).collect())
}

/// An f32 tensor with NaNs and infinities among the values.
fn with_nans(shape: &[usize], seed: u64) -> Tensor {
    let v = random(DType::F32, shape, seed).to_f32_vec();
    let v = v
        .into_iter()
        .map(|x| match x as i64 {
            -8 => f32::NAN,
            7 => f32::INFINITY,
            -7 => f32::NEG_INFINITY,
            _ => x,
        })
        .collect();
    Tensor::from_f32(shape, v)
}

const SHAPES: &[(&[usize], &[usize], &[usize])] = &[
    (&[1, 2, 5, 7], &[1], &[1, 2, 5, 7]),
    (&[1, 1, 5, 5], &[1, 1, 5, 1], &[1]),
    (&[3, 1], &[1, 9], &[3, 9]),
    (&[], &[4, 3], &[3]),
    (&[2, 3, 13], &[2, 3, 13], &[13]),
];

#[test]
fn where_matches_the_interpreter() {
    for d in [DType::F32, DType::I64, DType::Bool, DType::F16] {
        for (i, (c, x, y)) in SHAPES.iter().enumerate() {
            let s = i as u64;
            check(
                Op::Where {},
                &[
                    In::Input(mask(c, s)),
                    In::Input(random(d, x, s + 1)),
                    In::Input(random(d, y, s + 2)),
                ],
            );
        }
    }
    // The attention pattern: constants selected by a broadcast mask.
    check(
        Op::Where {},
        &[
            In::Input(mask(&[1, 1, 7, 7], 3)),
            In::Const(Tensor::from_f32(&[1], vec![0.0])),
            In::Const(Tensor::from_f32(&[1], vec![f32::NEG_INFINITY])),
        ],
    );
}

#[test]
fn is_nan_matches_the_interpreter() {
    for shape in [&[1, 2, 5, 7][..], &[13], &[], &[3, 1, 4]] {
        check(Op::IsNaN {}, &[In::Input(with_nans(shape, 1))]);
        let f64s = with_nans(shape, 2)
            .to_f32_vec()
            .into_iter()
            .map(|v| v as f64);
        let t = Tensor::from_f64s(DType::F64, shape, f64s);
        check(Op::IsNaN {}, &[In::Input(t)]);
    }
}

#[test]
fn logic_matches_the_interpreter() {
    for (i, (a, b, _)) in SHAPES.iter().enumerate() {
        for op in [Op::And {}, Op::Or {}, Op::Xor {}] {
            let s = i as u64;
            check(op, &[In::Input(mask(a, s)), In::Input(mask(b, s + 7))]);
        }
        check(Op::Not {}, &[In::Input(mask(a, i as u64))]);
    }
}

#[test]
fn leaves_other_nodes_to_the_fallback() {
    let (g, n, _, _) = build(
        Op::Where {},
        &[
            In::Input(mask(&[3], 1)),
            In::Input(random(DType::F32, &[3], 2)),
            In::Input(random(DType::F32, &[3], 3)),
        ],
    );
    assert!(lower_select(&g, n).is_ok());
    let (g, n, _, _) = build(
        Op::And {},
        &[In::Input(mask(&[3], 1)), In::Input(mask(&[3], 2))],
    );
    assert!(lower_select(&g, n).is_ok());
    let (g, n, _, _) = build(Op::Relu {}, &[In::Input(random(DType::F32, &[2], 1))]);
    assert!(lower_select(&g, n).is_err());
    let (g, n, _, _) = build(Op::IsNaN {}, &[In::Input(random(DType::F16, &[2], 1))]);
    assert!(lower_select(&g, n).is_err());
}
