//! The `Reduce` family: `Reduce*` over the axes operand, `ArgMax`/`ArgMin`, `TopK` and `CumSum`.
//!
//! Float reductions accumulate in `f64` and round once to the element type. Integer `Sum`,
//! `Prod`, `Max`, `Min`, `L1` and `SumSquare` are exact (wrapping like numpy); the other integer
//! reductions are computed in `f64` and truncated, as numpy's `astype` does.

use super::elementwise::bcast::walk;
use super::util::{arg, norm_axis, opt_arg};
use super::InterpError;
use sparsec_ir::{DType, Op, Tensor, TensorData};
use std::cmp::Ordering;

/// Evaluates an op of the reduce family.
pub(crate) fn eval(
    op: &Op,
    inputs: &[Option<&Tensor>],
    _n_outputs: usize,
) -> Result<Vec<Tensor>, InterpError> {
    let (kind, keepdims, noop) = match op {
        Op::ReduceMean {
            keepdims,
            noop_with_empty_axes,
        } => (Kind::Mean, keepdims, noop_with_empty_axes),
        Op::ReduceSum {
            keepdims,
            noop_with_empty_axes,
        } => (Kind::Sum, keepdims, noop_with_empty_axes),
        Op::ReduceMax {
            keepdims,
            noop_with_empty_axes,
        } => (Kind::Max, keepdims, noop_with_empty_axes),
        Op::ReduceMin {
            keepdims,
            noop_with_empty_axes,
        } => (Kind::Min, keepdims, noop_with_empty_axes),
        Op::ReduceProd {
            keepdims,
            noop_with_empty_axes,
        } => (Kind::Prod, keepdims, noop_with_empty_axes),
        Op::ReduceL1 {
            keepdims,
            noop_with_empty_axes,
        } => (Kind::L1, keepdims, noop_with_empty_axes),
        Op::ReduceL2 {
            keepdims,
            noop_with_empty_axes,
        } => (Kind::L2, keepdims, noop_with_empty_axes),
        Op::ReduceSumSquare {
            keepdims,
            noop_with_empty_axes,
        } => (Kind::SumSquare, keepdims, noop_with_empty_axes),
        Op::ReduceLogSumExp {
            keepdims,
            noop_with_empty_axes,
        } => (Kind::LogSumExp, keepdims, noop_with_empty_axes),
        Op::ReduceLogSum {
            keepdims,
            noop_with_empty_axes,
        } => (Kind::LogSum, keepdims, noop_with_empty_axes),
        Op::ArgMax {
            axis,
            keepdims,
            select_last_index,
        } => {
            let x = arg(op, inputs, 0)?;
            return Ok(vec![arg_extreme(
                op,
                x,
                *axis,
                *keepdims != 0,
                *select_last_index != 0,
                true,
            )?]);
        }
        Op::ArgMin {
            axis,
            keepdims,
            select_last_index,
        } => {
            let x = arg(op, inputs, 0)?;
            return Ok(vec![arg_extreme(
                op,
                x,
                *axis,
                *keepdims != 0,
                *select_last_index != 0,
                false,
            )?]);
        }
        Op::TopK { axis, largest, .. } => return top_k(op, inputs, *axis, *largest != 0),
        Op::CumSum { exclusive, reverse } => {
            return Ok(vec![cum_sum(op, inputs, *exclusive != 0, *reverse != 0)?])
        }
        _ => return Err(InterpError::unsupported(op, "not a reduce op")),
    };
    let x = arg(op, inputs, 0)?;
    let Some(axes) = reduced_axes(op, x.rank(), opt_arg(inputs, 1), *noop != 0)? else {
        return Ok(vec![x.clone()]);
    };
    Ok(vec![reduce(op, kind, x, &axes, *keepdims != 0)?])
}

/// The reductions of `Reduce*`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Sum.
    Sum,
    /// Mean.
    Mean,
    /// Maximum.
    Max,
    /// Minimum.
    Min,
    /// Product.
    Prod,
    /// Sum of absolute values.
    L1,
    /// Square root of the sum of squares.
    L2,
    /// Sum of squares.
    SumSquare,
    /// `ln(sum(e^x))`.
    LogSumExp,
    /// `ln(sum(x))`.
    LogSum,
}

