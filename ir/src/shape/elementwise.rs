//! Shape inference of elementwise ops: unary, binary and variadic ops with numpy broadcasting,
//! and the miscellaneous family (`Cast`, `CastLike`, `Clip`, `Where`, `Dropout`).

use super::ctx::Ctx;
use super::dims::{broadcast, broadcasts_to};
use super::ShapeError;
use crate::op::{Family, Op};
use crate::types::{DType, Dim, TensorType};

/// Infers the results of a unary, binary, variadic or misc op.
pub(crate) fn infer(cx: &Ctx) -> Result<Vec<TensorType>, ShapeError> {
    match cx.op.family() {
        Family::Unary => unary(cx).map(|t| vec![t]),
        Family::Binary => binary(cx).map(|t| vec![t]),
        Family::Variadic => variadic(cx).map(|t| vec![t]),
        _ => misc(cx),
    }
}

fn unary(cx: &Ctx) -> Result<TensorType, ShapeError> {
    let x = cx.ty(0)?;
    match cx.op {
        Op::Not {} => {
            cx.expect_dtype(0, DType::Bool, "")?;
            Ok(x.clone())
        }
        Op::IsNaN {} | Op::IsInf { .. } => {
            cx.expect_float(0)?;
            Ok(cx.out(DType::Bool, x.dims.clone()))
        }
        _ => Ok(x.clone()),
    }
}

/// The broadcast of operands `ks`, with an error naming the operands that do not broadcast.
pub(crate) fn broadcast_operands(cx: &Ctx, ks: &[usize]) -> Result<Vec<Dim>, ShapeError> {
    let mut dims: Vec<Dim> = Vec::new();
    for (i, &k) in ks.iter().enumerate() {
        let t = cx.ty(k)?;
        dims = if i == 0 {
            t.dims.clone()
        } else {
            broadcast(&dims, &t.dims).ok_or_else(|| {
                let earlier: Vec<String> = ks[..i]
                    .iter()
                    .filter_map(|&j| cx.opt(j).map(|f| format!("operand {j} {}", f.ty)))
                    .collect();
                cx.err(format!(
                    "operand {k} has shape {t}, which does not broadcast with {}",
                    earlier.join(" and ")
                ))
            })?
        };
    }
    Ok(dims)
}

fn binary(cx: &Ctx) -> Result<TensorType, ShapeError> {
    let a = cx.ty(0)?;
    match cx.op {
        // Pow may raise to an exponent of another numeric type.
        Op::Pow {} => {}
        Op::And {} | Op::Or {} | Op::Xor {} => {
            cx.expect_dtype(0, DType::Bool, "")?;
            cx.expect_dtype(1, DType::Bool, "")?;
        }
        _ => cx.same_dtype(1, 0)?,
    }
    if let Op::PRelu {} = cx.op {
        // The slope broadcasts to x, never the other way.
        let slope = cx.ty(1)?;
        if !broadcasts_to(&slope.dims, &a.dims) {
            return Err(cx.err(format!(
                "operand 1 has shape {slope}, which does not broadcast to operand 0 {a}"
            )));
        }
        return Ok(a.clone());
    }
    let dims = broadcast_operands(cx, &[0, 1])?;
    let dtype = match cx.op {
        Op::Equal {}
        | Op::Greater {}
        | Op::Less {}
        | Op::GreaterOrEqual {}
        | Op::LessOrEqual {}
        | Op::And {}
        | Op::Or {}
        | Op::Xor {} => DType::Bool,
        _ => a.dtype,
    };
    Ok(cx.out(dtype, dims))
}

fn variadic(cx: &Ctx) -> Result<TensorType, ShapeError> {
    let ks: Vec<usize> = (0..cx.inputs.len()).collect();
    for &k in &ks {
        cx.input(k)?;
        cx.same_dtype(k, 0)?;
    }
    let dims = broadcast_operands(cx, &ks)?;
    Ok(cx.out(cx.ty(0)?.dtype, dims))
}

fn misc(cx: &Ctx) -> Result<Vec<TensorType>, ShapeError> {
    let x = cx.ty(0)?;
    match cx.op {
        Op::Cast { to } => Ok(vec![cx.out(*to, x.dims.clone())]),
        Op::CastLike {} => Ok(vec![cx.out(cx.ty(1)?.dtype, x.dims.clone())]),
        Op::Clip {} => {
            for k in [1, 2] {
                if cx.opt(k).is_some() {
                    cx.same_dtype(k, 0)?;
                    cx.expect_scalar(k)?;
                }
            }
            Ok(vec![x.clone()])
        }
        Op::Where {} => {
            cx.expect_dtype(0, DType::Bool, "")?;
            cx.same_dtype(2, 1)?;
            let dims = broadcast_operands(cx, &[0, 1, 2])?;
            Ok(vec![cx.out(cx.ty(1)?.dtype, dims)])
        }
        Op::Dropout {} => {
            if cx.opt(1).is_some() {
                cx.expect_scalar(1)?;
            }
            if cx.opt(2).is_some() {
                cx.expect_dtype(2, DType::Bool, "")?;
                cx.expect_scalar(2)?;
            }
            let mut out = vec![x.clone()];
            if cx.n_outputs > 1 {
                out.push(cx.out(DType::Bool, x.dims.clone()));
            }
            Ok(out)
        }
        _ => Err(cx.err("is not an elementwise op")),
    }
}
