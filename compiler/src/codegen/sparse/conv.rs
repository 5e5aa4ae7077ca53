//! Lowering of one `Conv` node (group 1, one or two spatial axes) whose weight is packed as CSR
//! ([`lower_sparse_conv`]): a host kernel that calls the channel-major sparse kernel emitted by
//! `spconv.rs` on each image's input plane, after a step that prepares the planes when the
//! input cannot be read directly.
//!
//! NCHW makes the spatial axis the dense one: per image, `Y[co, p] = sum_k W[co, k] X'[k, p]`.
//! Every nonzero `(ci, kh, kw)` becomes one element offset into a prepared plane, so that output
//! pixel `(oh, ow)` reads the plane at `offset + oh * wq + ow`:
//! - stride 1 without padding (1x1 convolutions among them): the plane is the input image
//!   itself, nothing is copied;
//! - otherwise the padded input is split into `stride_h x stride_w` *phase planes* (phase
//!   `(a, c)` holds padded rows `a, a + s_h, ...` and columns `c, c + s_w, ...`), only the
//!   phases some nonzero reads, each `hq x wq` with `hq = Ho + max (kh * d_h) / s_h` (same for
//!   the width). A stride-1 padded convolution has one phase, the padded image; a 1x1 stride-2
//!   one has one phase, the subsampled image; a 3x3 stride-2 one four phases that together hold
//!   about the padded input once (no im2col blow-up). A step before the convolution writes the
//!   planes of every image into a temporary, one input channel per work unit, which every
//!   thread of the convolution then reads (a plane per thread would repeat the copy on each).
//!
//! When the plane's row is as wide as the output (`wq == Wo`, e.g. every 1x1 convolution), the
//! output grid is one row of `Ho * Wo` pixels; else it is `Ho` rows of `Wo` pixels read with row
//! stride `wq`. The grid is walked in blocks whose slice of the plane (all input channels) stays
//! in L2 while every output channel of the call reads it.
//!
//! The parallel dimension is `N x` units of output channels balanced by nonzero count, or, when
//! an image's plane outweighs the packed weight (early layers: large planes, few nonzeros), `N x`
//! grid blocks x channel units (*block-major*), so the pool's contiguous chunks split the grid
//! and each thread reads only its part of the plane instead of all of it. ResNet-50 at 90%, 2
//! threads: 24.1-26.5 -> 19.8-21.2 ms (best of 30, three interleaved pairs); 1 thread unchanged.

use super::emit::{f32s, u32s, Blob};
use super::spconv::{emit, ConvKernelSpec, FIRST_EPI_ARG};
use super::{balance, Packing};
use crate::codegen::dense::EpiStep;
use crate::codegen::dense::{build_epilogue, f32_shape, grain_for, operand, result, unsupported};
use crate::codegen::jit::Jit;
use crate::codegen::strided::zip_strided;
use crate::codegen::{Arg, CodegenError, Epilogue, LoweredKernel};
use sparsec_ir::shape::resolve_window;
use sparsec_ir::{Graph, NodeId, Op, Tensor, TensorData};
use sparsec_runtime::{Kernel, KernelFn};

/// Floats of the plane a block of the output grid may read (512 KiB of the 1 MiB L2 of one core
/// here). ResNet-50 at 90% zeros, 1 thread, five interleaved rounds: 192 KiB 32.1 ms, 384 KiB
/// 31.8, 512 KiB 31.3-31.5, 768 KiB 31.8, the whole plane 31.7 (fewer blocks stream the weight
/// fewer times; more plane than L2 holds spills it).
pub(super) const BLOCK_FLOATS: usize = 128 * 1024;

/// Work units per image (fewer when there are fewer output channels).
const UNITS_PER_IMAGE: u64 = 32;

/// Fewest independent accumulators of a tile (FMA latency 4 x 2 pipes), where the grid allows.
const MIN_CHAINS: usize = 8;

/// Most accumulators of a tile (16 registers: the accumulators and the two nonzeros' broadcast
/// weights; the FMAs read `X` from memory). ResNet-50 at 90% zeros, 1 thread, two runs of
/// interleaved rounds: 14 ran 31.9-32.0 ms against 32.3-32.6 for 12 (with the Cranelift FMA
/// patch; without it, 14 spilled and ran 35.1 ms against 33.7).
const MAX_ACCS: usize = 14;

