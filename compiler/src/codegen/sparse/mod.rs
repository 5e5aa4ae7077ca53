//! Sparse-weight x dense-activation products: `Y = X * W^T (+ bias) (+ ReLU)` for a constant
//! sparse `W [rows x cols]` and a dense `X [batch x cols]`, giving `Y [batch x rows]`.
//!
//! - `pack.rs`: the layouts ([`Csr`] with u16/u32 indices, [`Bsr`] with r x c blocks, [`Nm24`]
//!   2:4 compressed) and [`balance`], which cuts rows into work units of equal nonzero count.
//! - [`compile`] turns a [`Packing`] into a Cranelift kernel with the runtime's ABI
//!   (`args = [x or x^T, blob, y]`, `begin..end` = work units) and a [`SparseMatmul`] that owns the
//!   packed blob (unit table, packed weights, bias).
//! - `spmv.rs`: batch 1 (memory bound): data-driven CSR loops (u16 indices, 8 nonzeros per
//!   iteration into 8 accumulators), pattern-baked CSR (straight-line code: column offsets and
//!   value offsets become immediates), BSR (vectorized along the block's rows, or along its
//!   columns for 1 x c blocks) and 2:4.
//! - `spmm.rs`: batch > 1: vectorized along the batch with `f32x4` register tiles
//!   (`vectors x sets` accumulators per output row, FMA with the broadcast weight), reading
//!   the batch-tiled `X^T` (tiles of 16 batch columns) from the [`transpose_kernel`] step; results
//!   are written back in
//!   `[batch x rows]` after the fused epilogue.

mod conv;
mod emit;
mod pack;
pub mod sample;
mod spconv;
mod spmm;
mod spmv;
mod transpose;

#[cfg(test)]
mod conv_tests;
#[cfg(test)]
mod tests;

pub use conv::lower_sparse_conv;
pub use pack::{balance, Bsr, Csr, IndexWidth, Nm24};
pub use transpose::{transpose_kernel, xt_stride};

use super::jit::{Jit, KernelId};
use super::CodegenError;
use emit::{f32s, u32s, Blob};
use sparsec_runtime::{AlignedBuf, Kernel, KernelFn};
use thiserror::Error;

/// Why a sparse packing or kernel could not be built.
#[derive(Debug, Error)]
pub enum SparseError {
    /// The matrix or its shape cannot be packed.
    #[error("{0}")]
    Shape(String),
    /// The matrix does not have the pattern the layout needs (e.g. 2:4).
    #[error("{0}")]
    Pattern(String),
    /// Cranelift failed.
    #[error(transparent)]
    Codegen(#[from] CodegenError),
}

/// A packed weight matrix.
#[derive(Clone, Debug, PartialEq)]
pub enum Packing {
    /// Compressed sparse rows.
    Csr(Csr),
    /// Block-sparse rows.
    Bsr(Bsr),
    /// 2:4 compressed.
    Nm24(Nm24),
}

impl Packing {
    /// Rows (output features) of the matrix.
    pub fn rows(&self) -> usize {
        match self {
            Packing::Csr(m) => m.rows,
            Packing::Bsr(m) => m.rows,
            Packing::Nm24(m) => m.rows,
        }
    }

    /// Columns (the reduction dimension) of the matrix.
    pub fn cols(&self) -> usize {
        match self {
            Packing::Csr(m) => m.cols,
            Packing::Bsr(m) => m.cols,
            Packing::Nm24(m) => m.cols,
        }
    }

    /// Bytes of the packed weights (what a batch-1 product streams).
    pub fn byte_size(&self) -> usize {
        match self {
            Packing::Csr(m) => m.byte_size(),
            Packing::Bsr(m) => m.byte_size(),
            Packing::Nm24(m) => m.byte_size(),
        }
    }

    /// Stored values, explicit zeros of blocks and groups included (the multiply-adds per batch
    /// column).
    pub fn stored(&self) -> usize {
        match self {
            Packing::Csr(m) => m.nnz(),
            Packing::Bsr(m) => m.stored(),
            Packing::Nm24(m) => m.values.len(),
        }
    }

    /// Short layout name for profiles, e.g. `csr-u16`, `bsr4x1`, `2:4`.
    pub fn layout(&self) -> String {
        match self {
            Packing::Csr(m) => format!("csr-{:?}", m.index_width()).to_lowercase(),
            Packing::Bsr(m) => format!("bsr{}x{}", m.r, m.c),
            Packing::Nm24(_) => "2:4".into(),
        }
    }
}

/// How the kernel walks the packing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Data-driven loops over the packed indices.
    Loop,
    /// Pattern-baked straight-line code (CSR only, at most [`BAKED_MAX_NNZ`] nonzeros times
    /// batch tiles).
    Baked,
}

