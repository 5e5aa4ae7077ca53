//! Native row kernels for `Softmax`, `LogSoftmax` and `LayerNormalization` along the last axis.
//!
//! Each is a [`Kernel::Host`] closure specialized on the shapes known at compile time. The
//! parallel dimension is the number of rows (the product of every dimension but the last); a
//! call for `begin..end` normalizes exactly those rows of the result.
//!
//! - Softmax: per row the maximum, then `e^(x - max)` and its sum, then a scale by the inverse
//!   sum; `LogSoftmax` writes `x - max - ln(sum)`. The exponential is a branch-free Cephes-style
//!   polynomial that the compiler vectorizes. Like the interpreter, a row that is entirely `-inf`
//!   (a fully masked attention row) gives NaN.
//! - LayerNormalization: two passes in f32 (mean, then the mean of squared deviations), then
//!   `(x - mean) * inv_std * scale + bias`.
//!
//! The builder checks element types, shapes and attributes, so the kernels do no checking: they
//! trust the buffers the runtime passes to have the types recorded in the graph.

#![allow(clippy::excessive_precision)] // The coefficients keep their published digits.

use super::dense::{f32_shape, grain_for, operand, result, unsupported};
use super::{Arg, CodegenError, LoweredKernel};
use sparsec_ir::{Graph, NodeId, Op};
use sparsec_runtime::Kernel;

/// Lanes of the partial accumulators; eight f32 fill two SSE or one AVX register.
const LANES: usize = 8;

/// Cost of one element of a softmax row (max, exponential, sum, scale) in GEMM flops, the unit
/// of the chunk-size rule: tiny BERT's 2 x 128 rows of 128 took 0.047 ms, 1.4 ns per element,
/// about 128 flops of a GEMM at 90 GFLOP/s (counted as 24, the rows never split over threads).
const SOFTMAX_FLOPS: usize = 128;

/// Rough flops per element of a layer-norm row (two reductions and the affine map).
const LAYER_NORM_FLOPS: usize = 8;

/// Which softmax-like op a kernel computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Soft {
    /// `e^x / sum(e^x)`.
    Softmax,
    /// `x - max - ln(sum(e^(x - max)))`.
    Log,
}

/// Lowers a `Softmax`/`LogSoftmax` along the last axis or a `LayerNormalization` over the last
/// axis (f32, static shapes, a single result) to a host kernel over rows; any other node, axis or
/// form is `Unsupported`.
///
/// Arguments: the present operands in order (`x`, then `scale` and `bias` for layer norm), then
/// the result.
pub fn lower_norm(graph: &Graph, n: NodeId) -> Result<LoweredKernel, CodegenError> {
    let node = graph.node(n);
    match node.op {
        Op::Softmax { axis, coerce_2d } => lower_softmax(graph, n, axis, coerce_2d, Soft::Softmax),
        Op::LogSoftmax { axis, coerce_2d } => lower_softmax(graph, n, axis, coerce_2d, Soft::Log),
        Op::LayerNormalization { axis, epsilon, .. } => lower_layer_norm(graph, n, axis, epsilon),
        _ => Err(unsupported(
            graph,
            n,
            "not a softmax or layer normalization",
        )),
    }
}

/// The input shape split into `(rows, cols)` around the last axis, after checking that `axis`
/// names it, that the node has one f32 result of the input's shape, and that it is not empty.
fn rows_cols(graph: &Graph, n: NodeId, axis: i64) -> Result<(usize, usize), CodegenError> {
    let node = graph.node(n);
    if node.outputs.len() != 1 {
        return Err(unsupported(
            graph,
            n,
            format!(
                "{} results, only a single result is lowered",
                node.outputs.len()
            ),
        ));
    }
    let x = operand(graph, n, 0)?;
    let shape = f32_shape(graph, n, x)?;
    let rank = shape.len() as i64;
    if rank == 0 {
        return Err(unsupported(graph, n, "the input is a scalar"));
    }
    if axis != -1 && axis != rank - 1 {
        return Err(unsupported(
            graph,
            n,
            format!("axis {axis} of a rank-{rank} input is not the last axis"),
        ));
    }
    let y = result(graph, n)?;
    let out_shape = f32_shape(graph, n, y)?;
    if out_shape != shape {
        return Err(unsupported(
            graph,
            n,
            format!("result shape {out_shape:?} differs from input shape {shape:?}"),
        ));
    }
    let cols = shape[shape.len() - 1];
    let rows: usize = shape[..shape.len() - 1].iter().product();
    if rows == 0 || cols == 0 {
        return Err(unsupported(graph, n, "the input is empty"));
    }
    Ok((rows, cols))
}

