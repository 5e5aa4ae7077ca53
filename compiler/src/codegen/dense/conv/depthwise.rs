//! The depthwise path of [`ConvPlan`]: one input channel per group, a direct loop per output
//! plane (no GEMM: each output channel reads one input plane).
//!
//! Planes of short rows at stride 1 (ShuffleNet's 28x28, 14x14 and 7x7) are computed over a
//! zero-padded copy of the input plane instead ([`ConvPlan::short_rows`]): each tap is then one
//! loop over the whole plane, where the row walk ran a loop of a few values per tap and row.

use super::{valid_range, ConvPlan, SCRATCH};
use crate::codegen::dense::{apply_epilogue, Block};
use crate::codegen::strided::zip_strided;

impl ConvPlan {
    /// Output channels `c` of image `b` of a depthwise convolution.
    ///
    /// # Safety
    /// As [`ConvPlan::run`].
    pub(super) unsafe fn depthwise(&self, args: &[*mut u8], b: usize, c: (usize, usize)) {
        let [y0, y1, y2] = self.y_sp;
        let [_, x1, x2] = self.x_sp;
        let [k0, k1, k2] = self.k;
        let (p_in, p_out, kk, cout_g) = (self.p_in(), self.p_out(), self.kk(), self.cout_g());
        let x = args[self.x] as *const f32;
        let w = args[self.w] as *const f32;
        let out = args[self.out] as *mut f32;
        let short = self.x_sp[0] == 1
            && k0 == 1
            && self.stride == [1, 1, 1]
            && self.dil == [1, 1, 1]
            && x2 <= SHORT_ROW;
        for oc in c.0..c.1 {
            let ic = oc / cout_g;
            let offset = (b * self.c_out + oc) * p_out;
            // SAFETY: plane `oc` of image `b` is this chunk's part of the result, input plane
            // `ic` and the `kk` weights of `oc` are inside `X` and `W`.
            let (y, xp, wk) = unsafe {
                (
                    std::slice::from_raw_parts_mut(out.add(offset), p_out),
                    std::slice::from_raw_parts(x.add((b * self.c_in + ic) * p_in), p_in),
                    std::slice::from_raw_parts(w.add(oc * kk), kk),
                )
            };
            if short {
                SCRATCH.with(|scratch| self.short_rows(xp, wk, y, &mut scratch.borrow_mut()));
                // SAFETY: the plane is this chunk's part of the result.
                unsafe { apply_epilogue(&self.epi, args, out, &plane_block(offset, p_out, oc)) };
                continue;
            }
            y.fill(0.0);
            let s = self.stride[2];
            for kd in 0..k0 {
                for kh in 0..k1 {
                    for kw in 0..k2 {
                        let wv = wk[(kd * k1 + kh) * k2 + kw];
                        let off_w = (kw * self.dil[2]) as i64 - self.pad[2] as i64;
                        let (lo, hi) = valid_range(y2, s, off_w, x2);
                        if lo == hi {
                            continue;
                        }
                        let off_h = (kh * self.dil[1]) as i64 - self.pad[1] as i64;
                        let (hlo, hhi) = valid_range(y1, self.stride[1], off_h, x1);
                        let off_d = (kd * self.dil[0]) as i64 - self.pad[0] as i64;
                        let (dlo, dhi) = valid_range(y0, self.stride[0], off_d, self.x_sp[0]);
                        for od in dlo..dhi {
                            let id = (od * self.stride[0]) as i64 + off_d;
                            for oh in hlo..hhi {
                                let ih = (oh * self.stride[1]) as i64 + off_h;
                                let yrow = &mut y[(od * y1 + oh) * y2..][lo..hi];
                                let base = (id as usize * x1 + ih as usize) * x2;
                                let start = (base as i64 + (lo * s) as i64 + off_w) as usize;
                                if s == 1 {
                                    let src = &xp[start..start + yrow.len()];
                                    yrow.iter_mut().zip(src).for_each(|(v, x)| *v += wv * x);
                                } else {
                                    zip_strided(yrow, &xp[start..], s, |v, x| *v += wv * x);
                                }
                            }
                        }
                    }
                }
            }
            // SAFETY: the plane is this chunk's part of the result.
            unsafe { apply_epilogue(&self.epi, args, out, &plane_block(offset, p_out, oc)) };
        }
    }

    /// One output plane `y` of a stride-1, dilation-1 depthwise convolution of at most two
    /// spatial axes from input plane `xp` and weights `wk`: the input is copied into a
    /// zero-padded plane `hp x wp` (`hp = y1 + k1 - 1`, `wp = y2 + k2 - 1`), every tap adds
    /// `w * padded[p + kh * wp + kw]` over all `p < y1 * wp` of a wide result (each row `wp`
    /// long, its first `y2` values the output row's), then the rows are copied out. The taps
    /// are summed in the row walk's order, so the results are the same.
    fn short_rows(&self, xp: &[f32], wk: &[f32], y: &mut [f32], scratch: &mut Vec<f32>) {
        let [_, y1, y2] = self.y_sp;
        let [_, x1, x2] = self.x_sp;
        let [_, k1, k2] = self.k;
        if y.is_empty() {
            return;
        }
        let (ph, pw) = (self.pad[1], self.pad[2]);
        let (hp, wp) = (y1 + k1 - 1, y2 + k2 - 1);
        // The last tap reads `k2 - 1` values past the padded plane: they stay zero.
        let padded_len = hp * wp + k2;
        let wide_len = y1 * wp;
        scratch.clear();
        scratch.resize(padded_len + wide_len, 0.0);
        let (padded, wide) = scratch.split_at_mut(padded_len);
        let (c_lo, c_hi) = (pw.min(wp), (pw + x2).min(wp));
        for r in ph..(ph + x1).min(hp) {
            let src = &xp[(r - ph) * x2..][..c_hi - c_lo];
            padded[r * wp + c_lo..r * wp + c_hi].copy_from_slice(src);
        }
        for (t, &wv) in wk.iter().enumerate() {
            let src = &padded[(t / k2) * wp + t % k2..][..wide_len];
            if t == 0 {
                wide.iter_mut().zip(src).for_each(|(o, x)| *o = wv * x);
            } else {
                wide.iter_mut().zip(src).for_each(|(o, x)| *o += wv * x);
            }
        }
        for (row, w) in y.chunks_exact_mut(y2).zip(wide.chunks_exact(wp)) {
            row.copy_from_slice(&w[..y2]);
        }
    }
}

/// Widest input row that [`ConvPlan::short_rows`] takes: on wider rows the row walk's loops are
/// long enough already.
const SHORT_ROW: usize = 32;

/// The block of one output plane at `offset`, channel `oc`.
fn plane_block(offset: usize, p_out: usize, oc: usize) -> Block {
    Block {
        offset,
        rows: 1,
        cols: p_out,
        ld: p_out,
        ch0: oc,
        channel_rows: true,
    }
}