/// Which axes to reduce: a mask over the input axes, or `None` for the identity (empty axes with
/// `noop_with_empty_axes`). Absent or empty axes mean every axis.
fn reduced_axes(
    op: &Op,
    rank: usize,
    axes: Option<&Tensor>,
    noop: bool,
) -> Result<Option<Vec<bool>>, InterpError> {
    let list = match axes {
        Some(t) if t.numel() > 0 => {
            if !t.dtype().is_int() {
                return Err(InterpError::invalid(
                    op,
                    format!("axes operand has element type {}", t.dtype()),
                ));
            }
            t.to_i64_vec()
        }
        _ if noop => return Ok(None),
        _ => return Ok(Some(vec![true; rank])),
    };
    let mut mask = vec![false; rank];
    for a in list {
        let ax = norm_axis(op, a, rank)?;
        if ax >= rank {
            return Err(InterpError::invalid(
                op,
                format!("axis {a} out of range for rank {rank}"),
            ));
        }
        mask[ax] = true;
    }
    Ok(Some(mask))
}

/// Folds every element of `x` (shape `shape`) into its accumulator of `keep_shape` (the shape with
/// reduced axes set to 1).
pub(crate) fn fold<T: Copy, A: Copy>(
    x: &[T],
    shape: &[usize],
    keep_shape: &[usize],
    init: A,
    f: impl Fn(A, T) -> A,
) -> Vec<A> {
    let n_out: usize = keep_shape.iter().product();
    let mut acc = vec![init; n_out];
    if n_out == 1 {
        acc[0] = x.iter().fold(init, |a, &v| f(a, v));
        return acc;
    }
    let mut i = 0;
    walk(shape, [keep_shape], |[j]| {
        acc[j] = f(acc[j], x[i]);
        i += 1;
    });
    acc
}

/// The smallest and largest value of an integer element type.
fn int_range(d: DType) -> (i64, i64) {
    match d {
        DType::I32 => (i32::MIN as i64, i32::MAX as i64),
        DType::I8 => (i8::MIN as i64, i8::MAX as i64),
        DType::U8 => (0, u8::MAX as i64),
        _ => (i64::MIN, i64::MAX),
    }
}

/// Integer storage of type `d` from `i64` values, wrapping like a C cast.
fn from_i64s(d: DType, v: Vec<i64>) -> TensorData {
    match d {
        DType::I32 => TensorData::I32(v.into_iter().map(|x| x as i32).collect()),
        DType::I8 => TensorData::I8(v.into_iter().map(|x| x as i8).collect()),
        DType::U8 => TensorData::U8(v.into_iter().map(|x| x as u8).collect()),
        _ => TensorData::I64(v),
    }
}

/// One `Reduce*` over the axes in `mask`.
fn reduce(
    op: &Op,
    kind: Kind,
    x: &Tensor,
    mask: &[bool],
    keepdims: bool,
) -> Result<Tensor, InterpError> {
    let shape = x.shape();
    let keep_shape: Vec<usize> = shape
        .iter()
        .zip(mask)
        .map(|(&d, &m)| if m { 1 } else { d })
        .collect();
    let out_shape: Vec<usize> = if keepdims {
        keep_shape.clone()
    } else {
        shape
            .iter()
            .zip(mask)
            .filter(|(_, &m)| !m)
            .map(|(&d, _)| d)
            .collect()
    };
    let count = x.numel() / keep_shape.iter().product::<usize>().max(1);
    let dtype = x.dtype();
    let data = match x.data() {
        TensorData::F32(v) => TensorData::from_f64s(
            dtype,
            reduce_f64(kind, v, shape, &keep_shape, count, |x| x as f64),
        ),
        TensorData::F64(v) => {
            TensorData::F64(reduce_f64(kind, v, shape, &keep_shape, count, |x| x))
        }
        TensorData::F16(v) => TensorData::from_f64s(
            dtype,
            reduce_f64(kind, v, shape, &keep_shape, count, |x| x.to_f64()),
        ),
        TensorData::Bool(v) => TensorData::Bool(match kind {
            Kind::Max => fold(v, shape, &keep_shape, false, |a, x| a || x),
            Kind::Min => fold(v, shape, &keep_shape, true, |a, x| a && x),
            _ => return Err(InterpError::unsupported(op, "element type bool")),
        }),
        d => {
            let v = x.to_i64_vec();
            let (lo, hi) = int_range(d.dtype());
            let exact = |init: i64, f: fn(i64, i64) -> i64| {
                from_i64s(dtype, fold(&v, shape, &keep_shape, init, f))
            };
            match kind {
                Kind::Sum => exact(0, |a, x| a.wrapping_add(x)),
                Kind::Prod => exact(1, |a, x| a.wrapping_mul(x)),
                Kind::Max => exact(lo, |a, x| a.max(x)),
                Kind::Min => exact(hi, |a, x| a.min(x)),
                Kind::L1 => exact(0, |a, x| a.wrapping_add(x.wrapping_abs())),
                Kind::SumSquare => exact(0, |a, x| a.wrapping_add(x.wrapping_mul(x))),
                _ => {
                    let r = reduce_f64(kind, &v, shape, &keep_shape, count, |x| x as f64);
                    from_i64s(dtype, r.into_iter().map(|x| x as i64).collect())
                }
            }
        }
    };
    Tensor::new(out_shape, data).map_err(|e| InterpError::invalid(op, e.to_string()))
}

