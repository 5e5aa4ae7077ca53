//! Differential cases of the unary elementwise ops: one node over an input of rank 0..=4, with
//! values in the op's domain and attributes from their legal ranges.

use crate::diff_tests;
use crate::gen::{dims, floats, ints, Rng};
use crate::harness::{Builder, Case};
use proptest::prelude::*;
use sparsec_ir::{Op, Tensor};

/// Cases per plain unary op.
const N: u32 = 12;

/// One `op` node over an f32 input with values in `[lo, hi)`.
fn unary(op: Op, lo: f32, hi: f32) -> impl Strategy<Value = Case> {
    (dims(0, 4), any::<u64>()).prop_map(move |(s, seed)| {
        let mut b = Builder::new();
        let x = b.input(floats(seed, &s, lo, hi));
        let y = b.node1(op.clone(), vec![Some(x)]);
        b.finish(vec![y])
    })
}

/// One node built by `op` from an attribute drawn by `attr`, over values in `[lo, hi)`.
fn unary_attr<A: Strategy>(
    attr: A,
    op: impl Fn(A::Value) -> Op + Clone + 'static,
    lo: f32,
    hi: f32,
) -> impl Strategy<Value = Case> {
    (dims(0, 4), any::<u64>(), attr).prop_map(move |(s, seed, a)| {
        let mut b = Builder::new();
        let x = b.input(floats(seed, &s, lo, hi));
        let y = b.node1(op(a), vec![Some(x)]);
        b.finish(vec![y])
    })
}

/// One `op` node over an i64 input in `-50..=50`.
fn unary_int(op: Op) -> impl Strategy<Value = Case> {
    (dims(0, 4), any::<u64>()).prop_map(move |(s, seed)| {
        let mut b = Builder::new();
        let x = b.input(ints(seed, &s, -50, 50));
        let y = b.node1(op.clone(), vec![Some(x)]);
        b.finish(vec![y])
    })
}

/// An f32 input where some elements are NaN, +inf or -inf, then `op`.
fn special_values(op: Op) -> impl Strategy<Value = Case> {
    (dims(0, 4), any::<u64>()).prop_map(move |(s, seed)| {
        let mut r = Rng::new(seed);
        let n: usize = s.iter().product();
        let v: Vec<f32> = (0..n)
            .map(|_| match r.int(0, 5) {
                0 => f32::NAN,
                1 => f32::INFINITY,
                2 => f32::NEG_INFINITY,
                _ => r.float(-3.0, 3.0),
            })
            .collect();
        let mut b = Builder::new();
        let x = b.input(Tensor::from_f32(&s, v));
        let y = b.node1(op.clone(), vec![Some(x)]);
        b.finish(vec![y])
    })
}

/// Extreme values: NaN, infinities, signed zeros, huge and overflowing magnitudes, and ordinary
/// values, so the JIT's vector math must match the interpreter at the edges of its range.
fn extreme_values(op: Op) -> impl Strategy<Value = Case> {
    (dims(0, 4), any::<u64>()).prop_map(move |(s, seed)| {
        let mut r = Rng::new(seed);
        let n: usize = s.iter().product();
        let special = [
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            0.0,
            -0.0,
            1e30,
            -1e30,
            100.0,
            -100.0,
            20.0,
            -20.0,
            88.8,
            -88.8,
            1e-30,
        ];
        let v: Vec<f32> = (0..n)
            .map(|_| match r.int(0, 27) {
                k if (k as usize) < special.len() => special[k as usize],
                _ => r.float(-8.0, 8.0),
            })
            .collect();
        let mut b = Builder::new();
        let x = b.input(Tensor::from_f32(&s, v));
        let y = b.node1(op.clone(), vec![Some(x)]);
        b.finish(vec![y])
    })
}

