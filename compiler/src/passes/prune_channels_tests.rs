//! Tests of `prune-channels`: new shapes, agreement of the pruned graph with the same graph whose
//! pruned channels are zeroed, parameter and MAC counts, the policy and option parsing.

use super::*;
use crate::passes::channel_test_util::*;
use sparsec_ir::{Op, Tensor, ValueId};

/// Prune every layer by half, no policy exceptions.
fn everything(fraction: f64) -> ChannelOptions {
    ChannelOptions {
        fraction,
        keep_first: false,
        keep_last: false,
        min_params: 0,
        ..ChannelOptions::default()
    }
}

/// Prunes `g` in both modes, checks that removal and zeroing agree on the sample input (and that
/// pruning changed the output), and returns the pruned graph and its units.
fn prune_and_check(g: &Graph, x: &Tensor, opts: &ChannelOptions) -> (Graph, Vec<PrunedUnit>) {
    let original = run1(g, x);
    let mut removed = g.clone();
    let units = prune_channels(&mut removed, opts, ChannelMode::Remove).expect("prunes");
    let mut zeroed = g.clone();
    let zunits = prune_channels(&mut zeroed, opts, ChannelMode::Zero).expect("zeroes");
    assert_eq!(units, zunits);
    sparsec_ir::verify(&removed).expect("verifies");
    let (r, z) = (run1(&removed, x), run1(&zeroed, x));
    assert!(
        max_diff(&r, &z) < 1e-5,
        "removed vs zeroed: {}",
        max_diff(&r, &z)
    );
    if !units.is_empty() {
        assert!(max_diff(&r, &original) > 1e-4, "pruning changed nothing");
    }
    // The IR text of the result parses back.
    sparsec_ir::parse(&sparsec_ir::print(&removed)).expect("parses");
    (removed, units)
}

fn bn(b: &mut Builder, name: &str, x: ValueId, c: usize) -> ValueId {
    let var: Vec<f32> = values(c, 77).iter().map(|v| v.abs() + 0.5).collect();
    let s = b.weight(&format!("{name}.scale"), &[c]);
    let bias = b.weight(&format!("{name}.bias"), &[c]);
    let mean = b.weight(&format!("{name}.mean"), &[c]);
    let var = b.tensor(&format!("{name}.var"), Tensor::from_f32(&[c], var));
    b.node(
        name,
        Op::BatchNormalization { epsilon: 1e-5 },
        &[Some(x), Some(s), Some(bias), Some(mean), Some(var)],
    )
}

#[test]
fn conv_bn_relu_conv() {
    let (mut b, x) = Builder::new(&[2, 3, 6, 6]);
    let c1 = b.conv("conv1", x, 8, 3, 1);
    let n1 = bn(&mut b, "bn1", c1, 8);
    let r1 = b.node("relu1", Op::Relu {}, &[Some(n1)]);
    let c2 = b.conv("conv2", r1, 16, 3, 1);
    let r2 = b.node("relu2", Op::Relu {}, &[Some(c2)]);
    let c3 = b.conv("conv3", r2, 4, 1, 0);
    let (g, xt) = b.finish(&[c3]);
    let w1 = g
        .const_data(g.node(g.topo_order()[0]).inputs[1].unwrap())
        .unwrap()
        .clone();
    let (p, units) = prune_and_check(&g, &xt, &everything(0.5));
    assert_eq!(operand_shape(&p, "conv1", 1), [4, 3, 3, 3]);
    assert_eq!(operand_shape(&p, "conv1", 2), [4]);
    for k in 1..5 {
        assert_eq!(operand_shape(&p, "bn1", k), [4]);
    }
    assert_eq!(operand_shape(&p, "conv2", 1), [8, 4, 3, 3]);
    assert_eq!(operand_shape(&p, "conv3", 1), [4, 8, 1, 1]);
    // conv1 keeps its 4 filters of largest L1 norm, computed here with a plain loop.
    let d = w1.to_f32_vec();
    let mut norms: Vec<(f32, usize)> = (0..8)
        .map(|c| (d[c * 27..(c + 1) * 27].iter().map(|x| x.abs()).sum(), c))
        .collect();
    norms.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut top: Vec<usize> = norms[..4].iter().map(|n| n.1).collect();
    top.sort();
    assert_eq!(units[0].layers, ["conv1"]);
    assert_eq!(units[0].kept, top);
    assert_eq!(units.len(), 2, "conv3 feeds the graph output");
    // The changed weights' sparsity facts describe the new data.
    let v = p.node(p.topo_order()[0]).inputs[1].unwrap();
    assert_eq!(p.weight(v).unwrap().facts.numel, 4 * 27);
}

