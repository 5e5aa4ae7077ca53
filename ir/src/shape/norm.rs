//! Shape inference of normalizations and softmax: every main result has the type of `x`;
//! `LayerNormalization` may add its mean and inverse standard deviation results.

use super::ctx::Ctx;
use super::dims::{broadcasts_to, unify};
use super::ShapeError;
use crate::op::Op;
use crate::types::{DType, Dim, TensorType};

/// Infers the results of a normalization or softmax op.
pub(crate) fn infer(cx: &Ctx) -> Result<Vec<TensorType>, ShapeError> {
    let x = cx.ty(0)?;
    match cx.op {
        Op::BatchNormalization { .. } => {
            cx.expect_min_rank(0, 2)?;
            for k in 1..5 {
                per_channel(cx, k, &x.dims[1])?;
            }
            Ok(vec![x.clone()])
        }
        Op::InstanceNormalization { .. } => {
            cx.expect_min_rank(0, 2)?;
            for k in 1..3 {
                per_channel(cx, k, &x.dims[1])?;
            }
            Ok(vec![x.clone()])
        }
        Op::LayerNormalization {
            axis, stash_type, ..
        } => {
            let a = cx.axis(*axis, x.rank())?;
            for k in 1..3 {
                if cx.opt(k).is_some() {
                    normalized_operand(cx, k, &x.dims[a..])?;
                }
            }
            let mut out = vec![x.clone()];
            if cx.n_outputs > 1 {
                let dtype = match stash_type {
                    1 => DType::F32,
                    10 => DType::F16,
                    11 => DType::F64,
                    _ => {
                        return Err(cx.err(format!(
                            "attribute stash_type is {stash_type}, expected 1 (f32), 10 (f16) or 11 (f64)"
                        )))
                    }
                };
                // Mean and inverse standard deviation keep the normalized axes as size 1.
                let mut dims = x.dims[..a].to_vec();
                dims.extend((a..x.rank()).map(|_| Dim::Known(1)));
                out.extend((1..cx.n_outputs).map(|_| cx.out(dtype, dims.clone())));
            }
            Ok(out)
        }
        Op::RmsNormalization { axis, .. } => {
            let a = cx.axis(*axis, x.rank())?;
            normalized_operand(cx, 1, &x.dims[a..])?;
            Ok(vec![x.clone()])
        }
        Op::Lrn { size, .. } => {
            cx.expect_min_rank(0, 2)?;
            if *size < 1 {
                return Err(cx.err(format!("attribute size is {size}, expected at least 1")));
            }
            Ok(vec![x.clone()])
        }
        Op::MeanVarianceNormalization { axes } => {
            cx.axes(axes, x.rank())?;
            Ok(vec![x.clone()])
        }
        Op::Softmax { axis, .. } | Op::LogSoftmax { axis, .. } | Op::Hardmax { axis, .. } => {
            cx.axis(*axis, x.rank())?;
            Ok(vec![x.clone()])
        }
        _ => Err(cx.err("is not a normalization")),
    }
}

/// Checks that operand `k` is a 1-D tensor of `c` (the channel count) elements.
fn per_channel(cx: &Ctx, k: usize, c: &Dim) -> Result<(), ShapeError> {
    let t = cx.ty(k)?;
    if t.rank() != 1 || unify(&t.dims[0], c).is_none() {
        return Err(cx.shape_err(k, &[c.to_string()]));
    }
    Ok(())
}

/// Checks that operand `k` (a scale or bias) broadcasts to the normalized dimensions.
fn normalized_operand(cx: &Ctx, k: usize, normalized: &[Dim]) -> Result<(), ShapeError> {
    let t = cx.ty(k)?;
    // Leading size-1 dimensions beyond the normalized rank are harmless.
    let extra = t.rank().saturating_sub(normalized.len());
    let lead_ones = t.dims[..extra].iter().all(|d| d.known() == Some(1));
    if !lead_ones || !broadcasts_to(&t.dims[extra..], normalized) {
        let want: Vec<String> = normalized.iter().map(Dim::to_string).collect();
        return Err(cx.shape_err(k, &want));
    }
    Ok(())
}