/// `Not` over a bool input.
fn not() -> impl Strategy<Value = Case> {
    (dims(0, 4), any::<u64>()).prop_map(|(s, seed)| {
        let mut b = Builder::new();
        let x = b.input(crate::gen::bools(seed, &s));
        let y = b.node1(Op::Not {}, vec![Some(x)]);
        b.finish(vec![y])
    })
}

/// A chain of two to four JIT-able unary ops with a broadcast add in the middle: exercises the
/// fused elementwise kernels, not single nodes.
fn chain() -> impl Strategy<Value = Case> {
    let ops = prop::sample::select(vec![
        Op::Relu {},
        Op::Tanh {},
        Op::Sigmoid {},
        Op::Exp {},
        Op::Abs {},
        Op::Neg {},
        Op::Erf {},
        Op::Softplus {},
        Op::HardSwish {},
        Op::Gelu {
            approximate: "tanh".into(),
        },
        Op::LeakyRelu { alpha: 0.1 },
    ]);
    (
        crate::gen::broadcast_pair(4),
        any::<u64>(),
        prop::collection::vec(ops, 2..=4),
    )
        .prop_map(|((a, c), seed, ops)| {
            let mut b = Builder::new();
            let x = b.input(floats(seed, &a, -2.0, 2.0));
            let z = b.input(floats(seed + 1, &c, -2.0, 2.0));
            let mut cur = b.node1(ops[0].clone(), vec![Some(x)]);
            cur = b.node1(Op::Add {}, vec![Some(cur), Some(z)]);
            for op in &ops[1..] {
                cur = b.node1(op.clone(), vec![Some(cur)]);
            }
            b.finish(vec![cur])
        })
}