#[test]
fn residual_add_shares_one_mask() {
    let (mut b, x) = Builder::new(&[1, 4, 5, 5]);
    let a = b.conv("a", x, 8, 3, 1);
    let ra = b.node("ra", Op::Relu {}, &[Some(a)]);
    let bb = b.conv("b", ra, 8, 3, 1);
    let s = b.conv("shortcut", x, 8, 1, 0);
    let sum = b.node("add", Op::Add {}, &[Some(bb), Some(s)]);
    let r = b.node("relu", Op::Relu {}, &[Some(sum)]);
    let out = b.conv("head", r, 3, 1, 0);
    let (g, xt) = b.finish(&[out]);
    let (p, units) = prune_and_check(&g, &xt, &everything(0.25));
    assert_eq!(units.len(), 2);
    assert_eq!(units[1].layers, ["b", "shortcut"]);
    assert_eq!(operand_shape(&p, "a", 1), [6, 4, 3, 3]);
    assert_eq!(operand_shape(&p, "b", 1), [6, 6, 3, 3]);
    assert_eq!(operand_shape(&p, "shortcut", 1), [6, 4, 1, 1]);
    assert_eq!(operand_shape(&p, "head", 1), [3, 6, 1, 1]);
}

#[test]
fn identity_shortcut_pins_the_residual_channels() {
    let (mut b, x) = Builder::new(&[1, 4, 5, 5]);
    let a = b.conv("a", x, 8, 3, 1);
    let ra = b.node("ra", Op::Relu {}, &[Some(a)]);
    let bb = b.conv("b", ra, 4, 3, 1);
    let sum = b.node("add", Op::Add {}, &[Some(bb), Some(x)]);
    let out = b.conv("head", sum, 3, 1, 0);
    let (g, xt) = b.finish(&[out]);
    let (p, units) = prune_and_check(&g, &xt, &everything(0.5));
    assert_eq!(units.len(), 1);
    assert_eq!(operand_shape(&p, "a", 1), [4, 4, 3, 3]);
    assert_eq!(operand_shape(&p, "b", 1), [4, 4, 3, 3]);
}

#[test]
fn concat_offsets() {
    let (mut b, x) = Builder::new(&[2, 3, 4, 4]);
    let c1 = b.conv("c1", x, 6, 3, 1);
    let c2 = b.conv("c2", x, 4, 1, 0);
    let cat = b.node(
        "cat",
        Op::Concat { axis: 1 },
        &[Some(c1), Some(x), Some(c2)],
    );
    let r = b.node("relu", Op::Relu {}, &[Some(cat)]);
    let out = b.conv("head", r, 2, 3, 0);
    let (g, xt) = b.finish(&[out]);
    let (p, units) = prune_and_check(&g, &xt, &everything(0.5));
    assert_eq!(units.len(), 2);
    assert_eq!(operand_shape(&p, "c1", 1), [3, 3, 3, 3]);
    assert_eq!(operand_shape(&p, "c2", 1), [2, 3, 1, 1]);
    assert_eq!(operand_shape(&p, "head", 1), [2, 3 + 3 + 2, 3, 3]);
}

#[test]
fn conv_flatten_gemm_and_reshape() {
    for reshape in [false, true] {
        let (mut b, x) = Builder::new(&[2, 2, 4, 4]);
        let c = b.conv("conv", x, 8, 3, 1);
        let r = b.node("relu", Op::Relu {}, &[Some(c)]);
        let pool = Op::MaxPool {
            auto_pad: "NOTSET".into(),
            ceil_mode: 0,
            dilations: vec![],
            kernel_shape: vec![2, 2],
            pads: vec![],
            storage_order: 0,
            strides: vec![2, 2],
        };
        let m = b.node("pool", pool, &[Some(r)]);
        let f = if reshape {
            let s = b.tensor("shape", Tensor::from_i64(&[2], vec![0, 32]));
            b.node("flat", Op::Reshape { allowzero: 0 }, &[Some(m), Some(s)])
        } else {
            b.node("flat", Op::Flatten { axis: 1 }, &[Some(m)])
        };
        let out = b.linear("fc", f, 5);
        let (g, xt) = b.finish(&[out]);
        let (p, units) = prune_and_check(&g, &xt, &everything(0.5));
        assert_eq!(units.len(), 1);
        assert_eq!(operand_shape(&p, "conv", 1), [4, 2, 3, 3]);
        assert_eq!(operand_shape(&p, "fc", 1), [5, 16]);
    }
}

