//! `Plan`: a validated execution plan and the code that runs it.
//!
//! [`Plan::new`] checks that every [`BufferRef`] of every step points inside the plan's buffers.
//! [`Plan::run`] validates every input before any kernel runs, allocates the outputs, borrows the
//! plan's arena (one allocation reused across runs; a concurrent run allocates its own), resolves
//! each step's buffer references to addresses and calls the kernel through the thread pool.
//!
//! Contract with the kernels: every address a kernel receives is aligned to
//! [`ALIGN`](crate::buffer::ALIGN) bytes (inputs that are not are copied first), and so are
//! shared weights ([`WeightBuf::Shared`], at least
//! [`SHARED_ALIGN`](crate::buffer::SHARED_ALIGN) bytes, a cache line); kernels never write
//! graph inputs or weights (they are shared, read-only memory), only outputs and arena
//! intermediates; the arena is not cleared between runs, so a kernel must write every intermediate
//! byte it later reads. A step with `work == 0` is skipped.

use crate::buffer::{AlignedBuf, WeightBuf, ALIGN};
use crate::error::RuntimeError;
use crate::plan::{type_string, BufferRef, ElemType, Step, TensorSpec};
use crate::pool::ThreadPool;
use std::any::Any;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Mutex, PoisonError, TryLockError};
use std::time::{Duration, Instant};

/// A borrowed input tensor: element type, shape and raw bytes (native byte order).
#[derive(Clone, Copy, Debug)]
pub struct TensorView<'a> {
    /// Element type.
    pub elem: ElemType,
    /// Shape.
    pub shape: &'a [usize],
    /// The elements' bytes.
    pub data: &'a [u8],
}

impl<'a> TensorView<'a> {
    /// A view of raw bytes.
    pub fn new(elem: ElemType, shape: &'a [usize], data: &'a [u8]) -> Self {
        TensorView { elem, shape, data }
    }

    /// A view of `f32` values.
    pub fn from_f32(shape: &'a [usize], values: &'a [f32]) -> Self {
        // SAFETY: `f32` has no padding and `u8` has alignment 1, so the bytes of `values` form a
        // valid `[u8]` of the same total size, borrowed for the same lifetime.
        let data = unsafe {
            std::slice::from_raw_parts(values.as_ptr().cast::<u8>(), std::mem::size_of_val(values))
        };
        TensorView {
            elem: ElemType::F32,
            shape,
            data,
        }
    }
}

/// A compiled model ready to run: kernel steps, the weights they read, the arena size and the
/// specs of the inputs and outputs.
///
/// The fields are public for inspection; [`Plan::run`] re-checks the buffer references (cheaply)
/// on every run, so changing them cannot make a run touch memory outside the plan's buffers.
pub struct Plan {
    /// Kernel calls in execution order.
    pub steps: Vec<Step>,
    /// Weights (constants, owned by the plan or shared with the compiler's graph), read-only
    /// for kernels.
    pub weights: Vec<WeightBuf>,
    /// Bytes of the arena holding the intermediates.
    pub arena_bytes: usize,
    /// The inputs the caller passes, in order.
    pub inputs: Vec<TensorSpec>,
    /// The outputs a run returns, in order.
    pub outputs: Vec<TensorSpec>,
    /// Whatever must outlive the steps' kernels (for example the JIT module owning their code).
    pub keep_alive: Vec<Box<dyn Any + Send + Sync>>,
    /// The arena reused across runs.
    arena: Mutex<AlignedBuf>,
}

/// Kernel argument addresses shared by the threads of one step.
struct Args<'a>(&'a [*mut u8]);

// SAFETY: the addresses are only handed to kernels, which by the ABI contract write disjoint parts
// of their results from different threads and only read everything else.
unsafe impl Sync for Args<'_> {}

impl Plan {
    /// Builds a plan after checking every step's buffer references: input, output and weight
    /// indices in range, arena ranges inside `arena_bytes` and aligned to 64 bytes, and input and
    /// output sizes that fit in memory. Allocates the arena.
    pub fn new(
        steps: Vec<Step>,
        weights: Vec<AlignedBuf>,
        arena_bytes: usize,
        inputs: Vec<TensorSpec>,
        outputs: Vec<TensorSpec>,
        keep_alive: Vec<Box<dyn Any + Send + Sync>>,
    ) -> Result<Self, RuntimeError> {
        let weights = weights.into_iter().map(WeightBuf::Owned).collect();
        Plan::with_weights(steps, weights, arena_bytes, inputs, outputs, keep_alive)
    }

