//! Native data-movement kernels for any element type: the reshape family (`Reshape`, `Flatten`,
//! `Squeeze`, `Unsqueeze`, `Identity`) and `Concat` as block copies, `Transpose` and `Expand` as
//! strided row copies, and `Gather` as a copy of the picked slices.
//!
//! Each is a [`Kernel::Host`] closure specialized on the shapes known at compile time; the
//! builders check element types, shapes and attributes, so the kernels trust their buffers. The
//! only run-time check is a gather index: one out of range is reported through the error slot
//! (the engine turns it into an error after the run) and its slice is zero-filled.
//!
//! Parallel dimensions: 16 KiB blocks for the block copy, output rows (see `strided.rs`) for the
//! strided copies, and `outer x indices` slices for a gather; the grains keep chunks at a few
//! hundred KiB, so the small movements of a transformer stay on one thread.

use super::dense::{operand, result, unsupported};
use super::fallback::{record, ErrorSlot};
use super::strided::{broadcast_strides, grain_for_bytes, row_major_strides, Rows};
use super::{Arg, CodegenError, LoweredKernel};
use sparsec_ir::{DType, Graph, NodeId, Op, ValueId};
use sparsec_runtime::Kernel;

/// Bytes per unit of the block copy's parallel dimension.
const BLOCK: usize = 16 << 10;

/// A strided element read costs about this many contiguous bytes of copying.
const STRIDED_READ_BYTES: usize = 16;

/// Lowers a data-movement node (see the module doc) to a host kernel; any other node, or one
/// whose shapes are not static and consistent, is `Unsupported`.
///
/// Arguments: the data operand (and, for `Gather`, the indices), then the result.
pub fn lower_movement(
    graph: &Graph,
    n: NodeId,
    errors: &ErrorSlot,
) -> Result<LoweredKernel, CodegenError> {
    let node = graph.node(n);
    if node.outputs.len() != 1 {
        return Err(unsupported(graph, n, "more than one result"));
    }
    match &node.op {
        Op::Reshape { .. } | Op::Squeeze {} | Op::Unsqueeze {} => {
            // The result shape was resolved from the constant operand; a computed one is left
            // to the interpreter, which checks it.
            let consts = node.inputs[1..]
                .iter()
                .flatten()
                .all(|&v| graph.const_data(v).is_some());
            if !consts {
                return Err(unsupported(graph, n, "shape operand is not a constant"));
            }
            lower_copy(graph, n)
        }
        Op::Flatten { .. } | Op::Identity {} => lower_copy(graph, n),
        Op::Transpose { perm } => lower_transpose(graph, n, perm),
        Op::Expand {} => {
            let (_, shape) = typed_shape(graph, n, operand(graph, n, 0)?)?;
            let (_, out) = typed_shape(graph, n, result(graph, n)?)?;
            let st = broadcast_strides(&shape, &out).ok_or_else(|| {
                unsupported(
                    graph,
                    n,
                    format!("shape {shape:?} does not broadcast to {out:?}"),
                )
            })?;
            lower_strided(graph, n, &out, st, "expand")
        }
        Op::Gather { axis } => lower_gather(graph, n, *axis, errors),
        Op::Concat { axis } => lower_concat(graph, n, *axis),
        _ => Err(unsupported(graph, n, "not a data-movement op")),
    }
}

/// The element type and static shape of `v`.
pub(crate) fn typed_shape(
    graph: &Graph,
    n: NodeId,
    v: ValueId,
) -> Result<(DType, Vec<usize>), CodegenError> {
    let ty = &graph.value(v).ty;
    let shape = ty.shape().ok_or_else(|| {
        unsupported(
            graph,
            n,
            format!("value `{}` has a symbolic shape", graph.value(v).name),
        )
    })?;
    Ok((ty.dtype, shape))
}

/// The number of elements of `shape`, or an error when it overflows.
fn numel(graph: &Graph, n: NodeId, shape: &[usize]) -> Result<usize, CodegenError> {
    shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| unsupported(graph, n, format!("shape {shape:?} is too large")))
}

