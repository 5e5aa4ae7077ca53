//! Pooling kernels: f32 2-D `MaxPool` (single result), `AveragePool`, `GlobalAveragePool` and
//! `GlobalMaxPool` over NCHW tensors as host kernels specialized on the shapes known at compile
//! time.
//!
//! The window geometry follows the reference interpreter (`interp/pool.rs`): output position `o`
//! covers input positions `o * stride - pad_begin + j * dilation`; positions outside the input are
//! skipped, and `count_include_pad` counts those inside the explicit padding (but not the extra room
//! `ceil_mode` adds). The parallel dimension is the `N * C` planes. Inside a plane, each output row
//! first combines its valid input rows column by column into a row buffer (contiguous loops the
//! compiler vectorizes), then the taps along that one row: the output columns whose window lies
//! fully inside the row run as strided loops without bounds tests, and the border columns use
//! per-column tap tables built at compile time. An `AveragePool` whose window is the whole plane
//! (no padding) runs as the global average.

use super::dense::{f32_shape, grain_for, operand, result, unsupported};
use super::strided::zip_strided;
use super::{Arg, CodegenError, LoweredKernel};
use sparsec_ir::shape::resolve_window;
use sparsec_ir::{Graph, NodeId, Op};
use sparsec_runtime::Kernel;

/// The valid taps of the windows along one axis.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Taps {
    /// Input position of the first tap inside the input (meaningful when `count > 0`).
    first_pos: usize,
    /// Taps inside the input.
    count: usize,
    /// Taps inside the input or its explicit padding.
    counted: usize,
}

/// The geometry of one spatial axis.
#[derive(Clone, Debug)]
struct Axis {
    /// Input size.
    x: usize,
    /// Output size.
    y: usize,
    /// Window size.
    k: usize,
    /// Stride.
    s: usize,
    /// Dilation.
    d: usize,
    /// Begin pad.
    pad: usize,
    /// Per output position, its taps.
    taps: Vec<Taps>,
    /// Output positions `lo..hi` have their whole window inside the input.
    lo: usize,
    /// See `lo`.
    hi: usize,
}

impl Axis {
    /// Builds the axis from its sizes and attributes (the output size already resolved).
    fn new(x: usize, y: usize, k: usize, s: usize, d: usize, pad: usize, pad_end: usize) -> Axis {
        let taps = (0..y)
            .map(|o| {
                let start = (o * s) as i64 - pad as i64;
                let (mut first, mut count, mut counted) = (None, 0, 0);
                for j in 0..k as i64 {
                    let pos = start + j * d as i64;
                    if pos < (x + pad_end) as i64 {
                        counted += 1;
                    }
                    if pos >= 0 && pos < x as i64 {
                        first.get_or_insert(pos as usize);
                        count += 1;
                    }
                }
                Taps {
                    first_pos: first.unwrap_or(0),
                    count,
                    counted,
                }
            })
            .collect();
        let span = (k - 1) * d;
        let lo = pad.div_ceil(s).min(y);
        let hi = if x + pad > span {
            ((x + pad - span - 1) / s + 1).min(y)
        } else {
            0
        };
        Axis {
            x,
            y,
            k,
            s,
            d,
            pad,
            taps,
            lo,
            hi: hi.max(lo),
        }
    }
}

/// What a window computes.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    /// Maximum (0 for a window with no valid tap, as the interpreter does).
    Max,
    /// Mean, dividing by the taps counted with or without padding.
    Avg {
        /// `count_include_pad`.
        include_pad: bool,
    },
}

