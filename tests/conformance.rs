//! Every case listed in `tests/conformance/expected_pass.txt` must pass through import, the default
//! pipeline and the reference interpreter, and again through the JIT engine (skipped with a note
//! when the shared data is absent).

mod support;

use sparsec::conformance::{discover, run_case_with, EngineKind, Outcome};

#[test]
fn expected_cases_pass_on_the_interpreter() {
    expected_cases_pass(EngineKind::Interp);
}

#[test]
fn expected_cases_pass_on_the_jit() {
    expected_cases_pass(EngineKind::Jit);
}

fn expected_cases_pass(engine: EngineKind) {
    let Some(shared) = support::shared("expected_cases_pass") else {
        return;
    };
    let list = std::fs::read_to_string(support::repo().join("tests/conformance/expected_pass.txt"))
        .expect("expected_pass.txt is committed");
    let expected: Vec<&str> = list
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert!(
        expected.len() > 100,
        "the list holds {} cases",
        expected.len()
    );
    let cases = discover(&shared.join("onnx-backend-tests"));
    let mut failures = Vec::new();
    for id in &expected {
        let Some(case) = cases.iter().find(|c| c.id() == *id) else {
            failures.push(format!("{id}: case not found"));
            continue;
        };
        match run_case_with(case, engine) {
            Outcome::Pass => {}
            other => failures.push(format!("{id}: {other:?}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{engine:?}: {} of {} expected cases did not pass:\n{}",
        failures.len(),
        expected.len(),
        failures.join("\n")
    );
    eprintln!(
        "{engine:?}: {} listed conformance cases passed",
        expected.len()
    );
}
