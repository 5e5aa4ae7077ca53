//! Dense lowering: `Gemm`, `MatMul` and `Conv` as host kernels over the runtime's single-threaded
//! `sgemm` (`sparsec_runtime::dense`), with the fused epilogue applied to each output block right
//! after its GEMM, while it is still in cache.
//!
//! - `matmul.rs`: [`lower_gemm`] and [`lower_matmul`] (weights pre-packed for the library);
//! - `conv.rs`: [`lower_conv`] (direct GEMM for 1x1, a direct loop for depthwise, Winograd
//!   `F(2x2, 3x3)` for 3x3 stride 1 (`winograd.rs`), im2col into a per-thread scratch plus GEMM
//!   for the rest);
//! - this file: what they share: operand checks, the epilogue and the choice of chunk sizes.
//!
//! Every builder checks shapes, element types and attributes when it builds the kernel, so the
//! kernel itself does no checking: it trusts the buffers the runtime passes to have the types
//! recorded in the graph.

mod conv;
mod matmul;
#[cfg(test)]
mod test_util;
#[cfg(test)]
mod tests_conv;
#[cfg(test)]
mod tests_matmul;
mod winograd;

pub use conv::{conv_path, lower_conv, lower_conv_path, Path as ConvPath};
pub use matmul::{lower_gemm, lower_matmul};

use super::{Arg, CodegenError, Epilogue};
use sparsec_ir::{DType, Graph, NodeId, ValueId};

/// Chunks of the parallel dimension should hold at least this many flops (about 25 us of one
/// core), so that handing one to a thread, and the GEMM call's own setup and packing, cost little
/// next to the work.
const MIN_CHUNK_FLOPS: usize = 1 << 21;

/// The smallest useful chunk of `units` work units of `flops_per_unit` flops each.
pub(crate) fn grain_for(flops_per_unit: usize, units: usize) -> usize {
    MIN_CHUNK_FLOPS
        .div_ceil(flops_per_unit.max(1))
        .clamp(1, units.max(1))
}

/// The units `begin..end` of a parallel dimension of `images x d` units, as `(image, lo, hi)`:
/// units `lo..hi` of one image at a time (nothing when `d == 0`).
pub(crate) fn per_image(
    begin: usize,
    end: usize,
    d: usize,
) -> impl Iterator<Item = (usize, usize, usize)> {
    let mut u = begin;
    std::iter::from_fn(move || {
        if d == 0 || u >= end {
            return None;
        }
        let (b, lo) = (u / d, u % d);
        let hi = (end - b * d).min(d);
        u = b * d + hi;
        Some((b, lo, hi))
    })
}

/// An `Unsupported` error naming the node.
pub(crate) fn unsupported(
    graph: &Graph,
    node: NodeId,
    why: impl std::fmt::Display,
) -> CodegenError {
    let n = graph.node(node);
    CodegenError::Unsupported(format!("node `{}` ({}): {why}", n.name, n.op.name()))
}

/// The concrete shape of an f32 value, or an error naming the node and the value.
pub(crate) fn f32_shape(
    graph: &Graph,
    node: NodeId,
    v: ValueId,
) -> Result<Vec<usize>, CodegenError> {
    let value = graph.value(v);
    if value.ty.dtype != DType::F32 {
        return Err(unsupported(
            graph,
            node,
            format!(
                "value `{}` has element type {}, only f32 is lowered",
                value.name, value.ty.dtype
            ),
        ));
    }
    value.ty.shape().ok_or_else(|| {
        unsupported(
            graph,
            node,
            format!("value `{}` has a symbolic shape", value.name),
        )
    })
}

/// Operand `k` of a node, or an error when it is missing.
pub(crate) fn operand(graph: &Graph, node: NodeId, k: usize) -> Result<ValueId, CodegenError> {
    graph
        .node(node)
        .inputs
        .get(k)
        .copied()
        .flatten()
        .ok_or_else(|| unsupported(graph, node, format!("operand {k} is missing")))
}

/// The single result of a node.
pub(crate) fn result(graph: &Graph, node: NodeId) -> Result<ValueId, CodegenError> {
    graph
        .node(node)
        .outputs
        .first()
        .copied()
        .ok_or_else(|| unsupported(graph, node, "no result"))
}

/// One epilogue step with its operand resolved to an argument index.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum EpiStep {
    /// Add the per-channel bias in argument `k`.
    Bias(usize),
    /// Add the tensor in argument `k` (same shape as the result).
    Add(usize),
    /// `max(x, 0)`.
    Relu,
    /// `min(max(x, lo), hi)`.
    Clip(f32, f32),
    /// `x` where `x >= 0`, else `alpha * x`.
    LeakyRelu(f32),
}

