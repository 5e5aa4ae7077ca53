//! Tests of `lower_norm` against the interpreter (`eval_op`), each kernel run on the whole range
//! and on uneven sub-ranges.

use super::{exp_f32, lower_norm};
use crate::codegen::{Arg, CodegenError, LoweredKernel};
use crate::interp::eval_op;
use sparsec_ir::{DType, Graph, NodeId, Op, Tensor, TensorType, ValueDef, ValueId};
use std::collections::HashMap;

/// Deterministic values in `[-lim, lim)`.
fn values(n: usize, seed: u64, lim: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E3779B97F4A7C15).wrapping_add(12345);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0) * lim
        })
        .collect()
}

/// A one-node graph with the data of every value.
struct Env {
    g: Graph,
    data: HashMap<ValueId, Tensor>,
}

impl Env {
    fn new() -> Env {
        Env {
            g: Graph::new("t"),
            data: HashMap::new(),
        }
    }

    fn input(&mut self, t: Tensor) -> ValueId {
        let v = self.g.add_input(format!("in{}", self.data.len()), t.ty());
        self.data.insert(v, t);
        v
    }

    fn weight(&mut self, t: Tensor) -> ValueId {
        let v = self
            .g
            .add_weight(format!("w{}", self.data.len()), t.clone());
        self.data.insert(v, t);
        v
    }

    /// Adds the node with the interpreter's result.
    fn node(&mut self, op: Op, inputs: Vec<Option<ValueId>>) -> NodeId {
        let args: Vec<Option<&Tensor>> = inputs.iter().map(|v| v.map(|v| &self.data[&v])).collect();
        let out = eval_op(&op, &args, 1)
            .expect("reference evaluates")
            .remove(0);
        let n = self
            .g
            .add_node("n", op, inputs, vec![("y".into(), out.ty())]);
        let y = self.g.node(n).outputs[0];
        self.data.insert(y, out);
        self.g.set_outputs(vec![y]);
        n
    }

    /// Runs `lk` over `ranges` with the result starting as a sentinel.
    fn run(&self, lk: &LoweredKernel, ranges: &[(usize, usize)]) -> Vec<f32> {
        let mut bufs: Vec<Vec<f32>> = lk
            .args
            .iter()
            .map(|a| match a {
                Arg::Packed(t) => t.to_f32_vec(),
                Arg::Value(v) => match &self.g.value(*v).def {
                    ValueDef::Result { .. } => vec![12345.0; self.data[v].numel()],
                    _ => self.data[v].to_f32_vec(),
                },
                other => panic!("unexpected argument {other:?}"),
            })
            .collect();
        let ptrs: Vec<*mut u8> = bufs.iter_mut().map(|b| b.as_mut_ptr() as *mut u8).collect();
        for &(b, e) in ranges {
            // SAFETY: the buffers are sized from the graph's types, in the kernel's order.
            unsafe { lk.kernel.call(&ptrs, b, e) };
        }
        bufs.pop().expect("result argument")
    }
}

/// Lowers the node and checks it against the interpreter on the whole range and on three uneven
/// sub-ranges run out of order; NaN must match NaN.
fn check(env: &Env, node: NodeId) -> LoweredKernel {
    let lk = lower_norm(&env.g, node).expect("lowers");
    let y = env.g.node(node).outputs[0];
    let want = env.data[&y].to_f32_vec();
    let w = lk.work;
    assert!(lk.grain >= 1 && lk.grain <= w, "grain {} of {w}", lk.grain);
    let (a, b) = ((w / 3 + 1).min(w), (2 * w / 3).max((w / 3 + 1).min(w)));
    for ranges in [vec![(0, w)], vec![(b, w), (0, a), (a, b)]] {
        let got = env.run(&lk, &ranges);
        assert_eq!(got.len(), want.len());
        for (i, (g, e)) in got.iter().zip(&want).enumerate() {
            let ok = if e.is_nan() {
                g.is_nan()
            } else if e.is_infinite() {
                g == e
            } else {
                (g - e).abs() <= 1e-5 * (1.0 + e.abs())
            };
            assert!(ok, "{}: element {i}: got {g}, want {e} ({ranges:?})", lk.op);
        }
    }
    // A single sub-range writes only its rows.
    if w >= 2 {
        let cols = want.len() / w;
        let got = env.run(&lk, &[(1, 2)]);
        let touched: Vec<usize> = (0..got.len()).filter(|&i| got[i] != 12345.0).collect();
        assert_eq!(touched, (cols..2 * cols).collect::<Vec<_>>(), "{}", lk.op);
    }
    lk
}

const ROW_LENGTHS: [usize; 4] = [1, 3, 128, 130];

#[test]
fn softmax_and_log_softmax_on_row_lengths() {
    for &cols in &ROW_LENGTHS {
        for shape in [vec![cols], vec![5, cols], vec![2, 3, cols]] {
            for (i, op) in [
                Op::Softmax {
                    axis: -1,
                    coerce_2d: 0,
                },
                Op::LogSoftmax {
                    axis: shape.len() as i64 - 1,
                    coerce_2d: 0,
                },
                Op::Softmax {
                    axis: -1,
                    coerce_2d: 1,
                },
            ]
            .into_iter()
            .enumerate()
            {
                let mut env = Env::new();
                let numel = shape.iter().product();
                let x = env.input(Tensor::from_f32(&shape, values(numel, i as u64 + 3, 20.0)));
                let node = env.node(op, vec![Some(x)]);
                check(&env, node);
            }
        }
    }
}