/// Code-size budget of a pattern-baked kernel: nonzeros times batch tiles (one multiply-add
/// each in straight-line code). Cranelift's compile time grows faster than linearly with a
/// function's size, and 12 layers of 50,000 such instructions took minutes to compile.
pub const BAKED_MAX_NNZ: usize = 1 << 13;

/// The straight-line multiply-adds of a pattern-baked kernel for `nnz` nonzeros at `batch` with
/// the default tiling (what [`BAKED_MAX_NNZ`] bounds).
pub fn baked_size(nnz: usize, batch: usize) -> usize {
    let tiles = if batch <= 1 {
        1
    } else {
        xt_stride(batch).div_ceil(4 * MatmulSpec::new(batch).tile_vectors)
    };
    nnz.saturating_mul(tiles)
}

/// What to compute besides the product, and how to tile the batch.
#[derive(Clone, Debug, PartialEq)]
pub struct MatmulSpec {
    /// Rows of `X` and `Y` (batch, or tokens); the dense dimension.
    pub batch: usize,
    /// A bias per output feature (length = rows).
    pub bias: Option<Vec<f32>>,
    /// Apply `max(x, 0)` after the bias.
    pub relu: bool,
    /// Batch > 1: `f32x4` vectors per register tile (batch columns = 4 x this).
    pub tile_vectors: usize,
    /// Batch > 1: independent accumulator sets per tile (consecutive nonzeros alternate).
    pub sets: usize,
}

impl MatmulSpec {
    /// A product at `batch` without bias or activation, with the default tiling (4 vectors of
    /// 4 batch columns = one cache line of the batch-tiled `X^T` per nonzero, two accumulator
    /// sets: 8 independent chains).
    pub fn new(batch: usize) -> MatmulSpec {
        MatmulSpec {
            batch,
            bias: None,
            relu: false,
            tile_vectors: 4,
            sets: 2,
        }
    }
}

/// A compiled sparse product: the kernel and the blob it reads.
///
/// ABI: `args = [x, blob, y]` where `x` is `X [batch x cols]` when `batch == 1`, else
/// the batch-tiled `X^T` (`cols * xt_stride` elements) written by [`transpose_kernel`]; `y` is
/// `Y [batch x rows]`; the
/// parallel dimension is `0..work` units (rows balanced by nonzeros; block rows for BSR).
#[derive(Debug)]
pub struct SparseMatmul {
    /// The kernel in the caller's [`Jit`].
    pub kernel: KernelId,
    /// Unit table, packed weights and bias (64-byte aligned sections).
    pub blob: AlignedBuf,
    /// Number of work units.
    pub work: usize,
    /// Output features.
    pub rows: usize,
    /// Reduction dimension.
    pub cols: usize,
    /// Batch.
    pub batch: usize,
    /// Padded batch of `X^T` when `batch > 1` (its buffer holds `cols * xt_stride` elements; 0
    /// when the kernel reads `X` itself).
    pub xt_stride: usize,
    /// Layout name, e.g. `csr-u16-baked`.
    pub layout: String,
}

/// A compiled product run on the calling thread, for the tuner, the benchmarks and the tests
/// (the engine runs products through its plan): the kernel's entry point, its `X^T` step and
/// the `X^T` buffer, which starts as NaN so a kernel that read an element the step did not write
/// would show it.
pub struct LocalRun<'a> {
    sm: &'a SparseMatmul,
    f: KernelFn,
    t: Kernel,
    xt: Vec<f32>,
}

impl<'a> LocalRun<'a> {
    /// Prepares `sm`, compiled in `jit` (which must be finalized).
    pub fn new(jit: &Jit, sm: &'a SparseMatmul) -> Result<Self, CodegenError> {
        Ok(LocalRun {
            sm,
            f: jit.kernel(sm.kernel)?,
            t: transpose_kernel(sm.batch, sm.cols),
            xt: vec![f32::NAN; sm.cols * sm.xt_stride],
        })
    }

    /// `y = X W^T` (+ the fused bias and activation) for `x` (`batch x cols`) into `y`
    /// (`batch x rows`), in one call of each step.
    pub fn run(&mut self, x: &[f32], y: &mut [f32]) {
        let (cols, work) = (self.sm.cols, self.sm.work);
        self.run_chunks(x, y, &[(0, cols)], &[(0, work)]);
    }

