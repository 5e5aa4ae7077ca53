//! Layout selection end to end: a Gemm + MatMul model with 90% zeros, built with the IR API, run
//! by the JIT engine at several batches against the interpreter; the plan's steps show sparse
//! layouts; the engine's graph drops the dense data of packed weights and still runs when a
//! later specialization needs it dense; `sparsec tune --quick` writes a table that `inspect`
//! reads through `SPARSEC_TUNE`, and a bad table is a one-line error.

mod support;

use sparsec::codegen::layout::CostTable;
use sparsec::engine::Engine;
use sparsec_ir::{DType, Dim, Graph, Op, Tensor, TensorType};
use std::process::Command;

/// A small deterministic generator.
struct Rng(u64);

impl Rng {
    fn unit(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 24) as f32
    }

    fn values(&mut self, n: usize, zeros: f32) -> Vec<f32> {
        (0..n)
            .map(|_| {
                if self.unit() < zeros {
                    0.0
                } else {
                    self.unit() * 2.0 - 1.0
                }
            })
            .collect()
    }
}

const K: usize = 300;
const H: usize = 130;
const N: usize = 70;

/// `x [batch, T?, K] -> Gemm/MatMul (W1, 90% zeros) + bias -> ReLU -> MatMul (W2 [H, N], 90%
/// zeros) + bias`. With `tokens`, the activation is 3-D and the first layer a MatMul.
fn model(tokens: Option<usize>) -> Graph {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut g = Graph::new("sparse_layout");
    let mut dims = vec![Dim::Sym("batch".into())];
    dims.extend(tokens.map(Dim::Known));
    let mut xdims = dims.clone();
    xdims.push(Dim::Known(K));
    let x = g.add_input(
        "x",
        TensorType {
            dtype: DType::F32,
            dims: xdims,
        },
    );
    let ty = |n: usize| {
        let mut d = dims.clone();
        d.push(Dim::Known(n));
        TensorType {
            dtype: DType::F32,
            dims: d,
        }
    };
    let b1 = g.add_weight("b1", Tensor::from_f32(&[H], rng.values(H, 0.0)));
    let h = if tokens.is_some() {
        let w1 = g.add_weight("w1", Tensor::from_f32(&[K, H], rng.values(K * H, 0.9)));
        let n = g.add_node(
            "fc1",
            Op::MatMul {},
            vec![Some(x), Some(w1)],
            vec![("h0".into(), ty(H))],
        );
        let h0 = g.node(n).outputs[0];
        let a = g.add_node(
            "fc1_bias",
            Op::Add {},
            vec![Some(h0), Some(b1)],
            vec![("h".into(), ty(H))],
        );
        g.node(a).outputs[0]
    } else {
        let w1 = g.add_weight("w1", Tensor::from_f32(&[H, K], rng.values(K * H, 0.9)));
        let n = g.add_node(
            "fc1",
            Op::Gemm {
                alpha: 1.0,
                beta: 1.0,
                trans_a: 0,
                trans_b: 1,
            },
            vec![Some(x), Some(w1), Some(b1)],
            vec![("h".into(), ty(H))],
        );
        g.node(n).outputs[0]
    };
    let r = g.add_node(
        "relu1",
        Op::Relu {},
        vec![Some(h)],
        vec![("r".into(), ty(H))],
    );
    let r = g.node(r).outputs[0];
    let w2 = g.add_weight("w2", Tensor::from_f32(&[H, N], rng.values(H * N, 0.9)));
    let b2 = g.add_weight("b2", Tensor::from_f32(&[N], rng.values(N, 0.0)));
    let m = g.add_node(
        "fc2",
        Op::MatMul {},
        vec![Some(r), Some(w2)],
        vec![("m".into(), ty(N))],
    );
    let m = g.node(m).outputs[0];
    let y = g.add_node(
        "fc2_bias",
        Op::Add {},
        vec![Some(m), Some(b2)],
        vec![("y".into(), ty(N))],
    );
    let y = g.node(y).outputs[0];
    g.set_outputs(vec![y]);
    g
}

