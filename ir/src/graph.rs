//! The graph: values, nodes and the edges between them.
//!
//! Nodes live in a `petgraph::StableDiGraph` that stays private to this module: the rest of
//! sparsec sees only [`NodeId`], [`ValueId`] and the methods below. Operand order is the explicit,
//! ordered input list of each node, never edge-iteration order. Edges (producer node -> consumer
//! node) are kept in step with the operand lists by every mutating method.

use crate::op::Op;
use crate::sparsity::SparsityFacts;
use crate::tensor::Tensor;
use crate::types::TensorType;
use petgraph::stable_graph::{NodeIndex, StableDiGraph};
use petgraph::visit::EdgeRef;
use petgraph::Direction;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// Identifies a value (graph input, weight or node result) of one [`Graph`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueId(u32);

impl ValueId {
    /// The dense index of this value in its graph's value table.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Identifies a node of one [`Graph`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(u32);

impl NodeId {
    /// The index of this node (stable while the node exists, never reused).
    pub fn index(self) -> usize {
        self.0 as usize
    }

    fn ix(self) -> NodeIndex {
        NodeIndex::new(self.0 as usize)
    }
}

/// A weight: a value whose data is known at compile time, with its sparsity facts.
#[derive(Clone, Debug, PartialEq)]
pub struct Weight {
    /// The data; `None` for a weight read from the text form, which prints statistics only.
    pub data: Option<Arc<Tensor>>,
    /// Facts about its zeros, computed when the weight was created.
    pub facts: SparsityFacts,
}

/// Where a value comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum ValueDef {
    /// The `n`-th graph input.
    Input(usize),
    /// A weight (compile-time constant).
    Weight(Weight),
    /// Result `index` of `node`.
    Result {
        /// The producing node.
        node: NodeId,
        /// Which of its results.
        index: usize,
    },
}

/// A value of the graph.
#[derive(Clone, Debug, PartialEq)]
pub struct Value {
    /// The name it had in the source model (may be empty).
    pub name: String,
    /// Its type.
    pub ty: TensorType,
    /// Its definition.
    pub def: ValueDef,
}

/// A node: an op applied to ordered operands, producing ordered results.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// The name it had in the source model (may be empty).
    pub name: String,
    /// The op and its attributes.
    pub op: Op,
    /// Operands in order; `None` is an omitted optional operand.
    pub inputs: Vec<Option<ValueId>>,
    /// Results in order.
    pub outputs: Vec<ValueId>,
}

/// A dataflow graph of [`Op`]s over typed values.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    /// The graph's name.
    pub name: String,
    values: Vec<Value>,
    nodes: StableDiGraph<Node, usize>,
    inputs: Vec<ValueId>,
    outputs: Vec<ValueId>,
}

impl Graph {
    /// An empty graph.
    pub fn new(name: impl Into<String>) -> Graph {
        Graph {
            name: name.into(),
            ..Graph::default()
        }
    }

    fn push_value(&mut self, v: Value) -> ValueId {
        let id = ValueId(self.values.len() as u32);
        self.values.push(v);
        id
    }

    /// Adds a graph input.
    pub fn add_input(&mut self, name: impl Into<String>, ty: TensorType) -> ValueId {
        let n = self.inputs.len();
        let id = self.push_value(Value {
            name: name.into(),
            ty,
            def: ValueDef::Input(n),
        });
        self.inputs.push(id);
        id
    }

    /// Adds a weight with data; its sparsity facts are computed here.
    pub fn add_weight(&mut self, name: impl Into<String>, data: Tensor) -> ValueId {
        let facts = SparsityFacts::compute(&data);
        let ty = data.ty();
        self.push_value(Value {
            name: name.into(),
            ty,
            def: ValueDef::Weight(Weight {
                data: Some(Arc::new(data)),
                facts,
            }),
        })
    }

    /// Adds a weight known only by its type and facts (as read from the text form).
    pub fn add_weight_facts(
        &mut self,
        name: impl Into<String>,
        ty: TensorType,
        facts: SparsityFacts,
    ) -> ValueId {
        self.push_value(Value {
            name: name.into(),
            ty,
            def: ValueDef::Weight(Weight { data: None, facts }),
        })
    }

    /// Adds a node with one result per entry of `outputs` (name, type); returns the node.
    pub fn add_node(
        &mut self,
        name: impl Into<String>,
        op: Op,
        inputs: Vec<Option<ValueId>>,
        outputs: Vec<(String, TensorType)>,
    ) -> NodeId {
        let ix = self.nodes.add_node(Node {
            name: name.into(),
            op,
            inputs: inputs.clone(),
            outputs: Vec::new(),
        });
        let id = NodeId(ix.index() as u32);
        let outs: Vec<ValueId> = outputs
            .into_iter()
            .enumerate()
            .map(|(index, (name, ty))| {
                self.push_value(Value {
                    name,
                    ty,
                    def: ValueDef::Result { node: id, index },
                })
            })
            .collect();
        self.nodes[ix].outputs = outs;
        for (k, v) in inputs.iter().enumerate() {
            if let Some(v) = v {
                self.link(*v, id, k);
            }
        }
        id
    }

