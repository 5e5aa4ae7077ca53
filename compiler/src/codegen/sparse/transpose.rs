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

/// Columns of `X` per step of a full tile on targets without the SSE path (`transpose_4x16`): 16
/// rows of `X` times 8 columns are read as eight-float runs and written as 8 whole cache lines of
/// the tile.
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
                #[cfg(target_arch = "x86_64")]
                while k + 4 <= end {
                    // SAFETY: as below; rows `TILE * t + jb..+4` and columns `k..k + 4` of `X`
                    // and the four `X^T` rows `k..k + 4` of tile `t` are inside the buffers.
                    unsafe {
                        transpose_4x16(
                            x.add(TILE * t * cols + k),
                            cols,
                            xt.add(cols * TILE * t + k * TILE),
                        )
                    };
                    k += 4;
                }
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

/// Columns `0..4` of 16 rows of `X` (row stride `cols` elements, from `x`) into four rows of a
/// full `X^T` tile (16 floats each, from `xt`): four SSE 4x4 transposes, one load and one store per
/// 4 floats (the register-block loop of scalar moves took about twice as long per float).
///
/// # Safety
/// `x` must address 16 rows of at least 4 floats with stride `cols`, `xt` 64 writable floats.
#[cfg(target_arch = "x86_64")]
unsafe fn transpose_4x16(x: *const f32, cols: usize, xt: *mut f32) {
    use std::arch::x86_64::{
        _mm_loadu_ps, _mm_movehl_ps, _mm_movelh_ps, _mm_storeu_ps, _mm_unpackhi_ps, _mm_unpacklo_ps,
    };
    for jb in (0..TILE).step_by(4) {
        // SAFETY: the caller's contract; SSE is part of the x86-64 baseline.
        unsafe {
            let r = |i: usize| _mm_loadu_ps(x.add((jb + i) * cols));
            let (r0, r1, r2, r3) = (r(0), r(1), r(2), r(3));
            let (t0, t1) = (_mm_unpacklo_ps(r0, r1), _mm_unpacklo_ps(r2, r3));
            let (t2, t3) = (_mm_unpackhi_ps(r0, r1), _mm_unpackhi_ps(r2, r3));
            _mm_storeu_ps(xt.add(jb), _mm_movelh_ps(t0, t1));
            _mm_storeu_ps(xt.add(TILE + jb), _mm_movehl_ps(t1, t0));
            _mm_storeu_ps(xt.add(2 * TILE + jb), _mm_movelh_ps(t2, t3));
            _mm_storeu_ps(xt.add(3 * TILE + jb), _mm_movehl_ps(t3, t2));
        }
    }
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
