//! `fold-constants`: evaluates, with the reference interpreter, every node whose operands are all
//! constants, and `Shape`/`Size` of values whose type is fully known; their results become weights.
//! Types downstream are re-inferred as it goes, so a chain Shape -> Gather -> Unsqueeze -> Concat ->
//! Reshape folds in one run and the Reshape ends with a static shape.

use super::infer_shapes::infer_node;
use super::{PassContext, PassError};
use crate::interp::eval_op;
use sparsec_ir::{Graph, NodeId, Op, Tensor, ValueId};

/// Runs the pass.
pub(super) fn run(graph: &mut Graph, _cx: &mut PassContext) -> Result<bool, PassError> {
    let mut changed = false;
    for n in graph.topo_order() {
        if fold_node(graph, n) {
            changed = true;
        } else {
            changed |= infer_node(graph, n).map_err(|message| PassError::Failed {
                pass: "fold-constants",
                message,
            })?;
        }
    }
    graph.remove_dead_nodes();
    Ok(changed)
}

/// Tries to replace node `n` by weights holding its results; returns whether it did. A node the
/// interpreter cannot evaluate is left alone.
pub fn fold_node(graph: &mut Graph, n: NodeId) -> bool {
    let node = graph.node(n);
    let Some(results) = const_results(graph, &node.op, &node.inputs, node.outputs.len()) else {
        return false;
    };
    let outputs = node.outputs.clone();
    for (v, t) in outputs.into_iter().zip(results) {
        let name = graph.value(v).name.clone();
        let w = graph.add_weight(name, t);
        graph.replace_all_uses(v, w);
    }
    graph.remove_node(n);
    true
}

/// The results of `op` over `operands` if they can be computed at compile time: `Shape` and
/// `Size` of a value whose type is fully known, or any op whose operands are all weights with data
/// and that the interpreter can evaluate. The importer folds with this too.
pub fn const_results(
    graph: &Graph,
    op: &Op,
    operands: &[Option<ValueId>],
    n_outputs: usize,
) -> Option<Vec<Tensor>> {
    let first = operands.first().copied().flatten()?;
    match op {
        Op::Shape { start, end } => {
            let shape = graph.value(first).ty.shape()?;
            let rank = shape.len() as i64;
            let clamp =
                |i: i64| (if i < 0 { i.saturating_add(rank) } else { i }).clamp(0, rank) as usize;
            let (s, e) = (clamp(*start), clamp(*end));
            let dims: Vec<i64> = if s < e {
                shape[s..e].iter().map(|&d| d as i64).collect()
            } else {
                vec![]
            };
            return Some(vec![Tensor::from_i64(&[dims.len()], dims)]);
        }
        Op::Size {} => {
            let n = graph.value(first).ty.numel()?;
            return Some(vec![Tensor::scalar_i64(i64::try_from(n).ok()?)]);
        }
        _ => {}
    }
    let mut args: Vec<Option<&Tensor>> = Vec::with_capacity(operands.len());
    for v in operands {
        args.push(match v {
            None => None,
            Some(v) => Some(graph.const_data(*v)?),
        });
    }
    let mut results = eval_op(op, &args, n_outputs).ok()?;
    results.truncate(n_outputs);
    Some(results)
}
