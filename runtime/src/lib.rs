//! The thin runtime of sparsec: execution plans, arena, thread pool and kernel ABI (grows with the codegen work).

#![warn(missing_docs)]

pub mod dense;
pub mod kernel;
pub mod plan;

pub use kernel::{HostFn, Kernel, KernelFn};
pub use plan::{BufferRef, ElemType, Step, TensorSpec};
