//! `.spx` artifacts end to end: `sparsec compile` on the example models (dense and pruned 90%),
//! the reader's round trip (text form and every weight's bits), outputs equal to running the
//! ONNX model, the file size of a sparse model, errors (never panics) on damaged files, and the
//! output-file rules (never the input; an existing file replaced only on success).

mod support;

use sparsec::engine::Engine;
use sparsec::onnx::{import_file, ImportOptions};
use sparsec::passes::{default_pipeline, run_pipeline, RunOptions};
use sparsec::spx::{self, SpxError};
use sparsec_ir::{Graph, Numbering, Tensor};
use std::path::{Path, PathBuf};

const EXAMPLES: [&str; 3] = ["digits_mlp", "digits_cnn", "tiny_bert_random"];

fn example(name: &str) -> PathBuf {
    support::repo()
        .join("examples")
        .join(format!("{name}.onnx"))
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Runs `sparsec` and returns its stdout, failing the test on an error.
fn ok(args: &[&str]) -> String {
    let r = support::sparsec(args);
    assert!(
        r.status.success(),
        "sparsec {args:?}: {}",
        String::from_utf8_lossy(&r.stderr)
    );
    String::from_utf8_lossy(&r.stdout).into_owned()
}

/// Runs `sparsec`, expects a one-line error (exit code 1, no internal error) and returns it.
fn fails(args: &[&str]) -> String {
    let r = support::sparsec(args);
    let err = String::from_utf8_lossy(&r.stderr).into_owned();
    assert_eq!(
        r.status.code(),
        Some(1),
        "sparsec {args:?} should fail: {err}"
    );
    assert!(!err.contains("internal error"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    err
}

/// The ONNX model imported with the default pipeline.
fn load_onnx(path: &Path) -> Graph {
    let mut g = import_file(path, &ImportOptions::default()).expect("import");
    run_pipeline(&mut g, &default_pipeline(), &RunOptions::default()).expect("pipeline");
    g
}

/// The bits of every weight in text numbering order, with its printed id.
fn weight_bits(g: &Graph) -> Vec<(String, Vec<u64>)> {
    let num = Numbering::new(g);
    num.weights()
        .iter()
        .map(|&w| {
            let t = g.const_data(w).expect("weight data");
            let bits = match t.as_f32() {
                Some(v) => v.iter().map(|x| x.to_bits() as u64).collect(),
                None => t.to_f64_vec().iter().map(|x| x.to_bits()).collect(),
            };
            (num.value(w).to_string(), bits)
        })
        .collect()
}

/// Asserts two graphs print the same and hold the same weight bits.
fn assert_same_graph(a: &Graph, b: &Graph, what: &str) {
    assert_eq!(
        sparsec_ir::print(a),
        sparsec_ir::print(b),
        "{what}: text form"
    );
    assert!(weight_bits(a) == weight_bits(b), "{what}: weight data");
}

/// Deterministic inputs for a graph: f32 ramps, i64 ids below 1000 (ones for a mask).
fn inputs_for(g: &Graph) -> Vec<(String, Tensor)> {
    g.inputs()
        .iter()
        .map(|&v| {
            let val = g.value(v);
            let shape: Vec<usize> = val
                .ty
                .dims
                .iter()
                .map(|d| match d {
                    sparsec_ir::Dim::Known(n) => *n,
                    sparsec_ir::Dim::Sym(_) => 2,
                })
                .collect();
            let n: usize = shape.iter().product();
            let t = if val.ty.dtype == sparsec_ir::DType::I64 {
                let ids = (0..n as i64).map(|i| {
                    if val.name.contains("mask") {
                        1
                    } else if val.name.contains("type") {
                        0
                    } else {
                        (i * 37) % 1000
                    }
                });
                Tensor::from_i64(&shape, ids.collect())
            } else {
                Tensor::from_f32(&shape, (0..n).map(|i| (i % 17) as f32 * 0.5).collect())
            };
            (val.name.clone(), t)
        })
        .collect()
}

/// Outputs of the JIT engine at one thread.
fn run(g: &Graph, given: Vec<(String, Tensor)>) -> Vec<Tensor> {
    Engine::new(g.clone(), 1)
        .expect("engine")
        .run_named(given)
        .expect("run")
}

#[test]
fn examples_round_trip_text_and_weight_bits() {
    let dir = support::temp_dir("spx-round-trip");
    for name in EXAMPLES {
        let onnx = example(name);
        let out = dir.join(format!("{name}.spx"));
        ok(&["compile", s(&onnx), "-o", s(&out)]);
        let contents = spx::read_contents(&out).expect("read");
        let read = contents.graph;
        assert_same_graph(&load_onnx(&onnx), &read, name);
        // Every weight-bearing layer has its layout note.
        let layers = sparsec::inspect::inspect(&read).layers.len();
        assert_eq!(contents.notes.len(), layers, "{name}: {:?}", contents.notes);
        assert!(contents
            .notes
            .iter()
            .all(|n| !n.layout.is_empty() && !n.reason.is_empty()));
        // Encoding what was read (with its notes) gives the same bytes.
        let (again, _) = spx::encode(&read, &contents.notes).expect("encode");
        assert!(
            again == std::fs::read(&out).unwrap(),
            "{name}: re-encoding differs"
        );
    }
}

#[test]
fn outputs_equal_the_onnx_run() {
    let dir = support::temp_dir("spx-outputs");
    for name in EXAMPLES {
        let onnx = example(name);
        let out = dir.join(format!("{name}.spx"));
        ok(&["compile", s(&onnx), "-o", s(&out)]);
        let a = load_onnx(&onnx);
        let mut b = spx::read(&out).expect("read");
        run_pipeline(&mut b, &default_pipeline(), &RunOptions::default()).expect("pipeline");
        let given = inputs_for(&a);
        let (ya, yb) = (run(&a, given.clone()), run(&b, given));
        assert!(!ya.is_empty());
        assert!(ya == yb, "{name}: outputs differ");
    }
}

#[test]
fn pruned_90_percent_round_trips_runs_like_the_pruned_onnx_and_is_smaller() {
    let dir = support::temp_dir("spx-pruned");
    let onnx = example("digits_mlp");
    let pruned_onnx = dir.join("mlp90.onnx");
    let pruned_spx = dir.join("mlp90.spx");
    ok(&[
        "prune",
        s(&onnx),
        "-o",
        s(&pruned_onnx),
        "--sparsity",
        "0.9",
    ]);
    let log = ok(&[
        "compile",
        s(&onnx),
        "-o",
        s(&pruned_spx),
        "--sparsity",
        "0.9",
    ]);
    assert!(log.contains("as CSR"), "{log}");
    let read = spx::read(&pruned_spx).expect("read");
    assert_same_graph(&load_onnx(&pruned_onnx), &read, "pruned digits MLP");
    let densest = Numbering::new(&read)
        .weights()
        .iter()
        .filter_map(|&w| read.weight(w))
        .filter(|w| w.facts.numel > 100_000)
        .map(|w| w.facts.density())
        .fold(0.0, f64::max);
    assert!(densest < 0.2, "the big layer keeps density {densest}");
    // The CLI runs the .spx like the pruned ONNX.
    let input = support::repo().join("examples/digits_8_flat.pb");
    let x = format!("x={}", s(&input));
    let from_onnx = ok(&["run", s(&pruned_onnx), "--input", &x]);
    let from_spx = ok(&["run", s(&pruned_spx), "--input", &x]);
    assert_eq!(from_onnx, from_spx);
    // A 90%-sparse model's file is much smaller than the ONNX.
    let all = dir.join("all90.spx");
    ok(&[
        "compile",
        s(&onnx),
        "-o",
        s(&all),
        "--sparsity",
        "0.9",
        "--all-layers",
    ]);
    let onnx_len = std::fs::metadata(&onnx).unwrap().len();
    for f in [&pruned_spx, &all] {
        let len = std::fs::metadata(f).unwrap().len();
        assert!(
            len * 3 < onnx_len,
            "{}: {len} bytes vs ONNX {onnx_len}",
            f.display()
        );
    }
}

#[test]
fn run_and_bench_pick_spx_by_magic_bytes_not_extension() {
    let dir = support::temp_dir("spx-magic");
    let disguised = dir.join("model.onnx");
    ok(&["compile", s(&example("digits_mlp")), "-o", s(&disguised)]);
    let input = support::repo().join("examples/digits_8_flat.pb");
    let x = format!("x={}", s(&input));
    assert_eq!(
        ok(&["run", s(&disguised), "--input", &x]),
        ok(&["run", s(&example("digits_mlp")), "--input", &x])
    );
    let json = ok(&[
        "bench",
        s(&disguised),
        "--json",
        "--dim",
        "batch=4",
        "--warmup",
        "0",
        "--iterations",
        "1",
    ]);
    assert!(json.contains("median_ms"), "{json}");
    let err = fails(&["run", s(&disguised), "--dim", "nope=3", "--input", &x]);
    assert!(err.contains("nope"), "{err}");
}

/// The bytes of a small compiled model.
fn small_file(dir: &Path) -> Vec<u8> {
    let out = dir.join("cnn.spx");
    ok(&["compile", s(&example("digits_cnn")), "-o", s(&out)]);
    std::fs::read(out).unwrap()
}

#[test]
fn damaged_files_are_errors_not_panics() {
    let dir = support::temp_dir("spx-corrupt");
    let good = small_file(&dir);
    assert!(spx::decode(&good, "cnn.spx").is_ok());
    // Truncated anywhere.
    for len in (0..good.len())
        .step_by(997)
        .chain([1, 7, 8, 31, 32, 33, good.len() - 1])
    {
        let e = spx::decode(&good[..len], "cnn.spx").expect_err("truncated");
        assert!(
            matches!(e, SpxError::Truncated { .. } | SpxError::NotSpx { .. }),
            "truncated to {len}: {e}"
        );
    }
    // A flipped byte anywhere (every header byte, then spread over the body).
    for i in (0..32).chain((32..good.len()).step_by(1013)) {
        let mut bad = good.clone();
        bad[i] ^= 0x5a;
        assert!(
            spx::decode(&bad, "cnn.spx").is_err(),
            "flip at {i} accepted"
        );
    }
    // Wrong magic, a newer format version.
    let mut bad = good.clone();
    bad[1] = b'Q';
    let e = spx::decode(&bad, "cnn.spx").unwrap_err();
    assert!(matches!(e, SpxError::NotSpx { .. }), "{e}");
    let mut newer = good.clone();
    newer[8..12].copy_from_slice(&(spx::FORMAT_VERSION + 1).to_le_bytes());
    let e = spx::decode(&newer, "cnn.spx").unwrap_err();
    assert!(matches!(e, SpxError::Version { .. }), "{e}");
    assert!(e.to_string().contains("version 2"), "{e}");
    // The CLI reports each as one line naming the file.
    for (name, bytes) in [
        ("trunc.spx", &good[..good.len() / 2]),
        ("newer.spx", &newer[..]),
    ] {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        let err = fails(&["run", s(&p)]);
        assert!(err.contains(name), "{err}");
    }
}

#[test]
fn output_rules_never_the_input_and_replaced_only_on_success() {
    let dir = support::temp_dir("spx-output");
    let model = dir.join("m.onnx");
    std::fs::copy(example("digits_cnn"), &model).unwrap();
    let before = std::fs::read(&model).unwrap();
    let same = dir.join(".").join("m.onnx");
    let err = fails(&["compile", s(&model), "-o", s(&same)]);
    assert!(err.contains("refusing to overwrite the input"), "{err}");
    assert!(std::fs::read(&model).unwrap() == before);
    // A failing compile leaves an existing output alone and no temporary file behind.
    let out = dir.join("out.spx");
    std::fs::write(&out, b"old").unwrap();
    fails(&["compile", s(&model), "-o", s(&out), "--sparsity", "2"]);
    fails(&[
        "compile",
        s(&model),
        "-o",
        s(&out),
        "--passes",
        "no-such-pass",
    ]);
    assert_eq!(std::fs::read(&out).unwrap(), b"old");
    // A successful one replaces it.
    ok(&["compile", s(&model), "-o", s(&out)]);
    assert!(spx::read(&out).is_ok());
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    // compile reads ONNX only.
    fails(&["compile", s(&out), "-o", s(&dir.join("again.spx"))]);
}
