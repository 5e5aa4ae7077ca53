//! 3x3 stride-1 convolutions by Winograd's minimal filtering `F(2x2, 3x3)`, the products on
//! `sgemm`.
//!
//! Each 2x2 tile of the output is computed from the 4x4 input patch under it as
//! `Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A` (Lavin and Gray, "Fast Algorithms for Convolutional Neural
//! Networks", 2016). Over all channels the elementwise product becomes 16 independent GEMMs, one
//! per position `ξ` of the 4x4 transformed tile: `M[ξ] (Cout x T) = U[ξ] (Cout x Cin) · V[ξ] (Cin
//! x T)` for `T` tiles. That is 16 multiplies per tile and channel pair where im2col + GEMM does
//! 36, and no im2col copy; the transforms are additions only (and halvings of the weights).
//!
//! - `U = G g Gᵀ` is computed at lowering (an `Arg::Packed` of `16 x Cout x Cin`, `Cout`
//!   rounded up to whole blocks), each `U[ξ]` stored in blocks of [`U_BLOCK`] output channels,
//!   column-major: the panels the library's microkernel reads, so it streams `U` without
//!   packing it and puts channels along the 64 rows of its microkernel, where tiles would fill
//!   them poorly (a 7x7 output has 16 tiles). `M[ξ]` is stored channels fastest (`T x Cout`).
//!   Against `U` row-major and `M` tile-fastest, ResNet-50's 7x7x512 layer ran 69 -> 126
//!   GFLOP/s on one thread, 14x14x256 112 -> 153.
//! - A chunk of work is a range of tile rows (all channels) or of output channels (all tiles).
//!   Tiles are taken in blocks of whole tile rows; per block the input transform fills `V`, the 16
//!   GEMMs fill `M` (one per block of `U` the chunk's channels overlap), and the output transform
//!   writes the 2x2 tiles into NCHW, after which the epilogue runs on the block's rows while they
//!   are in cache.
//! - Padding and the ragged last tile row and column: patches read zero outside the input; the
//!   output transform writes only pixels inside the output.
//!
//! The transforms add rounding of their own (each transformed value is a sum of up to nine
//! inputs or weights): the differential tests hold the results to the interpreter's within the
//! same tolerance as the other paths, and dense ResNet-50's outputs stayed within 2e-6 of ONNX
//! Runtime's.

use super::conv::MIN_CHUNK_CHANNELS;
use super::{apply_epilogue, grain_for, per_image, Block, EpiStep};
use crate::codegen::{Arg, LoweredKernel};
use sparsec_ir::Tensor;
use sparsec_runtime::dense::sgemm;
use sparsec_runtime::Kernel;
use std::cell::RefCell;

/// Transformed-tile positions (4 x 4).
const XI: usize = 16;

/// Output channels per unit when the channels are split.
const CHANNEL_UNIT: usize = 8;

/// Fewest input and output channels for Winograd: below, the transforms cost more than the
/// multiplies saved.
const MIN_CHANNELS: usize = 16;

/// Fewest tiles per image for Winograd (a 6x6 output).
const MIN_TILES: usize = 9;

/// Fewest input channels for Winograd on images of fewer than [`MANY_TILES`] tiles.
const FEW_TILES_CHANNELS: usize = 64;

/// Tiles per image from which [`MIN_CHANNELS`] input channels suffice (a 20x20 output).
const MANY_TILES: usize = 100;

/// Output channels per block of `U` (see [`transform_weights`]): the rows of the GEMM
/// library's AVX-512 microkernel (four vectors of 16).
const U_BLOCK: usize = 64;

/// Target tiles per block: enough columns for the GEMMs to run at speed.
const BLOCK_TILES: usize = 96;

thread_local! {
    /// `V` then `M` of the block in flight on this thread.
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// How the parallel dimension of one image is cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WinoSplit {
    /// Units of one tile row (every output channel).
    Rows,
    /// Units of [`CHANNEL_UNIT`] output channels (every tile).
    Channels,
}

/// A Winograd convolution, fixed at lowering.
#[derive(Clone, Debug)]
pub(crate) struct WinoPlan {
    /// Images.
    pub n: usize,
    /// Input channels.
    pub c_in: usize,
    /// Output channels.
    pub c_out: usize,
    /// Input height and width.
    pub x_hw: [usize; 2],
    /// Output height and width.
    pub y_hw: [usize; 2],
    /// Padding before the first row and column.
    pub pad: [usize; 2],
    /// Argument indices: input, transformed weights, result.
    pub x: usize,
    /// See `x`.
    pub u: usize,
    /// See `x`.
    pub out: usize,
    /// The fused epilogue.
    pub epi: Vec<EpiStep>,
}

