//! `sparsec run` on tiny BERT and on the nine light model-zoo architectures matches the expected
//! outputs shipped with them (skipped with a note when the shared data is absent).

mod support;

use sparsec::conformance::compare;
use sparsec::onnx::{import_file, ImportOptions};
use sparsec::tensor_io::read_tensor;
use std::path::Path;

/// Runs `sparsec run MODEL --inputs/--input ... --output-dir OUT` and compares the single output.
fn run_and_compare(test: &str, model: &Path, input_args: &[String], expected: &Path) {
    let out = support::temp_dir(test);
    let mut args = vec!["run".to_string(), model.display().to_string()];
    args.extend(input_args.iter().cloned());
    args.extend(["--output-dir".to_string(), out.display().to_string()]);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = support::sparsec(&argv);
    assert!(
        result.status.success(),
        "{test}: sparsec run failed: {}",
        String::from_utf8_lossy(&result.stderr)
    );
    let written: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(
        written.len(),
        1,
        "{test}: one output file expected, got {written:?}"
    );
    let (_, actual) = read_tensor(&written[0]).unwrap();
    let (_, expected) = read_tensor(expected).unwrap();
    if let Err(why) = compare(&actual, &expected) {
        panic!("{test}: output differs from the expected one: {why}");
    }
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn tiny_bert_matches_expected_output() {
    let Some(shared) = support::shared("tiny_bert_matches_expected_output") else {
        return;
    };
    let d = shared.join("models/transformer");
    run_and_compare(
        "tiny_bert",
        &d.join("tiny_bert_random.onnx"),
        &[
            "--inputs".into(),
            d.join("test_data_set_0").display().to_string(),
        ],
        &d.join("test_data_set_0/output_0.pb"),
    );
}

#[test]
fn light_models_match_expected_outputs() {
    let Some(shared) = support::shared("light_models_match_expected_outputs") else {
        return;
    };
    let d = shared.join("onnx-backend-tests/light");
    let names = [
        "bvlc_alexnet",
        "densenet121",
        "inception_v1",
        "inception_v2",
        "resnet50",
        "shufflenet",
        "squeezenet",
        "vgg19",
        "zfnet512",
    ];
    for name in names {
        let model = d.join(format!("light_{name}.onnx"));
        let input = d.join(format!("light_{name}_input_0.pb"));
        // The data input is the only graph input without an initializer.
        let graph = import_file(&model, &ImportOptions::default()).unwrap();
        assert_eq!(graph.inputs().len(), 1, "{name}: one data input");
        let input_name = graph.value(graph.inputs()[0]).name.clone();
        drop(graph);
        run_and_compare(
            name,
            &model,
            &[
                "--input".into(),
                format!("{input_name}={}", input.display()),
            ],
            &d.join(format!("light_{name}_output_0.pb")),
        );
        eprintln!("light {name}: matches");
    }
}
