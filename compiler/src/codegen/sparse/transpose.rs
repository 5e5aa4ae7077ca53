//! The step before a batch > 1 sparse product: `X [batch x cols]` to `X^T [cols x stride]`, the
//! stride being the batch rounded up to a multiple of 4 (the padding columns are written as
//! zeros), so that every `X^T[k, b..b + 4]` the kernels load is inside the buffer.

use sparsec_runtime::Kernel;

/// Row stride in elements of `X^T` for `batch`: the batch rounded up to a multiple of 4.
pub fn xt_stride(batch: usize) -> usize {
    batch.div_ceil(4) * 4
}

/// Columns of `X` transposed per block (the inner loop reads `X` contiguously along them).
const BLOCK: usize = 64;

/// A host kernel with `args = [x, xt]`, `x` = `X [batch x cols]` and `xt` = `X^T [cols x
/// xt_stride(batch)]`; its parallel dimension is `0..cols` (rows of `X^T`).
pub fn transpose_kernel(batch: usize, cols: usize) -> Kernel {
    let stride = xt_stride(batch);
    Kernel::Host(Box::new(
        move |args: &[*mut u8], begin: usize, end: usize| {
            let (x, xt) = (args[0] as *const f32, args[1] as *mut f32);
            let end = end.min(cols);
            let mut k0 = begin;
            while k0 < end {
                let k1 = (k0 + BLOCK).min(end);
                for bi in 0..stride {
                    for k in k0..k1 {
                        let v = if bi < batch {
                            // SAFETY: `x` holds `batch x cols` elements (the kernel's contract) and
                            // `bi < batch`, `k < cols`.
                            unsafe { *x.add(bi * cols + k) }
                        } else {
                            0.0
                        };
                        // SAFETY: `xt` holds `cols x stride` elements, `k < cols`, `bi < stride`,
                        // and the caller gives this call rows `begin..end` of it alone.
                        unsafe { *xt.add(k * stride + bi) = v };
                    }
                }
                k0 = k1;
            }
        },
    ))
}
