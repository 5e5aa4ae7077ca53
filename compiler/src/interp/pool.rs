//! Pooling: `MaxPool` (with optional flat indices), `AveragePool`, `LpPool` and their global forms,
//! over 1, 2 or 3 spatial axes.
//!
//! Windows follow ONNX: output position `o` covers input positions `o * stride - pad_begin +
//! j * dilation`; positions outside the input are skipped, and `count_include_pad` counts those
//! inside the explicit padding (but not the extra room `ceil_mode` may add). `MaxPool` works on
//! every numeric type; averages are computed in `f64` and rounded once to the input's type.

use super::conv::{axis_attr, pads_attr, MAX_ATTR};
use super::elem::{checked_numel, dispatch, tensor, typed, Elem};
use super::util::arg;
use super::InterpError;
use sparsec_ir::shape::resolve_window;
use sparsec_ir::{DType, Op, Tensor};

/// Evaluates an op of the pooling family.
pub(crate) fn eval(
    op: &Op,
    inputs: &[Option<&Tensor>],
    n_outputs: usize,
) -> Result<Vec<Tensor>, InterpError> {
    let x = arg(op, inputs, 0)?;
    if x.rank() < 3 {
        return Err(InterpError::invalid(
            op,
            format!("input of shape {:?} has no spatial axes", x.shape()),
        ));
    }
    if x.dtype() == DType::Bool {
        return Err(InterpError::unsupported(op, "bool input"));
    }
    match op {
        Op::GlobalAveragePool {} => Ok(vec![global(op, x, Kind::Avg { include_pad: false })?]),
        Op::GlobalMaxPool {} => Ok(vec![global(op, x, Kind::Max)?]),
        Op::GlobalLpPool { p } => Ok(vec![global(op, x, Kind::Lp { p: *p })?]),
        Op::MaxPool {
            auto_pad,
            ceil_mode,
            dilations,
            kernel_shape,
            pads,
            storage_order,
            strides,
        } => {
            let attrs = WindowAttrs {
                auto_pad,
                ceil_mode: *ceil_mode != 0,
                dilations,
                kernel_shape,
                pads,
                strides,
            };
            let g = geometry(op, x, &attrs)?;
            dispatch!(x.dtype(), T => {
                let xv = typed::<T>(op, x, "x")?;
                let (y, idx) = pool_nd(xv, &g, Kind::Max, n_outputs > 1, *storage_order != 0);
                let mut out = vec![tensor(op, g.out_shape.clone(), y)?];
                if n_outputs > 1 {
                    out.push(Tensor::from_i64(&g.out_shape, idx));
                }
                Ok(out)
            })
        }
        Op::AveragePool {
            auto_pad,
            ceil_mode,
            count_include_pad,
            dilations,
            kernel_shape,
            pads,
            strides,
        } => {
            let attrs = WindowAttrs {
                auto_pad,
                ceil_mode: *ceil_mode != 0,
                dilations,
                kernel_shape,
                pads,
                strides,
            };
            let kind = Kind::Avg {
                include_pad: *count_include_pad != 0,
            };
            Ok(vec![windowed(op, x, &attrs, kind)?])
        }
        Op::LpPool {
            auto_pad,
            ceil_mode,
            dilations,
            kernel_shape,
            p,
            pads,
            strides,
        } => {
            let attrs = WindowAttrs {
                auto_pad,
                ceil_mode: *ceil_mode != 0,
                dilations,
                kernel_shape,
                pads,
                strides,
            };
            Ok(vec![windowed(op, x, &attrs, Kind::Lp { p: *p })?])
        }
        _ => Err(InterpError::unsupported(op, "not a pooling op")),
    }
}

/// What a window computes.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    /// Maximum.
    Max,
    /// Mean, counting padded positions when `include_pad`.
    Avg {
        /// `count_include_pad`.
        include_pad: bool,
    },
    /// `(sum |x|^p)^(1/p)`.
    Lp {
        /// The norm's order.
        p: i64,
    },
}

/// The window attributes shared by the windowed pools.
struct WindowAttrs<'a> {
    auto_pad: &'a str,
    ceil_mode: bool,
    dilations: &'a [i64],
    kernel_shape: &'a [i64],
    pads: &'a [i64],
    strides: &'a [i64],
}

/// Window geometry with the spatial axes padded to three.
#[derive(Clone, Debug, PartialEq)]
struct PoolGeom {
    /// `N * C`.
    planes: usize,
    /// Input spatial sizes.
    x_sp: [usize; 3],
    /// Output spatial sizes.
    y_sp: [usize; 3],
    /// Window sizes.
    k: [usize; 3],
    /// Strides.
    stride: [usize; 3],
    /// Dilations.
    dil: [usize; 3],
    /// Begin pads.
    pad: [usize; 3],
    /// End pads.
    pad_end: [usize; 3],
    /// The full output shape.
    out_shape: Vec<usize>,
}