/// Whether Winograd can compute a convolution of this geometry: 2-D, 3x3, stride 1, dilation 1,
/// one group (the weight must also be a constant, which the caller checks).
pub(crate) fn applies(kernel: &[usize], stride: &[usize], dil: &[usize], group: usize) -> bool {
    kernel == [3, 3] && stride.iter().all(|&s| s == 1) && dil.iter().all(|&d| d == 1) && group == 1
}

/// Whether Winograd is worth it for one image of `out_hw` output pixels: with few channels the
/// transforms cost more than the saved multiplies, and with few tiles the 16 GEMMs are too
/// narrow to run at speed. Measured against im2col on one thread (`dense_bench`, GFLOP/s):
/// 4x4 outputs (4 tiles) lose at every width (256 channels 46 against 84, 512 channels 30 against
/// 80); 6x6 (9 tiles) win with 256 channels (99 against 72) but lose with 48 (40 against 42);
/// 8x8 (16 tiles) lose with 32 input channels (42 against 52) and win from 64 (56 against 52;
/// 169 against 87 with 256); 16x16 with 32 channels is even (50 against 53) and 28x28 wins (90
/// against 77).
pub(crate) fn pays(c_in: usize, c_out: usize, out_hw: &[usize]) -> bool {
    let tiles: usize = out_hw.iter().map(|d| d.div_ceil(2)).product();
    c_in >= MIN_CHANNELS
        && c_out >= MIN_CHANNELS
        && tiles >= MIN_TILES
        && (c_in >= FEW_TILES_CHANNELS || tiles >= MANY_TILES)
}

/// `U = G g Gᵀ` for every output and input channel, position-major, each position's `c_out x
/// c_in` matrix stored by blocks of [`U_BLOCK`] output channels, each block column-major
/// (`c_in` columns of `U_BLOCK` values, the last block zero-padded): the layout the GEMM
/// library streams without packing. `w` is the `c_out x c_in x 3 x 3` weight.
pub(crate) fn transform_weights(w: &[f32], c_out: usize, c_in: usize) -> Tensor {
    let width = c_out.next_multiple_of(U_BLOCK);
    let mut u = vec![0.0f32; XI * width * c_in];
    for co in 0..c_out {
        for ci in 0..c_in {
            let g = &w[(co * c_in + ci) * 9..][..9];
            // t = G g (4 x 3), then t Gᵀ (4 x 4); G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1].
            let mut t = [[0.0f32; 3]; 4];
            for j in 0..3 {
                let (g0, g1, g2) = (g[j], g[3 + j], g[6 + j]);
                t[0][j] = g0;
                t[1][j] = 0.5 * (g0 + g1 + g2);
                t[2][j] = 0.5 * (g0 - g1 + g2);
                t[3][j] = g2;
            }
            for (i, r) in t.iter().enumerate() {
                let row = [
                    r[0],
                    0.5 * (r[0] + r[1] + r[2]),
                    0.5 * (r[0] - r[1] + r[2]),
                    r[2],
                ];
                for (j, &v) in row.iter().enumerate() {
                    u[u_index(i * 4 + j, co, ci, c_in, width)] = v;
                }
            }
        }
    }
    Tensor::from_f32(&[XI, width, c_in], u)
}

/// Where `U[xi][co][ci]` sits in the blocked layout of [`transform_weights`] (`width`: the
/// output channels rounded up to whole blocks).
fn u_index(xi: usize, co: usize, ci: usize, c_in: usize, width: usize) -> usize {
    xi * width * c_in + (co / U_BLOCK) * c_in * U_BLOCK + ci * U_BLOCK + co % U_BLOCK
}

