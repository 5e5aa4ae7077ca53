//! A GEMM for convolutions with few output pixels, over weights packed once at build time.
//!
//! `C (Cout x P) = W (Cout x K) * X (K x P)` where `P` is small (the 49 pixels of ResNet-50's last
//! stage): the `gemm` crate puts the pixels along its 16-row microkernel there, and ragged panels
//! waste a fifth of every FMA, while it reads the weights unpacked with a large stride. Here the
//! output channels run along the vectors instead: `W` is packed at build time into tiles of
//! [`CH_TILE`] channels (`[tiles][K][16]`, zero-padded), `X` is packed per call into pixel tiles
//! of 4 to 6 columns (`[K][width]` each), and an AVX2 + FMA microkernel keeps `16 x width`
//! accumulators (8 to 12 registers, enough to hide the FMA latency) over blocks of [`KC`] rows of
//! `K`. The result tiles are accumulated in a scratch (`[tiles][P][16]`) and transposed into the
//! NCHW result at the end. Only x86-64 with AVX2 and FMA (checked at run time by [`available`]).

use std::cell::RefCell;

/// Output channels per tile: two `f32x8` vectors.
pub(crate) const CH_TILE: usize = 16;

/// Rows of `K` per block: the weight tile of a block (16 KiB) stays in L1 across the pixel tiles.
const KC: usize = 256;

/// Widest pixel tile (12 accumulators).
const MAX_TILE: usize = 6;

thread_local! {
    /// Packed `X` and the accumulator scratch of this thread.
    static BUFS: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// Whether the packed kernel can run on this machine.
pub(crate) fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// A weight matrix `Cout x K` packed into channel tiles: `[tiles][K][CH_TILE]`, zero-padded.
#[derive(Debug)]
pub(crate) struct PackedWeights {
    data: Vec<f32>,
    /// Index of the first element in `data` (aligned to 64 bytes).
    start: usize,
    k: usize,
}

impl PackedWeights {
    /// Packs the row-major `rows x k` matrix `w`.
    pub(crate) fn pack(w: &[f32], rows: usize, k: usize) -> PackedWeights {
        let tiles = rows.div_ceil(CH_TILE);
        let mut data = vec![0.0f32; tiles * k * CH_TILE + CH_TILE];
        let start = data.as_ptr().align_offset(64).min(CH_TILE);
        let dst = &mut data[start..];
        for (r, row) in w.chunks_exact(k.max(1)).take(rows).enumerate() {
            let (t, lane) = (r / CH_TILE, r % CH_TILE);
            let tile = &mut dst[t * k * CH_TILE..];
            for (kk, &v) in row.iter().enumerate() {
                tile[kk * CH_TILE + lane] = v;
            }
        }
        PackedWeights { data, start, k }
    }

    /// The packed tiles.
    fn tiles(&self) -> &[f32] {
        &self.data[self.start..]
    }
}

/// The widths of the pixel tiles of `p` pixels: as even as possible, at most [`MAX_TILE`].
fn tile_widths(p: usize) -> impl Iterator<Item = usize> {
    let n = p.div_ceil(MAX_TILE);
    (0..n).map(move |i| p / n + usize::from(i < p % n))
}

/// Where the `k x p` matrix `X` comes from.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Source<'a> {
    /// Element `(r, j)` at `x[r * rs + j]`.
    #[cfg_attr(not(test), allow(dead_code))]
    Rows { x: *const f32, rs: usize },
    /// im2col of `k / kk` input planes of `p_in` values from `x`: element `(c * kk + t, j)` is
    /// `x[c * p_in + table[t * p + j]]`, or 0 where the table entry is negative (padding).
    Gather {
        x: *const f32,
        p_in: usize,
        kk: usize,
        table: &'a [i32],
    },
}

/// The gather table of [`Source::Gather`] for one convolution: per kernel position `t` and
/// output pixel `j`, the input offset in the plane or -1. `geom` is (input sizes, output sizes,
/// kernel, stride, dilation, begin pads), three axes each.
pub(crate) fn gather_table(geom: [[usize; 3]; 6]) -> Vec<i32> {
    let [xs, ys, k, st, dil, pad] = geom;
    let p: usize = ys.iter().product();
    let mut table = Vec::with_capacity(k.iter().product::<usize>() * p);
    for k0 in 0..k[0] {
        for k1 in 0..k[1] {
            for k2 in 0..k[2] {
                for j in 0..p {
                    let o = [j / (ys[1] * ys[2]), (j / ys[2]) % ys[1], j % ys[2]];
                    let kp = [k0, k1, k2];
                    let mut off = 0i64;
                    let mut inside = true;
                    for a in 0..3 {
                        let i = (o[a] * st[a] + kp[a] * dil[a]) as i64 - pad[a] as i64;
                        inside &= i >= 0 && i < xs[a] as i64;
                        off = off * xs[a] as i64 + i;
                    }
                    table.push(if inside { off as i32 } else { -1 });
                }
            }
        }
    }
    table
}