diff_tests! {
    neg => "neg", N, unary(Op::Neg {}, -5.0, 5.0);
    neg_i64 => "neg", N, unary_int(Op::Neg {});
    abs => "abs", N, unary(Op::Abs {}, -5.0, 5.0);
    abs_i64 => "abs", N, unary_int(Op::Abs {});
    sqrt => "sqrt", N, unary(Op::Sqrt {}, 0.0, 10.0);
    reciprocal => "reciprocal", N, unary(Op::Reciprocal {}, 0.1, 5.0);
    exp => "exp", N, unary(Op::Exp {}, -10.0, 10.0);
    log => "log", N, unary(Op::Log {}, 0.01, 10.0);
    erf => "erf", N, unary(Op::Erf {}, -4.0, 4.0);
    tanh => "tanh", N, unary(Op::Tanh {}, -6.0, 6.0);
    sigmoid => "sigmoid", N, unary(Op::Sigmoid {}, -10.0, 10.0);
    relu => "relu", N, unary(Op::Relu {}, -5.0, 5.0);
    sin => "sin", N, unary(Op::Sin {}, -6.0, 6.0);
    cos => "cos", N, unary(Op::Cos {}, -6.0, 6.0);
    tan => "tan", N, unary(Op::Tan {}, -1.4, 1.4);
    asin => "asin", N, unary(Op::Asin {}, -0.99, 0.99);
    acos => "acos", N, unary(Op::Acos {}, -0.99, 0.99);
    atan => "atan", N, unary(Op::Atan {}, -5.0, 5.0);
    sinh => "sinh", N, unary(Op::Sinh {}, -5.0, 5.0);
    cosh => "cosh", N, unary(Op::Cosh {}, -5.0, 5.0);
    asinh => "asinh", N, unary(Op::Asinh {}, -5.0, 5.0);
    acosh => "acosh", N, unary(Op::Acosh {}, 1.0, 10.0);
    atanh => "atanh", N, unary(Op::Atanh {}, -0.99, 0.99);
    floor => "floor", N, unary(Op::Floor {}, -5.0, 5.0);
    ceil => "ceil", N, unary(Op::Ceil {}, -5.0, 5.0);
    round => "round", N, unary(Op::Round {}, -5.0, 5.0);
    sign => "sign", N, unary(Op::Sign {}, -5.0, 5.0);
    sign_i64 => "sign", N, unary_int(Op::Sign {});
    softsign => "softsign", N, unary(Op::Softsign {}, -5.0, 5.0);
    softplus => "softplus", N, unary(Op::Softplus {}, -10.0, 10.0);
    hard_swish => "hard_swish", N, unary(Op::HardSwish {}, -5.0, 5.0);
    mish => "mish", N, unary(Op::Mish {}, -5.0, 5.0);
    not_bool => "not", N, not();
    is_nan => "is_nan", N, special_values(Op::IsNaN {});
    is_inf => "is_inf", N, (0i64..=1, 0i64..=1).prop_flat_map(|(n, p)| special_values(Op::IsInf {
        detect_negative: n,
        detect_positive: p,
    }));
    identity => "identity", N, unary(Op::Identity {}, -5.0, 5.0);
    leaky_relu => "leaky_relu", N, unary_attr(0.0f32..1.0, |alpha| Op::LeakyRelu { alpha }, -5.0, 5.0);
    elu => "elu", N, unary_attr(0.1f32..2.0, |alpha| Op::Elu { alpha }, -5.0, 5.0);
    selu => "selu", N, unary_attr((1.0f32..2.0, 0.5f32..1.5), |(alpha, gamma)| Op::Selu { alpha, gamma }, -5.0, 5.0);
    celu => "celu", N, unary_attr(0.2f32..2.0, |alpha| Op::Celu { alpha }, -5.0, 5.0);
    hard_sigmoid => "hard_sigmoid", N, unary_attr((0.05f32..1.0, 0.0f32..1.0), |(alpha, beta)| Op::HardSigmoid { alpha, beta }, -5.0, 5.0);
    thresholded_relu => "thresholded_relu", N, unary_attr(-1.0f32..2.0, |alpha| Op::ThresholdedRelu { alpha }, -5.0, 5.0);
    gelu => "gelu", N, unary_attr(prop::sample::select(vec!["none", "tanh"]), |a| Op::Gelu { approximate: a.to_string() }, -5.0, 5.0);
    shrink => "shrink", N, unary_attr((0.0f32..1.0, 0.0f32..2.0), |(bias, lambd)| Op::Shrink { bias, lambd }, -5.0, 5.0);
    elementwise_chain => "add", 24, chain();
    extreme_relu => "relu", N, extreme_values(Op::Relu {});
    extreme_leaky_relu => "leaky_relu", N, extreme_values(Op::LeakyRelu { alpha: 0.1 });
    extreme_abs => "abs", N, extreme_values(Op::Abs {});
    extreme_neg => "neg", N, extreme_values(Op::Neg {});
    extreme_sqrt => "sqrt", N, extreme_values(Op::Sqrt {});
    extreme_reciprocal => "reciprocal", N, extreme_values(Op::Reciprocal {});
    extreme_exp => "exp", N, extreme_values(Op::Exp {});
    extreme_log => "log", N, extreme_values(Op::Log {});
    extreme_erf => "erf", N, extreme_values(Op::Erf {});
    extreme_tanh => "tanh", N, extreme_values(Op::Tanh {});
    extreme_sigmoid => "sigmoid", N, extreme_values(Op::Sigmoid {});
    extreme_softplus => "softplus", N, extreme_values(Op::Softplus {});
    extreme_hard_swish => "hard_swish", N, extreme_values(Op::HardSwish {});
    extreme_elu => "elu", N, extreme_values(Op::Elu { alpha: 1.0 });
    extreme_hard_sigmoid => "hard_sigmoid", N, extreme_values(Op::HardSigmoid { alpha: 0.2, beta: 0.5 });
    extreme_gelu => "gelu", N, extreme_values(Op::Gelu { approximate: "none".into() });
    extreme_gelu_tanh => "gelu", N, extreme_values(Op::Gelu { approximate: "tanh".into() });
}
