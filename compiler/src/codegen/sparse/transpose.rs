//! The step before a batch > 1 sparse product: `X [batch x cols]` to a *batch-tiled* `X^T`, and
//! where each element of it lives.
//!
//! The batch is padded to `stride = round_up(batch, 4)` (padding columns are written as zeros)
//! and cut into tiles of [`TILE`] batch columns (the last one narrower when `TILE` does not
//! divide the stride). Tile `t` is a `cols x width_t` row-major block starting at element
//! `cols * TILE * t`, so with full tiles `X^T[k, tile]` is one aligned 64-byte cache line, and
//! a tile of the whole `X^T` (`cols x 64` bytes) stays in the L2 cache while a kernel walks every
//! nonzero against it. The buffer holds `cols * stride` elements, the same as a plain transpose.

use sparsec_runtime::Kernel;

/// Row stride in elements of `X^T` for `batch`: the batch rounded up to a multiple of 4. The
/// `X^T` buffer holds `cols * xt_stride(batch)` elements.
pub fn xt_stride(batch: usize) -> usize {
    batch.div_ceil(4) * 4
}

/// Batch columns per tile of the `X^T` layout (one cache line of `f32`).
pub(super) const TILE: usize = 16;

/// Where `f32x4` vector `v` (batch columns `4v..4v + 4`) of `X^T` row `k` is:
/// `k * row_bytes + offset` bytes from the start, returned as `(row_bytes, offset)`.
pub(super) fn xt_vector(cols: usize, stride: usize, v: usize) -> (i64, i64) {
    let col = 4 * v;
    let t = col / TILE;
    let width = TILE.min(stride - TILE * t);
    let start = cols * TILE * t + col % TILE;
    (4 * width as i64, 4 * start as i64)
}

/// Columns of `X` transposed per block (the inner loop reads `X` contiguously along them).
const BLOCK: usize = 64;

/// Columns of `X` per step of a full tile: 16 rows of `X` times 8 columns are read as eight-float
/// runs and written as 8 whole cache lines of the tile.
const STEP: usize = 8;

/// A host kernel with `args = [x, xt]`, `x` = `X [batch x cols]` and `xt` = the batch-tiled
/// `X^T` (`cols * xt_stride(batch)` elements); its parallel dimension is `0..cols` (rows of
/// `X^T`).
pub fn transpose_kernel(batch: usize, cols: usize) -> Kernel {
    let stride = xt_stride(batch);
    Kernel::Host(Box::new(
        move |args: &[*mut u8], begin: usize, end: usize| {
            let (x, xt) = (args[0] as *const f32, args[1] as *mut f32);
            let end = end.min(cols);
            // Full tiles (every batch row exists): blocks of 16 x STEP through registers.
            let full = batch / TILE;
            for t in 0..full {
                let mut k = begin;
                while k + STEP <= end {
                    let mut block = [[0.0f32; STEP]; TILE];
                    for (j, row) in block.iter_mut().enumerate() {
                        // SAFETY: `x` holds `batch x cols` elements (the kernel's contract),
                        // `TILE * t + j < batch` and `k + STEP <= cols`.
                        let src = unsafe {
                            std::slice::from_raw_parts(x.add((TILE * t + j) * cols + k), STEP)
                        };
                        row.copy_from_slice(src);
                    }
                    for c in 0..STEP {
                        // SAFETY: `xt` holds `cols x stride` elements; full tile `t` holds
                        // `cols x TILE` of them from `cols * TILE * t`, and `k + c < cols`
                        // is this call's row alone.
                        let dst = unsafe {
                            std::slice::from_raw_parts_mut(
                                xt.add(cols * TILE * t + (k + c) * TILE),
                                TILE,
                            )
                        };
                        for (d, row) in dst.iter_mut().zip(&block) {
                            *d = row[c];
                        }
                    }
                    k += STEP;
                }
                for k in k..end {
                    for j in 0..TILE {
                        // SAFETY: as above, one element at a time.
                        unsafe {
                            *xt.add(cols * TILE * t + k * TILE + j) =
                                *x.add((TILE * t + j) * cols + k)
                        };
                    }
                }
            }
            // The last, partial tile (rows past the batch are zeros).
            let mut k0 = begin;
            while k0 < end {
                let k1 = (k0 + BLOCK).min(end);
                for bi in TILE * full..stride {
                    let t = bi / TILE;
                    let width = TILE.min(stride - TILE * t);
                    let base = cols * TILE * t + bi % TILE;
                    for k in k0..k1 {
                        let v = if bi < batch {
                            // SAFETY: `x` holds `batch x cols` elements (the kernel's contract) and
                            // `bi < batch`, `k < cols`.
                            unsafe { *x.add(bi * cols + k) }
                        } else {
                            0.0
                        };
                        // SAFETY: `xt` holds `cols x stride` elements; tile `t` holds
                        // `cols x width` of them from `cols * TILE * t`, `k < cols` and
                        // `bi % TILE < width`; the caller gives this call rows `begin..end`
                        // alone.
                        unsafe { *xt.add(base + k * width) = v };
                    }
                }
                k0 = k1;
            }
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every element lands once, at the place `xt_vector` says, for ragged batches.
    #[test]
    fn tiled_layout_is_a_bijection_matching_xt_vector() {
        for &(batch, cols) in &[(2, 3), (5, 7), (16, 5), (20, 9), (33, 4), (64, 70)] {
            let stride = xt_stride(batch);
            let x: Vec<f32> = (0..batch * cols).map(|i| i as f32 + 1.0).collect();
            let mut xt = vec![f32::NAN; cols * stride];
            let kern = transpose_kernel(batch, cols);
            let args = [x.as_ptr() as *mut u8, xt.as_mut_ptr() as *mut u8];
            for (lo, hi) in [(0, cols / 2), (cols / 2, cols)] {
                // SAFETY: `x` is `batch x cols` and `xt` holds `cols * stride` elements.
                unsafe { kern.call(&args, lo, hi) };
            }
            for k in 0..cols {
                for v in 0..stride / 4 {
                    let (row, off) = xt_vector(cols, stride, v);
                    for l in 0..4 {
                        let at = (k as i64 * row + off) as usize / 4 + l;
                        let b = 4 * v + l;
                        let want = if b < batch { x[b * cols + k] } else { 0.0 };
                        assert_eq!(xt[at], want, "batch {batch} cols {cols} k {k} b {b}");
                    }
                }
            }
            assert!(xt.iter().all(|v| !v.is_nan()), "batch {batch}: a hole");
        }
    }
}
