//! Snapshot tests of the imported IR (after the default pipeline) of the models shipped in
//! `examples/` and of a handful of ONNX node cases in `tests/data/node/`, plus the text
//! round-trip (print -> parse -> print) and verification of each.

mod support;

use sparsec::onnx::{import_file, ImportOptions};
use sparsec::passes::{default_pipeline, run_pipeline, RunOptions};
use std::path::Path;

fn imported_ir(model: &Path) -> String {
    let mut graph = import_file(model, &ImportOptions::default())
        .unwrap_or_else(|e| panic!("import {}: {e}", model.display()));
    let opts = RunOptions {
        verify: true,
        ..RunOptions::default()
    };
    run_pipeline(&mut graph, &default_pipeline(), &opts).unwrap_or_else(|e| panic!("{e}"));
    let text = sparsec_ir::print(&graph);
    let reparsed =
        sparsec_ir::parse(&text).unwrap_or_else(|e| panic!("parse back {}: {e}", model.display()));
    assert_eq!(
        sparsec_ir::print(&reparsed),
        text,
        "print -> parse -> print differs"
    );
    text
}

#[test]
fn example_models() {
    for name in ["digits_mlp", "digits_cnn", "tiny_bert_random"] {
        let text = imported_ir(&support::repo().join(format!("examples/{name}.onnx")));
        insta::assert_snapshot!(name, text);
    }
}

#[test]
fn node_cases() {
    let dir = support::repo().join("tests/data/node");
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    cases.sort();
    assert!(cases.len() >= 8);
    for case in cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let text = imported_ir(&case.join("model.onnx"));
        insta::assert_snapshot!(name, text);
    }
}
