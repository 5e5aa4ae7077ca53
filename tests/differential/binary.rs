//! Differential cases of the binary and variadic elementwise ops: broadcast operand pairs (one
//! operand's leading dims dropped or set to 1), float, integer and bool element types.

use crate::diff_tests;
use crate::gen::{
    bools, broadcast_of, broadcast_pair, dims, extreme, floats, ints, ints_of, mutual_pair,
    whole_floats,
};
use crate::harness::{Builder, Case};
use proptest::prelude::*;
use sparsec_ir::{DType, Op, Tensor};

/// Cases per binary op.
const N: u32 = 16;

/// How to fill each operand.
#[derive(Clone, Copy)]
enum Fill {
    /// f32 in `[lo, hi)`.
    F(f32, f32),
    /// f32 with values away from zero: magnitude in `[0.5, 4)`, either sign.
    NonZero,
    /// Whole-number f32 in `-3..=3`, so comparisons see ties.
    Whole,
    /// i64 in `lo..=hi`, zero excluded when `lo < 0 < hi` and `nonzero`.
    I(i64, i64, bool),
    /// Integers of another dtype in `lo..=hi`.
    T(DType, i64, i64),
    /// bool.
    B,
    /// f32 with NaN, infinities, signed zeros and huge values mixed in.
    Extreme,
}

fn fill(f: Fill, seed: u64, s: &[usize]) -> Tensor {
    match f {
        Fill::F(lo, hi) => floats(seed, s, lo, hi),
        Fill::NonZero => {
            let t = floats(seed, s, 0.5, 4.0);
            let signs = bools(seed ^ 7, s);
            let v: Vec<f32> = t
                .to_f32_vec()
                .iter()
                .zip(signs.to_f64_vec())
                .map(|(x, neg)| if neg != 0.0 { -x } else { *x })
                .collect();
            Tensor::from_f32(s, v)
        }
        Fill::Whole => whole_floats(seed, s, -3, 3),
        Fill::I(lo, hi, nonzero) => {
            let t = ints(seed, s, lo, hi);
            if nonzero {
                let v = t.to_i64_vec();
                Tensor::from_i64(
                    s,
                    v.into_iter().map(|x| if x == 0 { 1 } else { x }).collect(),
                )
            } else {
                t
            }
        }
        Fill::T(d, lo, hi) => ints_of(d, seed, s, lo, hi),
        Fill::B => bools(seed, s),
        Fill::Extreme => extreme(seed, s, 2),
    }
}

/// `op(a, b)` over a broadcast pair.
fn binary(op: Op, fa: Fill, fb: Fill) -> impl Strategy<Value = Case> {
    (broadcast_pair(4), any::<u64>()).prop_map(move |((sa, sb), seed)| {
        let mut b = Builder::new();
        let x = b.input(fill(fa, seed, &sa));
        let y = b.input(fill(fb, seed.wrapping_add(1), &sb));
        let r = b.node1(op.clone(), vec![Some(x), Some(y)]);
        b.finish(vec![r])
    })
}

/// `op(a, b)` where both operands broadcast (`[3, 1]` with `[1, 4]`, say).
fn binary_mutual(op: Op) -> impl Strategy<Value = Case> {
    (mutual_pair(4), any::<u64>()).prop_map(move |((sa, sb), seed)| {
        let mut b = Builder::new();
        let x = b.input(floats(seed, &sa, -3.0, 3.0));
        let y = b.input(floats(seed.wrapping_add(1), &sb, -3.0, 3.0));
        let r = b.node1(op.clone(), vec![Some(x), Some(y)]);
        b.finish(vec![r])
    })
}

/// `op(a, c)` where `c` is a constant (a weight) broadcasting to `a`.
fn binary_const(op: Op) -> impl Strategy<Value = Case> {
    (dims(1, 4), any::<u64>()).prop_map(move |(s, seed)| {
        let cs = broadcast_of(&s, seed);
        let mut b = Builder::new();
        let x = b.input(floats(seed, &s, -3.0, 3.0));
        let c = b.constant(floats(seed + 1, &cs, -3.0, 3.0));
        let r = b.node1(op.clone(), vec![Some(x), Some(c)]);
        b.finish(vec![r])
    })
}

/// `PRelu(x, slope)` with the slope broadcasting to `x`.
fn prelu(fx: Fill) -> impl Strategy<Value = Case> {
    (dims(1, 4), any::<u64>()).prop_map(move |(s, seed)| {
        let ss = broadcast_of(&s, seed);
        let mut b = Builder::new();
        let x = b.input(fill(fx, seed, &s));
        let slope = b.input(floats(seed + 1, &ss, -1.0, 1.0));
        let r = b.node1(Op::PRelu {}, vec![Some(x), Some(slope)]);
        b.finish(vec![r])
    })
}

/// A variadic `op` over one to four operands, each broadcasting to a common shape.
fn variadic(op: Op, fl: Fill) -> impl Strategy<Value = Case> {
    (dims(0, 4), any::<u64>(), 1usize..=4).prop_map(move |(s, seed, n)| {
        let mut b = Builder::new();
        let xs: Vec<Option<sparsec_ir::ValueId>> = (0..n)
            .map(|k| {
                let k = k as u64;
                // The first operand keeps the full shape so the result has it.
                let sk = if k == 0 {
                    s.clone()
                } else {
                    broadcast_of(&s, seed + k)
                };
                Some(b.input(fill(fl, seed.wrapping_add(k * 13), &sk)))
            })
            .collect();
        let r = b.node1(op.clone(), xs);
        b.finish(vec![r])
    })
}

