//! The `sparsec` command line on the models shipped in `examples/`: `inspect` reports density and
//! pattern of weights pruned outside sparsec, `run` computes the right classes, and bad input gets
//! a one-line error and exit code 1, never a panic.

mod support;

use onnx_protobuf::ModelProto;
use protobuf::Message;
use std::path::{Path, PathBuf};

fn example(name: &str) -> String {
    support::repo()
        .join("examples")
        .join(name)
        .display()
        .to_string()
}

/// Writes a copy of `model` whose rank-2 float initializers are rewritten by `prune`.
fn pruned_copy(model: &str, out: &Path, prune: impl Fn(&mut [f32], usize)) -> PathBuf {
    let bytes = std::fs::read(model).unwrap();
    let mut m = ModelProto::parse_from_bytes(&bytes).unwrap();
    for t in m.graph.mut_or_insert_default().initializer.iter_mut() {
        if t.dims.len() != 2 || t.data_type != 1 {
            continue;
        }
        let mut v: Vec<f32> = t
            .raw_data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        assert_eq!(
            v.len() as i64,
            t.dims[0] * t.dims[1],
            "raw_data initializers"
        );
        prune(&mut v, t.dims[1] as usize);
        t.raw_data = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    }
    let path = out.join("pruned.onnx");
    std::fs::write(&path, m.write_to_bytes().unwrap()).unwrap();
    path
}