    /// As [`LocalRun::run`], with the `X^T` step called on each of `xt_chunks` (ranges of
    /// `0..cols`) and the kernel on each of `chunks` (ranges of `0..work`), in order.
    ///
    /// # Panics
    /// If `x` or `y` has the wrong length or a chunk lies outside its range.
    pub fn run_chunks(
        &mut self,
        x: &[f32],
        y: &mut [f32],
        xt_chunks: &[(usize, usize)],
        chunks: &[(usize, usize)],
    ) {
        let sm = self.sm;
        assert_eq!(x.len(), sm.batch * sm.cols, "x is batch x cols");
        assert_eq!(y.len(), sm.batch * sm.rows, "y is batch x rows");
        let input = if sm.batch > 1 {
            let args = [x.as_ptr() as *mut u8, self.xt.as_mut_ptr() as *mut u8];
            for &(lo, hi) in xt_chunks {
                assert!(
                    lo <= hi && hi <= sm.cols,
                    "X^T chunk {lo}..{hi} of {}",
                    sm.cols
                );
                // SAFETY: `x` holds `batch x cols` floats and `xt` `cols x xt_stride` (checked
                // above and at construction), the chunk is inside `0..cols`.
                unsafe { self.t.call(&args, lo, hi) };
            }
            self.xt.as_mut_ptr() as *mut u8
        } else {
            x.as_ptr() as *mut u8
        };
        let args = [
            input,
            sm.blob.as_ptr() as *mut u8,
            y.as_mut_ptr() as *mut u8,
        ];
        for &(lo, hi) in chunks {
            assert!(lo <= hi && hi <= sm.work, "chunk {lo}..{hi} of {}", sm.work);
            // SAFETY: the buffers have the sizes the kernel was compiled for (checked above), the
            // kernel only writes `y`, and the chunk is inside `0..work`.
            unsafe { (self.f)(args.as_ptr(), lo, hi) };
        }
    }
}

/// Where the sections of a kernel's blob start (byte offsets).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Sections {
    /// Unit table: `work + 1` first rows (block rows for BSR), `u32`.
    pub units: i64,
    /// Row (block) pointers, `u32`.
    pub ptr: i64,
    /// Column indices (block starts), u16 or u32.
    pub idx: i64,
    /// Values.
    pub vals: i64,
    /// 2:4 metadata bytes.
    pub meta: i64,
    /// Bias, if any.
    pub bias: Option<i64>,
}

/// Target work per unit (nonzeros plus row overhead, times batch tiles), so that there are
/// about 64 units (256 at batch > 1, where a unit's nonzeros should stay in the L2 cache while
/// each batch tile reads them) or more for large matrices and few for small ones.
fn unit_target(total: u64, batch: usize) -> u64 {
    let n = if batch > 1 { 256 } else { 64 };
    (total / n).max(2048)
}