/// Lowers an f32 pooling node to a host kernel; `Unsupported` for anything else (other ops or
/// element types, 1-D/3-D pools, `MaxPool` with its indices result, invalid attributes).
pub fn lower_pool(graph: &Graph, n: NodeId) -> Result<LoweredKernel, CodegenError> {
    let node = graph.node(n);
    if node.outputs.len() != 1 {
        return Err(unsupported(graph, n, "only a single result is lowered"));
    }
    let x = operand(graph, n, 0)?;
    let y = result(graph, n)?;
    let xs = f32_shape(graph, n, x)?;
    let ys = f32_shape(graph, n, y)?;
    let args = vec![Arg::Value(x), Arg::Value(y)];
    match &node.op {
        Op::GlobalAveragePool {} | Op::GlobalMaxPool {} => {
            let max = matches!(node.op, Op::GlobalMaxPool {});
            let mut want = xs.get(..2).unwrap_or(&xs).to_vec();
            want.extend(std::iter::repeat_n(1, xs.len().saturating_sub(2)));
            let plane: usize = xs.iter().skip(2).product();
            if xs.len() < 3 || ys != want || plane == 0 {
                return Err(unsupported(
                    graph,
                    n,
                    format!("input {xs:?} and result {ys:?} do not fit a global pool"),
                ));
            }
            Ok(global_kernel(xs[0] * xs[1], plane, max, args))
        }
        Op::MaxPool {
            auto_pad,
            ceil_mode,
            dilations,
            kernel_shape,
            pads,
            strides,
            ..
        } => windowed(
            graph,
            n,
            (&xs, &ys),
            (
                auto_pad,
                *ceil_mode != 0,
                dilations,
                kernel_shape,
                pads,
                strides,
            ),
            Kind::Max,
            args,
        ),
        Op::AveragePool {
            auto_pad,
            ceil_mode,
            count_include_pad,
            dilations,
            kernel_shape,
            pads,
            strides,
        } => windowed(
            graph,
            n,
            (&xs, &ys),
            (
                auto_pad,
                *ceil_mode != 0,
                dilations,
                kernel_shape,
                pads,
                strides,
            ),
            Kind::Avg {
                include_pad: *count_include_pad != 0,
            },
            args,
        ),
        _ => Err(unsupported(graph, n, "not a lowered pooling op")),
    }
}

/// The window attributes: auto_pad, ceil_mode, dilations, kernel_shape, pads, strides.
type Attrs<'a> = (&'a str, bool, &'a [i64], &'a [i64], &'a [i64], &'a [i64]);

/// Builds the kernel of a 2-D `MaxPool` or `AveragePool`.
fn windowed(
    graph: &Graph,
    n: NodeId,
    (xs, ys): (&[usize], &[usize]),
    (auto_pad, ceil_mode, dil, ks, pads, strides): Attrs,
    kind: Kind,
    args: Vec<Arg>,
) -> Result<LoweredKernel, CodegenError> {
    if xs.len() != 4 || ks.len() != 2 {
        return Err(unsupported(
            graph,
            n,
            format!("input {xs:?} with kernel_shape {ks:?}: only 2-D pools are lowered"),
        ));
    }
    let per_axis = |v: &[i64], i: usize| {
        if v.is_empty() {
            Some(1)
        } else {
            v.get(i).copied()
        }
    };
    let pad_of = |i: usize| {
        if pads.is_empty() {
            Some((0, 0))
        } else if pads.len() == 4 {
            Some((pads[i], pads[2 + i]))
        } else {
            None
        }
    };
    let mut axes = Vec::with_capacity(2);
    for i in 0..2 {
        let resolved = (|| {
            let (s, d, p) = (per_axis(strides, i)?, per_axis(dil, i)?, pad_of(i)?);
            if strides.len() > 2 || dil.len() > 2 {
                return None;
            }
            let r = resolve_window(xs[2 + i], ks[i], s, d, p, auto_pad, ceil_mode)?;
            if r.out < 1 {
                return None;
            }
            Some(Axis::new(
                xs[2 + i],
                r.out,
                ks[i] as usize,
                s as usize,
                d as usize,
                r.pad_begin,
                r.pad_end,
            ))
        })();
        let Some(axis) = resolved else {
            return Err(unsupported(graph, n, "attributes the interpreter rejects"));
        };
        axes.push(axis);
    }
    let w = axes.pop().ok_or_else(|| unsupported(graph, n, "no axes"))?;
    let h = axes.pop().ok_or_else(|| unsupported(graph, n, "no axes"))?;
    let want = [xs[0], xs[1], h.y, w.y];
    if ys != want {
        return Err(unsupported(
            graph,
            n,
            format!("result shape {ys:?} differs from the pooled shape {want:?}"),
        ));
    }
    let planes = xs[0] * xs[1];
    // A window covering the whole plane with no padding is a global average (the maximum keeps
    // the windowed kernel, whose treatment of NaN differs from the global one's).
    let whole = |a: &Axis| a.y == 1 && a.k == a.x && a.taps[0].count == a.k;
    if matches!(kind, Kind::Avg { .. }) && whole(&h) && whole(&w) {
        return Ok(global_kernel(planes, h.x * w.x, false, args));
    }
    // A tap (a load and a compare or add, in a row walk) takes about as long as 16 flops of a
    // GEMM: the 3x3 stride-2 MaxPool of ResNet-50 (64 planes of 56 x 56) measured 0.44 ms, and
    // its planes now split over two threads instead of forming one chunk.
    let cost = 16 * (h.y * w.y * h.k * w.k).max(h.x * w.x);
    let op = match kind {
        Kind::Max => "max_pool",
        Kind::Avg { .. } => "average_pool",
    };
    // Every window inside the input (no padding), and either 2x2 windows of stride 2 or rows
    // of at most 16 inputs: the direct loop. The digits CNN's 2x2 pool of 8x8 planes: 1.57 ->
    // 0.27 ms at batch 256; VGG-19's 2x2 pools 2.6 -> 2.1 ms, DenseNet-121's 0.95 -> 0.48 ms.
    // Larger windows on wide rows keep the row passes (3x3 stride 2 on SqueezeNet's and ZFNet's
    // planes took about twice as long in the direct loop).
    let two_by_two = (h.k, h.s, h.d, w.k, w.s, w.d) == (2, 2, 1, 2, 2, 1);
    let inside = [&h, &w]
        .iter()
        .all(|a| a.pad == 0 && a.lo == 0 && a.hi == a.y)
        && (two_by_two || w.x <= 16);
    let kernel = Kernel::Host(Box::new(move |p: &[*mut u8], begin: usize, end: usize| {
        let (xp, yp) = (h.x * w.x, h.y * w.y);
        // SAFETY: the runtime passes the input and result buffers with the shapes checked above,
        // and only this call writes the planes `begin..end` of the result.
        let (xv, yv) = unsafe {
            (
                std::slice::from_raw_parts(
                    (p[0] as *const f32).add(begin * xp),
                    (end - begin) * xp,
                ),
                std::slice::from_raw_parts_mut(
                    (p[1] as *mut f32).add(begin * yp),
                    (end - begin) * yp,
                ),
            )
        };
        if inside {
            for (xplane, yplane) in xv.chunks_exact(xp).zip(yv.chunks_exact_mut(yp)) {
                pool_plane_inside(xplane, yplane, &h, &w, kind);
            }
            return;
        }
        let mut tmp = vec![0.0f32; w.x];
        for (xplane, yplane) in xv.chunks_exact(xp).zip(yv.chunks_exact_mut(yp)) {
            pool_plane(xplane, yplane, &h, &w, kind, &mut tmp);
        }
    }));
    Ok(LoweredKernel {
        kernel,
        args,
        work: planes,
        grain: grain_for(cost, planes),
        op: op.into(),
        layout: "dense".into(),
    })
}

