//! Differential cases of the misc ops: `Cast` and `CastLike` between element types, `Clip` with
//! constant, input or missing bounds, `Where` with broadcast operands, and inference `Dropout`.

use crate::diff_tests;
use crate::gen::{bools, broadcast_of, dims, floats, ints, ints_of};
use crate::harness::{Builder, Case};
use proptest::prelude::*;
use sparsec_ir::{DType, Op, Tensor};

/// Cases per op.
const N: u32 = 16;

/// An input of `dtype` with values that exercise the conversions (fractions, negatives, values
/// beyond the 8-bit ranges).
fn source(dtype: DType, seed: u64, s: &[usize]) -> Tensor {
    match dtype {
        DType::F32 => floats(seed, s, -300.0, 300.0),
        DType::Bool => bools(seed, s),
        d => ints_of(d, seed, s, -100, 100),
    }
}

/// Element types a cast may go to or from.
fn dtypes() -> impl Strategy<Value = DType> {
    prop::sample::select(vec![
        DType::F32,
        DType::F64,
        DType::F16,
        DType::I64,
        DType::I32,
        DType::I8,
        DType::U8,
        DType::Bool,
    ])
}

/// `Cast` (or `CastLike`, whose second operand only gives the type) from one type to another.
fn cast(like: bool) -> impl Strategy<Value = Case> {
    let from = prop::sample::select(vec![DType::F32, DType::I64, DType::I32, DType::Bool]);
    (dims(0, 4), any::<u64>(), from, dtypes()).prop_map(move |(s, seed, from, to)| {
        let mut b = Builder::new();
        let x = b.input(source(from, seed, &s));
        let y = if like {
            let t = b.input(Tensor::from_f64s(to, &[1], [1.0]));
            b.node1(Op::CastLike {}, vec![Some(x), Some(t)])
        } else {
            b.node1(Op::Cast { to }, vec![Some(x)])
        };
        b.finish(vec![y])
    })
}

/// `Clip` of f32 or i64 with each bound a constant, an input or absent.
fn clip() -> impl Strategy<Value = Case> {
    (dims(0, 4), any::<u64>(), 0u8..3, 0u8..3, any::<bool>()).prop_map(
        |(s, seed, lo_form, hi_form, int)| {
            let mut b = Builder::new();
            let x = b.input(if int {
                ints(seed, &s, -10, 10)
            } else {
                floats(seed, &s, -3.0, 3.0)
            });
            let mut bound = |form: u8, v: f64| {
                let t = if int {
                    Tensor::scalar_i64(v as i64)
                } else {
                    Tensor::scalar_f32(v as f32)
                };
                match form {
                    0 => None,
                    1 => Some(b.constant(t)),
                    _ => Some(b.input(t)),
                }
            };
            let lo = bound(lo_form, -1.5);
            let hi = bound(hi_form, 2.0);
            let y = b.node1(Op::Clip {}, vec![Some(x), lo, hi]);
            b.finish(vec![y])
        },
    )
}

/// `Where` with the condition and both branches broadcasting to a common shape.
fn where_() -> impl Strategy<Value = Case> {
    (dims(0, 4), any::<u64>(), any::<bool>()).prop_map(|(s, seed, int)| {
        let sc = broadcast_of(&s, seed);
        let sa = broadcast_of(&s, seed + 1);
        let mut b = Builder::new();
        let c = b.input(bools(seed, &sc));
        let (a, bb) = if int {
            (ints(seed + 2, &sa, -9, 9), ints(seed + 3, &s, -9, 9))
        } else {
            (
                floats(seed + 2, &sa, -3.0, 3.0),
                floats(seed + 3, &s, -3.0, 3.0),
            )
        };
        let a = b.input(a);
        let bb = b.input(bb);
        let y = b.node1(Op::Where {}, vec![Some(c), Some(a), Some(bb)]);
        b.finish(vec![y])
    })
}

/// Inference `Dropout` with optional ratio and `training_mode=false` operands, with and without
/// the mask result.
fn dropout() -> impl Strategy<Value = Case> {
    (dims(0, 4), any::<u64>(), any::<bool>(), any::<bool>()).prop_map(
        |(s, seed, operands, mask)| {
            let mut b = Builder::new();
            let x = b.input(floats(seed, &s, -3.0, 3.0));
            let mut ins = vec![Some(x)];
            if operands {
                ins.push(Some(b.constant(Tensor::scalar_f32(0.3))));
                ins.push(Some(b.constant(Tensor::from_bool(&[], vec![false]))));
            }
            let ys = b.node(Op::Dropout {}, ins, if mask { 2 } else { 1 });
            b.finish(ys)
        },
    )
}

diff_tests! {
    cast_types => "cast", 32, cast(false);
    cast_like_types => "cast_like", N, cast(true);
    clip_bounds => "clip", N, clip();
    where_broadcast => "where", N, where_();
    dropout_inference => "dropout", N, dropout();
}
