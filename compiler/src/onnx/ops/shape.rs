//! Converters of the data movement and shape computation ops.
//!
//! Old-opset attributes that later became inputs turn into constant operands here: `Squeeze` and
//! `Unsqueeze` axes (before 13), `Split` sizes (before 13), `Slice` starts/ends/axes (before 10)
//! and `Pad` pads/value (before 11). `Upsample` becomes `Resize`; `Resize` of opset 10 (operands
//! `x, scales`) gets the empty `roi` slot of the newer form.

use sparsec_ir::{DType, Op, Scalar};

use super::{f32_vec, i64_vec, scalar_of, single_value, NodeCtx, OpError, Operand, Registry};

/// Registers the shape family.
pub(crate) fn register(reg: &mut Registry) {
    reg.add("Reshape", |c| {
        c.all(Op::Reshape {
            allowzero: c.attrs.i64("allowzero", 0)?,
        })
    });
    reg.add("Flatten", |c| {
        c.all(Op::Flatten {
            axis: c.attrs.i64("axis", 1)?,
        })
    });
    reg.add("Transpose", |c| {
        c.all(Op::Transpose {
            perm: c.attrs.ints_or_empty("perm")?,
        })
    });
    reg.add("Squeeze", |c| match c.attrs.ints("axes")? {
        Some(axes) if !c.has_input(1) => c.with(
            Op::Squeeze {},
            vec![Operand::Input(0), Operand::Const("axes", i64_vec(&axes))],
        ),
        _ => c.all(Op::Squeeze {}),
    });
    reg.add("Unsqueeze", |c| match c.attrs.ints("axes")? {
        Some(axes) if !c.has_input(1) => c.with(
            Op::Unsqueeze {},
            vec![Operand::Input(0), Operand::Const("axes", i64_vec(&axes))],
        ),
        _ => c.all(Op::Unsqueeze {}),
    });
    reg.add("Concat", |c| {
        c.all(Op::Concat {
            axis: c.attrs.i64("axis", 0)?,
        })
    });
    reg.add("Split", |c| {
        let op = Op::Split {
            axis: c.attrs.i64("axis", 0)?,
            num_outputs: c.attrs.i64("num_outputs", 0)?,
        };
        match c.attrs.ints("split")? {
            Some(sizes) if !c.has_input(1) && !sizes.is_empty() => c.with(
                op,
                vec![Operand::Input(0), Operand::Const("split", i64_vec(&sizes))],
            ),
            _ => c.all(op),
        }
    });
    reg.add("Slice", slice);
    reg.add("Expand", |c| c.all(Op::Expand {}));
    reg.add("Tile", |c| c.all(Op::Tile {}));
    reg.add("Pad", pad);
    reg.add("Resize", resize);
    reg.add("Upsample", upsample);
    reg.add("Shape", |c| {
        c.all(Op::Shape {
            start: c.attrs.i64("start", 0)?,
            end: c.attrs.i64("end", i64::MAX)?,
        })
    });
    reg.add("Size", |c| c.all(Op::Size {}));
    reg.add("ConstantOfShape", |c| {
        let value = match c.attrs.tensor("value")? {
            None => Scalar {
                dtype: DType::F32,
                value: 0.0,
            },
            Some(p) => {
                let t = c.decode_attr_tensor(p, "value")?;
                let value = single_value(&t).ok_or_else(|| {
                    OpError::Invalid(format!(
                        "attribute `value` must hold one element, found {}",
                        t.numel()
                    ))
                })?;
                Scalar {
                    dtype: t.dtype(),
                    value,
                }
            }
        };
        c.all(Op::ConstantOfShape { value })
    });
    reg.add("Range", |c| c.all(Op::Range {}));
    reg.add("Trilu", |c| {
        c.all(Op::Trilu {
            upper: c.attrs.i64("upper", 1)?,
        })
    });
    reg.add("DepthToSpace", |c| {
        c.all(Op::DepthToSpace {
            blocksize: required_i64(c, "blocksize")?,
            mode: c.attrs.string("mode", "DCR")?,
        })
    });
    reg.add("SpaceToDepth", |c| {
        c.all(Op::SpaceToDepth {
            blocksize: required_i64(c, "blocksize")?,
        })
    });
}

