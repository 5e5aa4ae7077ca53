//! Data-movement ops of the shape family: `Transpose`, `Expand`, `Tile`, `Concat`, `Split`,
//! `Slice`, `Pad`, `DepthToSpace` and `SpaceToDepth`.
//!
//! Most of them compute, for every result element, the flat index of its source element and then
//! copy with [`take`]; `Concat` and `Split` copy contiguous runs. All are dtype-generic.

use super::elem::{
    checked_numel, dispatch, ints, norm_index, permute_indices, take, take_or_fill, tensor, typed,
};
use super::shape_ops::target_shape;
use super::util::{arg, broadcast_indices, broadcast_shape, norm_axis, opt_arg};
use super::InterpError;
use sparsec_ir::tensor::strides;
use sparsec_ir::{Op, Tensor};

/// Evaluates the single-result data-movement ops.
pub(crate) fn eval(op: &Op, inputs: &[Option<&Tensor>]) -> Result<Tensor, InterpError> {
    let x = arg(op, inputs, 0)?;
    match op {
        Op::Transpose { perm } => transpose(op, x, perm),
        Op::Expand {} => {
            let target = target_shape(op, arg(op, inputs, 1)?)?;
            let shape = broadcast_shape(x.shape(), &target).ok_or_else(|| {
                InterpError::invalid(
                    op,
                    format!("shape {:?} does not broadcast with {target:?}", x.shape()),
                )
            })?;
            checked_numel(op, &shape)?;
            let idx = broadcast_indices(x.shape(), &shape);
            take(op, x, shape, &idx)
        }
        Op::Tile {} => tile(op, x, arg(op, inputs, 1)?),
        Op::Concat { axis } => concat(op, inputs, *axis),
        Op::Slice {} => slice(op, inputs),
        Op::Pad { mode } => pad(op, inputs, mode),
        Op::DepthToSpace { blocksize, mode } => depth_to_space(op, x, *blocksize, mode),
        Op::SpaceToDepth { blocksize } => space_to_depth(op, x, *blocksize),
        _ => Err(InterpError::unsupported(op, "not a shape op")),
    }
}

/// The most parts `Split` makes from a count (a guard against absurd attributes).
const MAX_PARTS: usize = 1 << 16;

/// The largest `DepthToSpace` / `SpaceToDepth` block size accepted.
const MAX_BLOCK: i64 = 1 << 16;

/// For a result whose axis `a` takes the source positions `maps[a]` of a tensor of shape `shape`,
/// the flat source index of every result element (`usize::MAX` where a position is `None`).
pub(crate) fn axis_map_indices(shape: &[usize], maps: &[Vec<Option<usize>>]) -> Vec<usize> {
    let st = strides(shape);
    let mut idx = vec![0usize];
    for (a, map) in maps.iter().enumerate() {
        let mut next = Vec::with_capacity(idx.len() * map.len());
        for &b in &idx {
            for m in map {
                next.push(match (b, m) {
                    (usize::MAX, _) | (_, None) => usize::MAX,
                    (b, Some(s)) => b + s * st[a],
                });
            }
        }
        idx = next;
    }
    idx
}

/// `Transpose`: permute the axes (`perm` empty reverses them).
fn transpose(op: &Op, x: &Tensor, perm: &[i64]) -> Result<Tensor, InterpError> {
    let r = x.rank();
    let perm: Vec<usize> = if perm.is_empty() {
        (0..r).rev().collect()
    } else {
        let p: Vec<usize> = perm
            .iter()
            .map(|&a| norm_index(op, a, r, "perm entry"))
            .collect::<Result<_, _>>()?;
        let mut sorted = p.clone();
        sorted.sort_unstable();
        if sorted != (0..r).collect::<Vec<_>>() {
            return Err(InterpError::invalid(
                op,
                format!("perm {perm:?} is not a permutation of {r} axes"),
            ));
        }
        p
    };
    let shape = perm.iter().map(|&p| x.shape()[p]).collect();
    take(op, x, shape, &permute_indices(x.shape(), &perm))
}

