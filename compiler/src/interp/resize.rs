//! `Resize`: nearest, (N-d) linear and cubic interpolation, with every coordinate transformation
//! mode (including `tf_crop_and_resize` with a region of interest), scales or sizes, `axes`,
//! `keep_aspect_ratio_policy`, `exclude_outside` and `antialias`.
//!
//! Interpolation is separable, so the tensor is resized one axis at a time (in `f64`). For each
//! output position of an axis the source coordinate is computed, then a small set of taps
//! (neighbouring input positions, clamped to the edge) and their weights, exactly as the ONNX
//! reference does. Integer results are rounded half to even and saturated.

use super::elem::{checked_numel, norm_index};
use super::util::{arg, opt_arg};
use super::InterpError;
use sparsec_ir::{Op, Tensor};

/// The attributes of a `Resize`, borrowed from the op.
struct Attrs<'a> {
    antialias: bool,
    coord_mode: &'a str,
    cubic_a: f64,
    exclude_outside: bool,
    extrapolation: f64,
    mode: &'a str,
    nearest_mode: &'a str,
}

/// The taps of one output position along one axis.
struct Taps {
    /// Input positions, clamped into the axis.
    idx: Vec<usize>,
    /// Their weights.
    w: Vec<f64>,
    /// The source coordinate falls outside the region: the result is the extrapolation value.
    extrapolate: bool,
}

/// Evaluates `Resize`: operands `x[, roi[, scales[, sizes]]]` (empty tensors count as absent).
pub(crate) fn resize(op: &Op, inputs: &[Option<&Tensor>]) -> Result<Tensor, InterpError> {
    let Op::Resize {
        antialias,
        axes,
        coordinate_transformation_mode,
        cubic_coeff_a,
        exclude_outside,
        extrapolation_value,
        keep_aspect_ratio_policy,
        mode,
        nearest_mode,
    } = op
    else {
        return Err(InterpError::unsupported(op, "not a resize"));
    };
    let x = arg(op, inputs, 0)?;
    let present = |k: usize| opt_arg(inputs, k).filter(|t| t.numel() > 0);
    let (roi, scales, sizes) = (present(1), present(2), present(3));
    let attrs = Attrs {
        antialias: *antialias != 0,
        coord_mode: coordinate_transformation_mode,
        cubic_a: *cubic_coeff_a as f64,
        exclude_outside: *exclude_outside != 0,
        extrapolation: *extrapolation_value as f64,
        mode,
        nearest_mode,
    };
    check_modes(op, &attrs, keep_aspect_ratio_policy)?;
    if x.dtype() == sparsec_ir::DType::Bool {
        return Err(InterpError::unsupported(op, "bool input"));
    }
    let r = x.rank();
    let axes: Vec<usize> = if axes.is_empty() {
        (0..r).collect()
    } else {
        axes.iter()
            .map(|&a| norm_index(op, a, r, "axis"))
            .collect::<Result<_, _>>()?
    };
    let in_sizes: Vec<usize> = axes.iter().map(|&a| x.shape()[a]).collect();
    // Per listed axis: the scale and the output size.
    let (scale, out): (Vec<f64>, Vec<usize>) = match (scales, sizes) {
        (Some(s), None) => {
            let s = s.to_f64_vec();
            if s.len() != axes.len() || s.iter().any(|&v| v.is_nan() || v <= 0.0) {
                return Err(InterpError::invalid(
                    op,
                    format!("scales {s:?} do not fit {} axes", axes.len()),
                ));
            }
            let out = s
                .iter()
                .zip(&in_sizes)
                .map(|(&sc, &d)| (sc * d as f64) as usize)
                .collect();
            (s, out)
        }
        (None, Some(sz)) => {
            let sz = sz.to_i64_vec();
            if sz.len() != axes.len() || sz.iter().any(|&v| v < 0) {
                return Err(InterpError::invalid(
                    op,
                    format!("sizes {sz:?} do not fit {} axes", axes.len()),
                ));
            }
            let mut sc: Vec<f64> = sz
                .iter()
                .zip(&in_sizes)
                .map(|(&o, &d)| o as f64 / d as f64)
                .collect();
            let out = match keep_aspect_ratio_policy.as_str() {
                "stretch" => sz.iter().map(|&v| v as usize).collect(),
                policy => {
                    let pick = if policy == "not_larger" {
                        f64::min
                    } else {
                        f64::max
                    };
                    let s = sc.iter().copied().reduce(pick).unwrap_or(1.0);
                    sc.iter_mut().for_each(|v| *v = s);
                    in_sizes
                        .iter()
                        .map(|&d| (s * d as f64 + 0.5) as usize)
                        .collect()
                }
            };
            (sc, out)
        }
        _ => {
            return Err(InterpError::invalid(
                op,
                "exactly one of scales and sizes must be given",
            ))
        }
    };
    let roi = match roi {
        Some(t) if attrs.coord_mode == "tf_crop_and_resize" => {
            let v = t.to_f64_vec();
            if v.len() != 2 * axes.len() && !(v.len() == 2 * r && axes.len() == r) {
                return Err(InterpError::invalid(
                    op,
                    format!("roi of {} values does not fit {} axes", v.len(), axes.len()),
                ));
            }
            Some(v)
        }
        None if attrs.coord_mode == "tf_crop_and_resize" => {
            return Err(InterpError::invalid(op, "tf_crop_and_resize needs a roi"))
        }
        _ => None,
    };
    let mut final_shape = x.shape().to_vec();
    for (&a, &o) in axes.iter().zip(&out) {
        final_shape[a] = o;
    }
    checked_numel(op, &final_shape)?;
    let mut shape = x.shape().to_vec();
    let mut data = x.to_f64_vec();
    for (i, &a) in axes.iter().enumerate() {
        let axis_roi = roi.as_ref().map(|v| (v[i], v[axes.len() + i]));
        let identity = out[i] == shape[a]
            && (scale[i] - 1.0).abs() < 1e-12
            && axis_roi.is_none_or(|(s, e)| s == 0.0 && e == 1.0);
        if identity {
            continue;
        }
        if shape[a] == 0 && out[i] > 0 {
            return Err(InterpError::invalid(
                op,
                format!("cannot resize the empty axis {a}"),
            ));
        }
        let taps: Vec<Taps> = (0..out[i])
            .map(|o| taps(&attrs, o, scale[i], shape[a], out[i], axis_roi))
            .collect();
        data = apply_axis(&data, &shape, a, &taps, attrs.extrapolation);
        shape[a] = out[i];
    }
    let dtype = x.dtype();
    let vals = data.into_iter().map(|v| {
        if dtype.is_int() {
            v.round_ties_even()
        } else {
            v
        }
    });
    Ok(Tensor::from_f64s(dtype, &shape, vals))
}