/// The data operand and the result with the same element type; returns it with both shapes.
fn same_type(graph: &Graph, n: NodeId) -> Result<(DType, Vec<usize>, Vec<usize>), CodegenError> {
    let (dx, sx) = typed_shape(graph, n, operand(graph, n, 0)?)?;
    let (dy, sy) = typed_shape(graph, n, result(graph, n)?)?;
    if dx != dy {
        return Err(unsupported(
            graph,
            n,
            format!("element types {dx} and {dy} differ"),
        ));
    }
    Ok((dx, sx, sy))
}

/// A byte copy of the whole operand (the result has its elements in the same order).
fn lower_copy(graph: &Graph, n: NodeId) -> Result<LoweredKernel, CodegenError> {
    let (d, sx, sy) = same_type(graph, n)?;
    let (nx, ny) = (numel(graph, n, &sx)?, numel(graph, n, &sy)?);
    if nx != ny {
        return Err(unsupported(
            graph,
            n,
            format!("shapes {sx:?} and {sy:?} differ in size"),
        ));
    }
    let bytes = ny * d.size_bytes();
    let work = bytes.div_ceil(BLOCK);
    let kernel = Kernel::Host(Box::new(move |p: &[*mut u8], begin, end| {
        let lo = (begin * BLOCK).min(bytes);
        let hi = (end * BLOCK).min(bytes);
        if lo < hi {
            // SAFETY: both buffers hold `bytes` bytes (the graph's types) and are distinct; each
            // call writes only its own blocks.
            unsafe { std::ptr::copy_nonoverlapping(p[0].add(lo), p[1].add(lo), hi - lo) };
        }
    }));
    Ok(LoweredKernel {
        kernel,
        args: vec![
            Arg::Value(operand(graph, n, 0)?),
            Arg::Value(result(graph, n)?),
        ],
        work,
        grain: grain_for_bytes(2 * BLOCK, work),
        op: graph.node(n).op.name().to_string(),
        layout: "dense".into(),
    })
}

/// `Concat` as a block copy of the result: each output row (one index of the axes before `axis`)
/// is the inputs' rows side by side, so a range of result bytes maps to runs of input bytes.
fn lower_concat(graph: &Graph, n: NodeId, axis: i64) -> Result<LoweredKernel, CodegenError> {
    let node = graph.node(n);
    let yv = result(graph, n)?;
    let (d, sy) = typed_shape(graph, n, yv)?;
    let r = sy.len() as i64;
    let ax = if axis < 0 { axis + r } else { axis };
    if !(0..r).contains(&ax) {
        return Err(unsupported(graph, n, format!("axis {axis} of rank {r}")));
    }
    let ax = ax as usize;
    let inner = numel(graph, n, &sy[ax + 1..])? * d.size_bytes();
    let outer = numel(graph, n, &sy[..ax])?;
    let mut args = Vec::new();
    // Bytes of one row of each input, and where they start in a result row.
    let (mut chunks, mut starts, mut row) = (Vec::new(), Vec::new(), 0usize);
    for &v in &node.inputs {
        let v = v.ok_or_else(|| unsupported(graph, n, "a missing input"))?;
        let (dv, sv) = typed_shape(graph, n, v)?;
        let same = sv.len() == sy.len()
            && sv
                .iter()
                .zip(&sy)
                .enumerate()
                .all(|(i, (a, b))| i == ax || a == b);
        if dv != d || !same {
            return Err(unsupported(
                graph,
                n,
                format!("input {dv}{sv:?} does not fit the result {d}{sy:?}"),
            ));
        }
        args.push(Arg::Value(v));
        starts.push(row);
        chunks.push(sv[ax] * inner);
        row += sv[ax] * inner;
    }
    if row != sy[ax] * inner {
        return Err(unsupported(
            graph,
            n,
            format!("inputs do not add up to {sy:?}"),
        ));
    }
    args.push(Arg::Value(yv));
    let (ins, bytes) = (chunks.len(), outer * row);
    let work = bytes.div_ceil(BLOCK);
    let kernel = Kernel::Host(Box::new(move |p: &[*mut u8], begin, end| {
        let (mut pos, hi) = ((begin * BLOCK).min(bytes), (end * BLOCK).min(bytes));
        while pos < hi {
            let (o, at) = (pos / row, pos % row);
            // The input whose run holds byte `at` of the row: the last one starting at or
            // before it (an empty input starts where the next one does, so it is never last).
            let i = starts.partition_point(|&s| s <= at) - 1;
            let off = at - starts[i];
            let len = (chunks[i] - off).min(hi - pos);
            // SAFETY: input `i` holds `outer` rows of `chunks[i]` bytes and the result `outer`
            // rows of `row` bytes (the graph's types); each call writes only its own bytes.
            unsafe {
                std::ptr::copy_nonoverlapping(p[i].add(o * chunks[i] + off), p[ins].add(pos), len)
            };
            pos += len;
        }
    }));
    Ok(LoweredKernel {
        kernel,
        args,
        work,
        grain: grain_for_bytes(2 * BLOCK, work),
        op: "concat".into(),
        layout: "dense".into(),
    })
}