impl WinoPlan {
    /// The kernel: tile rows are split when the image has at least as many pixels as output
    /// channels (and two tile rows or more), else output channels, as the im2col path splits.
    pub(crate) fn lower(self, args: Vec<Arg>, op: String) -> LoweredKernel {
        let rows = self.tiles().0;
        let split = if self.y_hw[0] * self.y_hw[1] >= self.c_out && rows > 1 {
            WinoSplit::Rows
        } else {
            WinoSplit::Channels
        };
        let work = self.n * self.dim(split);
        let min_units = match split {
            WinoSplit::Rows => 1,
            WinoSplit::Channels => MIN_CHUNK_CHANNELS / CHANNEL_UNIT,
        };
        let grain = grain_for(self.unit_flops(split), work)
            .max(min_units)
            .min(work.max(1));
        LoweredKernel {
            kernel: Kernel::Host(Box::new(move |args: &[*mut u8], begin, end| {
                // SAFETY: the runtime passes the buffers of `args` in ABI order, sized from the
                // graph's types, and gives each thread a disjoint range.
                unsafe { self.run(split, args, begin, end) }
            })),
            args,
            work,
            grain,
            op,
            layout: "dense".to_string(),
        }
    }

    /// Tile rows and tile columns of one image.
    fn tiles(&self) -> (usize, usize) {
        (self.y_hw[0].div_ceil(2), self.y_hw[1].div_ceil(2))
    }

    /// Units of the parallel dimension per image.
    fn dim(&self, split: WinoSplit) -> usize {
        match split {
            WinoSplit::Rows => self.tiles().0,
            WinoSplit::Channels => self.c_out.div_ceil(CHANNEL_UNIT),
        }
    }

    /// Flops of one unit, as the im2col path would count them (for the chunk size).
    fn unit_flops(&self, split: WinoSplit) -> usize {
        let per_pixel = 2 * self.c_in * 9;
        match split {
            WinoSplit::Rows => per_pixel * self.c_out * 2 * self.y_hw[1],
            WinoSplit::Channels => per_pixel * CHANNEL_UNIT * self.y_hw[0] * self.y_hw[1],
        }
    }

    /// Computes units `begin..end` of `n x dim`.
    ///
    /// # Safety
    /// `args` must hold the buffers the plan was built for.
    unsafe fn run(&self, split: WinoSplit, args: &[*mut u8], begin: usize, end: usize) {
        let d = self.dim(split);
        let (th, _) = self.tiles();
        for (b, lo, hi) in per_image(begin, end, d) {
            let (rows, chans) = match split {
                WinoSplit::Rows => ((lo, hi), (0, self.c_out)),
                WinoSplit::Channels => (
                    (0, th),
                    (lo * CHANNEL_UNIT, (hi * CHANNEL_UNIT).min(self.c_out)),
                ),
            };
            // SAFETY: forwarded from the caller.
            unsafe { self.block_rows(args, b, rows, chans) };
        }
    }

