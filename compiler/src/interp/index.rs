//! The index family: `Gather`, `GatherElements`, `GatherNd`, `ScatterNd`, `ScatterElements` and
//! `OneHot`.
//!
//! Data operands may have any element type; index operands any integer type. Negative indices
//! count from the end of their axis; any other out-of-range index is an error (except in
//! `OneHot`, where ONNX defines it as an all-off row).

use super::elem::{
    checked_numel, dispatch, for_each_index, ints, norm_index, scalar_f64, tensor, typed, Elem,
};
use super::util::{arg, norm_axis};
use super::InterpError;
use sparsec_ir::tensor::strides;
use sparsec_ir::{Op, Tensor};

/// Evaluates an op of the index family.
pub(crate) fn eval(
    op: &Op,
    inputs: &[Option<&Tensor>],
    _n_outputs: usize,
) -> Result<Vec<Tensor>, InterpError> {
    let a0 = arg(op, inputs, 0)?;
    let a1 = arg(op, inputs, 1)?;
    let out = match op {
        Op::Gather { axis } => gather(op, a0, a1, *axis)?,
        Op::GatherElements { axis } => gather_elements(op, a0, a1, *axis)?,
        Op::GatherNd { batch_dims } => gather_nd(op, a0, a1, *batch_dims)?,
        Op::ScatterNd { reduction } => scatter_nd(
            op,
            a0,
            a1,
            arg(op, inputs, 2)?,
            reduction_of(op, reduction)?,
        )?,
        Op::ScatterElements { axis, reduction } => scatter_elements(
            op,
            a0,
            a1,
            arg(op, inputs, 2)?,
            *axis,
            reduction_of(op, reduction)?,
        )?,
        Op::OneHot { axis } => one_hot(op, a0, a1, arg(op, inputs, 2)?, *axis)?,
        _ => return Err(InterpError::unsupported(op, "not an index op")),
    };
    Ok(vec![out])
}

/// How a scatter combines an update with the existing element.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Reduction {
    /// Replace.
    None,
    /// Add.
    Add,
    /// Multiply.
    Mul,
    /// Keep the larger.
    Max,
    /// Keep the smaller.
    Min,
}

/// Parses the `reduction` attribute.
fn reduction_of(op: &Op, s: &str) -> Result<Reduction, InterpError> {
    Ok(match s {
        "none" => Reduction::None,
        "add" => Reduction::Add,
        "mul" => Reduction::Mul,
        "max" => Reduction::Max,
        "min" => Reduction::Min,
        other => return Err(InterpError::unsupported(op, format!("reduction `{other}`"))),
    })
}

/// Applies a reduction.
#[inline]
fn combine<T: Elem>(r: Reduction, old: T, new: T) -> T {
    match r {
        Reduction::None => new,
        Reduction::Add => old.add(new),
        Reduction::Mul => old.mul(new),
        Reduction::Max => {
            if new > old {
                new
            } else {
                old
            }
        }
        Reduction::Min => {
            if new < old {
                new
            } else {
                old
            }
        }
    }
}

/// The normalized `axis` of `data`, which must not be a scalar.
fn data_axis(op: &Op, data: &Tensor, axis: i64) -> Result<usize, InterpError> {
    if data.rank() == 0 {
        return Err(InterpError::invalid(op, "data is a scalar"));
    }
    norm_axis(op, axis, data.rank())
}

/// The integer indices of `t`, each normalized against `dim`.
fn indices(op: &Op, t: &Tensor, dim: usize) -> Result<Vec<usize>, InterpError> {
    ints(op, t, "indices")?
        .into_iter()
        .map(|i| norm_index(op, i, dim, "index"))
        .collect()
}

/// `Gather`: slices of `data` along `axis` picked by `idx`.
fn gather(op: &Op, data: &Tensor, idx: &Tensor, axis: i64) -> Result<Tensor, InterpError> {
    let a = data_axis(op, data, axis)?;
    let dim = data.shape()[a];
    let picks = indices(op, idx, dim)?;
    let outer: usize = data.shape()[..a].iter().product();
    let inner: usize = data.shape()[a + 1..].iter().product();
    let mut shape = data.shape()[..a].to_vec();
    shape.extend_from_slice(idx.shape());
    shape.extend_from_slice(&data.shape()[a + 1..]);
    dispatch!(data.dtype(), T => {
        let v = typed::<T>(op, data, "data")?;
        let mut out = Vec::with_capacity(outer * picks.len() * inner);
        for o in 0..outer {
            for &p in &picks {
                let base = (o * dim + p) * inner;
                out.extend_from_slice(&v[base..base + inner]);
            }
        }
        tensor(op, shape, out)
    })
}