/// Pools one plane `x` (`h.x * w.x`) into `y` (`h.y * w.y`); `tmp` holds `w.x` values.
///
/// Each output row first combines the valid input rows of its windows into `tmp` (contiguous,
/// vectorized), then combines the taps along the row once. The maximum of the taps ignores NaN
/// in any order, as the interpreter's does (`v > m` is false for NaN).
fn pool_plane(x: &[f32], y: &mut [f32], h: &Axis, w: &Axis, kind: Kind, tmp: &mut [f32]) {
    let init = match kind {
        Kind::Max => f32::NEG_INFINITY,
        Kind::Avg { .. } => 0.0,
    };
    for (oh, yrow) in y.chunks_exact_mut(w.y).enumerate() {
        let th = h.taps[oh];
        // Vertical pass: the window's valid input rows, combined column by column.
        tmp.fill(init);
        for jh in 0..th.count {
            let ih = th.first_pos + jh * h.d;
            let xrow = &x[ih * w.x..(ih + 1) * w.x];
            match kind {
                Kind::Max => tmp
                    .iter_mut()
                    .zip(xrow)
                    .for_each(|(m, &v)| *m = if v > *m { v } else { *m }),
                Kind::Avg { .. } => tmp.iter_mut().zip(xrow).for_each(|(a, &v)| *a += v),
            }
        }
        let row = &*tmp;
        yrow.fill(init);
        if th.count > 0 {
            // Border columns: only their valid taps.
            for ow in (0..w.lo).chain(w.hi..w.y) {
                let t = w.taps[ow];
                let taps = (0..t.count).map(|j| row[t.first_pos + j * w.d]);
                yrow[ow] = match kind {
                    Kind::Max => taps.fold(yrow[ow], |m, v| if v > m { v } else { m }),
                    Kind::Avg { .. } => yrow[ow] + taps.sum::<f32>(),
                };
            }
            // Interior columns: every tap is inside the row.
            let inner = &mut yrow[w.lo..w.hi];
            if !inner.is_empty() {
                for jw in 0..w.k {
                    let base = w.lo * w.s + jw * w.d - w.pad;
                    let src = &row[base..];
                    match kind {
                        Kind::Max => {
                            zip_strided(inner, src, w.s, |m, v| *m = if v > *m { v } else { *m })
                        }
                        Kind::Avg { .. } => zip_strided(inner, src, w.s, |a, v| *a += v),
                    }
                }
            }
        }
        for (ow, out) in yrow.iter_mut().enumerate() {
            let t = w.taps[ow];
            match kind {
                Kind::Max => {
                    if th.count * t.count == 0 {
                        *out = 0.0;
                    }
                }
                Kind::Avg { include_pad } => {
                    let div = if include_pad {
                        th.counted * t.counted
                    } else {
                        th.count * t.count
                    };
                    *out /= div.max(1) as f32;
                }
            }
        }
    }
}

