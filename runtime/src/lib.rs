//! The thin runtime of sparsec: it runs an execution plan of compiled kernels.
//!
//! - [`kernel`]: the kernel ABI (the contract with the compiler's codegen);
//! - [`plan`]: steps and buffer references, the types a plan is made of;
//! - [`exec`]: [`Plan`], which validates a plan and its inputs and runs the steps;
//! - [`arena`]: the static memory planner placing intermediates in one arena;
//! - [`pool`]: the thread pool splitting each step's parallel dimension;
//! - [`placement`]: how far apart the pool's threads are (a measured round trip), which sets how
//!   finely it splits;
//! - [`buffer`]: [`AlignedBuf`], the 64-byte-aligned buffers for weights, arena and outputs, and
//!   [`WeightBuf`], a weight owned by the plan or shared with the compiler's graph;
//! - [`mem`]: resident-memory figures for benchmark reports.
//!
//! The runtime knows nothing about ONNX or the compiler.

#![warn(missing_docs)]

pub mod arena;
pub mod buffer;
pub mod dense;
pub mod error;
pub mod exec;
pub mod kernel;
pub mod mem;
pub mod placement;
pub mod plan;
pub mod pool;

pub use arena::{plan_arena, ArenaLayout, BufferLife};
pub use buffer::{AlignedBuf, WeightBuf, WeightBytes, ALIGN, SHARED_ALIGN};
pub use error::RuntimeError;
pub use exec::{Plan, TensorView};
pub use kernel::{HostFn, Kernel, KernelFn};
pub use mem::{current_rss_bytes, peak_rss_bytes};
pub use placement::{FAR_ROUND_TRIP, ROUND_TRIP_ENV};
pub use plan::{type_string, BufferRef, ElemType, Step, TensorSpec};
pub use pool::{physical_cores, ThreadPool, DEFAULT_SPIN};