/// Most accumulators of a tile that covers the whole grid. Small grids then read each nonzero
/// once per channel instead of once per tile: ResNet-50's 7x7 3x3 512>512 conv ran 9% faster
/// and its 49-pixel 1x1 2048>512 10% (one tile of 14 and 13 accumulators instead of two of 8
/// and 7).
const WHOLE_GRID_ACCS: usize = 14;

/// The geometry of a convolution as the kernel sees it (spatial axes padded to two).
#[derive(Clone, Debug)]
pub(super) struct Geometry {
    /// Images.
    pub n: usize,
    /// Input channels.
    pub cin: usize,
    /// Output channels.
    pub cout: usize,
    /// Input height and width.
    pub hw: [usize; 2],
    /// Output height and width.
    pub out: [usize; 2],
    /// Kernel height and width.
    pub k: [usize; 2],
    /// Strides.
    pub s: [usize; 2],
    /// Dilations.
    pub d: [usize; 2],
    /// Padding at the start of each axis.
    pub pad: [usize; 2],
    /// Used phases `(a, c)`, in plane order; empty when the input is read directly.
    pub phases: Vec<(usize, usize)>,
    /// Rows and columns of each phase plane (of the input when read directly).
    pub q: [usize; 2],
}

impl Geometry {
    /// Whether the kernel reads the input image itself.
    fn direct(&self) -> bool {
        self.phases.is_empty()
    }

    /// Phase planes per input channel.
    fn nphases(&self) -> usize {
        self.phases.len().max(1)
    }

    /// Floats of one image's plane.
    pub(super) fn plane_len(&self) -> usize {
        self.cin * self.nphases() * self.q[0] * self.q[1]
    }

    /// Element offset in the plane of weight column `col` (`ci * kh * kw + ...`).
    fn offset(&self, col: usize) -> usize {
        let kk = self.k[0] * self.k[1];
        let (ci, kh, kw) = (col / kk, col % kk / self.k[1], col % self.k[1]);
        let (eh, ew) = (kh * self.d[0], kw * self.d[1]);
        let phase = if self.direct() {
            0
        } else {
            let key = (eh % self.s[0], ew % self.s[1]);
            self.phases.iter().position(|&p| p == key).unwrap_or(0)
        };
        ((ci * self.nphases() + phase) * self.q[0] + eh / self.s[0]) * self.q[1] + ew / self.s[1]
    }

    /// The columns of each phase row that come from the input, as `[first, end, x0]`: columns
    /// `first..end` of the row read input columns `x0, x0 + s_w, ...`, the rest are padding.
    /// They are the same for every row, so [`Geometry::fill_channel`] takes them precomputed
    /// instead of dividing on every row (ResNet-50's 7x7 phase rows are 8 floats long).
    pub(super) fn phase_columns(&self) -> Vec<[usize; 3]> {
        let w = self.hw[1];
        let wq = self.q[1];
        self.phases
            .iter()
            .map(|&(_, c)| {
                // Columns j with 0 <= j * s + c - pad < w.
                let first = self.pad[1].saturating_sub(c).div_ceil(self.s[1]).min(wq);
                let end = ((w + self.pad[1]).saturating_sub(c))
                    .div_ceil(self.s[1])
                    .clamp(first, wq);
                let x0 = (first * self.s[1] + c).saturating_sub(self.pad[1]);
                [first, end, x0]
            })
            .collect()
    }

    /// Fills `dst` (`nphases x hq x wq` floats) with the phase planes of one input channel
    /// `src` (`H x W`), given the phases' [`Geometry::phase_columns`].
    pub(super) fn fill_channel(&self, cols: &[[usize; 3]], src: &[f32], dst: &mut [f32]) {
        let [h, w] = self.hw;
        let [hq, wq] = self.q;
        // One fill of the whole channel, then only the rows' input columns: ResNet-50's 7x7
        // phase rows are 8 floats, and per-row fills of their one- or two-float margins cost
        // more than the copies.
        dst.fill(0.0);
        let planes = dst.chunks_exact_mut(hq * wq);
        for ((&(a, _), &[first, end, x0]), plane) in self.phases.iter().zip(cols).zip(planes) {
            if end == first {
                continue;
            }
            for (i, row) in plane.chunks_exact_mut(wq).enumerate() {
                let yy = (i * self.s[0] + a).wrapping_sub(self.pad[0]);
                if yy >= h {
                    continue;
                }
                let srow = &src[yy * w + x0..(yy + 1) * w];
                if self.s[1] == 1 {
                    row[first..end].copy_from_slice(&srow[..end - first]);
                } else {
                    zip_strided(&mut row[first..end], srow, self.s[1], |v, x| *v = x);
                }
            }
        }
    }
}