#[test]
fn mlp_counts_parameters_and_macs() {
    let (mut b, x) = Builder::new(&[3, 16]);
    let h1 = b.linear("fc1", x, 32);
    let r1 = b.node("r1", Op::Relu {}, &[Some(h1)]);
    let w2 = b.weight("fc2.w", &[32, 24]);
    let b2 = b.weight("fc2.b", &[24]);
    let gemm = Op::Gemm {
        alpha: 1.0,
        beta: 1.0,
        trans_a: 0,
        trans_b: 0,
    };
    let h2 = b.node("fc2", gemm, &[Some(r1), Some(w2), Some(b2)]);
    let r2 = b.node("r2", Op::Sigmoid {}, &[Some(h2)]);
    let w3 = b.weight("fc3.w", &[24, 10]);
    let out = b.node("fc3", Op::MatMul {}, &[Some(r2), Some(w3)]);
    let (g, xt) = b.finish(&[out]);
    let (p, _) = prune_and_check(&g, &xt, &everything(0.5));
    assert_eq!(operand_shape(&p, "fc1", 1), [16, 16]);
    assert_eq!(operand_shape(&p, "fc2", 1), [16, 12]);
    assert_eq!(operand_shape(&p, "fc2", 2), [12]);
    assert_eq!(operand_shape(&p, "fc3", 1), [12, 10]);
    let report = channel_report(&g, &p);
    assert_eq!(
        report,
        ChannelReport {
            params_before: 512 + 32 + 768 + 24 + 240,
            params_after: 256 + 16 + 192 + 12 + 120,
            macs_before: 3 * (32 * 16 + 24 * 32 + 10 * 24),
            macs_after: 3 * (16 * 16 + 12 * 16 + 10 * 12),
        }
    );
}

#[test]
fn unknown_consumers_and_graph_outputs_keep_channels() {
    let (mut b, x) = Builder::new(&[1, 3, 4, 4]);
    let c1 = b.conv("c1", x, 8, 3, 1);
    let sm = b.node(
        "softmax",
        Op::Softmax {
            axis: 1,
            coerce_2d: 0,
        },
        &[Some(c1)],
    );
    let c2 = b.conv("c2", x, 8, 3, 1);
    let (g, xt) = b.finish(&[sm, c2]);
    let (p, units) = prune_and_check(&g, &xt, &everything(0.5));
    assert!(units.is_empty());
    assert_eq!(operand_shape(&p, "c1", 1), [8, 3, 3, 3]);
}

#[test]
fn pass_applies_the_default_policy_and_overrides() {
    let build = || {
        let (mut b, x) = Builder::new(&[1, 8, 5, 5]);
        let c1 = b.conv("conv1", x, 64, 3, 1);
        let r1 = b.node("r1", Op::Relu {}, &[Some(c1)]);
        let c2 = b.conv("conv2", r1, 64, 3, 1);
        let r2 = b.node("r2", Op::Relu {}, &[Some(c2)]);
        let c3 = b.conv("conv3", r2, 8, 1, 0);
        let r3 = b.node("r3", Op::Relu {}, &[Some(c3)]);
        let c4 = b.conv("conv4", r3, 4, 1, 0);
        b.finish(&[c4]).0
    };
    // conv1 is first, conv3 tiny (512 weights), conv4 last: only conv2 loses channels.
    let mut g = build();
    let mut cx = PassContext::default();
    assert!(run(&mut g, &mut cx).expect("runs"));
    assert_eq!(operand_shape(&g, "conv1", 1), [64, 8, 3, 3]);
    assert_eq!(operand_shape(&g, "conv2", 1), [32, 64, 3, 3]);
    assert_eq!(operand_shape(&g, "conv3", 1), [8, 32, 1, 1]);
    assert!(
        cx.notes[0].contains("`conv2`: kept 32 of 64"),
        "{:?}",
        cx.notes
    );
    assert!(cx.notes[1].starts_with("prune-channels: parameters "));
    // Overrides win: conv2 stays, conv1 and conv3 lose a quarter.
    let mut g = build();
    let mut cx = PassContext::default();
    cx.channels.overrides = parse_channel_overrides("conv2=0, conv*=0.25").unwrap();
    cx.channels.norm = ChannelNorm::L2;
    run(&mut g, &mut cx).expect("runs");
    assert_eq!(operand_shape(&g, "conv1", 1), [48, 8, 3, 3]);
    assert_eq!(operand_shape(&g, "conv2", 1), [64, 48, 3, 3]);
    assert_eq!(operand_shape(&g, "conv3", 1), [6, 64, 1, 1]);
    // A bad fraction is an error naming the value.
    let mut cx = PassContext::default();
    cx.channels.fraction = 1.5;
    let err = run(&mut build(), &mut cx).unwrap_err().to_string();
    assert!(err.contains("1.5"), "{err}");
}

