//! `sparsec inspect`: one row per weight-bearing node (its weight's shape, parameters, nonzeros,
//! density and detected pattern, and with [`InspectReport::add_layouts`] the layout the cost
//! model chooses and why) and model totals, including multiply-accumulates counted dense and
//! nonzero-only.

use crate::codegen::layout::{plan_layouts, CostTable};
use sparsec_ir::{Dim, Graph, Op, ValueId};

/// One weight-bearing node.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerRow {
    /// Node name.
    pub name: String,
    /// Op name.
    pub op: &'static str,
    /// Name of the weight operand.
    pub weight: String,
    /// Shape of the weight operand.
    pub weight_shape: Vec<usize>,
    /// Elements of the weight and of the bias, if any.
    pub params: usize,
    /// Nonzero elements of the weight.
    pub nnz: usize,
    /// `nnz / weight elements`.
    pub density: f64,
    /// Detected sparsity pattern of the weight.
    pub pattern: String,
    /// Multiply-accumulates of the node counted dense (symbolic dims taken as 1).
    pub macs_dense: u64,
    /// Multiply-accumulates with nonzero weights only.
    pub macs_nonzero: u64,
    /// The chosen layout and the reason (see [`InspectReport::add_layouts`]).
    pub layout: Option<(String, String)>,
}

/// The whole report.
#[derive(Clone, Debug, PartialEq)]
pub struct InspectReport {
    /// Weight-bearing nodes in topological order.
    pub layers: Vec<LayerRow>,
    /// Elements of every weight of the graph.
    pub total_params: usize,
    /// Nonzero elements of every weight of the graph.
    pub total_nonzeros: usize,
    /// Bytes of every weight stored dense.
    pub total_bytes: usize,
    /// Sum of the layers' dense multiply-accumulates.
    pub macs_dense: u64,
    /// Sum of the layers' nonzero-only multiply-accumulates.
    pub macs_nonzero: u64,
}

/// Builds the report for a graph.
pub fn inspect(graph: &Graph) -> InspectReport {
    let mut layers = Vec::new();
    for n in graph.topo_order() {
        let node = graph.node(n);
        let Some((w, bias, k)) = weight_operand(graph, &node.op, &node.inputs) else {
            continue;
        };
        let Some(weight) = graph.weight(w) else {
            continue;
        };
        let wshape: Vec<usize> = graph.value(w).ty.shape().unwrap_or_default();
        let facts = weight.facts;
        let out_numel: u64 = node
            .outputs
            .first()
            .map(|&o| numel_sym_as_one(&graph.value(o).ty.dims))
            .unwrap_or(0);
        let macs_dense = out_numel * k as u64;
        let macs_nonzero = if facts.numel == 0 {
            0
        } else {
            (macs_dense as f64 * facts.nnz as f64 / facts.numel as f64).round() as u64
        };
        let bias_params = bias.and_then(|b| graph.value(b).ty.numel()).unwrap_or(0);
        layers.push(LayerRow {
            name: node.name.clone(),
            op: node.op.name(),
            weight: graph.value(w).name.clone(),
            weight_shape: wshape,
            params: facts.numel + bias_params,
            nnz: facts.nnz,
            density: facts.density(),
            pattern: facts.pattern.to_string(),
            macs_dense,
            macs_nonzero,
            layout: None,
        });
    }
    let mut total_params = 0;
    let mut total_nonzeros = 0;
    let mut total_bytes = 0;
    for v in graph.referenced_values() {
        if let Some(w) = graph.weight(v) {
            total_params += w.facts.numel;
            total_nonzeros += w.facts.nnz;
            total_bytes += w.facts.numel * graph.value(v).ty.dtype.size_bytes();
        }
    }
    InspectReport {
        macs_dense: layers.iter().map(|l| l.macs_dense).sum(),
        macs_nonzero: layers.iter().map(|l| l.macs_nonzero).sum(),
        layers,
        total_params,
        total_nonzeros,
        total_bytes,
    }
}