/// A reduction computed in `f64`; NaN propagates through `Max` and `Min`.
fn reduce_f64<T: Copy>(
    kind: Kind,
    v: &[T],
    shape: &[usize],
    keep: &[usize],
    count: usize,
    c: impl Fn(T) -> f64,
) -> Vec<f64> {
    match kind {
        Kind::Sum => fold(v, shape, keep, 0.0, |a, x| a + c(x)),
        Kind::Mean => fold(v, shape, keep, 0.0, |a, x| a + c(x))
            .into_iter()
            .map(|s| s / count as f64)
            .collect(),
        Kind::L1 => fold(v, shape, keep, 0.0, |a, x| a + c(x).abs()),
        Kind::SumSquare => fold(v, shape, keep, 0.0, |a, x| a + c(x) * c(x)),
        Kind::L2 => fold(v, shape, keep, 0.0, |a, x| a + c(x) * c(x))
            .into_iter()
            .map(f64::sqrt)
            .collect(),
        Kind::LogSum => fold(v, shape, keep, 0.0, |a, x| a + c(x))
            .into_iter()
            .map(f64::ln)
            .collect(),
        Kind::Prod => fold(v, shape, keep, 1.0, |a, x| a * c(x)),
        Kind::Max => extreme(v, shape, keep, true, &c),
        Kind::Min => extreme(v, shape, keep, false, &c),
        Kind::LogSumExp => {
            // Shift by the maximum so the exponentials cannot overflow.
            let shift: Vec<f64> = extreme(v, shape, keep, true, &c)
                .into_iter()
                .map(|m| if m.is_finite() { m } else { 0.0 })
                .collect();
            let mut acc = vec![0.0; shift.len()];
            if acc.len() == 1 {
                acc[0] = v.iter().map(|&x| (c(x) - shift[0]).exp()).sum();
            } else {
                let mut i = 0;
                walk(shape, [keep], |[j]| {
                    acc[j] += (c(v[i]) - shift[j]).exp();
                    i += 1;
                });
            }
            acc.iter().zip(&shift).map(|(s, m)| s.ln() + m).collect()
        }
    }
}

/// The maximum (or minimum) in `f64`; NaN wins, an empty set gives -inf (or +inf).
fn extreme<T: Copy>(
    v: &[T],
    shape: &[usize],
    keep: &[usize],
    max: bool,
    c: impl Fn(T) -> f64,
) -> Vec<f64> {
    if max {
        fold(v, shape, keep, f64::NEG_INFINITY, |a, x| {
            let x = c(x);
            if x > a || x.is_nan() {
                x
            } else {
                a
            }
        })
    } else {
        fold(v, shape, keep, f64::INFINITY, |a, x| {
            let x = c(x);
            if x < a || x.is_nan() {
                x
            } else {
                a
            }
        })
    }
}

/// Splits `shape` around `axis` into `(outer, n, inner)` element counts.
fn split_at_axis(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    let outer = shape[..axis].iter().product();
    let inner = shape[axis + 1..].iter().product();
    (outer, shape[axis], inner)
}

