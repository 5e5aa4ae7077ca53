//! `Conv` and `ConvTranspose` over 1, 2 or 3 spatial axes (groups, dilations, strides, pads,
//! `auto_pad`, optional bias; `output_padding` and `output_shape` for the transpose).
//!
//! Both work on `f32` and `f64` (`f16` is computed in `f32`). Spatial shapes are padded to three
//! axes with unit sizes so one loop nest serves every rank. The loops are written for speed as
//! well as clarity because this op dominates every CNN: a stride-1 convolution pads the input once
//! and then, for each (output channel, input channel, kernel offset), adds `w * x` over the whole
//! output plane in one contiguous `axpy` (rows carry a few junk columns that are dropped at the
//! end); other strides add `w * x` over one output row at a time, with the valid range of each
//! row computed per kernel offset so padding never needs a test in the inner loop.

use super::elem::{checked_numel, tensor, typed, Elem, MAX_ELEMENTS};
use super::util::{arg, opt_arg};
use super::InterpError;
use sparsec_ir::shape::resolve_window;
use sparsec_ir::{DType, Op, Tensor};

/// Evaluates an op of the convolution family.
pub(crate) fn eval(
    op: &Op,
    inputs: &[Option<&Tensor>],
    _n_outputs: usize,
) -> Result<Vec<Tensor>, InterpError> {
    let x = arg(op, inputs, 0)?;
    let w = arg(op, inputs, 1)?;
    let b = opt_arg(inputs, 2);
    if x.dtype() != w.dtype() || b.is_some_and(|b| b.dtype() != x.dtype()) {
        return Err(InterpError::invalid(
            op,
            "operands have different element types",
        ));
    }
    let out = match x.dtype() {
        DType::F32 => run::<f32>(op, x, w, b)?,
        DType::F64 => run::<f64>(op, x, w, b)?,
        DType::F16 => {
            let b32 = b.map(|b| b.cast(DType::F32));
            run::<f32>(op, &x.cast(DType::F32), &w.cast(DType::F32), b32.as_ref())?.cast(DType::F16)
        }
        d => return Err(InterpError::unsupported(op, format!("element type {d}"))),
    };
    Ok(vec![out])
}

/// Geometry of a convolution with the spatial axes padded to three.
#[derive(Clone, Debug, PartialEq)]
struct Geom {
    /// Batch size.
    n: usize,
    /// Input channels.
    c_in: usize,
    /// Output channels.
    c_out: usize,
    /// Groups.
    group: usize,
    /// Input spatial sizes.
    x_sp: [usize; 3],
    /// Output spatial sizes.
    y_sp: [usize; 3],
    /// Kernel spatial sizes.
    k: [usize; 3],
    /// Strides.
    stride: [usize; 3],
    /// Dilations.
    dil: [usize; 3],
    /// Begin pads (negative only for a transpose whose `output_shape` asks for more).
    pad: [i64; 3],
    /// End pads.
    pad_end: [i64; 3],
}

/// The largest kernel size, stride, dilation or pad accepted (keeps size arithmetic in range).
pub(crate) const MAX_ATTR: i64 = i32::MAX as i64;

/// A per-axis attribute list: `default` on every axis when empty, else exactly `ns` values >= `min`.
pub(crate) fn axis_attr(
    op: &Op,
    name: &str,
    v: &[i64],
    ns: usize,
    default: i64,
    min: i64,
) -> Result<Vec<i64>, InterpError> {
    if v.is_empty() {
        return Ok(vec![default; ns]);
    }
    if v.len() != ns || v.iter().any(|&x| x < min || x > MAX_ATTR) {
        return Err(InterpError::invalid(
            op,
            format!("{name} {v:?} does not fit {ns} spatial axes"),
        ));
    }
    Ok(v.to_vec())
}

/// Explicit pads: zeros when empty, else `2 * ns` non-negative values.
pub(crate) fn pads_attr(op: &Op, v: &[i64], ns: usize) -> Result<Vec<i64>, InterpError> {
    if v.is_empty() {
        return Ok(vec![0; 2 * ns]);
    }
    if v.len() != 2 * ns || v.iter().any(|&x| !(0..=MAX_ATTR).contains(&x)) {
        return Err(InterpError::invalid(
            op,
            format!("pads {v:?} do not fit {ns} spatial axes"),
        ));
    }
    Ok(v.to_vec())
}

