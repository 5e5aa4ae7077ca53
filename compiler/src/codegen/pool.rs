//! Pooling kernels: f32 2-D `MaxPool` (single result), `AveragePool`, `GlobalAveragePool` and
//! `GlobalMaxPool` over NCHW tensors as host kernels specialized on the shapes known at compile
//! time.
//!
//! The window geometry follows the reference interpreter (`interp/pool.rs`): output position `o`
//! covers input positions `o * stride - pad_begin + j * dilation`; positions outside the input are
//! skipped, and `count_include_pad` counts those inside the explicit padding (but not the extra room
//! `ceil_mode` adds). The parallel dimension is the `N * C` planes. Each plane takes one of three
//! paths:
//! - unpadded 2x2 windows of stride 2 read their four taps directly, two input rows pairwise;
//! - planes whose padded copy (every window's extent, the pool's neutral value around the input)
//!   holds at most `PADDED_MAX` values are copied into it, then each output row combines its
//!   window's rows in one vectorized loop and the taps along that row in another, with no bounds
//!   tests; averages multiply by per-output reciprocals of their divisors, and maxima of windows
//!   without a valid tap become 0;
//! - larger planes combine each output row's valid input rows column by column into a row buffer,
//!   then the taps along it: columns whose window lies inside the row as strided loops, border
//!   columns through per-column tap tables built at compile time.
//!
//! An `AveragePool` whose window is the whole plane (no padding) runs as the global average.

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
    // Unpadded 2x2 windows of stride 2: each output reads its four taps directly (the digits
    // CNN's 2x2 pool of 8x8 planes: 1.57 -> 0.27 ms at batch 256; VGG-19's pools 2.6 -> 2.1 ms,
    // DenseNet-121's 0.95 -> 0.48 ms). Other pools of planes up to `PADDED_MAX` go through a
    // padded copy, larger ones through the row passes of `pool_plane`.
    let inside = (h.k, h.s, h.d, w.k, w.s, w.d) == (2, 2, 1, 2, 2, 1)
        && [&h, &w]
            .iter()
            .all(|a| a.pad == 0 && a.lo == 0 && a.hi == a.y);
    let padded = (!inside).then(|| Padded::new(&h, &w, kind)).flatten();
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
                pool_plane_2x2(xplane, yplane, &w, kind);
            }
            return;
        }
        if let Some(pp) = &padded {
            let fill = match kind {
                Kind::Max => f32::NEG_INFINITY,
                Kind::Avg { .. } => 0.0,
            };
            let mut buf = vec![fill; pp.hp * pp.wp];
            let mut row = vec![0.0f32; pp.wp];
            for (xplane, yplane) in xv.chunks_exact(xp).zip(yv.chunks_exact_mut(yp)) {
                match kind {
                    Kind::Max => {
                        pool_plane_padded::<true>(xplane, yplane, &h, &w, pp, &mut buf, &mut row)
                    }
                    Kind::Avg { .. } => {
                        pool_plane_padded::<false>(xplane, yplane, &h, &w, pp, &mut buf, &mut row)
                    }
                }
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

/// Planes padded to this many values at most take the padded path ([`pool_plane_padded`]).
const PADDED_MAX: usize = 1 << 14;

/// The padded copy of a plane for [`pool_plane_padded`]: `hp x wp` values covering every
/// window, the input at `(h.pad, w.pad)` and the pool's neutral value elsewhere, and per output
/// the reciprocal of the average's divisor (a multiply instead of a divide: 1 ulp apart at
/// most), or for the maximum 0 where the window has no valid tap (else 1).
#[derive(Clone, Debug)]
struct Padded {
    hp: usize,
    wp: usize,
    div: Vec<f32>,
    any_empty: bool,
}

impl Padded {
    /// The padded geometry, when the padded plane is at most [`PADDED_MAX`] values.
    fn new(h: &Axis, w: &Axis, kind: Kind) -> Option<Padded> {
        let ext = |a: &Axis| (a.y - 1) * a.s + (a.k - 1) * a.d + 1;
        let (hp, wp) = (ext(h), ext(w));
        if hp.saturating_mul(wp) > PADDED_MAX {
            return None;
        }
        let mut div = Vec::with_capacity(h.y * w.y);
        let mut any_empty = false;
        for th in &h.taps {
            for tw in &w.taps {
                let count = th.count * tw.count;
                any_empty |= count == 0;
                div.push(match kind {
                    Kind::Max => (count > 0) as u8 as f32,
                    Kind::Avg { include_pad } => {
                        let n = if include_pad {
                            th.counted * tw.counted
                        } else {
                            count
                        };
                        1.0 / n.max(1) as f32
                    }
                });
            }
        }
        Some(Padded {
            hp,
            wp,
            div,
            any_empty,
        })
    }
}

/// Pools one plane through its padded copy `buf` (`pp.hp x pp.wp`, whose border already holds
/// the neutral value): per output row, the window's rows combined into `row` and the taps along
/// it, each in one loop for windows of 2 or 3 (else a loop per tap); no bounds tests and no
/// per-column tap tables, which on the short rows of small planes cost more than the taps.
/// Against the row passes: Inception v2's 3x3 average pools of 576 planes of 14 x 14 0.45 ->
/// 0.16 ms, its pools in total 4.3 -> 1.9 ms, GoogLeNet's 3.7 -> 2.0 ms, SqueezeNet's 0.87 ->
/// 0.51 ms, ResNet-50's 3x3 stride-2 MaxPool 0.39 -> 0.35 ms (one thread).
#[allow(clippy::too_many_arguments)]
fn pool_plane_padded<const MAX: bool>(
    x: &[f32],
    y: &mut [f32],
    h: &Axis,
    w: &Axis,
    pp: &Padded,
    buf: &mut [f32],
    row: &mut [f32],
) {
    let (init, max) = if MAX {
        (f32::NEG_INFINITY, true)
    } else {
        (0.0, false)
    };
    let rows = h.x.min(pp.hp.saturating_sub(h.pad));
    let cols = w.x.min(pp.wp.saturating_sub(w.pad));
    for i in 0..rows {
        buf[(h.pad + i) * pp.wp + w.pad..][..cols].copy_from_slice(&x[i * w.x..][..cols]);
    }
    let comb = |m: f32, v: f32| {
        if max {
            if v > m {
                v
            } else {
                m
            }
        } else {
            m + v
        }
    };
    let finish = |out: &mut [f32], div: &[f32]| {
        if !max {
            out.iter_mut().zip(div).for_each(|(a, &r)| *a *= r);
        } else if pp.any_empty {
            out.iter_mut()
                .zip(div)
                .for_each(|(m, &d)| *m = if d == 0.0 { 0.0 } else { *m });
        }
    };
    for (oh, yrow) in y.chunks_exact_mut(w.y).enumerate() {
        let first = oh * h.s * pp.wp;
        let rows = |jh: usize| &buf[first + jh * h.d * pp.wp..][..pp.wp];
        // Vertical: the window's rows into `row`, in one loop for windows of 2 or 3 rows.
        match h.k {
            2 => {
                let (r0, r1) = (rows(0), rows(1));
                for ((m, &a), &b) in row.iter_mut().zip(r0).zip(r1) {
                    *m = comb(comb(init, a), b);
                }
            }
            3 => {
                let (r0, r1, r2) = (rows(0), rows(1), rows(2));
                for (((m, &a), &b), &c) in row.iter_mut().zip(r0).zip(r1).zip(r2) {
                    *m = comb(comb(comb(init, a), b), c);
                }
            }
            _ => {
                row.fill(init);
                for jh in 0..h.k {
                    row.iter_mut()
                        .zip(rows(jh))
                        .for_each(|(m, &v)| *m = comb(*m, v));
                }
            }
        }
        // Horizontal: the taps along `row`, in one loop for 3 taps of stride 1 or 2.
        let div = &pp.div[oh * w.y..][..w.y];
        match (w.k, w.s, w.d) {
            (3, 1, 1) => {
                let taps = row.iter().zip(&row[1..]).zip(&row[2..]);
                for (out, ((&a, &b), &c)) in yrow.iter_mut().zip(taps) {
                    *out = comb(comb(comb(init, a), b), c);
                }
            }
            (3, 2, 1) => {
                // Pairs `(row[2 ow], row[2 ow + 1])` and the next pair's first value.
                let (pairs, _) = row.as_chunks::<2>();
                let (next, _) = row[2..].as_chunks::<2>();
                let n = next.len().min(yrow.len());
                for ((out, p), q) in yrow[..n].iter_mut().zip(pairs).zip(next) {
                    *out = comb(comb(comb(init, p[0]), p[1]), q[0]);
                }
                for (ow, out) in yrow.iter_mut().enumerate().skip(n) {
                    let t = &row[2 * ow..2 * ow + 3];
                    *out = comb(comb(comb(init, t[0]), t[1]), t[2]);
                }
            }
            _ => {
                yrow.fill(init);
                for jw in 0..w.k {
                    zip_strided(yrow, &row[jw * w.d..], w.s, |m, v| *m = comb(*m, v));
                }
            }
        }
        finish(yrow, div);
    }
}

/// Pools one plane with unpadded 2x2 windows of stride 2: each output reads its four taps from
/// two input rows, pairwise.
fn pool_plane_2x2(x: &[f32], y: &mut [f32], w: &Axis, kind: Kind) {
    let max = |m: f32, v: f32| if v > m { v } else { m };
    for (oh, yrow) in y.chunks_exact_mut(w.y).enumerate() {
        let r0 = &x[2 * oh * w.x..][..2 * w.y];
        let r1 = &x[(2 * oh + 1) * w.x..][..2 * w.y];
        let pairs = r0.chunks_exact(2).zip(r1.chunks_exact(2));
        for (out, (a, b)) in yrow.iter_mut().zip(pairs) {
            *out = match kind {
                Kind::Max => [a[1], b[0], b[1]]
                    .into_iter()
                    .fold(max(f32::NEG_INFINITY, a[0]), max),
                Kind::Avg { .. } => (a[0] + a[1] + b[0] + b[1]) / 4.0,
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