/// Checks that `idx` has the rank of `data` and fits inside it on every axis but `a`.
fn check_elementwise(op: &Op, data: &Tensor, idx: &Tensor, a: usize) -> Result<(), InterpError> {
    let fits = idx.rank() == data.rank()
        && (0..data.rank()).all(|i| i == a || idx.shape()[i] <= data.shape()[i]);
    if fits {
        Ok(())
    } else {
        Err(InterpError::invalid(
            op,
            format!(
                "indices of shape {:?} do not fit data of shape {:?}",
                idx.shape(),
                data.shape()
            ),
        ))
    }
}

/// For every element of `idx`, the flat index into `data` with its axis-`a` coordinate replaced.
fn element_targets(
    op: &Op,
    data: &Tensor,
    idx: &Tensor,
    a: usize,
) -> Result<Vec<usize>, InterpError> {
    check_elementwise(op, data, idx, a)?;
    let picks = indices(op, idx, data.shape()[a])?;
    let st = strides(data.shape());
    let mut out = Vec::with_capacity(picks.len());
    let mut k = 0;
    for_each_index(idx.shape(), |pos| {
        let flat: usize = pos
            .iter()
            .enumerate()
            .map(|(i, &p)| if i == a { picks[k] } else { p } * st[i])
            .sum();
        out.push(flat);
        k += 1;
    });
    Ok(out)
}

/// `GatherElements`: `out[..., i, ...] = data[..., idx[..., i, ...], ...]` along `axis`.
fn gather_elements(op: &Op, data: &Tensor, idx: &Tensor, axis: i64) -> Result<Tensor, InterpError> {
    let a = data_axis(op, data, axis)?;
    let targets = element_targets(op, data, idx, a)?;
    super::elem::take(op, data, idx.shape().to_vec(), &targets)
}

/// The flat start in `data` of the slice addressed by every index tuple of an `*Nd` op, and the
/// size of those slices.
fn nd_offsets(
    op: &Op,
    data: &Tensor,
    idx: &Tensor,
    b: usize,
) -> Result<(Vec<usize>, usize), InterpError> {
    let (r, q) = (data.rank(), idx.rank());
    if q == 0 || (b > 0 && b >= q.min(r)) {
        return Err(InterpError::invalid(
            op,
            format!(
                "indices of shape {:?} do not fit batch_dims {b}",
                idx.shape()
            ),
        ));
    }
    let k = idx.shape()[q - 1];
    if b + k > r || data.shape()[..b] != idx.shape()[..b] {
        return Err(InterpError::invalid(
            op,
            format!(
                "indices of shape {:?} do not fit data of shape {:?} with batch_dims {b}",
                idx.shape(),
                data.shape()
            ),
        ));
    }
    let raw = ints(op, idx, "indices")?;
    let slice: usize = data.shape()[b + k..].iter().product();
    let batch_size: usize = data.shape()[b..].iter().product();
    let st = strides(&data.shape()[b..]);
    let per_batch: usize = idx.shape()[b..q - 1].iter().product();
    let mut offsets = Vec::with_capacity(raw.len() / k.max(1));
    let n_tuples: usize = idx.shape()[..q - 1].iter().product();
    for t in 0..n_tuples {
        let batch = t / per_batch.max(1);
        let mut off = batch * batch_size;
        for j in 0..k {
            let i = norm_index(op, raw[t * k + j], data.shape()[b + j], "index")?;
            off += i * st[j];
        }
        offsets.push(off);
    }
    Ok((offsets, slice))
}

/// `GatherNd`: the slices of `data` addressed by the last axis of `idx`.
fn gather_nd(op: &Op, data: &Tensor, idx: &Tensor, batch_dims: i64) -> Result<Tensor, InterpError> {
    let b = usize::try_from(batch_dims)
        .map_err(|_| InterpError::invalid(op, format!("batch_dims {batch_dims} is negative")))?;
    let (offsets, slice) = nd_offsets(op, data, idx, b)?;
    let q = idx.rank();
    let k = idx.shape()[q - 1];
    let mut shape = idx.shape()[..q - 1].to_vec();
    shape.extend_from_slice(&data.shape()[b + k..]);
    dispatch!(data.dtype(), T => {
        let v = typed::<T>(op, data, "data")?;
        let mut out = Vec::with_capacity(offsets.len() * slice);
        for &o in &offsets {
            out.extend_from_slice(&v[o..o + slice]);
        }
        tensor(op, shape, out)
    })
}

