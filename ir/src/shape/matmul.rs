//! Shape inference of `Gemm`, `MatMul` (1-D promotion, batch broadcasting) and `Einsum`
//! (equation parsing with `...` and the implicit output form).

use super::ctx::Ctx;
use super::dims::{broadcast, broadcasts_to, fmt_dims, unify};
use super::ShapeError;
use crate::op::Op;
use crate::types::{Dim, TensorType};
use std::collections::BTreeMap;

/// Infers the result of `Gemm`, `MatMul` or `Einsum`.
pub(crate) fn infer(cx: &Ctx) -> Result<Vec<TensorType>, ShapeError> {
    match cx.op {
        Op::Gemm {
            trans_a, trans_b, ..
        } => gemm(cx, *trans_a != 0, *trans_b != 0),
        Op::MatMul {} => matmul(cx),
        Op::Einsum { equation } => einsum(cx, equation),
        _ => Err(cx.err("is not a matrix product op")),
    }
    .map(|t| vec![t])
}

fn gemm(cx: &Ctx, trans_a: bool, trans_b: bool) -> Result<TensorType, ShapeError> {
    let a = cx.expect_rank(0, 2)?;
    let b = cx.expect_rank(1, 2)?;
    cx.same_dtype(1, 0)?;
    let (m, ka) = if trans_a {
        (&a.dims[1], &a.dims[0])
    } else {
        (&a.dims[0], &a.dims[1])
    };
    let (kb, n) = if trans_b {
        (&b.dims[1], &b.dims[0])
    } else {
        (&b.dims[0], &b.dims[1])
    };
    if unify(ka, kb).is_none() {
        let want = if trans_b {
            ["*".to_string(), ka.to_string()]
        } else {
            [ka.to_string(), "*".to_string()]
        };
        return Err(cx.shape_err(1, &want));
    }
    let dims = vec![m.clone(), n.clone()];
    if let Some(c) = cx.opt(2) {
        cx.same_dtype(2, 0)?;
        if !broadcasts_to(&c.ty.dims, &dims) {
            return Err(cx.err(format!(
                "operand 2 has shape {}, which does not broadcast to the product shape {}",
                c.ty,
                fmt_dims(&dims)
            )));
        }
    }
    Ok(cx.out(a.dtype, dims))
}

fn matmul(cx: &Ctx) -> Result<TensorType, ShapeError> {
    let a = cx.expect_min_rank(0, 1)?;
    let b = cx.expect_min_rank(1, 1)?;
    cx.same_dtype(1, 0)?;
    // A 1-D left operand is a row vector, a 1-D right operand a column vector.
    let (a_batch, m, ka) = match a.dims.as_slice() {
        [k] => (&[][..], None, k),
        [batch @ .., m, k] => (batch, Some(m), k),
        [] => return Err(cx.shape_err(0, &["*".to_string()])),
    };
    let (b_batch, kb, n) = match b.dims.as_slice() {
        [k] => (&[][..], k, None),
        [batch @ .., k, n] => (batch, k, Some(n)),
        [] => return Err(cx.shape_err(1, &["*".to_string()])),
    };
    if unify(ka, kb).is_none() {
        let mut want: Vec<String> = b_batch.iter().map(|_| "*".to_string()).collect();
        want.push(ka.to_string());
        if n.is_some() {
            want.push("*".to_string());
        }
        return Err(cx.shape_err(1, &want));
    }
    let mut dims = broadcast(a_batch, b_batch).ok_or_else(|| {
        cx.err(format!(
            "operand 1 has shape {b}, whose batch dimensions {} do not broadcast with those of operand 0 {a}",
            fmt_dims(b_batch)
        ))
    })?;
    dims.extend(m.cloned());
    dims.extend(n.cloned());
    Ok(cx.out(a.dtype, dims))
}

/// One term of an einsum equation: its labels, with `None` standing for the ellipsis.
type Term = Vec<Option<char>>;

/// Parses one term (`ij`, `...ij`, `b...`); at most one ellipsis.
fn parse_term(cx: &Ctx, equation: &str, term: &str) -> Result<Term, ShapeError> {
    let mut out = Vec::new();
    let mut rest = term;
    let mut ellipsis = false;
    while let Some(c) = rest.chars().next() {
        if let Some(r) = rest.strip_prefix("...") {
            if ellipsis {
                return Err(cx.err(format!(
                    "equation \"{equation}\" has two ellipses in term \"{term}\""
                )));
            }
            ellipsis = true;
            out.push(None);
            rest = r;
        } else if c.is_ascii_alphabetic() {
            out.push(Some(c));
            rest = &rest[1..];
        } else {
            return Err(cx.err(format!(
                "equation \"{equation}\" has an invalid character '{c}'"
            )));
        }
    }
    Ok(out)
}