    /// Like [`Plan::new`], with weights that may share their bytes with their owner (see
    /// [`WeightBuf::shared`]) instead of being copied into the plan.
    pub fn with_weights(
        steps: Vec<Step>,
        weights: Vec<WeightBuf>,
        arena_bytes: usize,
        inputs: Vec<TensorSpec>,
        outputs: Vec<TensorSpec>,
        keep_alive: Vec<Box<dyn Any + Send + Sync>>,
    ) -> Result<Self, RuntimeError> {
        let plan = Plan {
            steps,
            weights,
            arena_bytes,
            inputs,
            outputs,
            keep_alive,
            arena: Mutex::new(AlignedBuf::zeroed(0)),
        };
        plan.validate()?;
        *plan.arena.lock().unwrap_or_else(PoisonError::into_inner) = alloc_arena(arena_bytes)?;
        Ok(plan)
    }

    /// Checks the invariants [`Plan::new`] promises.
    fn validate(&self) -> Result<(), RuntimeError> {
        for (what, specs) in [("input", &self.inputs), ("output", &self.outputs)] {
            for s in specs {
                if s.checked_bytes().is_none_or(|b| b > isize::MAX as usize) {
                    return Err(RuntimeError::BadSpec {
                        what,
                        name: s.name.clone(),
                        reason: format!("{s} is too large"),
                    });
                }
            }
        }
        for step in &self.steps {
            for (arg, r) in step.args.iter().enumerate() {
                let bad = |reason: String| RuntimeError::BadBufferRef {
                    step: step.name.clone(),
                    arg,
                    reason,
                };
                let index_check = |kind: &str, k: usize, n: usize| {
                    if k < n {
                        Ok(())
                    } else {
                        Err(bad(format!("{kind} {k} out of range (the plan has {n})")))
                    }
                };
                match *r {
                    BufferRef::Input(k) => index_check("input", k, self.inputs.len())?,
                    BufferRef::Output(k) => index_check("output", k, self.outputs.len())?,
                    BufferRef::Weight(k) => index_check("weight", k, self.weights.len())?,
                    BufferRef::Arena { offset, len } => {
                        if !offset.is_multiple_of(ALIGN) {
                            return Err(bad(format!(
                                "arena offset {offset} is not a multiple of {ALIGN}"
                            )));
                        }
                        if offset
                            .checked_add(len)
                            .is_none_or(|end| end > self.arena_bytes)
                        {
                            return Err(bad(format!(
                                "arena range {offset}+{len} exceeds the arena of {} bytes",
                                self.arena_bytes
                            )));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Checks the caller's inputs against the plan's input specs.
    fn check_inputs(&self, inputs: &[TensorView]) -> Result<(), RuntimeError> {
        if inputs.len() != self.inputs.len() {
            return Err(RuntimeError::InputCount {
                expected: self.inputs.len(),
                got: inputs.len(),
            });
        }
        for (spec, view) in self.inputs.iter().zip(inputs) {
            let mismatch = |expected: String, got: String| RuntimeError::InputMismatch {
                name: spec.name.clone(),
                expected,
                got,
            };
            if view.elem != spec.elem || view.shape != spec.shape.as_slice() {
                return Err(mismatch(
                    spec.to_string(),
                    type_string(view.elem, view.shape),
                ));
            }
            if view.data.len() != spec.bytes() {
                return Err(mismatch(
                    format!("{} bytes for {spec}", spec.bytes()),
                    format!("{} bytes", view.data.len()),
                ));
            }
        }
        Ok(())
    }

    /// Runs the plan on `inputs` (in the order of [`Plan::inputs`]) and returns the outputs (in
    /// the order of [`Plan::outputs`]). Every input is validated (count, element type, shape,
    /// byte length) before any kernel runs.
    pub fn run(
        &self,
        pool: &ThreadPool,
        inputs: &[TensorView],
    ) -> Result<Vec<AlignedBuf>, RuntimeError> {
        self.execute(pool, inputs, None)
    }

    /// Like [`Plan::run`], and also returns the wall time of each step (same order as
    /// [`Plan::steps`]).
    pub fn run_profiled(
        &self,
        pool: &ThreadPool,
        inputs: &[TensorView],
    ) -> Result<(Vec<AlignedBuf>, Vec<Duration>), RuntimeError> {
        let mut times = Vec::with_capacity(self.steps.len());
        let outputs = self.execute(pool, inputs, Some(&mut times))?;
        Ok((outputs, times))
    }

    /// Total bytes of the weights (owned and shared).
    pub fn weight_bytes(&self) -> usize {
        self.weights.iter().map(WeightBuf::len).sum()
    }

    fn execute(
        &self,
        pool: &ThreadPool,
        inputs: &[TensorView],
        mut times: Option<&mut Vec<Duration>>,
    ) -> Result<Vec<AlignedBuf>, RuntimeError> {
        self.validate()?;
        self.check_inputs(inputs)?;

        // Inputs whose address is not aligned are copied so that every kernel argument is.
        let mut copies = Vec::new();
        let mut input_ptrs = Vec::with_capacity(inputs.len());
        for (spec, view) in self.inputs.iter().zip(inputs) {
            if (view.data.as_ptr() as usize).is_multiple_of(ALIGN) {
                // Kernels never write inputs, so the shared borrow is never written through.
                input_ptrs.push(view.data.as_ptr().cast_mut());
            } else {
                let mut copy = alloc(view.data.len(), || {
                    format!("a copy of input `{}`", spec.name)
                })?;
                copy.as_bytes_mut().copy_from_slice(view.data);
                input_ptrs.push(copy.as_mut_ptr());
                copies.push(copy);
            }
        }
        let mut outputs = self
            .outputs
            .iter()
            .map(|s| alloc(s.bytes(), || format!("output `{}`", s.name)))
            .collect::<Result<Vec<_>, _>>()?;
        let output_ptrs: Vec<*mut u8> = outputs.iter_mut().map(AlignedBuf::as_mut_ptr).collect();
        // Kernels never write weights either.
        let weight_ptrs: Vec<*mut u8> =
            self.weights.iter().map(|w| w.as_ptr().cast_mut()).collect();

        // Borrow the shared arena, or allocate a private one when another run holds it.
        let mut own_arena = None;
        let mut shared_arena = match self.arena.try_lock() {
            Ok(g) => Some(g),
            Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        };
        let arena: &mut AlignedBuf = match shared_arena.as_deref_mut() {
            Some(a) => {
                if a.len() < self.arena_bytes {
                    *a = alloc_arena(self.arena_bytes)?;
                }
                a
            }
            None => own_arena.insert(alloc_arena(self.arena_bytes)?),
        };
        let arena_ptr = arena.as_mut_ptr();

        let mut ptrs: Vec<*mut u8> = Vec::new();
        for step in &self.steps {
            ptrs.clear();
            ptrs.extend(step.args.iter().map(|r| match *r {
                BufferRef::Input(k) => input_ptrs[k],
                BufferRef::Output(k) => output_ptrs[k],
                BufferRef::Weight(k) => weight_ptrs[k],
                // In bounds: `validate` checked `offset + len <= arena_bytes <= arena.len()`.
                BufferRef::Arena { offset, .. } => arena_ptr.wrapping_add(offset),
            }));
            let args = Args(&ptrs);
            let start = Instant::now();
            let result = panic::catch_unwind(AssertUnwindSafe(|| {
                pool.parallel_for(step.work, step.grain, &|b, e| {
                    let args = &args;
                    // SAFETY: every address points into a live buffer of this run (validated
                    // above, aligned to 64 bytes); sizing the buffers for the kernel is the
                    // compiler's part of the ABI, and the pool hands out disjoint `b..e` ranges.
                    unsafe { step.kernel.call(args.0, b, e) }
                })
            }));
            if let Err(payload) = result {
                return Err(RuntimeError::KernelPanic {
                    step: step.name.clone(),
                    op: step.op.clone(),
                    message: panic_message(payload.as_ref()),
                });
            }
            if let Some(t) = times.as_deref_mut() {
                t.push(start.elapsed());
            }
        }
        drop(copies);
        Ok(outputs)
    }
}

/// Allocates a zeroed buffer, naming what it is for in the error.
fn alloc(bytes: usize, what: impl FnOnce() -> String) -> Result<AlignedBuf, RuntimeError> {
    AlignedBuf::try_zeroed(bytes).map_err(|_| RuntimeError::Alloc {
        bytes,
        what: what(),
    })
}

fn alloc_arena(bytes: usize) -> Result<AlignedBuf, RuntimeError> {
    alloc(bytes, || "the arena".into())
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".into()
    }
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan")
            .field("steps", &self.steps)
            .field("weights", &self.weights.len())
            .field("arena_bytes", &self.arena_bytes)
            .field("inputs", &self.inputs)
            .field("outputs", &self.outputs)
            .finish_non_exhaustive()
    }
}
