//! Differential cases of the gathers and scatters: `Gather`, `GatherElements`, `GatherNd` (batch
//! dims), `ScatterNd` and `ScatterElements` (every reduction; unique indices for `none`) and
//! `OneHot`, with negative indices and i32 or i64 index types.

use crate::diff_tests;
use crate::gen::{dims, dims_upto, floats, ints_of, numel, Rng};
use crate::harness::{Builder, Case};
use proptest::prelude::*;
use sparsec_ir::{DType, Op, Tensor};

/// Cases per op.
const N: u32 = 16;

/// Indices in `-d..d` of dtype i64 or i32.
fn indices(seed: u64, shape: &[usize], d: usize, i32_: bool) -> Tensor {
    let dt = if i32_ { DType::I32 } else { DType::I64 };
    ints_of(dt, seed, shape, -(d as i64), d as i64 - 1)
}

/// `Gather` along a random axis with indices of rank 0..=2.
fn gather() -> impl Strategy<Value = Case> {
    (
        dims(1, 4),
        dims_upto(0, 2, 5),
        any::<u64>(),
        any::<prop::sample::Index>(),
        any::<bool>(),
    )
        .prop_map(|(s, is, seed, axis, i32_)| {
            let a = axis.index(s.len());
            let mut b = Builder::new();
            let x = b.input(floats(seed, &s, -5.0, 5.0));
            let i = b.input(indices(seed + 1, &is, s[a], i32_));
            let y = b.node1(Op::Gather { axis: a as i64 }, vec![Some(x), Some(i)]);
            b.finish(vec![y])
        })
}

/// `GatherElements` with an index tensor of the data's rank (any size along the axis).
fn gather_elements() -> impl Strategy<Value = Case> {
    (dims(1, 4), any::<u64>(), any::<prop::sample::Index>()).prop_map(|(s, seed, axis)| {
        let a = axis.index(s.len());
        let mut r = Rng::new(seed);
        let is: Vec<usize> = s
            .iter()
            .enumerate()
            .map(|(k, &d)| {
                if k == a {
                    r.int(1, 6) as usize
                } else {
                    r.int(1, d as i64) as usize
                }
            })
            .collect();
        let mut b = Builder::new();
        let x = b.input(floats(seed, &s, -5.0, 5.0));
        let i = b.input(indices(seed + 1, &is, s[a], false));
        let y = b.node1(
            Op::GatherElements { axis: a as i64 },
            vec![Some(x), Some(i)],
        );
        b.finish(vec![y])
    })
}

/// Index tuples of length `k` into `dims`, `count` of them, non-negative (unique when `unique`).
fn tuples(r: &mut Rng, dims: &[usize], count: usize, unique: bool) -> Vec<Vec<i64>> {
    let total = numel(dims);
    let mut flat: Vec<usize> = Vec::new();
    while flat.len() < count {
        let f = r.int(0, total as i64 - 1) as usize;
        if !unique || !flat.contains(&f) {
            flat.push(f);
        }
    }
    flat.into_iter()
        .map(|mut f| {
            let mut t = vec![0i64; dims.len()];
            for (k, &d) in dims.iter().enumerate().rev() {
                t[k] = (f % d) as i64;
                f /= d;
            }
            t
        })
        .collect()
}

/// `GatherNd` with `batch_dims` 0..=1 and tuples of length 1..=rank-batch_dims.
fn gather_nd() -> impl Strategy<Value = Case> {
    (
        dims_upto(1, 4, 6),
        any::<u64>(),
        0usize..=1,
        dims_upto(0, 2, 4),
    )
        .prop_map(|(s, seed, bd, extra)| {
            let bd = bd.min(s.len() - 1);
            let mut r = Rng::new(seed);
            let k = r.int(1, (s.len() - bd) as i64) as usize;
            let mut ishape: Vec<usize> = s[..bd].to_vec();
            ishape.extend(&extra);
            let count = numel(&ishape);
            let ts = tuples(&mut r, &s[bd..bd + k], count, false);
            let v: Vec<i64> = ts
                .into_iter()
                .flatten()
                .enumerate()
                .map(|(j, x)| {
                    if j % 3 == 0 {
                        x - s[bd + j % k] as i64
                    } else {
                        x
                    }
                })
                .collect();
            ishape.push(k);
            let mut b = Builder::new();
            let x = b.input(floats(seed, &s, -5.0, 5.0));
            let i = b.input(Tensor::from_i64(&ishape, v));
            let y = b.node1(
                Op::GatherNd {
                    batch_dims: bd as i64,
                },
                vec![Some(x), Some(i)],
            );
            b.finish(vec![y])
        })
}

