//! The fallback lowering: a host kernel that runs one node with the reference interpreter.
//!
//! It copies its operands out of the runtime buffers into tensors, evaluates the op and copies the
//! results back, so it is correct for every op the interpreter supports, and slow. Ops get native
//! kernels by moving from here to the JIT or dense lowerings. An interpreter error at run time (for
//! example an out-of-range gather index in the input data) is recorded in the shared error slot,
//! which the engine checks after every run.

use super::bytes::{tensor_bytes, tensor_from_bytes};
use super::{Arg, LoweredKernel};
use crate::interp::eval_op;
use sparsec_ir::{DType, Graph, NodeId};
use sparsec_runtime::Kernel;
use std::sync::{Arc, Mutex};

/// Where host kernels report run-time errors.
pub type ErrorSlot = Arc<Mutex<Option<String>>>;

/// Lowers node `n` to an interpreter call. The args are the present operands in order, then the
/// results.
pub fn lower_fallback(graph: &Graph, n: NodeId, errors: &ErrorSlot) -> LoweredKernel {
    let node = graph.node(n);
    let shape_of = |v| -> (DType, Vec<usize>) {
        let ty = &graph.value(v).ty;
        (ty.dtype, ty.shape().unwrap_or_default())
    };
    // For each operand position: None if omitted, else (index into args, dtype, shape).
    let mut operands: Vec<Option<(usize, DType, Vec<usize>)>> = Vec::new();
    let mut args = Vec::new();
    for v in &node.inputs {
        match v {
            None => operands.push(None),
            Some(v) => {
                let (d, s) = shape_of(*v);
                operands.push(Some((args.len(), d, s)));
                args.push(Arg::Value(*v));
            }
        }
    }
    let first_result = args.len();
    let results: Vec<usize> = node
        .outputs
        .iter()
        .map(|&v| {
            let (d, s) = shape_of(v);
            d.size_bytes() * s.iter().product::<usize>()
        })
        .collect();
    args.extend(node.outputs.iter().map(|&v| Arg::Value(v)));
    let op = node.op.clone();
    let name = node.name.clone();
    let errors = errors.clone();
    let n_results = node.outputs.len();
    let kernel = Kernel::Host(Box::new(move |ptrs: &[*mut u8], _begin, _end| {
        let tensors: Vec<Option<sparsec_ir::Tensor>> = operands
            .iter()
            .map(|o| {
                o.as_ref().map(|(i, d, s)| {
                    let len = d.size_bytes() * s.iter().product::<usize>();
                    // SAFETY: the plan gives this kernel a buffer of exactly the operand's size.
                    let b = unsafe { std::slice::from_raw_parts(ptrs[*i], len) };
                    tensor_from_bytes(*d, s, b)
                })
            })
            .collect();
        let refs: Vec<Option<&sparsec_ir::Tensor>> = tensors.iter().map(Option::as_ref).collect();
        match eval_op(&op, &refs, n_results) {
            Ok(outs) => {
                for (k, t) in outs.iter().take(n_results).enumerate() {
                    let b = tensor_bytes(t);
                    if b.len() != results[k] {
                        record(
                            &errors,
                            format!(
                                "node `{name}`: result {k} has {} bytes, {} planned",
                                b.len(),
                                results[k]
                            ),
                        );
                        return;
                    }
                    // SAFETY: the plan gives this kernel a result buffer of exactly `results[k]` bytes.
                    unsafe {
                        std::ptr::copy_nonoverlapping(b.as_ptr(), ptrs[first_result + k], b.len())
                    };
                }
            }
            Err(e) => record(&errors, format!("node `{name}` ({}): {e}", op.name())),
        }
    }));
    LoweredKernel {
        kernel,
        args,
        work: 1,
        grain: 1,
        op: format!("{}(interp)", node.op.name()),
        layout: "dense".into(),
    }
}

/// Records `msg` in the slot unless an earlier error is already there.
pub(crate) fn record(errors: &ErrorSlot, msg: String) {
    if let Ok(mut slot) = errors.lock() {
        slot.get_or_insert(msg);
    }
}
