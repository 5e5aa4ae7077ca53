//! Channel spaces: the analysis shared by `prune-channels` and `propagate-sparsity`, which follows
//! every output channel of a weight-bearing node through the graph and records each weight slice
//! that belongs to it, so a set of channels can be removed (or zeroed) consistently.
//!
//! A *space* is the set of output channels of one producer (a `Conv` with `group = 1`, a `Gemm`
//! with a constant `B`, a `MatMul` with a constant rank-2 `B`). Walking the graph in topological
//! order, each value that carries channels gets a [`ChanInfo`]: the axis they run along and the
//! list of segments laid end to end on it (a `Concat` puts several spaces side by side, a
//! `Flatten` to a `Gemm` turns each channel into `H * W` consecutive features). Channel-preserving
//! nodes (BatchNormalization, elementwise activations, pools, depthwise convolutions) pass the
//! info on and record the constant operands to slice; elementwise nodes joining several carried
//! values (a residual `Add`) merge their spaces into one unit with a shared mask; weight-bearing
//! consumers record their input-channel slice (a *terminal*). A value read by anything else, or
//! returned by the graph, *pins* its spaces: they are never changed, so the rewrite always yields
//! a valid graph.

use super::infer_shapes::infer_node;
use sparsec_ir::{Dim, Family, Graph, NodeId, Op, Tensor, ValueDef, ValueId};
use std::collections::HashMap;

/// A run of channels of one space laid on an axis; each channel covers `scale` consecutive
/// positions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Seg {
    /// The space (not necessarily its union-find root).
    pub space: usize,
    /// Channels in the run.
    pub len: usize,
    /// Positions per channel.
    pub scale: usize,
}

/// The channel structure of a value: the axis and the segments along it.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct ChanInfo {
    /// The axis of the value the channels run along.
    pub axis: usize,
    /// Segments in order.
    pub segs: Vec<Seg>,
}

impl ChanInfo {
    /// Positions along the axis.
    pub fn total(&self) -> usize {
        self.segs.iter().map(|s| s.len * s.scale).sum()
    }

    fn same_layout(&self, other: &ChanInfo) -> bool {
        self.axis == other.axis
            && self.segs.len() == other.segs.len()
            && self
                .segs
                .iter()
                .zip(&other.segs)
                .all(|(a, b)| a.len == b.len && a.scale == b.scale)
    }
}

/// What a weight slice is to its channels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Role {
    /// The producer's own weight or bias (one slice per output channel).
    Producer,
    /// A constant of a channel-preserving node (BN statistics, an added constant).
    Pass,
    /// A consumer's weight, one slice per input channel it reads.
    Terminal,
}

/// One rewrite the removal of channels needs.
#[derive(Clone, Debug)]
pub(super) enum EditKind {
    /// Slice (or zero) operand `operand` of the node along `axis`.
    Operand {
        /// The operand index.
        operand: usize,
        /// The axis of the operand's tensor.
        axis: usize,
        /// What the slice is.
        role: Role,
    },
    /// Set entry 1 of the Reshape's constant shape operand to the new feature count.
    ReshapeShape,
    /// Set the depthwise Conv's `group` to the new channel count.
    Group,
}

/// A rewrite of one node for the channels of `info`.
#[derive(Clone, Debug)]
pub(super) struct Edit {
    /// The node.
    pub node: NodeId,
    /// What to rewrite.
    pub kind: EditKind,
    /// The channels along the edited axis.
    pub info: ChanInfo,
}

/// A weight-bearing node whose output channels are one space.
#[derive(Clone, Debug)]
pub(super) struct Producer {
    /// The node.
    pub node: NodeId,
    /// Its weight operand index.
    pub operand: usize,
    /// The axis of the weight that indexes output channels.
    pub axis: usize,
}

/// The result of the analysis: spaces (a union-find with pins), producers and edits.
#[derive(Debug, Default)]
pub(super) struct ChannelPlan {
    parent: Vec<usize>,
    len: Vec<usize>,
    pinned: Vec<bool>,
    producer_of: Vec<Option<usize>>,
    /// Every producer; a producer's space is `space_of_producer[i]`.
    pub producers: Vec<Producer>,
    space_of_producer: Vec<usize>,
    /// Every recorded rewrite.
    pub edits: Vec<Edit>,
}

