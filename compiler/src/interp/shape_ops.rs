//! The shape family: dispatch, plus the ops that only compute or reinterpret shapes (`Reshape`,
//! `Flatten`, `Squeeze`, `Unsqueeze`, `Shape`, `Size`, `ConstantOfShape`, `Range`) and `Trilu`.
//!
//! The data-movement ops live in `movement.rs` and `Resize` in `resize.rs`. Everything here is
//! dtype-generic: reshapes keep the storage as is.

use super::elem::{
    checked_numel, dispatch, ints, norm_index, scalar_i64, tensor, typed, MAX_ELEMENTS,
};
use super::util::{arg, opt_arg};
use super::{movement, resize, InterpError};
use sparsec_ir::{Op, Tensor, TensorData};

/// Evaluates an op of the shape family.
pub(crate) fn eval(
    op: &Op,
    inputs: &[Option<&Tensor>],
    n_outputs: usize,
) -> Result<Vec<Tensor>, InterpError> {
    let x = arg(op, inputs, 0)?;
    let one = match op {
        Op::Reshape { allowzero } => reshape(op, x, arg(op, inputs, 1)?, *allowzero != 0)?,
        Op::Flatten { axis } => flatten(op, x, *axis)?,
        Op::Squeeze {} => squeeze(op, x, opt_arg(inputs, 1))?,
        Op::Unsqueeze {} => unsqueeze(op, x, arg(op, inputs, 1)?)?,
        Op::Shape { start, end } => shape_of(x, *start, *end),
        Op::Size {} => Tensor::scalar_i64(x.numel() as i64),
        Op::ConstantOfShape { value } => {
            let shape = target_shape(op, x)?;
            let n = checked_numel(op, &shape)?;
            Tensor::new(
                shape,
                TensorData::from_f64s(value.dtype, std::iter::repeat_n(value.value, n)),
            )
            .map_err(|e| InterpError::invalid(op, e.to_string()))?
        }
        Op::Range {} => range(op, x, arg(op, inputs, 1)?, arg(op, inputs, 2)?)?,
        Op::Trilu { upper } => {
            let k = match opt_arg(inputs, 1) {
                Some(k) => scalar_i64(op, k, "k")?,
                None => 0,
            };
            trilu(op, x, k, *upper != 0)?
        }
        Op::Split { .. } => return movement::split(op, inputs, n_outputs),
        Op::Resize { .. } => resize::resize(op, inputs)?,
        _ => movement::eval(op, inputs)?,
    };
    Ok(vec![one])
}

/// A shape operand: non-negative integers.
pub(crate) fn target_shape(op: &Op, t: &Tensor) -> Result<Vec<usize>, InterpError> {
    if t.rank() > 1 {
        return Err(InterpError::invalid(
            op,
            format!("shape operand must be 1-D, has shape {:?}", t.shape()),
        ));
    }
    ints(op, t, "shape")?
        .into_iter()
        .map(|d| {
            usize::try_from(d)
                .map_err(|_| InterpError::invalid(op, format!("negative dimension {d} in shape")))
        })
        .collect()
}

/// Same storage under a new shape.
fn reshaped(op: &Op, x: &Tensor, shape: Vec<usize>) -> Result<Tensor, InterpError> {
    x.clone()
        .reshaped(shape)
        .map_err(|e| InterpError::invalid(op, e.to_string()))
}

/// `Reshape`: `0` copies the input's dimension (unless `allowzero`), `-1` is inferred.
fn reshape(op: &Op, x: &Tensor, shape: &Tensor, allowzero: bool) -> Result<Tensor, InterpError> {
    let target = ints(op, shape, "shape")?;
    let mut out = Vec::with_capacity(target.len());
    let mut infer = None;
    for (i, &d) in target.iter().enumerate() {
        match d {
            -1 if infer.is_none() => {
                infer = Some(i);
                out.push(1);
            }
            0 if !allowzero => out.push(*x.shape().get(i).ok_or_else(|| {
                InterpError::invalid(
                    op,
                    format!(
                        "shape {target:?} copies dimension {i} of input {:?}",
                        x.shape()
                    ),
                )
            })?),
            d if d >= 0 => out.push(d as usize),
            _ => {
                return Err(InterpError::invalid(
                    op,
                    format!("bad shape {target:?} for input {:?}", x.shape()),
                ))
            }
        }
    }
    if let Some(i) = infer {
        let known = checked_numel(op, &out)?;
        if known == 0 || !x.numel().is_multiple_of(known) {
            return Err(InterpError::invalid(
                op,
                format!(
                    "cannot infer -1 in shape {target:?} for input {:?}",
                    x.shape()
                ),
            ));
        }
        out[i] = x.numel() / known;
    }
    if checked_numel(op, &out)? != x.numel() {
        return Err(InterpError::invalid(
            op,
            format!("shape {target:?} does not fit input {:?}", x.shape()),
        ));
    }
    reshaped(op, x, out)
}

/// `Flatten`: a matrix of the axes before and from `axis`.
fn flatten(op: &Op, x: &Tensor, axis: i64) -> Result<Tensor, InterpError> {
    let r = x.rank() as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if !(0..=r).contains(&a) {
        return Err(InterpError::invalid(
            op,
            format!("axis {axis} out of range for rank {r}"),
        ));
    }
    let (outer, inner) = x.shape().split_at(a as usize);
    reshaped(op, x, vec![outer.iter().product(), inner.iter().product()])
}

/// Normalized, distinct axes of an axes operand against `rank`.
fn axes_list(op: &Op, axes: &Tensor, rank: usize) -> Result<Vec<usize>, InterpError> {
    let mut out = Vec::new();
    for a in ints(op, axes, "axes")? {
        let n = norm_index(op, a, rank, "axis")?;
        if out.contains(&n) {
            return Err(InterpError::invalid(op, format!("axis {a} repeats")));
        }
        out.push(n);
    }
    Ok(out)
}

