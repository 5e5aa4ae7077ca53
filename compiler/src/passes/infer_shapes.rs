//! `infer-shapes`: recomputes every node's result types, in topological order, from its operand
//! types and the values of constant operands.

use super::{PassContext, PassError};
use sparsec_ir::shape::{infer, InputFact};
use sparsec_ir::{Graph, NodeId, TensorType};

/// Runs the pass.
pub(super) fn run(graph: &mut Graph, _cx: &mut PassContext) -> Result<bool, PassError> {
    let mut changed = false;
    for n in graph.topo_order() {
        changed |= infer_node(graph, n).map_err(|message| PassError::Failed {
            pass: "infer-shapes",
            message,
        })?;
    }
    Ok(changed)
}

/// Infers the result types of node `n` and stores them; returns whether any type changed. The
/// error names the node.
pub fn infer_node(graph: &mut Graph, n: NodeId) -> Result<bool, String> {
    let node = graph.node(n);
    let facts: Vec<Option<InputFact>> = node
        .inputs
        .iter()
        .map(|v| {
            v.map(|v| InputFact {
                ty: &graph.value(v).ty,
                value: graph.const_data(v),
            })
        })
        .collect();
    let types: Vec<TensorType> = infer(&node.op, &facts, node.outputs.len())
        .map_err(|e| format!("node `{}` ({}): {e}", node.name, node.op.name()))?;
    let outputs = node.outputs.clone();
    let mut changed = false;
    for (v, ty) in outputs.into_iter().zip(types) {
        let value = graph.value_mut(v);
        if value.ty != ty {
            value.ty = ty;
            changed = true;
        }
    }
    Ok(changed)
}