/// Pads `[a, b, c]` to three axes with `fill` in front.
fn pad3<T: Copy>(v: &[T], fill: T) -> [T; 3] {
    let mut out = [fill; 3];
    out[3 - v.len()..].copy_from_slice(v);
    out
}

/// Checks ranks and channel counts and returns `(ns, c_in, c_out, kernel)` for `x` and `w`.
fn check_operands(
    op: &Op,
    x: &Tensor,
    w: &Tensor,
    group: i64,
    kernel_shape: &[i64],
    transpose: bool,
) -> Result<(usize, usize, usize, Vec<usize>), InterpError> {
    let r = x.rank();
    if !(3..=5).contains(&r) {
        return Err(InterpError::unsupported(
            op,
            format!("input of rank {r} (1 to 3 spatial axes are supported)"),
        ));
    }
    if w.rank() != r {
        return Err(InterpError::invalid(
            op,
            format!(
                "weight shape {:?} does not match input shape {:?}",
                w.shape(),
                x.shape()
            ),
        ));
    }
    let ns = r - 2;
    if !(1..=MAX_ATTR).contains(&group) {
        return Err(InterpError::invalid(
            op,
            format!("group {group} must be positive"),
        ));
    }
    let g = group as usize;
    let c_in = x.shape()[1];
    let kernel: Vec<usize> = w.shape()[2..].to_vec();
    if !kernel_shape.is_empty()
        && kernel_shape
            .iter()
            .map(|&k| k as usize)
            .ne(kernel.iter().copied())
    {
        return Err(InterpError::invalid(
            op,
            format!(
                "kernel_shape {kernel_shape:?} differs from weight shape {:?}",
                w.shape()
            ),
        ));
    }
    let c_out = if transpose {
        if w.shape()[0] != c_in || !c_in.is_multiple_of(g) {
            return Err(InterpError::invalid(
                op,
                format!(
                    "weight shape {:?} does not fit {c_in} input channels in {g} groups",
                    w.shape()
                ),
            ));
        }
        w.shape()[1] * g
    } else {
        if !c_in.is_multiple_of(g) || w.shape()[1] * g != c_in || !w.shape()[0].is_multiple_of(g) {
            return Err(InterpError::invalid(
                op,
                format!(
                    "weight shape {:?} does not fit {c_in} input channels in {g} groups",
                    w.shape()
                ),
            ));
        }
        w.shape()[0]
    };
    Ok((ns, c_in, c_out, kernel))
}

/// The geometry of a `Conv`.
fn conv_geom(op: &Op, x: &Tensor, w: &Tensor) -> Result<Geom, InterpError> {
    let Op::Conv {
        auto_pad,
        dilations,
        group,
        kernel_shape,
        pads,
        strides,
    } = op
    else {
        return Err(InterpError::unsupported(op, "not a convolution"));
    };
    let (ns, c_in, c_out, kernel) = check_operands(op, x, w, *group, kernel_shape, false)?;
    let dil = axis_attr(op, "dilations", dilations, ns, 1, 1)?;
    let st = axis_attr(op, "strides", strides, ns, 1, 1)?;
    let mut p = pads_attr(op, pads, ns)?;
    let xs = &x.shape()[2..];
    let mut y = vec![0usize; ns];
    for i in 0..ns {
        let w = resolve_window(
            xs[i],
            kernel[i] as i64,
            st[i],
            dil[i],
            (p[i], p[ns + i]),
            auto_pad,
            false,
        )
        .ok_or_else(|| InterpError::unsupported(op, format!("auto_pad `{auto_pad}`")))?;
        p[i] = w.pad_begin as i64;
        p[ns + i] = w.pad_end as i64;
        if w.out < 1 {
            return Err(InterpError::invalid(
                op,
                format!(
                    "kernel {kernel:?} does not fit input {:?} with pads {p:?}",
                    x.shape()
                ),
            ));
        }
        y[i] = w.out;
    }
    let to_us = |v: &[i64]| v.iter().map(|&a| a as usize).collect::<Vec<_>>();
    Ok(Geom {
        n: x.shape()[0],
        c_in,
        c_out,
        group: *group as usize,
        x_sp: pad3(xs, 1),
        y_sp: pad3(&y, 1),
        k: pad3(&kernel, 1),
        stride: pad3(&to_us(&st), 1),
        dil: pad3(&to_us(&dil), 1),
        pad: pad3(&p[..ns], 0),
        pad_end: pad3(&p[ns..], 0),
    })
}

