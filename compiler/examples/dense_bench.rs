//! Single-threaded speed of the dense Conv lowering on ResNet-50 convolutions (batch 1), in
//! GFLOP/s (median of repeated runs of the whole kernel range), with the 1x1 convolutions timed
//! both on the direct (pointwise) path and forced through im2col.
//!
//! Run with `cargo run --release -p sparsec --example dense_bench [reps]`.

use sparsec::codegen::dense::{lower_conv, lower_conv_path, ConvPath};
use sparsec::codegen::{Arg, LoweredKernel};
use sparsec_ir::{DType, Graph, NodeId, Op, Tensor, TensorType, ValueDef};
use std::time::Instant;

/// `(label, c_in, c_out, input size, kernel, stride, pad, group)`.
type Case = (
    &'static str,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
);

const CASES: &[Case] = &[
    ("conv1 7x7/2", 3, 64, 224, 7, 2, 3, 1),
    ("s1 3x3", 64, 64, 56, 3, 1, 1, 1),
    ("s2 3x3/2", 128, 128, 56, 3, 2, 1, 1),
    ("s2 3x3", 128, 128, 28, 3, 1, 1, 1),
    ("s3 3x3", 256, 256, 14, 3, 1, 1, 1),
    ("s4 3x3", 512, 512, 7, 3, 1, 1, 1),
    ("s1 1x1 64>256", 64, 256, 56, 1, 1, 0, 1),
    ("s1 1x1 256>64", 256, 64, 56, 1, 1, 0, 1),
    ("s2 1x1 512>128", 512, 128, 28, 1, 1, 0, 1),
    ("s3 1x1 1024>256", 1024, 256, 14, 1, 1, 0, 1),
    ("s4 1x1 2048>512", 2048, 512, 7, 1, 1, 0, 1),
    ("dw 3x3 (mobilenet)", 32, 32, 112, 3, 1, 1, 32),
];

fn values(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
        .collect()
}

/// A graph with one convolution.
fn conv_graph(&(_, ci, co, hw, k, s, p, g): &Case) -> (Graph, NodeId) {
    let mut graph = Graph::new("bench");
    let x = graph.add_input("x", TensorType::known(DType::F32, &[1, ci, hw, hw]));
    let w = graph.add_weight(
        "w",
        Tensor::from_f32(&[co, ci / g, k, k], values(co * ci / g * k * k)),
    );
    let o = (hw + 2 * p - k) / s + 1;
    let op = Op::Conv {
        auto_pad: "NOTSET".into(),
        dilations: vec![],
        group: g as i64,
        kernel_shape: vec![],
        pads: vec![p as i64; 4],
        strides: vec![s as i64; 2],
    };
    let n = graph.add_node(
        "conv",
        op,
        vec![Some(x), Some(w)],
        vec![("y".into(), TensorType::known(DType::F32, &[1, co, o, o]))],
    );
    graph.set_outputs(vec![graph.node(n).outputs[0]]);
    (graph, n)
}

/// Median seconds of running `lk` over its whole range.
fn time(graph: &Graph, lk: &LoweredKernel, reps: usize, flops: f64) -> f64 {
    let mut bufs: Vec<Vec<f32>> = lk
        .args
        .iter()
        .map(|a| match a {
            Arg::Packed(t) => t.to_f32_vec(),
            Arg::Value(v) => match &graph.value(*v).def {
                ValueDef::Weight(w) => w.data.as_ref().map(|t| t.to_f32_vec()).unwrap_or_default(),
                _ => values(graph.value(*v).ty.numel().unwrap_or(0)),
            },
        })
        .collect();
    let ptrs: Vec<*mut u8> = bufs.iter_mut().map(|b| b.as_mut_ptr() as *mut u8).collect();
    // SAFETY: the buffers are sized from the graph's types, in the kernel's order.
    let run = || unsafe { lk.kernel.call(&ptrs, 0, lk.work) };
    run();
    let inner = ((20e6 / flops).ceil() as usize).max(1);
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let s = Instant::now();
            for _ in 0..inner {
                run();
            }
            s.elapsed().as_secs_f64() / inner as f64
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[reps / 2]
}

fn main() {
    let reps: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    println!("Conv, batch 1, single-threaded, GFLOP/s (median of {reps} runs)\n");
    println!("| conv | Cin | Cout | in | path | GFLOP/s | im2col GFLOP/s |");
    println!("|---|---:|---:|---:|---|---:|---:|");
    for case in CASES {
        let (graph, n) = conv_graph(case);
        let &(label, ci, co, hw, k, s, p, g) = case;
        let o = (hw + 2 * p - k) / s + 1;
        let flops = 2.0 * (co * (ci / g) * k * k * o * o) as f64;
        let lk = lower_conv(&graph, n, &[]).expect("lowers");
        let path = if g > 1 {
            "depthwise"
        } else if k == 1 && s == 1 {
            "pointwise"
        } else {
            "im2col"
        };
        let auto = flops / time(&graph, &lk, reps, flops) / 1e9;
        let forced = if path == "im2col" {
            String::new()
        } else {
            let lk = lower_conv_path(&graph, n, &[], Some(ConvPath::Im2col)).expect("lowers");
            format!("{:.1}", flops / time(&graph, &lk, reps, flops) / 1e9)
        };
        println!("| {label} | {ci} | {co} | {hw} | {path} | {auto:.1} | {forced} |");
    }
}