/// `Tile`: repeat the tensor `repeats[a]` times along every axis `a`.
fn tile(op: &Op, x: &Tensor, repeats: &Tensor) -> Result<Tensor, InterpError> {
    let reps = ints(op, repeats, "repeats")?;
    if reps.len() != x.rank() || reps.iter().any(|&r| r < 0) {
        return Err(InterpError::invalid(
            op,
            format!("repeats {reps:?} do not fit shape {:?}", x.shape()),
        ));
    }
    let shape: Vec<usize> = x
        .shape()
        .iter()
        .zip(&reps)
        .map(|(&d, &r)| d.saturating_mul(r as usize))
        .collect();
    checked_numel(op, &shape)?;
    let maps: Vec<Vec<Option<usize>>> = x
        .shape()
        .iter()
        .zip(&reps)
        .map(|(&d, &r)| (0..d * r as usize).map(|p| Some(p % d)).collect())
        .collect();
    let shape = maps.iter().map(Vec::len).collect();
    take(op, x, shape, &axis_map_indices(x.shape(), &maps))
}

/// `Concat` along `axis`.
fn concat(op: &Op, inputs: &[Option<&Tensor>], axis: i64) -> Result<Tensor, InterpError> {
    let ts = inputs
        .iter()
        .enumerate()
        .map(|(k, t)| t.ok_or_else(|| InterpError::invalid(op, format!("operand {k} is missing"))))
        .collect::<Result<Vec<&Tensor>, _>>()?;
    let first = ts[0];
    let r = first.rank();
    if r == 0 {
        return Err(InterpError::invalid(op, "cannot concatenate scalars"));
    }
    let a = norm_axis(op, axis, r)?;
    let mut shape = first.shape().to_vec();
    shape[a] = 0;
    for t in &ts {
        let same = t.rank() == r
            && (0..r).all(|i| i == a || t.shape()[i] == first.shape()[i])
            && t.dtype() == first.dtype();
        if !same {
            return Err(InterpError::invalid(
                op,
                format!(
                    "operand {} {:?} does not match {} {:?} along axis {a}",
                    t.dtype(),
                    t.shape(),
                    first.dtype(),
                    first.shape()
                ),
            ));
        }
        shape[a] += t.shape()[a];
    }
    let outer: usize = first.shape()[..a].iter().product();
    let inner: usize = first.shape()[a + 1..].iter().product();
    dispatch!(first.dtype(), T => {
        let parts = ts
            .iter()
            .map(|t| Ok((typed::<T>(op, t, "operand")?, t.shape()[a] * inner)))
            .collect::<Result<Vec<_>, InterpError>>()?;
        let mut out = Vec::with_capacity(shape.iter().product());
        for o in 0..outer {
            for (v, len) in &parts {
                out.extend_from_slice(&v[o * len..(o + 1) * len]);
            }
        }
        tensor(op, shape, out)
    })
}

/// `Split` along `axis` by the sizes operand, else into `num_outputs` (or as many as asked)
/// chunks of `ceil(dim / n)` with a smaller last chunk.
pub(crate) fn split(
    op: &Op,
    inputs: &[Option<&Tensor>],
    n_outputs: usize,
) -> Result<Vec<Tensor>, InterpError> {
    let Op::Split { axis, num_outputs } = op else {
        return Err(InterpError::unsupported(op, "not a split"));
    };
    let x = arg(op, inputs, 0)?;
    if x.rank() == 0 {
        return Err(InterpError::invalid(op, "cannot split a scalar"));
    }
    let a = norm_axis(op, *axis, x.rank())?;
    let dim = x.shape()[a];
    let sizes: Vec<usize> = match opt_arg(inputs, 1) {
        Some(s) => {
            let v = ints(op, s, "split")?;
            if v.iter().any(|&d| d < 0) || v.iter().map(|&d| d as i128).sum::<i128>() != dim as i128
            {
                return Err(InterpError::invalid(
                    op,
                    format!("sizes {v:?} do not split a dimension of {dim}"),
                ));
            }
            v.into_iter().map(|d| d as usize).collect()
        }
        None => {
            let n = if *num_outputs > 0 {
                *num_outputs as usize
            } else {
                n_outputs.max(1)
            };
            if n > MAX_PARTS {
                return Err(InterpError::invalid(op, format!("{n} parts are too many")));
            }
            let chunk = dim.div_ceil(n);
            if chunk * (n - 1) > dim {
                return Err(InterpError::invalid(
                    op,
                    format!("cannot split a dimension of {dim} into {n} parts"),
                ));
            }
            let mut s = vec![chunk; n - 1];
            s.push(dim - chunk * (n - 1));
            s
        }
    };
    let outer: usize = x.shape()[..a].iter().product();
    let inner: usize = x.shape()[a + 1..].iter().product();
    dispatch!(x.dtype(), T => {
        let v = typed::<T>(op, x, "x")?;
        let mut out = Vec::with_capacity(sizes.len());
        let mut start = 0;
        for &s in &sizes {
            let mut part = Vec::with_capacity(outer * s * inner);
            for o in 0..outer {
                let base = (o * dim + start) * inner;
                part.extend_from_slice(&v[base..base + s * inner]);
            }
            let mut shape = x.shape().to_vec();
            shape[a] = s;
            out.push(tensor(op, shape, part)?);
            start += s;
        }
        Ok(out)
    })
}