/// The geometry of a `ConvTranspose` (`y` spatial sizes are the output's).
fn conv_transpose_geom(op: &Op, x: &Tensor, w: &Tensor) -> Result<Geom, InterpError> {
    let Op::ConvTranspose {
        auto_pad,
        dilations,
        group,
        kernel_shape,
        output_padding,
        output_shape,
        pads,
        strides,
    } = op
    else {
        return Err(InterpError::unsupported(op, "not a transposed convolution"));
    };
    let (ns, c_in, c_out, kernel) = check_operands(op, x, w, *group, kernel_shape, true)?;
    let dil = axis_attr(op, "dilations", dilations, ns, 1, 1)?;
    let st = axis_attr(op, "strides", strides, ns, 1, 1)?;
    let out_pad = axis_attr(op, "output_padding", output_padding, ns, 0, 0)?;
    let mut p = pads_attr(op, pads, ns)?;
    let requested: Option<Vec<i64>> = match output_shape.len() {
        0 => None,
        l if l == ns => Some(output_shape.clone()),
        l if l == ns + 2 => Some(output_shape[2..].to_vec()),
        _ => {
            return Err(InterpError::invalid(
                op,
                format!("output_shape {output_shape:?} does not fit {ns} spatial axes"),
            ))
        }
    };
    if !matches!(
        auto_pad.as_str(),
        "NOTSET" | "VALID" | "SAME_UPPER" | "SAME_LOWER"
    ) {
        return Err(InterpError::unsupported(
            op,
            format!("auto_pad `{auto_pad}`"),
        ));
    }
    let xs = &x.shape()[2..];
    let mut y = vec![0usize; ns];
    for i in 0..ns {
        let eff = (kernel[i] as i64 - 1) * dil[i] + 1;
        let full = st[i] * (xs[i] as i64 - 1) + out_pad[i] + eff;
        let same = auto_pad.starts_with("SAME");
        let target = match &requested {
            Some(r) => Some(r[i]),
            None if same => Some(xs[i] as i64 * st[i]),
            None => None,
        };
        if target.is_some_and(|t| !(1..=MAX_ELEMENTS as i64).contains(&t)) {
            return Err(InterpError::invalid(
                op,
                format!("output size {target:?} is not positive or too large"),
            ));
        }
        let yi = match target {
            Some(t) => {
                // Pads follow from the requested size; SAME_UPPER puts the larger half at the end.
                let total = full - t;
                let half = total.div_euclid(2);
                let (b, e) = if auto_pad == "SAME_UPPER" {
                    (half, total - half)
                } else {
                    (total - half, half)
                };
                p[i] = b;
                p[ns + i] = e;
                t
            }
            None if auto_pad == "VALID" => {
                p[i] = 0;
                p[ns + i] = 0;
                full
            }
            None => full - p[i] - p[ns + i],
        };
        if yi < 1 {
            return Err(InterpError::invalid(
                op,
                format!("output size {yi} is not positive for input {:?}", x.shape()),
            ));
        }
        y[i] = yi as usize;
    }
    let to_us = |v: &[i64]| v.iter().map(|&a| a as usize).collect::<Vec<_>>();
    Ok(Geom {
        n: x.shape()[0],
        c_in,
        c_out,
        group: *group as usize,
        x_sp: pad3(xs, 1),
        y_sp: pad3(&y, 1),
        k: pad3(&kernel, 1),
        stride: pad3(&to_us(&st), 1),
        dil: pad3(&to_us(&dil), 1),
        pad: pad3(&p[..ns], 0),
        pad_end: pad3(&p[ns..], 0),
    })
}

