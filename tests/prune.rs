//! `sparsec prune` end to end: pruning the shipped digits MLP by magnitude and 2:4, re-importing
//! the output to check densities and patterns, running it, keeping a model's BatchNormalization
//! while pruning the weights folded into it, recognising already-sparse weights, and one-line
//! errors for bad flags that leave the input untouched.

mod support;

use onnx_protobuf::{
    tensor_shape_proto, type_proto, AttributeProto, GraphProto, ModelProto, NodeProto,
    OperatorSetIdProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};
use protobuf::{Message, MessageField};
use std::path::{Path, PathBuf};

fn example(name: &str) -> String {
    support::repo()
        .join("examples")
        .join(name)
        .display()
        .to_string()
}

/// Runs `sparsec prune` and returns its stdout, failing the test on an error.
fn prune(args: &[&str]) -> String {
    let mut all = vec!["prune"];
    all.extend_from_slice(args);
    let r = support::sparsec(&all);
    assert!(
        r.status.success(),
        "prune {args:?}: {}",
        String::from_utf8_lossy(&r.stderr)
    );
    String::from_utf8_lossy(&r.stdout).into_owned()
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

/// `(density, pattern)` of every layer of a model, as `sparsec inspect` reports them.
fn layers(model: &Path) -> Vec<(f64, String)> {
    inspect_json(model)["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["density"].as_f64().unwrap(),
                l["pattern"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// How many of the 8 shipped digit images the model classifies right.
/// Runs `model` with `sparsec run` on the shipped input file `x` and returns its logits.
fn run_logits(model: &Path, x: &str, dir: &Path) -> sparsec_ir::Tensor {
    let out = dir.join("run");
    let r = support::sparsec(&[
        "run",
        model.to_str().unwrap(),
        "--input",
        &format!("x={}", example(x)),
        "--output-dir",
        out.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    sparsec::tensor_io::read_tensor(&out.join("logits.pb"))
        .unwrap()
        .1
}

fn correct_of_8(model: &Path, dir: &Path) -> usize {
    let logits = run_logits(model, "digits_8_flat.pb", dir);
    let (_, labels) =
        sparsec::tensor_io::read_tensor(Path::new(&example("digits_8_labels.npy"))).unwrap();
    logits
        .to_f32_vec()
        .chunks(10)
        .map(|row| (0..10).fold(0, |b, j| if row[j] > row[b] { j } else { b }) as i64)
        .zip(labels.to_i64_vec())
        .filter(|(p, l)| p == l)
        .count()
}

#[test]
fn magnitude_90_prunes_the_middle_layer_and_keeps_accuracy() {
    let dir = support::temp_dir("prune-mag90");
    let input = example("digits_mlp.onnx");
    let before = std::fs::read(&input).unwrap();
    let out = dir.join("mlp90.onnx");
    let stdout = prune(&[&input, "-o", out.to_str().unwrap(), "--sparsity", "0.9"]);
    assert_eq!(std::fs::read(&input).unwrap(), before, "input untouched");
    assert!(stdout.contains("kept dense (first layer)"), "{stdout}");
    assert!(stdout.contains("kept dense (last layer)"), "{stdout}");
    assert!(stdout.contains("global 0.900 -> density 0.100"), "{stdout}");
    assert!(stdout.contains("943718 values zeroed"), "{stdout}");
    let l = layers(&out);
    assert_eq!(l[0], (1.0, "dense".to_string()));
    assert_eq!(l[2], (1.0, "dense".to_string()));
    assert!((l[1].0 - 0.1).abs() < 1e-6, "{l:?}");
    assert_eq!(l[1].1, "unstructured");
    assert!(correct_of_8(&out, &dir) >= 7);
    // Layer scope with overrides (a node-name glob and a weight name without `.weight`).
    let out = dir.join("mlp-layer.onnx");
    prune(&[
        &input,
        "-o",
        out.to_str().unwrap(),
        "--sparsity",
        "0.9",
        "--scope",
        "layer",
        "--layer-sparsity",
        "/0/*=0.5,4=0.2",
    ]);
    let d: Vec<f64> = layers(&out).into_iter().map(|l| l.0).collect();
    for (got, want) in d.iter().zip([0.5, 0.1, 0.8]) {
        assert!((got - want).abs() < 1e-6, "{d:?}");
    }
}

#[test]
fn nm_24_gives_every_pruned_weight_the_pattern() {
    let dir = support::temp_dir("prune-nm");
    let input = example("digits_mlp.onnx");
    let out = dir.join("mlp24.onnx");
    let stdout = prune(&[&input, "-o", out.to_str().unwrap(), "--method", "nm"]);
    assert!(stdout.contains("2:4 -> density 0.500"), "{stdout}");
    let l = layers(&out);
    assert_eq!(l[1], (0.5, "2:4".to_string()));
    assert_eq!(l[0].1, "dense");
    assert!(correct_of_8(&out, &dir) >= 7);
    // Every layer, and the inspect table says 2:4 for each.
    let out = dir.join("mlp24-all.onnx");
    prune(&[
        &input,
        "-o",
        out.to_str().unwrap(),
        "--method",
        "nm",
        "--all-layers",
    ]);
    assert!(layers(&out).iter().all(|l| *l == (0.5, "2:4".to_string())));
    let table = support::sparsec(&["inspect", out.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&table.stdout);
    // The pattern column (after the density); the layout column may name 2:4 too.
    assert_eq!(text.matches(" 0.5000 2:4 ").count(), 3, "{text}");
    // 1:4 and 2:8 too.
    for (p, density) in [("1:4", 0.25), ("2:8", 0.25), ("4:8", 0.5)] {
        let out = dir.join(format!("mlp-{}.onnx", p.replace(':', "-")));
        prune(&[
            &input,
            "-o",
            out.to_str().unwrap(),
            "--method",
            "nm",
            "--pattern",
            p,
        ]);
        assert_eq!(layers(&out)[1], (density, p.to_string()));
    }
}

#[test]
fn already_sparse_weights_are_recognised_and_count_toward_the_target() {
    let dir = support::temp_dir("prune-again");
    let once = dir.join("once.onnx");
    prune(&[
        &example("digits_mlp.onnx"),
        "-o",
        once.to_str().unwrap(),
        "--sparsity",
        "0.9",
    ]);
    // Import computes the facts: no flag is needed to see the zeros.
    assert_eq!(layers(&once)[1].1, "unstructured");
    let twice = dir.join("twice.onnx");
    let stdout = prune(&[
        once.to_str().unwrap(),
        "-o",
        twice.to_str().unwrap(),
        "--sparsity",
        "0.5",
    ]);
    assert!(stdout.contains("1.0000   1.0000  kept dense"), "{stdout}");
    assert!(stdout.contains("0.1000   0.1000  global 0.500"), "{stdout}");
    assert!(stdout.contains(" 0 values zeroed"), "{stdout}");
}

/// A float tensor proto, raw or typed.
fn tensor(name: &str, dims: &[i64], v: &[f32], raw: bool) -> TensorProto {
    let mut t = TensorProto::new();
    t.name = name.into();
    t.data_type = 1;
    t.dims = dims.to_vec();
    if raw {
        t.raw_data = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    } else {
        t.float_data = v.to_vec();
    }
    t
}

fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0 + 1e-3
        })
        .collect()
}

fn value_info(name: &str, dims: &[i64]) -> ValueInfoProto {
    let mut shape = TensorShapeProto::new();
    for &d in dims {
        let mut dim = tensor_shape_proto::Dimension::new();
        dim.value = Some(tensor_shape_proto::dimension::Value::DimValue(d));
        shape.dim.push(dim);
    }
    let mut tt = type_proto::Tensor::new();
    tt.elem_type = 1;
    tt.shape = MessageField::some(shape);
    let mut ty = TypeProto::new();
    ty.value = Some(type_proto::Value::TensorType(tt));
    let mut vi = ValueInfoProto::new();
    vi.name = name.into();
    vi.type_ = MessageField::some(ty);
    vi
}

fn node(op: &str, inputs: &[&str], output: &str, ints: &[(&str, Vec<i64>)]) -> NodeProto {
    let mut n = NodeProto::new();
    n.op_type = op.into();
    n.name = output.into();
    n.input = inputs.iter().map(|s| s.to_string()).collect();
    n.output = vec![output.into()];
    for (k, v) in ints {
        let mut a = AttributeProto::new();
        a.name = k.to_string();
        a.ints = v.clone();
        a.type_ = onnx_protobuf::attribute_proto::AttributeType::INTS.into();
        n.attribute.push(a);
    }
    n
}

/// `x[1, 16, 6, 6]` -> Conv(w1 raw [32, 16, 3, 3]) -> BatchNormalization -> Relu -> Conv(w2 typed
/// `float_data` [32, 32, 3, 3]); returns the model and the BN's per-channel scale.
fn conv_bn_model(path: &Path) -> Vec<f32> {
    let mut g = GraphProto::new();
    g.name = "convbn".into();
    g.input.push(value_info("x", &[1, 16, 6, 6]));
    g.output.push(value_info("y", &[1, 32, 6, 6]));
    let gamma: Vec<f32> = values(32, 3).iter().map(|v| v * 4.0).collect();
    let var: Vec<f32> = values(32, 4).iter().map(|v| v.abs() + 0.05).collect();
    g.initializer = vec![
        tensor("w1", &[32, 16, 3, 3], &values(32 * 16 * 9, 1), true),
        tensor("w2", &[32, 32, 3, 3], &values(32 * 32 * 9, 2), false),
        tensor("gamma", &[32], &gamma, true),
        tensor("beta", &[32], &values(32, 5), true),
        tensor("mean", &[32], &values(32, 6), true),
        tensor("var", &[32], &var, true),
    ];
    let pads = ("pads", vec![1, 1, 1, 1]);
    g.node = vec![
        node("Conv", &["x", "w1"], "c1", std::slice::from_ref(&pads)),
        node(
            "BatchNormalization",
            &["c1", "gamma", "beta", "mean", "var"],
            "bn",
            &[],
        ),
        node("Relu", &["bn"], "r", &[]),
        node("Conv", &["r", "w2"], "y", &[pads]),
    ];
    let mut m = ModelProto::new();
    m.ir_version = 8;
    let mut o = OperatorSetIdProto::new();
    o.version = 17;
    m.opset_import.push(o);
    m.graph = MessageField::some(g);
    std::fs::write(path, m.write_to_bytes().unwrap()).unwrap();
    gamma
        .iter()
        .zip(&var)
        .map(|(g, v)| g / (v + 1e-5f32).sqrt())
        .collect()
}

fn floats(t: &TensorProto) -> Vec<f32> {
    if t.raw_data.is_empty() {
        t.float_data.clone()
    } else {
        t.raw_data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    }
}

#[test]
fn batchnorm_stays_and_zeros_land_where_the_folded_weight_was_smallest() {
    let dir = support::temp_dir("prune-bn");
    let input = dir.join("convbn.onnx");
    let scale = conv_bn_model(&input);
    let out = dir.join("pruned.onnx");
    prune(&[
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--sparsity",
        "0.6",
        "--scope",
        "layer",
        "--all-layers",
    ]);
    let m = ModelProto::parse_from_bytes(&std::fs::read(&out).unwrap()).unwrap();
    let g = m.graph.as_ref().unwrap();
    let ops: Vec<&str> = g.node.iter().map(|n| n.op_type.as_str()).collect();
    assert_eq!(ops, ["Conv", "BatchNormalization", "Relu", "Conv"]);
    let w1 = floats(&g.initializer[0]);
    let w2 = floats(&g.initializer[1]);
    assert!(g.initializer[0].float_data.is_empty(), "raw stays raw");
    assert!(g.initializer[1].raw_data.is_empty(), "typed stays typed");
    // The zeros of w1 are the 60% smallest |w1 * scale| (per output channel of 144), not of |w1|.
    let orig = values(32 * 16 * 9, 1);
    let mut folded: Vec<(f32, usize)> = orig
        .iter()
        .enumerate()
        .map(|(i, w)| ((w * scale[i / 144]).abs(), i))
        .collect();
    folded.sort_by(|a, b| a.0.total_cmp(&b.0));
    let k = (0.6 * orig.len() as f64).round() as usize;
    for (rank, &(_, i)) in folded.iter().enumerate() {
        assert_eq!(w1[i] == 0.0, rank < k, "element {i} of rank {rank}");
        if rank >= k {
            assert_eq!(w1[i], orig[i], "kept values are unchanged");
        }
    }
    let zeros2 = w2.iter().filter(|x| **x == 0.0).count();
    assert_eq!(zeros2, (0.6 * w2.len() as f64).round() as usize);
    // sparsec reads it back (folding BN again) with the same densities.
    for (d, _) in layers(&out) {
        assert!((d - 0.4).abs() < 1e-3, "{d}");
    }
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
fn bad_flags_are_one_line_errors_and_write_nothing() {
    let dir = support::temp_dir("prune-bad");
    let input = dir.join("mlp.onnx");
    std::fs::copy(example("digits_mlp.onnx"), &input).unwrap();
    let before = std::fs::read(&input).unwrap();
    let inp = input.to_str().unwrap();
    let out: PathBuf = dir.join("out.onnx");
    let o = out.to_str().unwrap();
    let p = |extra: &[&'static str]| -> Vec<String> {
        let mut v = vec!["prune".to_string(), inp.to_string(), "-o".into(), o.into()];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            p(&["--sparsity", "1.5"]),
            "--sparsity: sparsity `1.5` is not a number in [0, 1]",
        ),
        (p(&["--sparsity", "lots"]), "--sparsity"),
        (p(&["--method", "pixels"]), "unknown method `pixels`"),
        (
            p(&["--norm", "l3"]),
            "--norm applies to --method channels only",
        ),
        (
            p(&["--method", "channels", "--norm", "l3"]),
            "unknown channel norm `l3`",
        ),
        (p(&["--scope", "model"]), "--scope: unknown scope `model`"),
        (
            p(&["--method", "nm", "--pattern", "3:4"]),
            "unsupported N:M pattern `3:4`",
        ),
        (
            p(&["--pattern", "2:4"]),
            "--pattern applies to --method nm only",
        ),
        (
            p(&["--method", "nm", "--sparsity", "0.5"]),
            "apply to --method magnitude only",
        ),
        (p(&["--layer-sparsity", "fc1"]), "expected NAME=SPARSITY"),
        (
            p(&["--layer-sparsity", "fc1=0.5"]),
            "`fc1` matches no prunable layer",
        ),
    ];
    for (args, needle) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        fails_with(&args, needle);
        assert!(!out.exists(), "{args:?} wrote an output");
    }
    fails_with(
        &["prune", inp, "-o", inp],
        "refusing to overwrite the input",
    );
    let same = format!(
        "{}/../{}/mlp.onnx",
        dir.display(),
        dir.file_name().unwrap().to_str().unwrap()
    );
    fails_with(
        &["prune", inp, "-o", &same],
        "refusing to overwrite the input",
    );
    fails_with(
        &["prune", dir.join("missing.onnx").to_str().unwrap(), "-o", o],
        "missing.onnx",
    );
    let nowhere = dir.join("no/such/folder/out.onnx");
    fails_with(&["prune", inp, "-o", nowhere.to_str().unwrap()], "out.onnx");
    assert_eq!(std::fs::read(&input).unwrap(), before, "input untouched");
    let leftovers: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
    assert_eq!(leftovers.len(), 1, "no temporary files: {leftovers:?}");
}

#[test]
fn channels_removes_whole_channels_and_the_written_model_computes_the_pruned_function() {
    use sparsec::passes::{prune_channels, ChannelMode, ChannelOptions};
    let dir = support::temp_dir("prune-channels");
    let input = example("digits_cnn.onnx");
    let before = std::fs::read(&input).unwrap();
    let out = dir.join("cnn-ch25.onnx");
    let stdout = prune(&[
        &input,
        "-o",
        out.to_str().unwrap(),
        "--method",
        "channels",
        "--sparsity",
        "0.25",
    ]);
    assert_eq!(std::fs::read(&input).unwrap(), before, "input untouched");
    assert!(stdout.contains("64 -> 48 channels"), "{stdout}");
    assert!(stdout.contains("128 -> 96 channels"), "{stdout}");
    assert!(stdout.contains("parameters 93962 -> 56730"), "{stdout}");
    // The written tensors really are smaller: no conv weight keeps 64 or 128 filters.
    let model = ModelProto::parse_from_bytes(&std::fs::read(&out).unwrap()).unwrap();
    let g = model.graph.as_ref().unwrap();
    let firsts: Vec<i64> = g
        .initializer
        .iter()
        .filter(|t| t.dims.len() == 4)
        .map(|t| t.dims[0])
        .collect();
    assert!(firsts.contains(&48) && firsts.contains(&96), "{firsts:?}");
    assert!(
        g.value_info.is_empty(),
        "stale intermediate shapes are dropped"
    );
    // The written model computes what the pass computes with the same channels zeroed instead
    // of removed, on the eight shipped images.
    let got = run_logits(&out, "digits_8_images.npy", &dir);
    let mut zeroed = sparsec::onnx::import_file(Path::new(&input), &Default::default()).unwrap();
    let opts = ChannelOptions {
        fraction: 0.25,
        ..ChannelOptions::default()
    };
    prune_channels(&mut zeroed, &opts, ChannelMode::Zero).unwrap();
    let (_, x) =
        sparsec::tensor_io::read_tensor(Path::new(&example("digits_8_images.npy"))).unwrap();
    let want = sparsec::interp::run_graph(&zeroed, &[x]).unwrap().remove(0);
    assert_eq!(got.shape(), want.shape());
    for (a, b) in got.to_f32_vec().iter().zip(want.to_f32_vec()) {
        assert!((a - b).abs() <= 1e-4 + 1e-4 * b.abs(), "{a} vs {b}");
    }
    // Flags of the other methods are refused.
    let r = support::sparsec(&[
        "prune",
        &input,
        "-o",
        dir.join("x.onnx").to_str().unwrap(),
        "--method",
        "channels",
        "--pattern",
        "2:4",
    ]);
    assert_eq!(r.status.code(), Some(1));
    assert!(!dir.join("x.onnx").exists());
}
