//! Tests of `lower_movement` against the interpreter: every op on several shapes and element
//! types (sizes not multiple of 4, size-1 dims), whole and uneven scrambled sub-ranges, gather
//! index errors, and the cases it must leave to the fallback.

use super::lower_movement;
use crate::codegen::bytes::{tensor_bytes, tensor_from_bytes};
use crate::codegen::fallback::ErrorSlot;
use crate::codegen::LoweredKernel;
use crate::interp::eval_op;
use sparsec_ir::{DType, Graph, NodeId, Op, Tensor};
use std::sync::{Arc, Mutex};

/// Deterministic values in `[-8, 8)` (exact in every element type but bool).
pub(crate) fn values(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed.wrapping_mul(0x9E3779B97F4A7C15).wrapping_add(12345);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) % 16) as f64 - 8.0
        })
        .collect()
}

/// A random tensor of `dtype` and `shape`.
pub(crate) fn random(dtype: DType, shape: &[usize], seed: u64) -> Tensor {
    Tensor::from_f64s(dtype, shape, values(shape.iter().product(), seed))
}

/// An operand of a test node: a graph input, or a constant weight.
pub(crate) enum In {
    /// A graph input with this value.
    Input(Tensor),
    /// A constant.
    Const(Tensor),
}

/// A one-node graph, with the interpreter's result.
pub(crate) fn build(op: Op, ins: &[In]) -> (Graph, NodeId, Vec<Tensor>, Tensor) {
    let tensors: Vec<&Tensor> = ins
        .iter()
        .map(|i| match i {
            In::Input(t) | In::Const(t) => t,
        })
        .collect();
    let refs: Vec<Option<&Tensor>> = tensors.iter().map(|t| Some(*t)).collect();
    let want = eval_op(&op, &refs, 1)
        .expect("reference evaluates")
        .remove(0);
    let mut g = Graph::new("t");
    let mut inputs = Vec::new();
    let mut fed = Vec::new();
    for (k, i) in ins.iter().enumerate() {
        inputs.push(Some(match i {
            In::Input(t) => {
                fed.push(t.clone());
                g.add_input(format!("x{k}"), t.ty())
            }
            In::Const(t) => g.add_weight(format!("c{k}"), t.clone()),
        }));
    }
    let n = g.add_node("node", op, inputs, vec![("y".into(), want.ty())]);
    let y = g.node(n).outputs[0];
    g.set_outputs(vec![y]);
    (g, n, fed, want)
}

/// Runs the kernel over `ranges` on the bytes of its arguments (the result starts as 0xAB bytes
/// so a missed element shows); returns the result bytes.
pub(crate) fn run(
    k: &LoweredKernel,
    g: &Graph,
    fed: &[Tensor],
    out_bytes: usize,
    ranges: &[(usize, usize)],
) -> Vec<u8> {
    // Each argument in its own u64-aligned buffer.
    let mut bufs: Vec<Vec<u64>> = Vec::new();
    for a in &k.args {
        let crate::codegen::Arg::Value(v) = a else {
            panic!("movement kernels take no packed arguments")
        };
        let bytes = if let Some(t) = g.const_data(*v) {
            tensor_bytes(t)
        } else if let Some(i) = g.inputs().iter().position(|x| x == v) {
            tensor_bytes(&fed[i])
        } else {
            vec![0xAB; out_bytes]
        };
        let mut b = vec![0u64; bytes.len().div_ceil(8).max(1)];
        // SAFETY: `b` holds at least `bytes.len()` bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), b.as_mut_ptr() as *mut u8, bytes.len())
        };
        bufs.push(b);
    }
    let ptrs: Vec<*mut u8> = bufs.iter_mut().map(|b| b.as_mut_ptr() as *mut u8).collect();
    for &(b, e) in ranges {
        // SAFETY: the buffers have the graph's types and shapes, in argument order.
        unsafe { k.kernel.call(&ptrs, b, e) };
    }
    let out = bufs.last().expect("a result");
    // SAFETY: the result buffer holds at least `out_bytes` bytes.
    unsafe { std::slice::from_raw_parts(out.as_ptr() as *const u8, out_bytes) }.to_vec()
}

/// The whole range, uneven sub-ranges in scrambled order, and one unit at a time backwards.
pub(crate) fn splits(w: usize) -> Vec<Vec<(usize, usize)>> {
    let (a, b) = ((w / 3 + 1).min(w), (2 * w / 3).max((w / 3 + 1).min(w)));
    vec![
        vec![(0, w)],
        vec![(b, w), (0, a), (a, b)],
        (0..w).rev().map(|u| (u, u + 1)).collect(),
    ]
}

/// Lowers the node and checks the kernel bit for bit against the interpreter on every split.
pub(crate) fn check_with(lower: impl Fn(&Graph, NodeId) -> LoweredKernel, op: Op, ins: &[In]) {
    let (g, n, fed, want) = build(op, ins);
    let k = lower(&g, n);
    assert!(
        k.grain >= 1 && (k.work == 0 || k.grain <= k.work),
        "{}",
        k.op
    );
    let want_bytes = tensor_bytes(&want);
    for ranges in splits(k.work) {
        let got = run(&k, &g, &fed, want_bytes.len(), &ranges);
        let got_t = tensor_from_bytes(want.dtype(), want.shape(), &got);
        assert_eq!(
            got, want_bytes,
            "{}: got {got_t:?}, want {want:?} (ranges {ranges:?})",
            k.op
        );
    }
}

