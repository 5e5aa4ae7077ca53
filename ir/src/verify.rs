//! The verifier: checks the invariants of a [`Graph`] and reports every violation, located by the
//! names the printer gives values and nodes ([`Numbering`]), as in
//! `%7 (matmul): operand 1 has shape f32[3,4], expected [4,*]` or `@w3: ...`.
//!
//! Invariants, in the order they are checked:
//!
//! 1. **Arity.** Every node has between `min_inputs` and `max_inputs` operands and between 1 and
//!    `max_outputs` results ([`crate::Op::arity`]), and no required operand (index below
//!    `min_inputs`) is omitted.
//! 2. **Defined uses.** Every operand and every graph output is a value of the graph that is a
//!    graph input, a weight, or a result of a node that still exists (no dangling use after a
//!    node was removed).
//! 3. **Acyclic.** The topological order covers every node.
//! 4. **Consistent definitions.** Result `i` of node `n` is recorded as
//!    `ValueDef::Result { node: n, index: i }`; graph input `k` is recorded as
//!    `ValueDef::Input(k)`; and every value that is read and recorded as a result or a graph
//!    input is listed there.
//! 5. **Types.** The recorded result types of every node agree with [`shape::infer`] called with
//!    the operand types and the data of weight operands: same element type and rank, and equal
//!    dimensions, where `?` on either side matches anything. When inference fails, its message is
//!    reported for the node. Nodes that break invariant 1, 2 or 4 are not inferred.
//! 6. **Weights.** A weight's type is fully known, with an element count that fits a `usize`;
//!    its facts count that many elements and at most that many nonzeros; when the weight has
//!    data, the type is the data's type and the facts equal [`SparsityFacts::compute`] of it.
//! 7. **Names.** Graph inputs and outputs have non-empty names, and no two different values
//!    among them share a name (a value that is both an input and an output, or an output twice,
//!    is one value).

use crate::graph::{Graph, NodeId, ValueDef, ValueId};
use crate::op::Arity;
use crate::shape::{self, InputFact};
use crate::sparsity::SparsityFacts;
use crate::text::{quote, Numbering};
use crate::types::{Dim, TensorType};
use std::collections::{HashMap, HashSet};
use std::fmt;

/// One violated invariant, located by printed names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyError {
    /// The number of the invariant (see the module doc).
    pub invariant: u8,
    /// The value or node: `%7 (matmul)`, `@w3`, `%x`.
    pub location: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

impl std::error::Error for VerifyError {}

/// Checks every invariant of `graph`; returns every violation found.
pub fn verify(graph: &Graph) -> Result<(), Vec<VerifyError>> {
    let mut v = Verifier {
        g: graph,
        num: Numbering::new(graph),
        errors: Vec::new(),
        skip_infer: HashSet::new(),
    };
    v.arity();
    v.defined_uses();
    v.acyclic();
    v.definitions();
    v.types();
    v.weights();
    v.names();
    if v.errors.is_empty() {
        Ok(())
    } else {
        Err(v.errors)
    }
}

/// The state of one verification.
struct Verifier<'g> {
    g: &'g Graph,
    num: Numbering,
    errors: Vec<VerifyError>,
    /// Nodes whose operands or results are too broken to run shape inference on.
    skip_infer: HashSet<NodeId>,
}

/// `n`, `n to m` or `at least n`.
fn count_range(min: usize, max: usize) -> String {
    if min == max {
        min.to_string()
    } else if max == usize::MAX {
        format!("at least {min}")
    } else {
        format!("{min} to {max}")
    }
}

/// Two types agree when element type and rank are equal and each dim is equal or `?`.
fn types_agree(a: &TensorType, b: &TensorType) -> bool {
    let unknown = |d: &Dim| matches!(d, Dim::Sym(s) if s == "?");
    a.dtype == b.dtype
        && a.rank() == b.rank()
        && a.dims
            .iter()
            .zip(&b.dims)
            .all(|(x, y)| x == y || unknown(x) || unknown(y))
}

/// `nnz=.. pattern=.. zero_rows=..`.
fn facts_text(f: &SparsityFacts) -> String {
    format!(
        "nnz={} pattern={} zero_rows={}",
        f.nnz, f.pattern, f.zero_rows
    )
}