fn einsum(cx: &Ctx, equation: &str) -> Result<TensorType, ShapeError> {
    let eq: String = equation.chars().filter(|c| !c.is_whitespace()).collect();
    let (lhs, rhs) = match eq.split_once("->") {
        Some((l, r)) => (l, Some(r)),
        None => (eq.as_str(), None),
    };
    let terms: Vec<&str> = lhs.split(',').collect();
    if terms.len() != cx.inputs.len() {
        return Err(cx.err(format!(
            "equation \"{equation}\" has {} input terms, but the op has {} operands",
            terms.len(),
            cx.inputs.len()
        )));
    }
    let dtype = cx.ty(0)?.dtype;
    let mut sizes: BTreeMap<char, Dim> = BTreeMap::new();
    let mut counts: BTreeMap<char, usize> = BTreeMap::new();
    let mut ell: Option<Vec<Dim>> = None;
    for (k, term) in terms.iter().enumerate() {
        let t = cx.ty(k)?;
        cx.same_dtype(k, 0)?;
        let labels = parse_term(cx, equation, term)?;
        let named = labels.iter().filter(|l| l.is_some()).count();
        let has_ell = labels.len() != named;
        if (!has_ell && t.rank() != named) || (has_ell && t.rank() < named) {
            return Err(cx.err(format!(
                "operand {k} has shape {t}, but term \"{term}\" of equation \"{equation}\" needs rank {}{}",
                named,
                if has_ell { " or more" } else { "" }
            )));
        }
        let n_ell = t.rank() - named;
        let mut pos = 0;
        for l in &labels {
            match l {
                None => {
                    let dims = &t.dims[pos..pos + n_ell];
                    ell = Some(match &ell {
                        None => dims.to_vec(),
                        Some(prev) => broadcast(prev, dims).ok_or_else(|| {
                            cx.err(format!(
                                "operand {k} has shape {t}, whose ellipsis dimensions {} do not broadcast with {}",
                                fmt_dims(dims),
                                fmt_dims(prev)
                            ))
                        })?,
                    });
                    pos += n_ell;
                }
                Some(c) => {
                    let d = &t.dims[pos];
                    *counts.entry(*c).or_insert(0) += 1;
                    let merged = match sizes.get(c) {
                        None => Some(d.clone()),
                        Some(prev) => unify(prev, d).or_else(|| {
                            // A size-1 dimension broadcasts against its label's size.
                            broadcast(std::slice::from_ref(prev), std::slice::from_ref(d))
                                .map(|v| v[0].clone())
                        }),
                    };
                    let merged = merged.ok_or_else(|| {
                        cx.err(format!(
                            "operand {k} has shape {t}, whose dimension {pos} (label '{c}') is {d}, but '{c}' is {} elsewhere",
                            sizes.get(c).map(Dim::to_string).unwrap_or_default()
                        ))
                    })?;
                    sizes.insert(*c, merged);
                    pos += 1;
                }
            }
        }
    }
    let ell_dims = ell.unwrap_or_default();
    let out_labels: Term = match rhs {
        Some(r) => {
            let labels = parse_term(cx, equation, r)?;
            for (i, l) in labels.iter().enumerate() {
                if let Some(c) = l {
                    if !sizes.contains_key(c) {
                        return Err(cx.err(format!(
                            "equation \"{equation}\" has output label '{c}', which no input term has"
                        )));
                    }
                    if labels[..i].contains(l) {
                        return Err(cx.err(format!(
                            "equation \"{equation}\" repeats output label '{c}'"
                        )));
                    }
                }
            }
            labels
        }
        None => {
            // Implicit output: the ellipsis dimensions, then every label used once, sorted.
            let mut labels: Term = Vec::new();
            if terms.iter().any(|t| t.contains("...")) {
                labels.push(None);
            }
            labels.extend(
                counts
                    .iter()
                    .filter(|(_, &n)| n == 1)
                    .map(|(&c, _)| Some(c)),
            );
            labels
        }
    };
    let mut dims = Vec::new();
    for l in &out_labels {
        match l {
            None => dims.extend(ell_dims.iter().cloned()),
            Some(c) => dims.extend(sizes.get(c).cloned()),
        }
    }
    Ok(cx.out(dtype, dims))
}
