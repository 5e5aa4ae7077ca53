//! The packed small-pixel convolution path against the `gemm`-crate paths (im2col, or direct
//! 1x1) on the ResNet-50 convolutions with few output pixels, batch 1, on one and two threads.
//! The two variants alternate within each repetition so both see the same machine load; prints
//! GFLOP/s, best and median. On one thread the time is the calling thread's CPU time (Linux), so
//! time slices lost to other processes on a shared machine do not count.
//!
//! Run with `cargo run --release -p sparsec --example conv_packed_bench [reps] [label filter]`.

use sparsec::codegen::dense::{lower_conv_path, ConvPath};
use sparsec::codegen::{Arg, LoweredKernel};
use sparsec_ir::{DType, Graph, NodeId, Op, Tensor, TensorType, ValueDef};
use sparsec_runtime::ThreadPool;
use std::time::Instant;

/// `(label, c_in, c_out, input size, kernel, stride, pad)`.
type Case = (&'static str, usize, usize, usize, usize, usize, usize);

const CASES: &[Case] = &[
    ("s4 3x3", 512, 512, 7, 3, 1, 1),
    ("s4 3x3/2", 512, 512, 14, 3, 2, 1),
    ("s4 1x1 512>2048", 512, 2048, 7, 1, 1, 0),
    ("s4 1x1 2048>512", 2048, 512, 7, 1, 1, 0),
    ("s4 1x1/2 1024>2048", 1024, 2048, 14, 1, 2, 0),
    ("s3 3x3", 256, 256, 14, 3, 1, 1),
    ("s3 1x1 256>1024", 256, 1024, 14, 1, 1, 0),
    ("s3 1x1 1024>256", 1024, 256, 14, 1, 1, 0),
];

fn values(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
        .collect()
}

/// A graph with one convolution.
fn conv_graph(&(_, ci, co, hw, k, s, p): &Case) -> (Graph, NodeId) {
    let mut graph = Graph::new("bench");
    let x = graph.add_input("x", TensorType::known(DType::F32, &[1, ci, hw, hw]));
    let w = graph.add_weight(
        "w",
        Tensor::from_f32(&[co, ci, k, k], values(co * ci * k * k)),
    );
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
        vec![Some(x), Some(w)],
        vec![("y".into(), TensorType::known(DType::F32, &[1, co, o, o]))],
    );
    graph.set_outputs(vec![graph.node(n).outputs[0]]);
    (graph, n)
}

/// The CPU time of the calling thread in seconds (Linux `CLOCK_THREAD_CPUTIME_ID`), or the wall
/// clock elsewhere.
fn thread_cpu_seconds(wall: Instant) -> f64 {
    #[cfg(target_os = "linux")]
    {
        #[repr(C)]
        struct Timespec {
            sec: i64,
            nsec: i64,
        }
        extern "C" {
            fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
        }
        let mut ts = Timespec { sec: 0, nsec: 0 };
        // SAFETY: `ts` is a valid timespec; clock 3 is CLOCK_THREAD_CPUTIME_ID.
        if unsafe { clock_gettime(3, &mut ts) } == 0 {
            return ts.sec as f64 + ts.nsec as f64 * 1e-9;
        }
    }
    wall.elapsed().as_secs_f64()
}

/// A runnable kernel: its buffers and a closure timing `inner` runs on `pool`.
struct Bench {
    lk: LoweredKernel,
    bufs: Vec<Vec<f32>>,
}

impl Bench {
    fn new(graph: &Graph, lk: LoweredKernel) -> Bench {
        let bufs = lk
            .args
            .iter()
            .map(|a| match a {
                Arg::Packed(t) => t.to_f32_vec(),
                Arg::Value(v) => match &graph.value(*v).def {
                    ValueDef::Weight(w) => {
                        w.data.as_ref().map(|t| t.to_f32_vec()).unwrap_or_default()
                    }
                    _ => values(graph.value(*v).ty.numel().unwrap_or(0)),
                },
            })
            .collect();
        Bench { lk, bufs }
    }

    /// Seconds per run over `inner` runs.
    fn time(&mut self, pool: &ThreadPool, inner: usize) -> f64 {
        let ptrs: Vec<usize> = self
            .bufs
            .iter_mut()
            .map(|b| b.as_mut_ptr() as usize)
            .collect();
        let lk = &self.lk;
        let wall = Instant::now();
        let cpu = pool.threads() == 1;
        let start = if cpu { thread_cpu_seconds(wall) } else { 0.0 };
        for _ in 0..inner {
            pool.parallel_for(lk.work, lk.grain, &|b, e| {
                let p: Vec<*mut u8> = ptrs.iter().map(|&a| a as *mut u8).collect();
                // SAFETY: the buffers are sized from the graph's types, in the kernel's order,
                // and the pool hands out disjoint ranges.
                unsafe { lk.kernel.call(&p, b, e) }
            });
        }
        let spent = if cpu {
            thread_cpu_seconds(wall) - start
        } else {
            wall.elapsed().as_secs_f64()
        };
        spent / inner as f64
    }
}

fn main() {
    let reps: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(9)
        .max(1);
    let filter = std::env::args().nth(2).unwrap_or_default();
    let pools = [
        ThreadPool::new(1).expect("a pool"),
        ThreadPool::new(2).expect("a pool"),
    ];
    println!("GFLOP/s best / median of {reps} alternating runs\n");
    println!("| conv | threads | gemm crate | packed | packed / crate (best) |");
    println!("|---|---:|---:|---:|---:|");
    for case in CASES.iter().filter(|c| c.0.contains(filter.as_str())) {
        let (graph, n) = conv_graph(case);
        let &(label, ci, co, hw, k, s, p) = case;
        let o = (hw + 2 * p - k) / s + 1;
        let flops = 2.0 * (co * ci * k * k * o * o) as f64;
        let old_path = if k == 1 && s == 1 {
            ConvPath::Pointwise
        } else {
            ConvPath::Im2col
        };
        let lower = |path| lower_conv_path(&graph, n, &[], Some(path)).expect("lowers");
        let mut old = Bench::new(&graph, lower(old_path));
        let mut new = Bench::new(&graph, lower(ConvPath::Packed));
        let inner = ((20e6 / flops).ceil() as usize).max(1);
        for (i, pool) in pools.iter().enumerate() {
            old.time(pool, 1);
            new.time(pool, 1);
            let (mut a, mut b) = (Vec::new(), Vec::new());
            for _ in 0..reps {
                a.push(old.time(pool, inner));
                b.push(new.time(pool, inner));
            }
            a.sort_by(f64::total_cmp);
            b.sort_by(f64::total_cmp);
            let gf = |t: f64| flops / t / 1e9;
            println!(
                "| {label} | {} | {:.1} / {:.1} | {:.1} / {:.1} | {:.2} |",
                i + 1,
                gf(a[0]),
                gf(a[reps / 2]),
                gf(b[0]),
                gf(b[reps / 2]),
                a[0] / b[0]
            );
        }
    }
}
