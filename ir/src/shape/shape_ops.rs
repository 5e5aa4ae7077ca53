//! Shape inference of data-movement ops whose result shape comes from attributes or constant
//! operands: `Reshape`, `Flatten`, `Transpose`, `Squeeze`, `Unsqueeze`, `Concat`, `Split`,
//! `Slice`, `Expand` and `Tile`.

use super::ctx::Ctx;
use super::dims::{
    broadcast, broadcast_dim, fmt_dims, is_unknown, product, scale, sum, unify, unknown,
};
use super::ShapeError;
use crate::op::Op;
use crate::types::{Dim, TensorType};

/// Infers the results of a data-movement op.
pub(crate) fn infer(cx: &Ctx) -> Result<Vec<TensorType>, ShapeError> {
    let x = cx.ty(0)?;
    let one = |dims: Vec<Dim>| Ok(vec![cx.out(x.dtype, dims)]);
    match cx.op {
        Op::Reshape { allowzero } => one(reshape(cx, x, *allowzero != 0)?),
        Op::Flatten { axis } => {
            let r = x.rank() as i64;
            let a = if *axis < 0 { axis + r } else { *axis };
            if !(0..=r).contains(&a) {
                return Err(cx.err(format!("axis {axis} is out of range for rank {r}")));
            }
            let (outer, inner) = x.dims.split_at(a as usize);
            one(vec![product(outer), product(inner)])
        }
        Op::Transpose { perm } => {
            let r = x.rank();
            let perm: Vec<usize> = if perm.is_empty() {
                (0..r).rev().collect()
            } else {
                if perm.len() != r {
                    return Err(cx.err(format!(
                        "attribute perm {perm:?} has {} entries, but operand 0 {x} has rank {r}",
                        perm.len()
                    )));
                }
                cx.axes(perm, r)?
            };
            one(perm.iter().map(|&p| x.dims[p].clone()).collect())
        }
        Op::Squeeze {} => one(squeeze(cx, x)?),
        Op::Unsqueeze {} => one(unsqueeze(cx, x)?),
        Op::Concat { axis } => one(concat(cx, *axis)?),
        Op::Split { axis, num_outputs } => split(cx, x, *axis, *num_outputs),
        Op::Slice {} => one(slice(cx, x)?),
        Op::Expand {} => one(expand(cx, x)?),
        Op::Tile {} => one(tile(cx, x)?),
        _ => Err(cx.err("is not a data-movement op")),
    }
}

/// Checks the length of list operand `k` against `want` (both when known).
fn expect_len(cx: &Ctx, k: usize, len: Option<usize>, want: usize) -> Result<(), ShapeError> {
    match len {
        Some(n) if n != want => Err(cx.shape_err(k, &[want.to_string()])),
        _ => Ok(()),
    }
}

/// A rank that must come from the length of list operand `k` when its values are unknown.
fn rank_from_len(cx: &Ctx, k: usize, len: Option<usize>, what: &str) -> Result<usize, ShapeError> {
    len.ok_or_else(|| {
        let t = cx.opt(k).map(|f| f.ty.to_string()).unwrap_or_default();
        cx.err(format!(
            "cannot infer the rank: operand {k} ({what}) {t} is not a constant and its length is unknown"
        ))
    })
}