/// The weight operand of a weight-bearing node, its bias operand, and the reduction length `K`
/// (multiply-accumulates per result element).
fn weight_operand(
    graph: &Graph,
    op: &Op,
    inputs: &[Option<ValueId>],
) -> Option<(ValueId, Option<ValueId>, usize)> {
    let is_w = |k: usize| {
        inputs
            .get(k)
            .copied()
            .flatten()
            .filter(|v| graph.weight(*v).is_some())
    };
    let shape = |v: ValueId| graph.value(v).ty.shape().unwrap_or_default();
    match op {
        Op::Conv { .. } => {
            let w = is_w(1)?;
            let s = shape(w);
            let k = s.iter().skip(1).product();
            Some((w, is_w(2), k))
        }
        Op::ConvTranspose { group, .. } => {
            // Each result element reads C_in/group * prod(kernel) weights on average.
            let w = is_w(1)?;
            let s = shape(w);
            let kernel: usize = s.iter().skip(2).product();
            let k = s.first().copied().unwrap_or(1) / (*group).max(1) as usize * kernel;
            Some((w, is_w(2), k))
        }
        Op::Gemm {
            trans_a, trans_b, ..
        } => {
            if let Some(w) = is_w(1) {
                let s = shape(w);
                let k = if *trans_b != 0 { s.get(1) } else { s.first() };
                Some((w, is_w(2), k.copied().unwrap_or(1)))
            } else {
                let w = is_w(0)?;
                let s = shape(w);
                let k = if *trans_a != 0 { s.first() } else { s.get(1) };
                Some((w, is_w(2), k.copied().unwrap_or(1)))
            }
        }
        Op::MatMul {} => {
            if let Some(w) = is_w(1) {
                let s = shape(w);
                let k = if s.len() >= 2 {
                    s[s.len() - 2]
                } else {
                    s.first().copied().unwrap_or(1)
                };
                Some((w, None, k))
            } else {
                let w = is_w(0)?;
                let s = shape(w);
                Some((w, None, s.last().copied().unwrap_or(1)))
            }
        }
        _ => None,
    }
}

fn numel_sym_as_one(dims: &[Dim]) -> u64 {
    dims.iter().map(|d| d.known().unwrap_or(1) as u64).product()
}

impl InspectReport {
    /// Fills every row's layout choice and reason from the layout plan of `graph` under `table`
    /// (rows the cost model does not cover, e.g. grouped convolutions, stay without).
    pub fn add_layouts(&mut self, graph: &Graph, table: &CostTable) {
        let plan = plan_layouts(graph, table);
        for row in &mut self.layers {
            if let Some(c) = plan.get(&row.name) {
                let reason = format!("n={}, {}", c.desc.n, c.reason);
                row.layout = Some((c.layout.to_string(), reason));
            }
        }
    }

    /// A plain-text table with a totals block.
    pub fn to_table(&self) -> String {
        let with_layouts = self.layers.iter().any(|l| l.layout.is_some());
        let mut s = format!(
            "{:<32} {:<14} {:<18} {:>10} {:>10} {:>8} {:<12}{}\n",
            "node",
            "op",
            "weight shape",
            "params",
            "nnz",
            "density",
            "pattern",
            if with_layouts { " layout     why" } else { "" }
        );
        for l in &self.layers {
            let shape = format!(
                "[{}]",
                l.weight_shape
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            );
            let layout = match &l.layout {
                Some((layout, reason)) => format!(" {layout:<10} {reason}"),
                None => String::new(),
            };
            s.push_str(&format!(
                "{:<32} {:<14} {:<18} {:>10} {:>10} {:>8.4} {:<12}{}\n",
                truncate(&l.name, 32),
                l.op,
                shape,
                l.params,
                l.nnz,
                l.density,
                l.pattern,
                layout.trim_end()
            ));
        }
        let density = if self.total_params == 0 {
            1.0
        } else {
            self.total_nonzeros as f64 / self.total_params as f64
        };
        s.push_str(&format!(
            "\ntotal: {} weight-bearing nodes, {} params, {} nonzeros (density {:.4}), {} bytes of weights\n",
            self.layers.len(),
            self.total_params,
            self.total_nonzeros,
            density,
            self.total_bytes
        ));
        let ratio = if self.macs_nonzero == 0 {
            0.0
        } else {
            self.macs_dense as f64 / self.macs_nonzero as f64
        };
        s.push_str(&format!(
            "MACs per inference (symbolic dims = 1): {} dense, {} nonzero-only ({:.2}x fewer)\n",
            self.macs_dense, self.macs_nonzero, ratio
        ));
        s
    }

    /// The report as one JSON object.
    pub fn to_json(&self) -> serde_json::Value {
        let layers: Vec<serde_json::Value> = self
            .layers
            .iter()
            .map(|l| {
                let mut v = serde_json::json!({
                    "name": l.name, "op": l.op, "weight": l.weight, "weight_shape": l.weight_shape,
                    "params": l.params, "nnz": l.nnz, "density": l.density, "pattern": l.pattern,
                    "macs_dense": l.macs_dense, "macs_nonzero": l.macs_nonzero,
                });
                if let (Some((layout, reason)), Some(o)) = (&l.layout, v.as_object_mut()) {
                    o.insert("layout".into(), layout.clone().into());
                    o.insert("layout_reason".into(), reason.clone().into());
                }
                v
            })
            .collect();
        serde_json::json!({
            "layers": layers,
            "total_params": self.total_params,
            "total_nonzeros": self.total_nonzeros,
            "total_bytes": self.total_bytes,
            "macs_dense": self.macs_dense,
            "macs_nonzero": self.macs_nonzero,
        })
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let tail: String = s
            .chars()
            .rev()
            .take(n - 1)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        format!("…{tail}")
    }
}