/// `ArgMax` (`max = true`) or `ArgMin` along `axis`; ties go to the first index unless
/// `last`; NaN counts as the extreme (numpy's rule).
fn arg_extreme(
    op: &Op,
    x: &Tensor,
    axis: i64,
    keepdims: bool,
    last: bool,
    max: bool,
) -> Result<Tensor, InterpError> {
    if x.rank() == 0 {
        return Err(InterpError::invalid(op, "input is a scalar"));
    }
    let ax = norm_axis(op, axis, x.rank())?;
    let (outer, n, inner) = split_at_axis(x.shape(), ax);
    if n == 0 {
        return Err(InterpError::invalid(op, format!("axis {axis} has size 0")));
    }
    let idx = if x.dtype().is_float() {
        let v = x.to_f64_vec();
        let s = if max { 1.0 } else { -1.0 };
        arg_scan(&v, outer, n, inner, last, |a, b| {
            if a.is_nan() || b.is_nan() {
                (a.is_nan() as u8).cmp(&(b.is_nan() as u8))
            } else {
                (s * a).partial_cmp(&(s * b)).unwrap_or(Ordering::Equal)
            }
        })
    } else {
        let v = x.to_i64_vec();
        arg_scan(&v, outer, n, inner, last, |a, b| {
            if max {
                a.cmp(&b)
            } else {
                b.cmp(&a)
            }
        })
    };
    let mut shape = x.shape().to_vec();
    if keepdims {
        shape[ax] = 1;
    } else {
        shape.remove(ax);
    }
    Tensor::new(shape, TensorData::I64(idx)).map_err(|e| InterpError::invalid(op, e.to_string()))
}

/// For each `(outer, inner)` lane, the index of the greatest element under `cmp`.
fn arg_scan<T: Copy>(
    v: &[T],
    outer: usize,
    n: usize,
    inner: usize,
    last: bool,
    cmp: impl Fn(T, T) -> Ordering,
) -> Vec<i64> {
    let mut out = Vec::with_capacity(outer * inner);
    for o in 0..outer {
        for k in 0..inner {
            let at = |j: usize| v[(o * n + j) * inner + k];
            let mut best = 0;
            for j in 1..n {
                match cmp(at(j), at(best)) {
                    Ordering::Greater => best = j,
                    Ordering::Equal if last => best = j,
                    _ => {}
                }
            }
            out.push(best as i64);
        }
    }
    out
}

/// Picks the elements at flat indices `idx`, keeping the element type.
fn take(d: &TensorData, idx: &[usize]) -> TensorData {
    macro_rules! take {
        ($($var:ident),*) => {
            match d {
                $(TensorData::$var(v) => TensorData::$var(idx.iter().map(|&i| v[i]).collect()),)*
            }
        };
    }
    take!(F32, F64, F16, I64, I32, I8, U8, Bool)
}

/// `TopK`: operands `x, k`; results the `k` largest (or smallest) values along `axis`, sorted,
/// ties keeping the lower index first, and their `i64` indices.
fn top_k(
    op: &Op,
    inputs: &[Option<&Tensor>],
    axis: i64,
    largest: bool,
) -> Result<Vec<Tensor>, InterpError> {
    let x = arg(op, inputs, 0)?;
    let kt = arg(op, inputs, 1)?;
    if !kt.dtype().is_int() || kt.numel() != 1 {
        return Err(InterpError::invalid(
            op,
            format!("k must be one integer, is {}{:?}", kt.dtype(), kt.shape()),
        ));
    }
    if x.rank() == 0 {
        return Err(InterpError::invalid(op, "input is a scalar"));
    }
    let ax = norm_axis(op, axis, x.rank())?;
    let (outer, n, inner) = split_at_axis(x.shape(), ax);
    let k = kt.to_i64_vec()[0];
    if k < 0 || k as usize > n {
        return Err(InterpError::invalid(
            op,
            format!("k = {k} is outside 0..={n} for axis {axis}"),
        ));
    }
    let k = k as usize;
    let idx = if x.dtype().is_float() {
        // NaN sorts above every number.
        let v = x.to_f64_vec();
        top_k_indices(&v, (outer, n, inner), k, largest, |a, b| {
            match (a.is_nan(), b.is_nan()) {
                (false, false) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
                (p, q) => p.cmp(&q),
            }
        })
    } else {
        let v = x.to_i64_vec();
        top_k_indices(&v, (outer, n, inner), k, largest, |a, b| a.cmp(&b))
    };
    // Gather the values in output order.
    let mut src = Vec::with_capacity(idx.len());
    for o in 0..outer {
        for r in 0..k {
            for i in 0..inner {
                let j = idx[(o * k + r) * inner + i] as usize;
                src.push((o * n + j) * inner + i);
            }
        }
    }
    let mut shape = x.shape().to_vec();
    shape[ax] = k;
    let values = Tensor::new(shape.clone(), take(x.data(), &src))
        .map_err(|e| InterpError::invalid(op, e.to_string()))?;
    let indices = Tensor::new(shape, TensorData::I64(idx))
        .map_err(|e| InterpError::invalid(op, e.to_string()))?;
    Ok(vec![values, indices])
}