    /// Tile rows `rows` and output channels `chans` of image `b`, in blocks of whole tile rows.
    ///
    /// # Safety
    /// As [`WinoPlan::run`].
    unsafe fn block_rows(
        &self,
        args: &[*mut u8],
        b: usize,
        rows: (usize, usize),
        chans: (usize, usize),
    ) {
        let (_, tw) = self.tiles();
        let per_block = BLOCK_TILES.div_ceil(tw).max(1);
        let (c_in, c_out) = (self.c_in, self.c_out);
        let [h, w] = self.x_hw;
        let [oh, ow] = self.y_hw;
        let x = args[self.x] as *const f32;
        let uw = args[self.u] as *const f32;
        let out = args[self.out] as *mut f32;
        let nc = chans.1 - chans.0;
        let width = c_out.next_multiple_of(U_BLOCK);
        let mut corners = vec![0.0f32; 4 * nc];
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            let mut r0 = rows.0;
            while r0 < rows.1 {
                let r1 = (r0 + per_block).min(rows.1);
                let t = (r1 - r0) * tw;
                let need = XI * (c_in + nc) * t;
                if scratch.len() < need {
                    scratch.resize(need, 0.0);
                }
                let (v, m) = scratch.split_at_mut(XI * c_in * t);
                // SAFETY: image `b`'s input channels are inside `X`.
                let img =
                    unsafe { std::slice::from_raw_parts(x.add(b * c_in * h * w), c_in * h * w) };
                self.input_transform(img, r0, r1, v);
                for xi in 0..XI {
                    // One GEMM per block of `U` the channels overlap: `M[xi]` (`t x nc`,
                    // channels fastest) columns `lo - chans.0..`.
                    let mut lo = chans.0;
                    while lo < chans.1 {
                        let hi = ((lo / U_BLOCK + 1) * U_BLOCK).min(chans.1);
                        // SAFETY: rows `lo..hi` of `U[xi]` lie in one column-major block of
                        // `c_in` columns `U_BLOCK` apart; `V[xi]` is `c_in x t` and `M[xi]` is
                        // `t x nc`, both in the scratch.
                        unsafe {
                            sgemm(
                                hi - lo,
                                c_in,
                                t,
                                1.0,
                                uw.add(u_index(xi, lo, 0, c_in, width)),
                                1,
                                U_BLOCK as isize,
                                v.as_ptr().add(xi * c_in * t),
                                t as isize,
                                1,
                                0.0,
                                m.as_mut_ptr().add(xi * nc * t + lo - chans.0),
                                1,
                                nc as isize,
                            );
                        }
                        lo = hi;
                    }
                }
                let y0 = 2 * r0;
                let y1 = (2 * r1).min(oh);
                // SAFETY: output rows `y0..y1` of channels `chans` are this chunk's.
                unsafe {
                    output_transform(
                        m,
                        [nc, t, tw, ow, y1 - y0, oh * ow],
                        out.add((b * c_out + chans.0) * oh * ow + y0 * ow),
                        &mut corners,
                    )
                };
                let block = Block {
                    offset: (b * c_out + chans.0) * oh * ow + y0 * ow,
                    rows: nc,
                    cols: (y1 - y0) * ow,
                    ld: oh * ow,
                    ch0: chans.0,
                    channel_rows: true,
                };
                // SAFETY: the block is this chunk's part of the result.
                unsafe { apply_epilogue(&self.epi, args, out, &block) };
                r0 = r1;
            }
        });
    }

    /// `V = Bᵀ d B` of every tile of tile rows `r0..r1` and input channel, into `v` (`16 x c_in x
    /// t`, position-major); `img` is one image's input.
    ///
    /// Per tile row, the four input rows under it are copied into zero-padded row buffers (the
    /// padding and the ragged edges), and the transform then runs along the row of tiles with
    /// plain loads and contiguous stores, which the compiler vectorizes.
    fn input_transform(&self, img: &[f32], r0: usize, r1: usize, v: &mut [f32]) {
        let [h, w] = self.x_hw;
        let (_, tw) = self.tiles();
        let t = (r1 - r0) * tw;
        let stride = self.c_in * t;
        let (ph, pw) = (self.pad[0] as isize, self.pad[1]);
        let wpad = 2 * tw + 2;
        let mut rows = vec![0.0f32; 4 * wpad];
        let mut q = vec![0.0f32; 4 * wpad];
        // Buffer position `p` holds input column `p - pw`: columns `0..cols` land at `pw..`, the
        // rest of the buffer is padding and stays zero.
        let cols = wpad.saturating_sub(pw).min(w);
        for ci in 0..self.c_in {
            let plane = &img[ci * h * w..][..h * w];
            for tr in r0..r1 {
                for (r, buf) in rows.chunks_exact_mut(wpad).enumerate() {
                    let y = 2 * tr as isize - ph + r as isize;
                    buf.fill(0.0);
                    if (0..h as isize).contains(&y) && cols > 0 {
                        buf[pw..pw + cols].copy_from_slice(&plane[y as usize * w..][..cols]);
                    }
                }
                let (d0, rest) = rows.split_at(wpad);
                let (d1, rest) = rest.split_at(wpad);
                let (d2, d3) = rest.split_at(wpad);
                let col = ci * t + (tr - r0) * tw;
                let mut dsts = v.chunks_exact_mut(stride).map(|p| &mut p[col..col + tw]);
                let mut out: [&mut [f32]; XI] = std::array::from_fn(|_| match dsts.next() {
                    Some(d) => d,
                    None => &mut [],
                });
                transform_row(tw, [d0, d1, d2, d3], &mut q, &mut out);
            }
        }
    }
}

