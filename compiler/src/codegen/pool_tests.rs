//! Tests of `lower_pool` against the interpreter: geometries, border handling, sub-ranges, and
//! the cases it must leave to the fallback.

use super::lower_pool;
use crate::codegen::CodegenError;
use crate::interp::eval_op;
use sparsec_ir::{Graph, NodeId, Op, Tensor};

/// Deterministic values in `[-1, 1)`.
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E3779B97F4A7C15).wrapping_add(12345);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// A one-node graph over a random input, with the interpreter's result.
fn build(op: Op, shape: &[usize], seed: u64) -> (Graph, NodeId, Tensor, Tensor) {
    let x = Tensor::from_f32(shape, values(shape.iter().product(), seed));
    let want = eval_op(&op, &[Some(&x)], 1)
        .expect("reference evaluates")
        .remove(0);
    let mut g = Graph::new("t");
    let xv = g.add_input("x", x.ty());
    let n = g.add_node("pool", op, vec![Some(xv)], vec![("y".into(), want.ty())]);
    let y = g.node(n).outputs[0];
    g.set_outputs(vec![y]);
    (g, n, x, want)
}

/// Runs the kernel over `ranges` (the result starts as NaN so a missed element shows).
fn run(
    k: &crate::codegen::LoweredKernel,
    x: &Tensor,
    out_len: usize,
    ranges: &[(usize, usize)],
) -> Vec<f32> {
    let mut xb = x.to_f32_vec();
    let mut yb = vec![f32::NAN; out_len];
    let ptrs = [xb.as_mut_ptr() as *mut u8, yb.as_mut_ptr() as *mut u8];
    for &(b, e) in ranges {
        // SAFETY: the buffers have the graph's shapes, in the kernel's argument order.
        unsafe { k.kernel.call(&ptrs, b, e) };
    }
    yb
}

/// Lowers `op` on a random input of `shape` and checks it on the whole range and on uneven
/// sub-ranges in scrambled order.
fn check(op: Op, shape: &[usize]) {
    let (g, n, x, want) = build(op, shape, shape.iter().sum::<usize>() as u64);
    let k = lower_pool(&g, n).expect("lowers");
    let w = k.work;
    assert_eq!(w, shape[0] * shape[1]);
    assert!(k.grain >= 1 && k.grain <= w);
    let want = want.to_f32_vec();
    let (a, b) = ((w / 3 + 1).min(w), (2 * w / 3).max((w / 3 + 1).min(w)));
    let mut splits = vec![vec![(0, w)], vec![(b, w), (0, a), (a, b)]];
    splits.push((0..w).rev().map(|u| (u, u + 1)).collect());
    let part = run(&k, &x, want.len(), &[(a, b)]);
    let per_plane = want.len() / w;
    for (i, v) in part.iter().enumerate() {
        let inside = (a * per_plane..b * per_plane).contains(&i);
        assert_eq!(
            !v.is_nan(),
            inside,
            "{}: element {i} of range {a}..{b}",
            k.op
        );
    }
    for ranges in splits {
        let got = run(&k, &x, want.len(), &ranges);
        for (i, (g, e)) in got.iter().zip(&want).enumerate() {
            assert!(
                (g - e).abs() <= 1e-5 * (1.0 + e.abs()),
                "{}: element {i}: got {g}, want {e} (ranges {ranges:?}, shape {shape:?})",
                k.op
            );
        }
    }
}

fn max_pool(k: &[i64], s: &[i64], p: &[i64], d: &[i64], ceil: i64, auto_pad: &str) -> Op {
    Op::MaxPool {
        auto_pad: auto_pad.into(),
        ceil_mode: ceil,
        dilations: d.to_vec(),
        kernel_shape: k.to_vec(),
        pads: p.to_vec(),
        storage_order: 0,
        strides: s.to_vec(),
    }
}

#[allow(clippy::too_many_arguments)]
fn avg_pool(
    k: &[i64],
    s: &[i64],
    p: &[i64],
    d: &[i64],
    ceil: i64,
    include_pad: i64,
    auto_pad: &str,
) -> Op {
    Op::AveragePool {
        auto_pad: auto_pad.into(),
        ceil_mode: ceil,
        count_include_pad: include_pad,
        dilations: d.to_vec(),
        kernel_shape: k.to_vec(),
        pads: p.to_vec(),
        strides: s.to_vec(),
    }
}