/// `Slice`: operands `x, starts, ends[, axes[, steps]]` with ONNX clamping.
fn slice(op: &Op, inputs: &[Option<&Tensor>]) -> Result<Tensor, InterpError> {
    let x = arg(op, inputs, 0)?;
    let starts = ints(op, arg(op, inputs, 1)?, "starts")?;
    let ends = ints(op, arg(op, inputs, 2)?, "ends")?;
    let r = x.rank();
    let axes: Vec<usize> = match opt_arg(inputs, 3) {
        Some(a) => ints(op, a, "axes")?
            .into_iter()
            .map(|a| norm_index(op, a, r, "axis"))
            .collect::<Result<_, _>>()?,
        None if starts.len() <= r => (0..starts.len()).collect(),
        None => {
            return Err(InterpError::invalid(
                op,
                format!("{} starts for rank {r}", starts.len()),
            ))
        }
    };
    let steps = match opt_arg(inputs, 4) {
        Some(s) => ints(op, s, "steps")?,
        None => vec![1; starts.len()],
    };
    if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
        return Err(InterpError::invalid(
            op,
            "starts, ends, axes and steps differ in length",
        ));
    }
    let mut maps: Vec<Option<Vec<Option<usize>>>> = vec![None; r];
    for i in 0..starts.len() {
        let (a, step) = (axes[i], steps[i]);
        if step == 0 {
            return Err(InterpError::invalid(op, "step is zero"));
        }
        if maps[a].is_some() {
            return Err(InterpError::invalid(op, format!("axis {a} repeats")));
        }
        let dim = x.shape()[a] as i64;
        let norm = |v: i64| if v < 0 { v.saturating_add(dim) } else { v };
        let (mut s, mut e) = (norm(starts[i]), norm(ends[i]));
        let mut positions = Vec::new();
        if dim > 0 {
            if step > 0 {
                s = s.clamp(0, dim);
                e = e.clamp(0, dim);
                while s < e {
                    positions.push(Some(s as usize));
                    s = s.saturating_add(step);
                }
            } else {
                s = s.clamp(0, dim - 1);
                e = e.clamp(-1, dim - 1);
                while s > e {
                    positions.push(Some(s as usize));
                    s = s.saturating_add(step);
                }
            }
        }
        maps[a] = Some(positions);
    }
    let maps: Vec<Vec<Option<usize>>> = maps
        .into_iter()
        .enumerate()
        .map(|(a, m)| m.unwrap_or_else(|| (0..x.shape()[a]).map(Some).collect()))
        .collect();
    let shape = maps.iter().map(Vec::len).collect();
    take(op, x, shape, &axis_map_indices(x.shape(), &maps))
}

