//! `fold-channel-affine`: folds a `Mul` or an `Add` of a per-output-channel constant into the
//! `Conv` or the constant-parameter `BatchNormalization` that feeds it.
//!
//! Some exporters write a BatchNormalization's scale and shift as separate nodes (Caffe2's
//! converted Inception v2: `Conv -> BatchNormalization -> Mul -> Add -> Relu`, the `Mul` and
//! `Add` operands `Unsqueeze`d `[C]` constants). With `t` constant along every axis but the
//! channel axis, `conv(x, W, b) * t = conv(x, W * t, b * t)` (weight rows scaled per output
//! channel) and `conv(x, W, b) + t = conv(x, W, b + t)`. The rewrite applies when the conv's
//! weight and bias are f32 constants, its result has no other reader and is not a graph output,
//! and the constant broadcasts to the conv's result without growing it; chains fold one node at a
//! time until none is left. The conv then keeps its activation as an epilogue instead of a
//! separate elementwise kernel after it.
//!
//! Like `fold-batchnorm`, it runs before pruning, so magnitudes are judged on the weights that run,
//! and the data of weights the fold leaves unread is released at once.

use super::channel_graph::release_if_unread;
use super::{PassContext, PassError};
use sparsec_ir::{DType, Graph, NodeId, Op, Tensor, ValueId};
use std::collections::BTreeMap;

/// Runs the pass.
pub(super) fn run(graph: &mut Graph, cx: &mut PassContext) -> Result<bool, PassError> {
    let mut changed = false;
    loop {
        let mut any = false;
        for n in graph.topo_order() {
            if !graph.contains_node(n) {
                continue;
            }
            let name = graph.node(n).name.clone();
            if let Some(user) = fold(graph, n, &mut cx.derived_from) {
                cx.notes.push(format!(
                    "fold-channel-affine: folded `{user}` into `{name}`"
                ));
                any = true;
            }
        }
        if !any {
            break;
        }
        changed = true;
    }
    Ok(changed)
}

/// The f32 data of a constant operand.
fn const_f32(graph: &Graph, v: Option<ValueId>) -> Option<Vec<f32>> {
    graph.const_data(v?)?.as_f32().map(<[f32]>::to_vec)
}

/// The per-channel values of constant `t` against a conv result of `rank` dimensions with `c`
/// channels (`[N, C, ...]`, other dimensions possibly symbolic): `t`'s shape, aligned to the
/// right, must be 1 on every axis but the channel axis, where it is 1 or `c`.
fn per_channel(t: &Tensor, rank: usize, c: usize) -> Option<Vec<f32>> {
    let data = t.as_f32()?;
    let ts = t.shape();
    if ts.len() > rank {
        return None;
    }
    let lead = rank - ts.len();
    for (i, &d) in ts.iter().enumerate() {
        let axis = lead + i;
        if d != 1 && !(axis == 1 && d == c) {
            return None;
        }
    }
    Some(match data.len() {
        1 => vec![data[0]; c],
        n if n == c => data.to_vec(),
        _ => return None,
    })
}

