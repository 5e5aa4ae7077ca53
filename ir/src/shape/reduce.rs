//! Shape inference of reductions (axes operand, `keepdims`, `noop_with_empty_axes`),
//! `ArgMax`/`ArgMin`, `TopK` and `CumSum`.

use super::ctx::Ctx;
use super::dims::unknown;
use super::ShapeError;
use crate::op::Op;
use crate::types::{DType, Dim, TensorType};

/// Infers the results of a reduction-family op.
pub(crate) fn infer(cx: &Ctx) -> Result<Vec<TensorType>, ShapeError> {
    let x = cx.ty(0)?;
    match cx.op {
        Op::ReduceMean {
            keepdims,
            noop_with_empty_axes,
        }
        | Op::ReduceSum {
            keepdims,
            noop_with_empty_axes,
        }
        | Op::ReduceMax {
            keepdims,
            noop_with_empty_axes,
        }
        | Op::ReduceMin {
            keepdims,
            noop_with_empty_axes,
        }
        | Op::ReduceProd {
            keepdims,
            noop_with_empty_axes,
        }
        | Op::ReduceL1 {
            keepdims,
            noop_with_empty_axes,
        }
        | Op::ReduceL2 {
            keepdims,
            noop_with_empty_axes,
        }
        | Op::ReduceSumSquare {
            keepdims,
            noop_with_empty_axes,
        }
        | Op::ReduceLogSumExp {
            keepdims,
            noop_with_empty_axes,
        }
        | Op::ReduceLogSum {
            keepdims,
            noop_with_empty_axes,
        } => {
            let dims = reduce(cx, x, *keepdims != 0, *noop_with_empty_axes != 0)?;
            Ok(vec![cx.out(x.dtype, dims)])
        }
        Op::ArgMax { axis, keepdims, .. } | Op::ArgMin { axis, keepdims, .. } => {
            let a = cx.axis(*axis, x.rank())?;
            let dims = drop_axes(&x.dims, &[a], *keepdims != 0);
            Ok(vec![cx.out(DType::I64, dims)])
        }
        Op::TopK { axis, .. } => top_k(cx, x, *axis),
        Op::CumSum { .. } => {
            cx.expect_int(1)?;
            if let Some(a) = cx.const_scalar_f64(1)? {
                cx.axis(a as i64, x.rank())?;
            }
            Ok(vec![x.clone()])
        }
        _ => Err(cx.err("is not a reduction")),
    }
}

/// Removes (or, with `keep`, sets to 1) the dimensions at `axes`.
fn drop_axes(dims: &[Dim], axes: &[usize], keep: bool) -> Vec<Dim> {
    dims.iter()
        .enumerate()
        .filter_map(|(i, d)| match (axes.contains(&i), keep) {
            (false, _) => Some(d.clone()),
            (true, true) => Some(Dim::Known(1)),
            (true, false) => None,
        })
        .collect()
}

/// The result dimensions of a `Reduce*` op.
fn reduce(cx: &Ctx, x: &TensorType, keep: bool, noop_empty: bool) -> Result<Vec<Dim>, ShapeError> {
    let r = x.rank();
    let all: Vec<usize> = (0..r).collect();
    let empty = if noop_empty {
        x.dims.clone()
    } else {
        drop_axes(&x.dims, &all, keep)
    };
    if cx.opt(1).is_none() {
        return Ok(empty);
    }
    let len = cx.expect_int_list(1)?;
    match cx.const_ints(1)? {
        Some(v) if v.is_empty() => Ok(empty),
        Some(v) => Ok(drop_axes(&x.dims, &cx.axes(&v, r)?, keep)),
        None if len == Some(0) => Ok(empty),
        // Axes computed at run time: with keepdims each dimension is itself or 1.
        None if keep => Ok(x
            .dims
            .iter()
            .map(|d| {
                if d.known() == Some(1) {
                    d.clone()
                } else {
                    unknown()
                }
            })
            .collect()),
        None => match len {
            Some(n) if n <= r => Ok(vec![unknown(); r - n]),
            Some(n) => Err(cx.err(format!(
                "operand 1 lists {n} axes, but operand 0 {x} has rank {r}"
            ))),
            None => Err(cx.err(format!(
                "cannot infer the rank: operand 1 {} (axes) is not a constant and keepdims is 0",
                cx.ty(1)?
            ))),
        },
    }
}

fn top_k(cx: &Ctx, x: &TensorType, axis: i64) -> Result<Vec<TensorType>, ShapeError> {
    let a = cx.axis(axis, x.rank())?;
    cx.expect_int(1)?;
    let kt = cx.ty(1)?;
    if kt.rank() > 1 {
        return Err(cx.shape_err(1, &["1".to_string()]));
    }
    let k = match cx.const_scalar_f64(1)? {
        Some(k) => {
            let k = k as i64;
            if k < 0 {
                return Err(cx.err(format!("operand 1 (k) is {k}, expected at least 0")));
            }
            if let Some(n) = x.dims[a].known() {
                if k as u64 > n as u64 {
                    return Err(cx.err(format!(
                        "operand 1 (k) is {k}, but operand 0 {x} has only {n} elements along axis {a}"
                    )));
                }
            }
            Dim::Known(k as usize)
        }
        None => unknown(),
    };
    let mut dims = x.dims.clone();
    dims[a] = k;
    let mut out = vec![cx.out(x.dtype, dims.clone())];
    if cx.n_outputs > 1 {
        out.push(cx.out(DType::I64, dims));
    }
    Ok(out)
}
