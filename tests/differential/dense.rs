//! Differential cases of the dense ops: `Gemm` (transposes, alpha/beta, every bias form),
//! `MatMul` (1-D operands, broadcast batches), `Einsum` (matrix-product and reduction forms),
//! `Conv` and `ConvTranspose` (groups, depthwise, strides, dilations, pads, `auto_pad`), and the
//! epilogues the dense path fuses (bias, residual add, activation).

use crate::diff_tests;
use crate::gen::{broadcast_of, dims_upto, floats, Rng};
use crate::harness::{Builder, Case};
use crate::window::window;
use proptest::prelude::*;
use sparsec_ir::{Op, Tensor, ValueId};

/// Cases per op.
const N: u32 = 20;

/// Tolerances for a sum of `k` products of values in `[-1, 1)`.
fn dot_tol(case: Case, k: usize) -> Case {
    case.tol(2e-5 * k.max(1) as f64, 1e-4)
}

/// An operand that is a constant (as weights are) or a graph input.
fn operand(b: &mut Builder, t: Tensor, constant: bool) -> ValueId {
    if constant {
        b.constant(t)
    } else {
        b.input(t)
    }
}

/// `Gemm` with drawn transposes, alpha, beta and C of shape `[]`, `[N]`, `[1,N]`, `[M,1]`,
/// `[M,N]` or absent.
fn gemm() -> impl Strategy<Value = Case> {
    (
        dims_upto(3, 3, 13),
        any::<u64>(),
        (0i64..=1, 0i64..=1),
        (-2.0f32..2.0, -2.0f32..2.0),
        0u8..6,
        any::<bool>(),
    )
        .prop_map(|(mkn, seed, (ta, tb), (alpha, beta), c_form, b_const)| {
            let (m, k, n) = (mkn[0], mkn[1], mkn[2]);
            let a_shape = if ta == 1 { [k, m] } else { [m, k] };
            let b_shape = if tb == 1 { [n, k] } else { [k, n] };
            let mut b = Builder::new();
            let x = b.input(floats(seed, &a_shape, -1.0, 1.0));
            let w = operand(&mut b, floats(seed + 1, &b_shape, -1.0, 1.0), b_const);
            let c_shape: Option<Vec<usize>> = match c_form {
                0 => None,
                1 => Some(vec![]),
                2 => Some(vec![n]),
                3 => Some(vec![1, n]),
                4 => Some(vec![m, 1]),
                _ => Some(vec![m, n]),
            };
            let c = c_shape.map(|s| operand(&mut b, floats(seed + 2, &s, -1.0, 1.0), b_const));
            let op = Op::Gemm {
                alpha,
                beta,
                trans_a: ta,
                trans_b: tb,
            };
            let r = b.node1(op, vec![Some(x), Some(w), c]);
            dot_tol(b.finish(vec![r]), 2 * k)
        })
}

/// `MatMul` of `[batch.., M, K]` by `[batch.., K, N]` with broadcast batch dims, either operand
/// possibly 1-D, the right one possibly a constant.
fn matmul() -> impl Strategy<Value = Case> {
    (
        dims_upto(3, 3, 13),
        dims_upto(0, 2, 4),
        any::<u64>(),
        (any::<bool>(), any::<bool>(), 0u8..4),
        any::<bool>(),
    )
        .prop_map(|(mkn, batch, seed, (a1, b1, bc), b_const)| {
            let (m, k, n) = (mkn[0], mkn[1], mkn[2]);
            // One 1-D operand in four per side.
            let a1 = a1 && bc == 0;
            let b1 = b1 && bc == 1;
            let a_shape = if a1 {
                vec![k]
            } else {
                [broadcast_of(&batch, seed), vec![m, k]].concat()
            };
            let b_shape = if b1 {
                vec![k]
            } else {
                [broadcast_of(&batch, seed + 1), vec![k, n]].concat()
            };
            let mut b = Builder::new();
            let x = b.input(floats(seed, &a_shape, -1.0, 1.0));
            let w = operand(&mut b, floats(seed + 1, &b_shape, -1.0, 1.0), b_const);
            let r = b.node1(Op::MatMul {}, vec![Some(x), Some(w)]);
            dot_tol(b.finish(vec![r]), k)
        })
}

