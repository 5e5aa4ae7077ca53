//! `propagate-sparsity`: moves the consequences of all-zero weight slices through the graph.
//!
//! 1. *Constant channels.* An output channel of a `Conv` (group 1), `Gemm` or `MatMul` whose
//!    filter is all zero is a constant: its bias (0 without one). The constant is carried through
//!    channel-preserving nodes (elementwise activations evaluated on it, e.g. `relu(bias)`; Clip;
//!    BatchNormalization; arithmetic with per-channel constants; pools that keep a constant
//!    constant; Flatten; Concat) to the next weight-bearing node, which folds the contribution
//!    `k * filter slice` into its own bias and zeroes the slice. A Conv with padding folds only
//!    zero constants (padding makes a nonzero channel non-constant at the borders); a `MatMul`,
//!    which has no bias, likewise.
//! 2. *Dead channels.* An output channel that no nonzero consumer weight reads is removed, with
//!    its filter and bias and every slice along the way (the same machinery as `prune-channels`,
//!    so channels reaching anything the analysis cannot follow are kept).
//!
//! The two steps repeat until nothing changes. Changed weights are new weights, so their sparsity
//! facts are recomputed.

use super::channel_graph::{f32_const, release_if_unread, ChannelPlan, EditKind, Role};
use super::{PassContext, PassError};
use crate::interp::eval_op;
use sparsec_ir::{Dim, Family, Graph, NodeId, Op, Tensor, ValueId};
use std::collections::HashMap;

/// Per-position constants of a value along one axis (`None`: not constant).
type Consts = (usize, Vec<Option<f32>>);

/// Runs the pass.
pub(super) fn run(graph: &mut Graph, cx: &mut PassContext) -> Result<bool, PassError> {
    let notes = propagate_sparsity(graph)?;
    let changed = !notes.is_empty();
    cx.notes.extend(notes);
    Ok(changed)
}

/// Folds constant channels into consumers and removes dead channels until nothing changes;
/// returns one line per rewrite. The graph's types must be inferred.
pub fn propagate_sparsity(graph: &mut Graph) -> Result<Vec<String>, PassError> {
    let failed = |message: String| PassError::Failed {
        pass: "propagate-sparsity",
        message,
    };
    let mut notes = Vec::new();
    for _ in 0..8 {
        let folded = fold_constant_channels(graph, &mut notes).map_err(failed)?;
        let removed = remove_dead_channels(graph, &mut notes).map_err(failed)?;
        if !folded && !removed {
            break;
        }
    }
    Ok(notes)
}

/// Step 1 (see the module doc).
fn fold_constant_channels(graph: &mut Graph, notes: &mut Vec<String>) -> Result<bool, String> {
    let mut consts: HashMap<ValueId, Consts> = HashMap::new();
    let mut changed = false;
    for n in graph.topo_order() {
        let input = graph.node(n).inputs.first().copied().flatten();
        let n = match input.and_then(|v| consts.get(&v)) {
            Some(c) => match fold_into(graph, n, c)? {
                Some((new, count)) => {
                    notes.push(format!(
                        "propagate-sparsity: folded {count} constant input channels into `{}`",
                        graph.node(new).name
                    ));
                    changed = true;
                    new
                }
                None => n,
            },
            None => n,
        };
        if let Some((v, c)) = out_consts(graph, n, &consts) {
            if c.1.iter().any(Option::is_some) {
                consts.insert(v, c);
            }
        }
    }
    if changed {
        for n in graph.topo_order() {
            super::infer_node(graph, n)?;
        }
    }
    Ok(changed)
}