/// What visiting one node yields when it succeeds.
#[derive(Default)]
struct Outcome {
    edits: Vec<Edit>,
    unions: Vec<(usize, usize)>,
    out: Vec<(ValueId, ChanInfo)>,
    pin: Vec<ChanInfo>,
}

/// The f32 data of a constant operand.
pub(super) fn f32_const(graph: &Graph, v: Option<ValueId>) -> Option<&Tensor> {
    graph.const_data(v?).filter(|t| t.as_f32().is_some())
}

/// Operand `k` of a node, if present.
fn operand(graph: &Graph, n: NodeId, k: usize) -> Option<ValueId> {
    graph.node(n).inputs.get(k).copied().flatten()
}

/// True when no node reads `v` and the graph does not return it.
fn unused(graph: &Graph, v: ValueId) -> bool {
    graph.users(v).is_empty() && !graph.outputs().contains(&v)
}

impl ChannelPlan {
    fn new_space(&mut self, len: usize, pinned: bool) -> usize {
        self.parent.push(self.parent.len());
        self.len.push(len);
        self.pinned.push(pinned);
        self.producer_of.push(None);
        self.parent.len() - 1
    }

    /// The root of a space.
    pub fn find(&self, mut s: usize) -> usize {
        while self.parent[s] != s {
            s = self.parent[s];
        }
        s
    }

    fn union(&mut self, a: usize, b: usize) {
        let (a, b) = (self.find(a), self.find(b));
        if a != b {
            self.parent[b] = a;
            self.pinned[a] |= self.pinned[b];
        }
    }

    fn pin(&mut self, info: &ChanInfo) {
        for s in &info.segs {
            let r = self.find(s.space);
            self.pinned[r] = true;
        }
    }

    /// Channels of a space.
    pub fn space_len(&self, s: usize) -> usize {
        self.len[self.find(s)]
    }

    /// The unpinned units (root spaces) with the producers in each, in producer order.
    pub fn units(&self) -> Vec<(usize, Vec<usize>)> {
        let mut out: Vec<(usize, Vec<usize>)> = Vec::new();
        for (i, &s) in self.space_of_producer.iter().enumerate() {
            let r = self.find(s);
            if self.pinned[r] {
                continue;
            }
            match out.iter_mut().find(|(root, _)| *root == r) {
                Some((_, ps)) => ps.push(i),
                None => out.push((r, vec![i])),
            }
        }
        out
    }

    /// Maps each position along an info's axis to `(root space, channel)`.
    pub fn positions(&self, info: &ChanInfo) -> Vec<(usize, usize)> {
        let mut out = Vec::with_capacity(info.total());
        for s in &info.segs {
            let r = self.find(s.space);
            for c in 0..s.len {
                out.extend(std::iter::repeat_n((r, c), s.scale));
            }
        }
        out
    }

    /// Analyzes a graph whose types are inferred.
    pub fn analyze(graph: &Graph) -> ChannelPlan {
        let mut p = ChannelPlan::default();
        let mut info: HashMap<ValueId, ChanInfo> = HashMap::new();
        for n in graph.topo_order() {
            let node = graph.node(n);
            let carried: Vec<(usize, ChanInfo)> = node
                .inputs
                .iter()
                .enumerate()
                .filter_map(|(k, v)| v.and_then(|v| info.get(&v)).map(|i| (k, i.clone())))
                .collect();
            match p.visit(graph, n, &carried) {
                Some(o) => {
                    p.edits.extend(o.edits);
                    for (a, b) in o.unions {
                        p.union(a, b);
                    }
                    for i in &o.pin {
                        p.pin(i);
                    }
                    info.extend(o.out);
                }
                None => {
                    for (_, i) in &carried {
                        p.pin(i);
                    }
                }
            }
        }
        for v in graph.outputs() {
            if let Some(i) = info.get(v) {
                let i = i.clone();
                p.pin(&i);
            }
        }
        p
    }