/// `Bᵀ d B` along one row of `tw` tiles: `d` holds the four zero-padded input rows under it
/// (`2 * tw + 2` values each), `out[ξ]` receives position `ξ` of each tile. `q` is scratch of
/// four rows. Written as simple loops (the rows first, whole width; then each column position
/// with a stride-2 read), which the compiler vectorizes.
fn transform_row(tw: usize, d: [&[f32]; 4], q: &mut [f32], out: &mut [&mut [f32]; XI]) {
    let n = 2 * tw + 2;
    let (d0, d1, d2, d3) = (&d[0][..n], &d[1][..n], &d[2][..n], &d[3][..n]);
    let (q0, rest) = q.split_at_mut(n);
    let (q1, rest) = rest.split_at_mut(n);
    let (q2, q3) = rest.split_at_mut(n);
    // Bᵀ d: rows d0 - d2, d1 + d2, d2 - d1, d1 - d3.
    for x in 0..n {
        q0[x] = d0[x] - d2[x];
        q1[x] = d1[x] + d2[x];
        q2[x] = d2[x] - d1[x];
        q3[x] = d1[x] - d3[x];
    }
    // (Bᵀ d) B: the same combination of columns 2 tc .. 2 tc + 3.
    for (i, qi) in [&*q0, &*q1, &*q2, &*q3].into_iter().enumerate() {
        let qi = &qi[..n];
        let [o0, o1, o2, o3] = &mut out[i * 4..i * 4 + 4] else {
            return;
        };
        let (o0, o1, o2, o3) = (&mut o0[..tw], &mut o1[..tw], &mut o2[..tw], &mut o3[..tw]);
        for tc in 0..tw {
            o0[tc] = qi[2 * tc] - qi[2 * tc + 2];
        }
        for tc in 0..tw {
            o1[tc] = qi[2 * tc + 1] + qi[2 * tc + 2];
        }
        for tc in 0..tw {
            o2[tc] = qi[2 * tc + 2] - qi[2 * tc + 1];
        }
        for tc in 0..tw {
            o3[tc] = qi[2 * tc + 1] - qi[2 * tc + 3];
        }
    }
}

/// `Y = Aᵀ m A` for every tile and channel of a block. `m` is `16 x t x nc` (position-major,
/// channels fastest); `dims` is `[nc, t, tw, ow, rows, plane]`: the block's `t` tiles are rows of
/// `tw`, its result `rows` rows of `ow` in each of `nc` planes `plane` apart from `dst`. Per tile
/// the four output pixels of every channel are computed along the channels (contiguous in `m`)
/// into `corners` (`4 x nc`), then those inside the output are stored.
///
/// # Safety
/// `dst` must address the block's `rows x ow` values of each of the `nc` planes, and no other
/// thread may access them.
unsafe fn output_transform(m: &[f32], dims: [usize; 6], dst: *mut f32, corners: &mut [f32]) {
    let [nc, t, tw, ow, rows, plane] = dims;
    let (y00, rest) = corners.split_at_mut(nc);
    let (y01, rest) = rest.split_at_mut(nc);
    let (y10, rest) = rest.split_at_mut(nc);
    let y11 = &mut rest[..nc];
    for tile in 0..t {
        let ms: [&[f32]; XI] = std::array::from_fn(|xi| &m[(xi * t + tile) * nc..][..nc]);
        for c in 0..nc {
            // Aᵀ m, per column position j: s0 = m0 + m1 + m2, s1 = m1 - m2 - m3 (rows of m);
            // then (Aᵀ m) A: columns c0 + c1 + c2 and c1 - c2 - c3.
            let s = |j: usize| {
                let (m0, m1, m2, m3) = (ms[j][c], ms[4 + j][c], ms[8 + j][c], ms[12 + j][c]);
                (m0 + m1 + m2, m1 - m2 - m3)
            };
            let (s0, s1, s2, s3) = (s(0), s(1), s(2), s(3));
            y00[c] = s0.0 + s1.0 + s2.0;
            y01[c] = s1.0 - s2.0 - s3.0;
            y10[c] = s0.1 + s1.1 + s2.1;
            y11[c] = s1.1 - s2.1 - s3.1;
        }
        let (y, x) = (2 * (tile / tw), 2 * (tile % tw));
        let right = x + 1 < ow;
        let below = y + 1 < rows;
        for c in 0..nc {
            let p = c * plane + y * ow + x;
            // SAFETY: pixel `(y, x)` is inside the block's rows (`y < rows`, `x < ow`), and
            // its right and lower neighbours are written only when inside too.
            unsafe {
                *dst.add(p) = y00[c];
                if right {
                    *dst.add(p + 1) = y01[c];
                }
                if below {
                    *dst.add(p + ow) = y10[c];
                    if right {
                        *dst.add(p + ow + 1) = y11[c];
                    }
                }
            }
        }
    }
}