/// Softmax or LogSoftmax along the last axis. With `coerce_2d` the input is flattened at `axis`,
/// which for the last axis is the same thing, so both forms are accepted there.
fn lower_softmax(
    graph: &Graph,
    n: NodeId,
    axis: i64,
    coerce_2d: i64,
    kind: Soft,
) -> Result<LoweredKernel, CodegenError> {
    if coerce_2d != 0 && coerce_2d != 1 {
        return Err(unsupported(graph, n, format!("coerce_2d is {coerce_2d}")));
    }
    let (rows, cols) = rows_cols(graph, n, axis)?;
    let x = operand(graph, n, 0)?;
    let y = result(graph, n)?;
    let kernel: Kernel = Kernel::Host(Box::new(move |args: &[*mut u8], begin, end| {
        let (xp, yp) = (args[0] as *const f32, args[1] as *mut f32);
        for r in begin..end.min(rows) {
            // SAFETY: the runtime passes an input and a distinct result of `rows * cols` f32
            // elements, and no other thread writes row `r` of the result.
            let (xr, yr) = unsafe {
                (
                    std::slice::from_raw_parts(xp.add(r * cols), cols),
                    std::slice::from_raw_parts_mut(yp.add(r * cols), cols),
                )
            };
            softmax_row(xr, yr, kind);
        }
    }));
    Ok(LoweredKernel {
        kernel,
        args: vec![Arg::Value(x), Arg::Value(y)],
        work: rows,
        grain: grain_for(SOFTMAX_FLOPS * cols, rows),
        op: match kind {
            Soft::Softmax => "softmax",
            Soft::Log => "log_softmax",
        }
        .to_string(),
        layout: "dense".to_string(),
    })
}

/// LayerNormalization over the last axis with a `[D]` scale and an optional `[D]` bias.
fn lower_layer_norm(
    graph: &Graph,
    n: NodeId,
    axis: i64,
    epsilon: f32,
) -> Result<LoweredKernel, CodegenError> {
    let (rows, cols) = rows_cols(graph, n, axis)?;
    let x = operand(graph, n, 0)?;
    let scale = operand(graph, n, 1)?;
    let bias = graph.node(n).inputs.get(2).copied().flatten();
    let mut args = vec![Arg::Value(x)];
    for v in std::iter::once(scale).chain(bias) {
        let s = f32_shape(graph, n, v)?;
        if s != [cols] {
            return Err(unsupported(
                graph,
                n,
                format!(
                    "`{}` has shape {s:?}, expected [{cols}]",
                    graph.value(v).name
                ),
            ));
        }
        args.push(Arg::Value(v));
    }
    let has_bias = bias.is_some();
    args.push(Arg::Value(result(graph, n)?));
    let kernel: Kernel = Kernel::Host(Box::new(move |args: &[*mut u8], begin, end| {
        let xp = args[0] as *const f32;
        let yp = args[if has_bias { 3 } else { 2 }] as *mut f32;
        // SAFETY: the scale and the bias hold `cols` f32 elements each.
        let (sc, bi) = unsafe {
            (
                std::slice::from_raw_parts(args[1] as *const f32, cols),
                has_bias.then(|| std::slice::from_raw_parts(args[2] as *const f32, cols)),
            )
        };
        for r in begin..end.min(rows) {
            // SAFETY: as for softmax: a distinct input and result of `rows * cols` elements, and
            // row `r` of the result belongs to this call alone.
            let (xr, yr) = unsafe {
                (
                    std::slice::from_raw_parts(xp.add(r * cols), cols),
                    std::slice::from_raw_parts_mut(yp.add(r * cols), cols),
                )
            };
            layer_norm_row(xr, yr, sc, bi, epsilon);
        }
    }));
    Ok(LoweredKernel {
        kernel,
        args,
        work: rows,
        grain: grain_for(LAYER_NORM_FLOPS * cols, rows),
        op: "layer_normalization".to_string(),
        layout: "dense".to_string(),
    })
}

/// The maximum of a row, skipping NaN like the interpreter's `x > max` scan.
fn row_max(x: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a = if v > *a { v } else { *a };
        }
    }
    let mut m = f32::NEG_INFINITY;
    for &v in acc.iter().chain(tail) {
        m = if v > m { v } else { m };
    }
    m
}

/// Sum of eight partial sums.
fn sum_lanes(acc: &[f32; LANES]) -> f32 {
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))
}

/// One softmax-like row: `y` gets the softmax (or log-softmax) of `x`.
fn softmax_row(x: &[f32], y: &mut [f32], kind: Soft) {
    match kind {
        Soft::Softmax => softmax_exp_row(x, y),
        Soft::Log => log_softmax_row(x, y),
    }
}

