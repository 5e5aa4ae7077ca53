//! Tests of the plan the lowering builds: views of an operand's bytes run as no step, and a Relu
//! that alone reads a native BatchNormalization runs in its pass.

use crate::codegen::layout::CostTable;
use crate::engine::Engine;
use crate::passes::channel_test_util::{run1, Builder};
use sparsec_ir::{Graph, Op, Tensor};
use sparsec_runtime::{ThreadPool, DEFAULT_SPIN};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Compiles `g` for `x`, checks that the JIT's results equal the interpreter's, and returns the
/// ops of the plan's steps.
fn plan_ops(g: Graph, x: Tensor) -> Vec<String> {
    let want = run1(&g, &x);
    let mut e = Engine::new(g, 1).expect("engine");
    let compiled = e
        .compile_for_inputs(std::slice::from_ref(&x))
        .expect("compiles");
    let ops = compiled.plan.steps.iter().map(|s| s.op.clone()).collect();
    let got: Vec<Vec<f32>> = e
        .run(&[x])
        .expect("runs")
        .iter()
        .map(Tensor::to_f32_vec)
        .collect();
    assert_eq!(got.len(), want.len());
    for (a, b) in got.iter().zip(&want) {
        assert_eq!(a.len(), b.len());
        for (p, q) in a.iter().zip(b) {
            assert!(
                p == q || (p - q).abs() <= 1e-6 * (1.0 + q.abs()),
                "{p} vs {q}"
            );
        }
    }
    ops
}

/// `x -> relu -> reshape -> dropout -> flatten -> neg -> (output)`, plus a reshape of `x` that is
/// itself a graph output and one read by a second `neg`.
#[test]
fn views_run_as_no_step_and_outputs_keep_their_copy() {
    let x = Tensor::from_f32(&[2, 3, 4], (0..24).map(|i| i as f32 * 0.5 - 5.0).collect());
    let (mut b, xv) = Builder::with_input(x);
    let shape = b.tensor("shape", Tensor::from_i64(&[2], vec![6, 4]));
    let reshape = || Op::Reshape { allowzero: 0 };
    let r = b.node("relu", Op::Relu {}, &[Some(xv)]);
    let s = b.node("reshape", reshape(), &[Some(r), Some(shape)]);
    let d = b.node("dropout", Op::Dropout {}, &[Some(s)]);
    let f = b.node("flatten", Op::Flatten { axis: 0 }, &[Some(d)]);
    let y = b.node("neg", Op::Neg {}, &[Some(f)]);
    let o = b.node("reshape_out", reshape(), &[Some(xv), Some(shape)]);
    let v = b.node("reshape_in", reshape(), &[Some(xv), Some(shape)]);
    let z = b.node("neg2", Op::Neg {}, &[Some(v)]);
    let (g, x) = b.finish(&[y, o, z]);
    let ops = plan_ops(g, x);
    assert_eq!(
        ops.iter()
            .filter(|o| !o.contains("neg") && !o.contains("relu"))
            .count(),
        1,
        "only the output reshape copies: {ops:?}"
    );
}

/// A `Relu` that alone reads a native `BatchNormalization` runs in the BN's pass, NaN included.
#[test]
fn batchnorm_and_its_relu_run_as_one_step() {
    let mut xv: Vec<f32> = (0..36).map(|i| (i as f32 * 0.37).sin() * 3.0).collect();
    xv[5] = f32::NAN;
    let (mut b, x) = Builder::with_input(Tensor::from_f32(&[2, 3, 2, 3], xv));
    let mut param = |name: &str, v: Vec<f32>| Some(b.tensor(name, Tensor::from_f32(&[3], v)));
    let ps = [
        param("scale", vec![1.5, -0.5, 2.0]),
        param("bias", vec![0.1, 0.2, -0.3]),
        param("mean", vec![0.0, 1.0, -1.0]),
        param("var", vec![1.0, 0.5, 2.0]),
    ];
    let mut ins = vec![Some(x)];
    ins.extend(ps);
    let bn = b.node("bn", Op::BatchNormalization { epsilon: 1e-5 }, &ins);
    let r = b.node("relu", Op::Relu {}, &[Some(bn)]);
    let (g, x) = b.finish(&[r]);
    assert_eq!(plan_ops(g, x), ["batch_normalization+relu"]);
}

/// On far threads a small plan runs on the caller alone (and records how long that took); on
/// near ones it runs on the pool. Both give the interpreter's results.
#[test]
fn small_plans_stay_on_one_thread_when_the_threads_are_far_apart() {
    let x = Tensor::from_f32(&[4, 64], (0..256).map(|i| (i % 17) as f32 - 8.0).collect());
    let (mut b, xv) = Builder::with_input(x);
    let r = b.node("relu", Op::Relu {}, &[Some(xv)]);
    let y = b.node("neg", Op::Neg {}, &[Some(r)]);
    let (g, x) = b.finish(&[y]);
    let want = run1(&g, &x);
    for (round_trip, solo) in [(0, false), (340, true)] {
        let pool = ThreadPool::with_round_trip(2, DEFAULT_SPIN, Duration::from_nanos(round_trip))
            .expect("pool");
        assert_eq!(pool.is_far(), solo);
        let mut e = Engine::with_pool(g.clone(), pool, CostTable::builtin()).expect("engine");
        let compiled = e
            .compile_for_inputs(std::slice::from_ref(&x))
            .expect("compiles");
        for _ in 0..2 {
            let (got, _) = e
                .execute(&compiled, std::slice::from_ref(&x), false)
                .expect("runs");
            assert_eq!(got[0].to_f32_vec(), want[0]);
        }
        let serial = compiled.serial_ns.load(Ordering::Relaxed);
        assert_eq!(
            serial > 0,
            solo,
            "round trip {round_trip} ns: {serial} ns on one thread"
        );
        // Two runs on one thread before the plan's size is judged (it is small: it stays).
        let runs = compiled.serial_runs.load(Ordering::Relaxed);
        assert_eq!(runs, if solo { 2 } else { 0 });
    }
}
