//! Speed of the sparse convolution (`sparse::lower_sparse_conv`, CSR) against the dense one
//! (`dense::lower_conv`) on ResNet-50 convolution shapes at batch 1 with 90% random zeros, on
//! one thread (thread CPU time, as the machine is shared) and two through the runtime's pool
//! (wall time): median milliseconds of repeated runs, the two kernels alternating within each
//! repetition so both see the same machine load.
//!
//! Run with `cargo run --release -p sparsec --example spconv_bench [reps] [zeros] [label filter]`.

use sparsec::codegen::dense::lower_conv;
use sparsec::codegen::jit::Jit;
use sparsec::codegen::local::LocalSteps;
use sparsec::codegen::sparse::{lower_sparse_conv, Csr, Packing};
use sparsec::codegen::LoweredKernel;
use sparsec_ir::{DType, Graph, NodeId, Op, Tensor, TensorType, ValueDef, ValueId};
use sparsec_runtime::ThreadPool;
use std::time::Instant;

mod common;
use common::thread_cpu;

/// `(label, c_in, c_out, input size, kernel, stride, pad)`.
type Case = (&'static str, usize, usize, usize, usize, usize, usize);

const CASES: &[Case] = &[
    ("56 3x3 64>64", 64, 64, 56, 3, 1, 1),
    ("56 1x1 64>256", 64, 256, 56, 1, 1, 0),
    ("56 1x1 256>64", 256, 64, 56, 1, 1, 0),
    ("56 3x3/2 128>128", 128, 128, 56, 3, 2, 1),
    ("56 1x1/2 256>512", 256, 512, 56, 1, 2, 0),
    ("28 3x3 128>128", 128, 128, 28, 3, 1, 1),
    ("28 1x1 128>512", 128, 512, 28, 1, 1, 0),
    ("28 1x1 512>128", 512, 128, 28, 1, 1, 0),
    ("28 3x3/2 256>256", 256, 256, 28, 3, 2, 1),
    ("14 3x3 256>256", 256, 256, 14, 3, 1, 1),
    ("14 1x1 256>1024", 256, 1024, 14, 1, 1, 0),
    ("14 1x1 1024>256", 1024, 256, 14, 1, 1, 0),
    ("14 3x3/2 512>512", 512, 512, 14, 3, 2, 1),
    ("14 1x1/2 1024>2048", 1024, 2048, 14, 1, 2, 0),
    ("7 3x3 512>512", 512, 512, 7, 3, 1, 1),
    ("7 1x1 512>2048", 512, 2048, 7, 1, 1, 0),
    ("7 1x1 2048>512", 2048, 512, 7, 1, 1, 0),
];

/// Deterministic values in `[-1, 1)`, about `zeros` of them zero.
fn values(n: usize, zeros: f64, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            let r = s.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11;
            let u = r as f64 / (1u64 << 53) as f64;
            if u < zeros {
                0.0
            } else {
                (u * 2.0 - 1.0) as f32 + 0.01
            }
        })
        .collect()
}

/// A graph with one convolution (bias and ReLU fused by the caller) and the packed weight.
fn conv_graph(&(_, ci, co, hw, k, s, p): &Case, zeros: f64) -> (Graph, NodeId, Packing) {
    let mut graph = Graph::new("bench");
    let x = graph.add_input("x", TensorType::known(DType::F32, &[1, ci, hw, hw]));
    let wd = values(co * ci * k * k, zeros, 7);
    let packing = Packing::Csr(Csr::from_dense("w", co, ci * k * k, &wd).expect("packs"));
    let w = graph.add_weight("w", Tensor::from_f32(&[co, ci, k, k], wd));
    let b = graph.add_weight("b", Tensor::from_f32(&[co], values(co, 0.0, 3)));
    let o = (hw + 2 * p - k) / s + 1;
    let op = Op::Conv {
        auto_pad: "NOTSET".into(),
        dilations: vec![],
        group: 1,
        kernel_shape: vec![],
        pads: vec![p as i64; 4],
        strides: vec![s as i64; 2],
    };
    let n = graph.add_node(
        "conv",
        op,
        vec![Some(x), Some(w), Some(b)],
        vec![("y".into(), TensorType::known(DType::F32, &[1, co, o, o]))],
    );
    graph.set_outputs(vec![graph.node(n).outputs[0]]);
    (graph, n, packing)
}

/// The steps' buffers: weights from the graph, other inputs pseudo-random, results NaN.
fn buffers<'a>(graph: &Graph, steps: &'a [LoweredKernel]) -> LocalSteps<'a> {
    let y = graph.outputs()[0];
    let mut init = |v: ValueId| match &graph.value(v).def {
        ValueDef::Weight(w) => w.data.as_deref().cloned(),
        _ if v == y => None,
        _ => {
            let ty = &graph.value(v).ty;
            let n = ty.numel().unwrap_or(0);
            Some(Tensor::from_f32(
                &ty.shape().unwrap_or_default(),
                values(n, 0.0, 5),
            ))
        }
    };
    LocalSteps::new(graph, steps, &mut init)
}