fn reshape(cx: &Ctx, x: &TensorType, allowzero: bool) -> Result<Vec<Dim>, ShapeError> {
    let len = cx.expect_int_list(1)?;
    let Some(v) = cx.const_ints(1)? else {
        let n = rank_from_len(cx, 1, len, "shape")?;
        return Ok(vec![unknown(); n]);
    };
    let mut out: Vec<Option<Dim>> = Vec::with_capacity(v.len());
    let mut infer_at = None;
    for (i, &s) in v.iter().enumerate() {
        out.push(match s {
            -1 => {
                if infer_at.is_some() {
                    return Err(cx.err(format!("operand 1 {v:?} has more than one -1")));
                }
                infer_at = Some(i);
                None
            }
            0 if !allowzero => Some(x.dims.get(i).cloned().ok_or_else(|| {
                cx.err(format!(
                    "operand 1 {v:?} copies dimension {i} with 0, but operand 0 {x} has rank {}",
                    x.rank()
                ))
            })?),
            s if s < 0 => {
                return Err(cx.err(format!("operand 1 {v:?} has the invalid size {s}")));
            }
            s => Some(Dim::Known(s as usize)),
        });
    }
    if allowzero && infer_at.is_some() && v.contains(&0) {
        return Err(cx.err(format!(
            "operand 1 {v:?} has both 0 and -1, which allowzero forbids"
        )));
    }
    // Cancel named symbols that appear on both sides, then compare the known products.
    let mut x_rest: Vec<Dim> = x.dims.clone();
    let mut o_rest: Vec<Dim> = Vec::new();
    for d in out.iter().flatten() {
        let pos = x_rest
            .iter()
            .position(|e| d.known().is_none() && !is_unknown(d) && e == d);
        match pos {
            Some(p) => {
                x_rest.remove(p);
            }
            None => o_rest.push(d.clone()),
        }
    }
    let known = |dims: &[Dim]| -> Option<u128> {
        dims.iter()
            .filter_map(Dim::known)
            .try_fold(1u128, |a, n| a.checked_mul(n as u128))
    };
    let x_syms: Vec<&Dim> = x_rest.iter().filter(|d| d.known().is_none()).collect();
    let o_syms = o_rest.iter().filter(|d| d.known().is_none()).count();
    let (Some(px), Some(po)) = (known(&x_rest), known(&o_rest)) else {
        return Err(cx.err(format!("operand 1 {v:?} has a size product that overflows")));
    };
    let mismatch = || {
        cx.err(format!(
            "cannot reshape operand 0 {x} to {v:?}: the element counts differ"
        ))
    };
    match infer_at {
        None => {
            if x_syms.is_empty() && o_syms == 0 && px != po {
                return Err(mismatch());
            }
        }
        Some(i) => {
            let d = match (x_syms.as_slice(), o_syms) {
                _ if po == 0 => unknown(),
                ([], 0) if px % po != 0 => return Err(mismatch()),
                ([], 0) => Dim::Known((px / po) as usize),
                ([s], 0) if px == po => (*s).clone(),
                _ => unknown(),
            };
            out[i] = Some(d);
        }
    }
    Ok(out.into_iter().map(|d| d.unwrap_or_else(unknown)).collect())
}

fn squeeze(cx: &Ctx, x: &TensorType) -> Result<Vec<Dim>, ShapeError> {
    let r = x.rank();
    let drop_ones = || -> Vec<Dim> {
        x.dims
            .iter()
            .filter(|d| d.known() != Some(1))
            .cloned()
            .collect()
    };
    let Some(v) = cx.opt_const_ints(1)? else {
        return Ok(drop_ones());
    };
    let len = cx.expect_int_list(1)?;
    let Some(v) = v else {
        if len == Some(0) {
            return Ok(drop_ones());
        }
        let n = rank_from_len(cx, 1, len, "axes")?;
        if n > r {
            return Err(cx.err(format!(
                "operand 1 lists {n} axes, but operand 0 {x} has rank {r}"
            )));
        }
        return Ok(vec![unknown(); r - n]);
    };
    if v.is_empty() {
        return Ok(drop_ones());
    }
    let axes = cx.axes(&v, r)?;
    for &a in &axes {
        if let Some(n) = x.dims[a].known().filter(|&n| n != 1) {
            return Err(cx.err(format!(
                "operand 0 {x} has size {n} at axis {a}, which squeeze cannot remove"
            )));
        }
    }
    Ok(x.dims
        .iter()
        .enumerate()
        .filter(|(i, _)| !axes.contains(i))
        .map(|(_, d)| d.clone())
        .collect())
}

fn unsqueeze(cx: &Ctx, x: &TensorType) -> Result<Vec<Dim>, ShapeError> {
    let len = cx.expect_int_list(1)?;
    let Some(v) = cx.const_ints(1)? else {
        let n = rank_from_len(cx, 1, len, "axes")?;
        return Ok(vec![unknown(); x.rank() + n]);
    };
    let out_rank = x.rank() + v.len();
    let axes = cx.axes(&v, out_rank)?;
    let mut rest = x.dims.iter();
    Ok((0..out_rank)
        .map(|i| {
            if axes.contains(&i) {
                Dim::Known(1)
            } else {
                rest.next().cloned().unwrap_or_else(unknown)
            }
        })
        .collect())
}

