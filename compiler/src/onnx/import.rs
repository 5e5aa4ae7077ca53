//! The walk over an ONNX graph that builds the IR graph.
//!
//! Initializers (dense and sparse) become weights, the remaining graph inputs become inputs,
//! then every node is converted in model order through the op registry. Unsupported ops are
//! collected over the whole model and reported together. `Constant` nodes become weights;
//! `Identity` and single-result `Dropout` are aliased away unless they produce a graph output;
//! nodes whose operands are all constants are folded when the options ask for it.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use onnx_protobuf::tensor_shape_proto::dimension;
use onnx_protobuf::{
    type_proto, GraphProto, Message, ModelProto, NodeProto, SparseTensorProto, TensorProto,
    ValueInfoProto,
};
use sparsec_ir::shape::{infer, InputFact};
use sparsec_ir::{Dim, Graph, Op, TensorType, ValueId};

use super::attrs::Attrs;
use super::ops::{Lowered, NodeCtx, OpError, Operand, Registry};
use super::tensor_proto::{decode_sparse, decode_tensor, dtype_or_err};
use super::{ImportError, ImportOptions, UnsupportedOp, UnsupportedOps};

/// The supported default-domain opsets.
pub(crate) const OPSETS: std::ops::RangeInclusive<i64> = 6..=28;

/// Parses and imports a serialized `ModelProto`.
pub(crate) fn import_bytes(
    bytes: &[u8],
    base_dir: Option<&Path>,
    opts: &ImportOptions,
) -> Result<Graph, ImportError> {
    let model =
        ModelProto::parse_from_bytes(bytes).map_err(|e| ImportError::Parse(e.to_string()))?;
    import_model(model, base_dir, opts)
}

/// Imports a parsed `ModelProto`. The initializers are taken out of the model and decoded one at
/// a time, each one's serialized data freed right after it is decoded, so the model's weights
/// never exist twice in full.
pub(crate) fn import_model(
    mut model: ModelProto,
    base_dir: Option<&Path>,
    opts: &ImportOptions,
) -> Result<Graph, ImportError> {
    let mut gp = model.graph.take().ok_or(ImportError::NoGraph)?;
    let version = model
        .opset_import
        .iter()
        .find(|o| is_default_domain(&o.domain))
        .map(|o| o.version);
    let uses_default = gp.node.iter().any(|n| is_default_domain(&n.domain));
    let opset = match version {
        Some(v) if OPSETS.contains(&v) => v,
        // Only other domains' nodes: the walk reports them as unsupported.
        None if !uses_default => *OPSETS.end(),
        v => return Err(ImportError::UnsupportedOpset { version: v }),
    };
    let initializers = std::mem::take(&mut gp.initializer);
    let sparse_initializers = std::mem::take(&mut gp.sparse_initializer);
    let gp = &gp;
    Importer {
        gp,
        opset,
        base_dir,
        opts,
        graph: Graph::new(gp.name.clone()),
        names: HashMap::new(),
        poisoned: HashSet::new(),
        unsupported: Vec::new(),
        output_names: gp.output.iter().map(|o| o.name.as_str()).collect(),
        registry: Registry::new(),
    }
    .run(initializers, sparse_initializers)
}

/// True for the default ONNX operator domain (empty or `ai.onnx`).
fn is_default_domain(domain: &str) -> bool {
    domain.is_empty() || domain == "ai.onnx"
}

/// The state of one import.
struct Importer<'a> {
    gp: &'a GraphProto,
    opset: i64,
    base_dir: Option<&'a Path>,
    opts: &'a ImportOptions,
    graph: Graph,
    /// ONNX value name to IR value.
    names: HashMap<String, ValueId>,
    /// Results of nodes that could not be converted (their users are skipped).
    poisoned: HashSet<String>,
    /// Unsupported ops and features, in order of first use.
    unsupported: Vec<UnsupportedOp>,
    output_names: HashSet<&'a str>,
    registry: Registry,
}

