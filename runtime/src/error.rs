//! The runtime's error type: everything that can go wrong when a plan is built or run.

use thiserror::Error;

/// Why the runtime refused to build or run a plan.
#[derive(Debug, Error)]
pub enum RuntimeError {
    /// The caller passed the wrong number of inputs.
    #[error("expected {expected} inputs, got {got}")]
    InputCount {
        /// Inputs the plan takes.
        expected: usize,
        /// Inputs the caller passed.
        got: usize,
    },
    /// An input does not match the plan's input spec (element type, shape or byte length).
    #[error("input `{name}`: expected {expected}, got {got}")]
    InputMismatch {
        /// The input's name in the source model.
        name: String,
        /// What the plan expects, e.g. `f32[1,64]`.
        expected: String,
        /// What the caller passed.
        got: String,
    },
    /// A step argument points outside the plan's buffers.
    #[error("step `{step}` argument {arg}: {reason}")]
    BadBufferRef {
        /// The step's node name.
        step: String,
        /// Position of the argument in the step's argument list.
        arg: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// An input or output spec of the plan is unusable (its byte size overflows).
    #[error("plan {what} `{name}`: {reason}")]
    BadSpec {
        /// `input` or `output`.
        what: &'static str,
        /// The tensor's name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A buffer handed to the arena planner is malformed.
    #[error("arena buffer {index}: {reason}")]
    BadArenaBuffer {
        /// Index of the buffer in the planner's input.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// Memory for a buffer could not be allocated.
    #[error("cannot allocate {bytes} bytes for {what}")]
    Alloc {
        /// Requested size.
        bytes: usize,
        /// What the memory was for.
        what: String,
    },
    /// A kernel panicked while running a step.
    #[error("step `{step}` ({op}) panicked: {message}")]
    KernelPanic {
        /// The step's node name.
        step: String,
        /// The step's op name.
        op: String,
        /// The panic message, when it was a string.
        message: String,
    },
}
