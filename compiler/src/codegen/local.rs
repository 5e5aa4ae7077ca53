//! Running lowered steps on the calling thread, outside an execution plan: for the kernel tests,
//! the benchmarks and `sparsec tune`, which lower one node and call its steps directly.
//!
//! [`LocalSteps`] gives every argument of the steps a 64-byte aligned buffer: a graph value one
//! buffer sized from its type (shared by every step that names it), a temporary one buffer per
//! id, a packed constant or blob a copy. The steps then run in order over the ranges the caller
//! chooses.

use super::bytes::{owned_buf, tensor_bytes};
use super::{Arg, LoweredKernel};
use sparsec_ir::{Graph, ValueId};
use sparsec_runtime::{AlignedBuf, ThreadPool};
use std::collections::HashMap;

/// The buffers of a list of lowered steps, ready to run on the calling thread.
pub struct LocalSteps<'a> {
    steps: &'a [LoweredKernel],
    bufs: Vec<AlignedBuf>,
    /// Per step, the buffer of each argument in ABI order.
    args: Vec<Vec<usize>>,
    values: HashMap<ValueId, usize>,
}

impl<'a> LocalSteps<'a> {
    /// Buffers for `steps`, lowered from `graph`. A value's buffer holds `init(v)` when that
    /// gives data (its tensor, as for inputs and weights) and f32 NaNs otherwise (results, so a
    /// kernel that leaves an element unwritten shows it); temporaries start zeroed.
    ///
    /// # Panics
    /// If a value's type is not concrete or `init` gives data of the wrong size.
    pub fn new(
        graph: &Graph,
        steps: &'a [LoweredKernel],
        init: &mut dyn FnMut(ValueId) -> Option<sparsec_ir::Tensor>,
    ) -> LocalSteps<'a> {
        let mut bufs = Vec::new();
        let mut values = HashMap::new();
        let mut temps = HashMap::new();
        let args = steps
            .iter()
            .map(|s| {
                s.args
                    .iter()
                    .map(|a| match a {
                        Arg::Value(v) => *values.entry(*v).or_insert_with(|| {
                            let ty = &graph.value(*v).ty;
                            let len = ty.numel().expect("concrete type") * ty.dtype.size_bytes();
                            let buf = match init(*v) {
                                Some(t) => owned_buf(&t),
                                None => AlignedBuf::from_f32(&vec![f32::NAN; len.div_ceil(4)]),
                            };
                            assert!(buf.len() >= len, "value {v:?}: {} bytes", buf.len());
                            bufs.push(buf);
                            bufs.len() - 1
                        }),
                        Arg::Temp { id, bytes } => *temps.entry(*id).or_insert_with(|| {
                            bufs.push(AlignedBuf::zeroed(*bytes));
                            bufs.len() - 1
                        }),
                        Arg::Packed(t) => {
                            bufs.push(AlignedBuf::from_bytes(&tensor_bytes(t)));
                            bufs.len() - 1
                        }
                        Arg::Blob(b) => {
                            bufs.push(b.clone());
                            bufs.len() - 1
                        }
                    })
                    .collect()
            })
            .collect();
        LocalSteps {
            steps,
            bufs,
            args,
            values,
        }
    }

    /// Runs every step in order, step `i` over each range of `ranges(i, work)` in turn.
    ///
    /// # Panics
    /// If a range lies outside `0..work`.
    pub fn run(&mut self, ranges: &dyn Fn(usize, usize) -> Vec<(usize, usize)>) {
        for (i, (s, args)) in self.steps.iter().zip(&self.args).enumerate() {
            let ptrs: Vec<*mut u8> = args.iter().map(|&i| self.bufs[i].as_mut_ptr()).collect();
            for (b, e) in ranges(i, s.work) {
                assert!(b <= e && e <= s.work, "range {b}..{e} of {}", s.work);
                // SAFETY: every buffer is sized from the graph's types (values), the lowering's
                // sizes (temporaries) or the data itself (constants), in the step's ABI order,
                // and the range lies inside the step's parallel dimension.
                unsafe { s.kernel.call(&ptrs, b, e) };
            }
        }
    }

    /// Runs every step in order, each over its whole range split by `pool` (chunks of at least
    /// the step's grain), as an execution plan would.
    pub fn run_on(&mut self, pool: &ThreadPool) {
        for (s, args) in self.steps.iter().zip(&self.args) {
            let ptrs: Vec<usize> = args
                .iter()
                .map(|&i| self.bufs[i].as_mut_ptr() as usize)
                .collect();
            pool.parallel_for(s.work, s.grain, &|b, e| {
                let p: Vec<*mut u8> = ptrs.iter().map(|&a| a as *mut u8).collect();
                // SAFETY: as in `run`; the pool hands out disjoint ranges inside `0..work`.
                unsafe { s.kernel.call(&p, b, e) };
            });
        }
    }

    /// The current contents of value `v` as f32s.
    ///
    /// # Panics
    /// If no step names `v`.
    pub fn f32s(&self, v: ValueId) -> &[f32] {
        self.bufs[self.values[&v]].as_f32()
    }
}