impl Importer<'_> {
    /// Builds the graph; the initializers come separately, owned, so that each is dropped as
    /// soon as it is decoded.
    fn run(
        mut self,
        initializers: Vec<TensorProto>,
        sparse_initializers: Vec<SparseTensorProto>,
    ) -> Result<Graph, ImportError> {
        for p in initializers {
            let t = decode_tensor(&p, &p.name, self.base_dir)?;
            let v = self.graph.add_weight(p.name.clone(), t);
            self.define(&p.name, v)?;
        }
        for p in sparse_initializers {
            let name = p
                .values
                .as_ref()
                .map(|v| v.name.clone())
                .unwrap_or_default();
            let t = decode_sparse(&p, &name, self.base_dir)?;
            let v = self.graph.add_weight(name.clone(), t);
            self.define(&name, v)?;
        }
        for vi in &self.gp.input {
            // Old exports list weights among the inputs: those stay weights.
            if self.names.contains_key(&vi.name) {
                continue;
            }
            let ty = input_type(vi, self.opts)?;
            let v = self.graph.add_input(vi.name.clone(), ty);
            self.define(&vi.name, v)?;
        }
        for (i, node) in self.gp.node.iter().enumerate() {
            self.node(i, node)?;
        }
        if !self.unsupported.is_empty() {
            return Err(ImportError::Unsupported(UnsupportedOps(self.unsupported)));
        }
        let mut outputs = Vec::with_capacity(self.gp.output.len());
        for vi in &self.gp.output {
            let v = *self.names.get(&vi.name).ok_or_else(|| ImportError::Value {
                name: vi.name.clone(),
                reason: "graph output is not defined by any node, input or initializer".into(),
            })?;
            outputs.push(v);
        }
        self.graph.set_outputs(outputs);
        Ok(self.graph)
    }

    /// Binds an ONNX name to a value; names are single-assignment.
    fn define(&mut self, name: &str, v: ValueId) -> Result<(), ImportError> {
        if name.is_empty() {
            return Ok(());
        }
        if self.names.insert(name.to_string(), v).is_some() {
            return Err(ImportError::Value {
                name: name.to_string(),
                reason: "defined more than once".into(),
            });
        }
        Ok(())
    }

    /// Records an unsupported op (or feature) of a node and poisons its results.
    fn unsupported(&mut self, key: String, node_name: &str, node: &NodeProto) {
        match self.unsupported.iter_mut().find(|u| u.op_type == key) {
            Some(u) => u.nodes.push(node_name.to_string()),
            None => self.unsupported.push(UnsupportedOp {
                op_type: key,
                nodes: vec![node_name.to_string()],
            }),
        }
        self.poison(node);
    }

    fn poison(&mut self, node: &NodeProto) {
        for o in node.output.iter().filter(|o| !o.is_empty()) {
            self.poisoned.insert(o.clone());
        }
    }

    fn node(&mut self, index: usize, node: &NodeProto) -> Result<(), ImportError> {
        let op_type = node.op_type.as_str();
        let name = if node.name.is_empty() {
            format!("{op_type}_{index}")
        } else {
            node.name.clone()
        };
        let invalid = |reason: String| ImportError::Node {
            node: name.clone(),
            op_type: op_type.to_string(),
            reason,
        };
        if !is_default_domain(&node.domain) {
            self.unsupported(format!("{}:{op_type}", node.domain), &name, node);
            return Ok(());
        }
        let Some(convert) = self.registry.get(op_type) else {
            self.unsupported(op_type.to_string(), &name, node);
            return Ok(());
        };

        // Operands: an empty name is an omitted optional operand.
        let mut inputs: Vec<Option<ValueId>> = Vec::with_capacity(node.input.len());
        for input in &node.input {
            if input.is_empty() {
                inputs.push(None);
            } else if self.poisoned.contains(input) {
                self.poison(node);
                return Ok(());
            } else {
                let v = *self
                    .names
                    .get(input)
                    .ok_or_else(|| ImportError::UndefinedValue {
                        node: name.clone(),
                        op_type: op_type.to_string(),
                        value: input.clone(),
                    })?;
                inputs.push(Some(v));
            }
        }
        let mut out_names: Vec<&str> = node.output.iter().map(String::as_str).collect();
        while out_names.last() == Some(&"") {
            out_names.pop();
        }
        if out_names.is_empty() {
            return Err(invalid("node has no results".into()));
        }

        let ctx = NodeCtx {
            opset: self.opset,
            attrs: Attrs::new(node),
            input_types: inputs
                .iter()
                .map(|v| v.map(|v| self.graph.value(v).ty.clone()))
                .collect(),
            n_outputs: out_names.len(),
            base_dir: self.base_dir,
        };
        let (op, operands) = match convert(&ctx) {
            Ok(Lowered::Node { op, operands }) => (op, operands),
            Ok(Lowered::Constant(t)) => {
                if out_names.len() != 1 {
                    return Err(invalid(format!("{} results, 1 expected", out_names.len())));
                }
                let v = self.graph.add_weight(out_names[0], t);
                return self.define(out_names[0], v);
            }
            Err(OpError::Unsupported(feature)) => {
                self.unsupported(format!("{op_type} [{feature}]"), &name, node);
                return Ok(());
            }
            Err(OpError::Invalid(reason)) => return Err(invalid(reason)),
        };

        let mut operand_ids: Vec<Option<ValueId>> = Vec::with_capacity(operands.len());
        for o in operands {
            operand_ids.push(match o {
                Operand::Input(k) => inputs.get(k).copied().flatten(),
                Operand::Const(suffix, t) => {
                    Some(self.graph.add_weight(format!("{name}_{suffix}"), t))
                }
                Operand::Absent => None,
                Operand::Unsqueezed(k, axes) => match inputs.get(k).copied().flatten() {
                    Some(v) => Some(
                        self.unsqueeze(&name, v, axes)
                            .map_err(|e| invalid(e.to_string()))?,
                    ),
                    None => None,
                },
            });
        }
        while operand_ids.last() == Some(&None) {
            operand_ids.pop();
        }
        check_arity(&op, &operand_ids, out_names.len()).map_err(invalid)?;

        // Identity and single-result Dropout disappear unless they produce a graph output.
        let aliased =
            matches!(op, Op::Identity {}) || (matches!(op, Op::Dropout {}) && out_names.len() == 1);
        if aliased && !self.output_names.contains(out_names[0]) {
            if let Some(Some(src)) = operand_ids.first() {
                return self.define(out_names[0], *src);
            }
        }

        let types = self
            .infer_types(&op, &operand_ids, out_names.len())
            .map_err(|source| ImportError::Shape {
                node: name.clone(),
                op_type: op_type.to_string(),
                source,
            })?;
        if self.opts.fold_constants {
            if let Some(results) =
                crate::passes::const_results(&self.graph, &op, &operand_ids, out_names.len())
            {
                for (out, t) in out_names.iter().zip(results) {
                    let v = self.graph.add_weight(*out, t);
                    self.define(out, v)?;
                }
                return Ok(());
            }
        }
        let outputs: Vec<(String, TensorType)> =
            out_names.iter().map(|s| s.to_string()).zip(types).collect();
        let id = self.graph.add_node(name, op, operand_ids, outputs);
        let results = self.graph.node(id).outputs.clone();
        for (out, v) in out_names.iter().zip(results) {
            self.define(out, v)?;
        }
        Ok(())
    }

    /// Inserts `Unsqueeze(v, axes)` ahead of a node whose old-opset form broadcasts differently
    /// (legacy `broadcast`/`axis`, opset-6 `PRelu`); returns the new value.
    fn unsqueeze(
        &mut self,
        node_name: &str,
        v: ValueId,
        axes: Vec<i64>,
    ) -> Result<ValueId, sparsec_ir::shape::ShapeError> {
        let axes_w = self.graph.add_weight(
            format!("{node_name}_legacy_axes"),
            super::ops::i64_vec(&axes),
        );
        let op = Op::Unsqueeze {};
        let operands = [Some(v), Some(axes_w)];
        let types = self.infer_types(&op, &operands, 1)?;
        let out = format!("{node_name}_legacy_broadcast");
        let id = self.graph.add_node(
            out.clone(),
            op,
            operands.to_vec(),
            vec![(out, types[0].clone())],
        );
        Ok(self.graph.node(id).outputs[0])
    }

    /// Result types from shape inference, one per result.
    fn infer_types(
        &self,
        op: &Op,
        operands: &[Option<ValueId>],
        n_outputs: usize,
    ) -> Result<Vec<TensorType>, sparsec_ir::shape::ShapeError> {
        let facts: Vec<Option<InputFact>> = operands
            .iter()
            .map(|v| {
                v.map(|v| InputFact {
                    ty: &self.graph.value(v).ty,
                    value: self.graph.const_data(v),
                })
            })
            .collect();
        let types = infer(op, &facts, n_outputs)?;
        if types.len() < n_outputs {
            return Err(sparsec_ir::shape::ShapeError(format!(
                "{} result types for {n_outputs} results",
                types.len()
            )));
        }
        Ok(types)
    }
}