/// Runs a `Conv` or `ConvTranspose` on typed data.
fn run<T: Elem>(
    op: &Op,
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
) -> Result<Tensor, InterpError> {
    let transpose = matches!(op, Op::ConvTranspose { .. });
    let g = if transpose {
        conv_transpose_geom(op, x, w)?
    } else {
        conv_geom(op, x, w)?
    };
    if let Some(b) = b {
        if b.shape() != [g.c_out] {
            return Err(InterpError::invalid(
                op,
                format!("bias shape {:?} is not [{}]", b.shape(), g.c_out),
            ));
        }
    }
    let mut shape = vec![g.n, g.c_out];
    shape.extend_from_slice(&g.y_sp[5 - x.rank()..]);
    checked_numel(op, &shape)?;
    let xv = typed::<T>(op, x, "x")?;
    let wv = typed::<T>(op, w, "w")?;
    let bv = match b {
        Some(b) => Some(typed::<T>(op, b, "b")?),
        None => None,
    };
    let y = if transpose {
        conv_transpose_nd(xv, wv, bv, &g)
    } else if g.stride == [1, 1, 1] && padded_fits(&g) {
        conv_stride1(xv, wv, bv, &g)
    } else {
        conv_rows(xv, wv, bv, &g)
    };
    tensor(op, shape, y)
}

/// True when the padded copy of one batch element of the input is of a sane size.
fn padded_fits(g: &Geom) -> bool {
    (0..3)
        .try_fold(g.c_in, |acc, i| {
            let side = g.x_sp[i] as i64 + g.pad[i] + g.pad_end[i];
            acc.checked_mul(usize::try_from(side).ok()?)
        })
        .is_some_and(|n| n <= MAX_ELEMENTS)
}

/// The range of `t` in `0..n` with `0 <= t * s + off < limit`.
fn valid_range(n: usize, s: usize, off: i64, limit: usize) -> (usize, usize) {
    let s = s as i64;
    let top = limit as i64 - 1 - off;
    if top < 0 {
        return (0, 0);
    }
    let hi = (top / s + 1).min(n as i64);
    let lo = if off < 0 { (-off + s - 1) / s } else { 0 }.min(hi);
    (lo as usize, hi as usize)
}

/// `acc[i] += a * x[i]`.
#[inline]
fn axpy<T: Elem>(acc: &mut [T], a: T, x: &[T]) {
    for (o, &v) in acc.iter_mut().zip(x) {
        *o = o.add(a.mul(v));
    }
}

