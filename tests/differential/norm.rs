//! Differential cases of the normalizations and softmax family: batch, layer, instance and RMS
//! normalization, LRN, mean-variance normalization, `Softmax`/`LogSoftmax`/`Hardmax` with every
//! axis and the `coerce_2d` form.

use crate::diff_tests;
use crate::gen::{dims, dims_upto, floats, subset, whole_floats};
use crate::harness::{Builder, Case};
use proptest::prelude::*;
use sparsec_ir::Op;

/// Cases per op.
const N: u32 = 16;

/// A random axis of a rank-`rank` tensor, negative half the time.
fn axis_of(i: prop::sample::Index, rank: usize, seed: u64) -> i64 {
    let a = i.index(rank) as i64;
    if seed.is_multiple_of(2) {
        a - rank as i64
    } else {
        a
    }
}

/// `BatchNormalization` of an `[N, C, ...]` input; the parameters are constants or inputs.
fn batch_norm() -> impl Strategy<Value = Case> {
    (dims(2, 4), any::<u64>(), 1e-5f32..1e-2, any::<bool>()).prop_map(
        |(s, seed, epsilon, consts)| {
            let c = [s[1]];
            let mut b = Builder::new();
            let x = b.input(floats(seed, &s, -3.0, 3.0));
            let params = [
                floats(seed + 1, &c, 0.5, 2.0),
                floats(seed + 2, &c, -1.0, 1.0),
                floats(seed + 3, &c, -1.0, 1.0),
                floats(seed + 4, &c, 0.1, 2.0),
            ];
            let mut ins = vec![Some(x)];
            for p in params {
                ins.push(Some(if consts { b.constant(p) } else { b.input(p) }));
            }
            let r = b.node1(Op::BatchNormalization { epsilon }, ins);
            b.finish(vec![r]).tol(1e-4, 1e-4)
        },
    )
}

/// `LayerNormalization` over the axes from a random `axis` on, with or without bias, asking for
/// one or all three results.
fn layer_norm() -> impl Strategy<Value = Case> {
    (
        dims(1, 4),
        any::<u64>(),
        any::<prop::sample::Index>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(s, seed, axis, bias, three)| {
            let axis = axis_of(axis, s.len(), seed);
            let start = axis.rem_euclid(s.len() as i64) as usize;
            let ps = &s[start..];
            let mut b = Builder::new();
            let x = b.input(floats(seed, &s, -3.0, 3.0));
            let scale = b.constant(floats(seed + 1, ps, 0.5, 2.0));
            let bias = bias.then(|| b.constant(floats(seed + 2, ps, -1.0, 1.0)));
            let op = Op::LayerNormalization {
                axis,
                epsilon: 1e-5,
                stash_type: 1,
            };
            let r = b.node(
                op,
                vec![Some(x), Some(scale), bias],
                if three { 3 } else { 1 },
            );
            b.finish(r).tol(1e-4, 1e-4)
        })
}

/// `InstanceNormalization` of an `[N, C, ...]` input.
fn instance_norm() -> impl Strategy<Value = Case> {
    (dims(3, 4), any::<u64>()).prop_map(|(s, seed)| {
        let c = [s[1]];
        let mut b = Builder::new();
        let x = b.input(floats(seed, &s, -3.0, 3.0));
        let scale = b.constant(floats(seed + 1, &c, 0.5, 2.0));
        let bias = b.constant(floats(seed + 2, &c, -1.0, 1.0));
        let r = b.node1(
            Op::InstanceNormalization { epsilon: 1e-5 },
            vec![Some(x), Some(scale), Some(bias)],
        );
        b.finish(vec![r]).tol(1e-4, 1e-4)
    })
}

