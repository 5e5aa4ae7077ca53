//! `Conv` (1 to 3 spatial axes; groups, strides, pads, dilations, `auto_pad`) over `sgemm`.
//!
//! The result of one image and one group is the GEMM `W[g] (Cout_g x Cin_g*K) x X' (Cin_g*K x
//! P)`, with `P` output pixels and `K` kernel positions, written straight into the NCHW result
//! (rows are channels, row stride `P`). Four paths:
//! - pointwise (1x1, stride 1, no padding): `X'` is the input itself, no copy;
//! - depthwise (`group == C_in`, one input channel per group): a direct loop per output plane;
//! - Winograd (3x3, stride 1, constant weights, enough channels and tiles): `winograd.rs`;
//! - otherwise im2col: `X'` is built block by block of output pixels in a per-thread scratch
//!   buffer (grown as needed, never shrunk) sized to stay in L2, then multiplied.
//!
//! The parallel dimension is `N x` units of output pixels or of output channels. Pixel units are
//! panels of [`PIXEL_PANEL`] pixels, the row count of the GEMM microkernel (the library puts the
//! result's unit-stride axis, the pixels, along its rows), so the boundaries of the chunks the pool
//! hands out never add a ragged panel, and im2col blocks are evened out within a chunk instead of
//! leaving a small remainder. Pixels are split when the image has at least as many pixels as output
//! channels (early layers) and, on the im2col path, also while it has enough panels to share
//! ([`MIN_IM2COL_PANELS`]): splitting channels there would make every chunk rebuild the same im2col
//! block. Two exceptions (one group) split channels sooner: pointwise convolutions with
//! [`POINTWISE_CHANNEL_SPLIT`] or more output channels (a chunk's result is then whole planes, not
//! a slice of each), and strided 1x1 ones (their im2col is a cheap copy) whenever they have fewer
//! pixels than channels. Late layers split [`CHANNEL_UNIT`] channels at a time; depthwise splits
//! channels one by one. Batches of images with fewer than [`BATCH_PIXELS`] output pixels (the
//! digits CNN's 8 x 8 and 4 x 4 maps) split images instead: the im2col blocks of several images,
//! gathered through an offset table built at lowering, sit side by side and make one GEMM. A single
//! image that small keeps the channel or pixel split and gathers its im2col blocks through the same
//! table. Spatial axes are padded to three with unit sizes so one code path serves every rank.

mod depthwise;

use super::winograd::{self, WinoPlan};
use super::{
    apply_epilogue, build_epilogue, f32_shape, grain_for, operand, per_image, result, unsupported,
    Block, EpiStep,
};
use crate::codegen::strided::zip_strided;
use crate::codegen::{Arg, CodegenError, Epilogue, LoweredKernel};
use sparsec_ir::shape::resolve_window;
use sparsec_ir::{Graph, NodeId, Op};
use sparsec_runtime::dense::sgemm;
use sparsec_runtime::Kernel;
use std::cell::RefCell;

/// Target size of the im2col block in floats (512 KiB, half the 1 MiB L2 of one core here).
const SCRATCH_FLOATS: usize = 1 << 17;

/// Fewest output pixels per im2col block, so each GEMM stays wide enough to run at speed.
const MIN_PIXEL_BLOCK: usize = 64;

/// Output pixels per pixel unit: the row count of the `gemm` crate's f32 microkernel (AVX2 + FMA).
const PIXEL_PANEL: usize = 16;

/// Images with fewer output pixels than this are batched into one GEMM ([`Split::Images`]).
const BATCH_PIXELS: usize = 128;

/// Most entries of a [`Split::Images`] offset table (4 MiB; ResNet-50's 7x7 3x3 conv needs
/// 0.2 M).
const MAX_GATHER: usize = 1 << 20;

/// What one flop of the depthwise loop costs in flops of the GEMM paths, for the chunk size:
/// `dense_bench` measured the loop at 4-15 GFLOP/s against 80-150 for the GEMM paths.
const DEPTHWISE_FLOP_COST: usize = 8;

/// Output channels per channel unit of a GEMM path.
const CHANNEL_UNIT: usize = 8;