/// Checks operand and result counts against the op table.
fn check_arity(op: &Op, operands: &[Option<ValueId>], n_outputs: usize) -> Result<(), String> {
    let a = op.arity();
    if operands.len() > a.max_inputs {
        return Err(format!(
            "{} operands, at most {} expected",
            operands.len(),
            a.max_inputs
        ));
    }
    if let Some(k) = (0..a.min_inputs).find(|&k| operands.get(k).copied().flatten().is_none()) {
        return Err(format!("required operand {k} is missing"));
    }
    if n_outputs > a.max_outputs {
        return Err(format!(
            "{n_outputs} results, at most {} expected",
            a.max_outputs
        ));
    }
    Ok(())
}

/// The IR type of a graph input from its `ValueInfoProto`.
fn input_type(vi: &ValueInfoProto, opts: &ImportOptions) -> Result<TensorType, ImportError> {
    let bad = |reason: &str| ImportError::Value {
        name: vi.name.clone(),
        reason: reason.to_string(),
    };
    let tp = vi
        .type_
        .as_ref()
        .ok_or_else(|| bad("graph input has no type"))?;
    let tensor = match &tp.value {
        Some(type_proto::Value::TensorType(t)) => t,
        other => {
            let kind = match other {
                Some(type_proto::Value::SequenceType(_)) => "sequence",
                Some(type_proto::Value::MapType(_)) => "map",
                Some(type_proto::Value::OptionalType(_)) => "optional",
                Some(type_proto::Value::SparseTensorType(_)) => "sparse tensor",
                _ => return Err(bad("graph input has no type")),
            };
            return Err(ImportError::UnsupportedDType {
                tensor: vi.name.clone(),
                dtype: kind.to_string(),
            });
        }
    };
    let dtype = dtype_or_err(tensor.elem_type, &vi.name)?;
    let shape = tensor
        .shape
        .as_ref()
        .ok_or_else(|| bad("graph input has no shape (unknown rank)"))?;
    let mut dims = Vec::with_capacity(shape.dim.len());
    for d in &shape.dim {
        dims.push(match &d.value {
            Some(dimension::Value::DimValue(n)) => Dim::Known(
                usize::try_from(*n).map_err(|_| bad(&format!("negative dimension {n}")))?,
            ),
            Some(dimension::Value::DimParam(p)) if !p.is_empty() => match opts.dims.get(p) {
                Some(&n) => Dim::Known(n),
                None => Dim::Sym(p.clone()),
            },
            _ => Dim::Sym("?".to_string()),
        });
    }
    Ok(TensorType { dtype, dims })
}
