//! The reference interpreter: plain, obviously correct Rust for every supported op.
//!
//! It is the correctness oracle for every later kernel, so clarity beats speed. One module per op
//! family ([`sparsec_ir::Family`]); [`eval_op`] dispatches on the family and [`run_graph`] runs a
//! whole graph in topological order.

mod conv;
mod einsum;
mod elem;
mod elementwise;
mod index;
mod linalg;
mod movement;
mod norm;
mod pool;
mod reduce;
mod resize;
mod shape_ops;
pub mod util;

use sparsec_ir::{Family, Graph, Op, Tensor, ValueDef, ValueId};
use std::collections::HashMap;
use thiserror::Error;

/// Why the interpreter could not evaluate an op or a graph.
#[derive(Debug, Error)]
pub enum InterpError {
    /// The op (or this use of it: a dtype, a mode) is not supported by the interpreter.
    #[error("{op}: unsupported: {reason}")]
    Unsupported {
        /// Op name.
        op: &'static str,
        /// What is missing.
        reason: String,
    },
    /// The operands are invalid for the op (shapes, dtypes, values).
    #[error("{op}: {reason}")]
    Invalid {
        /// Op name.
        op: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// Evaluating a node of a graph failed.
    #[error("node `{node}` ({op}): {source}")]
    Node {
        /// The node's name.
        node: String,
        /// Its op name.
        op: &'static str,
        /// The failure.
        #[source]
        source: Box<InterpError>,
    },
    /// A graph input is missing or a value was never computed.
    #[error("{0}")]
    Graph(String),
}

impl InterpError {
    /// An [`InterpError::Invalid`] for `op`.
    pub fn invalid(op: &Op, reason: impl Into<String>) -> InterpError {
        InterpError::Invalid {
            op: op.name(),
            reason: reason.into(),
        }
    }

    /// An [`InterpError::Unsupported`] for `op`.
    pub fn unsupported(op: &Op, reason: impl Into<String>) -> InterpError {
        InterpError::Unsupported {
            op: op.name(),
            reason: reason.into(),
        }
    }

    /// True when the root cause is an unsupported op or feature.
    pub fn is_unsupported(&self) -> bool {
        match self {
            InterpError::Unsupported { .. } => true,
            InterpError::Node { source, .. } => source.is_unsupported(),
            _ => false,
        }
    }
}

/// Evaluates one op. `inputs[k]` is `None` for an omitted optional operand; the result has
/// `n_outputs` tensors (ops with optional results compute only those asked for).
pub fn eval_op(
    op: &Op,
    inputs: &[Option<&Tensor>],
    n_outputs: usize,
) -> Result<Vec<Tensor>, InterpError> {
    let out = match op.family() {
        Family::Unary | Family::Binary | Family::Variadic | Family::Misc => {
            elementwise::eval(op, inputs, n_outputs)
        }
        Family::Reduce => reduce::eval(op, inputs, n_outputs),
        Family::Norm => norm::eval(op, inputs, n_outputs),
        Family::MatMul => linalg::eval(op, inputs, n_outputs),
        Family::Conv => conv::eval(op, inputs, n_outputs),
        Family::Pool => pool::eval(op, inputs, n_outputs),
        Family::Shape => shape_ops::eval(op, inputs, n_outputs),
        Family::Index => index::eval(op, inputs, n_outputs),
    }?;
    if out.len() < n_outputs {
        return Err(InterpError::invalid(
            op,
            format!("produced {} results, {} expected", out.len(), n_outputs),
        ));
    }
    Ok(out)
}

/// Runs `graph` on `inputs` (one tensor per graph input, in order) and returns the graph outputs.
pub fn run_graph(graph: &Graph, inputs: &[Tensor]) -> Result<Vec<Tensor>, InterpError> {
    if inputs.len() != graph.inputs().len() {
        return Err(InterpError::Graph(format!(
            "graph has {} inputs, {} given",
            graph.inputs().len(),
            inputs.len()
        )));
    }
    let mut env: HashMap<ValueId, Tensor> = HashMap::new();
    for (&v, t) in graph.inputs().iter().zip(inputs) {
        env.insert(v, t.clone());
    }
    // Free each value after its last use so large models stay within memory.
    let order = graph.topo_order();
    let mut last_use: HashMap<ValueId, usize> = HashMap::new();
    for (i, &n) in order.iter().enumerate() {
        for v in graph.node(n).inputs.iter().flatten() {
            last_use.insert(*v, i);
        }
    }
    for (i, &n) in order.iter().enumerate() {
        let node = graph.node(n);
        let mut args: Vec<Option<&Tensor>> = Vec::with_capacity(node.inputs.len());
        for v in &node.inputs {
            args.push(match v {
                None => None,
                Some(v) => Some(match &graph.value(*v).def {
                    ValueDef::Weight(w) => w.data.as_deref().ok_or_else(|| {
                        InterpError::Graph(format!("weight `{}` has no data", graph.value(*v).name))
                    })?,
                    _ => env.get(v).ok_or_else(|| {
                        InterpError::Graph(format!(
                            "value `{}` was not computed",
                            graph.value(*v).name
                        ))
                    })?,
                }),
            });
        }
        let outs = eval_op(&node.op, &args, node.outputs.len()).map_err(|e| InterpError::Node {
            node: node.name.clone(),
            op: node.op.name(),
            source: Box::new(e),
        })?;
        for (&v, t) in node.outputs.iter().zip(outs) {
            env.insert(v, t);
        }
        for v in node.inputs.iter().flatten() {
            if last_use.get(v) == Some(&i) && !graph.outputs().contains(v) {
                env.remove(v);
            }
        }
    }
    graph
        .outputs()
        .iter()
        .map(|v| match graph.const_data(*v) {
            Some(t) => Ok(t.clone()),
            None => env.get(v).cloned().ok_or_else(|| {
                InterpError::Graph(format!(
                    "output `{}` was not computed",
                    graph.value(*v).name
                ))
            }),
        })
        .collect()
}