/// The indices along the middle axis of `(outer, n, inner)` of the `k` greatest (or least)
/// elements of each lane under `cmp`, best first; a stable sort keeps ties in index order.
fn top_k_indices<T: Copy>(
    v: &[T],
    (outer, n, inner): (usize, usize, usize),
    k: usize,
    largest: bool,
    cmp: impl Fn(T, T) -> Ordering,
) -> Vec<i64> {
    let mut idx = vec![0i64; outer * k * inner];
    let mut lane: Vec<usize> = Vec::with_capacity(n);
    for o in 0..outer {
        for i in 0..inner {
            let at = |j: usize| v[(o * n + j) * inner + i];
            lane.clear();
            lane.extend(0..n);
            if largest {
                lane.sort_by(|&a, &b| cmp(at(b), at(a)));
            } else {
                lane.sort_by(|&a, &b| cmp(at(a), at(b)));
            }
            for (r, &j) in lane[..k].iter().enumerate() {
                idx[(o * k + r) * inner + i] = j as i64;
            }
        }
    }
    idx
}

/// `CumSum`: operands `x, axis` (an integer scalar or `[1]`).
fn cum_sum(
    op: &Op,
    inputs: &[Option<&Tensor>],
    exclusive: bool,
    reverse: bool,
) -> Result<Tensor, InterpError> {
    let x = arg(op, inputs, 0)?;
    let at = arg(op, inputs, 1)?;
    if !at.dtype().is_int() || at.numel() != 1 {
        return Err(InterpError::invalid(
            op,
            format!(
                "axis must be one integer, is {}{:?}",
                at.dtype(),
                at.shape()
            ),
        ));
    }
    if x.rank() == 0 {
        return Err(InterpError::invalid(op, "input is a scalar"));
    }
    let ax = norm_axis(op, at.to_i64_vec()[0], x.rank())?;
    let (outer, n, inner) = split_at_axis(x.shape(), ax);
    let dtype = x.dtype();
    let data = if dtype.is_float() {
        let v = x.to_f64_vec();
        TensorData::from_f64s(
            dtype,
            scan(&v, outer, n, inner, exclusive, reverse, 0.0, |a, b| a + b),
        )
    } else if dtype.is_int() {
        let v = x.to_i64_vec();
        from_i64s(
            dtype,
            scan(&v, outer, n, inner, exclusive, reverse, 0, |a, b| {
                a.wrapping_add(b)
            }),
        )
    } else {
        return Err(InterpError::unsupported(op, "element type bool"));
    };
    Tensor::new(x.shape().to_vec(), data).map_err(|e| InterpError::invalid(op, e.to_string()))
}

/// Running sums along the middle axis of `(outer, n, inner)`.
#[allow(clippy::too_many_arguments)]
fn scan<T: Copy>(
    v: &[T],
    outer: usize,
    n: usize,
    inner: usize,
    exclusive: bool,
    reverse: bool,
    zero: T,
    add: impl Fn(T, T) -> T,
) -> Vec<T> {
    let mut out = vec![zero; v.len()];
    for o in 0..outer {
        for i in 0..inner {
            let mut acc = zero;
            for step in 0..n {
                let j = if reverse { n - 1 - step } else { step };
                let at = (o * n + j) * inner + i;
                if exclusive {
                    out[at] = acc;
                    acc = add(acc, v[at]);
                } else {
                    acc = add(acc, v[at]);
                    out[at] = acc;
                }
            }
        }
    }
    out
}

#[cfg(test)]
#[path = "reduce_tests.rs"]
mod tests;
