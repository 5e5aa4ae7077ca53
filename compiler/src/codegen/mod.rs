//! Codegen: turns groups of IR nodes into kernels that follow the runtime's ABI
//! (`sparsec_runtime::kernel`).
//!
//! The lowering (`lower.rs`) walks the graph in topological order and forms *groups*: an anchor node
//! (a Gemm/MatMul/Conv, or an elementwise op) plus an elementwise epilogue chain fused into it
//! (bias, activation, residual add). Each group becomes one [`LoweredKernel`]:
//! - `jit` + `elementwise`: Cranelift-emitted kernels specialized on concrete shapes and strides;
//! - `dense`: Gemm/MatMul/Conv through a dense GEMM library, with the epilogue applied per chunk;
//! - `pool`: f32 2-D max/average pools and global pools as shape-specialized host kernels;
//! - `norm`, `lrn` and `batchnorm`: softmax / layer-norm rows, LRN across channels and unfolded
//!   inference batch normalization as host kernels;
//! - `movement` and `select`: data movement (reshape family, transpose, expand, gather) and
//!   selection (where, is-NaN, boolean logic) of any element type as host kernels over the row
//!   walks of `strided`;
//! - anything else falls back to a host kernel that calls the reference interpreter.

pub mod batchnorm;
pub mod bytes;
pub mod dense;
pub mod elementwise;
pub mod fallback;
pub mod jit;
pub mod layout;
pub mod local;
pub mod lower;
pub mod lrn;
pub mod movement;
pub mod norm;
pub mod pool;
pub mod select;
pub mod sparse;
pub mod strided;
pub mod wide;

use sparsec_ir::{Tensor, ValueId};
use sparsec_runtime::{AlignedBuf, Kernel};
use thiserror::Error;

/// A kernel argument as the lowering sees it; the plan builder maps each to a `BufferRef`.
#[derive(Debug)]
pub enum Arg {
    /// A graph value: graph input, weight, or a node result (intermediate or graph output).
    Value(ValueId),
    /// A constant the kernel owns (for example a weight transposed or packed for the library).
    Packed(Tensor),
    /// Packed bytes the kernel owns (a sparse kernel's blob of packed weights and bias).
    Blob(AlignedBuf),
    /// A scratch buffer internal to one group of steps (e.g. the `X^T` a sparse product reads),
    /// arena-planned like an intermediate; `id` is unique within one lowering.
    Temp {
        /// The buffer's identity within the lowering.
        id: usize,
        /// Its size in bytes.
        bytes: usize,
    },
}

/// One elementwise step applied to a kernel's results before they are stored.
#[derive(Clone, Debug, PartialEq)]
pub enum Epilogue {
    /// Add a per-output-channel bias (a 1-D f32 value of length = channels).
    Bias(ValueId),
    /// Add another tensor of the result's shape (a residual connection).
    AddTensor(ValueId),
    /// `max(x, 0)`.
    Relu,
    /// `min(max(x, lo), hi)`.
    Clip(f32, f32),
    /// `x` where `x >= 0`, else `alpha * x`.
    LeakyRelu(f32),
}

/// A compiled group.
#[derive(Debug)]
pub struct LoweredKernel {
    /// The kernel.
    pub kernel: Kernel,
    /// Its arguments in ABI order: operands first, then results.
    pub args: Vec<Arg>,
    /// Size of the parallel dimension.
    pub work: usize,
    /// Smallest useful chunk of it.
    pub grain: usize,
    /// Op (or fused chain) name for profiles, e.g. `conv+bias+relu`.
    pub op: String,
    /// Weight layout for profiles (`dense`, or the sparse layout, e.g. `csr-u16`).
    pub layout: String,
}

/// Why codegen failed.
#[derive(Debug, Error)]
pub enum CodegenError {
    /// Cranelift rejected a function or the module could not be finalized.
    #[error("jit: {0}")]
    Jit(String),
    /// The group cannot be lowered this way (the caller falls back to another lowering).
    #[error("cannot lower: {0}")]
    Unsupported(String),
}