/// Pads `v` to three axes with `fill` in front.
fn pad3(v: &[usize], fill: usize) -> [usize; 3] {
    let mut out = [fill; 3];
    out[3 - v.len()..].copy_from_slice(v);
    out
}

/// Resolves kernel, strides, dilations, pads and the output size of a windowed pool.
fn geometry(op: &Op, x: &Tensor, a: &WindowAttrs) -> Result<PoolGeom, InterpError> {
    let ns = x.rank() - 2;
    if ns > 3 {
        return Err(InterpError::unsupported(
            op,
            format!("{ns} spatial axes (1 to 3 are supported)"),
        ));
    }
    if a.kernel_shape.len() != ns || a.kernel_shape.iter().any(|&k| !(1..=MAX_ATTR).contains(&k)) {
        return Err(InterpError::invalid(
            op,
            format!(
                "kernel_shape {:?} does not fit input {:?}",
                a.kernel_shape,
                x.shape()
            ),
        ));
    }
    let k: Vec<i64> = a.kernel_shape.to_vec();
    let st = axis_attr(op, "strides", a.strides, ns, 1, 1)?;
    let dil = axis_attr(op, "dilations", a.dilations, ns, 1, 1)?;
    let mut p = pads_attr(op, a.pads, ns)?;
    let xs = &x.shape()[2..];
    let mut y = vec![0usize; ns];
    for i in 0..ns {
        let w = resolve_window(
            xs[i],
            k[i],
            st[i],
            dil[i],
            (p[i], p[ns + i]),
            a.auto_pad,
            a.ceil_mode,
        )
        .ok_or_else(|| InterpError::unsupported(op, format!("auto_pad `{}`", a.auto_pad)))?;
        p[i] = w.pad_begin as i64;
        p[ns + i] = w.pad_end as i64;
        if w.out < 1 {
            return Err(InterpError::invalid(
                op,
                format!(
                    "window {k:?} does not fit input {:?} with pads {p:?}",
                    x.shape()
                ),
            ));
        }
        y[i] = w.out;
    }
    let us = |v: &[i64]| v.iter().map(|&a| a as usize).collect::<Vec<_>>();
    let mut out_shape = x.shape()[..2].to_vec();
    out_shape.extend(&y);
    checked_numel(op, &out_shape)?;
    Ok(PoolGeom {
        planes: x.shape()[0] * x.shape()[1],
        x_sp: pad3(xs, 1),
        y_sp: pad3(&y, 1),
        k: pad3(&us(&k), 1),
        stride: pad3(&us(&st), 1),
        dil: pad3(&us(&dil), 1),
        pad: pad3(&us(&p[..ns]), 0),
        pad_end: pad3(&us(&p[ns..]), 0),
        out_shape,
    })
}

/// An average or Lp pool of any float type.
fn windowed(op: &Op, x: &Tensor, a: &WindowAttrs, kind: Kind) -> Result<Tensor, InterpError> {
    if !x.dtype().is_float() {
        return Err(InterpError::unsupported(
            op,
            format!("element type {}", x.dtype()),
        ));
    }
    if let Kind::Lp { p } = kind {
        if p < 1 {
            return Err(InterpError::invalid(op, format!("p {p} must be positive")));
        }
    }
    let g = geometry(op, x, a)?;
    dispatch!(x.dtype(), T => {
        let xv = typed::<T>(op, x, "x")?;
        tensor(op, g.out_shape.clone(), pool_nd(xv, &g, kind, false, false).0)
    })
}

/// The valid taps of one window along one axis: `(first, count, counted)` where taps `first..first
/// + count` land inside the input and `counted` also includes taps in the explicit padding.
#[inline]
fn taps(o: usize, ax: usize, g: &PoolGeom) -> (usize, usize, usize) {
    let start = (o * g.stride[ax]) as i64 - g.pad[ax] as i64;
    let d = g.dil[ax] as i64;
    let n_in = g.x_sp[ax] as i64;
    let limit = n_in + g.pad_end[ax] as i64;
    let mut first = None;
    let (mut count, mut counted) = (0, 0);
    for j in 0..g.k[ax] as i64 {
        let pos = start + j * d;
        if pos < limit {
            counted += 1;
        }
        if pos >= 0 && pos < n_in {
            first.get_or_insert(j as usize);
            count += 1;
        }
    }
    (first.unwrap_or(0), count, counted)
}