/// `Squeeze`: drop the named size-1 axes (every size-1 axis when none are named, or when the
/// axes operand is empty, as ONNX Runtime and shape inference do).
fn squeeze(op: &Op, x: &Tensor, axes: Option<&Tensor>) -> Result<Tensor, InterpError> {
    let drop = match axes.filter(|a| a.numel() > 0) {
        Some(a) => {
            let axes = axes_list(op, a, x.rank())?;
            if let Some(&a) = axes.iter().find(|&&a| x.shape()[a] != 1) {
                return Err(InterpError::invalid(
                    op,
                    format!("axis {a} of shape {:?} is not 1", x.shape()),
                ));
            }
            axes
        }
        None => (0..x.rank()).filter(|&a| x.shape()[a] == 1).collect(),
    };
    let shape = (0..x.rank())
        .filter(|a| !drop.contains(a))
        .map(|a| x.shape()[a])
        .collect();
    reshaped(op, x, shape)
}

/// `Unsqueeze`: insert size-1 axes at the named positions of the result.
fn unsqueeze(op: &Op, x: &Tensor, axes: &Tensor) -> Result<Tensor, InterpError> {
    let n_new = ints(op, axes, "axes")?.len();
    let axes = axes_list(op, axes, x.rank() + n_new)?;
    let mut rest = x.shape().iter();
    let shape = (0..x.rank() + n_new)
        .map(|a| {
            if axes.contains(&a) {
                1
            } else {
                rest.next().copied().unwrap_or(1)
            }
        })
        .collect();
    reshaped(op, x, shape)
}

/// `Shape`: dimensions `start..end` (negative values count from the end, both clamped).
fn shape_of(x: &Tensor, start: i64, end: i64) -> Tensor {
    let r = x.rank() as i64;
    let clamp = |v: i64| if v < 0 { v.saturating_add(r) } else { v }.clamp(0, r) as usize;
    let (s, e) = (clamp(start), clamp(end));
    let dims: Vec<i64> = if s < e {
        x.shape()[s..e].iter().map(|&d| d as i64).collect()
    } else {
        Vec::new()
    };
    Tensor::from_i64(&[dims.len()], dims)
}

/// `Range`: `start, start + delta, ...` strictly before `limit`, in the operands' type.
fn range(op: &Op, start: &Tensor, limit: &Tensor, delta: &Tensor) -> Result<Tensor, InterpError> {
    let dtype = start.dtype();
    if limit.dtype() != dtype || delta.dtype() != dtype {
        return Err(InterpError::invalid(
            op,
            "operands have different element types",
        ));
    }
    for (t, what) in [(start, "start"), (limit, "limit"), (delta, "delta")] {
        if t.numel() != 1 {
            return Err(InterpError::invalid(
                op,
                format!("{what} must be a scalar, has shape {:?}", t.shape()),
            ));
        }
    }
    if dtype.is_int() {
        let (s, l, d) = (
            start.to_i64_vec()[0],
            limit.to_i64_vec()[0],
            delta.to_i64_vec()[0],
        );
        if d == 0 {
            return Err(InterpError::invalid(op, "delta is zero"));
        }
        let span = l as i128 - s as i128;
        let n = if (span > 0) == (d > 0) && span != 0 {
            (span.abs() + d.unsigned_abs() as i128 - 1) / d.unsigned_abs() as i128
        } else {
            0
        };
        if n > MAX_ELEMENTS as i128 {
            return Err(InterpError::invalid(op, format!("range of {n} elements")));
        }
        let n = n as usize;
        let vals: Vec<i64> = (0..n as i64).map(|i| s + i * d).collect();
        return Ok(Tensor::from_i64(&[n], vals).cast(dtype));
    }
    if !dtype.is_float() {
        return Err(InterpError::unsupported(
            op,
            format!("element type {dtype}"),
        ));
    }
    let (s, l, d) = (
        start.data().get_f64(0),
        limit.data().get_f64(0),
        delta.data().get_f64(0),
    );
    if d == 0.0 || !d.is_finite() {
        return Err(InterpError::invalid(op, format!("bad delta {d}")));
    }
    let n = ((l - s) / d).ceil();
    if n.is_nan() || n > MAX_ELEMENTS as f64 {
        return Err(InterpError::invalid(op, format!("range of {n} elements")));
    }
    let n = n.max(0.0) as usize;
    Ok(Tensor::from_f64s(
        dtype,
        &[n],
        (0..n).map(|i| s + i as f64 * d),
    ))
}

/// `Trilu`: keep the upper (`j - i >= k`) or lower (`j - i <= k`) triangle of the last two axes.
fn trilu(op: &Op, x: &Tensor, k: i64, upper: bool) -> Result<Tensor, InterpError> {
    if x.rank() < 2 {
        return Err(InterpError::invalid(
            op,
            format!("input of shape {:?} is not a matrix", x.shape()),
        ));
    }
    let (n, m) = (x.shape()[x.rank() - 2], x.shape()[x.rank() - 1]);
    dispatch!(x.dtype(), T => {
        let xv = typed::<T>(op, x, "x")?;
        let out: Vec<T> = xv
            .iter()
            .enumerate()
            .map(|(f, &v)| {
                let (i, j) = (((f / m.max(1)) % n.max(1)) as i64, (f % m.max(1)) as i64);
                let keep = if upper { j - i >= k } else { j - i <= k };
                if keep { v } else { T::default() }
            })
            .collect();
        tensor(op, x.shape().to_vec(), out)
    })
}

#[cfg(test)]
#[path = "shape_ops_tests.rs"]
mod tests;
