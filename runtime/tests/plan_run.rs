//! Tests of `Plan::new` and `Plan::run` on small hand-built plans with Rust kernels, checked
//! against plain reference loops.

use sparsec_runtime::{
    plan_arena, AlignedBuf, BufferLife, BufferRef, ElemType, Kernel, Plan, RuntimeError, Step,
    TensorSpec, TensorView, ThreadPool, ALIGN,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

const N: usize = 1000;

fn spec(name: &str, shape: &[usize]) -> TensorSpec {
    TensorSpec {
        name: name.into(),
        elem: ElemType::F32,
        shape: shape.to_vec(),
    }
}

fn step(name: &str, kernel: Kernel, args: Vec<BufferRef>, work: usize) -> Step {
    Step {
        kernel,
        args,
        work,
        grain: 16,
        name: name.into(),
        op: name.into(),
        layout: "dense".into(),
    }
}

/// `out[i] = f(a[i], b[i])` for `i` in `begin..end`, over f32 buffers (args: a, b, out).
fn binary(f: fn(f32, f32) -> f32, calls: Arc<AtomicUsize>) -> Kernel {
    Kernel::Host(Box::new(move |args, begin, end| {
        calls.fetch_add(1, Ordering::Relaxed);
        assert!(
            args.iter().all(|p| (*p as usize).is_multiple_of(ALIGN)),
            "unaligned argument"
        );
        for i in begin..end {
            // SAFETY: the plans below size every buffer to `N` f32s, `end <= N`, and each thread
            // writes only its own `begin..end` of `out`.
            unsafe {
                let a = *args[0].cast::<f32>().add(i);
                let b = *args[1].cast::<f32>().add(i);
                *args[2].cast::<f32>().add(i) = f(a, b);
            }
        }
    }))
}

/// `out[i] = 2 * x[i]` (args: x, out), as a C-ABI function like the JIT emits.
unsafe extern "C" fn scale2(args: *const *mut u8, begin: usize, end: usize) {
    for i in begin..end {
        // SAFETY: the runtime passes two f32 buffers of `N` elements and `end <= N`.
        unsafe {
            let x = *(*args).cast::<f32>().add(i);
            *(*args.add(1)).cast::<f32>().add(i) = 2.0 * x;
        }
    }
}

/// `y = (x0 + x1) * 2 - w` through two arena intermediates placed by the arena planner.
fn chain_plan(calls: Arc<AtomicUsize>) -> Plan {
    let bytes = N * 4;
    let layout = plan_arena(&[
        BufferLife {
            size: bytes,
            first: 0,
            last: 1,
        },
        BufferLife {
            size: bytes,
            first: 1,
            last: 2,
        },
    ])
    .unwrap();
    let t0 = BufferRef::Arena {
        offset: layout.offsets[0],
        len: bytes,
    };
    let t1 = BufferRef::Arena {
        offset: layout.offsets[1],
        len: bytes,
    };
    let w: Vec<f32> = (0..N).map(|i| i as f32 * 0.5).collect();
    Plan::new(
        vec![
            step(
                "add",
                binary(|a, b| a + b, calls.clone()),
                vec![BufferRef::Input(0), BufferRef::Input(1), t0],
                N,
            ),
            step("scale", Kernel::Jit(scale2), vec![t0, t1], N),
            step(
                "sub",
                binary(|a, b| a - b, calls),
                vec![t1, BufferRef::Weight(0), BufferRef::Output(0)],
                N,
            ),
        ],
        vec![AlignedBuf::from_f32(&w)],
        layout.size,
        vec![spec("x0", &[10, 100]), spec("x1", &[10, 100])],
        vec![spec("y", &[10, 100])],
        vec![Box::new("keeps nothing alive")],
    )
    .unwrap()
}

fn inputs(seed: f32) -> (Vec<f32>, Vec<f32>) {
    let x0 = (0..N).map(|i| (i as f32 * 0.37 + seed).sin()).collect();
    let x1 = (0..N).map(|i| (i as f32 * 0.11 - seed).cos()).collect();
    (x0, x1)
}

fn reference(x0: &[f32], x1: &[f32]) -> Vec<f32> {
    (0..N)
        .map(|i| (x0[i] + x1[i]) * 2.0 - i as f32 * 0.5)
        .collect()
}

#[test]
fn chained_steps_match_reference_with_1_and_2_threads() {
    for threads in [1, 2] {
        let pool = ThreadPool::new(threads).unwrap();
        let plan = chain_plan(Arc::new(AtomicUsize::new(0)));
        for seed in 0..5 {
            let (x0, x1) = inputs(seed as f32);
            let shape = [10, 100];
            let out = plan
                .run(
                    &pool,
                    &[
                        TensorView::from_f32(&shape, &x0),
                        TensorView::from_f32(&shape, &x1),
                    ],
                )
                .unwrap();
            assert_eq!(out.len(), 1);
            assert_eq!(
                out[0].as_f32(),
                reference(&x0, &x1).as_slice(),
                "threads {threads}"
            );
        }
    }
}

#[test]
fn arena_holds_both_live_intermediates() {
    let plan = chain_plan(Arc::new(AtomicUsize::new(0)));
    // Both intermediates are live at step 1, so they stack: the first is padded to 64 bytes.
    assert_eq!(plan.arena_bytes, 4032 + N * 4);
}

#[test]
fn profiled_run_times_every_step() {
    let pool = ThreadPool::new(2).unwrap();
    let plan = chain_plan(Arc::new(AtomicUsize::new(0)));
    let (x0, x1) = inputs(1.0);
    let shape = [10, 100];
    let (out, times) = plan
        .run_profiled(
            &pool,
            &[
                TensorView::from_f32(&shape, &x0),
                TensorView::from_f32(&shape, &x1),
            ],
        )
        .unwrap();
    assert_eq!(times.len(), plan.steps.len());
    assert_eq!(out[0].as_f32(), reference(&x0, &x1).as_slice());
}

#[test]
fn unaligned_inputs_are_copied() {
    let pool = ThreadPool::new(2).unwrap();
    let plan = chain_plan(Arc::new(AtomicUsize::new(0)));
    let (x0, x1) = inputs(2.0);
    // Place x0's bytes 4 bytes past a 64-byte boundary.
    let mut raw = AlignedBuf::zeroed(N * 4 + 4);
    for (i, v) in x0.iter().enumerate() {
        raw.as_bytes_mut()[4 + 4 * i..8 + 4 * i].copy_from_slice(&v.to_ne_bytes());
    }
    let shape = [10, 100];
    let out = plan
        .run(
            &pool,
            &[
                TensorView::new(ElemType::F32, &shape, &raw.as_bytes()[4..]),
                TensorView::from_f32(&shape, &x1),
            ],
        )
        .unwrap();
    assert_eq!(out[0].as_f32(), reference(&x0, &x1).as_slice());
}

#[test]
fn concurrent_runs_share_one_plan() {
    let plan = chain_plan(Arc::new(AtomicUsize::new(0)));
    let pool = ThreadPool::new(2).unwrap();
    std::thread::scope(|s| {
        for t in 0..3 {
            let (plan, pool) = (&plan, &pool);
            s.spawn(move || {
                for k in 0..50 {
                    let (x0, x1) = inputs((t * 100 + k) as f32);
                    let shape = [10, 100];
                    let out = plan
                        .run(
                            pool,
                            &[
                                TensorView::from_f32(&shape, &x0),
                                TensorView::from_f32(&shape, &x1),
                            ],
                        )
                        .unwrap();
                    assert_eq!(out[0].as_f32(), reference(&x0, &x1).as_slice());
                }
            });
        }
    });
}

#[test]
fn bad_inputs_are_rejected_before_any_kernel_runs() {
    let pool = ThreadPool::new(2).unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let plan = chain_plan(calls.clone());
    let (x0, x1) = inputs(0.0);
    let good = [10usize, 100];
    let wrong_shape = [20usize, 50];
    let ints = vec![0u8; N * 4];
    let short = vec![0u8; N * 4 - 1];
    let cases: Vec<(Vec<TensorView>, &str)> = vec![
        (
            vec![TensorView::from_f32(&good, &x0)],
            "expected 2 inputs, got 1",
        ),
        (
            vec![
                TensorView::from_f32(&good, &x0),
                TensorView::from_f32(&wrong_shape, &x1),
            ],
            "input `x1`: expected f32[10,100], got f32[20,50]",
        ),
        (
            vec![
                TensorView::new(ElemType::I32, &good, &ints),
                TensorView::from_f32(&good, &x1),
            ],
            "input `x0`: expected f32[10,100], got i32[10,100]",
        ),
        (
            vec![
                TensorView::from_f32(&good, &x0),
                TensorView::new(ElemType::F32, &good, &short),
            ],
            "input `x1`: expected 4000 bytes for f32[10,100], got 3999 bytes",
        ),
    ];
    for (views, message) in cases {
        let err = plan.run(&pool, &views).unwrap_err();
        assert_eq!(err.to_string(), message);
    }
    assert_eq!(calls.load(Ordering::Relaxed), 0, "a kernel ran");
}

#[test]
fn kernel_panics_become_errors() {
    let pool = ThreadPool::new(2).unwrap();
    let plan = Plan::new(
        vec![step(
            "boom",
            Kernel::Host(Box::new(|_, begin, _| {
                if begin > 0 {
                    panic!("chunk {begin} exploded");
                }
            })),
            vec![BufferRef::Output(0)],
            100,
        )],
        vec![],
        0,
        vec![],
        vec![spec("y", &[4])],
        vec![],
    )
    .unwrap();
    for _ in 0..3 {
        let err = plan.run(&pool, &[]).unwrap_err();
        assert!(
            matches!(&err, RuntimeError::KernelPanic { step, message, .. }
                if step == "boom" && message.starts_with("chunk")),
            "{err}"
        );
    }
}

#[test]
fn out_of_range_refs_are_rejected() {
    let cases = [
        (BufferRef::Input(2), "step `s` argument 0: input 2 out of range (the plan has 2)"),
        (BufferRef::Output(1), "step `s` argument 0: output 1 out of range (the plan has 1)"),
        (BufferRef::Weight(0), "step `s` argument 0: weight 0 out of range (the plan has 0)"),
        (
            BufferRef::Arena { offset: 64, len: 65 },
            "step `s` argument 0: arena range 64+65 exceeds the arena of 128 bytes",
        ),
        (
            BufferRef::Arena { offset: 32, len: 4 },
            "step `s` argument 0: arena offset 32 is not a multiple of 64",
        ),
        (
            BufferRef::Arena { offset: 64, len: usize::MAX },
            "step `s` argument 0: arena range 64+18446744073709551615 exceeds the arena of 128 bytes",
        ),
    ];
    for (r, message) in cases {
        let err = Plan::new(
            vec![step("s", Kernel::Host(Box::new(|_, _, _| {})), vec![r], 1)],
            vec![],
            128,
            vec![spec("a", &[1]), spec("b", &[1])],
            vec![spec("y", &[1])],
            vec![],
        )
        .unwrap_err();
        assert_eq!(err.to_string(), message);
    }
    // In-range references, including an empty range at the arena's end, are fine.
    let ok = Plan::new(
        vec![step(
            "s",
            Kernel::Host(Box::new(|_, _, _| {})),
            vec![
                BufferRef::Input(1),
                BufferRef::Output(0),
                BufferRef::Arena {
                    offset: 64,
                    len: 64,
                },
                BufferRef::Arena {
                    offset: 128,
                    len: 0,
                },
            ],
            1,
        )],
        vec![],
        128,
        vec![spec("a", &[1]), spec("b", &[1])],
        vec![spec("y", &[1])],
        vec![],
    );
    assert!(ok.is_ok());
    let huge = Plan::new(
        vec![],
        vec![],
        0,
        vec![],
        vec![spec("y", &[usize::MAX, 2])],
        vec![],
    );
    assert_eq!(
        huge.unwrap_err().to_string(),
        "plan output `y`: f32[18446744073709551615,2] is too large"
    );
}

#[test]
fn plan_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Plan>();
    check::<ThreadPool>();
}