/// Pools one plane whose every window lies inside it (no padding taps): each output combines
/// its `h.k x w.k` taps directly; 2x2 windows of stride 2 read two input rows in pairs.
fn pool_plane_inside(x: &[f32], y: &mut [f32], h: &Axis, w: &Axis, kind: Kind) {
    let max = |m: f32, v: f32| if v > m { v } else { m };
    let taps = (h.k * w.k) as f32;
    if (h.k, h.s, h.d, w.k, w.s, w.d) == (2, 2, 1, 2, 2, 1) {
        for (oh, yrow) in y.chunks_exact_mut(w.y).enumerate() {
            let r0 = &x[2 * oh * w.x..][..2 * w.y];
            let r1 = &x[(2 * oh + 1) * w.x..][..2 * w.y];
            let pairs = r0.chunks_exact(2).zip(r1.chunks_exact(2));
            for (out, (a, b)) in yrow.iter_mut().zip(pairs) {
                *out = match kind {
                    Kind::Max => [a[1], b[0], b[1]]
                        .into_iter()
                        .fold(max(f32::NEG_INFINITY, a[0]), max),
                    Kind::Avg { .. } => (a[0] + a[1] + b[0] + b[1]) / taps,
                };
            }
        }
        return;
    }
    for (oh, yrow) in y.chunks_exact_mut(w.y).enumerate() {
        for (ow, out) in yrow.iter_mut().enumerate() {
            let mut acc = match kind {
                Kind::Max => f32::NEG_INFINITY,
                Kind::Avg { .. } => 0.0,
            };
            for jh in 0..h.k {
                let row = &x[(oh * h.s + jh * h.d) * w.x..];
                for jw in 0..w.k {
                    let v = row[ow * w.s + jw * w.d];
                    acc = match kind {
                        Kind::Max => max(acc, v),
                        Kind::Avg { .. } => acc + v,
                    };
                }
            }
            *out = match kind {
                Kind::Max => acc,
                Kind::Avg { .. } => acc / taps,
            };
        }
    }
}

/// Builds the kernel of a global pool over `planes` planes of `plane` elements.
fn global_kernel(planes: usize, plane: usize, max: bool, args: Vec<Arg>) -> LoweredKernel {
    let kernel = Kernel::Host(Box::new(move |p: &[*mut u8], begin: usize, end: usize| {
        // SAFETY: the runtime passes the input (`planes * plane` elements) and the result (one
        // element per plane), and only this call writes the entries `begin..end` of the result.
        let (xv, yv) = unsafe {
            (
                std::slice::from_raw_parts(
                    (p[0] as *const f32).add(begin * plane),
                    (end - begin) * plane,
                ),
                std::slice::from_raw_parts_mut((p[1] as *mut f32).add(begin), end - begin),
            )
        };
        for (xplane, out) in xv.chunks_exact(plane).zip(yv.iter_mut()) {
            *out = if max {
                xplane[1..]
                    .iter()
                    .fold(xplane[0], |m, &v| if v > m { v } else { m })
            } else {
                sum_f32(xplane) / plane as f32
            };
        }
    }));
    LoweredKernel {
        kernel,
        args,
        work: planes,
        grain: grain_for(plane, planes),
        op: if max {
            "global_max_pool"
        } else {
            "global_average_pool"
        }
        .into(),
        layout: "dense".into(),
    }
}

/// The sum of `v` over eight independent lanes (vectorizable, and more accurate than one chain).
fn sum_f32(v: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let mut chunks = v.chunks_exact(8);
    for c in &mut chunks {
        for (l, x) in lanes.iter_mut().zip(c) {
            *l += x;
        }
    }
    lanes.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>()
}

#[cfg(test)]
#[path = "pool_tests.rs"]
mod tests;