/// Rejects unknown mode strings.
fn check_modes(op: &Op, a: &Attrs, policy: &str) -> Result<(), InterpError> {
    let ok = matches!(a.mode, "nearest" | "linear" | "cubic")
        && matches!(
            a.coord_mode,
            "half_pixel"
                | "half_pixel_symmetric"
                | "pytorch_half_pixel"
                | "align_corners"
                | "asymmetric"
                | "tf_crop_and_resize"
        )
        && matches!(
            a.nearest_mode,
            "round_prefer_floor" | "round_prefer_ceil" | "floor" | "ceil"
        )
        && matches!(policy, "stretch" | "not_larger" | "not_smaller");
    if ok {
        Ok(())
    } else {
        Err(InterpError::unsupported(
            op,
            format!(
                "mode `{}`, coordinate_transformation_mode `{}`, nearest_mode `{}` or keep_aspect_ratio_policy `{policy}`",
                a.mode, a.coord_mode, a.nearest_mode
            ),
        ))
    }
}

/// The source coordinate of output position `o`, and whether it lies outside the crop region.
fn source_coord(
    a: &Attrs,
    o: usize,
    scale: f64,
    n_in: usize,
    n_out: usize,
    roi: Option<(f64, f64)>,
) -> (f64, bool) {
    let x = o as f64;
    let width = n_in as f64;
    let out_w = scale * width;
    let c = match a.coord_mode {
        "align_corners" if out_w == 1.0 => 0.0,
        "align_corners" => x * (width - 1.0) / (out_w - 1.0),
        "asymmetric" => x / scale,
        "pytorch_half_pixel" if out_w == 1.0 => -0.5,
        "pytorch_half_pixel" | "half_pixel" => (x + 0.5) / scale - 0.5,
        "half_pixel_symmetric" => {
            let adjustment = n_out as f64 / out_w;
            let offset = width / 2.0 * (1.0 - adjustment);
            offset + (x + 0.5) / scale - 0.5
        }
        _ => {
            // tf_crop_and_resize
            let (s, e) = roi.unwrap_or((0.0, 1.0));
            let c = if out_w == 1.0 {
                (e - s) * (width - 1.0) / 2.0
            } else {
                x * (e - s) * (width - 1.0) / (out_w - 1.0)
            };
            let c = c + s * (width - 1.0);
            return (c, c < 0.0 || c > width - 1.0);
        }
    };
    (c, false)
}

/// The cubic convolution kernel with parameter `a`.
fn cubic(x: f64, a: f64) -> f64 {
    let x = x.abs();
    if x <= 1.0 {
        ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a
    } else {
        0.0
    }
}