/// Folds the `Mul`/`Add` reading the result of conv `producer` into it, if it qualifies; returns
/// that node's name when it did. The conv is rebuilt (new id) with the new weight and bias and
/// takes the folded node's result name. A scaled weight is recorded in `derived` as computed from
/// the old one (same zero positions unless a factor is zero).
fn fold(
    graph: &mut Graph,
    producer: NodeId,
    derived: &mut BTreeMap<ValueId, ValueId>,
) -> Option<String> {
    let node = graph.node(producer).clone();
    let is_bn = matches!(node.op, Op::BatchNormalization { .. });
    if !(matches!(node.op, Op::Conv { .. }) || is_bn) || node.outputs.len() != 1 {
        return None;
    }
    let y = node.outputs[0];
    let [(user, k)] = graph.users(y)[..] else {
        return None;
    };
    if graph.outputs().contains(&y) {
        return None;
    }
    let user_node = graph.node(user).clone();
    let mul = match user_node.op {
        Op::Mul {} => true,
        Op::Add {} => false,
        _ => return None,
    };
    if user_node.inputs.len() != 2 || user_node.outputs.len() != 1 {
        return None;
    }
    let ty = &graph.value(y).ty;
    let (rank, channels) = (ty.rank(), ty.dims.get(1)?.known()?);
    let out = user_node.outputs[0];
    if ty.dtype != DType::F32 || graph.value(out).ty != *ty {
        return None;
    }
    let t = per_channel(graph.const_data(user_node.inputs[1 - k]?)?, rank, channels)?;
    let c = t.len();
    if is_bn {
        return fold_into_batchnorm(graph, producer, user, mul, &t);
    }
    let wv = node.inputs[1]?;
    let w = graph
        .const_data(wv)
        .filter(|w| w.as_f32().is_some() && w.rank() >= 1 && w.shape()[0] == c)?;
    let old_b = match node.inputs.get(2).copied().flatten() {
        Some(bv) => match const_f32(graph, Some(bv)) {
            Some(b) if b.len() == c => b,
            _ => return None,
        },
        None => vec![0.0; c],
    };
    let name = graph.value(wv).name.clone();
    let (w2, b) = if mul {
        let (wshape, per) = (w.shape().to_vec(), w.numel() / c.max(1));
        let data: Vec<f32> = w
            .as_f32()?
            .iter()
            .enumerate()
            .map(|(i, x)| x * t[i / per.max(1)])
            .collect();
        let w2 = graph.add_weight(format!("{name}_scaled"), Tensor::from_f32(&wshape, data));
        derived.insert(w2, wv);
        (w2, old_b.iter().zip(&t).map(|(b, s)| b * s).collect())
    } else {
        (
            wv,
            old_b
                .iter()
                .zip(&t)
                .map(|(b, s)| b + s)
                .collect::<Vec<f32>>(),
        )
    };
    let b2 = graph.add_weight(format!("{name}_bias"), Tensor::from_f32(&[c], b));
    replace(
        graph,
        producer,
        user,
        vec![node.inputs[0], Some(w2), Some(b2)],
    );
    Some(user_node.name)
}

/// Replaces `producer` and its only reader `user` by one node with `producer`'s name and op, the
/// operands `inputs` and `user`'s result; then drops the data of the weights left unread.
fn replace(graph: &mut Graph, producer: NodeId, user: NodeId, inputs: Vec<Option<ValueId>>) {
    let (node, user_node) = (graph.node(producer).clone(), graph.node(user).clone());
    let out = user_node.outputs[0];
    let out_value = graph.value(out).clone();
    let new = graph.add_node(
        node.name.clone(),
        node.op.clone(),
        inputs,
        vec![(out_value.name, out_value.ty)],
    );
    let new_y = graph.node(new).outputs[0];
    graph.replace_all_uses(out, new_y);
    graph.remove_node(user);
    graph.remove_node(producer);
    for v in node.inputs.iter().chain(&user_node.inputs).flatten() {
        release_if_unread(graph, *v);
    }
}

/// Folds `user` (a `Mul` if `mul`, else an `Add`, of the per-channel `t`) into the
/// `BatchNormalization` `bn` with constant f32 parameters: `BN(x) * t` is the BN with scale and
/// bias times `t`, `BN(x) + t` the BN with bias plus `t` (mean and variance unchanged). DenseNet
/// normalizes each concatenation this way before a `Relu` and a conv.
fn fold_into_batchnorm(
    graph: &mut Graph,
    bn: NodeId,
    user: NodeId,
    mul: bool,
    t: &[f32],
) -> Option<String> {
    let node = graph.node(bn).clone();
    let user_node = graph.node(user).clone();
    let c = t.len();
    let params: Option<Vec<Vec<f32>>> = (1..5)
        .map(|k| const_f32(graph, node.inputs.get(k).copied().flatten()).filter(|v| v.len() == c))
        .collect();
    let params = params?;
    let (scale, bias) = (&params[0], &params[1]);
    let (scale2, bias2): (Vec<f32>, Vec<f32>) = if mul {
        (
            scale.iter().zip(t).map(|(a, s)| a * s).collect(),
            bias.iter().zip(t).map(|(b, s)| b * s).collect(),
        )
    } else {
        (
            scale.clone(),
            bias.iter().zip(t).map(|(b, s)| b + s).collect(),
        )
    };
    let name = node.name.clone();
    let sv = graph.add_weight(format!("{name}_scale"), Tensor::from_f32(&[c], scale2));
    let bv = graph.add_weight(format!("{name}_bias"), Tensor::from_f32(&[c], bias2));
    let mut inputs = node.inputs.clone();
    inputs[1] = Some(sv);
    inputs[2] = Some(bv);
    replace(graph, bn, user, inputs);
    Some(user_node.name)
}

#[cfg(test)]
#[path = "fold_affine_tests.rs"]
mod tests;