/// `RmsNormalization` over the axes from a random `axis` on.
fn rms_norm() -> impl Strategy<Value = Case> {
    (dims(1, 4), any::<u64>(), any::<prop::sample::Index>()).prop_map(|(s, seed, axis)| {
        let axis = axis_of(axis, s.len(), seed);
        let start = axis.rem_euclid(s.len() as i64) as usize;
        let mut b = Builder::new();
        let x = b.input(floats(seed, &s, -3.0, 3.0));
        let scale = b.constant(floats(seed + 1, &s[start..], 0.5, 2.0));
        let op = Op::RmsNormalization {
            axis,
            epsilon: 1e-5,
            stash_type: 1,
        };
        let r = b.node1(op, vec![Some(x), Some(scale)]);
        b.finish(vec![r]).tol(1e-4, 1e-4)
    })
}

/// `Lrn` across the channels of an `[N, C, H, W]` input: sizes 1 to 6, the exponents the native
/// kernel takes apart (0.75, 0.5, 1) and any other, planes small and larger than one work unit
/// (256 pixels) of the kernel.
fn lrn() -> impl Strategy<Value = Case> {
    (
        prop_oneof![
            dims(4, 4),
            dims_upto(3, 3, 6).prop_map(|mut d: Vec<usize>| {
                d.push(90);
                d
            })
        ],
        any::<u64>(),
        1i64..7,
        1e-4f32..1e-2,
        prop_oneof![Just(0.75f32), Just(0.5), Just(1.0), 0.5f32..1.0],
        1.0f32..2.0,
    )
        .prop_map(|(s, seed, size, alpha, beta, bias)| {
            let mut b = Builder::new();
            let x = b.input(floats(seed, &s, -3.0, 3.0));
            let op = Op::Lrn {
                alpha,
                beta,
                bias,
                size,
            };
            let r = b.node1(op, vec![Some(x)]);
            b.finish(vec![r]).tol(1e-4, 1e-4)
        })
}

/// `MeanVarianceNormalization` over a random non-empty subset of the axes of a rank-4 input.
fn mvn() -> impl Strategy<Value = Case> {
    (dims(4, 4), any::<u64>()).prop_map(|(s, seed)| {
        let mut axes: Vec<i64> = subset(4, seed).into_iter().map(|a| a as i64).collect();
        if axes.is_empty() {
            axes = vec![0, 2, 3];
        }
        let mut b = Builder::new();
        let x = b.input(floats(seed, &s, -3.0, 3.0));
        let r = b.node1(Op::MeanVarianceNormalization { axes }, vec![Some(x)]);
        b.finish(vec![r]).tol(1e-3, 1e-3)
    })
}

/// Which softmax-like op.
#[derive(Clone, Copy)]
enum Soft {
    Softmax,
    Log,
    Hard,
}

/// A softmax-like op along a random axis, `coerce_2d` drawn; `Hardmax` sees whole numbers so
/// ties occur.
fn soft(kind: Soft) -> impl Strategy<Value = Case> {
    (
        dims(1, 4),
        any::<u64>(),
        any::<prop::sample::Index>(),
        0i64..=1,
    )
        .prop_map(move |(s, seed, axis, coerce_2d)| {
            let axis = axis_of(axis, s.len(), seed);
            let op = match kind {
                Soft::Softmax => Op::Softmax { axis, coerce_2d },
                Soft::Log => Op::LogSoftmax { axis, coerce_2d },
                Soft::Hard => Op::Hardmax { axis, coerce_2d },
            };
            let mut b = Builder::new();
            let x = b.input(match kind {
                Soft::Hard => whole_floats(seed, &s, -3, 3),
                _ => floats(seed, &s, -10.0, 10.0),
            });
            let r = b.node1(op, vec![Some(x)]);
            b.finish(vec![r]).tol(1e-5, 1e-4)
        })
}

diff_tests! {
    batch_normalization => "batch_normalization", N, batch_norm();
    layer_normalization => "layer_normalization", N, layer_norm();
    instance_normalization => "instance_normalization", N, instance_norm();
    rms_normalization => "rms_normalization", N, rms_norm();
    local_response_norm => "lrn", N, lrn();
    mean_variance_normalization => "mean_variance_normalization", N, mvn();
    softmax => "softmax", 24, soft(Soft::Softmax);
    log_softmax => "log_softmax", 24, soft(Soft::Log);
    hardmax => "hardmax", N, soft(Soft::Hard);
}
