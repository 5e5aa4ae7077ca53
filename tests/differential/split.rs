//! Differential cases with shapes large enough that the native kernels split their work over
//! both threads (at odd boundaries): elementwise chains, softmax and layer norm rows, 2-D pools,
//! convolutions and matrix products. The small-shape cases of the other modules mostly run in
//! one chunk.

use crate::diff_tests;
use crate::gen::floats;
use crate::harness::{Builder, Case};
use crate::window::window;
use proptest::prelude::*;
use sparsec_ir::{Op, Tensor};

/// Cases per kernel kind: the shapes are large, so few.
const N: u32 = 6;

/// `Sigmoid(x) * y + Tanh(x)` over a large `[a, b]` with `y` broadcast along rows.
fn elementwise() -> impl Strategy<Value = Case> {
    (97usize..=251, 131usize..=253, any::<u64>()).prop_map(|(a, c, seed)| {
        let mut b = Builder::new();
        let x = b.input(floats(seed, &[a, c], -3.0, 3.0));
        let y = b.input(floats(seed + 1, &[c], -3.0, 3.0));
        let s = b.node1(Op::Sigmoid {}, vec![Some(x)]);
        let m = b.node1(Op::Mul {}, vec![Some(s), Some(y)]);
        let t = b.node1(Op::Tanh {}, vec![Some(x)]);
        let r = b.node1(Op::Add {}, vec![Some(m), Some(t)]);
        b.finish(vec![r])
    })
}

/// Softmax, log-softmax or layer norm along the last axis of a large `[rows, cols]`.
fn rows(which: u8) -> impl Strategy<Value = Case> {
    (301usize..=701, 67usize..=299, any::<u64>()).prop_map(move |(r, c, seed)| {
        let mut b = Builder::new();
        let x = b.input(floats(seed, &[r, c], -5.0, 5.0));
        let y = match which {
            0 => b.node1(
                Op::Softmax {
                    axis: -1,
                    coerce_2d: 0,
                },
                vec![Some(x)],
            ),
            1 => b.node1(
                Op::LogSoftmax {
                    axis: -1,
                    coerce_2d: 0,
                },
                vec![Some(x)],
            ),
            _ => {
                let s = b.constant(floats(seed + 1, &[c], 0.5, 2.0));
                let o = b.constant(floats(seed + 2, &[c], -1.0, 1.0));
                let op = Op::LayerNormalization {
                    axis: -1,
                    epsilon: 1e-5,
                    stash_type: 1,
                };
                b.node1(op, vec![Some(x), Some(s), Some(o)])
            }
        };
        b.finish(vec![y]).tol(1e-4, 1e-4)
    })
}

/// Softmax along any axis (or the `coerce_2d` form) of a large 3-D input.
fn softmax_axis() -> impl Strategy<Value = Case> {
    (
        3usize..=41,
        3usize..=41,
        29usize..=67,
        -3i64..=2,
        0i64..=1,
        any::<u64>(),
    )
        .prop_map(|(a, c, d, axis, coerce_2d, seed)| {
            let mut b = Builder::new();
            let x = b.input(floats(seed, &[a, c, d], -5.0, 5.0));
            let y = b.node1(Op::Softmax { axis, coerce_2d }, vec![Some(x)]);
            b.finish(vec![y]).tol(1e-5, 1e-4)
        })
}

/// `x * y + z` over a large `[a, 1, c]`, `[b, 1]`, `[a, b, c]` (every operand broadcasts
/// differently).
fn broadcast3() -> impl Strategy<Value = Case> {
    (3usize..=29, 3usize..=31, 17usize..=67, any::<u64>()).prop_map(|(a, m, c, seed)| {
        let mut b = Builder::new();
        let x = b.input(floats(seed, &[a, 1, c], -3.0, 3.0));
        let y = b.input(floats(seed + 1, &[m, 1], -3.0, 3.0));
        let z = b.input(floats(seed + 2, &[a, m, c], -3.0, 3.0));
        let p = b.node1(Op::Mul {}, vec![Some(x), Some(y)]);
        let r = b.node1(Op::Add {}, vec![Some(p), Some(z)]);
        b.finish(vec![r])
    })
}

