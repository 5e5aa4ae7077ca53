//! Shape inference of the remaining shape-family ops: `Pad`, `Resize`, `Shape`, `Size`,
//! `ConstantOfShape`, `Range`, `Trilu`, `DepthToSpace` and `SpaceToDepth`.

use super::ctx::Ctx;
use super::dims::{add, scale, unknown};
use super::ShapeError;
use crate::op::Op;
use crate::types::{DType, Dim, TensorType};

/// Infers the results of a shape-family op other than the plain data-movement ones.
pub(crate) fn infer(cx: &Ctx) -> Result<Vec<TensorType>, ShapeError> {
    let x = cx.ty(0)?;
    let t = match cx.op {
        Op::Pad { mode } => cx.out(x.dtype, pad(cx, x, mode)?),
        Op::Resize {
            axes,
            keep_aspect_ratio_policy,
            ..
        } => cx.out(x.dtype, resize(cx, x, axes, keep_aspect_ratio_policy)?),
        Op::Shape { start, end } => {
            let r = x.rank() as i128;
            let clamp = |v: i64| {
                let v = v as i128;
                (if v < 0 { v + r } else { v }).clamp(0, r)
            };
            let n = (clamp(*end) - clamp(*start)).max(0);
            cx.out(DType::I64, vec![Dim::Known(n as usize)])
        }
        Op::Size {} => cx.out(DType::I64, vec![]),
        Op::ConstantOfShape { value } => cx.out(value.dtype, constant_of_shape(cx)?),
        Op::Range {} => range(cx)?,
        Op::Trilu { .. } => {
            cx.expect_min_rank(0, 2)?;
            if cx.opt(1).is_some() {
                cx.expect_int(1)?;
                cx.expect_scalar(1)?;
            }
            x.clone()
        }
        Op::DepthToSpace { blocksize, mode } => {
            if mode != "DCR" && mode != "CRD" {
                return Err(cx.err(format!("unknown mode \"{mode}\", expected DCR or CRD")));
            }
            let b = block(cx, x, *blocksize)?;
            let c = divide(cx, &x.dims[1], b * b, 1)?;
            cx.out(
                x.dtype,
                vec![
                    x.dims[0].clone(),
                    c,
                    scale(&x.dims[2], b),
                    scale(&x.dims[3], b),
                ],
            )
        }
        Op::SpaceToDepth { blocksize } => {
            let b = block(cx, x, *blocksize)?;
            cx.out(
                x.dtype,
                vec![
                    x.dims[0].clone(),
                    scale(&x.dims[1], b * b),
                    divide(cx, &x.dims[2], b, 2)?,
                    divide(cx, &x.dims[3], b, 3)?,
                ],
            )
        }
        _ => return Err(cx.err("is not a shape op")),
    };
    Ok(vec![t])
}

/// Checks `x` is 4-D and the block size is positive.
fn block(cx: &Ctx, x: &TensorType, blocksize: i64) -> Result<usize, ShapeError> {
    cx.expect_rank(0, 4)?;
    if !(1..=i64::from(u32::MAX)).contains(&blocksize) {
        return Err(cx.err(format!(
            "attribute blocksize is {blocksize}, expected at least 1 (operand 0 {x})"
        )));
    }
    Ok(blocksize as usize)
}

/// `d / k` for dimension `axis` of operand 0, which must divide exactly when known.
fn divide(cx: &Ctx, d: &Dim, k: usize, axis: usize) -> Result<Dim, ShapeError> {
    match d {
        Dim::Known(n) if n % k == 0 => Ok(Dim::Known(n / k)),
        Dim::Known(n) => Err(cx.err(format!(
            "operand 0 {} has size {n} at axis {axis}, which is not a multiple of {k}",
            cx.ty(0)?
        ))),
        Dim::Sym(_) if k == 1 => Ok(d.clone()),
        Dim::Sym(_) => Ok(unknown()),
    }
}