/// A required integer attribute.
fn required_i64(c: &NodeCtx, name: &str) -> Result<i64, OpError> {
    c.attrs
        .opt_i64(name)?
        .ok_or_else(|| OpError::Invalid(format!("attribute `{name}` is required")))
}

/// `Slice`: before opset 10, `starts`, `ends` and `axes` are attributes.
fn slice(c: &NodeCtx) -> Result<super::Lowered, OpError> {
    if c.has_input(1) {
        return c.all(Op::Slice {});
    }
    let need = |name: &str| {
        c.attrs
            .ints(name)?
            .ok_or_else(|| OpError::Invalid(format!("attribute `{name}` is required")))
    };
    let mut operands = vec![
        Operand::Input(0),
        Operand::Const("starts", i64_vec(&need("starts")?)),
        Operand::Const("ends", i64_vec(&need("ends")?)),
    ];
    if let Some(axes) = c.attrs.ints("axes")? {
        operands.push(Operand::Const("axes", i64_vec(&axes)));
    }
    c.with(Op::Slice {}, operands)
}

/// `Pad`: before opset 11, `pads` and the constant `value` are attributes.
fn pad(c: &NodeCtx) -> Result<super::Lowered, OpError> {
    let mode = c.attrs.string("mode", "constant")?;
    if c.opset >= 11 || c.has_input(1) {
        return c.all(Op::Pad { mode });
    }
    let pads = c
        .attrs
        .ints("pads")?
        .ok_or_else(|| OpError::Invalid("attribute `pads` is required".into()))?;
    let mut operands = vec![Operand::Input(0), Operand::Const("pads", i64_vec(&pads))];
    if let Some(value) = c.attrs.opt_f32("value")? {
        if mode == "constant" && value != 0.0 {
            let dtype = c.input_dtype(0).unwrap_or(DType::F32);
            operands.push(Operand::Const("value", scalar_of(dtype, value as f64)));
        }
    }
    c.with(Op::Pad { mode }, operands)
}

/// `Resize`: opset 10 takes `x, scales` and resizes with asymmetric coordinates.
fn resize(c: &NodeCtx) -> Result<super::Lowered, OpError> {
    let a = c.attrs;
    let mode = a.string("mode", "nearest")?;
    if c.opset < 11 {
        let op = upsample_op(mode);
        return c.with(
            op,
            vec![Operand::Input(0), Operand::Absent, Operand::Input(1)],
        );
    }
    c.all(Op::Resize {
        antialias: a.i64("antialias", 0)?,
        axes: a.ints_or_empty("axes")?,
        coordinate_transformation_mode: a.string("coordinate_transformation_mode", "half_pixel")?,
        cubic_coeff_a: a.f32("cubic_coeff_a", -0.75)?,
        exclude_outside: a.i64("exclude_outside", 0)?,
        extrapolation_value: a.f32("extrapolation_value", 0.0)?,
        keep_aspect_ratio_policy: a.string("keep_aspect_ratio_policy", "stretch")?,
        mode,
        nearest_mode: a.string("nearest_mode", "round_prefer_floor")?,
    })
}

/// `Upsample` (deprecated in opset 10): scales are an attribute before opset 9, an input after.
fn upsample(c: &NodeCtx) -> Result<super::Lowered, OpError> {
    let mode = c.attrs.string("mode", "nearest")?;
    let op = upsample_op(mode);
    let scales = if c.has_input(1) {
        Operand::Input(1)
    } else {
        let s = c
            .attrs
            .floats("scales")?
            .ok_or_else(|| OpError::Invalid("attribute `scales` is required".into()))?;
        Operand::Const("scales", f32_vec(&s))
    };
    c.with(op, vec![Operand::Input(0), Operand::Absent, scales])
}

/// The `Resize` equivalent of `Upsample` and opset-10 `Resize`: asymmetric coordinates, nearest
/// neighbour rounding down, `bilinear` spelled `linear`.
fn upsample_op(mode: String) -> Op {
    let mode = if mode == "bilinear" {
        "linear".to_string()
    } else {
        mode
    };
    Op::Resize {
        antialias: 0,
        axes: vec![],
        coordinate_transformation_mode: "asymmetric".to_string(),
        cubic_coeff_a: -0.75,
        exclude_outside: 0,
        extrapolation_value: 0.0,
        keep_aspect_ratio_policy: "stretch".to_string(),
        mode,
        nearest_mode: "floor".to_string(),
    }
}