/// `Transpose` as a strided copy.
fn lower_transpose(graph: &Graph, n: NodeId, perm: &[i64]) -> Result<LoweredKernel, CodegenError> {
    let (_, sx, sy) = same_type(graph, n)?;
    let r = sx.len();
    let perm: Vec<usize> = if perm.is_empty() {
        (0..r).rev().collect()
    } else {
        perm.iter()
            .map(|&p| if p < 0 { p + r as i64 } else { p })
            .map(|p| usize::try_from(p).unwrap_or(usize::MAX))
            .collect()
    };
    let mut sorted = perm.clone();
    sorted.sort_unstable();
    if sorted != (0..r).collect::<Vec<_>>() {
        return Err(unsupported(graph, n, format!("invalid perm {perm:?}")));
    }
    let want: Vec<usize> = perm.iter().map(|&p| sx[p]).collect();
    if want != sy {
        return Err(unsupported(
            graph,
            n,
            format!("result shape {sy:?} is not {want:?}"),
        ));
    }
    let own = row_major_strides(&sx);
    let st = perm.iter().map(|&p| own[p]).collect();
    lower_strided(graph, n, &sy, st, "transpose")
}

/// A copy into the contiguous result of shape `out` from the operand read at `strides`.
fn lower_strided(
    graph: &Graph,
    n: NodeId,
    out: &[usize],
    strides: Vec<usize>,
    op: &str,
) -> Result<LoweredKernel, CodegenError> {
    let (d, _, _) = same_type(graph, n)?;
    numel(graph, n, out)?;
    let rows = Rows::new(out, &[strides]);
    let elem = d.size_bytes();
    let per_row = if rows.inner(0) == 1 {
        2 * rows.len() * elem
    } else {
        rows.len() * (elem + STRIDED_READ_BYTES)
    };
    let work = if out.contains(&0) { 0 } else { rows.rows() };
    let grain = grain_for_bytes(per_row, work);
    let kernel = Kernel::Host(Box::new(move |p: &[*mut u8], begin, end| {
        // SAFETY: the strides address the operand inside its buffer and rows `begin..end` of
        // the result are this call's.
        unsafe {
            match elem {
                1 => copy_rows::<u8>(&rows, p[0], p[1], begin, end),
                2 => copy_rows::<u16>(&rows, p[0], p[1], begin, end),
                4 => copy_rows::<u32>(&rows, p[0], p[1], begin, end),
                _ => copy_rows::<u64>(&rows, p[0], p[1], begin, end),
            }
        }
    }));
    Ok(LoweredKernel {
        kernel,
        args: vec![
            Arg::Value(operand(graph, n, 0)?),
            Arg::Value(result(graph, n)?),
        ],
        work,
        grain,
        op: op.to_string(),
        layout: "dense".into(),
    })
}