fn inspect_json(model: &Path) -> serde_json::Value {
    let out = support::sparsec(&["inspect", model.to_str().unwrap(), "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("inspect --json prints JSON")
}

#[test]
fn inspect_reports_external_magnitude_pruning() {
    let dir = support::temp_dir("inspect90");
    // Zero the 90% smallest magnitudes of each weight.
    let model = pruned_copy(&example("digits_mlp.onnx"), &dir, |v, _| {
        let mut mags: Vec<f32> = v.iter().map(|x| x.abs()).collect();
        mags.sort_by(|a, b| a.total_cmp(b));
        let cut = mags[(v.len() as f64 * 0.9) as usize];
        v.iter_mut()
            .filter(|x| x.abs() < cut)
            .for_each(|x| *x = 0.0);
    });
    let report = inspect_json(&model);
    let layers = report["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 3);
    for l in layers {
        let d = l["density"].as_f64().unwrap();
        assert!((d - 0.1).abs() < 0.002, "{l}");
        assert_eq!(l["pattern"], "unstructured", "{l}");
        assert_eq!(l["op"], "gemm");
    }
    assert_eq!(layers[1]["weight_shape"], serde_json::json!([1024, 1024]));
    assert_eq!(layers[1]["nnz"], 104858);
    // Dense MACs per sample: 64*1024 + 1024*1024 + 1024*10; nonzero-only is about a tenth.
    let dense = report["macs_dense"].as_u64().unwrap();
    assert_eq!(dense, 64 * 1024 + 1024 * 1024 + 1024 * 10);
    let nz = report["macs_nonzero"].as_u64().unwrap() as f64;
    assert!((nz / dense as f64 - 0.1).abs() < 0.002);
}

#[test]
fn inspect_detects_two_four() {
    let dir = support::temp_dir("inspect24");
    // Keep the 2 largest magnitudes of every 4 consecutive inputs.
    let model = pruned_copy(&example("digits_mlp.onnx"), &dir, |v, _| {
        for g in v.chunks_mut(4) {
            let mut idx = [0usize, 1, 2, 3];
            idx.sort_by(|&a, &b| g[b].abs().total_cmp(&g[a].abs()));
            g[idx[2]] = 0.0;
            g[idx[3]] = 0.0;
        }
    });
    let report = inspect_json(&model);
    for l in report["layers"].as_array().unwrap() {
        assert_eq!(l["pattern"], "2:4", "{l}");
        assert!((l["density"].as_f64().unwrap() - 0.5).abs() < 1e-9);
    }
    let table = support::sparsec(&["inspect", model.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("2:4") && text.contains("total:"), "{text}");
}

#[test]
fn run_classifies_shipped_digits() {
    let out = support::temp_dir("run8");
    let r = support::sparsec(&[
        "run",
        &example("digits_cnn.onnx"),
        "--input",
        &format!("x={}", example("digits_8_images.npy")),
        "--output-dir",
        out.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let stdout = String::from_utf8_lossy(&r.stdout);
    assert!(stdout.starts_with("logits: f32[8, 10]"), "{stdout}");
    let (_, logits) = sparsec::tensor_io::read_tensor(&out.join("logits.pb")).unwrap();
    let (_, labels) =
        sparsec::tensor_io::read_tensor(Path::new(&example("digits_8_labels.npy"))).unwrap();
    let v = logits.to_f32_vec();
    let predicted: Vec<i64> = v
        .chunks(10)
        .map(|row| (0..10).fold(0, |b, j| if row[j] > row[b] { j } else { b }) as i64)
        .collect();
    assert_eq!(predicted, labels.to_i64_vec());
}

/// Runs sparsec and checks for exit code 1 and a one-line error containing `needle`.
fn fails_with(args: &[&str], needle: &str) {
    let r = support::sparsec(args);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "args {args:?}: stderr {stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains(needle), "expected `{needle}` in: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn bad_input_is_a_clear_error() {
    let dir = support::temp_dir("badinput");
    let not_onnx = dir.join("not.onnx");
    std::fs::write(&not_onnx, b"this is not a model").unwrap();
    let truncated = dir.join("truncated.onnx");
    let bytes = std::fs::read(example("digits_cnn.onnx")).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let bad_npy = dir.join("bad.npy");
    std::fs::write(&bad_npy, b"\x93NUMPY\x01\x00garbage").unwrap();
    let cnn = example("digits_cnn.onnx");
    let images = format!("x={}", example("digits_8_images.npy"));
    let flat = format!("x={}", example("digits_8_flat.pb"));

    fails_with(&["inspect", not_onnx.to_str().unwrap()], "not.onnx");
    fails_with(
        &["run", truncated.to_str().unwrap(), "--input", &images],
        "truncated.onnx",
    );
    fails_with(
        &["inspect", dir.join("missing.onnx").to_str().unwrap()],
        "missing.onnx",
    );
    fails_with(&["run", &cnn], "missing input `x`");
    fails_with(
        &["run", &cnn, "--input", &images, "--input", "y=whatever.npy"],
        "whatever.npy",
    );
    fails_with(
        &[
            "run",
            &cnn,
            "--input",
            &images,
            "--input",
            &format!("y={}", example("digits_8_images.npy")),
        ],
        "no input named `y`",
    );
    fails_with(
        &["run", &cnn, "--input", &flat],
        "input `x`: expected rank 4",
    );
    fails_with(
        &[
            "run",
            &cnn,
            "--input",
            &format!("x={}", example("digits_8_labels.npy")),
        ],
        "expected f32",
    );
    fails_with(
        &["run", &cnn, "--input", &format!("x={}", bad_npy.display())],
        "bad.npy",
    );
    fails_with(
        &["ir", &cnn, "--passes", "no-such-pass"],
        "unknown pass `no-such-pass`",
    );
    fails_with(&["run", &cnn, "--input", "x"], "expected NAME=FILE");
}

#[test]
fn ir_prints_the_text_form() {
    let r = support::sparsec(&["ir", &example("digits_mlp.onnx")]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let text = String::from_utf8_lossy(&r.stdout);
    assert!(text.starts_with("graph "), "{text}");
    assert_eq!(text.matches(" = gemm ").count(), 3, "{text}");
    assert!(sparsec_ir::parse(&text).is_ok());
}

#[test]
fn bench_json_reports_timings_and_memory() {
    let r = support::sparsec(&[
        "bench",
        &example("digits_mlp.onnx"),
        "--dim",
        "batch=4",
        "--iterations",
        "3",
        "--warmup",
        "1",
        "--threads",
        "1",
        "--json",
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).expect("one JSON object");
    let f = |k: &str| {
        v[k].as_f64()
            .unwrap_or_else(|| panic!("{k} missing in {v}"))
    };
    assert!(f("median_ms") > 0.0 && f("min_ms") <= f("median_ms") && f("median_ms") <= f("p90_ms"));
    assert!(f("compile_ms") > 0.0);
    assert_eq!(v["threads"], 1);
    assert_eq!(v["iterations"], 3);
    // Two 4x1024 f32 intermediates are live at once at most: 32 KiB.
    assert!(
        f("arena_bytes") >= 32768.0 && f("arena_bytes") <= 65536.0,
        "{v}"
    );
    assert!(f("peak_rss_bytes") > 1e6);
    assert!(!v["kernels"].as_array().unwrap().is_empty());
}

/// With two threads `bench` reports their round trip and whether they count as far apart;
/// `SPARSEC_ROUND_TRIP_NS` replaces the measurement.
#[test]
fn bench_reports_the_threads_placement() {
    for (forced, far, scale) in [("30", false, 1), ("400", true, 2)] {
        let r = std::process::Command::new(env!("CARGO_BIN_EXE_sparsec"))
            .args(["bench", &example("digits_mlp.onnx"), "--iterations", "3"])
            .args(["--warmup", "1", "--threads", "2", "--json"])
            .env("SPARSEC_ROUND_TRIP_NS", forced)
            .output()
            .expect("the sparsec binary runs");
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        let v: serde_json::Value = serde_json::from_slice(&r.stdout).expect("one JSON object");
        assert_eq!(v["round_trip_ns"], forced.parse::<u64>().unwrap(), "{v}");
        assert_eq!(
            (v["threads_far"].as_bool(), v["grain_scale"].as_u64()),
            (Some(far), Some(scale))
        );
    }
}

#[test]
fn jit_and_interpreter_agree_on_the_examples() {
    for (model, input) in [
        (
            "digits_cnn.onnx",
            format!("x={}", example("digits_8_images.npy")),
        ),
        (
            "digits_mlp.onnx",
            format!("x={}", example("digits_8_flat.pb")),
        ),
    ] {
        let mut outs = Vec::new();
        for engine in ["interp", "jit"] {
            let dir = support::temp_dir(&format!("agree-{engine}-{model}"));
            let r = support::sparsec(&[
                "run",
                &example(model),
                "--input",
                &input,
                "--engine",
                engine,
                "--output-dir",
                dir.to_str().unwrap(),
            ]);
            assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
            outs.push(
                sparsec::tensor_io::read_tensor(&dir.join("logits.pb"))
                    .unwrap()
                    .1,
            );
        }
        sparsec::conformance::compare(&outs[1], &outs[0])
            .unwrap_or_else(|e| panic!("{model}: {e}"));
    }
}

#[test]
fn sparse_kernels_of_either_vector_width_agree_with_the_interpreter() {
    // The digits MLP with 90% of every weight zeroed, at batch 8: layout selection gives its
    // layers batch CSR kernels (the 1024 x 1024 one the CSR loop, which uses `f32x8` where the
    // host has AVX2 and FMA). 128-bit and 256-bit vectors must both match the interpreter.
    let dir = support::temp_dir("vector-widths");
    let model = pruned_copy(&example("digits_mlp.onnx"), &dir, |v, _| {
        let mut mags: Vec<f32> = v.iter().map(|x| x.abs()).collect();
        mags.sort_by(f32::total_cmp);
        let cut = mags[mags.len() * 9 / 10];
        v.iter_mut()
            .filter(|x| x.abs() < cut)
            .for_each(|x| *x = 0.0);
    });
    let input = format!("x={}", example("digits_8_flat.pb"));
    let run = |engine: &str, bits: &str| {
        let out = dir.join(format!("{engine}-{bits}"));
        let r = support::sparsec_env(
            &[
                "run",
                model.to_str().unwrap(),
                "--input",
                &input,
                "--engine",
                engine,
                "--output-dir",
                out.to_str().unwrap(),
            ],
            &[("SPARSEC_VECTOR_BITS", bits)],
        );
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        sparsec::tensor_io::read_tensor(&out.join("logits.pb"))
            .unwrap()
            .1
    };
    let want = run("interp", "256");
    for bits in ["128", "256"] {
        sparsec::conformance::compare(&run("jit", bits), &want)
            .unwrap_or_else(|e| panic!("{bits}-bit vectors: {e}"));
    }
    let layers = inspect_json(&model)["layers"].as_array().unwrap().clone();
    assert!(
        layers
            .iter()
            .any(|l| l["layout"].as_str().unwrap_or("").starts_with("csr")),
        "no CSR layer: {layers:?}"
    );
}