/// Seconds of one run of the steps on `pool`, repeated `inner` times: thread CPU time when
/// `cpu` (one thread: the pool runs the steps on the caller), else wall time.
fn once(steps: &mut LocalSteps, pool: &ThreadPool, inner: usize, cpu: bool) -> f64 {
    let c = thread_cpu();
    let s = Instant::now();
    for _ in 0..inner {
        steps.run_on(pool);
    }
    if cpu {
        (thread_cpu() - c) / inner as f64
    } else {
        s.elapsed().as_secs_f64() / inner as f64
    }
}

/// Median seconds of dense and sparse, alternating, on `pool`.
fn compare(
    graph: &Graph,
    dense: &[LoweredKernel],
    sparse: &[LoweredKernel],
    pool: &ThreadPool,
    reps: usize,
    flops: f64,
    cpu: bool,
) -> (f64, f64, f32) {
    let mut bd = buffers(graph, dense);
    let mut bs = buffers(graph, sparse);
    let inner = ((1e9 / flops).ceil() as usize).max(1);
    once(&mut bd, pool, 1, cpu);
    once(&mut bs, pool, 1, cpu);
    let (mut td, mut ts) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        td.push(once(&mut bd, pool, inner, cpu));
        ts.push(once(&mut bs, pool, inner, cpu));
    }
    td.sort_by(f64::total_cmp);
    ts.sort_by(f64::total_cmp);
    let y = graph.outputs()[0];
    let err = bd
        .f32s(y)
        .iter()
        .zip(bs.f32s(y))
        .map(|(a, b)| (a - b).abs() / (1.0 + a.abs()))
        .fold(0.0f32, f32::max);
    (td[reps / 2], ts[reps / 2], err)
}

fn main() {
    let mut a = std::env::args().skip(1);
    let reps: usize = a.next().and_then(|s| s.parse().ok()).unwrap_or(7).max(1);
    let zeros: f64 = a.next().and_then(|s| s.parse().ok()).unwrap_or(0.9);
    let filter = a.next().unwrap_or_default();
    let one = ThreadPool::new(1).expect("a pool");
    let two = ThreadPool::new(2).expect("a pool");
    println!(
        "Conv+bias+relu, batch 1, {:.0}% random zeros, median ms of {reps} runs (dense and sparse alternating; 1 thread: CPU time, 2 threads: wall time)\n",
        zeros * 100.0
    );
    println!("| conv | dense 1t | sparse 1t | speed-up 1t | dense 2t | sparse 2t | speed-up 2t |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let (mut d1, mut s1, mut d2, mut s2) = (0.0, 0.0, 0.0, 0.0);
    for case in CASES.iter().filter(|c| c.0.contains(filter.as_str())) {
        let (graph, n, packing) = conv_graph(case, zeros);
        let &(label, ci, co, hw, k, s, p) = case;
        let o = (hw + 2 * p - k) / s + 1;
        let flops = 2.0 * (co * ci * k * k * o * o) as f64;
        let epi = [sparsec::codegen::Epilogue::Relu];
        let dense = lower_conv(&graph, n, &epi).expect("dense lowers");
        let mut jit = Jit::new().expect("a JIT");
        let sparse =
            lower_sparse_conv(&graph, n, &epi, &packing, &mut jit, 0).expect("sparse lowers");
        let dense = std::slice::from_ref(&dense);
        let (a1, b1, e1) = compare(&graph, dense, &sparse, &one, reps, flops, true);
        let (a2, b2, e2) = compare(&graph, dense, &sparse, &two, reps, flops, false);
        assert!(
            e1.max(e2) < 1e-3,
            "{label}: sparse and dense differ by {}",
            e1.max(e2)
        );
        println!(
            "| {label} | {:.3} | {:.3} | {:.2}x | {:.3} | {:.3} | {:.2}x |",
            a1 * 1e3,
            b1 * 1e3,
            a1 / b1,
            a2 * 1e3,
            b2 * 1e3,
            a2 / b2
        );
        (d1, s1, d2, s2) = (d1 + a1, s1 + b1, d2 + a2, s2 + b2);
        drop(jit);
    }
    println!(
        "| total | {:.3} | {:.3} | {:.2}x | {:.3} | {:.3} | {:.2}x |",
        d1 * 1e3,
        s1 * 1e3,
        d1 / s1,
        d2 * 1e3,
        s2 * 1e3,
        d2 / s2
    );
}