/// Pools every plane; also returns flat argmax indices when `want_idx`.
fn pool_nd<T: Elem>(
    x: &[T],
    g: &PoolGeom,
    kind: Kind,
    want_idx: bool,
    col_major: bool,
) -> (Vec<T>, Vec<i64>) {
    let [xd, xh, xw] = g.x_sp;
    let [yd, yh, yw] = g.y_sp;
    let x_plane = xd * xh * xw;
    let y_plane = yd * yh * yw;
    let mut y = Vec::with_capacity(g.planes * y_plane);
    let mut idx = Vec::with_capacity(if want_idx { g.planes * y_plane } else { 0 });
    let tap_table = |ax: usize, n: usize| (0..n).map(|o| taps(o, ax, g)).collect::<Vec<_>>();
    let (td, th, tw) = (tap_table(0, yd), tap_table(1, yh), tap_table(2, yw));
    let pos = |t: (usize, usize, usize), ax: usize, o: usize, j: usize| -> usize {
        ((o * g.stride[ax]) as i64 - g.pad[ax] as i64 + ((t.0 + j) * g.dil[ax]) as i64) as usize
    };
    for plane in 0..g.planes {
        let xp = &x[plane * x_plane..(plane + 1) * x_plane];
        for (od, &a) in td.iter().enumerate() {
            for (oh, &b) in th.iter().enumerate() {
                for (ow, &c) in tw.iter().enumerate() {
                    let mut best: Option<(T, usize, usize, usize)> = None;
                    let mut sum = 0.0f64;
                    for jd in 0..a.1 {
                        let id = pos(a, 0, od, jd);
                        for jh in 0..b.1 {
                            let ih = pos(b, 1, oh, jh);
                            let row = (id * xh + ih) * xw;
                            for jw in 0..c.1 {
                                let iw = pos(c, 2, ow, jw);
                                let v = xp[row + iw];
                                match kind {
                                    Kind::Max => {
                                        // NaN taps are skipped, as ONNX Runtime does.
                                        #[allow(clippy::eq_op)]
                                        let is_num = v == v;
                                        if is_num && best.is_none_or(|(m, ..)| v > m) {
                                            best = Some((v, id, ih, iw));
                                        }
                                    }
                                    Kind::Avg { .. } => sum += v.to_f64(),
                                    Kind::Lp { p } => sum += v.to_f64().abs().powi(p as i32),
                                }
                            }
                        }
                    }
                    let value = match kind {
                        Kind::Max => {
                            // No tap at all gives 0; taps that are all NaN give -inf (the
                            // start of the native kernel's running maximum).
                            let none = if a.1 * b.1 * c.1 == 0 {
                                T::default()
                            } else {
                                T::from_f64(f64::NEG_INFINITY)
                            };
                            let (m, id, ih, iw) = best.unwrap_or((none, 0, 0, 0));
                            if want_idx {
                                let flat = if col_major {
                                    id + ih * xd + iw * xd * xh
                                } else {
                                    (id * xh + ih) * xw + iw
                                };
                                idx.push(if best.is_some() {
                                    (plane * x_plane + flat) as i64
                                } else {
                                    -1
                                });
                            }
                            m
                        }
                        Kind::Avg { include_pad } => {
                            let n = if include_pad {
                                a.2 * b.2 * c.2
                            } else {
                                a.1 * b.1 * c.1
                            };
                            T::from_f64(sum / n.max(1) as f64)
                        }
                        Kind::Lp { p } => T::from_f64(sum.powf(1.0 / p as f64)),
                    };
                    y.push(value);
                }
            }
        }
    }
    (y, idx)
}

/// A global pool: one value per (batch, channel) over every spatial position.
fn global(op: &Op, x: &Tensor, kind: Kind) -> Result<Tensor, InterpError> {
    if kind != Kind::Max && !x.dtype().is_float() {
        return Err(InterpError::unsupported(
            op,
            format!("element type {}", x.dtype()),
        ));
    }
    let planes = x.shape()[0] * x.shape()[1];
    let plane: usize = x.shape()[2..].iter().product();
    let mut out_shape = x.shape()[..2].to_vec();
    out_shape.extend(std::iter::repeat_n(1, x.rank() - 2));
    if plane == 0 {
        return Err(InterpError::invalid(op, "empty spatial axes"));
    }
    dispatch!(x.dtype(), T => {
        let xv = typed::<T>(op, x, "x")?;
        let y: Vec<T> = xv
            .chunks_exact(plane)
            .take(planes)
            .map(|p| match kind {
                Kind::Max => max_of(p),
                Kind::Avg { .. } => {
                    T::from_f64(p.iter().map(|v| v.to_f64()).sum::<f64>() / plane as f64)
                }
                Kind::Lp { p: e } => T::from_f64(
                    p.iter()
                        .map(|v| v.to_f64().abs().powi(e as i32))
                        .sum::<f64>()
                        .powf(1.0 / e as f64),
                ),
            })
            .collect();
        tensor(op, out_shape, y)
    })
}

/// The largest element of a non-empty slice (the first of equal ones).
fn max_of<T: Elem>(p: &[T]) -> T {
    p.iter()
        .copied()
        .fold(p[0], |m, v| if v > m { v } else { m })
}

#[cfg(test)]
#[path = "pool_tests.rs"]
mod tests;