/// The output grid and how the kernel tiles it.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Tiling {
    /// Grid rows and columns.
    pub grid: [usize; 2],
    /// Rows per tile.
    pub r: usize,
    /// Column starts of the accumulators in a tile.
    pub cols: Vec<usize>,
    /// Lanes of each accumulator: 1 (`f32`), 4 (`f32x4`) or 8 (`f32x8`).
    pub lanes: usize,
    /// Columns per tile.
    pub width: usize,
}

/// Rows per tile for `per_row` accumulators per row: enough rows for [`MIN_CHAINS`] independent
/// accumulators (at most [`MAX_ACCS`]), recomputing the fewest rows of `rows` (the last tile is
/// shifted back), more rows on a tie.
fn rows_per_tile(rows: usize, per_row: usize) -> usize {
    let most = (MAX_ACCS / per_row).clamp(1, rows);
    let least = MIN_CHAINS.div_ceil(per_row).clamp(1, most);
    (least..=most)
        .rev()
        .min_by_key(|&r| rows.div_ceil(r) * r)
        .unwrap_or(1)
}

/// Chooses the tile for a grid of `rows x cols` pixels with accumulators of at most `lanes`
/// lanes (4, or 8 where the JIT has `f32x8`; rows narrower than the lanes take fewer).
pub(super) fn tiling(rows: usize, cols: usize, lanes: usize) -> Tiling {
    if cols < 4 {
        let r = rows_per_tile(rows, cols);
        return Tiling {
            grid: [rows, cols],
            r,
            cols: (0..cols).collect(),
            lanes: 1,
            width: cols,
        };
    }
    let l = if lanes >= 8 && cols >= 8 { 8 } else { 4 };
    let nv = cols.div_ceil(l);
    let whole = nv * rows <= WHOLE_GRID_ACCS;
    if nv <= MAX_ACCS || whole {
        // Whole rows: vectors at 0, l, ..., the last one ending at the row's end; the whole grid
        // in one tile when it is small, so every nonzero is read once per channel.
        let mut starts: Vec<usize> = (0..nv - 1).map(|v| l * v).collect();
        starts.push(cols - l);
        return Tiling {
            grid: [rows, cols],
            r: if whole { rows } else { rows_per_tile(rows, nv) },
            cols: starts,
            lanes: l,
            width: cols,
        };
    }
    // Wide rows: T vectors per tile, T in 6..=10 wasting the fewest recomputed vectors.
    let t = (6..=10)
        .rev()
        .min_by_key(|&t| nv.div_ceil(t) * t)
        .unwrap_or(8);
    Tiling {
        grid: [rows, cols],
        r: 1,
        cols: (0..t).map(|v| l * v).collect(),
        lanes: l,
        width: l * t,
    }
}

/// The grid's tiling and the row strides of the plane and of the output: one long row when the
/// plane's rows are as wide as the output's.
pub(super) fn grid(g: &Geometry, lanes: usize) -> (Tiling, usize, usize) {
    let grid_len = g.out[0] * g.out[1];
    if g.q[1] == g.out[1] {
        (tiling(1, grid_len, lanes), grid_len, grid_len)
    } else {
        (tiling(g.out[0], g.out[1], lanes), g.q[1], g.out[1])
    }
}

