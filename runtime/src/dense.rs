//! Dense f32 GEMM: the one entry point through which every dense matrix product of the runtime
//! goes (Gemm, MatMul, convolutions as GEMM).
//!
//! It wraps the `gemm` crate (measured at 0.18; 0.19 now, with its AVX-512 microkernels enabled), which was faster than `matrixmultiply` (0.3) in total over
//! the MLP, BERT and ResNet-50 shapes measured by `examples/gemm_compare.rs`, and much faster on
//! batch-1 products (`M = 1`), where `matrixmultiply` has no GEMV path. The call is always
//! single-threaded: the runtime's pool parallelizes by calling it on disjoint slices of the
//! output. The library keeps its main packing buffer in thread-local storage, but still allocates
//! small bookkeeping (and the packed `B` when it packs it) on each call, so callers should not cut
//! a product into many tiny calls.

/// `C = alpha * A * B + beta * C` in f32, single-threaded.
///
/// `A` is `m x k`, `B` is `k x n` and `C` is `m x n`; each is given by a pointer to its first
/// element and its row and column strides in elements (`rs*`, `cs*`), so transposed operands need
/// no copy. When `beta == 0`, `C` is not read (it may hold garbage, even NaN).
///
/// # Safety
/// Every element the strides address must lie inside a live allocation: `A` for `m x k`, `B` for
/// `k x n` and `C` for `m x n` elements; `C` must not overlap `A` or `B`, its strides must not make
/// two elements alias, and no other thread may access `C` during the call.
#[allow(clippy::too_many_arguments)]
pub unsafe fn sgemm(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: *const f32,
    rsa: isize,
    csa: isize,
    b: *const f32,
    rsb: isize,
    csb: isize,
    beta: f32,
    c: *mut f32,
    rsc: isize,
    csc: isize,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 || alpha == 0.0 {
        // The product is empty: only the scaling of `C` remains.
        for i in 0..m as isize {
            for j in 0..n as isize {
                // SAFETY: `(i, j)` is inside `C` by the caller's contract.
                unsafe {
                    let p = c.offset(i * rsc + j * csc);
                    *p = if beta == 0.0 { 0.0 } else { beta * *p };
                }
            }
        }
        return;
    }
    // The `gemm` crate computes `dst = alpha * dst + beta * lhs * rhs`, reading `dst` only when
    // asked to; its argument order is (m, n, k) and (column stride, row stride).
    // SAFETY: the caller's contract covers every matrix the library reads and writes.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c,
            csc,
            rsc,
            beta != 0.0,
            a,
            csa,
            rsa,
            b,
            csb,
            rsb,
            beta,
            alpha,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| {
                ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) % 1000) as f32 / 500.0 - 1.0
            })
            .collect()
    }

    /// Plain triple loop over the same strided views.
    #[allow(clippy::too_many_arguments)]
    fn reference(
        m: usize,
        k: usize,
        n: usize,
        alpha: f32,
        a: &[f32],
        (rsa, csa): (usize, usize),
        b: &[f32],
        (rsb, csb): (usize, usize),
        beta: f32,
        c: &mut [f32],
        rsc: usize,
    ) {
        for i in 0..m {
            for j in 0..n {
                let mut s = 0.0f64;
                for p in 0..k {
                    s += a[i * rsa + p * csa] as f64 * b[p * rsb + j * csb] as f64;
                }
                let old = if beta == 0.0 {
                    0.0
                } else {
                    beta * c[i * rsc + j]
                };
                c[i * rsc + j] = alpha * s as f32 + old;
            }
        }
    }

    #[test]
    fn matches_reference_on_layouts_and_scalars() {
        for &(m, k, n) in &[
            (1, 1, 1),
            (3, 5, 7),
            (17, 33, 9),
            (64, 3, 65),
            (1, 100, 13),
            (0, 3, 4),
        ] {
            for &(ta, tb) in &[(false, false), (true, false), (false, true), (true, true)] {
                for &(alpha, beta) in &[(1.0, 0.0), (0.5, 1.0), (2.0, -0.5), (0.0, 2.0)] {
                    let a = data(m * k, 1);
                    let b = data(k * n, 2);
                    let sa = if ta { (1, m) } else { (k, 1) };
                    let sb = if tb { (1, k) } else { (n, 1) };
                    // C has a row stride larger than n, as an output slice of a wider matrix.
                    let rsc = n + 3;
                    let init = data(m * rsc, 3);
                    let mut want = init.clone();
                    reference(m, k, n, alpha, &a, sa, &b, sb, beta, &mut want, rsc);
                    let mut got = init.clone();
                    if beta == 0.0 {
                        for (i, x) in got.iter_mut().enumerate() {
                            if i % rsc < n {
                                *x = f32::NAN;
                            }
                        }
                    }
                    // SAFETY: the buffers hold the matrices the strides describe.
                    unsafe {
                        sgemm(
                            m,
                            k,
                            n,
                            alpha,
                            a.as_ptr(),
                            sa.0 as isize,
                            sa.1 as isize,
                            b.as_ptr(),
                            sb.0 as isize,
                            sb.1 as isize,
                            beta,
                            got.as_mut_ptr(),
                            rsc as isize,
                            1,
                        )
                    };
                    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                        assert!(
                            (g - w).abs() <= 1e-4 * (1.0 + w.abs()),
                            "{m}x{k}x{n} ta={ta} tb={tb} alpha={alpha} beta={beta}: [{i}] {g} vs {w}"
                        );
                    }
                }
            }
        }
    }
}
