//! Shape inference of gathers and scatters: `Gather`, `GatherElements`, `GatherNd`, `ScatterNd`,
//! `ScatterElements` and `OneHot`.

use super::ctx::Ctx;
use super::dims::{unify, unknown};
use super::ShapeError;
use crate::op::Op;
use crate::types::{Dim, TensorType};

/// Infers the result of a gather or scatter op.
pub(crate) fn infer(cx: &Ctx) -> Result<Vec<TensorType>, ShapeError> {
    let data = cx.ty(0)?;
    let t = match cx.op {
        Op::Gather { axis } => {
            cx.expect_min_rank(0, 1)?;
            cx.expect_int(1)?;
            let a = cx.axis(*axis, data.rank())?;
            let mut dims = data.dims[..a].to_vec();
            dims.extend(cx.ty(1)?.dims.iter().cloned());
            dims.extend(data.dims[a + 1..].iter().cloned());
            cx.out(data.dtype, dims)
        }
        Op::GatherElements { axis } => {
            cx.expect_min_rank(0, 1)?;
            cx.expect_int(1)?;
            cx.axis(*axis, data.rank())?;
            let idx = cx.expect_rank(1, data.rank())?;
            cx.out(data.dtype, idx.dims.clone())
        }
        Op::GatherNd { batch_dims } => gather_nd(cx, data, *batch_dims)?,
        Op::ScatterNd { reduction } => {
            check_reduction(cx, reduction)?;
            scatter_nd(cx, data)?;
            data.clone()
        }
        Op::ScatterElements { axis, reduction } => {
            check_reduction(cx, reduction)?;
            cx.expect_min_rank(0, 1)?;
            cx.axis(*axis, data.rank())?;
            cx.expect_int(1)?;
            cx.same_dtype(2, 0)?;
            let idx = cx.expect_rank(1, data.rank())?;
            let upd = cx.ty(2)?;
            let same = upd.rank() == idx.rank()
                && upd
                    .dims
                    .iter()
                    .zip(&idx.dims)
                    .all(|(u, i)| unify(u, i).is_some());
            if !same {
                let want: Vec<String> = idx.dims.iter().map(Dim::to_string).collect();
                return Err(cx.shape_err(2, &want));
            }
            data.clone()
        }
        Op::OneHot { axis } => one_hot(cx, *axis)?,
        _ => return Err(cx.err("is not a gather or scatter op")),
    };
    Ok(vec![t])
}

fn check_reduction(cx: &Ctx, reduction: &str) -> Result<(), ShapeError> {
    if ["none", "add", "mul", "max", "min"].contains(&reduction) {
        Ok(())
    } else {
        Err(cx.err(format!("unknown reduction \"{reduction}\"")))
    }
}

/// The length of the index tuples (the last dimension of operand 1), which must be known.
fn tuple_len(cx: &Ctx, indices: &TensorType) -> Result<usize, ShapeError> {
    let last = indices.dims.last().and_then(Dim::known);
    last.ok_or_else(|| {
        cx.err(format!(
            "operand 1 has shape {indices}, whose last dimension (the index tuple length) must be known"
        ))
    })
}

fn gather_nd(cx: &Ctx, data: &TensorType, batch_dims: i64) -> Result<TensorType, ShapeError> {
    cx.expect_min_rank(0, 1)?;
    cx.expect_int(1)?;
    let idx = cx.expect_min_rank(1, 1)?;
    let (r, q) = (data.rank(), idx.rank());
    let b = usize::try_from(batch_dims)
        .ok()
        .filter(|&b| b < r.min(q))
        .ok_or_else(|| {
            cx.err(format!(
                "attribute batch_dims is {batch_dims}, expected 0 to {} for operand 0 {data} and operand 1 {idx}",
                r.min(q).saturating_sub(1)
            ))
        })?;
    let last = tuple_len(cx, idx)?;
    if last < 1 || last > r - b {
        return Err(cx.err(format!(
            "operand 1 has shape {idx}, whose index tuples of length {last} do not fit operand 0 {data} with batch_dims {b}"
        )));
    }
    let mut dims = Vec::new();
    for i in 0..b {
        dims.push(unify(&data.dims[i], &idx.dims[i]).ok_or_else(|| {
            cx.err(format!(
                "operand 1 {idx} and operand 0 {data} differ in batch dimension {i}"
            ))
        })?);
    }
    dims.extend(idx.dims[b..q - 1].iter().cloned());
    dims.extend(data.dims[b + last..].iter().cloned());
    Ok(cx.out(data.dtype, dims))
}

fn scatter_nd(cx: &Ctx, data: &TensorType) -> Result<(), ShapeError> {
    cx.expect_min_rank(0, 1)?;
    cx.expect_int(1)?;
    cx.same_dtype(2, 0)?;
    let idx = cx.expect_min_rank(1, 1)?;
    let last = tuple_len(cx, idx)?;
    if last > data.rank() {
        return Err(cx.err(format!(
            "operand 1 has shape {idx}, whose index tuples of length {last} exceed the rank of operand 0 {data}"
        )));
    }
    let want: Vec<Dim> = idx.dims[..idx.rank() - 1]
        .iter()
        .chain(&data.dims[last..])
        .cloned()
        .collect();
    let upd = cx.ty(2)?;
    let ok = upd.rank() == want.len()
        && upd
            .dims
            .iter()
            .zip(&want)
            .all(|(u, w)| unify(u, w).is_some());
    if !ok {
        let want: Vec<String> = want.iter().map(Dim::to_string).collect();
        return Err(cx.shape_err(2, &want));
    }
    Ok(())
}

fn one_hot(cx: &Ctx, axis: i64) -> Result<TensorType, ShapeError> {
    let idx = cx.ty(0)?;
    let r = idx.rank();
    let values = cx.ty(2)?;
    if values.rank() != 1 || unify(&values.dims[0], &Dim::Known(2)).is_none() {
        return Err(cx.shape_err(2, &["2".to_string()]));
    }
    let a = cx.axis(axis, r + 1)?;
    let depth = match cx.const_scalar_f64(1)? {
        Some(d) if d >= 1.0 && d <= u32::MAX as f64 => Dim::Known(d as usize),
        Some(d) => {
            return Err(cx.err(format!(
                "operand 1 (depth) is {d}, expected a positive number"
            )))
        }
        None => unknown(),
    };
    let mut dims = idx.dims.clone();
    dims.insert(a, depth);
    Ok(cx.out(values.dtype, dims))
}