/// The blocks `[r0, r1, c0, c1]` of the grid, each at least one tile large, whose plane slice
/// is at most about [`BLOCK_FLOATS`].
pub(super) fn blocks(g: &Geometry, t: &Tiling, wx: usize) -> Vec<[i64; 4]> {
    let per_chan = g.cin * g.nphases();
    let [rows, cols] = t.grid;
    if rows > 1 || cols <= t.width {
        // Whole tiles of rows, so blocks do not recompute overlapping rows.
        let most = BLOCK_FLOATS / (per_chan * wx).max(1) / t.r;
        even_spans(rows, t.r, most)
            .map(|(r0, r1)| [r0 as i64, r1 as i64, 0, cols as i64])
            .collect()
    } else {
        let most = BLOCK_FLOATS / per_chan.max(1) / t.width;
        even_spans(cols, t.width, most)
            .map(|(c0, c1)| [0, 1, c0 as i64, c1 as i64])
            .collect()
    }
}

/// Cuts `0..len` into the fewest spans of at most `most` steps of `step` (at least one), all of
/// about the same size (block-major work hands each thread a contiguous run of blocks, so one
/// small last block would leave one thread with more of the grid). Boundaries fall on whole
/// steps from the start; the last span is shifted back to be at least one step long.
fn even_spans(len: usize, step: usize, most: usize) -> impl Iterator<Item = (usize, usize)> {
    let steps = len.div_ceil(step.max(1));
    let n = steps.div_ceil(most.max(1)).max(1);
    let at = move |i: usize| (i * steps / n * step).min(len);
    (0..n).map(move |i| {
        let end = at(i + 1);
        (at(i).min(end.saturating_sub(step)), end)
    })
}

/// Everything the host kernel needs at run time.
struct ConvRun {
    geo: Geometry,
    /// First output channel of each unit (`units + 1` entries).
    units: Vec<u32>,
    /// Grid blocks.
    blocks: Vec<[i64; 4]>,
    /// Whether the units of an image are blocks x channel units (else channel units).
    block_major: bool,
    /// The JIT kernel.
    f: KernelFn,
    /// Argument indices: `X`, blob, result.
    x: usize,
    blob: usize,
    out: usize,
    /// The epilogue's operands as `(kernel argument index, per-image tensor)`.
    epi_args: Vec<(usize, bool)>,
}

impl ConvRun {
    /// Units per image: channel units, times the grid blocks when the work is block-major.
    fn per_image(&self) -> usize {
        let nu = self.units.len() - 1;
        if self.block_major {
            nu * self.blocks.len()
        } else {
            nu
        }
    }

    /// Computes units `begin..end` of `N x per_image`: per image either channel units, each
    /// over every grid block, or (block-major) blocks x channel units, so that contiguous chunks
    /// of the range split the grid between threads and each reads only its part of the plane.
    ///
    /// # Safety
    /// `args` must be the kernel's buffers in ABI order, sized from the graph's types.
    unsafe fn run(&self, args: &[*mut u8], begin: usize, end: usize) {
        let nu = self.units.len() - 1;
        let image_units = self.per_image();
        let g = &self.geo;
        let in_img = g.cin * g.hw[0] * g.hw[1];
        let out_img = g.cout * g.out[0] * g.out[1];
        let plane_img = if g.direct() { in_img } else { g.plane_len() };
        let mut jargs: Vec<*mut u8> = Vec::with_capacity(FIRST_EPI_ARG + self.epi_args.len());
        let mut w = begin;
        while w < end {
            let b = w / image_units;
            let (blocks, u0) = if self.block_major {
                let blk = (w % image_units) / nu;
                (&self.blocks[blk..blk + 1], w % nu)
            } else {
                (&self.blocks[..], w % image_units)
            };
            let u1 = (u0 + end - w).min(nu);
            w += u1 - u0;
            let (co0, co1) = (self.units[u0] as usize, self.units[u1] as usize);
            // SAFETY: image `b` is inside the result.
            let y = unsafe { (args[self.out] as *mut f32).add(b * out_img) };
            // The image's plane: the input itself, or its part of the planes step's result.
            // SAFETY: argument `x` holds `N` planes of `plane_img` floats.
            let plane = unsafe { (args[self.x] as *mut f32).add(b * plane_img) };
            jargs.clear();
            jargs.extend([plane as *mut u8, args[self.blob], y as *mut u8]);
            jargs.resize(FIRST_EPI_ARG, std::ptr::null_mut());
            for &(k, per_image) in &self.epi_args {
                let p = args[k] as *mut f32;
                // SAFETY: an added tensor has the result's shape, so image `b` is inside it.
                jargs.push(if per_image {
                    unsafe { p.add(b * out_img) as *mut u8 }
                } else {
                    p as *mut u8
                });
            }
            for blk in blocks {
                jargs[3] = blk.as_ptr() as *mut u8;
                // SAFETY: the plane holds what the offsets address for every pixel of the grid,
                // the block lies inside the grid, and channels `co0..co1` of image `b` in the
                // block are this call's part of the result.
                unsafe { (self.f)(jargs.as_ptr(), co0, co1) };
            }
        }
    }
}