/// True when optional operand `k` is present and not an empty tensor.
fn given(cx: &Ctx, k: usize) -> bool {
    match cx.opt(k) {
        None => false,
        Some(f) => match f.value {
            Some(v) => v.numel() > 0,
            None => f.ty.numel() != Some(0),
        },
    }
}

fn pad(cx: &Ctx, x: &TensorType, mode: &str) -> Result<Vec<Dim>, ShapeError> {
    if !["constant", "reflect", "edge", "wrap"].contains(&mode) {
        return Err(cx.err(format!("unknown mode \"{mode}\"")));
    }
    let r = x.rank();
    let len = cx.expect_int_list(1)?;
    if cx.opt(2).is_some() {
        cx.expect_scalar(2)?;
    }
    let axes: Vec<usize> = match cx.opt_const_ints(3)? {
        None => (0..r).collect(),
        Some(None) => return Ok(vec![unknown(); r]),
        Some(Some(v)) => cx.axes(&v, r)?,
    };
    if len.is_some_and(|n| n != 2 * axes.len()) {
        return Err(cx.shape_err(1, &[(2 * axes.len()).to_string()]));
    }
    let mut dims = x.dims.clone();
    let Some(p) = cx.const_ints(1)? else {
        for &a in &axes {
            dims[a] = unknown();
        }
        return Ok(dims);
    };
    let n = axes.len();
    for (i, &a) in axes.iter().enumerate() {
        let delta = p[i].saturating_add(p[n + i]);
        dims[a] = add(&x.dims[a], delta).ok_or_else(|| {
            cx.err(format!(
                "operand 1 {p:?} pads axis {a} of operand 0 {x} to a negative size"
            ))
        })?;
    }
    Ok(dims)
}

fn resize(cx: &Ctx, x: &TensorType, axes: &[i64], policy: &str) -> Result<Vec<Dim>, ShapeError> {
    let r = x.rank();
    let axes: Vec<usize> = if axes.is_empty() {
        (0..r).collect()
    } else {
        cx.axes(axes, r)?
    };
    let n = axes.len();
    let mut dims = x.dims.clone();
    if given(cx, 3) {
        let len = cx.expect_int_list(3)?;
        if len.is_some_and(|l| l != n) {
            return Err(cx.shape_err(3, &[n.to_string()]));
        }
        let Some(sizes) = cx.const_ints(3)? else {
            for &a in &axes {
                dims[a] = unknown();
            }
            return Ok(dims);
        };
        if let Some(s) = sizes.iter().find(|&&s| s < 0) {
            return Err(cx.err(format!("operand 3 {sizes:?} has the negative size {s}")));
        }
        match policy {
            "stretch" => {
                for (i, &a) in axes.iter().enumerate() {
                    dims[a] = Dim::Known(sizes[i] as usize);
                }
            }
            "not_larger" | "not_smaller" => {
                let ins: Option<Vec<usize>> = axes.iter().map(|&a| x.dims[a].known()).collect();
                let Some(ins) = ins else {
                    for &a in &axes {
                        dims[a] = unknown();
                    }
                    return Ok(dims);
                };
                let ratios = sizes.iter().zip(&ins).map(|(&s, &i)| s as f64 / i as f64);
                let s = if policy == "not_larger" {
                    ratios.fold(f64::INFINITY, f64::min)
                } else {
                    ratios.fold(f64::NEG_INFINITY, f64::max)
                };
                for (i, &a) in axes.iter().enumerate() {
                    // Round half up, as the ONNX reference does.
                    dims[a] = Dim::Known((s * ins[i] as f64 + 0.5).floor().max(0.0) as usize);
                }
            }
            _ => return Err(cx.err(format!("unknown keep_aspect_ratio_policy \"{policy}\""))),
        }
        return Ok(dims);
    }
    if !given(cx, 2) {
        return Err(cx.err("needs operand 2 (scales) or operand 3 (sizes)"));
    }
    cx.expect_float(2)?;
    let t = cx.ty(2)?;
    if t.rank() != 1 {
        return Err(cx.shape_err(2, &[n.to_string()]));
    }
    let Some(v) = cx.value(2) else {
        if t.dims[0].known().is_some_and(|l| l != n) {
            return Err(cx.shape_err(2, &[n.to_string()]));
        }
        for &a in &axes {
            dims[a] = unknown();
        }
        return Ok(dims);
    };
    let scales = v.to_f64_vec();
    if scales.len() != n {
        return Err(cx.shape_err(2, &[n.to_string()]));
    }
    for (i, &a) in axes.iter().enumerate() {
        let s = scales[i];
        if !(s > 0.0 && s.is_finite()) {
            return Err(cx.err(format!(
                "operand 2 {scales:?} has the invalid scale {s}, expected a positive number"
            )));
        }
        // floor(in * scale) in f64, as the ONNX reference computes it.
        dims[a] = match &x.dims[a] {
            Dim::Known(d) => Dim::Known((*d as f64 * s).floor() as usize),
            d if s == 1.0 => d.clone(),
            _ => unknown(),
        };
    }
    Ok(dims)
}

