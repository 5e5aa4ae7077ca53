//! Differential cases with NaN, infinities, signed zeros and huge values in the inputs of the
//! native kernels that are not elementwise: softmax, layer norm, pools, matrix products and
//! convolutions. Kernels that sum leave out the huge finite values (f32 and the interpreter's
//! f64 cancel them differently). Both engines skip NaN taps in a max pool and drop a term whose
//! coefficient is zero in a Gemm, as ONNX Runtime does.

use crate::diff_tests;
use crate::gen::{dims, dims_upto, extreme_of, NON_FINITE, NO_NAN, SPECIAL};
use crate::harness::{Builder, Case};
use crate::window::window;
use proptest::prelude::*;
use sparsec_ir::Op;

/// Cases per kernel.
const N: u32 = 12;

/// One in `RATE` elements of each special kind.
const RATE: i64 = 6;

/// A single-input op over a shape drawn by `shape`, with the `special` values mixed in.
fn one(
    shape: impl Strategy<Value = Vec<usize>>,
    special: &'static [f32],
    op: impl Fn(&[usize], u64) -> Op + Clone + 'static,
) -> impl Strategy<Value = Case> {
    (shape, any::<u64>()).prop_map(move |(s, seed)| {
        let mut b = Builder::new();
        let x = b.input(extreme_of(seed, &s, RATE, special));
        let y = b.node1(op(&s, seed), vec![Some(x)]);
        b.finish(vec![y]).tol(1e-4, 1e-4)
    })
}

/// `[N, C, H, W]` inputs for the 2-D pools.
fn nchw() -> impl Strategy<Value = Vec<usize>> {
    (1usize..=2, 1usize..=5, dims_upto(2, 2, 13)).prop_map(|(n, c, hw)| vec![n, c, hw[0], hw[1]])
}

/// A 2-D max or average pool over a random window.
fn pool_op(s: &[usize], seed: u64, max: bool) -> Op {
    let w = window(&s[2..], seed, 3, true);
    if max {
        Op::MaxPool {
            auto_pad: w.auto_pad,
            ceil_mode: 0,
            dilations: w.dilations,
            kernel_shape: w.kernel,
            pads: w.pads,
            storage_order: 0,
            strides: w.strides,
        }
    } else {
        Op::AveragePool {
            auto_pad: w.auto_pad,
            ceil_mode: 0,
            count_include_pad: (seed % 2) as i64,
            dilations: w.dilations,
            kernel_shape: w.kernel,
            pads: w.pads,
            strides: w.strides,
        }
    }
}

/// `LayerNormalization` over the last axis of extreme values.
fn layer_norm() -> impl Strategy<Value = Case> {
    (dims(1, 3), any::<u64>()).prop_map(|(s, seed)| {
        let c = [s[s.len() - 1]];
        let mut b = Builder::new();
        let x = b.input(extreme_of(seed, &s, RATE, NON_FINITE));
        let sc = b.constant(crate::gen::floats(seed + 1, &c, 0.5, 2.0));
        let op = Op::LayerNormalization {
            axis: -1,
            epsilon: 1e-5,
            stash_type: 1,
        };
        let y = b.node1(op, vec![Some(x), Some(sc)]);
        b.finish(vec![y]).tol(1e-4, 1e-4)
    })
}

/// `Gemm` with extreme operands, `alpha` and `beta` drawn from `coefs`.
fn gemm(coefs: Vec<f32>) -> impl Strategy<Value = Case> {
    let coef = prop::sample::select(coefs);
    (
        dims_upto(3, 3, 9),
        any::<u64>(),
        coef.clone(),
        coef,
        any::<bool>(),
    )
        .prop_map(|(mkn, seed, alpha, beta, b_const)| {
            let (m, k, n) = (mkn[0], mkn[1], mkn[2]);
            let mut b = Builder::new();
            let x = b.input(extreme_of(seed, &[m, k], RATE, NON_FINITE));
            let wt = extreme_of(seed + 1, &[k, n], RATE, NON_FINITE);
            let w = if b_const { b.constant(wt) } else { b.input(wt) };
            let c = b.constant(extreme_of(seed + 2, &[n], RATE, NON_FINITE));
            let op = Op::Gemm {
                alpha,
                beta,
                trans_a: 0,
                trans_b: 0,
            };
            let y = b.node1(op, vec![Some(x), Some(w), Some(c)]);
            b.finish(vec![y]).tol(1e-4 * k as f64, 1e-4)
        })
}

/// `Conv` with extreme inputs and ordinary weights.
fn conv() -> impl Strategy<Value = Case> {
    (nchw(), any::<u64>(), 1usize..=4).prop_map(|(s, seed, cout)| {
        let w = window(&s[2..], seed, 3, true);
        let ws = vec![cout, s[1], w.kernel[0] as usize, w.kernel[1] as usize];
        let mut b = Builder::new();
        let x = b.input(extreme_of(seed, &s, RATE, NON_FINITE));
        let wt = b.constant(crate::gen::floats(seed + 1, &ws, -1.0, 1.0));
        let op = Op::Conv {
            auto_pad: w.auto_pad,
            dilations: w.dilations,
            group: 1,
            kernel_shape: vec![],
            pads: w.pads,
            strides: w.strides,
        };
        let y = b.node1(op, vec![Some(x), Some(wt), None]);
        let r = b.node1(Op::Relu {}, vec![Some(y)]);
        let k: usize = ws[1..].iter().product();
        b.finish(vec![r]).tol(1e-4 * k as f64, 1e-4)
    })
}

diff_tests! {
    extreme_softmax => "softmax", N, one(dims(1, 3), SPECIAL, |_, _| Op::Softmax { axis: -1, coerce_2d: 0 });
    extreme_log_softmax => "log_softmax", N, one(dims(1, 3), SPECIAL, |_, _| Op::LogSoftmax { axis: -1, coerce_2d: 0 });
    extreme_layer_norm => "layer_normalization", N, layer_norm();
    extreme_max_pool => "max_pool", N, one(nchw(), NO_NAN, |s, seed| pool_op(s, seed, true));
    nan_max_pool => "max_pool", N, one(nchw(), SPECIAL, |s, seed| pool_op(s, seed, true));
    extreme_average_pool => "average_pool", N, one(nchw(), NON_FINITE, |s, seed| pool_op(s, seed, false));
    extreme_global_max_pool => "global_max_pool", N, one(nchw(), SPECIAL, |_, _| Op::GlobalMaxPool {});
    extreme_global_average_pool => "global_average_pool", N, one(nchw(), NON_FINITE, |_, _| Op::GlobalAveragePool {});
    extreme_gemm => "gemm", N, gemm(vec![1.0, -0.5]);
    zero_coefficient_gemm => "gemm", N, gemm(vec![0.0, 1.0]);
    extreme_matmul => "matmul", N, (dims_upto(3, 3, 9), any::<u64>()).prop_map(|(mkn, seed)| {
        let mut b = Builder::new();
        let x = b.input(extreme_of(seed, &[mkn[0], mkn[1]], RATE, NON_FINITE));
        let w = b.constant(extreme_of(seed + 1, &[mkn[1], mkn[2]], RATE, NON_FINITE));
        let y = b.node1(Op::MatMul {}, vec![Some(x), Some(w)]);
        b.finish(vec![y]).tol(1e-4 * mkn[1] as f64, 1e-4)
    });
    extreme_conv => "conv", N, conv();
}