    fn link(&mut self, v: ValueId, consumer: NodeId, operand: usize) {
        if let ValueDef::Result { node, .. } = self.values[v.index()].def {
            self.nodes.add_edge(node.ix(), consumer.ix(), operand);
        }
    }

    fn unlink(&mut self, v: ValueId, consumer: NodeId, operand: usize) {
        if let ValueDef::Result { node, .. } = self.values[v.index()].def {
            let edge = self
                .nodes
                .edges_connecting(node.ix(), consumer.ix())
                .find(|e| *e.weight() == operand)
                .map(|e| e.id());
            if let Some(e) = edge {
                self.nodes.remove_edge(e);
            }
        }
    }

    /// The graph inputs in order.
    pub fn inputs(&self) -> &[ValueId] {
        &self.inputs
    }

    /// The graph outputs in order.
    pub fn outputs(&self) -> &[ValueId] {
        &self.outputs
    }

    /// Sets the graph outputs.
    pub fn set_outputs(&mut self, outputs: Vec<ValueId>) {
        self.outputs = outputs;
    }

    /// A value.
    pub fn value(&self, v: ValueId) -> &Value {
        &self.values[v.index()]
    }

    /// A value, mutable (to refine its type or rename it).
    pub fn value_mut(&mut self, v: ValueId) -> &mut Value {
        &mut self.values[v.index()]
    }

    /// The weight behind a value, if it is one.
    pub fn weight(&self, v: ValueId) -> Option<&Weight> {
        match &self.values[v.index()].def {
            ValueDef::Weight(w) => Some(w),
            _ => None,
        }
    }

    /// The data of a value known at compile time (a weight with data).
    pub fn const_data(&self, v: ValueId) -> Option<&Tensor> {
        self.weight(v).and_then(|w| w.data.as_deref())
    }

    /// Number of entries in the value table (including values no node uses any more).
    pub fn value_count(&self) -> usize {
        self.values.len()
    }

    /// A node.
    pub fn node(&self, n: NodeId) -> &Node {
        &self.nodes[n.ix()]
    }

    /// The op of a node, mutable (attributes only; operands change through [`Graph::set_input`]).
    pub fn op_mut(&mut self, n: NodeId) -> &mut Op {
        &mut self.nodes[n.ix()].op
    }