/// Pointwise convolutions with at least this many output channels split channels, even on
/// images with more pixels than channels: each chunk's part of the result is then whole planes,
/// one contiguous run, instead of a slice of every plane. Measured on ResNet-50 on two threads
/// (per-step medians, threads near / far apart): 128->512 at 28x28 0.77 / 1.35 ms by pixels
/// against 0.66 / 0.82-0.88 by channels, 64->256 at 56x56 0.93 / 1.32 against 0.82 / 1.07; the
/// whole model 0.7-1.2 ms faster near and 0.8-3 ms far. Below 256 channels the split loses: a
/// 256->64 layer cannot split into two chunks of [`MIN_CHUNK_CHANNELS`] and ran 0.63 -> 1.19 ms,
/// a 256->128 layer at 56x56 1.18 -> 1.23.
const POINTWISE_CHANNEL_SPLIT: usize = 256;

/// The im2col path splits pixels, even with fewer pixels than channels, from this many panels.
const MIN_IM2COL_PANELS: usize = 8;

/// Fewest output channels per chunk of a GEMM path split by channels: every such chunk repeats
/// the work on the shared operand (the im2col block, or the library's packing of `X`), about as
/// costly as a GEMM over a few channels, so chunks must be wide enough to amortize it.
pub(crate) const MIN_CHUNK_CHANNELS: usize = 64;

/// Fewest output pixels per chunk of a split by pixels (every chunk streams all of `W`).
const MIN_CHUNK_PIXELS: usize = 32;

/// How the parallel dimension of an image is cut into units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Split {
    /// Units of `unit` output pixels (all channels).
    Pixels,
    /// Units of `unit` output channels (all pixels).
    Channels,
    /// Units of one image. Images of few pixels are batched: the im2col blocks of several images
    /// side by side make one GEMM wide enough to run at speed, instead of one small GEMM (and
    /// one packing of `W`) per image.
    Images,
}

thread_local! {
    /// The im2col buffer of this thread.
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// How a convolution is computed (chosen by [`lower_conv`], or forced by [`lower_conv_path`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// 1x1, stride 1, no padding: GEMM on the input directly.
    Pointwise,
    /// One input channel per group: a direct loop.
    Depthwise,
    /// im2col into scratch, then GEMM.
    Im2col,
    /// 3x3 stride 1: Winograd `F(2x2, 3x3)`, 16 GEMMs on transformed tiles (`winograd.rs`).
    Winograd,
}

/// Everything the kernel needs, fixed at build time.
#[derive(Clone, Debug)]
pub(crate) struct ConvPlan {
    n: usize,
    c_in: usize,
    c_out: usize,
    group: usize,
    x_sp: [usize; 3],
    y_sp: [usize; 3],
    k: [usize; 3],
    stride: [usize; 3],
    dil: [usize; 3],
    pad: [usize; 3],
    path: Path,
    split: Split,
    /// Pixels or channels per unit of the parallel dimension.
    unit: usize,
    /// Most pixels per im2col block (a multiple of [`PIXEL_PANEL`]).
    pixel_block: usize,
    /// Images of fewer than [`BATCH_PIXELS`] output pixels ([`Split::Images`], and single images
    /// on the im2col path): the im2col block of one image as offsets into the image, `c_in * p_in`
    /// standing for the padding's zero, `kg x p_out` of them.
    gather: Vec<u32>,
    /// Winograd can compute this convolution (geometry and a constant weight), whether or not
    /// it was chosen.
    winograd_ok: bool,
    x: usize,
    w: usize,
    epi: Vec<EpiStep>,
    out: usize,
}

/// `lo..hi`: the outputs `o < n` whose input index `o * s + off` lies in `0..limit`.
fn valid_range(n: usize, s: usize, off: i64, limit: usize) -> (usize, usize) {
    let s = s as i64;
    let lo = if off >= 0 { 0 } else { (-off + s - 1) / s };
    let hi = if (limit as i64) > off {
        ((limit as i64 - off + s - 1) / s).min(n as i64)
    } else {
        0
    };
    (lo as usize, (hi.max(lo)) as usize)
}