/// Fills `dst` (`k x tw`) with pixels `q..q + tw` of `X`.
///
/// # Safety
/// `src` must address the whole of `X`.
unsafe fn pack_tile(src: Source, k: usize, p: usize, q: usize, tw: usize, dst: &mut [f32]) {
    match src {
        Source::Rows { x, rs } => {
            for (r, d) in dst.chunks_exact_mut(tw).take(k).enumerate() {
                // SAFETY: row `r`, pixels `q..q + tw` lie inside `X` by the caller's contract.
                let s = unsafe { std::slice::from_raw_parts(x.add(r * rs + q), tw) };
                d.copy_from_slice(s);
            }
        }
        Source::Gather { x, p_in, kk, table } => {
            let mut rows = dst.chunks_exact_mut(tw);
            for c in 0..k / kk.max(1) {
                // SAFETY: plane `c` is inside `X` by the caller's contract.
                let plane = unsafe { std::slice::from_raw_parts(x.add(c * p_in), p_in) };
                for t in 0..kk {
                    let offs = &table[t * p + q..t * p + q + tw];
                    if let Some(d) = rows.next() {
                        for (v, &o) in d.iter_mut().zip(offs) {
                            *v = if o >= 0 { plane[o as usize] } else { 0.0 };
                        }
                    }
                }
            }
        }
    }
}

/// Computes output channels `c0..c1` (`c0` a multiple of [`CH_TILE`]) of `C = W * X` for the `p`
/// pixels of `X` (`k x p`, read from `src`) and hands the result to `emit` as `(channel, row of p
/// values)`, channel by channel.
///
/// # Safety
/// `src` must address the whole of `X` (`Gather` tables hold `kk * p` entries, each below
/// `p_in`); [`available`] must hold; `w` must be packed from at least `c1` rows of `k` values.
pub(crate) unsafe fn gemm(
    w: &PackedWeights,
    (c0, c1): (usize, usize),
    src: Source,
    p: usize,
    mut emit: impl FnMut(usize, &[f32]),
) {
    let k = w.k;
    if c1 <= c0 || p == 0 {
        return;
    }
    let (t0, t1) = (c0 / CH_TILE, c1.div_ceil(CH_TILE));
    BUFS.with(|bufs| {
        let mut bufs = bufs.borrow_mut();
        let (xp, acc) = &mut *bufs;
        if xp.len() < k * p {
            xp.resize(k * p, 0.0);
        }
        let acc_len = (t1 - t0) * p * CH_TILE;
        if acc.len() < acc_len {
            acc.resize(acc_len, 0.0);
        }
        // Pack X into pixel tiles: tile at pixel `q` of width `tw` is `[k][tw]` from `k * q`.
        let mut q = 0;
        for tw in tile_widths(p) {
            // SAFETY: forwarded from the caller.
            unsafe { pack_tile(src, k, p, q, tw, &mut xp[k * q..k * (q + tw)]) };
            q += tw;
        }
        let wt = w.tiles();
        let mut k0 = 0;
        while k0 < k {
            let kc = KC.min(k - k0);
            for t in t0..t1 {
                let wb = &wt[(t * k + k0) * CH_TILE..(t * k + k0 + kc) * CH_TILE];
                // The first pixel tile prefetches the next weight block, a cache line (one row of
                // the tile) per row of `K`; the others touch their own block again, at no cost.
                let next = if t + 1 < t1 {
                    (t + 1) * k + k0
                } else if k0 + kc < k {
                    t0 * k + k0 + kc
                } else {
                    t * k + k0
                };
                let wn = &wt[next * CH_TILE..];
                let mut q = 0;
                for tw in tile_widths(p) {
                    let pf = if q == 0 { wn } else { wb };
                    let xb = &xp[k * q + k0 * tw..k * q + (k0 + kc) * tw];
                    let cb = &mut acc[((t - t0) * p + q) * CH_TILE..][..tw * CH_TILE];
                    // SAFETY: `available` holds (the caller's contract); the slices hold `kc`
                    // rows of the tiles the microkernel reads and the `tw x 16` accumulators.
                    unsafe { micro_dispatch(tw, kc, (wb, pf), xb, cb, k0 == 0) };
                    q += tw;
                }
            }
            k0 += kc;
        }
        let mut row = vec![0.0f32; p];
        for c in c0..c1 {
            let (t, lane) = (c / CH_TILE - t0, c % CH_TILE);
            let tile = &acc[t * p * CH_TILE..(t + 1) * p * CH_TILE];
            for (j, v) in row.iter_mut().enumerate() {
                *v = tile[j * CH_TILE + lane];
            }
            emit(c, &row);
        }
    });
}