    /// Registers node `n` as the producer of a fresh space of `len` channels.
    fn produce(&mut self, graph: &Graph, n: NodeId, len: usize, axis: usize, o: &mut Outcome) {
        let s = self.new_space(len, false);
        self.producer_of[s] = Some(self.producers.len());
        self.space_of_producer.push(s);
        self.producers.push(Producer {
            node: n,
            operand: 1,
            axis,
        });
        let out = graph.node(n).outputs[0];
        let rank = graph.value(out).ty.rank();
        let out_axis = if matches!(graph.node(n).op, Op::MatMul {}) {
            rank.saturating_sub(1)
        } else {
            1
        };
        let info = ChanInfo {
            axis: out_axis,
            segs: vec![Seg {
                space: s,
                len,
                scale: 1,
            }],
        };
        let mut rows = |operand, axis| {
            o.edits.push(Edit {
                node: n,
                kind: EditKind::Operand {
                    operand,
                    axis,
                    role: Role::Producer,
                },
                info: info.clone(),
            })
        };
        rows(1, axis);
        if matches!(graph.node(n).op, Op::Conv { .. }) && operand(graph, n, 2).is_some() {
            rows(2, 0);
        }
        o.out.push((out, info));
    }

    /// Visits one node; `None` pins every carried operand.
    fn visit(
        &mut self,
        graph: &Graph,
        n: NodeId,
        carried: &[(usize, ChanInfo)],
    ) -> Option<Outcome> {
        let node = graph.node(n);
        let mut o = Outcome::default();
        let single = || -> Option<ChanInfo> {
            match carried {
                [(0, i)] => Some(i.clone()),
                _ => None,
            }
        };
        let edit = |kind: EditKind, info: &ChanInfo| Edit {
            node: n,
            kind,
            info: info.clone(),
        };
        let operand_edit = |operand, axis, role, info: &ChanInfo| {
            edit(
                EditKind::Operand {
                    operand,
                    axis,
                    role,
                },
                info,
            )
        };
        // Extra results (pool indices, dropout masks) must be unused.
        if node.outputs.iter().skip(1).any(|&v| !unused(graph, v)) {
            return None;
        }
        let out0 = *node.outputs.first()?;
        let out_dims = graph.value(out0).ty.dims.clone();
        match &node.op {
            Op::Conv { group, .. } => {
                let w = f32_const(graph, operand(graph, n, 1)).filter(|w| w.rank() >= 3)?;
                let cout = w.shape()[0];
                let bias = operand(graph, n, 2);
                if bias.is_some()
                    && f32_const(graph, bias).is_none_or(|b| b.shape() != [cout].as_slice())
                {
                    return None;
                }
                if *group == 1 {
                    match single() {
                        Some(i) if i.axis == 1 && i.total() == w.shape()[1] => {
                            o.edits.push(operand_edit(1, 1, Role::Terminal, &i));
                        }
                        _ => o.pin.extend(carried.iter().map(|(_, i)| i.clone())),
                    }
                    self.produce(graph, n, cout, 0, &mut o);
                } else {
                    // A depthwise convolution keeps channels one to one.
                    let i = single()?;
                    let depthwise = *group as usize == cout && w.shape()[1] == 1;
                    if !depthwise || i.axis != 1 || i.total() != cout {
                        return None;
                    }
                    o.edits.push(operand_edit(1, 0, Role::Pass, &i));
                    if bias.is_some() {
                        o.edits.push(operand_edit(2, 0, Role::Pass, &i));
                    }
                    o.edits.push(edit(EditKind::Group, &i));
                    o.out.push((out0, i));
                }
            }
            Op::Gemm {
                trans_a, trans_b, ..
            } => {
                let b = f32_const(graph, operand(graph, n, 1)).filter(|b| b.rank() == 2)?;
                let (k, nout, out_axis) = if *trans_b != 0 {
                    (b.shape()[1], b.shape()[0], 0)
                } else {
                    (b.shape()[0], b.shape()[1], 1)
                };
                match single() {
                    Some(i) if *trans_a == 0 && i.axis == 1 && i.total() == k => {
                        o.edits
                            .push(operand_edit(1, 1 - out_axis, Role::Terminal, &i));
                    }
                    _ => o.pin.extend(carried.iter().map(|(_, i)| i.clone())),
                }
                let out_info = ChanInfo {
                    axis: 1,
                    segs: vec![Seg {
                        space: usize::MAX,
                        len: nout,
                        scale: 1,
                    }],
                };
                let c_edit = match operand(graph, n, 2) {
                    None => Some(None),
                    Some(_) => bcast_edit(graph, n, 2, 2, &out_info, Role::Producer),
                };
                if let Some(c_edit) = c_edit {
                    self.produce(graph, n, nout, out_axis, &mut o);
                    if let Some(mut e) = c_edit {
                        e.info = o.out.last()?.1.clone();
                        o.edits.push(e);
                    }
                }
            }
            Op::MatMul {} => {
                let b = f32_const(graph, operand(graph, n, 1)).filter(|b| b.rank() == 2)?;
                let rank_a = graph.value(operand(graph, n, 0)?).ty.rank();
                if rank_a < 2 {
                    return None;
                }
                match single() {
                    Some(i) if i.axis == rank_a - 1 && i.total() == b.shape()[0] => {
                        o.edits.push(operand_edit(1, 0, Role::Terminal, &i));
                    }
                    _ => o.pin.extend(carried.iter().map(|(_, i)| i.clone())),
                }
                self.produce(graph, n, b.shape()[1], 1, &mut o);
            }
            _ if carried.is_empty() => {}
            Op::BatchNormalization { .. } => {
                let i = single().filter(|i| i.axis == 1)?;
                for k in 1..5 {
                    let t = f32_const(graph, operand(graph, n, k))?;
                    if t.shape() != [i.total()].as_slice() {
                        return None;
                    }
                    o.edits.push(operand_edit(k, 0, Role::Pass, &i));
                }
                o.out.push((out0, i));
            }
            Op::Clip {} | Op::Dropout {} => o.out.push((out0, single()?)),
            op if op.family() == Family::Unary => o.out.push((out0, single()?)),
            Op::MaxPool { .. }
            | Op::AveragePool { .. }
            | Op::LpPool { .. }
            | Op::GlobalAveragePool {}
            | Op::GlobalMaxPool {}
            | Op::GlobalLpPool { .. } => {
                let i = single().filter(|i| i.axis == 1)?;
                o.out.push((out0, i));
            }
            Op::Add {}
            | Op::Sub {}
            | Op::Mul {}
            | Op::Div {}
            | Op::Pow {}
            | Op::PRelu {}
            | Op::Max {}
            | Op::Min {}
            | Op::Sum {}
            | Op::Mean {} => {
                let first = carried[0].1.clone();
                let r = out_dims.len();
                for (k, v) in node.inputs.iter().enumerate() {
                    let v = (*v)?;
                    if let Some((_, i)) = carried.iter().find(|(kk, _)| *kk == k) {
                        if !i.same_layout(&first) || graph.value(v).ty.dims != out_dims {
                            return None;
                        }
                        for (a, b) in first.segs.iter().zip(&i.segs) {
                            o.unions.push((a.space, b.space));
                        }
                    } else if graph.const_data(v).is_some() {
                        if let Some(e) = bcast_edit(graph, n, k, r, &first, Role::Pass)? {
                            o.edits.push(e);
                        }
                    } else {
                        // Another value may only broadcast along the channel axis.
                        let dims = &graph.value(v).ty.dims;
                        let rv = dims.len();
                        if rv > r {
                            return None;
                        }
                        if first.axis + rv >= r && dims[first.axis + rv - r] != Dim::Known(1) {
                            return None;
                        }
                    }
                }
                o.out.push((out0, first));
            }
            Op::Flatten { axis } => {
                let i = single()?;
                let in_dims = &graph.value(operand(graph, n, 0)?).ty.dims;
                let f = norm_axis(*axis, in_dims.len())?;
                if f == 0 || i.axis != f {
                    return None;
                }
                o.out.push((out0, scaled(&i, &in_dims[f + 1..])?));
            }
            Op::Reshape { .. } => {
                let i = single().filter(|i| i.axis == 1)?;
                let in_dims = &graph.value(operand(graph, n, 0)?).ty.dims;
                let shape = graph.const_data(operand(graph, n, 1)?)?.as_i64()?;
                if shape.len() != 2 || out_dims.len() != 2 || in_dims.len() < 2 {
                    return None;
                }
                if out_dims[0] != in_dims[0] || shape[0] == -1 && shape[1] == -1 {
                    return None;
                }
                let out = scaled(&i, &in_dims[2..])?;
                if out_dims[1] != Dim::Known(out.total()) {
                    return None;
                }
                o.edits.push(edit(EditKind::ReshapeShape, &out));
                o.out.push((out0, out));
            }
            Op::Concat { axis } => {
                let a = norm_axis(*axis, out_dims.len())?;
                let mut segs = Vec::new();
                for (k, v) in node.inputs.iter().enumerate() {
                    let v = (*v)?;
                    match carried.iter().find(|(kk, _)| *kk == k) {
                        Some((_, i)) if i.axis == a => segs.extend(i.segs.iter().copied()),
                        Some(_) => return None,
                        None => {
                            let len = graph.value(v).ty.dims.get(a)?.known()?;
                            segs.push(Seg {
                                space: self.new_space(len, true),
                                len,
                                scale: 1,
                            });
                        }
                    }
                }
                o.out.push((out0, ChanInfo { axis: a, segs }));
            }
            _ => return None,
        }
        Some(o)
    }

