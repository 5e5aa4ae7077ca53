//! `fold-batchnorm`: folds an inference `BatchNormalization` into the `Conv` (or `Gemm` with a
//! constant `B`) that feeds it.
//!
//! With `s = scale / sqrt(var + epsilon)` per channel, `BN(conv(x, W, b)) = conv(x, W * s, (b -
//! mean) * s + bias)`: the weight is scaled per output channel (per column of `op(B)` for a Gemm)
//! and the bias rewritten. The rewrite applies when the BN's statistics, the producer's weight and
//! bias are f32 constants and the producer's result has no other reader. The new weight and bias
//! are new weights (`Graph::add_weight`), so their sparsity facts are computed afresh; the BN's
//! readers then read the producer's result, which takes the BN result's name.
//!
//! The weights the fold leaves unread (the old weight and bias, the BN's statistics) release their
//! data at once, so the old and new copies of the model's conv weights never all coexist.

use super::{PassContext, PassError};
use sparsec_ir::{Graph, NodeId, Op, Tensor, ValueDef, ValueId};
use std::collections::BTreeMap;

/// Runs the pass.
pub(super) fn run(graph: &mut Graph, cx: &mut PassContext) -> Result<bool, PassError> {
    let mut changed = false;
    for n in graph.topo_order() {
        if !graph.contains_node(n) {
            continue;
        }
        let name = graph.node(n).name.clone();
        if let Some(bn) = fold(graph, n, &mut cx.derived_from) {
            cx.notes
                .push(format!("fold-batchnorm: folded `{bn}` into `{name}`"));
            changed = true;
        }
    }
    Ok(changed)
}

/// The f32 data of a constant operand.
fn const_f32(graph: &Graph, v: Option<ValueId>) -> Option<Vec<f32>> {
    graph.const_data(v?)?.as_f32().map(<[f32]>::to_vec)
}