fn concat(cx: &Ctx, axis: i64) -> Result<Vec<Dim>, ShapeError> {
    let first = cx.ty(0)?;
    let r = first.rank();
    let a = cx.axis(axis, r)?;
    let mut dims = first.dims.clone();
    let mut along = vec![first.dims[a].clone()];
    for k in 1..cx.inputs.len() {
        let t = cx.ty(k)?;
        cx.same_dtype(k, 0)?;
        let mismatch = || {
            let want: Vec<String> = (0..r)
                .map(|i| {
                    if i == a {
                        "*".to_string()
                    } else {
                        dims[i].to_string()
                    }
                })
                .collect();
            cx.shape_err(k, &want)
        };
        if t.rank() != r {
            return Err(mismatch());
        }
        let mut next = dims.clone();
        for i in (0..r).filter(|&i| i != a) {
            next[i] = unify(&dims[i], &t.dims[i]).ok_or_else(mismatch)?;
        }
        dims = next;
        along.push(t.dims[a].clone());
    }
    dims[a] = sum(&along);
    Ok(dims)
}

fn split(
    cx: &Ctx,
    x: &TensorType,
    axis: i64,
    num_outputs: i64,
) -> Result<Vec<TensorType>, ShapeError> {
    let a = cx.axis(axis, x.rank())?;
    let n = cx.n_outputs;
    if num_outputs != 0 && num_outputs as u64 != n as u64 {
        return Err(cx.err(format!(
            "attribute num_outputs is {num_outputs}, but {n} results are requested"
        )));
    }
    let d = &x.dims[a];
    let sizes: Vec<Dim> = match cx.opt_const_ints(1)? {
        Some(Some(v)) if !v.is_empty() => {
            if v.len() != n {
                return Err(cx.err(format!(
                    "operand 1 {v:?} lists {} sizes, but {n} results are requested",
                    v.len()
                )));
            }
            if let Some(s) = v.iter().find(|&&s| s < 0) {
                return Err(cx.err(format!("operand 1 {v:?} has the negative size {s}")));
            }
            let total = v.iter().map(|&s| s as u128).sum::<u128>();
            if let Some(dn) = d.known() {
                if total != dn as u128 {
                    return Err(cx.err(format!(
                        "operand 1 {v:?} sums to {total}, but operand 0 {x} has size {dn} along axis {a}"
                    )));
                }
            }
            v.iter().map(|&s| Dim::Known(s as usize)).collect()
        }
        Some(None) => {
            let len = cx.expect_int_list(1)?;
            if len.is_some_and(|l| l != 0 && l != n) {
                return Err(cx.shape_err(1, &[n.to_string()]));
            }
            if len == Some(0) {
                equal_parts(cx, x, a, n)?
            } else {
                vec![unknown(); n]
            }
        }
        _ => equal_parts(cx, x, a, n)?,
    };
    Ok(sizes
        .into_iter()
        .map(|s| {
            let mut dims = x.dims.clone();
            dims[a] = s;
            cx.out(x.dtype, dims)
        })
        .collect())
}

/// Split sizes without a sizes operand: equal parts, the last one smaller when uneven.
fn equal_parts(cx: &Ctx, x: &TensorType, a: usize, n: usize) -> Result<Vec<Dim>, ShapeError> {
    let d = &x.dims[a];
    let Some(dn) = d.known() else {
        return Ok(if n == 1 {
            vec![d.clone()]
        } else {
            vec![unknown(); n]
        });
    };
    let chunk = dn.div_ceil(n);
    let last = dn as i128 - (chunk * (n - 1)) as i128;
    if last < 0 {
        return Err(cx.err(format!(
            "operand 0 {x} has size {dn} along axis {a}, which cannot be split into {n} parts"
        )));
    }
    let mut out = vec![Dim::Known(chunk); n - 1];
    out.push(Dim::Known(last as usize));
    Ok(out)
}

/// The length of a slice `start..end` by `step` of a dimension.
fn slice_len(d: &Dim, start: i64, end: i64, step: i64) -> Dim {
    // Ends such as i64::MAX mean "to the end"; compute in i128 so nothing overflows.
    let (s, e, t) = (start as i128, end as i128, step as i128);
    let huge = i32::MAX as i128;
    let Some(n) = d.known() else {
        let whole =
            (t == 1 && s == 0 && e >= huge) || (t == -1 && (s == -1 || s >= huge) && e <= -huge);
        return if whole { d.clone() } else { unknown() };
    };
    let n = n as i128;
    let s = if s < 0 { s + n } else { s };
    let e = if e < 0 { e + n } else { e };
    let len = if t > 0 {
        let (s, e) = (s.clamp(0, n), e.clamp(0, n));
        if e > s {
            (e - s + t - 1) / t
        } else {
            0
        }
    } else {
        if n == 0 {
            return Dim::Known(0);
        }
        let (s, e) = (s.clamp(0, n - 1), e.clamp(-1, n - 1));
        if s > e {
            (s - e - t - 1) / -t
        } else {
            0
        }
    };
    Dim::Known(len as usize)
}