/// The step before a padded or strided sparse convolution: writes every image's phase planes
/// into a buffer of `N x plane_len` floats that all threads of the convolution then read (each
/// thread preparing its own copy would repeat the copy on every thread). Its parallel dimension
/// is `N x Cin`, one input channel per unit.
struct PlaneFill {
    geo: Geometry,
    /// The phases' [`Geometry::phase_columns`].
    cols: Vec<[usize; 3]>,
}

impl PlaneFill {
    /// Fills the planes of units `begin..end`; `args = [X, planes]`.
    ///
    /// # Safety
    /// `X` must hold `N x Cin x H x W` floats and `planes` `N x plane_len`.
    unsafe fn run(&self, args: &[*mut u8], begin: usize, end: usize) {
        let g = &self.geo;
        let (hw, per) = (g.hw[0] * g.hw[1], g.nphases() * g.q[0] * g.q[1]);
        for u in begin..end.min(g.n * g.cin) {
            // SAFETY: unit `u` is channel `u % cin` of image `u / cin`, whose input plane and
            // phase planes lie inside the buffers; units write disjoint phase planes.
            let (src, dst) = unsafe {
                (
                    std::slice::from_raw_parts((args[0] as *const f32).add(u * hw), hw),
                    std::slice::from_raw_parts_mut((args[1] as *mut f32).add(u * per), per),
                )
            };
            g.fill_channel(&self.cols, src, dst);
        }
    }
}

/// Reads the node's attributes into a [`Geometry`] (phases and plane sizes included).
pub(super) fn geometry(graph: &Graph, node: NodeId) -> Result<Geometry, CodegenError> {
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
    let sx = f32_shape(graph, node, operand(graph, node, 0)?)?;
    let sw = f32_shape(graph, node, operand(graph, node, 1)?)?;
    let sy = f32_shape(graph, node, result(graph, node)?)?;
    let r = sx.len();
    if !(3..=4).contains(&r) || sw.len() != r || sy.len() != r {
        return Err(unsupported(
            graph,
            node,
            format!("shapes {sx:?}, {sw:?}, {sy:?} (the sparse path lowers 1 or 2 spatial axes)"),
        ));
    }
    if *group != 1 || sw[1] != sx[1] {
        return Err(unsupported(
            graph,
            node,
            format!("group {group} (the sparse path lowers group 1)"),
        ));
    }
    let ns = r - 2;
    let kern = &sw[2..];
    if !kernel_shape.is_empty()
        && kernel_shape
            .iter()
            .map(|&k| k as usize)
            .ne(kern.iter().copied())
    {
        return Err(unsupported(
            graph,
            node,
            format!("kernel_shape {kernel_shape:?} differs from weight shape {sw:?}"),
        ));
    }
    let attr = |v: &[i64], i: usize, default: i64| v.get(i).copied().unwrap_or(default);
    let (mut out, mut pad) = ([1usize; 2], [0usize; 2]);
    let (mut k, mut s, mut d, mut hw) = ([1usize; 2], [1usize; 2], [1usize; 2], [1usize; 2]);
    for i in 0..ns {
        let a = 2 - ns + i;
        let (st, dl) = (attr(strides, i, 1), attr(dilations, i, 1));
        let p = (attr(pads, i, 0), attr(pads, ns + i, 0));
        let w = resolve_window(sx[2 + i], kern[i] as i64, st, dl, p, auto_pad, false)
            .filter(|w| w.out > 0)
            .ok_or_else(|| {
                unsupported(
                    graph,
                    node,
                    format!("window of axis {i} (strides {strides:?}, pads {pads:?}, dilations {dilations:?}, auto_pad `{auto_pad}`)"),
                )
            })?;
        (out[a], pad[a], k[a], s[a], d[a], hw[a]) = (
            w.out,
            w.pad_begin,
            kern[i],
            st as usize,
            dl as usize,
            sx[2 + i],
        );
    }
    let (n, cin, cout) = (sx[0], sx[1], sw[0]);
    let want: Vec<usize> = [n, cout]
        .into_iter()
        .chain(out[2 - ns..].iter().copied())
        .collect();
    if want != sy {
        return Err(unsupported(
            graph,
            node,
            format!("result shape {sy:?}, expected {want:?}"),
        ));
    }
    let direct = s == [1, 1] && pad == [0, 0];
    let mut phases = Vec::new();
    let q = if direct {
        hw
    } else {
        for kh in 0..k[0] {
            for kw in 0..k[1] {
                let key = ((kh * d[0]) % s[0], (kw * d[1]) % s[1]);
                if !phases.contains(&key) {
                    phases.push(key);
                }
            }
        }
        phases.sort_unstable();
        [
            out[0] + (k[0] - 1) * d[0] / s[0],
            out[1] + (k[1] - 1) * d[1] / s[1],
        ]
    };
    Ok(Geometry {
        n,
        cin,
        cout,
        hw,
        out,
        k,
        s,
        d,
        pad,
        phases,
        q,
    })
}

