//! Benchmark of the runtime's overheads: the latency of one `parallel_for` dispatch and the time of
//! a small plan (an elementwise chain through the arena) with 1 and 2 threads.
//!
//! Run with `cargo run --release -p sparsec-runtime --example pool_bench [SPIN_US,...]` (a list of
//! spin times in microseconds sweeps them with 2 threads); prints medians of
//! repeated measurements (expect noise on a shared machine).

use sparsec_runtime::{
    physical_cores, plan_arena, AlignedBuf, BufferLife, BufferRef, ElemType, Kernel, Plan, Step,
    TensorSpec, TensorView, ThreadPool, DEFAULT_SPIN,
};
use std::hint::black_box;
use std::time::{Duration, Instant};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Median time per call of `f` over `reps` batches of `calls` calls.
fn time_per_call(reps: usize, calls: usize, mut f: impl FnMut()) -> Duration {
    let samples = (0..reps)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..calls {
                f();
            }
            t.elapsed() / calls as u32
        })
        .collect();
    median(samples)
}

/// `out[i] = a[i] * b[i] + a[i]` over `begin..end` (args: a, b, out).
fn fma_kernel() -> Kernel {
    Kernel::Host(Box::new(|args, begin, end| {
        // SAFETY: the plan sizes all three buffers to the step's `work` f32s and each thread
        // writes only its own `begin..end` of `out`.
        unsafe {
            let a = std::slice::from_raw_parts(args[0].cast::<f32>().add(begin), end - begin);
            let b = std::slice::from_raw_parts(args[1].cast::<f32>().add(begin), end - begin);
            let o = std::slice::from_raw_parts_mut(args[2].cast::<f32>().add(begin), end - begin);
            for ((o, a), b) in o.iter_mut().zip(a).zip(b) {
                *o = a * b + a;
            }
        }
    }))
}

/// A plan of `steps` chained elementwise kernels over `n` floats: x, w -> t0 -> t1 -> ... -> y.
fn chain(n: usize, steps: usize) -> Plan {
    let bytes = n * 4;
    let lives: Vec<BufferLife> = (0..steps - 1)
        .map(|i| BufferLife {
            size: bytes,
            first: i,
            last: i + 1,
        })
        .collect();
    let layout = plan_arena(&lives).expect("arena");
    let arena = |i: usize| BufferRef::Arena {
        offset: layout.offsets[i],
        len: bytes,
    };
    let plan_steps = (0..steps)
        .map(|i| Step {
            kernel: fma_kernel(),
            args: vec![
                if i == 0 {
                    BufferRef::Input(0)
                } else {
                    arena(i - 1)
                },
                BufferRef::Weight(0),
                if i + 1 == steps {
                    BufferRef::Output(0)
                } else {
                    arena(i)
                },
            ],
            work: n,
            grain: 4096,
            name: format!("fma{i}"),
            op: "fma".into(),
            layout: "dense".into(),
        })
        .collect();
    let spec = |name: &str| TensorSpec {
        name: name.into(),
        elem: ElemType::F32,
        shape: vec![n],
    };
    Plan::new(
        plan_steps,
        vec![AlignedBuf::from_f32(&vec![0.5; n])],
        layout.size,
        vec![spec("x")],
        vec![spec("y")],
        vec![],
    )
    .expect("plan")
}

fn main() {
    println!("physical cores: {}", physical_cores());
    for (threads, spin) in std::env::args().nth(1).map_or(
        vec![(1, DEFAULT_SPIN), (2, DEFAULT_SPIN), (2, Duration::ZERO)],
        |s| {
            s.split(',')
                .map(|us| (2, Duration::from_micros(us.parse().expect("spin in µs"))))
                .collect()
        },
    ) {
        let pool = ThreadPool::with_spin(threads, spin).expect("pool");
        let threads = format!("{threads} (spin {spin:?})");
        let dispatch = time_per_call(11, 20_000, || {
            pool.parallel_for(2, 1, &|b, e| {
                black_box((b, e));
            })
        });
        println!("threads {threads}: empty parallel_for(2 chunks) {dispatch:?}");
        for (n, steps) in [(1024, 8), (65_536, 8), (1 << 20, 8)] {
            let plan = chain(n, steps);
            let x = vec![1.0f32; n];
            let shape = [n];
            let calls = (1 << 24) / (n * steps) + 1;
            let per_run = time_per_call(11, calls, || {
                let out = plan
                    .run(&pool, &[TensorView::from_f32(&shape, &x)])
                    .expect("run");
                black_box(out);
            });
            let gbs = (3 * n * 4 * steps) as f64 / per_run.as_secs_f64() / 1e9;
            println!(
                "threads {threads}: plan of {steps} fma steps over {n} f32 (arena {} KiB): {per_run:?} per run, {gbs:.1} GB/s",
                plan.arena_bytes / 1024
            );
        }
    }
    if let Some(peak) = sparsec_runtime::peak_rss_bytes() {
        println!("peak RSS: {} MiB", peak / (1 << 20));
    }
}
