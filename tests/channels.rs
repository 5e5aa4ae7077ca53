//! Snapshot tests of `prune-channels` and `propagate-sparsity`: the IR text before and after each
//! pass (with the pass's notes) for the digits CNN and a hand-built conv -> relu -> conv graph with
//! all-zero filters, plus the checks every pass result gets (verification, text round trip, and
//! for the sparsity propagation unchanged outputs).

mod support;

use sparsec::interp::run_graph;
use sparsec::onnx::{import_file, ImportOptions};
use sparsec::passes::{
    default_pipeline, prune_channels, run_pipeline, ChannelMode, ChannelOptions, RunOptions,
};
use sparsec_ir::{DType, Graph, Op, Tensor, TensorType};

/// Runs `passes` with verification and returns `before`, `after` and the notes as one text.
fn before_after(graph: &mut Graph, passes: &[&str]) -> String {
    let before = sparsec_ir::print(graph);
    let opts = RunOptions {
        verify: true,
        ..RunOptions::default()
    };
    let report = run_pipeline(graph, passes, &opts).unwrap_or_else(|e| panic!("{e}"));
    let after = sparsec_ir::print(graph);
    let reparsed = sparsec_ir::parse(&after).unwrap_or_else(|e| panic!("parse back: {e}"));
    assert_eq!(
        sparsec_ir::print(&reparsed),
        after,
        "print -> parse -> print differs"
    );
    format!(
        "# before\n{before}\n# after {}\n{after}\n# notes\n{}\n",
        passes.join(","),
        report.notes.join("\n")
    )
}

#[test]
fn prune_channels_digits_cnn() {
    let model = support::repo().join("examples/digits_cnn.onnx");
    let mut g = import_file(&model, &ImportOptions::default()).expect("imports");
    run_pipeline(&mut g, &default_pipeline(), &RunOptions::default()).expect("passes run");
    insta::assert_snapshot!(
        "prune_channels_digits_cnn",
        before_after(&mut g, &["prune-channels"])
    );
}

/// Deterministic values in `[-1, 1)`.
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

fn conv(pad: i64) -> Op {
    Op::Conv {
        auto_pad: "NOTSET".into(),
        dilations: vec![],
        group: 1,
        kernel_shape: vec![],
        pads: vec![pad; 4],
        strides: vec![],
    }
}

#[test]
fn propagate_sparsity_conv_relu_conv() {
    // conv1 filters 2 (bias -0.3, so relu gives 0) and 5 (bias 0.6) are all zero; conv2 (1x1, no
    // padding) never reads channel 6.
    let mut g = Graph::new("conv_relu_conv");
    let x = g.add_input("x", TensorType::known(DType::F32, &[1, 3, 6, 6]));
    let mut w1 = values(8 * 27, 1);
    for r in [2, 5] {
        w1[r * 27..(r + 1) * 27].fill(0.0);
    }
    let mut b1 = values(8, 2);
    b1[2] = -0.3;
    b1[5] = 0.6;
    let mut w2 = values(4 * 8, 3);
    for o in 0..4 {
        w2[o * 8 + 6] = 0.0;
    }
    let w1 = g.add_weight("conv1.weight", Tensor::from_f32(&[8, 3, 3, 3], w1));
    let b1 = g.add_weight("conv1.bias", Tensor::from_f32(&[8], b1));
    let w2 = g.add_weight("conv2.weight", Tensor::from_f32(&[4, 8, 1, 1], w2));
    let any = |name: &str| vec![(name.to_string(), TensorType::known(DType::F32, &[]))];
    let c1 = g.add_node(
        "conv1",
        conv(1),
        vec![Some(x), Some(w1), Some(b1)],
        any("h"),
    );
    let c1 = g.node(c1).outputs[0];
    let r = g.add_node("relu", Op::Relu {}, vec![Some(c1)], any("a"));
    let r = g.node(r).outputs[0];
    let c2 = g.add_node("conv2", conv(0), vec![Some(r), Some(w2)], any("y"));
    g.set_outputs(vec![g.node(c2).outputs[0]]);
    run_pipeline(&mut g, &["infer-shapes"], &RunOptions::default()).expect("types");
    let xt = Tensor::from_f32(&[1, 3, 6, 6], values(108, 4));
    let before = run_graph(&g, std::slice::from_ref(&xt)).expect("runs")[0].to_f32_vec();
    let text = before_after(&mut g, &["propagate-sparsity", "dce"]);
    let after = run_graph(&g, &[xt]).expect("runs")[0].to_f32_vec();
    for (a, b) in after.iter().zip(&before) {
        assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{a} vs {b}");
    }
    insta::assert_snapshot!("propagate_sparsity_conv_relu_conv", text);
}

#[test]
fn tiny_bert_feed_forward_channels_agree_with_zeroing() {
    // The FFN's intermediate features (MatMul -> bias Add -> Erf GELU -> MatMul) are prunable; the
    // attention projections, reshaped into heads, are not.
    let model = support::repo().join("examples/tiny_bert_random.onnx");
    let mut g = import_file(&model, &ImportOptions::default()).expect("imports");
    run_pipeline(&mut g, &default_pipeline(), &RunOptions::default()).expect("passes run");
    let opts = ChannelOptions::default();
    let mut removed = g.clone();
    let units = prune_channels(&mut removed, &opts, ChannelMode::Remove).expect("prunes");
    let mut zeroed = g.clone();
    prune_channels(&mut zeroed, &opts, ChannelMode::Zero).expect("zeroes");
    assert!(!units.is_empty());
    for u in &units {
        assert!(u.layers.iter().all(|l| l.contains("intermediate")), "{u:?}");
        assert_eq!(u.kept.len() * 2, u.channels);
    }
    let ids: Vec<i64> = (0..128).map(|i| (i * 37 + 11) % 1000).collect();
    let inputs = vec![
        Tensor::from_i64(&[1, 128], ids),
        Tensor::from_i64(&[1, 128], vec![1; 128]),
        Tensor::from_i64(&[1, 128], vec![0; 128]),
    ];
    let a = run_graph(&removed, &inputs).expect("runs")[0].to_f32_vec();
    let b = run_graph(&zeroed, &inputs).expect("runs")[0].to_f32_vec();
    for (x, y) in a.iter().zip(&b) {
        assert!((x - y).abs() <= 1e-4 * (1.0 + y.abs()), "{x} vs {y}");
    }
}