/// `Einsum` over one of several equation forms, with a size drawn for every letter.
fn einsum() -> impl Strategy<Value = Case> {
    let eqs = vec![
        "ij,jk->ik",
        "ij,kj->ik",
        "bij,bjk->bik",
        "bhqd,bhkd->bhqk",
        "ij->ji",
        "ij->i",
        "ij->",
        "i,i->",
        "ij,j->i",
        "ii->i",
        "ij,ij->ij",
        "...ij,...jk->...ik",
        "bij,jk",
    ];
    (prop::sample::select(eqs), any::<u64>(), dims_upto(0, 2, 3)).prop_map(|(eq, seed, ell)| {
        let mut r = Rng::new(seed);
        let letters: Vec<(char, usize)> = ('a'..='z').map(|c| (c, r.int(1, 9) as usize)).collect();
        let size = |c: char| letters[(c as u8 - b'a') as usize].1;
        let lhs = eq.split("->").next().unwrap_or(eq);
        let mut b = Builder::new();
        let mut ins = Vec::new();
        let mut k = 1;
        for (t, term) in lhs.split(',').enumerate() {
            let mut shape = Vec::new();
            if term.starts_with("...") {
                shape.extend(broadcast_of(&ell, seed + t as u64));
            }
            shape.extend(term.trim_start_matches("...").chars().map(size));
            k = k.max(shape.iter().product());
            ins.push(Some(b.input(floats(seed + t as u64, &shape, -1.0, 1.0))));
        }
        let y = b.node1(
            Op::Einsum {
                equation: eq.to_string(),
            },
            ins,
        );
        dot_tol(b.finish(vec![y]), k)
    })
}

/// Convolution geometry: `(x shape, w shape, group)`.
type ConvShapes = (Vec<usize>, Vec<usize>, usize);

/// Conv operand shapes: 1 or 2 spatial axes (3 with small sizes), group 1..=3 or depthwise.
fn conv_shapes(transpose: bool) -> impl Strategy<Value = (ConvShapes, Vec<usize>)> {
    (
        1usize..=2,
        1usize..=4,
        1usize..=4,
        1usize..=3,
        any::<bool>(),
        dims_upto(1, 3, 13),
    )
        .prop_map(move |(n, cin_g, cout_g, g, depthwise, sp)| {
            let sp: Vec<usize> = if sp.len() == 3 {
                sp.iter().map(|&d| d.min(5)).collect()
            } else {
                sp
            };
            let (cin_g, cout_g, g) = if depthwise {
                (1, 1, cin_g * g)
            } else {
                (cin_g, cout_g, g)
            };
            let x = [vec![n, cin_g * g], sp.clone()].concat();
            // The kernel sizes are filled in from the window.
            let w = if transpose {
                vec![cin_g * g, cout_g]
            } else {
                vec![cout_g * g, cin_g]
            };
            ((x, w, g), sp)
        })
}

/// `Conv` with a random window, optional bias, the weight a constant or an input; `epilogue`
/// adds a channel bias, a residual input and an activation after it, as the dense path fuses.
fn conv(epilogue: bool) -> impl Strategy<Value = Case> {
    (
        conv_shapes(false),
        any::<u64>(),
        any::<bool>(),
        any::<bool>(),
        0u8..3,
    )
        .prop_map(move |(((xs, mut ws, g), sp), seed, bias, w_const, act)| {
            let win = window(&sp, seed, 4, true);
            ws.extend(win.kernel.iter().map(|&k| k as usize));
            let kernel_shape = if seed.is_multiple_of(2) {
                win.kernel.clone()
            } else {
                Vec::new()
            };
            let cout = ws[0];
            let mut b = Builder::new();
            let x = b.input(floats(seed, &xs, -1.0, 1.0));
            let w = operand(&mut b, floats(seed + 1, &ws, -1.0, 1.0), w_const);
            let bias = bias.then(|| operand(&mut b, floats(seed + 2, &[cout], -1.0, 1.0), w_const));
            let op = Op::Conv {
                auto_pad: win.auto_pad,
                dilations: win.dilations,
                group: g as i64,
                kernel_shape,
                pads: win.pads,
                strides: win.strides,
            };
            let mut y = b.node1(op, vec![Some(x), Some(w), bias]);
            let k: usize = ws[1..].iter().product();
            if epilogue {
                let mut cshape = vec![cout];
                cshape.extend(std::iter::repeat_n(1, sp.len()));
                let c = b.constant(floats(seed + 3, &cshape, -1.0, 1.0));
                y = b.node1(Op::Add {}, vec![Some(y), Some(c)]);
                let shape = b_shape(&b, y);
                let res = b.input(floats(seed + 4, &shape, -1.0, 1.0));
                y = b.node1(Op::Add {}, vec![Some(res), Some(y)]);
                y = activation(&mut b, y, act);
            }
            dot_tol(b.finish(vec![y]), k + 2)
        })
}

/// The shape of value `v` of the graph being built.
fn b_shape(b: &Builder, v: ValueId) -> Vec<usize> {
    b.value_shape(v)
}

/// Appends `Relu`, `LeakyRelu` or `Clip` (constant bounds) after `y`.
fn activation(b: &mut Builder, y: ValueId, which: u8) -> ValueId {
    match which {
        0 => b.node1(Op::Relu {}, vec![Some(y)]),
        1 => b.node1(Op::LeakyRelu { alpha: 0.1 }, vec![Some(y)]),
        _ => {
            let lo = b.constant(Tensor::scalar_f32(-0.5));
            let hi = b.constant(Tensor::scalar_f32(0.75));
            b.node1(Op::Clip {}, vec![Some(y), Some(lo), Some(hi)])
        }
    }
}