impl ConvPlan {
    /// The path chosen for this convolution.
    #[cfg(test)]
    pub(crate) fn path_kind(&self) -> Path {
        self.path
    }
    /// Whether the im2col blocks are gathered through an offset table (small images).
    #[cfg(test)]
    pub(crate) fn gathers(&self) -> bool {
        !self.gather.is_empty()
    }

    /// The split and the unit chosen for this convolution.
    #[cfg(test)]
    pub(crate) fn split_kind(&self) -> (Split, usize) {
        (self.split, self.unit)
    }
    fn cin_g(&self) -> usize {
        self.c_in / self.group
    }
    fn cout_g(&self) -> usize {
        self.c_out / self.group
    }
    fn kk(&self) -> usize {
        self.k.iter().product()
    }
    fn p_in(&self) -> usize {
        self.x_sp.iter().product()
    }
    fn p_out(&self) -> usize {
        self.y_sp.iter().product()
    }
    /// Pixels or channels of one image along the split.
    fn extent(&self) -> usize {
        match self.split {
            Split::Pixels => self.p_out(),
            Split::Channels => self.c_out,
            Split::Images => 1,
        }
    }
    /// Units of the parallel dimension per image.
    fn dim(&self) -> usize {
        self.extent().div_ceil(self.unit)
    }

    /// Chooses the split and the unit for the path, and the im2col block size.
    fn set_split(&mut self) {
        let (p_out, c_out) = (self.p_out(), self.c_out);
        let panels = p_out.div_ceil(PIXEL_PANEL);
        let kg = (self.cin_g() * self.kk()).max(1);
        self.pixel_block =
            ((SCRATCH_FLOATS / kg).max(MIN_PIXEL_BLOCK) / PIXEL_PANEL).max(1) * PIXEL_PANEL;
        let image = self.c_in * self.p_in();
        let small = self.path != Path::Depthwise
            && self.group == 1
            && p_out < BATCH_PIXELS
            && image < 1 << 24
            && kg * p_out <= MAX_GATHER;
        self.gather = Vec::new();
        if small && (self.n > 1 || self.path == Path::Im2col) {
            // The im2col of an image whose values are their own positions plus one (exact in
            // f32 below 2^24): padding comes out as zero.
            let ids: Vec<f32> = (1..=image).map(|i| i as f32).collect();
            let mut cols = vec![0.0f32; kg * p_out];
            // SAFETY: `ids` holds the `c_in` input planes of one image.
            unsafe { self.im2col(ids.as_ptr(), 0, p_out, p_out, &mut cols) };
            // Every offset is at most `image` (the values are 0 or positions plus one); `image`
            // reads as the padding's zero (`gather_row`).
            self.gather = cols
                .iter()
                .map(|&v| if v == 0.0 { image } else { v as usize - 1 }.min(image) as u32)
                .collect();
        }
        if small && self.n > 1 {
            (self.split, self.unit) = (Split::Images, 1);
            return;
        }
        let pixels = match self.path {
            Path::Depthwise => false,
            Path::Pointwise if self.group == 1 && c_out >= POINTWISE_CHANNEL_SPLIT => false,
            Path::Im2col if self.group == 1 && self.kk() == 1 => p_out >= c_out,
            Path::Pointwise => p_out >= c_out,
            Path::Im2col | Path::Winograd => p_out >= c_out || panels >= MIN_IM2COL_PANELS,
        };
        (self.split, self.unit) = if pixels {
            (Split::Pixels, PIXEL_PANEL)
        } else if self.path == Path::Depthwise {
            (Split::Channels, 1)
        } else {
            (Split::Channels, CHANNEL_UNIT)
        };
    }

    /// Computes units `begin..end` of `n x dim`.
    ///
    /// # Safety
    /// `args` must hold the buffers the plan was built for.
    unsafe fn run(&self, args: &[*mut u8], begin: usize, end: usize) {
        if self.split == Split::Images {
            // SAFETY: forwarded from the caller.
            return unsafe { self.images(args, begin, end.min(self.n)) };
        }
        let (d, extent) = (self.dim(), self.extent());
        for (b, lo, hi) in per_image(begin, end, d) {
            let range = (lo * self.unit, (hi * self.unit).min(extent));
            let (c, p) = match self.split {
                Split::Channels => (range, (0, self.p_out())),
                Split::Pixels | Split::Images => ((0, self.c_out), range),
            };
            // SAFETY: forwarded from the caller.
            unsafe {
                match self.path {
                    Path::Depthwise => self.depthwise(args, b, c),
                    _ => self.gemm_block(args, b, c, p),
                }
            }
        }
    }