/// `ScatterNd`: a copy of `data` with the slices addressed by `idx` combined with `updates`.
fn scatter_nd(
    op: &Op,
    data: &Tensor,
    idx: &Tensor,
    updates: &Tensor,
    r: Reduction,
) -> Result<Tensor, InterpError> {
    let (offsets, slice) = nd_offsets(op, data, idx, 0)?;
    let q = idx.rank();
    let k = idx.shape()[q - 1];
    let mut want = idx.shape()[..q - 1].to_vec();
    want.extend_from_slice(&data.shape()[k..]);
    if updates.shape() != want.as_slice() {
        return Err(InterpError::invalid(
            op,
            format!("updates of shape {:?}, expected {want:?}", updates.shape()),
        ));
    }
    dispatch!(data.dtype(), T => {
        let mut out = typed::<T>(op, data, "data")?.to_vec();
        let u = typed::<T>(op, updates, "updates")?;
        for (&o, us) in offsets.iter().zip(u.chunks(slice.max(1))) {
            for (d, &nv) in out[o..o + slice].iter_mut().zip(us) {
                *d = combine(r, *d, nv);
            }
        }
        tensor(op, data.shape().to_vec(), out)
    })
}

/// `ScatterElements`: a copy of `data` with single elements along `axis` combined with `updates`.
fn scatter_elements(
    op: &Op,
    data: &Tensor,
    idx: &Tensor,
    updates: &Tensor,
    axis: i64,
    r: Reduction,
) -> Result<Tensor, InterpError> {
    let a = data_axis(op, data, axis)?;
    if updates.shape() != idx.shape() {
        return Err(InterpError::invalid(
            op,
            format!(
                "updates of shape {:?} differ from indices {:?}",
                updates.shape(),
                idx.shape()
            ),
        ));
    }
    let targets = element_targets(op, data, idx, a)?;
    dispatch!(data.dtype(), T => {
        let mut out = typed::<T>(op, data, "data")?.to_vec();
        let u = typed::<T>(op, updates, "updates")?;
        for (&t, &nv) in targets.iter().zip(u) {
            out[t] = combine(r, out[t], nv);
        }
        tensor(op, data.shape().to_vec(), out)
    })
}

/// `OneHot`: a new axis of size `depth` at `axis` holding `values[1]` where the index matches and
/// `values[0]` elsewhere.
fn one_hot(
    op: &Op,
    idx: &Tensor,
    depth: &Tensor,
    values: &Tensor,
    axis: i64,
) -> Result<Tensor, InterpError> {
    let d = scalar_f64(op, depth, "depth")?;
    if !(1.0..=1e9).contains(&d) {
        return Err(InterpError::invalid(
            op,
            format!("depth {d} is not positive"),
        ));
    }
    let depth = d as usize;
    if values.numel() != 2 {
        return Err(InterpError::invalid(
            op,
            format!("values must hold [off, on], has shape {:?}", values.shape()),
        ));
    }
    let r = idx.rank() as i64;
    let a = if axis < 0 { axis + r + 1 } else { axis };
    if !(0..=r).contains(&a) {
        return Err(InterpError::invalid(
            op,
            format!("axis {axis} out of range for rank {}", r + 1),
        ));
    }
    let a = a as usize;
    // Float indices are truncated toward zero, as a cast to an integer would.
    let picks: Vec<i64> = idx
        .to_f64_vec()
        .into_iter()
        .map(|v| {
            let i = v as i64;
            if i < 0 {
                i + depth as i64
            } else {
                i
            }
        })
        .collect();
    let outer: usize = idx.shape()[..a].iter().product();
    let inner: usize = idx.shape()[a..].iter().product();
    let mut shape = idx.shape()[..a].to_vec();
    shape.push(depth);
    shape.extend_from_slice(&idx.shape()[a..]);
    checked_numel(op, &shape)?;
    dispatch!(values.dtype(), T => {
        let v = typed::<T>(op, values, "values")?;
        let (off, on) = (v[0], v[1]);
        let mut out = vec![off; outer * depth * inner];
        for o in 0..outer {
            for i in 0..inner {
                let p = picks[o * inner + i];
                if (0..depth as i64).contains(&p) {
                    out[(o * depth + p as usize) * inner + i] = on;
                }
            }
        }
        tensor(op, shape, out)
    })
}

#[cfg(test)]
#[path = "index_tests.rs"]
mod tests;