/// `Gemm` or `MatMul` followed by a bias add, maybe a residual add, and an activation.
fn dense_epilogue(matmul: bool) -> impl Strategy<Value = Case> {
    (dims_upto(3, 3, 13), any::<u64>(), 0u8..3, any::<bool>()).prop_map(
        move |(mkn, seed, act, residual)| {
            let (m, k, n) = (mkn[0], mkn[1], mkn[2]);
            let mut b = Builder::new();
            let x = b.input(floats(seed, &[m, k], -1.0, 1.0));
            let w = b.constant(floats(seed + 1, &[k, n], -1.0, 1.0));
            let mut y = if matmul {
                b.node1(Op::MatMul {}, vec![Some(x), Some(w)])
            } else {
                let op = Op::Gemm {
                    alpha: 1.0,
                    beta: 1.0,
                    trans_a: 0,
                    trans_b: 0,
                };
                b.node1(op, vec![Some(x), Some(w), None])
            };
            let c = b.constant(floats(seed + 2, &[n], -1.0, 1.0));
            y = b.node1(Op::Add {}, vec![Some(y), Some(c)]);
            if residual {
                let res = b.input(floats(seed + 3, &[m, n], -1.0, 1.0));
                y = b.node1(Op::Add {}, vec![Some(y), Some(res)]);
            }
            y = activation(&mut b, y, act);
            dot_tol(b.finish(vec![y]), k + 2)
        },
    )
}

/// `ConvTranspose` with strides, dilations, pads, output padding, optional `output_shape` and
/// `auto_pad`, groups and optional bias.
fn conv_transpose() -> impl Strategy<Value = Case> {
    (conv_shapes(true), any::<u64>(), any::<bool>()).prop_map(
        |(((xs, mut ws, g), sp), seed, bias)| {
            let mut r = Rng::new(seed);
            let ns = sp.len();
            let mut kernel = Vec::new();
            let mut strides = Vec::new();
            let mut dil = Vec::new();
            let mut out_pad = Vec::new();
            let mut begin = Vec::new();
            let mut end = Vec::new();
            let mut full = Vec::new();
            for &x in &sp {
                let k = r.int(1, 4);
                let s = r.int(1, 3);
                let d = r.int(1, 2);
                let op = r.int(0, s.max(d) - 1);
                let eff = (k - 1) * d + 1;
                let f = s * (x as i64 - 1) + op + eff;
                let mut pb = r.int(0, k - 1);
                let mut pe = r.int(0, k - 1);
                if f - pb - pe < 1 {
                    pb = 0;
                    pe = 0;
                }
                kernel.push(k);
                strides.push(s);
                dil.push(d);
                out_pad.push(op);
                begin.push(pb);
                end.push(pe);
                full.push(f);
            }
            let (auto_pad, pads, output_shape) = match r.int(0, 5) {
                0 => ("SAME_UPPER", Vec::new(), Vec::new()),
                1 => ("SAME_LOWER", Vec::new(), Vec::new()),
                2 => (
                    "NOTSET",
                    Vec::new(),
                    full.iter().map(|&f| r.int(1, f)).collect(),
                ),
                _ => ("NOTSET", [begin, end].concat(), Vec::new()),
            };
            ws.extend(kernel.iter().map(|&k| k as usize));
            let cout = ws[1] * g;
            let mut b = Builder::new();
            let x = b.input(floats(seed, &xs, -1.0, 1.0));
            let w = b.constant(floats(seed + 1, &ws, -1.0, 1.0));
            let bias = bias.then(|| b.constant(floats(seed + 2, &[cout], -1.0, 1.0)));
            let op = Op::ConvTranspose {
                auto_pad: auto_pad.to_string(),
                dilations: dil,
                group: g as i64,
                kernel_shape: Vec::new(),
                output_padding: if output_shape.is_empty() {
                    out_pad
                } else {
                    vec![0; ns]
                },
                output_shape,
                pads,
                strides,
            };
            let y = b.node1(op, vec![Some(x), Some(w), bias]);
            let k: usize = ws[0] * ws[2..].iter().product::<usize>();
            dot_tol(b.finish(vec![y]), k + 1)
        },
    )
}

diff_tests! {
    gemm_forms => "gemm", 24, gemm();
    gemm_epilogue => "gemm", N, dense_epilogue(false);
    matmul_batched => "matmul", 24, matmul();
    matmul_epilogue => "matmul", N, dense_epilogue(true);
    einsum_forms => "einsum", 24, einsum();
    conv_window => "conv", 24, conv(false);
    conv_epilogue => "conv", N, conv(true);
    conv_transpose_window => "conv_transpose", 24, conv_transpose();
}
