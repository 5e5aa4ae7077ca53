//! Converters of the normalizations and the softmax family.
//!
//! `Softmax`, `LogSoftmax` and `Hardmax` before opset 13 flatten their input to 2-D at `axis`
//! (default 1); they become the IR op with `coerce_2d=1`. `BatchNormalization` is inference
//! only: `spatial=0` (opset 7-8), `training_mode=1` and the training results are unsupported.

use sparsec_ir::Op;

use super::{reject_flag, NodeCtx, OpError, Registry};

/// Registers the norm family.
pub(crate) fn register(reg: &mut Registry) {
    reg.add("BatchNormalization", |c| {
        if c.opset < 9 && c.attrs.i64("spatial", 1)? == 0 {
            return Err(OpError::Unsupported("spatial=0".into()));
        }
        reject_flag(c, "training_mode")?;
        if c.n_outputs > 1 {
            return Err(OpError::Unsupported("training results".into()));
        }
        c.all(Op::BatchNormalization {
            epsilon: c.attrs.f32("epsilon", 1e-5)?,
        })
    });
    reg.add("LayerNormalization", |c| {
        c.all(Op::LayerNormalization {
            axis: c.attrs.i64("axis", -1)?,
            epsilon: c.attrs.f32("epsilon", 1e-5)?,
            stash_type: c.attrs.i64("stash_type", 1)?,
        })
    });
    reg.add("InstanceNormalization", |c| {
        c.all(Op::InstanceNormalization {
            epsilon: c.attrs.f32("epsilon", 1e-5)?,
        })
    });
    reg.add("RMSNormalization", |c| {
        c.all(Op::RmsNormalization {
            axis: c.attrs.i64("axis", -1)?,
            epsilon: c.attrs.f32("epsilon", 1e-5)?,
            stash_type: c.attrs.i64("stash_type", 1)?,
        })
    });
    reg.add("LRN", |c| {
        let size = c
            .attrs
            .opt_i64("size")?
            .ok_or_else(|| OpError::Invalid("attribute `size` is required".into()))?;
        c.all(Op::Lrn {
            alpha: c.attrs.f32("alpha", 1e-4)?,
            beta: c.attrs.f32("beta", 0.75)?,
            bias: c.attrs.f32("bias", 1.0)?,
            size,
        })
    });
    reg.add("MeanVarianceNormalization", |c| {
        c.all(Op::MeanVarianceNormalization {
            axes: c.attrs.ints("axes")?.unwrap_or_else(|| vec![0, 2, 3]),
        })
    });
    reg.add("Softmax", |c| {
        let (axis, coerce_2d) = softmax_axis(c)?;
        c.all(Op::Softmax { axis, coerce_2d })
    });
    reg.add("LogSoftmax", |c| {
        let (axis, coerce_2d) = softmax_axis(c)?;
        c.all(Op::LogSoftmax { axis, coerce_2d })
    });
    reg.add("Hardmax", |c| {
        let (axis, coerce_2d) = softmax_axis(c)?;
        c.all(Op::Hardmax { axis, coerce_2d })
    });
}

/// The `axis` and `coerce_2d` of the softmax family for the model's opset.
fn softmax_axis(c: &NodeCtx) -> Result<(i64, i64), OpError> {
    if c.opset < 13 {
        Ok((c.attrs.i64("axis", 1)?, 1))
    } else {
        Ok((c.attrs.i64("axis", -1)?, 0))
    }
}