/// Checks the epilogue against the result (`out_shape`, with `channels` bias entries) and
/// appends its operands to `args`; returns the steps and the suffix of the op name
/// (`+bias+relu`).
pub(crate) fn build_epilogue(
    graph: &Graph,
    node: NodeId,
    epilogue: &[Epilogue],
    out_shape: &[usize],
    channels: usize,
    args: &mut Vec<Arg>,
) -> Result<(Vec<EpiStep>, String), CodegenError> {
    let mut steps = Vec::with_capacity(epilogue.len());
    let mut name = String::new();
    for e in epilogue {
        let step = match *e {
            Epilogue::Bias(v) => {
                let s = f32_shape(graph, node, v)?;
                if s != [channels] {
                    return Err(unsupported(
                        graph,
                        node,
                        format!(
                            "bias `{}` has shape {s:?}, expected [{channels}]",
                            graph.value(v).name
                        ),
                    ));
                }
                args.push(Arg::Value(v));
                name.push_str("+bias");
                EpiStep::Bias(args.len() - 1)
            }
            Epilogue::AddTensor(v) => {
                let s = f32_shape(graph, node, v)?;
                if s != out_shape {
                    return Err(unsupported(
                        graph,
                        node,
                        format!(
                            "added tensor `{}` has shape {s:?}, expected {out_shape:?}",
                            graph.value(v).name
                        ),
                    ));
                }
                args.push(Arg::Value(v));
                name.push_str("+add");
                EpiStep::Add(args.len() - 1)
            }
            Epilogue::Relu => {
                name.push_str("+relu");
                EpiStep::Relu
            }
            Epilogue::Clip(lo, hi) => {
                name.push_str("+clip");
                EpiStep::Clip(lo, hi)
            }
            Epilogue::LeakyRelu(a) => {
                name.push_str("+leaky_relu");
                EpiStep::LeakyRelu(a)
            }
        };
        steps.push(step);
    }
    Ok((steps, name))
}

/// A rectangular block of a result seen as a row-major matrix: `rows x cols` elements from
/// element `offset`, consecutive rows `ld` elements apart. `ch0` is the channel (bias index) of
/// the first row when `channel_rows`, else of the first column.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Block {
    pub offset: usize,
    pub rows: usize,
    pub cols: usize,
    pub ld: usize,
    pub ch0: usize,
    pub channel_rows: bool,
}

/// Applies `steps` to `block` of the result `out`, row by row so each row stays in L1.
///
/// # Safety
/// `args` must be the kernel's arguments, with the f32 buffers the steps name; `out` and every
/// added tensor must hold the whole block, each bias its channels, and no other thread may touch
/// the block.
pub(crate) unsafe fn apply_epilogue(steps: &[EpiStep], args: &[*mut u8], out: *mut f32, b: &Block) {
    if steps.is_empty() {
        return;
    }
    for r in 0..b.rows {
        let start = b.offset + r * b.ld;
        // SAFETY: the row lies inside the block the caller owns.
        let row = unsafe { std::slice::from_raw_parts_mut(out.add(start), b.cols) };
        for step in steps {
            match *step {
                EpiStep::Bias(k) => {
                    let bias = args[k] as *const f32;
                    if b.channel_rows {
                        // SAFETY: the bias holds every channel of the result.
                        let v = unsafe { *bias.add(b.ch0 + r) };
                        row.iter_mut().for_each(|x| *x += v);
                    } else {
                        // SAFETY: as above, for the block's columns.
                        let bs = unsafe { std::slice::from_raw_parts(bias.add(b.ch0), b.cols) };
                        row.iter_mut().zip(bs).for_each(|(x, v)| *x += v);
                    }
                }
                EpiStep::Add(k) => {
                    // SAFETY: the added tensor has the result's shape, so the row is inside it.
                    let other = unsafe {
                        std::slice::from_raw_parts((args[k] as *const f32).add(start), b.cols)
                    };
                    row.iter_mut().zip(other).for_each(|(x, v)| *x += v);
                }
                EpiStep::Relu => row
                    .iter_mut()
                    .for_each(|x| *x = if *x > 0.0 { *x } else { 0.0 }),
                EpiStep::Clip(lo, hi) => row.iter_mut().for_each(|x| *x = x.max(lo).min(hi)),
                EpiStep::LeakyRelu(a) => row
                    .iter_mut()
                    .for_each(|x| *x = if *x >= 0.0 { *x } else { a * *x }),
            }
        }
    }
}