diff_tests! {
    add => "add", N, binary(Op::Add {}, Fill::F(-5.0, 5.0), Fill::F(-5.0, 5.0));
    add_const => "add", N, binary_const(Op::Add {});
    add_i64 => "add", N, binary(Op::Add {}, Fill::I(-100, 100, false), Fill::I(-100, 100, false));
    add_i32 => "add", N, binary(Op::Add {}, Fill::T(DType::I32, -100, 100), Fill::T(DType::I32, -100, 100));
    sub => "sub", N, binary(Op::Sub {}, Fill::F(-5.0, 5.0), Fill::F(-5.0, 5.0));
    sub_i64 => "sub", N, binary(Op::Sub {}, Fill::I(-100, 100, false), Fill::I(-100, 100, false));
    mul => "mul", N, binary(Op::Mul {}, Fill::F(-5.0, 5.0), Fill::F(-5.0, 5.0));
    mul_const => "mul", N, binary_const(Op::Mul {});
    mul_i64 => "mul", N, binary(Op::Mul {}, Fill::I(-100, 100, false), Fill::I(-100, 100, false));
    div => "div", N, binary(Op::Div {}, Fill::F(-5.0, 5.0), Fill::NonZero);
    div_i64 => "div", N, binary(Op::Div {}, Fill::I(-100, 100, false), Fill::I(-9, 9, true));
    pow => "pow", N, binary(Op::Pow {}, Fill::F(0.1, 3.0), Fill::F(-2.0, 2.0));
    pow_whole => "pow", N, binary(Op::Pow {}, Fill::F(-3.0, 3.0), Fill::Whole);
    mod_fmod => "mod", N, binary(Op::Mod { fmod: 1 }, Fill::F(-10.0, 10.0), Fill::NonZero);
    mod_i64 => "mod", N, binary(Op::Mod { fmod: 0 }, Fill::I(-100, 100, false), Fill::I(-9, 9, true));
    mod_i64_fmod => "mod", N, binary(Op::Mod { fmod: 1 }, Fill::I(-100, 100, false), Fill::I(-9, 9, true));
    equal => "equal", N, binary(Op::Equal {}, Fill::Whole, Fill::Whole);
    equal_i64 => "equal", N, binary(Op::Equal {}, Fill::I(-3, 3, false), Fill::I(-3, 3, false));
    greater => "greater", N, binary(Op::Greater {}, Fill::Whole, Fill::Whole);
    less => "less", N, binary(Op::Less {}, Fill::Whole, Fill::Whole);
    greater_or_equal => "greater_or_equal", N, binary(Op::GreaterOrEqual {}, Fill::Whole, Fill::Whole);
    less_or_equal => "less_or_equal", N, binary(Op::LessOrEqual {}, Fill::I(-3, 3, false), Fill::I(-3, 3, false));
    and => "and", N, binary(Op::And {}, Fill::B, Fill::B);
    or => "or", N, binary(Op::Or {}, Fill::B, Fill::B);
    xor => "xor", N, binary(Op::Xor {}, Fill::B, Fill::B);
    prelu_slope => "prelu", N, prelu(Fill::F(-3.0, 3.0));
    sum => "sum", N, variadic(Op::Sum {}, Fill::F(-5.0, 5.0));
    sum_i64 => "sum", N, variadic(Op::Sum {}, Fill::I(-100, 100, false));
    max => "max", N, variadic(Op::Max {}, Fill::Whole);
    min => "min", N, variadic(Op::Min {}, Fill::F(-5.0, 5.0));
    min_i64 => "min", N, variadic(Op::Min {}, Fill::I(-100, 100, false));
    mean => "mean", N, variadic(Op::Mean {}, Fill::F(-5.0, 5.0));
    add_mutual => "add", N, binary_mutual(Op::Add {});
    mul_mutual => "mul", N, binary_mutual(Op::Mul {});
    sub_mutual => "sub", N, binary_mutual(Op::Sub {});
    div_mutual => "div", N, binary_mutual(Op::Div {});
    extreme_add => "add", N, binary(Op::Add {}, Fill::Extreme, Fill::Extreme);
    extreme_sub => "sub", N, binary(Op::Sub {}, Fill::Extreme, Fill::Extreme);
    extreme_mul => "mul", N, binary(Op::Mul {}, Fill::Extreme, Fill::Extreme);
    extreme_div => "div", N, binary(Op::Div {}, Fill::Extreme, Fill::Extreme);
    extreme_pow => "pow", N, binary(Op::Pow {}, Fill::Extreme, Fill::Extreme);
    extreme_max => "max", N, variadic(Op::Max {}, Fill::Extreme);
    extreme_min => "min", N, variadic(Op::Min {}, Fill::Extreme);
    extreme_prelu => "prelu", N, prelu(Fill::Extreme);
}