    /// True while the node exists.
    pub fn contains_node(&self, n: NodeId) -> bool {
        self.nodes.contains_node(n.ix())
    }

    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.nodes.node_count()
    }

    /// Every node id in insertion order.
    pub fn node_ids(&self) -> Vec<NodeId> {
        self.nodes
            .node_indices()
            .map(|i| NodeId(i.index() as u32))
            .collect()
    }

    /// The producing node and result index of a value, if a node produces it.
    pub fn producer(&self, v: ValueId) -> Option<(NodeId, usize)> {
        match self.values[v.index()].def {
            ValueDef::Result { node, index } if self.contains_node(node) => Some((node, index)),
            _ => None,
        }
    }

    /// Every `(node, operand index)` that reads `v`, in node order.
    pub fn users(&self, v: ValueId) -> Vec<(NodeId, usize)> {
        let mut out: Vec<(NodeId, usize)> = match self.producer(v) {
            Some((p, _)) => self
                .nodes
                .edges_directed(p.ix(), Direction::Outgoing)
                .map(|e| (NodeId(e.target().index() as u32), *e.weight()))
                .filter(|&(n, k)| self.node(n).inputs[k] == Some(v))
                .collect(),
            None => self
                .node_ids()
                .into_iter()
                .flat_map(|n| {
                    self.node(n)
                        .inputs
                        .iter()
                        .enumerate()
                        .filter(|(_, i)| **i == Some(v))
                        .map(move |(k, _)| (n, k))
                        .collect::<Vec<_>>()
                })
                .collect(),
        };
        out.sort();
        out.dedup();
        out
    }

    /// Replaces operand `k` of node `n`.
    pub fn set_input(&mut self, n: NodeId, k: usize, v: Option<ValueId>) {
        if let Some(old) = self.nodes[n.ix()].inputs[k] {
            self.unlink(old, n, k);
        }
        self.nodes[n.ix()].inputs[k] = v;
        if let Some(v) = v {
            self.link(v, n, k);
        }
    }

    /// Makes every reader of `old` (nodes and graph outputs) read `new` instead.
    pub fn replace_all_uses(&mut self, old: ValueId, new: ValueId) {
        for (n, k) in self.users(old) {
            self.set_input(n, k, Some(new));
        }
        for o in &mut self.outputs {
            if *o == old {
                *o = new;
            }
        }
    }

    /// Removes a node; its results stay in the value table but no longer have a producer.
    pub fn remove_node(&mut self, n: NodeId) {
        self.nodes.remove_node(n.ix());
    }

    /// Removes every node none of whose results reaches a graph output; returns how many.
    pub fn remove_dead_nodes(&mut self) -> usize {
        let live = self.live_nodes();
        let dead: Vec<NodeId> = self
            .node_ids()
            .into_iter()
            .filter(|n| !live.contains(n))
            .collect();
        for &n in &dead {
            self.remove_node(n);
        }
        dead.len()
    }

    fn live_nodes(&self) -> BTreeSet<NodeId> {
        let mut live = BTreeSet::new();
        let mut stack: Vec<NodeId> = self
            .outputs
            .iter()
            .filter_map(|&v| self.producer(v).map(|p| p.0))
            .collect();
        while let Some(n) = stack.pop() {
            if live.insert(n) {
                for v in self.node(n).inputs.iter().flatten() {
                    if let Some((p, _)) = self.producer(*v) {
                        stack.push(p);
                    }
                }
            }
        }
        live
    }

    /// Nodes in topological order; among ready nodes the one inserted first goes first, so the
    /// order is deterministic and follows the source model where it can.
    pub fn topo_order(&self) -> Vec<NodeId> {
        let ids = self.node_ids();
        let mut indeg: HashMap<NodeId, usize> = HashMap::new();
        for &n in &ids {
            let deps: BTreeSet<NodeId> = self
                .node(n)
                .inputs
                .iter()
                .flatten()
                .filter_map(|v| self.producer(*v).map(|p| p.0))
                .collect();
            indeg.insert(n, deps.len());
        }
        let mut ready: BTreeSet<NodeId> = ids.iter().copied().filter(|n| indeg[n] == 0).collect();
        let mut order = Vec::with_capacity(ids.len());
        while let Some(&n) = ready.iter().next() {
            ready.remove(&n);
            order.push(n);
            let consumers: BTreeSet<NodeId> = self
                .nodes
                .edges_directed(n.ix(), Direction::Outgoing)
                .map(|e| NodeId(e.target().index() as u32))
                .collect();
            for c in consumers {
                let d = indeg.get_mut(&c).expect("consumer is a node");
                *d -= 1;
                if *d == 0 {
                    ready.insert(c);
                }
            }
        }
        order
    }

    /// Every value some node or graph output reads, plus the graph inputs, in value order.
    pub fn referenced_values(&self) -> BTreeSet<ValueId> {
        let mut set: BTreeSet<ValueId> = self
            .inputs
            .iter()
            .chain(self.outputs.iter())
            .copied()
            .collect();
        for n in self.node_ids() {
            let node = self.node(n);
            set.extend(node.inputs.iter().flatten().copied());
            set.extend(node.outputs.iter().copied());
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::DType;

    #[test]
    fn build_rewire_and_order() {
        let mut g = Graph::new("t");
        let ty = TensorType::known(DType::F32, &[2]);
        let x = g.add_input("x", ty.clone());
        let a = g.add_node(
            "a",
            Op::Relu {},
            vec![Some(x)],
            vec![("a".into(), ty.clone())],
        );
        let av = g.node(a).outputs[0];
        let b = g.add_node(
            "b",
            Op::Neg {},
            vec![Some(av)],
            vec![("b".into(), ty.clone())],
        );
        let bv = g.node(b).outputs[0];
        let c = g.add_node(
            "c",
            Op::Add {},
            vec![Some(av), Some(bv)],
            vec![("c".into(), ty.clone())],
        );
        g.set_outputs(vec![g.node(c).outputs[0]]);
        assert_eq!(g.topo_order(), vec![a, b, c]);
        assert_eq!(g.users(av), vec![(b, 0), (c, 0)]);
        assert_eq!(g.users(x), vec![(a, 0)]);
        // Bypass b: c reads a twice; b is dead.
        g.replace_all_uses(bv, av);
        assert_eq!(g.users(av), vec![(b, 0), (c, 0), (c, 1)]);
        assert_eq!(g.remove_dead_nodes(), 1);
        assert_eq!(g.users(av), vec![(c, 0), (c, 1)]);
        assert_eq!(g.topo_order(), vec![a, c]);
    }
}