/// A 2-D max or average pool over a large `[2, C, H, W]`.
fn pool(max: bool) -> impl Strategy<Value = Case> {
    (9usize..=23, 29usize..=63, 29usize..=63, any::<u64>()).prop_map(move |(c, h, w, seed)| {
        let win = window(&[h, w], seed, 4, true);
        let op = if max {
            Op::MaxPool {
                auto_pad: win.auto_pad,
                ceil_mode: 0,
                dilations: win.dilations,
                kernel_shape: win.kernel,
                pads: win.pads,
                storage_order: 0,
                strides: win.strides,
            }
        } else {
            Op::AveragePool {
                auto_pad: win.auto_pad,
                ceil_mode: 0,
                count_include_pad: (seed % 2) as i64,
                dilations: win.dilations,
                kernel_shape: win.kernel,
                pads: win.pads,
                strides: win.strides,
            }
        };
        let mut b = Builder::new();
        let x = b.input(floats(seed, &[2, c, h, w], -3.0, 3.0));
        let y = b.node1(op, vec![Some(x)]);
        b.finish(vec![y]).tol(1e-4, 1e-4)
    })
}

/// A 3x3 or 1x1 convolution with bias and `Relu` over a large `[1, C, H, W]`.
fn conv() -> impl Strategy<Value = Case> {
    (
        5usize..=17,
        7usize..=23,
        19usize..=41,
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(|(cin, cout, hw, one, seed)| {
            let k = if one { 1 } else { 3 };
            let mut b = Builder::new();
            let x = b.input(floats(seed, &[1, cin, hw, hw + 2], -1.0, 1.0));
            let w = b.constant(floats(seed + 1, &[cout, cin, k, k], -1.0, 1.0));
            let bias = b.constant(floats(seed + 2, &[cout], -1.0, 1.0));
            let op = Op::Conv {
                auto_pad: "NOTSET".into(),
                dilations: vec![],
                group: 1,
                kernel_shape: vec![],
                pads: if one { vec![] } else { vec![1, 1, 1, 1] },
                strides: vec![],
            };
            let y = b.node1(op, vec![Some(x), Some(w), Some(bias)]);
            let r = b.node1(Op::Relu {}, vec![Some(y)]);
            b.finish(vec![r]).tol(2e-5 * (cin * k * k) as f64, 1e-4)
        })
}

/// A `[M, K] x [K, N]` product (MatMul or Gemm with a bias) with every dim in `61..=141`.
fn product(gemm: bool) -> impl Strategy<Value = Case> {
    (61usize..=141, 61usize..=141, 61usize..=141, any::<u64>()).prop_map(move |(m, k, n, seed)| {
        let mut b = Builder::new();
        let x = b.input(floats(seed, &[m, k], -1.0, 1.0));
        let w = b.constant(floats(seed + 1, &[k, n], -1.0, 1.0));
        let y = if gemm {
            let c = b.constant(floats(seed + 2, &[n], -1.0, 1.0));
            let op = Op::Gemm {
                alpha: 0.5,
                beta: 1.0,
                trans_a: 0,
                trans_b: 0,
            };
            b.node1(op, vec![Some(x), Some(w), Some(c)])
        } else {
            b.node1(Op::MatMul {}, vec![Some(x), Some(w)])
        };
        b.finish(vec![y]).tol(2e-5 * k as f64, 1e-4)
    })
}

/// A `Clip` after a large product, with constant bounds (an epilogue of the dense path).
fn clipped() -> impl Strategy<Value = Case> {
    (61usize..=141, 61usize..=141, any::<u64>()).prop_map(|(m, n, seed)| {
        let k = 67;
        let mut b = Builder::new();
        let x = b.input(floats(seed, &[m, k], -1.0, 1.0));
        let w = b.constant(floats(seed + 1, &[k, n], -1.0, 1.0));
        let y = b.node1(Op::MatMul {}, vec![Some(x), Some(w)]);
        let lo = b.constant(Tensor::scalar_f32(-1.0));
        let hi = b.constant(Tensor::scalar_f32(1.0));
        let r = b.node1(Op::Clip {}, vec![Some(y), Some(lo), Some(hi)]);
        b.finish(vec![r]).tol(2e-5 * k as f64, 1e-4)
    })
}

diff_tests! {
    split_elementwise => "sigmoid", N, elementwise();
    split_softmax => "softmax", N, rows(0);
    split_softmax_axis => "softmax", N, softmax_axis();
    split_broadcast => "mul", N, broadcast3();
    split_log_softmax => "log_softmax", N, rows(1);
    split_layer_norm => "layer_normalization", N, rows(2);
    split_max_pool => "max_pool", N, pool(true);
    split_average_pool => "average_pool", N, pool(false);
    split_conv => "conv", N, conv();
    split_matmul => "matmul", N, product(false);
    split_gemm => "gemm", N, product(true);
    split_clip => "clip", N, clipped();
}
