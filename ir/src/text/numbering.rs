//! The printed names of values and nodes, shared by the printer and the verifier.

use super::ident_or_quoted;
use crate::graph::{Graph, NodeId, ValueDef, ValueId};
use std::collections::{HashMap, HashSet};

/// Maps every value and node of a graph to the name the printer gives it (`%x`, `%7`, `@w3`).
///
/// Nodes print in topological order (nodes on a cycle, which have none, follow in insertion
/// order). Graph inputs and outputs with a unique non-empty source name keep it; every other
/// value is numbered densely in print order: unnamed graph inputs first, then node results, then
/// unnamed graph outputs that no node defines. Weights are numbered `@w0, @w1, ...` in order of
/// first use (node operands in print order, then graph outputs). Results of removed nodes that
/// are still read (dangling uses, which have no defining line) are numbered after every printed
/// value, so everything a node or graph output reads has a name; dead entries of the value table
/// that nothing reads are `%<unprinted>`.
#[derive(Clone, Debug)]
pub struct Numbering {
    values: Vec<String>,
    nodes: HashMap<NodeId, String>,
    order: Vec<NodeId>,
    weights: Vec<ValueId>,
}

/// Hands out `%N` and `@wN` names.
struct Namer {
    values: Vec<Option<String>>,
    next_value: usize,
    next_weight: usize,
}

impl Namer {
    /// Gives `v` the next number of its kind unless it is named already; true when it did.
    fn number(&mut self, g: &Graph, v: ValueId) -> bool {
        let Some(slot) = self.values.get_mut(v.index()) else {
            return false;
        };
        if slot.is_some() {
            return false;
        }
        if is_weight(g, v) {
            *slot = Some(format!("@w{}", self.next_weight));
            self.next_weight += 1;
        } else {
            *slot = Some(format!("%{}", self.next_value));
            self.next_value += 1;
        }
        true
    }
}

/// True when `v` is a weight of `g` (false for an id that is not part of `g`).
fn is_weight(g: &Graph, v: ValueId) -> bool {
    v.index() < g.value_count() && matches!(g.value(v).def, ValueDef::Weight(_))
}

/// Placeholder for an id that does not print (a dead value or one from another graph).
const UNPRINTED_VALUE: &str = "%<unprinted>";
/// Placeholder for a node that does not exist.
const REMOVED_NODE: &str = "<removed node>";

impl Numbering {
    /// Numbers the values and nodes of `g`.
    pub fn new(g: &Graph) -> Numbering {
        let mut order = g.topo_order();
        if order.len() < g.node_count() {
            let seen: HashSet<NodeId> = order.iter().copied().collect();
            order.extend(g.node_ids().into_iter().filter(|n| !seen.contains(n)));
        }
        let mut namer = Namer {
            values: vec![None; g.value_count()],
            next_value: 0,
            next_weight: 0,
        };
        // Graph inputs and outputs with a unique, non-empty source name keep it.
        let mut taken: HashSet<String> = HashSet::new();
        for &v in g.inputs().iter().chain(g.outputs()) {
            if v.index() >= g.value_count() || is_weight(g, v) {
                continue;
            }
            let name = &g.value(v).name;
            let slot = &mut namer.values[v.index()];
            if slot.is_some() || name.is_empty() {
                continue;
            }
            let label = format!("%{}", ident_or_quoted(name));
            if taken.insert(label.clone()) {
                *slot = Some(label);
            }
        }
        for &v in g.inputs() {
            namer.number(g, v);
        }
        let mut weights = Vec::new();
        for &n in &order {
            let node = g.node(n);
            for &v in node.inputs.iter().flatten() {
                if is_weight(g, v) && namer.number(g, v) {
                    weights.push(v);
                }
            }
            for &v in &node.outputs {
                namer.number(g, v);
            }
        }
        for &v in g.outputs() {
            if is_weight(g, v) && namer.number(g, v) {
                weights.push(v);
            } else {
                namer.number(g, v);
            }
        }
        // Operands whose producer was removed do not print but still need a name.
        for v in g.referenced_values() {
            namer.number(g, v);
        }
        let values: Vec<String> = namer
            .values
            .into_iter()
            .map(|s| s.unwrap_or_else(|| UNPRINTED_VALUE.to_string()))
            .collect();
        let nodes = order
            .iter()
            .enumerate()
            .map(|(pos, &n)| {
                let label = match g.node(n).outputs.first() {
                    Some(v) => values
                        .get(v.index())
                        .map_or(UNPRINTED_VALUE, String::as_str)
                        .to_string(),
                    None => format!("node#{pos}"),
                };
                (n, label)
            })
            .collect();
        Numbering {
            values,
            nodes,
            order,
            weights,
        }
    }

    /// The printed name of a value (`%x`, `%7`, `@w3`, `%"gpu_0/data_0"`; `%<unprinted>` for a
    /// value nothing reads).
    pub fn value(&self, v: ValueId) -> &str {
        self.values
            .get(v.index())
            .map_or(UNPRINTED_VALUE, String::as_str)
    }

    /// The printed name of a node: the name of its first result, or `node#K` (K its position in
    /// print order) for a node without results.
    pub fn node(&self, n: NodeId) -> &str {
        self.nodes.get(&n).map_or(REMOVED_NODE, String::as_str)
    }

    /// Every node in print order.
    pub fn nodes(&self) -> &[NodeId] {
        &self.order
    }

    /// The weights that print (those some node or graph output reads), in `@w` order.
    pub fn weights(&self) -> &[ValueId] {
        &self.weights
    }
}