/// Lowers Conv node `node` (group 1, one or two spatial axes, any stride, padding and dilation;
/// `Unsupported` otherwise) with its weight given as `packing` (rows = output channels, cols =
/// `Cin * kh * kw` in ONNX weight order, i.e. the weight tensor viewed as a matrix) and the fused
/// `epilogue` (bias, residual add, relu/clip/leaky), emitting its code into `jit` (which is
/// finalized). Returns the steps in order: when the input is not read directly, first the
/// planes step (`args = [X, planes]` with `planes` the temporary `temp`, work `N x Cin`), then the
/// convolution (layout `csr-u16` or `csr-u32`).
///
/// Arguments of the convolution: `X` or the planes, the conv's bias when present, the epilogue
/// operands in order, the packed blob, the result. Its parallel dimension is `N x` units of
/// output channels of about equal nonzero count.
pub fn lower_sparse_conv(
    graph: &Graph,
    node: NodeId,
    epilogue: &[Epilogue],
    packing: &Packing,
    jit: &mut Jit,
    temp: usize,
) -> Result<Vec<LoweredKernel>, CodegenError> {
    let Packing::Csr(m) = packing else {
        return Err(unsupported(
            graph,
            node,
            format!("layout {} (the sparse conv lowers CSR)", packing.layout()),
        ));
    };
    let g = geometry(graph, node)?;
    let kk = g.k[0] * g.k[1];
    if m.rows != g.cout || m.cols != g.cin * kk {
        return Err(unsupported(
            graph,
            node,
            format!(
                "packing of {} x {} for a weight of {} x {}",
                m.rows,
                m.cols,
                g.cout,
                g.cin * kk
            ),
        ));
    }
    let grid_len = g.out[0] * g.out[1];
    if g.plane_len().max(g.cin * g.hw[0] * g.hw[1]) >= i32::MAX as usize / 4
        || g.cout.saturating_mul(grid_len) >= i32::MAX as usize / 4
    {
        return Err(unsupported(
            graph,
            node,
            "tensors too large for 32-bit offsets",
        ));
    }
    let xv = operand(graph, node, 0)?;
    let yv = result(graph, node)?;
    let sy = f32_shape(graph, node, yv)?;
    let mut lowered = Vec::new();
    let input = if g.direct() {
        Arg::Value(xv)
    } else {
        let planes = || Arg::Temp {
            id: temp,
            bytes: g.n * g.plane_len() * 4,
        };
        let units = g.n * g.cin;
        let per_unit = g.nphases() * g.q[0] * g.q[1];
        let fill = PlaneFill {
            cols: g.phase_columns(),
            geo: g.clone(),
        };
        lowered.push(LoweredKernel {
            kernel: Kernel::Host(Box::new(move |args: &[*mut u8], begin, end| {
                // SAFETY: the runtime passes `[X, planes]` sized from the graph's types and the
                // temporary's size, and gives each thread a disjoint range.
                unsafe { fill.run(args, begin, end) }
            })),
            args: vec![Arg::Value(xv), planes()],
            work: units,
            grain: (1 << 14) / per_unit.max(1) + 1,
            op: "planes".into(),
            layout: "phases".into(),
        });
        planes()
    };
    let mut args = vec![input];
    let mut epi = Vec::new();
    if let Some(bv) = graph.node(node).inputs.get(2).copied().flatten() {
        let (steps, _) =
            build_epilogue(graph, node, &[Epilogue::Bias(bv)], &sy, g.cout, &mut args)?;
        epi.extend(steps);
    }
    let (steps, suffix) = build_epilogue(graph, node, epilogue, &sy, g.cout, &mut args)?;
    epi.extend(steps);
    // Operands of the epilogue, renumbered to the JIT kernel's argument array.
    let mut epi_args = Vec::new();
    let jit_epi: Vec<EpiStep> = epi
        .iter()
        .map(|s| match *s {
            EpiStep::Bias(k) => {
                epi_args.push((k, false));
                EpiStep::Bias(FIRST_EPI_ARG + epi_args.len() - 1)
            }
            EpiStep::Add(k) => {
                epi_args.push((k, true));
                EpiStep::Add(FIRST_EPI_ARG + epi_args.len() - 1)
            }
            other => other,
        })
        .collect();
    let (t, wx, wy) = grid(&g, jit.vector_lanes());
    // The packed blob: row pointers, plane offsets, values.
    let mut blob = Blob::default();
    let ptr = blob.section(u32s(&m.row_ptr));
    let offsets: Vec<u32> = m
        .col_idx
        .iter()
        .map(|&c| g.offset(c as usize) as u32)
        .collect();
    let offs = blob.section(u32s(&offsets));
    let vals = blob.section(f32s(&m.values));
    let name = &graph.node(node).name;
    blob.check(name).map_err(|e| unsupported(graph, node, e))?;
    let spec = ConvKernelSpec {
        r: t.r,
        cols: t.cols.clone(),
        lanes: t.lanes,
        width: t.width,
        wx,
        wy,
        plane: grid_len,
        ptr,
        offs,
        vals,
        epi: jit_epi,
    };
    let n_args = FIRST_EPI_ARG + epi_args.len();
    let id = jit.define(&format!("spconv:{name}"), |b, p| emit(b, p, &spec, n_args))?;
    jit.finalize()?;
    let f = jit.kernel(id)?;
    let blob_len = blob.bytes.len();
    let blob_t = Tensor::new(vec![blob_len], TensorData::U8(blob.bytes))
        .map_err(|e| unsupported(graph, node, e))?;
    args.push(Arg::Packed(blob_t));
    let blob_arg = args.len() - 1;
    args.push(Arg::Value(yv));
    let out = args.len() - 1;
    // Units of output channels balanced by nonzeros (plus a per-channel overhead).
    let cost = |r: usize| m.row_nnz(r) as u64 + 4;
    let total: u64 = (0..g.cout).map(cost).sum();
    let units = balance(g.cout, total.div_ceil(UNITS_PER_IMAGE), cost);
    let nu = units.len() - 1;
    let blocks = blocks(&g, &t, wx);
    // Block-major when the image's plane outweighs the packed weight (offset and value per
    // nonzero): threads then split the plane rather than each reading all of it.
    let block_major =
        blocks.len() > 1 && g.plane_len().max(g.cin * g.hw[0] * g.hw[1]) > 2 * m.nnz();
    let per_image = if block_major { nu * blocks.len() } else { nu };
    let work = g.n * per_image;
    let flops_per_unit = (2 * m.nnz() * grid_len).div_ceil(per_image.max(1));
    let run = ConvRun {
        block_major,
        blocks,
        geo: g,
        units,
        f,
        x: 0,
        blob: blob_arg,
        out,
        epi_args,
    };
    lowered.push(LoweredKernel {
        kernel: Kernel::Host(Box::new(move |args: &[*mut u8], begin, end| {
            // SAFETY: the runtime passes the buffers of `args` in ABI order, sized from the
            // graph's types, and gives each thread a disjoint range.
            unsafe { run.run(args, begin, end) }
        })),
        args,
        work,
        grain: grain_for(flops_per_unit, work),
        op: format!("conv{suffix}"),
        layout: packing.layout(),
    });
    Ok(lowered)
}
