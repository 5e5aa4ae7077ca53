//! Shape inference of `Conv` and `ConvTranspose`, and the sliding-window size formula they share
//! with the pools (explicit pads, `auto_pad`, dilations, strides, `ceil_mode`).

use super::ctx::Ctx;
use super::dims::{scale, unify, unknown};
use super::ShapeError;
use crate::op::Op;
use crate::types::{Dim, TensorType};

/// The `auto_pad` attribute of convolutions and pools.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AutoPad {
    /// Explicit `pads`.
    NotSet,
    /// Pad so that the output has `ceil(in / stride)` positions, extra padding at the end.
    SameUpper,
    /// As `SameUpper`, extra padding at the beginning.
    SameLower,
    /// No padding.
    Valid,
}

impl AutoPad {
    /// Parses the attribute.
    pub fn parse(cx: &Ctx, s: &str) -> Result<AutoPad, ShapeError> {
        match s {
            "NOTSET" | "" => Ok(AutoPad::NotSet),
            "SAME_UPPER" => Ok(AutoPad::SameUpper),
            "SAME_LOWER" => Ok(AutoPad::SameLower),
            "VALID" => Ok(AutoPad::Valid),
            _ => Err(cx.err(format!("unknown auto_pad \"{s}\""))),
        }
    }

    fn is_same(self) -> bool {
        matches!(self, AutoPad::SameUpper | AutoPad::SameLower)
    }
}

/// The window attributes of one spatial axis.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Window {
    /// Kernel size, when known.
    pub kernel: Option<i64>,
    /// Stride (at least 1).
    pub stride: i64,
    /// Dilation (at least 1).
    pub dilation: i64,
    /// Padding at the beginning.
    pub pad_begin: i64,
    /// Padding at the end.
    pub pad_end: i64,
}

/// The per-axis windows from the list attributes (empty lists take the ONNX defaults).
pub(crate) fn windows(
    cx: &Ctx,
    kernel: &[Option<i64>],
    strides: &[i64],
    dilations: &[i64],
    pads: &[i64],
) -> Result<Vec<Window>, ShapeError> {
    let n = kernel.len();
    let strides = cx.per_axis("strides", strides, n, 1, 1)?;
    let dilations = cx.per_axis("dilations", dilations, n, 1, 1)?;
    let pads = cx.per_axis("pads", pads, 2 * n, 0, 0)?;
    Ok((0..n)
        .map(|i| Window {
            kernel: kernel[i],
            stride: strides[i],
            dilation: dilations[i],
            pad_begin: pads[i],
            pad_end: pads[n + i],
        })
        .collect())
}

/// The kernel sizes: the `kernel_shape` attribute when given, else the spatial dims of the weight.
/// When both are known they must agree.
fn kernel_sizes(
    cx: &Ctx,
    attr: &[i64],
    w: &TensorType,
    n: usize,
) -> Result<Vec<Option<i64>>, ShapeError> {
    let from_w: Vec<Option<i64>> = w.dims[2..]
        .iter()
        .map(|d| d.known().map(|k| k as i64))
        .collect();
    if attr.is_empty() {
        return Ok(from_w);
    }
    let k = cx.per_axis("kernel_shape", attr, n, 1, 1)?;
    for (i, (a, b)) in k.iter().zip(&from_w).enumerate() {
        if let Some(b) = b {
            if a != b {
                return Err(cx.err(format!(
                    "attribute kernel_shape {attr:?} does not match operand 1 {w} at spatial axis {i}"
                )));
            }
        }
    }
    Ok(k.into_iter().map(Some).collect())
}

/// The number of window positions along one axis of input size `input` (axis `axis` of operand
/// 0, for messages).
pub(crate) fn window_out(
    cx: &Ctx,
    axis: usize,
    input: &Dim,
    w: &Window,
    auto_pad: AutoPad,
    ceil_mode: bool,
) -> Result<Dim, ShapeError> {
    // Attributes come from the model: compute in i128 so no value can overflow.
    let s = w.stride as i128;
    if auto_pad.is_same() {
        return match input {
            Dim::Known(n) => to_dim(cx, (*n as i128 + s - 1).div_euclid(s)),
            Dim::Sym(_) if s == 1 => Ok(input.clone()),
            Dim::Sym(_) => Ok(unknown()),
        };
    }
    let Some(k) = w.kernel else {
        return Ok(unknown());
    };
    let ek = (k as i128 - 1) * w.dilation as i128 + 1;
    let (pb, pe) = if auto_pad == AutoPad::Valid {
        (0, 0)
    } else {
        (w.pad_begin as i128, w.pad_end as i128)
    };
    let n = match input {
        Dim::Known(n) => *n as i128,
        Dim::Sym(_) if s == 1 && pb + pe == ek - 1 => return Ok(input.clone()),
        Dim::Sym(_) => return Ok(unknown()),
    };
    let num = n + pb + pe - ek;
    if num < 0 {
        return Err(cx.err(format!(
            "operand 0 dimension {axis} is {n}, smaller than the window of {ek} with pads {pb}+{pe}"
        )));
    }
    let mut out = if ceil_mode {
        (num + s - 1).div_euclid(s) + 1
    } else {
        num.div_euclid(s) + 1
    };
    // With ceil_mode the last window must start inside the input or the leading padding.
    if ceil_mode && (out - 1) * s >= n + pb {
        out -= 1;
    }
    to_dim(cx, out)
}