/// The reductions of the scatters.
fn reductions() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["none", "add", "mul", "max", "min"])
}

/// `ScatterNd` of `[q.., s[k..]]` updates at tuples of length `k`.
fn scatter_nd() -> impl Strategy<Value = Case> {
    (
        dims_upto(1, 3, 7),
        any::<u64>(),
        reductions(),
        dims_upto(1, 2, 3),
    )
        .prop_map(|(s, seed, red, q)| {
            let mut r = Rng::new(seed);
            let k = r.int(1, s.len() as i64) as usize;
            let room = numel(&s[..k]);
            let mut q = q;
            if red == "none" {
                // Unique targets: no more tuples than positions.
                q = vec![numel(&q).min(room)];
            }
            let ts = tuples(&mut r, &s[..k], numel(&q), red == "none");
            let mut ishape = q.clone();
            ishape.push(k);
            let ushape: Vec<usize> = [q, s[k..].to_vec()].concat();
            let mut b = Builder::new();
            let x = b.input(floats(seed, &s, -3.0, 3.0));
            let i = b.input(Tensor::from_i64(
                &ishape,
                ts.into_iter().flatten().collect(),
            ));
            let u = b.input(floats(seed + 1, &ushape, -3.0, 3.0));
            let y = b.node1(
                Op::ScatterNd {
                    reduction: red.into(),
                },
                vec![Some(x), Some(i), Some(u)],
            );
            b.finish(vec![y]).tol(1e-5, 1e-4)
        })
}

/// `ScatterElements` along a random axis; for `none` each column's indices are distinct.
fn scatter_elements() -> impl Strategy<Value = Case> {
    (
        dims(1, 3),
        any::<u64>(),
        any::<prop::sample::Index>(),
        reductions(),
    )
        .prop_map(|(s, seed, axis, red)| {
            let a = axis.index(s.len());
            let mut r = Rng::new(seed);
            let is: Vec<usize> = s.iter().map(|&d| r.int(1, d as i64) as usize).collect();
            let d = s[a] as i64;
            let n = numel(&is);
            let mut v = Vec::with_capacity(n);
            for f in 0..n {
                // Position along the axis and a per-column offset keep `none` targets distinct.
                let inner: usize = is[a + 1..].iter().product();
                let j = ((f / inner) % is[a]) as i64;
                let col = (f % inner + (f / inner / is[a]) * 7) as i64;
                let x = if red == "none" {
                    (j + col) % d
                } else {
                    r.int(0, d - 1)
                };
                v.push(if r.int(0, 2) == 0 { x - d } else { x });
            }
            let mut b = Builder::new();
            let x = b.input(floats(seed, &s, -3.0, 3.0));
            let i = b.input(Tensor::from_i64(&is, v));
            let u = b.input(floats(seed + 1, &is, -3.0, 3.0));
            let op = Op::ScatterElements {
                axis: a as i64,
                reduction: red.into(),
            };
            let y = b.node1(op, vec![Some(x), Some(i), Some(u)]);
            b.finish(vec![y]).tol(1e-5, 1e-4)
        })
}

/// `OneHot` of indices in `-depth..depth` along any axis.
fn one_hot() -> impl Strategy<Value = Case> {
    (
        dims_upto(0, 3, 6),
        any::<u64>(),
        1i64..=10,
        any::<prop::sample::Index>(),
    )
        .prop_map(|(s, seed, depth, axis)| {
            let axis = axis.index(s.len() + 2) as i64 - (s.len() as i64 + 1);
            let mut b = Builder::new();
            let i = b.input(ints_of(DType::I64, seed, &s, -depth, depth - 1));
            let d = b.constant(Tensor::scalar_i64(depth));
            let vals = b.constant(Tensor::from_f32(&[2], vec![-0.5, 2.0]));
            let y = b.node1(Op::OneHot { axis }, vec![Some(i), Some(d), Some(vals)]);
            b.finish(vec![y])
        })
}

diff_tests! {
    gather_axis => "gather", N, gather();
    gather_elements_axis => "gather_elements", N, gather_elements();
    gather_nd_batch => "gather_nd", N, gather_nd();
    scatter_nd_reductions => "scatter_nd", 24, scatter_nd();
    scatter_elements_reductions => "scatter_elements", 24, scatter_elements();
    one_hot_axis => "one_hot", N, one_hot();
}