/// A table on which every sparse layout is much cheaper than dense.
fn sparse_table() -> CostTable {
    let mut t = CostTable::builtin();
    for c in [&mut t.csr, &mut t.csr_baked, &mut t.bsr, &mut t.nm24] {
        c.b1_ns_per_byte *= 0.01;
        c.ns_per_stored_vec *= 0.01;
        c.fixed_ns = 1.0;
    }
    t.dense_fixed_ns = 1e5;
    t
}

fn input(shape: &[usize], seed: u64) -> Tensor {
    let mut rng = Rng(seed);
    Tensor::from_f32(shape, rng.values(shape.iter().product(), 0.0))
}

fn assert_close(got: &Tensor, want: &Tensor, what: &str) {
    assert_eq!(got.shape(), want.shape(), "{what}");
    let (g, w) = (got.to_f32_vec(), want.to_f32_vec());
    for (i, (a, b)) in g.iter().zip(&w).enumerate() {
        assert!(
            (a - b).abs() <= 1e-4 * b.abs().max(1.0),
            "{what}: element {i}: {a} vs {b}"
        );
    }
}

fn check(graph: Graph, shape_of: impl Fn(usize) -> Vec<usize>) {
    let mut engine = Engine::with_table(graph.clone(), 2, sparse_table()).unwrap();
    for (i, batch) in [1usize, 3, 64].into_iter().enumerate() {
        let x = input(&shape_of(batch), 7 + i as u64);
        let want = sparsec::interp::run_graph(&graph, std::slice::from_ref(&x)).unwrap();
        let compiled = engine.compile_for_inputs(std::slice::from_ref(&x)).unwrap();
        let sparse_steps: Vec<&str> = compiled
            .plan
            .steps
            .iter()
            .filter(|s| s.layout != "dense" && s.op != "transpose")
            .map(|s| s.layout.as_str())
            .collect();
        assert_eq!(sparse_steps.len(), 2, "batch {batch}: {sparse_steps:?}");
        for l in &sparse_steps {
            assert!(
                l.starts_with("csr") || l.starts_with("bsr") || *l == "2:4",
                "{l}"
            );
        }
        assert!(engine.last_layouts.explain().contains("fc2: "));
        let got = engine.run(std::slice::from_ref(&x)).unwrap();
        assert_close(&got[0], &want[0], &format!("batch {batch}"));
        // The engine's graph no longer holds the dense data of the packed weights.
        assert_eq!(engine.packed_weights(), vec!["w1", "w2"]);
        for v in engine.graph().referenced_values() {
            let name = &engine.graph().value(v).name;
            if let Some(w) = engine.graph().weight(v) {
                let packed = name == "w1" || name == "w2";
                assert_eq!(w.data.is_none(), packed, "weight {name}");
            }
        }
    }
}

#[test]
fn gemm_and_matmul_run_sparse_at_batches_1_3_64() {
    check(model(None), |b| vec![b, K]);
}

#[test]
fn matmul_over_tokens_runs_sparse() {
    check(model(Some(5)), |b| vec![b, 5, K]);
}

#[test]
fn a_dropped_weight_comes_back_when_a_later_shape_runs_dense() {
    // Sparse at batch 1 only: at batch > 1 every sparse layout is estimated very slow.
    let mut t = sparse_table();
    for c in [&mut t.csr, &mut t.csr_baked, &mut t.bsr, &mut t.nm24] {
        c.ns_per_stored_vec = 1e6;
    }
    let graph = model(None);
    let mut engine = Engine::with_table(graph.clone(), 1, t).unwrap();
    for (batch, sparse) in [(1usize, true), (8, false), (1, true)] {
        let x = input(&[batch, K], batch as u64);
        let want = sparsec::interp::run_graph(&graph, std::slice::from_ref(&x)).unwrap();
        let got = engine.run(std::slice::from_ref(&x)).unwrap();
        assert_close(&got[0], &want[0], &format!("batch {batch}"));
        let c = engine.compile_for_inputs(std::slice::from_ref(&x)).unwrap();
        let any_sparse = c.plan.steps.iter().any(|s| s.layout != "dense");
        assert_eq!(any_sparse, sparse, "batch {batch}");
        assert_eq!(engine.packed_weights(), vec!["w1", "w2"]);
    }
}