/// Copies rows `begin..end` of the walk `rows` from `src` into the contiguous `dst`.
///
/// # Safety
/// `src` must hold every element the walk reads and `dst` the walk's rows, both of `T`.
unsafe fn copy_rows<T: Copy>(rows: &Rows, src: *mut u8, dst: *mut u8, begin: usize, end: usize) {
    let (src, dst) = (src as *const T, dst as *mut T);
    let (len, s) = (rows.len(), rows.inner(0));
    rows.for_rows(begin, end, |r, o| {
        // SAFETY: the row is inside both buffers (the caller's contract).
        unsafe {
            let (from, to) = (src.add(o[0]), dst.add(r * len));
            match s {
                1 => std::ptr::copy_nonoverlapping(from, to, len),
                0 => {
                    let v = *from;
                    std::slice::from_raw_parts_mut(to, len).fill(v);
                }
                _ => {
                    for j in 0..len {
                        *to.add(j) = *from.add(j * s);
                    }
                }
            }
        }
    });
}

/// `Gather` along `axis`: `outer x indices` slices of `inner` elements.
fn lower_gather(
    graph: &Graph,
    n: NodeId,
    axis: i64,
    errors: &ErrorSlot,
) -> Result<LoweredKernel, CodegenError> {
    let (d, sx, sy) = same_type(graph, n)?;
    let iv = operand(graph, n, 1)?;
    let (di, si) = typed_shape(graph, n, iv)?;
    if !matches!(di, DType::I64 | DType::I32) {
        return Err(unsupported(graph, n, format!("indices of type {di}")));
    }
    let r = sx.len() as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if a < 0 || a >= r {
        return Err(unsupported(graph, n, format!("axis {axis} of rank {r}")));
    }
    let a = a as usize;
    let mut want = sx[..a].to_vec();
    want.extend_from_slice(&si);
    want.extend_from_slice(&sx[a + 1..]);
    if want != sy {
        return Err(unsupported(
            graph,
            n,
            format!("result shape {sy:?} is not {want:?}"),
        ));
    }
    let outer: usize = sx[..a].iter().product();
    let dim = sx[a];
    let slice = numel(graph, n, &sx[a + 1..])? * d.size_bytes();
    let nidx = numel(graph, n, &si)?;
    let work = outer * nidx;
    let work = if slice == 0 { 0 } else { work };
    let name = graph.node(n).name.clone();
    let errors = errors.clone();
    let wide = di == DType::I64;
    let kernel = Kernel::Host(Box::new(move |p: &[*mut u8], begin, end| {
        for u in begin..end.min(work) {
            let (o, i) = (u / nidx, u % nidx);
            // SAFETY: the indices buffer holds `nidx` indices of the recorded type.
            let raw = unsafe {
                if wide {
                    *(p[1] as *const i64).add(i)
                } else {
                    *(p[1] as *const i32).add(i) as i64
                }
            };
            let j = if raw < 0 { raw + dim as i64 } else { raw };
            // SAFETY: the result holds `work` slices of `slice` bytes, slice `u` is this call's.
            let to = unsafe { p[2].add(u * slice) };
            if j < 0 || j >= dim as i64 {
                record(
                    &errors,
                    format!(
                        "node `{name}` (gather): index {raw} out of range for a dimension of size {dim}"
                    ),
                );
                // SAFETY: as above.
                unsafe { std::ptr::write_bytes(to, 0, slice) };
                continue;
            }
            // SAFETY: `j < dim`, so the slice lies inside the data buffer of `outer x dim`
            // slices; the buffers are distinct.
            unsafe {
                let from = p[0].add((o * dim + j as usize) * slice);
                std::ptr::copy_nonoverlapping(from, to, slice);
            }
        }
    }));
    Ok(LoweredKernel {
        kernel,
        args: vec![
            Arg::Value(operand(graph, n, 0)?),
            Arg::Value(iv),
            Arg::Value(result(graph, n)?),
        ],
        work,
        grain: grain_for_bytes(2 * slice, work),
        op: "gather".into(),
        layout: "dense".into(),
    })
}

#[cfg(test)]
#[path = "movement_tests.rs"]
pub(crate) mod tests;
