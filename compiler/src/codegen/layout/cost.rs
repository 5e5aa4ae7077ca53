//! The cost model: estimated single-thread time of a layer in each layout, from its shape, its
//! nonzeros and pattern, the dense dimension `n`, and a [`CostTable`].
//!
//! - Dense: `2 n rows cols` flops at the table's GFLOP/s for `n` (matrix products and
//!   convolutions have their own curves; a convolution on the Winograd path takes a fixed share
//!   of that time), plus a fixed call time; when the model's weights (or this
//!   one) do not fit the cache, a matrix product takes at least the time of streaming its weight from memory.
//! - Sparse at `n = 1` (memory bound): the packing's bytes times the time per byte, plus a time
//!   per row and a fixed time; a packing larger than half the cache at least streams from memory.
//! - Sparse at `n > 1`: per `f32x4` vector of batch columns, a time per stored value (explicit
//!   zeros of blocks included) and per row, plus the `X^T` transpose step.
//! - Sparse convolutions: per `f32x4` vector of output pixels (`n = batch x output pixels`), a
//!   time per stored value and per output channel, plus the copy of the input into padded /
//!   strided planes for kernels larger than 1x1 or strides above 1.
//!
//! Stored values and bytes are estimated from the weight's facts (no data needed): blocks of a
//! weight whose zeros come in matching blocks hold exactly its nonzeros; for other weights a
//! block is taken to be stored with the probability that one of its entries is nonzero when
//! zeros are independent.

use super::table::{interpolate, CostTable, SparseCost};
use super::{LayerDesc, LayerKind, Layout};
use crate::codegen::sparse::{baked_size, xt_stride, IndexWidth, BAKED_MAX_NNZ};
use sparsec_ir::Pattern;

/// Estimated stored values and packed bytes of `layout` for `d` (`None` for dense or a layout
/// that cannot hold the weight, e.g. 2:4 on a weight without that pattern).
pub fn packed_size(d: &LayerDesc, layout: Layout) -> Option<(f64, f64)> {
    let (rows, cols, nnz) = (d.rows as f64, d.cols as f64, d.nnz as f64);
    match layout {
        Layout::Dense => None,
        Layout::Csr { width, .. } => {
            let bytes = nnz * (4 + width.bytes()) as f64 + (rows + 1.0) * 4.0;
            Some((nnz, bytes))
        }
        Layout::Bsr { r, c } => {
            let (r, c) = (r.min(d.rows).max(1), c.min(d.cols).max(1));
            let area = (r * c) as f64;
            let grid = (d.rows.div_ceil(r) * d.cols.div_ceil(c)) as f64;
            let blocks = match d.pattern {
                Pattern::Block { r: pr, c: pc }
                    if (pr as usize).is_multiple_of(r) && (pc as usize).is_multiple_of(c) =>
                {
                    (nnz / area).ceil()
                }
                Pattern::Dense => grid,
                Pattern::Zero => 0.0,
                _ => {
                    let density = if rows * cols > 0.0 {
                        nnz / (rows * cols)
                    } else {
                        1.0
                    };
                    grid * (1.0 - (1.0 - density).powf(area))
                }
            };
            let stored = blocks * area;
            let idx = IndexWidth::for_extent(d.cols).bytes() as f64;
            let bytes = stored * 4.0 + blocks * idx + (d.rows.div_ceil(r) + 1) as f64 * 4.0;
            Some((stored, bytes))
        }
        Layout::Nm24 => {
            if !fits_24(d.pattern) {
                return None;
            }
            let groups = d.cols.div_ceil(4) as f64;
            Some((rows * groups * 2.0, rows * groups * 9.0))
        }
    }
}

/// True when a weight of this pattern keeps at most 2 nonzeros in every group of 4 along its
/// reduction dimension.
pub fn fits_24(p: Pattern) -> bool {
    match p {
        Pattern::NM { n, m } => (m == 4 || m == 8) && n <= 2,
        Pattern::Zero => true,
        _ => false,
    }
}

/// Time of a dense convolution on the Winograd path relative to im2col + GEMM, which the
/// table's conv curve measures: ResNet-50's 3x3 layers ran 1.27-1.67x faster (0.60-0.79 of the
/// time), 0.65 overall.
const WINOGRAD_TIME: f64 = 0.65;