/// Folds the BN reading the result of `producer` into it, if there is one that qualifies;
/// returns the BN's name when it did. `producer` keeps its id and is rebuilt with the new
/// operands (an omitted bias operand becomes present). The new weight is recorded in `derived`
/// as computed from the old one (same zero positions: only a per-channel scale differs).
fn fold(
    graph: &mut Graph,
    producer: NodeId,
    derived: &mut BTreeMap<ValueId, ValueId>,
) -> Option<String> {
    let node = graph.node(producer);
    if !matches!(node.op, Op::Conv { .. } | Op::Gemm { .. }) || node.outputs.len() != 1 {
        return None;
    }
    let y = node.outputs[0];
    let users = graph.users(y);
    let [(bn, 0)] = users[..] else {
        return None;
    };
    if graph.outputs().contains(&y) {
        return None;
    }
    let bn_node = graph.node(bn);
    let Op::BatchNormalization { epsilon } = bn_node.op else {
        return None;
    };
    if bn_node.outputs.len() != 1 {
        return None;
    }
    let stats: Option<Vec<Vec<f32>>> = (1..5)
        .map(|k| const_f32(graph, bn_node.inputs.get(k).copied().flatten()))
        .collect();
    let [scale, bias, mean, var] = stats.and_then(|s| <[Vec<f32>; 4]>::try_from(s).ok())?;
    let c = scale.len();
    if [&bias, &mean, &var].iter().any(|v| v.len() != c) {
        return None;
    }
    let s: Vec<f32> = scale
        .iter()
        .zip(&var)
        .map(|(g, v)| g / (v + epsilon).sqrt())
        .collect();
    let bn_out = bn_node.outputs[0];
    let node = graph.node(producer).clone();
    let new_bias = |old: &dyn Fn(usize) -> f32| -> Vec<f32> {
        (0..c)
            .map(|j| (old(j) - mean[j]) * s[j] + bias[j])
            .collect()
    };
    let done: (ValueId, ValueId, Op) = match node.op {
        Op::Conv { .. } => {
            let wv = node.inputs[1]?;
            let w = graph
                .const_data(wv)
                .filter(|w| w.as_f32().is_some() && w.rank() >= 1 && w.shape()[0] == c)?;
            let shape = w.shape().to_vec();
            let per = w.numel() / c.max(1);
            let data: Vec<f32> = w
                .as_f32()?
                .iter()
                .enumerate()
                .map(|(i, x)| x * s[i / per.max(1)])
                .collect();
            let old_b = match node.inputs.get(2).copied().flatten() {
                Some(bv) => match const_f32(graph, Some(bv)) {
                    Some(b) if b.len() == c => b,
                    _ => return None,
                },
                None => vec![0.0; c],
            };
            let b = new_bias(&|j| old_b[j]);
            let name = graph.value(wv).name.clone();
            let w2 = graph.add_weight(format!("{name}_bn"), Tensor::from_f32(&shape, data));
            let b2 = graph.add_weight(format!("{name}_bn_bias"), Tensor::from_f32(&[c], b));
            (w2, b2, node.op.clone())
        }
        Op::Gemm { beta, trans_b, .. } => {
            let bv = node.inputs[1]?;
            let bt = graph
                .const_data(bv)
                .filter(|t| t.as_f32().is_some() && t.rank() == 2)?;
            let (shape, data) = (bt.shape().to_vec(), bt.to_f32_vec());
            let n = if trans_b != 0 { shape[0] } else { shape[1] };
            if n != c {
                return None;
            }
            // Column `j` of op(B) is row `j` of B when transposed, else column `j`.
            let data: Vec<f32> = data
                .iter()
                .enumerate()
                .map(|(i, x)| {
                    x * s[if trans_b != 0 {
                        i / shape[1]
                    } else {
                        i % shape[1]
                    }]
                })
                .collect();
            let old_c = match node.inputs.get(2).copied().flatten() {
                Some(cv) => match const_f32(graph, Some(cv)) {
                    Some(v)
                        if v.len() == c
                            && graph.value(cv).ty.rank() <= 2
                            && graph
                                .value(cv)
                                .ty
                                .shape()
                                .is_some_and(|s| s.iter().rev().skip(1).all(|&d| d == 1)) =>
                    {
                        v
                    }
                    Some(v) if v.len() == 1 => vec![v[0]; c],
                    _ => return None,
                },
                None => vec![0.0; c],
            };
            let b = new_bias(&|j| beta * old_c[j]);
            let name = graph.value(bv).name.clone();
            let w2 = graph.add_weight(format!("{name}_bn"), Tensor::from_f32(&shape, data));
            let c2 = graph.add_weight(format!("{name}_bn_bias"), Tensor::from_f32(&[c], b));
            let mut op = node.op.clone();
            if let Op::Gemm { beta, .. } = &mut op {
                *beta = 1.0;
            }
            (w2, c2, op)
        }
        _ => return None,
    };
    let (w2, b2, op) = done;
    derived.insert(w2, node.inputs[1]?);
    // Graph offers no way to add an operand, so the producer is replaced by a node with three.
    let bn_value = graph.value(bn_out).clone();
    let bn_name = graph.node(bn).name.clone();
    let new = graph.add_node(
        node.name.clone(),
        op,
        vec![node.inputs[0], Some(w2), Some(b2)],
        vec![(bn_value.name, bn_value.ty)],
    );
    let new_y = graph.node(new).outputs[0];
    graph.replace_all_uses(bn_out, new_y);
    let old_operands = graph.node(bn).inputs.clone();
    graph.remove_node(bn);
    graph.remove_node(producer);
    for v in node.inputs.iter().chain(&old_operands).flatten() {
        release_if_unread(graph, *v);
    }
    Some(bn_name)
}