/// The interpolation weights for a fractional position `ratio` in `(0, 1]`.
fn coeffs(a: &Attrs, ratio: f64, scale: f64) -> Vec<f64> {
    match a.mode {
        "nearest" => {
            if ratio == 1.0 {
                return vec![0.0, 1.0];
            }
            let up = match a.nearest_mode {
                "round_prefer_floor" => ratio > 0.5,
                "round_prefer_ceil" => ratio >= 0.5,
                "floor" => false,
                _ => true,
            };
            if up {
                vec![0.0, 1.0]
            } else {
                vec![1.0, 0.0]
            }
        }
        "linear" if a.antialias => {
            let s = scale.min(1.0);
            let start = (-1.0 / s).floor() as i64 + 1;
            let footprint = 2 - 2 * start;
            let w: Vec<f64> = (start..start + footprint)
                .map(|i| (1.0 - ((i as f64 - ratio) * s).abs()).clamp(0.0, 1.0))
                .collect();
            normalized(w)
        }
        "linear" => vec![1.0 - ratio, ratio],
        _ if a.antialias => {
            let s = scale.min(1.0);
            let i_start = (-2.0 / s).floor() as i64 + 1;
            let i_end = 2 - i_start;
            normalized(
                (i_start..i_end)
                    .map(|i| cubic(s * (i as f64 - ratio), a.cubic_a))
                    .collect(),
            )
        }
        _ => [ratio + 1.0, ratio, 1.0 - ratio, 2.0 - ratio]
            .iter()
            .map(|&d| cubic(d, a.cubic_a))
            .collect(),
    }
}

/// Divides weights by their sum (left alone when it is zero).
fn normalized(w: Vec<f64>) -> Vec<f64> {
    let s: f64 = w.iter().sum();
    if s == 0.0 {
        w
    } else {
        w.into_iter().map(|v| v / s).collect()
    }
}

/// The taps of output position `o` of an axis of `n_in` positions resized to `n_out`.
fn taps(
    a: &Attrs,
    o: usize,
    scale: f64,
    n_in: usize,
    n_out: usize,
    roi: Option<(f64, f64)>,
) -> Taps {
    let (c, extrapolate) = source_coord(a, o, scale, n_in, n_out, roi);
    if extrapolate {
        return Taps {
            idx: Vec::new(),
            w: Vec::new(),
            extrapolate,
        };
    }
    // Far outside the input every tap clamps to the same edge; keep the integers in range.
    let c = c.clamp(-1e12, 1e12);
    let fl = c.floor();
    let ratio = if c == fl { 1.0 } else { c - fl };
    let mut w = coeffs(a, ratio, scale);
    let n = w.len() as i64;
    // The n positions nearest to c, ties going to the smaller ones (as the reference does).
    let pad = (n + 1) / 2;
    let xp = c + pad as f64;
    let p = xp.floor();
    let frac = xp - p;
    let offset = if n % 2 == 0 {
        if frac == 0.0 {
            -(n / 2)
        } else {
            -(n / 2) + 1
        }
    } else {
        let base = -((n - 1) / 2);
        if frac <= 0.5 {
            base
        } else {
            base + 1
        }
    };
    let start = p as i64 + offset - pad;
    let raw: Vec<i64> = (start..start + n).collect();
    if a.exclude_outside {
        for (wv, &i) in w.iter_mut().zip(&raw) {
            if i < 0 || i >= n_in as i64 {
                *wv = 0.0;
            }
        }
        w = normalized(w);
    }
    let last = n_in as i64 - 1;
    Taps {
        idx: raw
            .iter()
            .map(|&i| i.clamp(0, last.max(0)) as usize)
            .collect(),
        w,
        extrapolate,
    }
}

/// Resizes axis `axis` of `data` (shape `shape`) with one set of taps per output position.
fn apply_axis(
    data: &[f64],
    shape: &[usize],
    axis: usize,
    taps: &[Taps],
    extrapolation: f64,
) -> Vec<f64> {
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    let n_in = shape[axis];
    let mut out = vec![0.0; outer * taps.len() * inner];
    for o in 0..outer {
        let src = &data[o * n_in * inner..(o + 1) * n_in * inner];
        for (t, tap) in taps.iter().enumerate() {
            let dst = &mut out[(o * taps.len() + t) * inner..(o * taps.len() + t + 1) * inner];
            if tap.extrapolate {
                dst.fill(extrapolation);
                continue;
            }
            for (&i, &w) in tap.idx.iter().zip(&tap.w) {
                if w == 0.0 {
                    continue;
                }
                for (d, &s) in dst.iter_mut().zip(&src[i * inner..(i + 1) * inner]) {
                    *d += w * s;
                }
            }
        }
    }
    out
}

#[cfg(test)]
#[path = "resize_tests.rs"]
mod tests;