/// A stride-1 convolution: pad the input once, then one whole-plane `axpy` per
/// (output channel, input channel, kernel offset) into a plane whose rows have the padded width.
fn conv_stride1<T: Elem>(x: &[T], w: &[T], b: Option<&[T]>, g: &Geom) -> Vec<T> {
    let [xd, xh, xw] = g.x_sp;
    let [yd, yh, yw] = g.y_sp;
    let [kd, kh, kw] = g.k;
    let [pd, ph, pw] = g.pad.map(|p| p as usize);
    let [dp, hp, wp] = [0, 1, 2].map(|i| g.x_sp[i] + g.pad[i] as usize + g.pad_end[i] as usize);
    let x_plane = xd * xh * xw;
    let p_plane = dp * hp * wp;
    let y_plane = yd * yh * yw;
    let (cg, mg) = (g.c_in / g.group, g.c_out / g.group);
    let kprod = kd * kh * kw;
    let needs_pad = p_plane != x_plane;
    // Accumulator index (od * hp + oh) * wp + ow; its input is at the same index plus an offset.
    let len = ((yd - 1) * hp + (yh - 1)) * wp + yw;
    let mut offsets = Vec::with_capacity(kprod);
    for a in 0..kd {
        for bb in 0..kh {
            for c in 0..kw {
                offsets.push((a * g.dil[0] * hp + bb * g.dil[1]) * wp + c * g.dil[2]);
            }
        }
    }
    let mut y = vec![T::default(); g.n * g.c_out * y_plane];
    let mut padded = if needs_pad {
        vec![T::default(); g.c_in * p_plane]
    } else {
        Vec::new()
    };
    let mut acc = vec![T::default(); len];
    for n in 0..g.n {
        let xn = &x[n * g.c_in * x_plane..(n + 1) * g.c_in * x_plane];
        let src: &[T] = if needs_pad {
            for (pc, xc) in padded
                .chunks_exact_mut(p_plane)
                .zip(xn.chunks_exact(x_plane))
            {
                for d in 0..xd {
                    for h in 0..xh {
                        let o = ((d + pd) * hp + h + ph) * wp + pw;
                        let i = (d * xh + h) * xw;
                        pc[o..o + xw].copy_from_slice(&xc[i..i + xw]);
                    }
                }
            }
            &padded
        } else {
            xn
        };
        for oc in 0..g.c_out {
            let grp = oc / mg;
            acc.fill(T::default());
            for icg in 0..cg {
                let ic = grp * cg + icg;
                let xp = &src[ic * p_plane..(ic + 1) * p_plane];
                let wk = &w[(oc * cg + icg) * kprod..(oc * cg + icg + 1) * kprod];
                for (&wv, &off) in wk.iter().zip(&offsets) {
                    axpy(&mut acc, wv, &xp[off..off + len]);
                }
            }
            let bias = b.map_or(T::default(), |b| b[oc]);
            let out = &mut y[(n * g.c_out + oc) * y_plane..(n * g.c_out + oc + 1) * y_plane];
            for od in 0..yd {
                for oh in 0..yh {
                    let a = (od * hp + oh) * wp;
                    let o = (od * yh + oh) * yw;
                    for (dst, &s) in out[o..o + yw].iter_mut().zip(&acc[a..a + yw]) {
                        *dst = s.add(bias);
                    }
                }
            }
        }
    }
    y
}