fn constant_of_shape(cx: &Ctx) -> Result<Vec<Dim>, ShapeError> {
    let len = cx.expect_int_list(0)?;
    match cx.const_ints(0)? {
        Some(v) => {
            if let Some(s) = v.iter().find(|&&s| s < 0) {
                return Err(cx.err(format!("operand 0 {v:?} has the negative size {s}")));
            }
            Ok(v.iter().map(|&s| Dim::Known(s as usize)).collect())
        }
        None => match len {
            Some(n) => Ok(vec![unknown(); n]),
            None => Err(cx.err(format!(
                "cannot infer the rank: operand 0 {} is not a constant and its length is unknown",
                cx.ty(0)?
            ))),
        },
    }
}

fn range(cx: &Ctx) -> Result<TensorType, ShapeError> {
    let dtype = cx.ty(0)?.dtype;
    if dtype == DType::Bool || dtype == DType::U8 {
        return Err(cx.err(format!(
            "operand 0 has element type {dtype}, expected a float or signed integer type"
        )));
    }
    for k in 0..3 {
        cx.same_dtype(k, 0)?;
        cx.expect_scalar(k)?;
    }
    let vals: Vec<Option<&crate::tensor::Tensor>> = (0..3).map(|k| cx.value(k)).collect();
    let n = match vals.as_slice() {
        [Some(s), Some(l), Some(d)] if s.numel() == 1 && l.numel() == 1 && d.numel() == 1 => {
            let len = if dtype.is_int() {
                let (s, l, d) = (
                    s.to_i64_vec()[0] as i128,
                    l.to_i64_vec()[0] as i128,
                    d.to_i64_vec()[0] as i128,
                );
                if d == 0 {
                    return Err(cx.err("operand 2 (delta) is zero"));
                }
                ceil_div(l - s, d).max(0)
            } else {
                let (s, l, d) = (
                    s.data().get_f64(0),
                    l.data().get_f64(0),
                    d.data().get_f64(0),
                );
                if d == 0.0 {
                    return Err(cx.err("operand 2 (delta) is zero"));
                }
                // limit - start in the element type, then the division in f64.
                let diff = if dtype == DType::F64 {
                    l - s
                } else {
                    (l as f32 - s as f32) as f64
                };
                let q = (diff / d).ceil();
                if !q.is_finite() {
                    return Err(cx.err(format!("operands give a range of {q} elements")));
                }
                q.max(0.0) as i128
            };
            Dim::Known(usize::try_from(len).map_err(|_| cx.err("range is too long"))?)
        }
        _ => unknown(),
    };
    Ok(cx.out(dtype, vec![n]))
}

/// `ceil(a / d)` for integers of any sign (`d` nonzero).
fn ceil_div(a: i128, d: i128) -> i128 {
    let q = a / d;
    // Truncation rounds toward zero, which is the ceiling only for a negative quotient.
    if a % d != 0 && (a < 0) == (d < 0) {
        q + 1
    } else {
        q
    }
}
