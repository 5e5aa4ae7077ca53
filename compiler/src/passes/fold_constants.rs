//! `fold-constants`: evaluates, with the reference interpreter, every node whose operands are all
//! constants, and `Shape`/`Size` of values whose type is fully known; their results become weights.
//! Types downstream are re-inferred as it goes, so a chain Shape -> Gather -> Unsqueeze -> Concat ->
//! Reshape folds in one run and the Reshape ends with a static shape.

use super::infer_shapes::infer_node;
use super::{PassContext, PassError};
use crate::interp::eval_op;
use sparsec_ir::{Graph, NodeId, Op, Tensor};

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
    let results: Vec<Tensor> = match &node.op {
        Op::Shape { .. } | Op::Size {} => {
            let Some(shape) = node.inputs[0].and_then(|v| graph.value(v).ty.shape()) else {
                return false;
            };
            let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
            match &node.op {
                Op::Shape { start, end } => {
                    let r = dims.len() as i64;
                    let clamp = |x: i64| (if x < 0 { x + r } else { x }).clamp(0, r) as usize;
                    let (s, e) = (clamp(*start), clamp(*end));
                    let slice = if s < e { dims[s..e].to_vec() } else { vec![] };
                    vec![Tensor::from_i64(&[slice.len()], slice)]
                }
                _ => vec![Tensor::scalar_i64(dims.iter().product())],
            }
        }
        op => {
            let mut args = Vec::with_capacity(node.inputs.len());
            for v in &node.inputs {
                match v {
                    None => args.push(None),
                    Some(v) => match graph.const_data(*v) {
                        Some(t) => args.push(Some(t)),
                        None => return false,
                    },
                }
            }
            if args.iter().all(Option::is_none) {
                return false;
            }
            match eval_op(op, &args, node.outputs.len()) {
                Ok(r) => r,
                Err(_) => return false,
            }
        }
    };
    let outputs = graph.node(n).outputs.clone();
    for (v, t) in outputs.into_iter().zip(results) {
        let name = graph.value(v).name.clone();
        let w = graph.add_weight(name, t);
        graph.replace_all_uses(v, w);
    }
    graph.remove_node(n);
    true
}