#[test]
fn parses_options() {
    assert_eq!(ChannelNorm::parse("L2"), Ok(ChannelNorm::L2));
    assert!(ChannelNorm::parse("l3").is_err());
    assert!(parse_channel_overrides("a=2").is_err());
    assert!(parse_channel_overrides("=0.5").is_err());
    assert!(parse_channel_overrides("a").is_err());
    assert!(glob("layer*.conv", "layer1.conv"));
    assert!(glob("*", ""));
    assert!(!glob("conv", "conv1"));
    assert!(glob("a*b*c", "aXbYbc"));
}

#[test]
fn clip_depthwise_conv_and_added_constant() {
    let (mut b, x) = Builder::new(&[1, 4, 5, 5]);
    let a = b.conv("a", x, 8, 1, 0);
    let lo = b.tensor("lo", Tensor::scalar_f32(0.0));
    let hi = b.tensor("hi", Tensor::scalar_f32(0.5));
    let c = b.node("clip", Op::Clip {}, &[Some(a), Some(lo), Some(hi)]);
    let dw_w = b.weight("dw.w", &[8, 1, 3, 3]);
    let dw_b = b.weight("dw.b", &[8]);
    let dw = b.node("dw", conv_op(1, 8), &[Some(c), Some(dw_w), Some(dw_b)]);
    let k = b.weight("k", &[1, 8, 1, 1]);
    let s = b.node("add", Op::Add {}, &[Some(dw), Some(k)]);
    let out = b.conv("head", s, 2, 1, 0);
    let (g, xt) = b.finish(&[out]);
    let (p, units) = prune_and_check(&g, &xt, &everything(0.5));
    assert_eq!(units.len(), 1);
    assert_eq!(operand_shape(&p, "a", 1), [4, 4, 1, 1]);
    assert_eq!(operand_shape(&p, "dw", 1), [4, 1, 3, 3]);
    assert_eq!(operand_shape(&p, "dw", 2), [4]);
    assert_eq!(operand_shape(&p, "add", 1), [1, 4, 1, 1]);
    assert_eq!(operand_shape(&p, "head", 1), [2, 4, 1, 1]);
}

#[test]
fn gemm_without_transpose_and_row_bias() {
    let (mut b, x) = Builder::new(&[4, 6]);
    let w = b.weight("fc1.w", &[6, 10]);
    let c = b.weight("fc1.c", &[1, 10]);
    let gemm = Op::Gemm {
        alpha: 0.5,
        beta: 2.0,
        trans_a: 0,
        trans_b: 0,
    };
    let h = b.node("fc1", gemm, &[Some(x), Some(w), Some(c)]);
    let r = b.node("lrelu", Op::LeakyRelu { alpha: 0.1 }, &[Some(h)]);
    let out = b.linear("fc2", r, 3);
    let (g, xt) = b.finish(&[out]);
    let (p, _) = prune_and_check(&g, &xt, &everything(0.3));
    assert_eq!(operand_shape(&p, "fc1", 1), [6, 7]);
    assert_eq!(operand_shape(&p, "fc1", 2), [1, 7]);
    assert_eq!(operand_shape(&p, "fc2", 1), [3, 7]);
}
