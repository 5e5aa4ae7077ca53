//! The depthwise path of [`ConvPlan`]: one input channel per group, a direct loop per output
//! plane (no GEMM: each output channel reads one input plane).

use super::{valid_range, ConvPlan};
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
            let block = Block {
                offset,
                rows: 1,
                cols: p_out,
                ld: p_out,
                ch0: oc,
                channel_rows: true,
            };
            // SAFETY: the block is this chunk's part of the result.
            unsafe { apply_epilogue(&self.epi, args, out, &block) };
        }
    }
}