/// True when a slice `c` of `axis` of `t` is all zero.
fn slice_is_zero(t: &Tensor, axis: usize, c: usize) -> bool {
    let (outer, len, inner) = split(t.shape(), axis);
    let d = t.as_f32().unwrap_or(&[]);
    (0..outer).all(|o| {
        let at = (o * len + c) * inner;
        d.get(at..at + inner)
            .is_some_and(|s| s.iter().all(|&x| x == 0.0))
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

/// Folds the constant input channels `c` of weight-bearing node `n` into its bias and zeroes
/// their weight slices; returns the node (rebuilt when a bias operand had to be added) and how
/// many channels were folded.
fn fold_into(graph: &mut Graph, n: NodeId, c: &Consts) -> Result<Option<(NodeId, usize)>, String> {
    let node = graph.node(n).clone();
    let (axis, vals) = c;
    let w_v = match node.inputs.get(1).copied().flatten() {
        Some(v) => v,
        None => return Ok(None),
    };
    let Some(w) = f32_const(graph, Some(w_v)).cloned() else {
        return Ok(None);
    };
    let bias_v = node.inputs.get(2).copied().flatten();
    // (weight axis of input channels, weight axis of output channels, may fold nonzero constants).
    let (in_axis, out_axis, nonzero_ok) = match &node.op {
        Op::Conv {
            group,
            pads,
            auto_pad,
            ..
        } if *group == 1 && w.rank() >= 3 && *axis == 1 => {
            let no_pad =
                pads.iter().all(|&p| p == 0) && matches!(auto_pad.as_str(), "NOTSET" | "VALID");
            (1, 0, no_pad)
        }
        Op::Gemm {
            trans_a: 0,
            trans_b,
            ..
        } if w.rank() == 2 && *axis == 1 => {
            if *trans_b != 0 {
                (1, 0, true)
            } else {
                (0, 1, true)
            }
        }
        Op::MatMul {} if w.rank() == 2 && *axis + 1 == graph.value(node.outputs[0]).ty.rank() => {
            (0, 1, false)
        }
        _ => return Ok(None),
    };
    if w.shape()[in_axis] != vals.len() {
        return Ok(None);
    }
    let nout = w.shape()[out_axis];
    // The current bias per output channel (scaled by beta for a Gemm), when it is per-channel.
    let (beta, alpha) = match node.op {
        Op::Gemm { alpha, beta, .. } => (beta, alpha),
        _ => (1.0, 1.0),
    };
    let bias: Option<Vec<f32>> = match bias_v {
        None => Some(vec![0.0; nout]),
        Some(b) => f32_const(graph, Some(b)).and_then(|t| {
            let d = t.as_f32()?;
            let per_channel = t.rank() <= 2
                && t.shape().iter().rev().skip(1).all(|&x| x == 1)
                && (d.len() == nout || d.len() == 1);
            per_channel.then(|| {
                (0..nout)
                    .map(|j| beta * d[if d.len() == 1 { 0 } else { j }])
                    .collect()
            })
        }),
    };
    let Some(mut bias) = bias else {
        return Ok(None);
    };
    let mut data = w.to_f32_vec();
    let (outer, len, inner) = split(w.shape(), in_axis);
    let mut count = 0;
    let mut needs_bias = false;
    for (ch, k) in vals.iter().enumerate() {
        let Some(k) = *k else { continue };
        if (k != 0.0 && !nonzero_ok) || !k.is_finite() || slice_is_zero(&w, in_axis, ch) {
            continue;
        }
        for o in 0..outer {
            let at = (o * len + ch) * inner;
            for i in 0..inner {
                let x = data[at + i];
                // The output channel of this element: the outer index when the weight's
                // output axis comes first (Conv, transposed Gemm), else the inner one.
                let oc = if in_axis == 0 { i } else { o };
                if k != 0.0 {
                    bias[oc] += alpha * k * x;
                }
                data[at + i] = 0.0;
            }
        }
        count += 1;
        needs_bias |= k != 0.0;
    }
    if count == 0 {
        return Ok(None);
    }
    let wname = graph.value(w_v).name.clone();
    let new_w = graph.add_weight(wname.clone(), Tensor::from_f32(w.shape(), data));
    graph.set_input(n, 1, Some(new_w));
    release_if_unread(graph, w_v);
    if !needs_bias || matches!(node.op, Op::MatMul {}) {
        return Ok(Some((n, count)));
    }
    let bname = match bias_v {
        Some(b) => graph.value(b).name.clone(),
        None => format!("{wname}_bias"),
    };
    let new_b = graph.add_weight(bname, Tensor::from_f32(&[nout], bias));
    let mut op = node.op.clone();
    if let Op::Gemm { beta, .. } = &mut op {
        *beta = 1.0;
    }
    if let Some(b) = bias_v {
        graph.set_input(n, 2, Some(new_b));
        *graph.op_mut(n) = op;
        release_if_unread(graph, b);
        return Ok(Some((n, count)));
    }
    // Graph offers no way to add an operand, so the node is replaced by one with three.
    let outs: Vec<(String, sparsec_ir::TensorType)> = node
        .outputs
        .iter()
        .map(|&v| (graph.value(v).name.clone(), graph.value(v).ty.clone()))
        .collect();
    let inputs = vec![node.inputs[0], Some(new_w), Some(new_b)];
    let new = graph.add_node(node.name.clone(), op, inputs, outs);
    for (k, &old) in node.outputs.iter().enumerate() {
        let nv = graph.node(new).outputs[k];
        graph.replace_all_uses(old, nv);
    }
    graph.remove_node(n);
    Ok(Some((new, count)))
}

/// Evaluates `op` on one-element operands (`x` as `[1]`, the rest as scalars).
fn eval1(op: &Op, x: f32, rest: &[Option<f32>]) -> Option<f32> {
    let mut ts = vec![Some(Tensor::from_f32(&[1], vec![x]))];
    ts.extend(
        rest.iter()
            .map(|r| r.map(|r| Tensor::from_f32(&[1], vec![r]))),
    );
    let refs: Vec<Option<&Tensor>> = ts.iter().map(Option::as_ref).collect();
    let out = eval_op(op, &refs, 1).ok()?;
    let t = out.first()?;
    (t.numel() == 1).then(|| t.as_f32().map(|d| d[0])).flatten()
}

/// The value of constant operand `k` of `n` at position `p` of the channel axis `axis` of a
/// rank-`r` result, when the constant varies along that axis only.
fn const_at(graph: &Graph, n: NodeId, k: usize, r: usize, axis: usize, p: usize) -> Option<f32> {
    let t = f32_const(graph, graph.node(n).inputs.get(k).copied().flatten())?;
    let rc = t.rank();
    if rc > r {
        return None;
    }
    let ca = (axis + rc).checked_sub(r);
    for (a, &d) in t.shape().iter().enumerate() {
        if Some(a) != ca && d != 1 {
            return None;
        }
    }
    let d = t.as_f32()?;
    match ca {
        Some(ca) if t.shape()[ca] != 1 => d.get(p).copied(),
        _ => d.first().copied(),
    }
}

/// The per-channel constants of node `n`'s first result, from its weights (all-zero filters)
/// or from its operands' constants.
fn out_consts(
    graph: &Graph,
    n: NodeId,
    consts: &HashMap<ValueId, Consts>,
) -> Option<(ValueId, Consts)> {
    let node = graph.node(n);
    let out = *node.outputs.first()?;
    let out_dims = &graph.value(out).ty.dims;
    let r = out_dims.len();
    let arg = |k: usize| node.inputs.get(k).copied().flatten();
    let from = |k: usize| arg(k).and_then(|v| consts.get(&v));
    let map = |c: &Consts, f: &dyn Fn(f32) -> Option<f32>| -> Consts {
        (c.0, c.1.iter().map(|k| k.and_then(f)).collect())
    };
    let c: Consts = match &node.op {
        Op::Conv { group: 1, .. } | Op::Gemm { .. } | Op::MatMul {} => {
            let w = f32_const(graph, arg(1)).filter(|w| w.rank() >= 2)?;
            let (out_axis, beta, res_axis) = match node.op {
                Op::Conv { .. } => (0, 1.0, 1),
                Op::Gemm {
                    trans_a: 0,
                    trans_b,
                    beta,
                    ..
                } => (usize::from(trans_b == 0), beta, 1),
                Op::MatMul {} if w.rank() == 2 => (1, 1.0, r.checked_sub(1)?),
                _ => return None,
            };
            let nout = w.shape()[out_axis];
            let bias: Vec<f32> = match arg(2) {
                None => vec![0.0; nout],
                Some(_) => (0..nout)
                    .map(|j| const_at(graph, n, 2, 2, 1, j).map(|b| beta * b))
                    .collect::<Option<Vec<f32>>>()?,
            };
            let bias = if matches!(node.op, Op::Conv { .. }) {
                f32_const(graph, arg(2)).map_or(vec![0.0; nout], |t| t.to_f32_vec())
            } else {
                bias
            };
            if bias.len() != nout {
                return None;
            }
            (
                res_axis,
                (0..nout)
                    .map(|j| slice_is_zero(w, out_axis, j).then_some(bias[j]))
                    .collect(),
            )
        }
        Op::Identity {} | Op::Dropout {} => from(0)?.clone(),
        op if op.family() == Family::Unary => {
            let c = from(0)?;
            map(c, &|k| eval1(op, k, &[]))
        }
        Op::Clip {} => {
            let c = from(0)?;
            let bound = |k: usize| -> Option<Option<f32>> {
                match arg(k) {
                    None => Some(None),
                    Some(v) => {
                        let t = f32_const(graph, Some(v))?;
                        (t.numel() == 1).then(|| t.as_f32().map(|d| d[0]))
                    }
                }
            };
            let (lo, hi) = (bound(1)?, bound(2)?);
            let op = node.op.clone();
            let f = move |k: f32| {
                let mut ts = vec![Some(Tensor::from_f32(&[1], vec![k]))];
                ts.push(lo.map(Tensor::scalar_f32));
                ts.push(hi.map(Tensor::scalar_f32));
                let refs: Vec<Option<&Tensor>> = ts.iter().map(Option::as_ref).collect();
                eval_op(&op, &refs, 1).ok()?.first()?.as_f32().map(|d| d[0])
            };
            map(c, &f)
        }
        Op::BatchNormalization { epsilon } => {
            let c = from(0)?;
            if c.0 != 1 {
                return None;
            }
            let s: Vec<Vec<f32>> = (1..5)
                .map(|k| f32_const(graph, arg(k)).map(|t| t.to_f32_vec()))
                .collect::<Option<Vec<_>>>()?;
            if s.iter().any(|v| v.len() != c.1.len()) {
                return None;
            }
            let vals =
                c.1.iter()
                    .enumerate()
                    .map(|(j, k)| {
                        k.map(|k| (k - s[2][j]) / (s[3][j] + epsilon).sqrt() * s[0][j] + s[1][j])
                    })
                    .collect();
            (1, vals)
        }
        Op::MaxPool { .. } | Op::GlobalAveragePool {} | Op::GlobalMaxPool {} => {
            from(0).filter(|c| c.0 == 1)?.clone()
        }
        Op::AveragePool {
            pads,
            count_include_pad,
            auto_pad,
            ..
        } if *count_include_pad == 0 || (pads.iter().all(|&p| p == 0) && auto_pad == "NOTSET") => {
            from(0).filter(|c| c.0 == 1)?.clone()
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
            let k0 = (0..node.inputs.len()).find(|&k| from(k).is_some())?;
            let axis = from(k0)?.0;
            let len = from(k0)?.1.len();
            let mut vals = vec![None; len];
            for (p, slot) in vals.iter_mut().enumerate() {
                let mut args = Vec::new();
                for (k, v) in node.inputs.iter().enumerate() {
                    let v = (*v)?;
                    let a = match from(k) {
                        Some(c) if c.0 == axis && graph.value(v).ty.dims == *out_dims => c.1[p],
                        Some(_) => return None,
                        None => const_at(graph, n, k, r, axis, p),
                    };
                    args.push(a);
                }
                if let Some(first) = args[0] {
                    if args.iter().all(Option::is_some) {
                        *slot = eval1(&node.op, first, &args[1..]);
                    }
                }
            }
            (axis, vals)
        }
        Op::Flatten { axis } => {
            let c = from(0)?;
            let in_dims = &graph.value(arg(0)?).ty.dims;
            let f = if *axis < 0 {
                *axis + in_dims.len() as i64
            } else {
                *axis
            };
            if f < 1 || c.0 != f as usize {
                return None;
            }
            let scale: usize = in_dims[c.0 + 1..]
                .iter()
                .map(Dim::known)
                .collect::<Option<Vec<_>>>()?
                .iter()
                .product();
            (
                1,
                c.1.iter()
                    .flat_map(|k| std::iter::repeat_n(*k, scale))
                    .collect(),
            )
        }
        Op::Concat { axis } => {
            let a = if *axis < 0 { *axis + r as i64 } else { *axis };
            let a = usize::try_from(a).ok()?;
            let mut vals = Vec::new();
            for (k, v) in node.inputs.iter().enumerate() {
                match from(k) {
                    Some(c) if c.0 == a => vals.extend(c.1.iter().copied()),
                    Some(_) => return None,
                    None => {
                        let d = graph.value((*v)?).ty.dims.get(a)?.known()?;
                        vals.extend(std::iter::repeat_n(None, d));
                    }
                }
            }
            (a, vals)
        }
        _ => return None,
    };
    Some((out, c))
}

/// Step 2 (see the module doc).
fn remove_dead_channels(graph: &mut Graph, notes: &mut Vec<String>) -> Result<bool, String> {
    let plan = ChannelPlan::analyze(graph);
    let units = plan.units();
    let mut read: HashMap<usize, Vec<bool>> = units
        .iter()
        .map(|(root, _)| (*root, vec![false; plan.space_len(*root)]))
        .collect();
    for e in &plan.edits {
        let EditKind::Operand {
            operand,
            axis,
            role: Role::Terminal,
        } = e.kind
        else {
            continue;
        };
        let Some(w) = f32_const(
            graph,
            graph.node(e.node).inputs.get(operand).copied().flatten(),
        ) else {
            // An unreadable terminal reads everything.
            for (r, c) in plan.positions(&e.info) {
                if let Some(m) = read.get_mut(&r) {
                    m[c] = true;
                }
            }
            continue;
        };
        for (pos, (r, c)) in plan.positions(&e.info).into_iter().enumerate() {
            if let Some(m) = read.get_mut(&r) {
                if !m[c] && !slice_is_zero(w, axis, pos) {
                    m[c] = true;
                }
            }
        }
    }
    let mut masks = HashMap::new();
    for (root, members) in &units {
        let Some(mut keep) = read.remove(root) else {
            continue;
        };
        if keep.iter().all(|&k| k) {
            continue;
        }
        // A layer keeps at least one channel so no tensor becomes empty.
        if !keep.iter().any(|&k| k) {
            keep[0] = true;
        }
        let dead = keep.iter().filter(|&&k| !k).count();
        let names: Vec<String> = members
            .iter()
            .map(|&p| format!("`{}`", graph.node(plan.producers[p].node).name))
            .collect();
        notes.push(format!(
            "propagate-sparsity: removed {dead} dead channels of {} ({} -> {})",
            names.join(" + "),
            keep.len(),
            keep.len() - dead
        ));
        masks.insert(*root, keep);
    }
    if masks.is_empty() {
        return Ok(false);
    }
    plan.apply(graph, &masks, false)
}

#[cfg(test)]
#[path = "propagate_sparsity_tests.rs"]
mod tests;