fn slice(cx: &Ctx, x: &TensorType) -> Result<Vec<Dim>, ShapeError> {
    let r = x.rank();
    let mut lens = Vec::new();
    for k in 1..5 {
        if cx.opt(k).is_some() {
            lens.push((k, cx.expect_int_list(k)?));
        }
    }
    let n = lens.iter().find_map(|(_, l)| *l);
    if let Some(n) = n {
        for (k, l) in &lens {
            expect_len(cx, *k, *l, n)?;
        }
    }
    let axes: Option<Vec<usize>> = match cx.opt_const_ints(3)? {
        None => n.map(|n| (0..n.min(r)).collect()),
        Some(None) => None,
        Some(Some(v)) => Some(cx.axes(&v, r)?),
    };
    if n.is_some_and(|n| n > r) {
        return Err(cx.err(format!(
            "operands 1 and 2 list {} axes, but operand 0 {x} has rank {r}",
            n.unwrap_or(0)
        )));
    }
    let Some(axes) = axes else {
        return Ok(vec![unknown(); r]);
    };
    let starts = cx.const_ints(1)?;
    let ends = cx.const_ints(2)?;
    let steps = match cx.opt_const_ints(4)? {
        None => Some(vec![1; axes.len()]),
        Some(s) => s,
    };
    let mut dims = x.dims.clone();
    match (starts, ends, steps) {
        (Some(s), Some(e), Some(t)) => {
            if let Some(z) = t.iter().position(|&t| t == 0) {
                return Err(cx.err(format!("operand 4 {t:?} has a zero step at index {z}")));
            }
            for (i, &a) in axes.iter().enumerate() {
                dims[a] = slice_len(&x.dims[a], s[i], e[i], t[i]);
            }
        }
        _ => {
            for &a in &axes {
                dims[a] = unknown();
            }
        }
    }
    Ok(dims)
}

fn expand(cx: &Ctx, x: &TensorType) -> Result<Vec<Dim>, ShapeError> {
    let len = cx.expect_int_list(1)?;
    let Some(v) = cx.const_ints(1)? else {
        let n = rank_from_len(cx, 1, len, "shape")?;
        // Each result dimension is the size of x there unless the shape operand sets it.
        let (xr, r) = (x.rank(), n.max(x.rank()));
        return Ok((0..r)
            .map(|i| {
                let xd = (i + xr).checked_sub(r).map(|j| &x.dims[j]);
                match (xd, i + n >= r) {
                    (Some(d), false) => d.clone(),
                    (Some(d), true) => broadcast_dim(d, &unknown()).unwrap_or_else(unknown),
                    (None, _) => unknown(),
                }
            })
            .collect());
    };
    if let Some(s) = v.iter().find(|&&s| s < 0) {
        return Err(cx.err(format!("operand 1 {v:?} has the negative size {s}")));
    }
    let shape: Vec<Dim> = v.iter().map(|&s| Dim::Known(s as usize)).collect();
    broadcast(&x.dims, &shape).ok_or_else(|| {
        cx.err(format!(
            "operand 0 {x} does not broadcast with the shape {}",
            fmt_dims(&shape)
        ))
    })
}

fn tile(cx: &Ctx, x: &TensorType) -> Result<Vec<Dim>, ShapeError> {
    let len = cx.expect_int_list(1)?;
    expect_len(cx, 1, len, x.rank())?;
    let Some(v) = cx.const_ints(1)? else {
        // Repeats computed at run time: only an empty dimension stays known.
        return Ok(x
            .dims
            .iter()
            .map(|d| {
                if d.known() == Some(0) {
                    d.clone()
                } else {
                    unknown()
                }
            })
            .collect());
    };
    if let Some(s) = v.iter().find(|&&s| s < 0) {
        return Err(cx.err(format!("operand 1 {v:?} has the negative repeat {s}")));
    }
    Ok(x.dims
        .iter()
        .zip(&v)
        .map(|(d, &k)| scale(d, k as usize))
        .collect())
}