/// (kernel, strides, pads, dilations, ceil_mode, auto_pad, input shape).
type Case = (
    &'static [i64],
    &'static [i64],
    &'static [i64],
    &'static [i64],
    i64,
    &'static str,
    &'static [usize],
);

const CASES: &[Case] = &[
    (&[2, 2], &[2, 2], &[], &[], 0, "NOTSET", &[2, 3, 8, 8]),
    // Unpadded 2x2 stride 2 on odd sizes (the last row and column unread): the direct path.
    (&[2, 2], &[2, 2], &[], &[], 0, "NOTSET", &[1, 2, 9, 7]),
    (&[3, 2], &[2, 3], &[], &[], 0, "VALID", &[2, 1, 11, 10]),
    // Planes whose padded copy exceeds `PADDED_MAX`: the row passes.
    (
        &[3, 3],
        &[1, 1],
        &[1, 1, 1, 1],
        &[],
        0,
        "NOTSET",
        &[1, 2, 130, 131],
    ),
    (
        &[3, 3],
        &[2, 2],
        &[0, 0, 1, 1],
        &[],
        1,
        "NOTSET",
        &[1, 1, 257, 129],
    ),
    (
        &[3, 3],
        &[1, 1],
        &[1, 1, 1, 1],
        &[],
        0,
        "NOTSET",
        &[1, 4, 7, 9],
    ),
    (
        &[3, 3],
        &[2, 2],
        &[1, 1, 1, 1],
        &[],
        0,
        "NOTSET",
        &[2, 2, 11, 13],
    ),
    (
        &[3, 3],
        &[2, 2],
        &[0, 0, 0, 0],
        &[],
        1,
        "NOTSET",
        &[1, 3, 8, 10],
    ),
    (
        &[2, 3],
        &[3, 2],
        &[1, 0, 2, 1],
        &[],
        1,
        "NOTSET",
        &[3, 1, 9, 7],
    ),
    (
        &[3, 2],
        &[1, 2],
        &[2, 1, 0, 2],
        &[2, 3],
        0,
        "NOTSET",
        &[1, 5, 10, 11],
    ),
    (&[2, 2], &[2, 2], &[], &[2, 2], 1, "NOTSET", &[2, 2, 9, 9]),
    (&[3, 3], &[2, 2], &[], &[], 0, "SAME_UPPER", &[1, 3, 7, 6]),
    (&[2, 3], &[1, 2], &[], &[], 0, "SAME_LOWER", &[2, 2, 5, 8]),
    (&[3, 3], &[2, 1], &[], &[], 0, "VALID", &[1, 2, 9, 5]),
    (
        &[5, 5],
        &[1, 1],
        &[2, 2, 2, 2],
        &[],
        0,
        "NOTSET",
        &[1, 2, 3, 4],
    ),
    (&[1, 1], &[3, 3], &[], &[], 1, "NOTSET", &[1, 3, 10, 10]),
    (&[7, 7], &[1, 1], &[], &[], 0, "NOTSET", &[2, 4, 7, 7]),
];

#[test]
fn max_pool_matches_interpreter() {
    for &(k, s, p, d, ceil, ap, shape) in CASES {
        check(max_pool(k, s, p, d, ceil, ap), shape);
    }
}

#[test]
fn average_pool_matches_interpreter() {
    for include_pad in [0, 1] {
        for &(k, s, p, d, ceil, ap, shape) in CASES {
            check(avg_pool(k, s, p, d, ceil, include_pad, ap), shape);
        }
    }
}

/// NaN taps are skipped wherever they sit in a window (the interpreter's maximum), on the
/// direct 2x2 path and on the padded path.
#[test]
fn max_pool_skips_nan_taps_like_the_interpreter() {
    for (k, p, shape) in [
        (&[2i64, 2][..], &[][..], [1usize, 1, 4, 4]),
        (&[3, 3], &[1, 1, 1, 1], [1, 1, 4, 4]),
    ] {
        let op = max_pool(k, &[2, 2], p, &[], 0, "NOTSET");
        let mut v = values(16, 9);
        // Window (0, 0): NaN in both rows. Window (0, 1): NaN before the largest tap of its
        // second row. Window (1, 1): NaN only.
        for at in [0, 4, 5] {
            v[at] = f32::NAN;
        }
        v[6] = f32::NAN;
        v[7] = 5.0;
        for at in [10, 11, 14, 15] {
            v[at] = f32::NAN;
        }
        let x = Tensor::from_f32(&shape, v);
        let want = eval_op(&op, &[Some(&x)], 1).expect("reference").remove(0);
        let mut g = Graph::new("t");
        let xv = g.add_input("x", x.ty());
        let n = g.add_node("pool", op, vec![Some(xv)], vec![("y".into(), want.ty())]);
        let y = g.node(n).outputs[0];
        g.set_outputs(vec![y]);
        let kern = lower_pool(&g, n).expect("lowers");
        let got = run(&kern, &x, want.to_f32_vec().len(), &[(0, kern.work)]);
        for (a, b) in got.iter().zip(want.to_f32_vec()) {
            assert!(
                a == &b || (a.is_nan() && b.is_nan()),
                "got {got:?}, want {want:?}"
            );
        }
    }
}