/// `y = softmax(x)`. Kept out of line so that its loops are vectorized the same way whatever the
/// caller looks like.
#[inline(never)]
fn softmax_exp_row(x: &[f32], y: &mut [f32]) {
    let max = row_max(x);
    let mut acc = [0.0f32; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    let mut sum_tail = 0.0f32;
    let mut ys = y.chunks_exact_mut(LANES);
    for (c, yc) in chunks.zip(&mut ys) {
        let c: &[f32; LANES] = c.try_into().unwrap_or(&[0.0; LANES]);
        let mut e = [0.0f32; LANES];
        for ((e, &v), a) in e.iter_mut().zip(c).zip(acc.iter_mut()) {
            *e = exp_f32(v - max);
            *a += *e;
        }
        yc.copy_from_slice(&e);
    }
    for (&v, o) in tail.iter().zip(ys.into_remainder()) {
        let e = exp_f32(v - max);
        *o = e;
        sum_tail += e;
    }
    let inv = 1.0 / (sum_lanes(&acc) + sum_tail);
    y.iter_mut().for_each(|o| *o *= inv);
}

/// `y = log_softmax(x)`, out of line like [`softmax_exp_row`].
#[inline(never)]
fn log_softmax_row(x: &[f32], y: &mut [f32]) {
    let max = row_max(x);
    let mut acc = [0.0f32; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    let mut sum_tail = 0.0f32;
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += exp_f32(v - max);
        }
    }
    for &v in tail {
        sum_tail += exp_f32(v - max);
    }
    // `(v - max) - log_sum`, not `v - (max + log_sum)`: with large logits `max + log_sum`
    // rounds to `max` and the result loses `log_sum`.
    let log_sum = (sum_lanes(&acc) + sum_tail).ln();
    for (o, &v) in y.iter_mut().zip(x) {
        *o = (v - max) - log_sum;
    }
}

/// Cephes `expf` polynomial, highest degree first.
const EXP_P: [f32; 6] = [
    1.987_569_1e-4,
    1.398_199_9e-3,
    8.333_452e-3,
    4.166_579_6e-2,
    1.666_666_5e-1,
    5.000_000_1e-1,
];

/// `e^x` for `x <= 88` (softmax only passes `x - max <= 0`), branch-free so loops over it
/// vectorize: `x = n ln2 + g` with `n` rounded to nearest by the `1.5 * 2^23` trick, Cephes'
/// polynomial for `e^g`, and `2^n` built in the exponent bits. Below -87 the result is 0 (the true
/// value is under 1.7e-38); NaN stays NaN.
#[inline(always)]
fn exp_f32(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0; // 1.5 * 2^23
    const LN2_HI: f32 = 0.693_359_375;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let under = x < -87.0;
    let xc = if under { -87.0 } else { x };
    let t = xc * std::f32::consts::LOG2_E + MAGIC;
    let n = (t.to_bits() as i32).wrapping_sub(MAGIC.to_bits() as i32);
    let r = t - MAGIC;
    let g = xc - r * LN2_HI - r * LN2_LO;
    let mut p = EXP_P[0];
    for &c in &EXP_P[1..] {
        p = p * g + c;
    }
    let eg = p * g * g + g + 1.0;
    let scale = f32::from_bits((n.wrapping_add(127) as u32).wrapping_shl(23));
    let e = eg * scale;
    if under {
        0.0
    } else {
        e
    }
}

/// One layer-norm row: `y = (x - mean) / sqrt(var + eps) * scale + bias`.
fn layer_norm_row(x: &[f32], y: &mut [f32], scale: &[f32], bias: Option<&[f32]>, eps: f32) {
    let d = x.len() as f32;
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    let mut acc = [0.0f32; LANES];
    for c in chunks.clone() {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += v;
        }
    }
    let mean = (sum_lanes(&acc) + tail.iter().sum::<f32>()) / d;
    let mut acc = [0.0f32; LANES];
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += (v - mean) * (v - mean);
        }
    }
    let tail_sq: f32 = tail.iter().map(|&v| (v - mean) * (v - mean)).sum();
    let var = (sum_lanes(&acc) + tail_sq) / d;
    let inv = 1.0 / (var + eps).sqrt();
    match bias {
        Some(b) => {
            for (((o, &v), &s), &b) in y.iter_mut().zip(x).zip(scale).zip(b) {
                *o = (v - mean) * inv * s + b;
            }
        }
        None => {
            for ((o, &v), &s) in y.iter_mut().zip(x).zip(scale) {
                *o = (v - mean) * inv * s;
            }
        }
    }
}

#[cfg(test)]
#[path = "norm_tests.rs"]
mod tests;