/// Runs the microkernel of width `tw` (1 to [`MAX_TILE`]), prefetching from `pf` a line per row.
///
/// # Safety
/// AVX2 and FMA must be available; `w` holds `kc x 16`, `x` `kc x tw` and `c` `tw x 16` values.
unsafe fn micro_dispatch(
    tw: usize,
    kc: usize,
    (w, pf): (&[f32], &[f32]),
    x: &[f32],
    c: &mut [f32],
    first: bool,
) {
    debug_assert!(w.len() >= kc * CH_TILE && x.len() >= kc * tw && c.len() >= tw * CH_TILE);
    // Prefetch addresses past the end of `pf` are only hints, but stay inside it anyway.
    let pf_rows = (pf.len() / CH_TILE).max(1);
    let pf = pf.as_ptr();
    #[cfg(target_arch = "x86_64")]
    // SAFETY: forwarded from the caller.
    unsafe {
        match tw {
            6 => micro::<6>(kc, w, x, c, first, pf, pf_rows),
            5 => micro::<5>(kc, w, x, c, first, pf, pf_rows),
            4 => micro::<4>(kc, w, x, c, first, pf, pf_rows),
            3 => micro::<3>(kc, w, x, c, first, pf, pf_rows),
            2 => micro::<2>(kc, w, x, c, first, pf, pf_rows),
            _ => micro::<1>(kc, w, x, c, first, pf, pf_rows),
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (tw, kc, w, x, c, first, pf, pf_rows);
}

/// `c[j][0..16] (+)= sum_r w[r][0..16] * x[r][j]` for `j < P`; `c` is overwritten when `first`.
/// Row `r` also prefetches row `r` (of 16 values) of `pf` when `r < pf_rows`.
///
/// # Safety
/// AVX2 and FMA must be available; the slices must hold `kc x 16`, `kc x P` and `P x 16` values.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn micro<const P: usize>(
    kc: usize,
    w: &[f32],
    x: &[f32],
    c: &mut [f32],
    first: bool,
    pf: *const f32,
    pf_rows: usize,
) {
    use std::arch::x86_64::*;
    let (w, x, c) = (w.as_ptr(), x.as_ptr(), c.as_mut_ptr());
    // SAFETY: every access below is inside the slices by the caller's contract.
    unsafe {
        let mut a0 = [_mm256_setzero_ps(); P];
        let mut a1 = [_mm256_setzero_ps(); P];
        if !first {
            for j in 0..P {
                a0[j] = _mm256_loadu_ps(c.add(j * CH_TILE));
                a1[j] = _mm256_loadu_ps(c.add(j * CH_TILE + 8));
            }
        }
        for r in 0..kc {
            // `wrapping_add` and a hint: the address is never dereferenced.
            let line = pf.wrapping_add(r.min(pf_rows - 1) * CH_TILE) as *const i8;
            _mm_prefetch::<_MM_HINT_T0>(line);
            let w0 = _mm256_loadu_ps(w.add(r * CH_TILE));
            let w1 = _mm256_loadu_ps(w.add(r * CH_TILE + 8));
            for j in 0..P {
                let b = _mm256_broadcast_ss(&*x.add(r * P + j));
                a0[j] = _mm256_fmadd_ps(w0, b, a0[j]);
                a1[j] = _mm256_fmadd_ps(w1, b, a1[j]);
            }
        }
        for j in 0..P {
            _mm256_storeu_ps(c.add(j * CH_TILE), a0[j]);
            _mm256_storeu_ps(c.add(j * CH_TILE + 8), a1[j]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_cover_the_pixels_evenly() {
        for p in 1..100 {
            let w: Vec<usize> = tile_widths(p).collect();
            assert_eq!(w.iter().sum::<usize>(), p);
            assert!(w.iter().all(|&t| (1..=MAX_TILE).contains(&t)), "{p}: {w:?}");
            assert!(w.iter().max().unwrap() - w.iter().min().unwrap() <= 1);
        }
    }

    #[test]
    fn matches_a_plain_loop() {
        if !available() {
            eprintln!("skipped: no AVX2 + FMA");
            return;
        }
        for &(rows, k, p, c0, c1) in &[
            (16, 1, 1, 0, 16),
            (21, 300, 49, 0, 21),
            (40, 600, 13, 16, 37),
            (64, 513, 196, 32, 64),
            (3, 7, 2, 0, 3),
        ] {
            let w = crate::codegen::dense::test_util::values(rows * k, 1);
            let rs = p + 3;
            let x = crate::codegen::dense::test_util::values(k * rs, 2);
            let packed = PackedWeights::pack(&w, rows, k);
            let mut got = vec![f32::NAN; rows * p];
            // SAFETY: `x` holds `k` rows of stride `rs >= p`, AVX2 and FMA are available.
            unsafe {
                let src = Source::Rows { x: x.as_ptr(), rs };
                gemm(&packed, (c0, c1), src, p, |c, row| {
                    got[c * p..(c + 1) * p].copy_from_slice(row)
                })
            };
            for c in c0..c1 {
                for j in 0..p {
                    let want: f64 = (0..k)
                        .map(|r| w[c * k + r] as f64 * x[r * rs + j] as f64)
                        .sum();
                    let g = got[c * p + j];
                    assert!(
                        (g as f64 - want).abs() <= 1e-3 * (1.0 + want.abs()),
                        "{rows}x{k}x{p} [{c},{j}]: {g} vs {want}"
                    );
                }
            }
            assert!(got[..c0 * p].iter().all(|v| v.is_nan()));
        }
    }
}