#[test]
fn tune_quick_writes_a_table_that_inspect_uses() {
    let dir = support::temp_dir("tune_quick");
    let table = dir.join("tune.json");
    let out = support::sparsec(&["tune", "--quick", "-o", table.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("csr: batch 1"), "{stdout}");
    assert!(CostTable::read(&table).is_ok());
    let pruned = dir.join("mlp90.onnx");
    let model = support::repo().join("examples").join("digits_mlp.onnx");
    let out = support::sparsec(&[
        "prune",
        model.to_str().unwrap(),
        "-o",
        pruned.to_str().unwrap(),
        "--sparsity",
        "0.9",
    ]);
    assert!(out.status.success());
    let inspect = |env: &std::path::Path| {
        Command::new(env!("CARGO_BIN_EXE_sparsec"))
            .args(["inspect", pruned.to_str().unwrap(), "--json"])
            .env("SPARSEC_TUNE", env)
            .output()
            .unwrap()
    };
    let out = inspect(&table);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let layers = v["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 3);
    for l in layers {
        assert!(l["layout"].is_string(), "{l}");
        assert!(l["layout_reason"].as_str().unwrap().starts_with("n=1, "));
    }
    // The first and last layers stay dense (kept unpruned).
    assert_eq!(layers[0]["layout_reason"], "n=1, no zeros");
    // A bad table is a one-line error naming the file.
    let bad = dir.join("bad.json");
    std::fs::write(&bad, "{\"version\": 1}").unwrap();
    let out = inspect(&bad);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.json") && err.lines().count() == 1,
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The digits CNN with 90% of every conv and Gemm weight pruned, on a table where every sparse
/// layout wins: its convolutions run as sparse convolutions (with their fused epilogues) and the
/// engine agrees with the interpreter at batches 1 and 5.
#[test]
fn pruned_cnn_runs_sparse_convolutions() {
    use sparsec::onnx::{import_file, ImportOptions};
    use sparsec::passes::{
        default_pipeline, run_pipeline, run_pipeline_with, PassContext, PrunePolicy, PruneScope,
        RunOptions,
    };
    let model = support::repo().join("examples/digits_cnn.onnx");
    let mut g = import_file(&model, &ImportOptions::default()).unwrap();
    run_pipeline(&mut g, &default_pipeline(), &RunOptions::default()).unwrap();
    let mut cx = PassContext::default();
    cx.prune.sparsity = 0.9;
    cx.prune.scope = PruneScope::Layer;
    cx.prune.policy = PrunePolicy {
        keep_first: false,
        keep_last: false,
        min_params: 0,
    };
    run_pipeline_with(
        &mut g,
        &["prune-magnitude"],
        &RunOptions::default(),
        &mut cx,
    )
    .unwrap();
    let mut t = sparse_table();
    t.sparse_conv.ns_per_stored_vec *= 0.01;
    t.sparse_conv.fixed_ns = 1.0;
    t.conv_copy_ns_per_elem *= 0.01;
    let mut engine = Engine::with_table(g.clone(), 2, t).unwrap();
    for (i, batch) in [1usize, 5].into_iter().enumerate() {
        let x = input(&[batch, 1, 8, 8], 11 + i as u64);
        let want = sparsec::interp::run_graph(&g, std::slice::from_ref(&x)).unwrap();
        let compiled = engine.compile_for_inputs(std::slice::from_ref(&x)).unwrap();
        let convs: Vec<(&str, &str)> = compiled
            .plan
            .steps
            .iter()
            .filter(|s| s.op.starts_with("conv"))
            .map(|s| (s.op.as_str(), s.layout.as_str()))
            .collect();
        assert!(!convs.is_empty());
        for (op, layout) in &convs {
            assert!(
                layout.starts_with("csr"),
                "batch {batch}: {op} runs {layout}"
            );
        }
        let got = engine.run(std::slice::from_ref(&x)).unwrap();
        assert_close(&got[0], &want[0], &format!("batch {batch}"));
    }
}
