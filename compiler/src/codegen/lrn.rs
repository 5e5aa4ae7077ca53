//! A native kernel for `LRN` (local response normalization across channels, as in AlexNet,
//! GoogLeNet and ZFNet): `y = x / (bias + alpha / size * sum of x^2 over the channel window)^beta`,
//! the window running from `c - (size - 1) / 2` to `c + size / 2`, clipped to the channels.
//!
//! It is a [`Kernel::Host`] closure over `N x` pixel units of [`PIXELS`] pixels: a call walks the
//! channels of its pixels, the window's sum of squares a vector over those pixels (each element's
//! window summed directly, as the interpreter does, so no running sum drifts). `beta` of 0.75 (every
//! model above), 0.5 and 1 take square roots (one vectorized loop per exponent) instead of
//! `powf` (a match on the exponent inside the loop kept it scalar: 2.8 ms instead of 0.93 ms).
//! Before this kernel the interpreter ran LRN: 15 of GoogLeNet's 37 ms at two threads; its larger
//! LRN took 11.7 ms there and takes 0.93 ms here on one thread.

use super::dense::{f32_shape, grain_for, operand, result, unsupported};
use super::{Arg, CodegenError, LoweredKernel};
use sparsec_ir::{Graph, NodeId, Op};
use sparsec_runtime::Kernel;

/// Pixels per work unit.
const PIXELS: usize = 256;

/// Rough cost of one output element in GEMM flops (the window's squares and sum, a root or two,
/// a division), for the chunk-size rule.
const FLOPS_PER_ELEMENT: usize = 64;

/// `t^-beta` for the exponents with a cheap form.
#[derive(Clone, Copy, Debug)]
enum Power {
    /// `beta = 0.75`: `1 / (sqrt(t) * sqrt(sqrt(t)))`.
    ThreeQuarters,
    /// `beta = 0.5`.
    Half,
    /// `beta = 1`.
    One,
    /// Any other `beta`, through `powf`.
    Any(f32),
}

impl Power {
    fn of(beta: f32) -> Power {
        match beta {
            0.75 => Power::ThreeQuarters,
            0.5 => Power::Half,
            1.0 => Power::One,
            b => Power::Any(b),
        }
    }
}

/// `out = x * f(bias + k * sq)`, element by element.
#[inline(always)]
fn scale_into(out: &mut [f32], x: &[f32], sq: &[f32], bias: f32, k: f32, f: impl Fn(f32) -> f32) {
    for ((o, &v), &q) in out.iter_mut().zip(x).zip(sq) {
        *o = v * f(bias + k * q);
    }
}

/// Lowers an f32 `LRN` node. Arguments: `X`, the result; the parallel dimension is `N x`
/// pixel units.
pub fn lower_lrn(graph: &Graph, n: NodeId) -> Result<LoweredKernel, CodegenError> {
    let Op::Lrn {
        alpha,
        beta,
        bias,
        size,
    } = graph.node(n).op
    else {
        return Err(unsupported(graph, n, "not an LRN"));
    };
    let x = operand(graph, n, 0)?;
    let y = result(graph, n)?;
    let shape = f32_shape(graph, n, x)?;
    if shape.len() < 2 || f32_shape(graph, n, y)? != shape {
        return Err(unsupported(graph, n, format!("input shape {shape:?}")));
    }
    if size < 1 {
        return Err(unsupported(
            graph,
            n,
            format!("size {size} is not positive"),
        ));
    }
    let (images, c) = (shape[0], shape[1]);
    let s: usize = shape[2..].iter().product();
    let (before, after) = (((size - 1) / 2) as usize, (size / 2) as usize);
    let k = alpha / size as f32;
    let power = Power::of(beta);
    let units = s.div_ceil(PIXELS);
    let kernel = Kernel::Host(Box::new(
        move |args: &[*mut u8], begin: usize, end: usize| {
            let (xp, yp) = (args[0] as *const f32, args[1] as *mut f32);
            let mut sq = [0.0f32; PIXELS];
            for u in begin..end.min(images * units) {
                let (b, p0) = (u / units, (u % units) * PIXELS);
                let len = PIXELS.min(s - p0);
                // SAFETY: the runtime passes an input and a distinct result of `images * c * s` f32
                // elements; this unit reads pixels `p0..p0 + len` of image `b` in every channel and
                // is the only writer of them in the result.
                let plane = |ch: usize| unsafe {
                    std::slice::from_raw_parts(xp.add((b * c + ch) * s + p0), len)
                };
                for ch in 0..c {
                    let sq = &mut sq[..len];
                    sq.fill(0.0);
                    for w in ch.saturating_sub(before)..=(ch + after).min(c - 1) {
                        sq.iter_mut().zip(plane(w)).for_each(|(a, &v)| *a += v * v);
                    }
                    // SAFETY: as above.
                    let out = unsafe {
                        std::slice::from_raw_parts_mut(yp.add((b * c + ch) * s + p0), len)
                    };
                    // One loop per exponent, so that each is vectorized on its own.
                    let (x, sq) = (plane(ch), &*sq);
                    match power {
                        Power::ThreeQuarters => scale_into(out, x, sq, bias, k, |t| {
                            let r = t.sqrt();
                            1.0 / (r * r.sqrt())
                        }),
                        Power::Half => scale_into(out, x, sq, bias, k, |t| 1.0 / t.sqrt()),
                        Power::One => scale_into(out, x, sq, bias, k, |t| 1.0 / t),
                        Power::Any(b) => scale_into(out, x, sq, bias, k, |t| t.powf(-b)),
                    }
                }
            }
        },
    ));
    let work = images * units;
    Ok(LoweredKernel {
        kernel,
        args: vec![Arg::Value(x), Arg::Value(y)],
        work,
        grain: grain_for(FLOPS_PER_ELEMENT * c * PIXELS, work),
        op: "lrn".into(),
        layout: "dense".into(),
    })
}