    /// The positions of `info` kept under `masks` (root space -> keep flags; a pinned space or a
    /// space without a mask keeps everything).
    pub fn kept(&self, info: &ChanInfo, masks: &HashMap<usize, Vec<bool>>) -> Vec<usize> {
        let mut out = Vec::with_capacity(info.total());
        for (pos, (r, c)) in self.positions(info).into_iter().enumerate() {
            let keep = self.pinned[r] || masks.get(&r).is_none_or(|m| m.get(c) != Some(&false));
            if keep {
                out.push(pos);
            }
        }
        out
    }

    /// Applies the edits for `masks`: removes the dropped channels (`zero_only == false`) or only
    /// zeroes the producers' and terminals' slices of them, keeping every shape. Types are
    /// re-inferred; returns whether anything changed. The error names the node.
    pub fn apply(
        &self,
        graph: &mut Graph,
        masks: &HashMap<usize, Vec<bool>>,
        zero_only: bool,
    ) -> Result<bool, String> {
        let mut changed = false;
        let mut old = Vec::new();
        for e in &self.edits {
            let total = e.info.total();
            let keep = self.kept(&e.info, masks);
            if keep.len() == total {
                continue;
            }
            let name = graph.node(e.node).name.clone();
            match e.kind {
                EditKind::Operand {
                    operand: k,
                    axis,
                    role,
                } => {
                    if zero_only && role == Role::Pass {
                        continue;
                    }
                    let v = operand(graph, e.node, k)
                        .ok_or_else(|| format!("node `{name}`: operand {k} is missing"))?;
                    let t = f32_const(graph, Some(v)).ok_or_else(|| {
                        format!("node `{name}`: operand {k} is not an f32 constant")
                    })?;
                    if t.shape().get(axis) != Some(&total) {
                        return Err(format!(
                            "node `{name}`: operand {k} has {:?} positions on axis {axis}, {total} expected",
                            t.shape().get(axis)
                        ));
                    }
                    let new = if zero_only {
                        zero_axis(t, axis, &keep)
                    } else {
                        slice_axis(t, axis, &keep)
                    };
                    let base = graph.value(v).name.clone();
                    let wname = if base.ends_with("_pruned") {
                        base
                    } else {
                        format!("{base}_pruned")
                    };
                    let w = graph.add_weight(wname, new);
                    graph.set_input(e.node, k, Some(w));
                    old.push(v);
                }
                EditKind::ReshapeShape if !zero_only => {
                    let v = operand(graph, e.node, 1)
                        .ok_or_else(|| format!("node `{name}`: shape operand is missing"))?;
                    let mut shape = graph
                        .const_data(v)
                        .and_then(|t| t.as_i64())
                        .ok_or_else(|| format!("node `{name}`: shape is not an i64 constant"))?
                        .to_vec();
                    if shape.get(1).is_some_and(|&d| d != -1) {
                        shape[1] = keep.len() as i64;
                        let w = graph.add_weight(
                            graph.value(v).name.clone(),
                            Tensor::from_i64(&[shape.len()], shape),
                        );
                        graph.set_input(e.node, 1, Some(w));
                        old.push(v);
                    }
                }
                EditKind::Group if !zero_only => {
                    if let Op::Conv { group, .. } = graph.op_mut(e.node) {
                        *group = keep.len() as i64;
                    }
                }
                _ => continue,
            }
            changed = true;
        }
        for v in old {
            release_if_unread(graph, v);
        }
        if changed {
            for n in graph.topo_order() {
                infer_node(graph, n)?;
            }
        }
        Ok(changed)
    }
}