    /// Channels `c` times pixels `p` of image `b` through GEMM.
    ///
    /// # Safety
    /// As [`ConvPlan::run`].
    unsafe fn gemm_block(&self, args: &[*mut u8], b: usize, c: (usize, usize), p: (usize, usize)) {
        let (cin_g, cout_g, p_out) = (self.cin_g(), self.cout_g(), self.p_out());
        let kg = cin_g * self.kk();
        let x = args[self.x] as *const f32;
        let w = args[self.w] as *const f32;
        let out = args[self.out] as *mut f32;
        // Even blocks of whole panels (the last may be shorter), at most `pixel_block` long.
        let len = p.1 - p.0;
        let pb = if self.path == Path::Pointwise {
            len
        } else {
            let blocks = len.div_ceil(self.pixel_block).max(1);
            len.div_ceil(blocks).next_multiple_of(PIXEL_PANEL)
        };
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            for g in c.0 / cout_g..c.1.div_ceil(cout_g) {
                let (cl, ch) = (c.0.max(g * cout_g), c.1.min((g + 1) * cout_g));
                let mut q = p.0;
                while q < p.1 {
                    let cols = pb.min(p.1 - q);
                    let x_g = (b * self.c_in + g * cin_g) * self.p_in();
                    let (bp, rsb) = if self.path == Path::Pointwise {
                        // SAFETY: pixel `q` of the group's first channel is inside `X`.
                        (unsafe { x.add(x_g + q) }, self.p_in())
                    } else {
                        if scratch.len() < kg * cols {
                            scratch.resize(kg * cols, 0.0);
                        }
                        let dst = &mut scratch[..kg * cols];
                        // SAFETY: the group's channels of image `b` are inside `X`.
                        unsafe {
                            if self.gather.is_empty() {
                                self.im2col(x.add(x_g), q, cols, cols, dst)
                            } else {
                                self.gather_im2col(x.add(x_g), q, cols, dst)
                            }
                        };
                        (scratch.as_ptr(), cols)
                    };
                    let offset = (b * self.c_out + cl) * p_out + q;
                    // SAFETY: `W` rows `cl..ch` hold `kg` values each, `bp` addresses `kg x
                    // cols` values with row stride `rsb`, and the result block is this chunk's.
                    unsafe {
                        sgemm(
                            ch - cl,
                            kg,
                            cols,
                            1.0,
                            w.add(cl * kg),
                            kg as isize,
                            1,
                            bp,
                            rsb as isize,
                            1,
                            0.0,
                            out.add(offset),
                            p_out as isize,
                            1,
                        );
                    }
                    let block = Block {
                        offset,
                        rows: ch - cl,
                        cols,
                        ld: p_out,
                        ch0: cl,
                        channel_rows: true,
                    };
                    // SAFETY: the block is this chunk's part of the result.
                    unsafe { apply_epilogue(&self.epi, args, out, &block) };
                    q += cols;
                }
            }
        });
    }

    /// Images `b0..b1` (group 1), batched: the im2col blocks of up to [`SCRATCH_FLOATS`] worth
    /// of images side by side (gathered through the plan's offset table: the row walk of
    /// `im2col` costs more than the copy on rows of a few pixels), one GEMM into a scratch
    /// result, then each image's channels copied into the NCHW result and its epilogue applied.
    ///
    /// # Safety
    /// As [`ConvPlan::run`].
    unsafe fn images(&self, args: &[*mut u8], b0: usize, b1: usize) {
        let (p_out, c_out) = (self.p_out(), self.c_out);
        let kg = self.c_in * self.kk();
        let image = self.c_in * self.p_in();
        let x = args[self.x] as *const f32;
        let w = args[self.w] as *const f32;
        let out = args[self.out] as *mut f32;
        let per_group = (SCRATCH_FLOATS / (kg * p_out).max(1)).clamp(1, (b1 - b0).max(1));
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            let mut b = b0;
            while b < b1 {
                let g = per_group.min(b1 - b);
                let cols = g * p_out;
                if scratch.len() < (kg + c_out) * cols {
                    scratch.resize((kg + c_out) * cols, 0.0);
                }
                let (xs, ys) = scratch.split_at_mut(kg * cols);
                for i in 0..g {
                    // SAFETY: image `b + i` is inside `X`.
                    let img = unsafe { std::slice::from_raw_parts(x.add((b + i) * image), image) };
                    for (row, idx) in xs
                        .chunks_exact_mut(cols)
                        .zip(self.gather.chunks_exact(p_out))
                    {
                        gather_row(&mut row[i * p_out..(i + 1) * p_out], idx, img);
                    }
                }
                // SAFETY: `W` is `c_out x kg`, the scratch blocks are `kg x cols` and
                // `c_out x cols`, all row-major.
                unsafe {
                    sgemm(
                        c_out,
                        kg,
                        cols,
                        1.0,
                        w,
                        kg as isize,
                        1,
                        xs.as_ptr(),
                        cols as isize,
                        1,
                        0.0,
                        ys.as_mut_ptr(),
                        cols as isize,
                        1,
                    );
                }
                for i in 0..g {
                    let offset = (b + i) * c_out * p_out;
                    for c in 0..c_out {
                        let src = &ys[c * cols + i * p_out..][..p_out];
                        // SAFETY: image `b + i` is this chunk's part of the result.
                        let dst = unsafe {
                            std::slice::from_raw_parts_mut(out.add(offset + c * p_out), p_out)
                        };
                        dst.copy_from_slice(src);
                    }
                    let block = Block {
                        offset,
                        rows: c_out,
                        cols: p_out,
                        ld: p_out,
                        ch0: 0,
                        channel_rows: true,
                    };
                    // SAFETY: the block is this chunk's part of the result.
                    unsafe { apply_epilogue(&self.epi, args, out, &block) };
                }
                b += g;
            }
        });
    }

    /// [`ConvPlan::im2col`] of one small image (group 1) through the offset table: output
    /// pixels `q..q + cols` into `dst` (`c_in * K` rows of `cols`). On images of a few pixels a
    /// side the row walk of `im2col` copies segments of a few values each; the digits CNN's 4x4
    /// layer ran at 46-53 GFLOP/s with it and 84 with the table.
    ///
    /// # Safety
    /// `x` must hold one image's `c_in` input planes.
    unsafe fn gather_im2col(&self, x: *const f32, q: usize, cols: usize, dst: &mut [f32]) {
        let image = self.c_in * self.p_in();
        // SAFETY: the caller's contract.
        let img = unsafe { std::slice::from_raw_parts(x, image) };
        for (row, idx) in dst
            .chunks_exact_mut(cols)
            .zip(self.gather.chunks_exact(self.p_out()))
        {
            gather_row(row, &idx[q..q + cols], img);
        }
    }

    /// Fills `dst` (`cin_g * K` rows of `cols` values, rows `ld` apart) with the inputs under
    /// output pixels `q..q + cols` of one group; `x` points at the group's first input channel.
    ///
    /// # Safety
    /// `x` must hold `cin_g` input planes.
    unsafe fn im2col(&self, x: *const f32, q: usize, cols: usize, ld: usize, dst: &mut [f32]) {
        let [y0, y1, y2] = self.y_sp;
        let [x0, x1, x2] = self.x_sp;
        let [k0, k1, k2] = self.k;
        let p_in = self.p_in();
        let start = (q % y2, (q / y2) % y1, q / (y1 * y2));
        let mut r = 0;
        for ci in 0..self.cin_g() {
            // SAFETY: channel `ci` of the group is inside `X`.
            let plane = unsafe { std::slice::from_raw_parts(x.add(ci * p_in), p_in) };
            for kd in 0..k0 {
                for kh in 0..k1 {
                    for kw in 0..k2 {
                        let row = &mut dst[r * ld..r * ld + cols];
                        r += 1;
                        // Padding stays zero: one fill of the row instead of a fill of each
                        // segment's margins (a value or two on every output row).
                        row.fill(0.0);
                        let off_w = (kw * self.dil[2]) as i64 - self.pad[2] as i64;
                        let (wlo, whi) = valid_range(y2, self.stride[2], off_w, x2);
                        // The output position of pixel `q`, then stepped row by row (no
                        // division per row: images of a few pixels have rows of a few values).
                        let (mut ow, mut oh, mut od) = start;
                        let mut j = 0;
                        while j < cols {
                            let len = (y2 - ow).min(cols - j);
                            let seg = &mut row[j..j + len];
                            let id = (od * self.stride[0] + kd * self.dil[0]) as i64
                                - self.pad[0] as i64;
                            let ih = (oh * self.stride[1] + kh * self.dil[1]) as i64
                                - self.pad[1] as i64;
                            let inside = od < y0
                                && (0..x0 as i64).contains(&id)
                                && (0..x1 as i64).contains(&ih);
                            if inside {
                                let base = (id as usize * x1 + ih as usize) * x2;
                                let (lo, hi) = (wlo.clamp(ow, ow + len), whi.clamp(ow, ow + len));
                                if hi > lo {
                                    let s = self.stride[2];
                                    let start = (base as i64 + (lo * s) as i64 + off_w) as usize;
                                    let inner = &mut seg[lo - ow..hi - ow];
                                    if s == 1 {
                                        inner.copy_from_slice(&plane[start..start + inner.len()]);
                                    } else {
                                        zip_strided(inner, &plane[start..], s, |v, x| *v = x);
                                    }
                                }
                            }
                            j += len;
                            ow += len;
                            if ow == y2 {
                                ow = 0;
                                oh += 1;
                                if oh == y1 {
                                    oh = 0;
                                    od += 1;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `dst[j] = img[idx[j]]` through an offset table: offset `img.len()` stands for the padding
/// and reads zero.
fn gather_row(dst: &mut [f32], idx: &[u32], img: &[f32]) {
    for (d, &k) in dst.iter_mut().zip(idx) {
        *d = img.get(k as usize).copied().unwrap_or(0.0);
    }
}

/// A per-axis attribute padded to three axes: `default` when empty, else `ns` values >= `min`.
fn axis3(
    graph: &Graph,
    node: NodeId,
    name: &str,
    v: &[i64],
    ns: usize,
    default: usize,
    min: i64,
) -> Result<Vec<usize>, CodegenError> {
    if v.is_empty() {
        return Ok(vec![default; ns]);
    }
    if v.len() != ns || v.iter().any(|&a| a < min || a > i32::MAX as i64) {
        return Err(unsupported(
            graph,
            node,
            format!("{name} {v:?} do not fit {ns} spatial axes"),
        ));
    }
    Ok(v.iter().map(|&a| a as usize).collect())
}

/// Pads a per-axis list to three axes with `fill` in front.
fn pad3(v: &[usize], fill: usize) -> [usize; 3] {
    let mut out = [fill; 3];
    out[3 - v.len()..].copy_from_slice(v);
    out
}

/// The path [`lower_conv`] takes for this convolution.
pub fn conv_path(graph: &Graph, node: NodeId) -> Result<Path, CodegenError> {
    Ok(build_plan(graph, node, &[])?.0.path)
}

/// Lowers `Op::Conv` over 1 to 3 spatial axes.
///
/// Arguments, in order: `X`; `W`; the bias operand when present; the epilogue operands in
/// epilogue order; the result. A `Bias` epilogue is indexed by output channel. The parallel
/// dimension is `N x` units of output pixels or of output channels (see the module doc).
pub fn lower_conv(
    graph: &Graph,
    node: NodeId,
    epilogue: &[Epilogue],
) -> Result<LoweredKernel, CodegenError> {
    lower_conv_path(graph, node, epilogue, None)
}

/// [`lower_conv`] with the path forced (for benchmarks and tests): `Im2col` always applies,
/// `Winograd` wherever it can compute the convolution (even where it does not pay), `Pointwise`
/// and `Depthwise` only where [`lower_conv`] would choose them.
pub fn lower_conv_path(
    graph: &Graph,
    node: NodeId,
    epilogue: &[Epilogue],
    path: Option<Path>,
) -> Result<LoweredKernel, CodegenError> {
    let (mut plan, mut args, op) = build_plan(graph, node, epilogue)?;
    if let Some(p) = path.filter(|&p| p != plan.path) {
        let forced_winograd = p == Path::Winograd && plan.winograd_ok;
        if p != Path::Im2col && !forced_winograd {
            return Err(unsupported(
                graph,
                node,
                format!("the {p:?} path does not apply"),
            ));
        }
        plan.path = p;
        plan.set_split();
    }
    if plan.path == Path::Winograd {
        let w = graph
            .const_data(operand(graph, node, 1)?)
            .and_then(|t| t.as_f32())
            .ok_or_else(|| unsupported(graph, node, "the weight is not a constant"))?;
        args[plan.w] = Arg::Packed(winograd::transform_weights(w, plan.c_out, plan.c_in));
        let wino = WinoPlan {
            n: plan.n,
            c_in: plan.c_in,
            c_out: plan.c_out,
            x_hw: [plan.x_sp[1], plan.x_sp[2]],
            y_hw: [plan.y_sp[1], plan.y_sp[2]],
            pad: [plan.pad[1], plan.pad[2]],
            x: plan.x,
            u: plan.w,
            out: plan.out,
            epi: plan.epi,
        };
        return Ok(wino.lower(args, op));
    }
    let work = plan.n * plan.dim();
    let flops_per_unit = match plan.split {
        Split::Channels => 2 * plan.cin_g() * plan.kk() * plan.p_out() * plan.unit,
        Split::Pixels => 2 * plan.cin_g() * plan.kk() * plan.c_out * plan.unit,
        Split::Images => 2 * plan.cin_g() * plan.kk() * plan.c_out * plan.p_out(),
    };
    // The depthwise loop runs near a tenth of the GEMM's speed, so a chunk needs fewer flops
    // for the same time.
    let flops_per_unit = match plan.path {
        Path::Depthwise => flops_per_unit * DEPTHWISE_FLOP_COST,
        _ => flops_per_unit,
    };
    let min_units = match (plan.split, plan.path) {
        (_, Path::Depthwise) | (Split::Images, _) => 1,
        (Split::Channels, _) => MIN_CHUNK_CHANNELS / plan.unit,
        (Split::Pixels, _) => MIN_CHUNK_PIXELS / plan.unit,
    };
    let grain = grain_for(flops_per_unit, work)
        .max(min_units)
        .min(work.max(1));
    Ok(LoweredKernel {
        kernel: Kernel::Host(Box::new(move |args: &[*mut u8], begin, end| {
            // SAFETY: the runtime passes the buffers of `args` in ABI order, sized from the
            // graph's types, and gives each thread a disjoint range.
            unsafe { plan.run(args, begin, end) }
        })),
        args,
        work,
        grain,
        op,
        layout: "dense".to_string(),
    })
}

/// Checks the node and builds the plan, the arguments and the op name.
pub(crate) fn build_plan(
    graph: &Graph,
    node: NodeId,
    epilogue: &[Epilogue],
) -> Result<(ConvPlan, Vec<Arg>, String), CodegenError> {
    let Op::Conv {
        auto_pad,
        dilations,
        group,
        kernel_shape,
        pads,
        strides,
    } = &graph.node(node).op
    else {
        return Err(unsupported(graph, node, "not a convolution"));
    };
    let xv = operand(graph, node, 0)?;
    let wv = operand(graph, node, 1)?;
    let bv = graph.node(node).inputs.get(2).copied().flatten();
    let yv = result(graph, node)?;
    let (sx, sw, sy) = (
        f32_shape(graph, node, xv)?,
        f32_shape(graph, node, wv)?,
        f32_shape(graph, node, yv)?,
    );
    let r = sx.len();
    if !(3..=5).contains(&r) || sw.len() != r || sy.len() != r {
        return Err(unsupported(
            graph,
            node,
            format!("shapes {sx:?}, {sw:?}, {sy:?} (1 to 3 spatial axes are lowered)"),
        ));
    }
    let ns = r - 2;
    let (n, c_in, c_out) = (sx[0], sx[1], sw[0]);
    let g = usize::try_from(*group).unwrap_or(0);
    let kernel = &sw[2..];
    if g == 0 || !c_in.is_multiple_of(g) || sw[1] * g != c_in || !c_out.is_multiple_of(g) {
        return Err(unsupported(
            graph,
            node,
            format!("weight shape {sw:?} does not fit {c_in} input channels in {group} groups"),
        ));
    }
    if !kernel_shape.is_empty()
        && kernel_shape
            .iter()
            .map(|&k| k as usize)
            .ne(kernel.iter().copied())
    {
        return Err(unsupported(
            graph,
            node,
            format!("kernel_shape {kernel_shape:?} differs from weight shape {sw:?}"),
        ));
    }
    let dil = axis3(graph, node, "dilations", dilations, ns, 1, 1)?;
    let st = axis3(graph, node, "strides", strides, ns, 1, 1)?;
    let p = axis3(graph, node, "pads", pads, 2 * ns, 0, 0)?;
    let mut pad = vec![0usize; ns];
    let mut pad_end = vec![0usize; ns];
    let mut ys = vec![0usize; ns];
    for i in 0..ns {
        let w = resolve_window(
            sx[2 + i],
            kernel[i] as i64,
            st[i] as i64,
            dil[i] as i64,
            (p[i] as i64, p[ns + i] as i64),
            auto_pad,
            false,
        )
        .ok_or_else(|| unsupported(graph, node, format!("auto_pad `{auto_pad}`")))?;
        if w.out == 0 {
            return Err(unsupported(
                graph,
                node,
                format!("kernel {kernel:?} does not fit input {sx:?}"),
            ));
        }
        pad[i] = w.pad_begin;
        pad_end[i] = w.pad_end;
        ys[i] = w.out;
    }
    let want: Vec<usize> = [n, c_out].into_iter().chain(ys.iter().copied()).collect();
    if want != sy {
        return Err(unsupported(
            graph,
            node,
            format!("result shape {sy:?}, expected {want:?}"),
        ));
    }
    let mut args = vec![Arg::Value(xv), Arg::Value(wv)];
    let mut epi = Vec::new();
    let mut op = String::from("conv");
    if let Some(bv) = bv {
        let (steps, _) = build_epilogue(graph, node, &[Epilogue::Bias(bv)], &sy, c_out, &mut args)?;
        epi.extend(steps);
    }
    let (steps, suffix) = build_epilogue(graph, node, epilogue, &sy, c_out, &mut args)?;
    epi.extend(steps);
    op.push_str(&suffix);
    args.push(Arg::Value(yv));
    let k3 = pad3(kernel, 1);
    let kk: usize = k3.iter().product();
    let pointwise =
        kk == 1 && st.iter().all(|&s| s == 1) && pad.iter().chain(&pad_end).all(|&q| q == 0);
    // Batches of small images keep im2col: it batches them into one GEMM (`Split::Images`),
    // where Winograd would run GEMMs a few tiles wide per image.
    let small_images = n > 1 && ys.iter().product::<usize>() < BATCH_PIXELS;
    let winograd_ok = winograd::applies(kernel, &st, &dil, g)
        && graph.const_data(wv).is_some_and(|t| t.as_f32().is_some());
    let winograd = winograd_ok && winograd::pays(c_in, c_out, &ys) && !small_images;
    let path = if g == c_in && g > 1 {
        Path::Depthwise
    } else if pointwise {
        Path::Pointwise
    } else if winograd {
        Path::Winograd
    } else {
        Path::Im2col
    };
    let mut plan = ConvPlan {
        n,
        c_in,
        c_out,
        group: g,
        x_sp: pad3(&sx[2..], 1),
        y_sp: pad3(&ys, 1),
        k: k3,
        stride: pad3(&st, 1),
        dil: pad3(&dil, 1),
        pad: pad3(&pad, 0),
        path,
        split: Split::Pixels,
        unit: 1,
        pixel_block: PIXEL_PANEL,
        gather: Vec::new(),
        winograd_ok,
        x: 0,
        w: 1,
        epi,
        out: args.len() - 1,
    };
    plan.set_split();
    Ok((plan, args, op))
}