/// Drops the data of weight `v` when nothing reads it any more (no node operand, not a graph
/// output). The value stays in the graph's table with its type and facts, like any dead value.
fn release_if_unread(graph: &mut Graph, v: ValueId) {
    if graph.outputs().contains(&v) || !graph.users(v).is_empty() {
        return;
    }
    if let ValueDef::Weight(w) = &mut graph.value_mut(v).def {
        w.data = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interp::{eval_op, run_graph};

    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn weight(g: &mut Graph, shape: &[usize], seed: u64) -> ValueId {
        g.add_weight(
            format!("w{seed}"),
            Tensor::from_f32(shape, values(shape.iter().product(), seed)),
        )
    }

    /// Adds a node typed by what the interpreter computes on `data` (data of its operands).
    fn node(
        g: &mut Graph,
        name: &str,
        op: Op,
        inputs: Vec<Option<ValueId>>,
        data: &[Option<&Tensor>],
    ) -> (ValueId, Tensor) {
        let t = eval_op(&op, data, 1).expect("evaluates").remove(0);
        let n = g.add_node(name, op, inputs, vec![(format!("{name}_out"), t.ty())]);
        (g.node(n).outputs[0], t)
    }

    /// BN statistics as weights: scale, bias, mean, var (positive).
    fn bn_stats(g: &mut Graph, c: usize, seed: u64) -> Vec<Option<ValueId>> {
        let var: Vec<f32> = values(c, seed).iter().map(|v| v.abs() + 0.1).collect();
        vec![
            Some(weight(g, &[c], seed + 1)),
            Some(weight(g, &[c], seed + 2)),
            Some(weight(g, &[c], seed + 3)),
            Some(g.add_weight("var", Tensor::from_f32(&[c], var))),
        ]
    }

    fn data_of(g: &Graph, vs: &[Option<ValueId>]) -> Vec<Option<Tensor>> {
        vs.iter()
            .map(|v| v.map(|v| g.const_data(v).cloned().expect("const")))
            .collect()
    }

    /// Builds `x -> producer -> BN -> relu`; `producer` makes the producer from `(graph, x)`.
    fn check_fold(
        x_shape: &[usize],
        build: impl Fn(&mut Graph, ValueId, &Tensor) -> (ValueId, Tensor, usize),
        expect_fold: bool,
    ) {
        let mut g = Graph::new("bn");
        let xt = Tensor::from_f32(x_shape, values(x_shape.iter().product(), 99));
        let x = g.add_input("x", xt.ty());
        let (y, yt, c) = build(&mut g, x, &xt);
        let mut ins = vec![Some(y)];
        ins.extend(bn_stats(&mut g, c, 7));
        let mut data = vec![Some(yt)];
        data.extend(data_of(&g, &ins[1..]));
        let refs: Vec<Option<&Tensor>> = data.iter().map(Option::as_ref).collect();
        let (b, bt) = node(
            &mut g,
            "bn",
            Op::BatchNormalization { epsilon: 1e-3 },
            ins,
            &refs,
        );
        let (r, _) = node(&mut g, "relu", Op::Relu {}, vec![Some(b)], &[Some(&bt)]);
        g.set_outputs(vec![r]);
        let before = run_graph(&g, std::slice::from_ref(&xt)).expect("runs");
        let mut cx = PassContext::default();
        let changed = run(&mut g, &mut cx).expect("pass runs");
        assert_eq!(changed, expect_fold);
        sparsec_ir::verify(&g).expect("verifies");
        let has_bn = g
            .node_ids()
            .iter()
            .any(|&n| matches!(g.node(n).op, Op::BatchNormalization { .. }));
        assert_eq!(has_bn, !expect_fold);
        let after = run_graph(&g, &[xt]).expect("runs");
        for (a, b) in after[0].to_f32_vec().iter().zip(before[0].to_f32_vec()) {
            assert!((a - b).abs() <= 1e-4 * (1.0 + b.abs()), "{a} vs {b}");
        }
    }

    fn conv(pads: Vec<i64>, group: i64) -> Op {
        Op::Conv {
            auto_pad: "NOTSET".into(),
            dilations: vec![],
            group,
            kernel_shape: vec![],
            pads,
            strides: vec![],
        }
    }

    #[test]
    fn folds_conv_with_and_without_bias() {
        for with_bias in [true, false] {
            check_fold(
                &[2, 4, 6, 5],
                |g, x, xt| {
                    let w = weight(g, &[6, 2, 3, 3], 1);
                    let b = with_bias.then(|| weight(g, &[6], 2));
                    let ins = vec![Some(x), Some(w), b];
                    let d = data_of(g, &ins[1..]);
                    let (y, t) = node(
                        g,
                        "conv",
                        conv(vec![1, 0, 1, 2], 2),
                        ins,
                        &[Some(xt), d[0].as_ref(), d[1].as_ref()],
                    );
                    (y, t, 6)
                },
                true,
            );
        }
    }

    #[test]
    fn folds_gemm_with_constant_b() {
        for (trans_b, c_shape) in [
            (0, Some(vec![5])),
            (1, Some(vec![1, 5])),
            (1, None),
            (0, Some(vec![])),
        ] {
            check_fold(
                &[3, 4],
                |g, x, xt| {
                    let b = weight(g, if trans_b != 0 { &[5, 4] } else { &[4, 5] }, 3);
                    let c = c_shape.as_ref().map(|s| weight(g, s, 4));
                    let ins = vec![Some(x), Some(b), c];
                    let d = data_of(g, &ins[1..]);
                    let op = Op::Gemm {
                        alpha: 0.5,
                        beta: 2.0,
                        trans_a: 0,
                        trans_b,
                    };
                    let (y, t) = node(
                        g,
                        "gemm",
                        op,
                        ins,
                        &[Some(xt), d[0].as_ref(), d[1].as_ref()],
                    );
                    (y, t, 5)
                },
                true,
            );
        }
    }

    #[test]
    fn releases_the_data_of_weights_the_fold_leaves_unread() {
        // Two convs: `a` has its own weight, `b` shares its weight with a third conv `c`, so
        // after folding `a` and `b` only `a`'s old weight and both BNs' statistics are unread.
        let mut g = Graph::new("bn");
        let xt = Tensor::from_f32(&[1, 2, 4, 4], values(32, 9));
        let x = g.add_input("x", xt.ty());
        let wa = weight(&mut g, &[3, 2, 1, 1], 1);
        let wb = weight(&mut g, &[3, 2, 1, 1], 2);
        let d = data_of(&g, &[Some(wa), Some(wb)]);
        let conv_of = |g: &mut Graph, name: &str, w: ValueId, wt: &Tensor| {
            node(
                g,
                name,
                conv(vec![], 1),
                vec![Some(x), Some(w)],
                &[Some(&xt), Some(wt)],
            )
        };
        let mut outs = Vec::new();
        let mut stats = Vec::new();
        for (name, w, wt) in [("a", wa, &d[0]), ("b", wb, &d[1])] {
            let (y, yt) = conv_of(&mut g, name, w, wt.as_ref().expect("const"));
            let st = bn_stats(&mut g, 3, 7);
            let mut ins = vec![Some(y)];
            ins.extend(st.iter().copied());
            let mut data = vec![Some(yt)];
            data.extend(data_of(&g, &st));
            let refs: Vec<Option<&Tensor>> = data.iter().map(Option::as_ref).collect();
            let bn = Op::BatchNormalization { epsilon: 1e-3 };
            outs.push(node(&mut g, &format!("{name}_bn"), bn, ins, &refs).0);
            stats.extend(st.into_iter().flatten());
        }
        let (c, _) = conv_of(&mut g, "c", wb, d[1].as_ref().expect("const"));
        outs.push(c);
        g.set_outputs(outs);
        let before = run_graph(&g, std::slice::from_ref(&xt)).expect("runs");
        assert!(run(&mut g, &mut PassContext::default()).expect("pass runs"));
        let has_data = |g: &Graph, v: ValueId| g.weight(v).is_some_and(|w| w.data.is_some());
        assert!(!has_data(&g, wa), "the old weight of `a` is released");
        assert!(has_data(&g, wb), "the weight `c` still reads is kept");
        assert!(
            stats.iter().all(|&v| !has_data(&g, v)),
            "BN statistics are released"
        );
        sparsec_ir::verify(&g).expect("verifies");
        let after = run_graph(&g, &[xt]).expect("runs");
        for (a, b) in after.iter().zip(&before) {
            for (a, b) in a.to_f32_vec().iter().zip(b.to_f32_vec()) {
                assert!((a - b).abs() <= 1e-4 * (1.0 + b.abs()), "{a} vs {b}");
            }
        }
    }

    #[test]
    fn leaves_conv_with_another_reader_or_dynamic_weight() {
        // The conv result is also read by a Neg that feeds nothing the BN depends on.
        check_fold(
            &[1, 2, 4, 4],
            |g, x, xt| {
                let w = weight(g, &[3, 2, 1, 1], 5);
                let ins = vec![Some(x), Some(w), None];
                let d = data_of(g, &ins[1..2]);
                let (y, t) = node(g, "conv", conv(vec![], 1), ins, &[Some(xt), d[0].as_ref()]);
                let (_, _) = node(g, "other", Op::Neg {}, vec![Some(y)], &[Some(&t)]);
                (y, t, 3)
            },
            false,
        );
        // The weight is computed by a node, not a constant.
        check_fold(
            &[1, 2, 4, 4],
            |g, x, xt| {
                let w0 = weight(g, &[3, 2, 1, 1], 6);
                let w0t = g.const_data(w0).cloned().expect("const");
                let (w, wt) = node(g, "neg", Op::Neg {}, vec![Some(w0)], &[Some(&w0t)]);
                let (y, t) = node(
                    g,
                    "conv",
                    conv(vec![], 1),
                    vec![Some(x), Some(w)],
                    &[Some(xt), Some(&wt)],
                );
                (y, t, 3)
            },
            false,
        );
    }
}