impl Verifier<'_> {
    /// Records a violation.
    fn report(&mut self, invariant: u8, location: String, message: String) {
        self.errors.push(VerifyError {
            invariant,
            location,
            message,
        });
    }

    /// `%7 (matmul)`.
    fn node_loc(&self, n: NodeId) -> String {
        format!("{} ({})", self.num.node(n), self.g.node(n).op.name())
    }

    /// True when `v` is an id of this graph.
    fn in_graph(&self, v: ValueId) -> bool {
        v.index() < self.g.value_count()
    }

    /// Invariant 1: operand and result counts, required operands present.
    fn arity(&mut self) {
        for n in self.num.nodes().to_vec() {
            let node = self.g.node(n);
            let Arity {
                min_inputs,
                max_inputs,
                max_outputs,
            } = node.op.arity();
            let loc = self.node_loc(n);
            let mut bad = Vec::new();
            if !(min_inputs..=max_inputs).contains(&node.inputs.len()) {
                bad.push(format!(
                    "has {} operands, expected {}",
                    node.inputs.len(),
                    count_range(min_inputs, max_inputs)
                ));
            }
            if !(1..=max_outputs).contains(&node.outputs.len()) {
                bad.push(format!(
                    "has {} results, expected {}",
                    node.outputs.len(),
                    count_range(1, max_outputs)
                ));
            }
            for (k, v) in node.inputs.iter().enumerate().take(min_inputs) {
                if v.is_none() {
                    bad.push(format!("required operand {k} is omitted"));
                }
            }
            if !bad.is_empty() {
                self.skip_infer.insert(n);
            }
            for m in bad {
                self.report(1, loc.clone(), m);
            }
        }
    }

    /// Why `v` is not a defined value (invariant 2), if it is not.
    fn undefined(&self, v: ValueId) -> Option<String> {
        if !self.in_graph(v) {
            return Some("is not a value of this graph".to_string());
        }
        match self.g.value(v).def {
            ValueDef::Result { node, .. } if !self.g.contains_node(node) => Some(format!(
                "({}) is defined by a removed node",
                self.num.value(v)
            )),
            _ => None,
        }
    }

    /// Invariant 2: every operand and graph output is defined.
    fn defined_uses(&mut self) {
        for n in self.num.nodes().to_vec() {
            let node = self.g.node(n);
            for (k, v) in node.inputs.iter().enumerate() {
                if let Some(why) = v.and_then(|v| self.undefined(v)) {
                    self.skip_infer.insert(n);
                    self.report(2, self.node_loc(n), format!("operand {k} {why}"));
                }
            }
        }
        for (k, &v) in self.g.outputs().iter().enumerate() {
            if let Some(why) = self.undefined(v) {
                let loc = self.num.value(v).to_string();
                self.report(2, loc, format!("graph output {k} {why}"));
            }
        }
    }

    /// Invariant 3: the topological order covers every node.
    fn acyclic(&mut self) {
        let sorted: HashSet<NodeId> = self.g.topo_order().into_iter().collect();
        for n in self.num.nodes().to_vec() {
            if !sorted.contains(&n) {
                let loc = self.node_loc(n);
                self.report(3, loc, "is on a cycle or depends on one".to_string());
            }
        }
    }

    /// Invariant 4: value definitions agree with the node result lists and the graph inputs.
    fn definitions(&mut self) {
        for n in self.num.nodes().to_vec() {
            let node = self.g.node(n);
            for (i, &v) in node.outputs.iter().enumerate() {
                let ok = self.in_graph(v)
                    && self.g.value(v).def == ValueDef::Result { node: n, index: i };
                if !ok {
                    self.skip_infer.insert(n);
                    let label = self.num.value(v);
                    let m =
                        format!("result {i} ({label}) is not recorded as result {i} of this node");
                    self.report(4, self.node_loc(n), m);
                }
            }
        }
        for (k, &v) in self.g.inputs().iter().enumerate() {
            if !self.in_graph(v) || self.g.value(v).def != ValueDef::Input(k) {
                let loc = self.num.value(v).to_string();
                self.report(
                    4,
                    loc,
                    format!("graph input {k} is not recorded as graph input {k}"),
                );
            }
        }
        for v in self.g.referenced_values() {
            if !self.in_graph(v) {
                continue;
            }
            let loc = self.num.value(v).to_string();
            match self.g.value(v).def {
                ValueDef::Result { node, index }
                    if self.g.contains_node(node)
                        && self.g.node(node).outputs.get(index) != Some(&v) =>
                {
                    let m = format!(
                        "is recorded as result {index} of {}, which does not list it",
                        self.node_loc(node)
                    );
                    self.report(4, loc, m);
                }
                ValueDef::Input(k) if self.g.inputs().get(k) != Some(&v) => {
                    let m = format!("is recorded as graph input {k}, which is another value");
                    self.report(4, loc, m);
                }
                _ => {}
            }
        }
    }

    /// Invariant 5: recorded result types agree with shape inference.
    fn types(&mut self) {
        for n in self.num.nodes().to_vec() {
            if self.skip_infer.contains(&n) {
                continue;
            }
            let node = self.g.node(n);
            let facts: Vec<Option<InputFact>> = node
                .inputs
                .iter()
                .map(|v| {
                    v.map(|v| InputFact {
                        ty: &self.g.value(v).ty,
                        value: self.g.const_data(v),
                    })
                })
                .collect();
            let loc = self.node_loc(n);
            let inferred = match shape::infer(&node.op, &facts, node.outputs.len()) {
                Ok(t) => t,
                Err(e) => {
                    self.report(5, loc, e.to_string());
                    continue;
                }
            };
            if inferred.len() != node.outputs.len() {
                let m = format!(
                    "shape inference gives {} types for {} results",
                    inferred.len(),
                    node.outputs.len()
                );
                self.report(5, loc, m);
                continue;
            }
            for (i, (&v, want)) in node.outputs.iter().zip(&inferred).enumerate() {
                let have = &self.g.value(v).ty;
                if !types_agree(have, want) {
                    let m = format!("result {i} has type {have}, inferred {want}");
                    self.report(5, loc.clone(), m);
                }
            }
        }
    }

    /// Invariant 6: weight types, facts and data agree.
    fn weights(&mut self) {
        for w in self.num.weights().to_vec() {
            let value = self.g.value(w);
            let Some(weight) = self.g.weight(w) else {
                continue;
            };
            let loc = self.num.value(w).to_string();
            let ty = &value.ty;
            let facts = &weight.facts;
            let mut bad = Vec::new();
            let numel = ty
                .shape()
                .and_then(|s| s.iter().try_fold(1usize, |n, &d| n.checked_mul(d)));
            match numel {
                None => bad.push(format!("type {ty} is not fully known or too large")),
                Some(n) if n != facts.numel => bad.push(format!(
                    "facts count {} elements, type {ty} has {n}",
                    facts.numel
                )),
                Some(_) => {}
            }
            if facts.nnz > facts.numel {
                bad.push(format!(
                    "facts count {} nonzeros in {} elements",
                    facts.nnz, facts.numel
                ));
            }
            if let Some(data) = weight.data.as_deref() {
                if data.ty() != *ty {
                    bad.push(format!("type {ty} does not match its data {}", data.ty()));
                }
                let computed = SparsityFacts::compute(data);
                if computed != *facts {
                    bad.push(format!(
                        "facts {} differ from the data's {}",
                        facts_text(facts),
                        facts_text(&computed)
                    ));
                }
            }
            for m in bad {
                self.report(6, loc.clone(), m);
            }
        }
    }

    /// Invariant 7: graph input and output names are non-empty and unique.
    fn names(&mut self) {
        let roles = self
            .g
            .inputs()
            .iter()
            .enumerate()
            .map(|(k, &v)| (format!("graph input {k}"), v))
            .chain(
                self.g
                    .outputs()
                    .iter()
                    .enumerate()
                    .map(|(k, &v)| (format!("graph output {k}"), v)),
            );
        let mut seen_values: HashSet<ValueId> = HashSet::new();
        let mut by_name: HashMap<&str, (String, ValueId)> = HashMap::new();
        let mut bad = Vec::new();
        for (role, v) in roles {
            if !self.in_graph(v) || !seen_values.insert(v) {
                continue;
            }
            let name = self.g.value(v).name.as_str();
            let loc = self.num.value(v).to_string();
            if name.is_empty() {
                bad.push((loc, format!("{role} has an empty name")));
            } else if let Some((first_role, first)) = by_name.get(name) {
                bad.push((
                    loc,
                    format!(
                        "{role} has the same name {} as {first_role} ({})",
                        quote(name),
                        self.num.value(*first)
                    ),
                ));
            } else {
                by_name.insert(name, (role, v));
            }
        }
        for (loc, m) in bad {
            self.report(7, loc, m);
        }
    }
}