/// Builds the kernel for `packing` (named `name` in errors and profiles) in `jit`.
pub fn compile(
    jit: &mut Jit,
    name: &str,
    packing: &Packing,
    strategy: Strategy,
    spec: &MatmulSpec,
) -> Result<SparseMatmul, SparseError> {
    let (rows, cols) = (packing.rows(), packing.cols());
    if spec.batch == 0 || spec.batch > 1 << 20 {
        return Err(SparseError::Shape(format!(
            "`{name}`: unsupported batch {}",
            spec.batch
        )));
    }
    if spec.batch.saturating_mul(rows).saturating_mul(4) >= i32::MAX as usize
        || cols.saturating_mul(xt_stride(spec.batch)).saturating_mul(4) >= i32::MAX as usize
    {
        return Err(SparseError::Shape(format!(
            "`{name}`: {rows} x {cols} at batch {} is too large",
            spec.batch
        )));
    }
    if spec.tile_vectors == 0 || spec.sets == 0 || spec.tile_vectors * spec.sets > 12 {
        return Err(SparseError::Shape(format!(
            "`{name}`: tiling {} x {} needs 1 to 12 accumulators",
            spec.tile_vectors, spec.sets
        )));
    }
    if let Some(bias) = &spec.bias {
        if bias.len() != rows {
            return Err(SparseError::Shape(format!(
                "`{name}`: bias of length {} for {rows} rows",
                bias.len()
            )));
        }
    }
    let tiles = xt_stride(spec.batch).div_ceil(4 * spec.tile_vectors) as u64;
    let mut blob = Blob::default();
    let mut s = Sections::default();
    let units: Vec<u32>;
    match packing {
        Packing::Csr(m) => {
            let cost = |r: usize| (m.row_nnz(r) as u64 + 4) * tiles;
            let total: u64 = (0..rows).map(cost).sum();
            units = if strategy == Strategy::Baked {
                if baked_size(m.nnz(), spec.batch) > BAKED_MAX_NNZ {
                    return Err(SparseError::Shape(format!(
                        "`{name}`: {} nonzeros at batch {} exceed the pattern-baked budget of {BAKED_MAX_NNZ}",
                        m.nnz(),
                        spec.batch
                    )));
                }
                balance(rows, (total / 16).max(256), cost)
            } else {
                balance(rows, unit_target(total, spec.batch), cost)
            };
            s.units = blob.section(u32s(&units));
            // Batch products read a row of `X^T` per nonzero: scattered, not in column order.
            let scattered = strategy == Strategy::Loop && spec.batch > 1;
            let order = || -> Box<dyn Iterator<Item = usize> + '_> {
                if scattered {
                    Box::new(m.scattered_order())
                } else {
                    Box::new(0..m.nnz())
                }
            };
            if strategy == Strategy::Loop {
                s.ptr = blob.section(u32s(&m.row_ptr));
                let idx = order().map(|q| m.col_idx[q]);
                s.idx = match m.index_width() {
                    IndexWidth::U16 => blob.section_u16(idx.map(|c| c as u16)),
                    IndexWidth::U32 => blob.section(idx.map(u32::to_ne_bytes)),
                };
            }
            s.vals = blob.section(order().map(|q| m.values[q].to_ne_bytes()));
        }
        Packing::Bsr(m) => {
            let per = (m.r * m.c) as u64;
            let cost = |i: usize| {
                ((m.block_ptr[i + 1] - m.block_ptr[i]) as u64 * per + 4 * m.r as u64) * tiles
            };
            let total: u64 = (0..m.block_rows()).map(cost).sum();
            units = balance(m.block_rows(), unit_target(total, spec.batch), cost);
            s.units = blob.section(u32s(&units));
            s.ptr = blob.section(u32s(&m.block_ptr));
            s.idx = match m.index_width() {
                IndexWidth::U16 => blob.section_u16(m.block_col.iter().map(|&c| c as u16)),
                IndexWidth::U32 => blob.section(u32s(&m.block_col)),
            };
            s.vals = blob.section(f32s(&m.values));
        }
        Packing::Nm24(m) => {
            let g = m.groups() as u64;
            units = balance(
                rows,
                unit_target((g + 2) * rows as u64 * tiles, spec.batch),
                |_| (g + 2) * tiles,
            );
            s.units = blob.section(u32s(&units));
            s.vals = blob.section(f32s(&m.values));
            s.meta = blob.section_u8(&m.meta);
        }
    }
    if strategy == Strategy::Baked && !matches!(packing, Packing::Csr(_)) {
        return Err(SparseError::Shape(format!(
            "`{name}`: pattern-baked kernels need a CSR packing, not {}",
            packing.layout()
        )));
    }
    if let Some(bias) = &spec.bias {
        s.bias = Some(blob.section(f32s(bias)));
    }
    blob.check(name)?;
    let kname = format!("sparse:{name}");
    let kernel = match (packing, strategy, spec.batch) {
        (Packing::Csr(m), Strategy::Loop, 1) => {
            jit.define(&kname, |b, p| spmv::csr_loop(b, p, m, &s, spec))?
        }
        (Packing::Csr(m), Strategy::Baked, 1) => {
            jit.define(&kname, |b, p| spmv::csr_baked(b, p, m, &s, &units, spec))?
        }
        (Packing::Bsr(m), _, 1) => jit.define(&kname, |b, p| spmv::bsr(b, p, m, &s, spec))?,
        (Packing::Nm24(m), _, 1) => jit.define(&kname, |b, p| spmv::nm24(b, p, m, &s, spec))?,
        (Packing::Csr(m), Strategy::Loop, _) => {
            let lanes = jit.vector_lanes();
            jit.define(&kname, |b, p| spmm::csr_loop(b, p, m, &s, spec, lanes))?
        }
        (Packing::Csr(m), Strategy::Baked, _) => {
            jit.define(&kname, |b, p| spmm::csr_baked(b, p, m, &s, &units, spec))?
        }
        (Packing::Bsr(m), _, _) => jit.define(&kname, |b, p| spmm::bsr(b, p, m, &s, spec))?,
        (Packing::Nm24(m), _, _) => jit.define(&kname, |b, p| spmm::nm24(b, p, m, &s, spec))?,
    };
    let baked = if strategy == Strategy::Baked {
        "-baked"
    } else {
        ""
    };
    Ok(SparseMatmul {
        kernel,
        blob: AlignedBuf::from_bytes(&blob.bytes),
        work: units.len() - 1,
        rows,
        cols,
        batch: spec.batch,
        xt_stride: if spec.batch > 1 {
            xt_stride(spec.batch)
        } else {
            0
        },
        layout: format!("{}{baked}", packing.layout()),
    })
}
