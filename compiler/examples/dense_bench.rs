//! Speed of the dense Conv lowering on ResNet-50 convolutions, the digits CNN's two wider ones
//! and depthwise layers (batch 1), in GFLOP/s, on one thread and through the runtime's pool on
//! two (the kernel's `work` split by `parallel_for` as a plan step would be), with the speed-up;
//! the 1x1 and Winograd convolutions are also timed forced through im2col on one thread. Each
//! figure is the best and the median of repeated runs: on a shared machine the best run is the
//! steadier estimate of what the kernel can do.
//!
//! Run with `cargo run --release -p sparsec --example dense_bench [reps] [label filter]`.

use sparsec::codegen::dense::{conv_path, lower_conv, lower_conv_path, ConvPath};
use sparsec::codegen::{Arg, LoweredKernel};
use sparsec_ir::{DType, Graph, NodeId, Op, Tensor, TensorType, ValueDef};
use sparsec_runtime::ThreadPool;
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
    ("dw 3x3 (shufflenet 28)", 136, 136, 28, 3, 1, 1, 136),
    ("dw 3x3 (shufflenet 14)", 272, 272, 14, 3, 1, 1, 272),
    ("dw 3x3 (shufflenet 7)", 544, 544, 7, 3, 1, 1, 544),
    ("digits c2", 32, 64, 8, 3, 1, 1, 1),
    ("digits c3", 64, 128, 4, 3, 1, 1, 1),
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

/// Best and median seconds of running `lk` over its whole range on `pool`.
fn time(
    graph: &Graph,
    lk: &LoweredKernel,
    pool: &ThreadPool,
    reps: usize,
    flops: f64,
) -> (f64, f64) {
    let mut bufs: Vec<Vec<f32>> = lk
        .args
        .iter()
        .map(|a| match a {
            Arg::Packed(t) => t.to_f32_vec(),
            Arg::Value(v) => match &graph.value(*v).def {
                ValueDef::Weight(w) => w.data.as_ref().map(|t| t.to_f32_vec()).unwrap_or_default(),
                _ => values(graph.value(*v).ty.numel().unwrap_or(0)),
            },
            other => panic!("dense kernels take no {other:?}"),
        })
        .collect();
    let ptrs: Vec<usize> = bufs.iter_mut().map(|b| b.as_mut_ptr() as usize).collect();
    let run = || {
        pool.parallel_for(lk.work, lk.grain, &|b, e| {
            let p: Vec<*mut u8> = ptrs.iter().map(|&a| a as *mut u8).collect();
            // SAFETY: the buffers are sized from the graph's types, in the kernel's order, and
            // the pool hands out disjoint ranges.
            unsafe { lk.kernel.call(&p, b, e) }
        })
    };
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
    (t[0], t[reps / 2])
}

fn main() {
    let reps: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(7)
        .max(1);
    let filter = std::env::args().nth(2).unwrap_or_default();
    let one = ThreadPool::new(1).expect("a pool");
    let two = ThreadPool::new(2).expect("a pool");
    println!("Conv, batch 1, GFLOP/s best / median of {reps} runs\n");
    println!(
        "| conv | Cin | Cout | in | path | 1 thread | 2 threads | speed-up | im2col 1 thread |"
    );
    println!("|---|---:|---:|---:|---|---:|---:|---:|---:|");
    let (mut total1, mut total2, mut total_flops) = (0.0, 0.0, 0.0);
    for case in CASES.iter().filter(|c| c.0.contains(filter.as_str())) {
        let (graph, n) = conv_graph(case);
        let &(label, ci, co, hw, k, s, p, g) = case;
        let o = (hw + 2 * p - k) / s + 1;
        let flops = 2.0 * (co * (ci / g) * k * k * o * o) as f64;
        let lk = lower_conv(&graph, n, &[]).expect("lowers");
        let path = match conv_path(&graph, n).expect("plans") {
            ConvPath::Depthwise => "depthwise",
            ConvPath::Pointwise => "pointwise",
            ConvPath::Im2col => "im2col",
            ConvPath::Winograd => "winograd",
        };
        let gf = |t: f64| flops / t / 1e9;
        let (b1, m1) = time(&graph, &lk, &one, reps, flops);
        let (b2, m2) = time(&graph, &lk, &two, reps, flops);
        if g == 1 {
            total1 += b1;
            total2 += b2;
            total_flops += flops;
        }
        let forced = if path == "im2col" {
            String::new()
        } else {
            let lk = lower_conv_path(&graph, n, &[], Some(ConvPath::Im2col)).expect("lowers");
            let (b, m) = time(&graph, &lk, &one, reps, flops);
            format!("{:.1} / {:.1}", gf(b), gf(m))
        };
        println!(
            "| {label} | {ci} | {co} | {hw} | {path} | {:.1} / {:.1} | {:.1} / {:.1} | {:.2} | {forced} |",
            gf(b1),
            gf(m1),
            gf(b2),
            gf(m2),
            b1 / b2
        );
    }
    println!(
        "\nnon-depthwise total (best runs): 1 thread {:.1} GFLOP/s, 2 threads {:.1} GFLOP/s, speed-up {:.2}",
        total_flops / total1 / 1e9,
        total_flops / total2 / 1e9,
        total1 / total2
    );
}
