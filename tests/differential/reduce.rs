//! Differential cases of the reductions (`reduce_*` with an axes operand, `keepdims` and
//! `noop_with_empty_axes`), the arg-reductions (ties included), `TopK` and `CumSum`.

use crate::diff_tests;
use crate::gen::{dims, floats, i64s, ints, subset, whole_floats};
use crate::harness::{Builder, Case};
use proptest::prelude::*;
use sparsec_ir::{Op, Tensor};

/// Cases per op.
const N: u32 = 16;

/// Which reduce op, by name, with its attributes.
fn reduce_op(name: &str, keepdims: i64, noop: i64) -> Op {
    let (k, n) = (keepdims, noop);
    match name {
        "reduce_mean" => Op::ReduceMean {
            keepdims: k,
            noop_with_empty_axes: n,
        },
        "reduce_sum" => Op::ReduceSum {
            keepdims: k,
            noop_with_empty_axes: n,
        },
        "reduce_max" => Op::ReduceMax {
            keepdims: k,
            noop_with_empty_axes: n,
        },
        "reduce_min" => Op::ReduceMin {
            keepdims: k,
            noop_with_empty_axes: n,
        },
        "reduce_prod" => Op::ReduceProd {
            keepdims: k,
            noop_with_empty_axes: n,
        },
        "reduce_l1" => Op::ReduceL1 {
            keepdims: k,
            noop_with_empty_axes: n,
        },
        "reduce_l2" => Op::ReduceL2 {
            keepdims: k,
            noop_with_empty_axes: n,
        },
        "reduce_sum_square" => Op::ReduceSumSquare {
            keepdims: k,
            noop_with_empty_axes: n,
        },
        "reduce_log_sum_exp" => Op::ReduceLogSumExp {
            keepdims: k,
            noop_with_empty_axes: n,
        },
        "reduce_log_sum" => Op::ReduceLogSum {
            keepdims: k,
            noop_with_empty_axes: n,
        },
        other => panic!("not a reduce op: {other}"),
    }
}

/// A reduce op over a random subset of axes (written with negative indices half the time),
/// given as a constant operand, as an empty operand, or omitted.
fn reduce(name: &'static str, lo: f32, hi: f32) -> impl Strategy<Value = Case> {
    (dims(1, 4), any::<u64>(), 0i64..=1, 0i64..=1, 0u8..6).prop_map(
        move |(s, seed, keepdims, noop, form)| {
            let rank = s.len() as i64;
            let axes: Vec<i64> = subset(s.len(), seed)
                .into_iter()
                .map(|a| {
                    if seed.is_multiple_of(2) {
                        a as i64 - rank
                    } else {
                        a as i64
                    }
                })
                .collect();
            let mut b = Builder::new();
            let x = b.input(floats(seed, &s, lo, hi));
            let axes_operand = match form {
                0 => None,
                1 => Some(b.constant(i64s(&[]))),
                _ => Some(b.constant(i64s(&axes))),
            };
            let r = b.node1(reduce_op(name, keepdims, noop), vec![Some(x), axes_operand]);
            b.finish(vec![r]).tol(1e-4, 1e-4)
        },
    )
}

/// `ArgMax`/`ArgMin` over whole-number values (so ties occur) along a random axis.
fn arg(max: bool) -> impl Strategy<Value = Case> {
    (
        dims(1, 4),
        any::<u64>(),
        any::<prop::sample::Index>(),
        0i64..=1,
        0i64..=1,
    )
        .prop_map(move |(s, seed, axis, keepdims, select_last_index)| {
            let axis = axis.index(s.len()) as i64
                - if seed.is_multiple_of(2) {
                    s.len() as i64
                } else {
                    0
                };
            let op = if max {
                Op::ArgMax {
                    axis,
                    keepdims,
                    select_last_index,
                }
            } else {
                Op::ArgMin {
                    axis,
                    keepdims,
                    select_last_index,
                }
            };
            let mut b = Builder::new();
            let x = b.input(whole_floats(seed, &s, -3, 3));
            let r = b.node1(op, vec![Some(x)]);
            b.finish(vec![r])
        })
}

/// `TopK` with `k` in `1..=dim` along a random axis, both results.
fn top_k() -> impl Strategy<Value = Case> {
    (
        dims(1, 4),
        any::<u64>(),
        any::<prop::sample::Index>(),
        any::<prop::sample::Index>(),
        0i64..=1,
    )
        .prop_map(|(s, seed, axis, k, largest)| {
            let a = axis.index(s.len());
            let k = k.index(s[a]) as i64 + 1;
            let mut b = Builder::new();
            let x = b.input(floats(seed, &s, -5.0, 5.0));
            let kv = b.constant(Tensor::from_i64(&[1], vec![k]));
            let op = Op::TopK {
                axis: a as i64,
                largest,
                sorted: 1,
            };
            let r = b.node(op, vec![Some(x), Some(kv)], 2);
            b.finish(r)
        })
}

/// `CumSum` along a constant axis operand, `exclusive` and `reverse` drawn; f32 and i64.
fn cum_sum(int: bool) -> impl Strategy<Value = Case> {
    (
        dims(1, 4),
        any::<u64>(),
        any::<prop::sample::Index>(),
        0i64..=1,
        0i64..=1,
    )
        .prop_map(move |(s, seed, axis, exclusive, reverse)| {
            let axis = axis.index(s.len()) as i64;
            let mut b = Builder::new();
            let x = b.input(if int {
                ints(seed, &s, -100, 100)
            } else {
                floats(seed, &s, -5.0, 5.0)
            });
            let ax = b.constant(Tensor::scalar_i64(axis));
            let r = b.node1(Op::CumSum { exclusive, reverse }, vec![Some(x), Some(ax)]);
            b.finish(vec![r]).tol(1e-4, 1e-4)
        })
}

diff_tests! {
    reduce_mean => "reduce_mean", N, reduce("reduce_mean", -5.0, 5.0);
    reduce_sum => "reduce_sum", N, reduce("reduce_sum", -5.0, 5.0);
    reduce_max => "reduce_max", N, reduce("reduce_max", -5.0, 5.0);
    reduce_min => "reduce_min", N, reduce("reduce_min", -5.0, 5.0);
    reduce_prod => "reduce_prod", N, reduce("reduce_prod", 0.7, 1.3);
    reduce_l1 => "reduce_l1", N, reduce("reduce_l1", -5.0, 5.0);
    reduce_l2 => "reduce_l2", N, reduce("reduce_l2", -5.0, 5.0);
    reduce_sum_square => "reduce_sum_square", N, reduce("reduce_sum_square", -5.0, 5.0);
    reduce_log_sum_exp => "reduce_log_sum_exp", N, reduce("reduce_log_sum_exp", -5.0, 5.0);
    reduce_log_sum => "reduce_log_sum", N, reduce("reduce_log_sum", 0.1, 5.0);
    arg_max => "arg_max", N, arg(true);
    arg_min => "arg_min", N, arg(false);
    top_k_values_indices => "top_k", N, top_k();
    cum_sum_f32 => "cum_sum", N, cum_sum(false);
    cum_sum_i64 => "cum_sum", N, cum_sum(true);
}