/// A computed size as a known dimension; an error when it does not fit.
fn to_dim(cx: &Ctx, n: i128) -> Result<Dim, ShapeError> {
    usize::try_from(n)
        .map(Dim::Known)
        .map_err(|_| cx.err(format!("computed dimension {n} is out of range")))
}

/// Infers the result of `Conv` or `ConvTranspose`.
pub(crate) fn infer(cx: &Ctx) -> Result<Vec<TensorType>, ShapeError> {
    let (auto_pad, dilations, group, kernel_shape, pads, strides) = match cx.op {
        Op::Conv {
            auto_pad,
            dilations,
            group,
            kernel_shape,
            pads,
            strides,
        }
        | Op::ConvTranspose {
            auto_pad,
            dilations,
            group,
            kernel_shape,
            pads,
            strides,
            ..
        } => (auto_pad, dilations, *group, kernel_shape, pads, strides),
        _ => return Err(cx.err("is not a convolution")),
    };
    let x = cx.expect_min_rank(0, 3)?;
    let r = x.rank();
    let n = r - 2;
    let w = cx.expect_rank(1, r)?;
    cx.same_dtype(1, 0)?;
    if group < 1 {
        return Err(cx.err(format!("attribute group is {group}, expected at least 1")));
    }
    let g = group as usize;
    let auto_pad = AutoPad::parse(cx, auto_pad)?;
    let kernel = kernel_sizes(cx, kernel_shape, w, n)?;
    let wins = windows(cx, &kernel, strides, dilations, pads)?;
    let transpose = matches!(cx.op, Op::ConvTranspose { .. });
    // Conv weights are [M, C/group, k...]; ConvTranspose weights are [C, M/group, k...].
    let (in_ch, out_ch) = if transpose {
        (w.dims[0].clone(), scale(&w.dims[1], g))
    } else {
        (scale(&w.dims[1], g), w.dims[0].clone())
    };
    if unify(&x.dims[1], &in_ch).is_none() {
        return Err(cx.err(format!(
            "operand 0 has shape {x} with {} channels, but operand 1 {w} with group {group} expects {in_ch}",
            x.dims[1]
        )));
    }
    if !transpose {
        if let Some(m) = w.dims[0].known() {
            if m % g != 0 {
                return Err(cx.err(format!(
                    "operand 1 has shape {w}, whose {m} output channels do not divide into group {group}"
                )));
            }
        }
    }
    if let Some(b) = cx.opt(2) {
        cx.same_dtype(2, 0)?;
        if b.ty.rank() != 1 || unify(&b.ty.dims[0], &out_ch).is_none() {
            return Err(cx.shape_err(2, &[out_ch.to_string()]));
        }
    }
    let mut dims = vec![x.dims[0].clone(), out_ch];
    if let Op::ConvTranspose {
        output_padding,
        output_shape,
        ..
    } = cx.op
    {
        let out_pad = cx.per_axis("output_padding", output_padding, n, 0, 0)?;
        let shape = match output_shape.len() {
            0 => None,
            l if l == n => Some(&output_shape[..]),
            l if l == r => Some(&output_shape[2..]),
            _ => {
                return Err(cx.err(format!(
                    "attribute output_shape {output_shape:?} has {} values, expected {n}",
                    output_shape.len()
                )))
            }
        };
        for i in 0..n {
            dims.push(match shape {
                Some(s) if s[i] >= 0 => Dim::Known(s[i] as usize),
                Some(s) => {
                    return Err(cx.err(format!("attribute output_shape {s:?} has a negative size")))
                }
                None => transpose_out(cx, i + 2, &x.dims[i + 2], &wins[i], out_pad[i], auto_pad)?,
            });
        }
    } else {
        for (i, w) in wins.iter().enumerate() {
            dims.push(window_out(cx, i + 2, &x.dims[i + 2], w, auto_pad, false)?);
        }
    }
    Ok(vec![cx.out(x.dtype, dims)])
}

/// The output size of a transposed convolution along one axis.
fn transpose_out(
    cx: &Ctx,
    axis: usize,
    input: &Dim,
    w: &Window,
    out_pad: i64,
    auto_pad: AutoPad,
) -> Result<Dim, ShapeError> {
    let s = w.stride as i128;
    if auto_pad.is_same() {
        return match input {
            Dim::Known(n) => to_dim(cx, *n as i128 * s),
            Dim::Sym(_) if s == 1 => Ok(input.clone()),
            Dim::Sym(_) => Ok(unknown()),
        };
    }
    let Some(k) = w.kernel else {
        return Ok(unknown());
    };
    let ek = (k as i128 - 1) * w.dilation as i128 + 1;
    let (pb, pe) = if auto_pad == AutoPad::Valid {
        (0, 0)
    } else {
        (w.pad_begin as i128, w.pad_end as i128)
    };
    let grow = out_pad as i128 + ek - pb - pe - 1;
    let n = match input {
        Dim::Known(n) => *n as i128,
        Dim::Sym(_) if s == 1 && grow == 0 => return Ok(input.clone()),
        Dim::Sym(_) => return Ok(unknown()),
    };
    let out = s * (n - 1) + out_pad as i128 + ek - pb - pe;
    if out <= 0 {
        return Err(cx.err(format!(
            "operand 0 dimension {axis} is {n}, which with pads {pb}+{pe} gives output size {out}"
        )));
    }
    to_dim(cx, out)
}