/// `Pad`: operands `x, pads[, constant_value[, axes]]`; negative pads crop.
fn pad(op: &Op, inputs: &[Option<&Tensor>], mode: &str) -> Result<Tensor, InterpError> {
    let x = arg(op, inputs, 0)?;
    let pads = ints(op, arg(op, inputs, 1)?, "pads")?;
    let fill = match opt_arg(inputs, 2) {
        Some(c) if c.numel() > 0 => c.data().get_f64(0),
        _ => 0.0,
    };
    let r = x.rank();
    let axes: Vec<usize> = match opt_arg(inputs, 3) {
        Some(a) => ints(op, a, "axes")?
            .into_iter()
            .map(|a| norm_index(op, a, r, "axis"))
            .collect::<Result<_, _>>()?,
        None => (0..r).collect(),
    };
    if pads.len() != 2 * axes.len() {
        return Err(InterpError::invalid(
            op,
            format!("{} pads for {} axes", pads.len(), axes.len()),
        ));
    }
    if !matches!(mode, "constant" | "reflect" | "edge" | "wrap") {
        return Err(InterpError::unsupported(op, format!("mode `{mode}`")));
    }
    // Begin and end pads of every axis, then the result shape, checked before any allocation.
    let mut begin = vec![0i64; r];
    let mut end = vec![0i64; r];
    let mut seen = vec![false; r];
    for (i, &a) in axes.iter().enumerate() {
        if std::mem::replace(&mut seen[a], true) {
            return Err(InterpError::invalid(op, format!("axis {a} repeats")));
        }
        begin[a] = pads[i];
        end[a] = pads[axes.len() + i];
    }
    let mut shape = Vec::with_capacity(r);
    for a in 0..r {
        let (b, e) = (begin[a], end[a]);
        let dim = x.shape()[a] as i64;
        let len = dim.saturating_add(b).saturating_add(e);
        if len < 0 {
            return Err(InterpError::invalid(
                op,
                format!("pads {b}, {e} crop more than dimension {a} of {dim}"),
            ));
        }
        if dim == 0 && mode != "constant" && len > 0 {
            return Err(InterpError::invalid(
                op,
                format!("cannot {mode}-pad the empty dimension {a}"),
            ));
        }
        shape.push(usize::try_from(len).unwrap_or(usize::MAX));
    }
    checked_numel(op, &shape)?;
    let maps: Vec<Vec<Option<usize>>> = (0..r)
        .map(|a| {
            let (b, dim) = (begin[a], x.shape()[a] as i64);
            (0..shape[a] as i64)
                .map(|p| {
                    let c = p.saturating_sub(b);
                    if (0..dim).contains(&c) {
                        return Some(c as usize);
                    }
                    match mode {
                        "edge" => Some(c.clamp(0, dim - 1) as usize),
                        "wrap" => Some(c.rem_euclid(dim) as usize),
                        "reflect" if dim == 1 => Some(0),
                        "reflect" => {
                            let period = 2 * (dim - 1);
                            let m = c.rem_euclid(period);
                            Some(if m >= dim { period - m } else { m } as usize)
                        }
                        _ => None,
                    }
                })
                .collect()
        })
        .collect();
    take_or_fill(op, x, shape, &axis_map_indices(x.shape(), &maps), fill)
}

/// Checks a rank-4 input and a positive block size.
fn block_dims(op: &Op, x: &Tensor, blocksize: i64) -> Result<([usize; 4], usize), InterpError> {
    match (x.shape(), blocksize) {
        (&[n, c, h, w], b) if (1..=MAX_BLOCK).contains(&b) => Ok(([n, c, h, w], b as usize)),
        _ => Err(InterpError::invalid(
            op,
            format!(
                "needs a rank-4 input and a positive block size, got {:?} and {blocksize}",
                x.shape()
            ),
        )),
    }
}

/// `DepthToSpace` in `DCR` or `CRD` order.
fn depth_to_space(op: &Op, x: &Tensor, blocksize: i64, mode: &str) -> Result<Tensor, InterpError> {
    let ([n, c, h, w], b) = block_dims(op, x, blocksize)?;
    if !c.is_multiple_of(b * b) {
        return Err(InterpError::invalid(
            op,
            format!("{c} channels are not a multiple of {}", b * b),
        ));
    }
    let c2 = c / (b * b);
    let (view, perm): (Vec<usize>, [usize; 6]) = match mode {
        "DCR" => (vec![n, b, b, c2, h, w], [0, 3, 4, 1, 5, 2]),
        "CRD" => (vec![n, c2, b, b, h, w], [0, 1, 4, 2, 5, 3]),
        other => return Err(InterpError::unsupported(op, format!("mode `{other}`"))),
    };
    take(
        op,
        x,
        vec![n, c2, h * b, w * b],
        &permute_indices(&view, &perm),
    )
}

/// `SpaceToDepth`.
fn space_to_depth(op: &Op, x: &Tensor, blocksize: i64) -> Result<Tensor, InterpError> {
    let ([n, c, h, w], b) = block_dims(op, x, blocksize)?;
    if !h.is_multiple_of(b) || !w.is_multiple_of(b) {
        return Err(InterpError::invalid(
            op,
            format!("spatial size {h}x{w} is not a multiple of {b}"),
        ));
    }
    let view = [n, c, h / b, b, w / b, b];
    take(
        op,
        x,
        vec![n, c * b * b, h / b, w / b],
        &permute_indices(&view, &[0, 3, 5, 1, 2, 4]),
    )
}

#[cfg(test)]
#[path = "movement_tests.rs"]
mod tests;