/// Estimated nanoseconds of `d` in the dense layout.
pub fn dense_ns(d: &LayerDesc, t: &CostTable) -> f64 {
    let flops = 2.0 * d.n.max(1) as f64 * d.rows as f64 * d.cols as f64;
    let curve = match d.kind {
        LayerKind::Matmul => &t.dense_matmul,
        LayerKind::Conv { .. } => &t.dense_conv,
    };
    let mut compute = flops / interpolate(curve, d.n).max(1e-3);
    if let LayerKind::Conv { winograd: true, .. } = d.kind {
        compute *= WINOGRAD_TIME;
    }
    let bytes = (d.rows * d.cols * 4) as f64;
    let stream = if (d.streamed || bytes > t.cache_bytes) && d.kind == LayerKind::Matmul {
        bytes * t.dense_ns_per_byte
    } else {
        0.0
    };
    compute.max(stream) + t.dense_fixed_ns
}

/// Estimated nanoseconds of `d` in a sparse `layout` (`None` for dense or an impossible layout).
pub fn sparse_ns(d: &LayerDesc, layout: Layout, t: &CostTable) -> Option<f64> {
    let (stored, bytes) = packed_size(d, layout)?;
    let c: &SparseCost = match layout {
        Layout::Dense => return None,
        Layout::Csr { baked: false, .. } => &t.csr,
        Layout::Csr { baked: true, .. } => &t.csr_baked,
        Layout::Bsr { .. } => &t.bsr,
        Layout::Nm24 => &t.nm24,
    };
    let n = d.n.max(1);
    let rows = d.rows as f64;
    if let LayerKind::Conv { kh, kw, stride, .. } = d.kind {
        let c = &t.sparse_conv;
        let vecs = n.div_ceil(4) as f64;
        let copy = if kh * kw > 1 || stride > 1 {
            let cin = (d.cols / (kh * kw).max(1)) as f64;
            cin * (n * stride * stride) as f64 * t.conv_copy_ns_per_elem
        } else {
            0.0
        };
        return Some(
            vecs * (stored * c.ns_per_stored_vec + rows * c.ns_per_row_vec) + copy + c.fixed_ns,
        );
    }
    let core = if n == 1 {
        // A packing larger than half the cache streams from memory, like a dense weight.
        let stream = if bytes > t.cache_bytes / 2.0 {
            bytes * t.dense_ns_per_byte
        } else {
            0.0
        };
        (bytes * c.b1_ns_per_byte + rows * c.b1_ns_per_row).max(stream)
    } else {
        let vecs = (xt_stride(n) / 4) as f64;
        vecs * (stored * c.ns_per_stored_vec + rows * c.ns_per_row_vec)
            + (n * d.cols) as f64 * t.transpose_ns_per_elem
    };
    if let Layout::Csr { baked: true, .. } = layout {
        if baked_size(d.nnz, n) > BAKED_MAX_NNZ {
            return None;
        }
    }
    Some(core + c.fixed_ns)
}

/// The layouts worth estimating for `d`: CSR (loop, and pattern-baked for matrix products),
/// BSR in the detected block shape or 4x1 / 8x1 / 1x4, and 2:4 when the pattern allows it.
/// Convolutions get CSR only (the sparse convolution reads a CSR packing).
pub fn candidates(d: &LayerDesc) -> Vec<Layout> {
    let width = IndexWidth::for_extent(d.cols);
    let mut out = vec![Layout::Csr {
        width,
        baked: false,
    }];
    if d.kind != LayerKind::Matmul {
        return out;
    }
    out.push(Layout::Csr { width, baked: true });
    let mut blocks = vec![(4, 1), (8, 1), (1, 4)];
    if let Pattern::Block { r, c } = d.pattern {
        let b = (r as usize, c as usize);
        if b.0 * b.1 > 1 && b.0 <= 64 && b.1 <= 64 && !blocks.contains(&b) {
            blocks.insert(0, b);
        }
    }
    out.extend(blocks.into_iter().map(|(r, c)| Layout::Bsr { r, c }));
    if fits_24(d.pattern) {
        out.push(Layout::Nm24);
    }
    out
}