#[test]
fn global_pools_match_interpreter() {
    for shape in [
        &[2, 3, 7, 7][..],
        &[1, 5, 1, 1],
        &[3, 2, 13],
        &[1, 2, 3, 4, 5],
    ] {
        check(Op::GlobalAveragePool {}, shape);
        check(Op::GlobalMaxPool {}, shape);
    }
}

#[test]
fn whole_plane_average_runs_as_the_global_pool() {
    let op = avg_pool(&[7, 7], &[1, 1], &[], &[], 0, 1, "NOTSET");
    let (g, n, _, _) = build(op, &[1, 8, 7, 7], 1);
    assert_eq!(lower_pool(&g, n).expect("lowers").op, "global_average_pool");
    let padded = avg_pool(&[7, 7], &[1, 1], &[1, 1, 1, 1], &[], 0, 1, "NOTSET");
    let (g, n, _, _) = build(padded, &[1, 8, 5, 5], 1);
    assert_eq!(lower_pool(&g, n).expect("lowers").op, "average_pool");
}

#[test]
fn windows_with_no_valid_tap_give_zero() {
    // Pads larger than the window leave border windows entirely in the padding.
    check(
        max_pool(&[2, 2], &[3, 3], &[2, 2, 2, 2], &[], 0, "NOTSET"),
        &[1, 2, 4, 4],
    );
    check(
        avg_pool(&[2, 2], &[3, 3], &[2, 2, 2, 2], &[], 0, 1, "NOTSET"),
        &[1, 2, 4, 4],
    );
}

fn assert_unsupported(r: Result<crate::codegen::LoweredKernel, CodegenError>, what: &str) {
    assert!(
        matches!(r, Err(CodegenError::Unsupported(_))),
        "{what} should be unsupported"
    );
}

#[test]
fn leaves_other_cases_to_the_fallback() {
    // 1-D and 3-D windowed pools.
    let (g, n, ..) = build(max_pool(&[2], &[2], &[], &[], 0, "NOTSET"), &[1, 2, 8], 1);
    assert_unsupported(lower_pool(&g, n), "1-D max pool");
    let (g, n, ..) = build(
        avg_pool(&[2, 2, 2], &[], &[], &[], 0, 0, "NOTSET"),
        &[1, 2, 4, 4, 4],
        2,
    );
    assert_unsupported(lower_pool(&g, n), "3-D average pool");
    // MaxPool with its indices result.
    let x = Tensor::from_f32(&[1, 1, 4, 4], values(16, 3));
    let op = max_pool(&[2, 2], &[2, 2], &[], &[], 0, "NOTSET");
    let outs = eval_op(&op, &[Some(&x)], 2).expect("reference evaluates");
    let mut g = Graph::new("t");
    let xv = g.add_input("x", x.ty());
    let n = g.add_node(
        "pool",
        op,
        vec![Some(xv)],
        vec![("y".into(), outs[0].ty()), ("i".into(), outs[1].ty())],
    );
    assert_unsupported(lower_pool(&g, n), "max pool with indices");
    // Other element types.
    let x = Tensor::from_i64(&[1, 1, 4, 4], vec![1; 16]);
    let op = max_pool(&[2, 2], &[2, 2], &[], &[], 0, "NOTSET");
    let y = eval_op(&op, &[Some(&x)], 1).expect("reference evaluates");
    let mut g = Graph::new("t");
    let xv = g.add_input("x", x.ty());
    let n = g.add_node("pool", op, vec![Some(xv)], vec![("y".into(), y[0].ty())]);
    assert_unsupported(lower_pool(&g, n), "i64 max pool");
    // Not a pooling op.
    let (g, n, ..) = build(Op::Relu {}, &[1, 2, 3, 3], 4);
    assert_unsupported(lower_pool(&g, n), "relu");
}