/// The edit slicing constant operand `k` of node `n`, broadcast against a value of rank `r`
/// carrying `info`: `Some(None)` when the constant has size 1 (or no axis) there, `None` when it
/// cannot follow the channels.
fn bcast_edit(
    graph: &Graph,
    n: NodeId,
    k: usize,
    r: usize,
    info: &ChanInfo,
    role: Role,
) -> Option<Option<Edit>> {
    let t = f32_const(graph, operand(graph, n, k))?;
    let rc = t.rank();
    if rc > r {
        return None;
    }
    if info.axis + rc < r {
        return Some(None);
    }
    let axis = info.axis + rc - r;
    match t.shape()[axis] {
        1 => Some(None),
        d if d == info.total() => Some(Some(Edit {
            node: n,
            kind: EditKind::Operand {
                operand: k,
                axis,
                role,
            },
            info: info.clone(),
        })),
        _ => None,
    }
}

/// Normalizes a possibly negative axis of a rank-`r` tensor.
fn norm_axis(axis: i64, r: usize) -> Option<usize> {
    let a = if axis < 0 { axis + r as i64 } else { axis };
    (0..r as i64).contains(&a).then_some(a as usize)
}

/// The info of a flattened value: every channel covers the product of the (known) `trailing`
/// dims, on axis 1.
fn scaled(i: &ChanInfo, trailing: &[Dim]) -> Option<ChanInfo> {
    let f: usize = trailing
        .iter()
        .map(Dim::known)
        .collect::<Option<Vec<_>>>()?
        .iter()
        .product();
    Some(ChanInfo {
        axis: 1,
        segs: i
            .segs
            .iter()
            .map(|s| Seg {
                scale: s.scale * f,
                ..*s
            })
            .collect(),
    })
}