/// A convolution with any strides: one `axpy` per (output channel, input channel, kernel offset,
/// output row) over the valid part of the row.
fn conv_rows<T: Elem>(x: &[T], w: &[T], b: Option<&[T]>, g: &Geom) -> Vec<T> {
    let [xd, xh, xw] = g.x_sp;
    let [yd, yh, yw] = g.y_sp;
    let [kd, kh, kw] = g.k;
    let [sd, sh, sw] = g.stride;
    let x_plane = xd * xh * xw;
    let y_plane = yd * yh * yw;
    let (cg, mg) = (g.c_in / g.group, g.c_out / g.group);
    let kprod = kd * kh * kw;
    // Valid output ranges and input offsets of every kernel offset, per axis.
    let ranges = |ax: usize, k: usize, n_out: usize, n_in: usize| -> Vec<(usize, usize, i64)> {
        (0..k)
            .map(|i| {
                let off = (i * g.dil[ax]) as i64 - g.pad[ax];
                let (lo, hi) = valid_range(n_out, g.stride[ax], off, n_in);
                (lo, hi, off)
            })
            .collect()
    };
    let rd = ranges(0, kd, yd, xd);
    let rh = ranges(1, kh, yh, xh);
    let rw = ranges(2, kw, yw, xw);
    let mut y = vec![T::default(); g.n * g.c_out * y_plane];
    for n in 0..g.n {
        for oc in 0..g.c_out {
            let grp = oc / mg;
            let out = &mut y[(n * g.c_out + oc) * y_plane..(n * g.c_out + oc + 1) * y_plane];
            if let Some(b) = b {
                out.fill(b[oc]);
            }
            for icg in 0..cg {
                let ic = grp * cg + icg;
                let xin = &x[(n * g.c_in + ic) * x_plane..(n * g.c_in + ic + 1) * x_plane];
                let wk = &w[(oc * cg + icg) * kprod..(oc * cg + icg + 1) * kprod];
                for (a, &(d_lo, d_hi, d_off)) in rd.iter().enumerate() {
                    for (bb, &(h_lo, h_hi, h_off)) in rh.iter().enumerate() {
                        for (c, &(w_lo, w_hi, w_off)) in rw.iter().enumerate() {
                            if w_lo >= w_hi {
                                continue;
                            }
                            let wv = wk[(a * kh + bb) * kw + c];
                            let iw0 = (w_lo * sw) as i64 + w_off;
                            for od in d_lo..d_hi {
                                let id = ((od * sd) as i64 + d_off) as usize;
                                for oh in h_lo..h_hi {
                                    let ih = ((oh * sh) as i64 + h_off) as usize;
                                    let o = (od * yh + oh) * yw;
                                    let orow = &mut out[o + w_lo..o + w_hi];
                                    let xrow = &xin[(id * xh + ih) * xw + iw0 as usize..];
                                    if sw == 1 {
                                        axpy(orow, wv, xrow);
                                    } else {
                                        for (o, &v) in orow.iter_mut().zip(xrow.iter().step_by(sw))
                                        {
                                            *o = o.add(wv.mul(v));
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    y
}

/// A transposed convolution: every input element scatters `x * w` into the output; one strided
/// row update per (input channel, output channel, kernel offset, input row).
fn conv_transpose_nd<T: Elem>(x: &[T], w: &[T], b: Option<&[T]>, g: &Geom) -> Vec<T> {
    let [xd, xh, xw] = g.x_sp;
    let [yd, yh, yw] = g.y_sp;
    let [kd, kh, kw] = g.k;
    let [sd, sh, sw] = g.stride;
    let x_plane = xd * xh * xw;
    let y_plane = yd * yh * yw;
    let (cg, mg) = (g.c_in / g.group, g.c_out / g.group);
    let kprod = kd * kh * kw;
    // Valid input ranges of every kernel offset, per axis: output = input * s + off.
    let ranges = |ax: usize, k: usize, n_in: usize, n_out: usize| -> Vec<(usize, usize, i64)> {
        (0..k)
            .map(|i| {
                let off = (i * g.dil[ax]) as i64 - g.pad[ax];
                let (lo, hi) = valid_range(n_in, g.stride[ax], off, n_out);
                (lo, hi, off)
            })
            .collect()
    };
    let rd = ranges(0, kd, xd, yd);
    let rh = ranges(1, kh, xh, yh);
    let rw = ranges(2, kw, xw, yw);
    let mut y = vec![T::default(); g.n * g.c_out * y_plane];
    for n in 0..g.n {
        for oc in 0..g.c_out {
            let grp = oc / mg;
            let ocg = oc % mg;
            let out = &mut y[(n * g.c_out + oc) * y_plane..(n * g.c_out + oc + 1) * y_plane];
            if let Some(b) = b {
                out.fill(b[oc]);
            }
            for icg in 0..cg {
                let ic = grp * cg + icg;
                let xin = &x[(n * g.c_in + ic) * x_plane..(n * g.c_in + ic + 1) * x_plane];
                let wk = &w[(ic * mg + ocg) * kprod..(ic * mg + ocg + 1) * kprod];
                for (a, &(d_lo, d_hi, d_off)) in rd.iter().enumerate() {
                    for (bb, &(h_lo, h_hi, h_off)) in rh.iter().enumerate() {
                        for (c, &(w_lo, w_hi, w_off)) in rw.iter().enumerate() {
                            if w_lo >= w_hi {
                                continue;
                            }
                            let wv = wk[(a * kh + bb) * kw + c];
                            let ow0 = ((w_lo * sw) as i64 + w_off) as usize;
                            for id in d_lo..d_hi {
                                let od = ((id * sd) as i64 + d_off) as usize;
                                for ih in h_lo..h_hi {
                                    let oh = ((ih * sh) as i64 + h_off) as usize;
                                    let i = (id * xh + ih) * xw;
                                    let xrow = &xin[i + w_lo..i + w_hi];
                                    let orow = &mut out[(od * yh + oh) * yw + ow0..];
                                    for (o, &v) in orow.iter_mut().step_by(sw).zip(xrow) {
                                        *o = o.add(wv.mul(v));
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    y
}

#[cfg(test)]
#[path = "conv_tests.rs"]
mod tests;