#[test]
fn softmax_with_masked_entries_and_fully_masked_rows() {
    for &cols in &ROW_LENGTHS {
        let rows = 6;
        let mut data = values(rows * cols, 9, 8.0);
        for (i, v) in data.iter_mut().enumerate() {
            let (r, c) = (i / cols, i % cols);
            // Row 2 is entirely masked; other rows mask a causal-like suffix.
            if r == 2 || (c > r && c % 3 != 0) {
                *v = f32::NEG_INFINITY;
            }
        }
        for op in [
            Op::Softmax {
                axis: -1,
                coerce_2d: 0,
            },
            Op::LogSoftmax {
                axis: -1,
                coerce_2d: 0,
            },
        ] {
            let mut env = Env::new();
            let x = env.input(Tensor::from_f32(&[rows, cols], data.clone()));
            let node = env.node(op, vec![Some(x)]);
            check(&env, node);
            // The fully masked row is NaN in the interpreter, and so here.
            let y = env.g.node(node).outputs[0];
            assert!(env.data[&y].to_f32_vec()[2 * cols].is_nan());
        }
    }
}

#[test]
fn layer_norm_with_and_without_bias() {
    for &cols in &ROW_LENGTHS {
        for shape in [vec![cols], vec![7, cols], vec![2, 3, cols]] {
            for (with_bias, scale_weight) in [(true, true), (false, true), (true, false)] {
                let mut env = Env::new();
                let numel: usize = shape.iter().product();
                // An offset makes the mean large next to the spread.
                let xs = values(numel, 5, 3.0).iter().map(|v| v + 10.0).collect();
                let x = env.input(Tensor::from_f32(&shape, xs));
                let sc = Tensor::from_f32(&[cols], values(cols, 6, 2.0));
                let scale = if scale_weight {
                    env.weight(sc)
                } else {
                    env.input(sc)
                };
                let bias =
                    with_bias.then(|| env.weight(Tensor::from_f32(&[cols], values(cols, 7, 1.0))));
                let op = Op::LayerNormalization {
                    axis: if shape.len() > 1 { -1 } else { 0 },
                    epsilon: 1e-5,
                    stash_type: 1,
                };
                let node = env.node(op, vec![Some(x), Some(scale), bias]);
                let lk = check(&env, node);
                assert_eq!(lk.args.len(), 3 + with_bias as usize);
            }
        }
    }
}

fn expect_unsupported(r: Result<LoweredKernel, CodegenError>) {
    match r {
        Err(CodegenError::Unsupported(m)) => assert!(m.contains("node `"), "{m}"),
        other => panic!("expected Unsupported, got {other:?}"),
    }
}

#[test]
fn rejects_other_axes_types_and_forms() {
    let mut env = Env::new();
    let x = env.input(Tensor::from_f32(&[3, 4], values(12, 1, 1.0)));
    let n = env.node(
        Op::Softmax {
            axis: 0,
            coerce_2d: 0,
        },
        vec![Some(x)],
    );
    expect_unsupported(lower_norm(&env.g, n));
    let n = env.node(
        Op::Softmax {
            axis: 0,
            coerce_2d: 1,
        },
        vec![Some(x)],
    );
    expect_unsupported(lower_norm(&env.g, n));
    let n = env.node(Op::Relu {}, vec![Some(x)]);
    expect_unsupported(lower_norm(&env.g, n));
    // Layer norm over two axes, and a scale that only broadcasts.
    let s = env.weight(Tensor::from_f32(&[3, 4], values(12, 2, 1.0)));
    let n = env.node(
        Op::LayerNormalization {
            axis: 0,
            epsilon: 1e-5,
            stash_type: 1,
        },
        vec![Some(x), Some(s)],
    );
    expect_unsupported(lower_norm(&env.g, n));
    let s1 = env.weight(Tensor::from_f32(&[1], vec![2.0]));
    let n = env.node(
        Op::LayerNormalization {
            axis: -1,
            epsilon: 1e-5,
            stash_type: 1,
        },
        vec![Some(x), Some(s1)],
    );
    expect_unsupported(lower_norm(&env.g, n));
    // Layer norm asked for its mean too.
    let mut g = env.g.clone();
    let f = TensorType::known(DType::F32, &[3, 4]);
    let n = g.add_node(
        "ln2",
        Op::LayerNormalization {
            axis: -1,
            epsilon: 1e-5,
            stash_type: 1,
        },
        vec![Some(x), Some(s1)],
        vec![("y".into(), f.clone()), ("m".into(), f)],
    );
    expect_unsupported(lower_norm(&g, n));
}

#[test]
fn exp_matches_std_and_handles_edges() {
    let mut x = -90.0f32;
    while x <= 80.0 {
        let (got, want) = (exp_f32(x), (x as f64).exp());
        if x >= -87.0 {
            assert!(
                ((got as f64 - want) / want).abs() < 4e-7,
                "exp({x}) = {got}, want {want}"
            );
        } else {
            assert_eq!(got, 0.0);
        }
        x += 0.0137;
    }
    assert_eq!(exp_f32(0.0), 1.0);
    assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
    assert!(exp_f32(f32::NAN).is_nan());
}