fn slot() -> ErrorSlot {
    Arc::new(Mutex::new(None))
}

fn check(op: Op, ins: &[In]) {
    let errors = slot();
    check_with(
        |g, n| lower_movement(g, n, &errors).expect("lowers"),
        op,
        ins,
    );
    assert!(errors.lock().expect("slot").is_none());
}

fn shape_const(s: &[i64]) -> In {
    In::Const(Tensor::from_i64(&[s.len()], s.to_vec()))
}

#[test]
fn reshape_family_copies() {
    for d in [DType::F32, DType::I64, DType::Bool, DType::F16] {
        let x = || In::Input(random(d, &[3, 5, 7], 1));
        check(Op::Reshape { allowzero: 0 }, &[x(), shape_const(&[15, -1])]);
        check(Op::Flatten { axis: 2 }, &[x()]);
        check(Op::Unsqueeze {}, &[x(), shape_const(&[0, 3])]);
        check(Op::Identity {}, &[x()]);
        check(
            Op::Squeeze {},
            &[In::Input(random(d, &[1, 5, 1], 2)), shape_const(&[0])],
        );
    }
    // Larger than one block, not a multiple of it.
    check(
        Op::Reshape { allowzero: 0 },
        &[
            In::Input(random(DType::F32, &[3, 4099], 3)),
            shape_const(&[-1]),
        ],
    );
}

#[test]
fn transposes_every_perm_and_type() {
    let cases: &[(&[usize], &[i64])] = &[
        (&[1, 5, 2, 3], &[0, 2, 1, 3]),
        (&[1, 5, 2, 3], &[0, 2, 3, 1]),
        (&[7, 9], &[]),
        (&[2, 3, 4], &[2, 0, 1]),
        (&[2, 1, 5], &[1, 2, 0]),
        (&[3, 1, 1, 6], &[-1, 2, 1, 0]),
        (&[4], &[0]),
        (&[1, 13, 2, 64], &[0, 2, 1, 3]),
    ];
    for d in [DType::F32, DType::I64, DType::U8, DType::F16] {
        for (i, (shape, perm)) in cases.iter().enumerate() {
            check(
                Op::Transpose {
                    perm: perm.to_vec(),
                },
                &[In::Input(random(d, shape, i as u64))],
            );
        }
    }
}

#[test]
fn expands_broadcast_axes() {
    let cases: &[(&[usize], &[i64])] = &[
        (&[1, 1, 5, 1], &[1, 1, 5, 7]),
        (&[3, 1], &[2, 3, 5]),
        (&[1], &[4, 3]),
        (&[2, 3], &[2, 3]),
        (&[5, 1, 3], &[1, 4, 3]),
    ];
    for d in [DType::F32, DType::Bool, DType::I64] {
        for (i, (shape, to)) in cases.iter().enumerate() {
            check(
                Op::Expand {},
                &[In::Input(random(d, shape, i as u64)), shape_const(to)],
            );
        }
    }
}

#[test]
fn gathers_slices_on_every_axis() {
    let idx = |s: &[usize], v: Vec<i64>| In::Input(Tensor::from_i64(s, v));
    for d in [DType::F32, DType::I64, DType::Bool] {
        check(
            Op::Gather { axis: 0 },
            &[
                In::Const(random(d, &[10, 7], 1)),
                idx(&[1, 5], vec![3, -1, 0, 9, 3]),
            ],
        );
        check(
            Op::Gather { axis: 1 },
            &[
                In::Input(random(d, &[2, 6, 3], 2)),
                idx(&[2, 2], vec![5, 0, -6, 2]),
            ],
        );
        check(
            Op::Gather { axis: -1 },
            &[In::Input(random(d, &[3, 5], 3)), idx(&[], vec![4])],
        );
    }
    let i32s = Tensor::from_f64s(DType::I32, &[3], [2.0, -3.0, 1.0]);
    check(
        Op::Gather { axis: 0 },
        &[In::Input(random(DType::F32, &[4, 3], 4)), In::Input(i32s)],
    );
}

#[test]
fn gather_reports_an_index_out_of_range() {
    let errors = slot();
    let (g, n, fed, want) = build(
        Op::Gather { axis: 0 },
        &[
            In::Input(random(DType::F32, &[4, 3], 1)),
            In::Input(Tensor::from_i64(&[2], vec![1, 2])),
        ],
    );
    let k = lower_movement(&g, n, &errors).expect("lowers");
    let bad = vec![fed[0].clone(), Tensor::from_i64(&[2], vec![1, 4])];
    let out = run(&k, &g, &bad, tensor_bytes(&want).len(), &[(0, k.work)]);
    let msg = errors.lock().expect("slot").clone().expect("an error");
    assert!(
        msg.contains("node `node`") && msg.contains("index 4"),
        "{msg}"
    );
    assert_eq!(&out[12..], &[0u8; 12]);
}

#[test]
fn leaves_other_nodes_to_the_fallback() {
    let errors = slot();
    // A computed shape operand.
    let (g, n, _, _) = build(
        Op::Reshape { allowzero: 0 },
        &[
            In::Input(random(DType::F32, &[2, 3], 1)),
            In::Input(Tensor::from_i64(&[1], vec![6])),
        ],
    );
    assert!(lower_movement(&g, n, &errors).is_err());
    let (g, n, _, _) = build(Op::Relu {}, &[In::Input(random(DType::F32, &[2], 1))]);
    assert!(lower_movement(&g, n, &errors).is_err());
}
