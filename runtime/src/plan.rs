//! Execution plans: an ordered list of kernel calls over buffers.
//!
//! A plan is built by the compiler for one concrete set of input shapes. Its buffers are graph
//! inputs (provided by the caller), graph outputs (allocated per run), weights (packed weights
//! owned by the plan, the others shared read-only with the compiler's graph) and intermediates,
//! which live at fixed offsets of one arena
//! whose layout the static memory planner computed from their lifetimes.

use crate::kernel::Kernel;

/// Element types the runtime moves around (it never interprets them itself).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElemType {
    /// 32-bit float.
    F32,
    /// 64-bit float.
    F64,
    /// 16-bit float.
    F16,
    /// 64-bit integer.
    I64,
    /// 32-bit integer.
    I32,
    /// 8-bit signed integer.
    I8,
    /// 8-bit unsigned integer.
    U8,
    /// Boolean (one byte).
    Bool,
}

impl ElemType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            ElemType::F64 | ElemType::I64 => 8,
            ElemType::F32 | ElemType::I32 => 4,
            ElemType::F16 => 2,
            ElemType::I8 | ElemType::U8 | ElemType::Bool => 1,
        }
    }

    /// The lowercase name used in messages (`f32`, `i64`, `bool`, ...).
    pub fn name(self) -> &'static str {
        match self {
            ElemType::F32 => "f32",
            ElemType::F64 => "f64",
            ElemType::F16 => "f16",
            ElemType::I64 => "i64",
            ElemType::I32 => "i32",
            ElemType::I8 => "i8",
            ElemType::U8 => "u8",
            ElemType::Bool => "bool",
        }
    }
}

impl std::fmt::Display for ElemType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Formats a type and shape the way error messages show them, e.g. `f32[1,64]` (`f32[]` for a scalar).
pub fn type_string(elem: ElemType, shape: &[usize]) -> String {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("{elem}[{}]", dims.join(","))
}

/// The type and shape of a plan input or output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorSpec {
    /// Name in the source model.
    pub name: String,
    /// Element type.
    pub elem: ElemType,
    /// Concrete shape.
    pub shape: Vec<usize>,
}

impl TensorSpec {
    /// Size in bytes (saturates at `usize::MAX`; plans check [`TensorSpec::checked_bytes`] when built).
    pub fn bytes(&self) -> usize {
        self.checked_bytes().unwrap_or(usize::MAX)
    }

    /// Size in bytes, or `None` when it overflows `usize`.
    pub fn checked_bytes(&self) -> Option<usize> {
        self.shape
            .iter()
            .try_fold(self.elem.size(), |acc, &d| acc.checked_mul(d))
    }

    /// Number of elements (saturating).
    pub fn numel(&self) -> usize {
        self.shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .unwrap_or(usize::MAX)
    }
}

impl std::fmt::Display for TensorSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&type_string(self.elem, &self.shape))
    }
}

/// Where a kernel argument lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BufferRef {
    /// The `k`-th plan input.
    Input(usize),
    /// The `k`-th plan output.
    Output(usize),
    /// The `k`-th weight of the plan.
    Weight(usize),
    /// Bytes `offset..offset + len` of the arena.
    Arena {
        /// Byte offset (aligned to 64).
        offset: usize,
        /// Byte length.
        len: usize,
    },
}

/// One kernel call.
#[derive(Debug)]
pub struct Step {
    /// The kernel.
    pub kernel: Kernel,
    /// Its arguments, operands then results.
    pub args: Vec<BufferRef>,
    /// Size of the parallel dimension (`begin..end` ranges split `0..work`).
    pub work: usize,
    /// Smallest chunk worth giving a thread.
    pub grain: usize,
    /// What it computes, for profiles: node name.
    pub name: String,
    /// Op (or fused chain) name, for profiles.
    pub op: String,
    /// Weight layout, for profiles (`dense`, `csr`, ...).
    pub layout: String,
}