/// The `(outer, axis length, inner)` split of a shape at `axis`.
fn split(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    (
        shape[..axis].iter().product(),
        shape[axis],
        shape[axis + 1..].iter().product(),
    )
}

/// Keeps positions `keep` (ascending) of `axis` of an f32 tensor.
pub(super) fn slice_axis(t: &Tensor, axis: usize, keep: &[usize]) -> Tensor {
    let d = t.to_f32_vec();
    let (outer, len, inner) = split(t.shape(), axis);
    let mut out = Vec::with_capacity(outer * keep.len() * inner);
    for o in 0..outer {
        for &c in keep {
            let at = (o * len + c) * inner;
            out.extend_from_slice(&d[at..at + inner]);
        }
    }
    let mut shape = t.shape().to_vec();
    shape[axis] = keep.len();
    Tensor::from_f32(&shape, out)
}

/// Zeroes every position of `axis` of an f32 tensor except `keep`.
pub(super) fn zero_axis(t: &Tensor, axis: usize, keep: &[usize]) -> Tensor {
    let mut d = t.to_f32_vec();
    let (outer, len, inner) = split(t.shape(), axis);
    let mut kept = vec![false; len];
    for &c in keep {
        kept[c] = true;
    }
    for o in 0..outer {
        for (c, _) in kept.iter().enumerate().filter(|(_, k)| !**k) {
            let at = (o * len + c) * inner;
            d[at..at + inner].fill(0.0);
        }
    }
    Tensor::from_f32(t.shape(), d)
}

/// Drops the data of weight `v` when nothing reads it any more.
pub(super) fn release_if_unread(graph: &mut Graph, v: ValueId) {
    if !unused(graph, v) {
        return;
    }
    if let ValueDef::Weight(w) = &mut graph.value_mut(v).def {
        w.data = None;
    }
}
