//! The ONNX backend conformance harness: discovers the cases of a backend-test folder, runs each
//! through import, the default pipeline and the reference interpreter, and compares every output
//! with the expected one.
//!
//! Tolerance: an element passes when `|actual - expected| <= ATOL + RTOL * |expected|` (floats;
//! NaN matches NaN, infinities must be equal); integers and bools must be equal. Shapes must be
//! equal. A case whose model uses an unsupported op, dtype or feature is *unsupported*, not
//! failed; a panic is a failure.

use crate::engine::Engine;
use crate::interp::run_graph;
use crate::onnx::{import_file, ImportOptions};
use crate::passes::{default_pipeline, run_pipeline, RunOptions};
use crate::tensor_io::read_tensor;
use sparsec_ir::{Tensor, TensorData};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// Relative tolerance.
pub const RTOL: f64 = 1e-3;
/// Absolute tolerance.
pub const ATOL: f64 = 1e-5;

/// The folders of a backend-test tree, in reporting order.
pub const FOLDERS: &[&str] = &[
    "node",
    "pytorch-converted",
    "pytorch-operator",
    "simple",
    "light",
];

/// One conformance case.
#[derive(Clone, Debug)]
pub struct Case {
    /// Folder (`node`, `light`, ...).
    pub folder: String,
    /// Case name (`test_abs`, `light_resnet50`, ...).
    pub name: String,
    /// The model file.
    pub model: PathBuf,
    /// Data sets: input files and expected output files, in graph order.
    pub data_sets: Vec<(Vec<PathBuf>, Vec<PathBuf>)>,
}

impl Case {
    /// `folder/name`, the form used in `expected_pass.txt`.
    pub fn id(&self) -> String {
        format!("{}/{}", self.folder, self.name)
    }
}

/// The outcome of one case.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Every output of every data set matched.
    Pass,
    /// Something did not match, or an error or panic; the reason.
    Fail(String),
    /// The model uses something unsupported; the reason.
    Unsupported(String),
}

/// Finds every case under `root` (the folders of [`FOLDERS`] that exist), sorted by id.
pub fn discover(root: &Path) -> Vec<Case> {
    let mut cases = Vec::new();
    for folder in FOLDERS {
        let dir = root.join(folder);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut entries: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        entries.sort();
        for p in entries {
            if *folder == "light" {
                if p.extension().is_some_and(|e| e == "onnx") {
                    let stem = p
                        .file_stem()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    let input = dir.join(format!("{stem}_input_0.pb"));
                    let output = dir.join(format!("{stem}_output_0.pb"));
                    cases.push(Case {
                        folder: folder.to_string(),
                        name: stem,
                        model: p.clone(),
                        data_sets: vec![(vec![input], vec![output])],
                    });
                }
            } else if p.join("model.onnx").is_file() {
                cases.push(Case {
                    folder: folder.to_string(),
                    name: p
                        .file_name()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    model: p.join("model.onnx"),
                    data_sets: data_sets(&p),
                });
            }
        }
    }
    cases
}

fn data_sets(case_dir: &Path) -> Vec<(Vec<PathBuf>, Vec<PathBuf>)> {
    let mut sets: Vec<PathBuf> = std::fs::read_dir(case_dir)
        .map(|r| {
            r.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    sets.sort();
    sets.iter()
        .map(|d| (numbered(d, "input"), numbered(d, "output")))
        .collect()
}

fn numbered(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    (0..)
        .map(|k| dir.join(format!("{prefix}_{k}.pb")))
        .take_while(|p| p.is_file())
        .collect()
}

/// Which executor runs the cases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineKind {
    /// The reference interpreter.
    Interp,
    /// The JIT engine (compiled plan on the runtime, one thread).
    Jit,
}

/// Runs one case with the interpreter; never panics (a panic inside becomes [`Outcome::Fail`]).
pub fn run_case(case: &Case) -> Outcome {
    run_case_with(case, EngineKind::Interp)
}

/// Runs one case with the given engine; never panics.
pub fn run_case_with(case: &Case, engine: EngineKind) -> Outcome {
    match catch_unwind(AssertUnwindSafe(|| run_case_inner(case, engine))) {
        Ok(o) => o,
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Outcome::Fail(format!("panic: {msg}"))
        }
    }
}

fn run_case_inner(case: &Case, engine: EngineKind) -> Outcome {
    let mut graph = match import_file(&case.model, &ImportOptions::default()) {
        Ok(g) => g,
        Err(e) if e.is_unsupported() => return Outcome::Unsupported(e.to_string()),
        Err(e) => return Outcome::Fail(format!("import: {e}")),
    };
    if let Err(e) = run_pipeline(&mut graph, &default_pipeline(), &RunOptions::default()) {
        return Outcome::Fail(format!("passes: {e}"));
    }
    for (k, (inputs, outputs)) in case.data_sets.iter().enumerate() {
        let mut tensors = Vec::new();
        for p in inputs {
            match read_tensor(p) {
                Ok((_, t)) => tensors.push(t),
                Err(e) if e.is_unsupported() => {
                    return Outcome::Unsupported(format!("input data: {e}"))
                }
                Err(e) => return Outcome::Fail(format!("input data: {e}")),
            }
        }
        let actual = match engine {
            EngineKind::Interp => match run_graph(&graph, &tensors) {
                Ok(a) => a,
                Err(e) if e.is_unsupported() => return Outcome::Unsupported(e.to_string()),
                Err(e) => return Outcome::Fail(format!("run: {e}")),
            },
            EngineKind::Jit => {
                match Engine::new(graph.clone(), 1).and_then(|mut e| e.run(&tensors)) {
                    Ok(a) => a,
                    Err(e) if e.to_string().contains("unsupported") => {
                        return Outcome::Unsupported(e.to_string())
                    }
                    Err(e) => return Outcome::Fail(format!("jit: {e}")),
                }
            }
        };
        if actual.len() != outputs.len() {
            return Outcome::Fail(format!(
                "data set {k}: {} outputs, {} expected",
                actual.len(),
                outputs.len()
            ));
        }
        for (i, (a, p)) in actual.iter().zip(outputs).enumerate() {
            let expected = match read_tensor(p) {
                Ok((_, t)) => t,
                Err(e) if e.is_unsupported() => {
                    return Outcome::Unsupported(format!("output data: {e}"))
                }
                Err(e) => return Outcome::Fail(format!("output data: {e}")),
            };
            if let Err(why) = compare(a, &expected) {
                return Outcome::Fail(format!("data set {k}, output {i}: {why}"));
            }
        }
    }
    Outcome::Pass
}

/// Compares an actual tensor with an expected one under the documented tolerance.
pub fn compare(actual: &Tensor, expected: &Tensor) -> Result<(), String> {
    if actual.shape() != expected.shape() {
        return Err(format!(
            "shape {:?}, expected {:?}",
            actual.shape(),
            expected.shape()
        ));
    }
    let exact = !expected.dtype().is_float();
    if exact && actual.dtype() != expected.dtype() {
        return Err(format!(
            "dtype {}, expected {}",
            actual.dtype(),
            expected.dtype()
        ));
    }
    if matches!(expected.data(), TensorData::Bool(_)) || exact {
        let (a, e) = (actual.to_f64_vec(), expected.to_f64_vec());
        if let Some(i) = (0..a.len()).find(|&i| a[i] != e[i]) {
            return Err(format!("element {i}: {}, expected {}", a[i], e[i]));
        }
        return Ok(());
    }
    let (a, e) = (actual.to_f64_vec(), expected.to_f64_vec());
    let mut worst: Option<(usize, f64)> = None;
    for i in 0..a.len() {
        let ok = if e[i].is_nan() {
            a[i].is_nan()
        } else if e[i].is_infinite() {
            a[i] == e[i]
        } else {
            (a[i] - e[i]).abs() <= ATOL + RTOL * e[i].abs()
        };
        if !ok {
            let err = (a[i] - e[i]).abs();
            if worst.is_none_or(|(_, w)| err > w || err.is_nan()) {
                worst = Some((i, err));
            }
        }
    }
    match worst {
        None => Ok(()),
        Some((i, _)) => Err(format!(
            "element {i}: {}, expected {} (rtol {RTOL}, atol {ATOL})",
            a[i], e[i]
        )),
    }
}

/// Where the shared test data lives: `$SPARSEC_SHARED`, else `../shared` from the current
/// directory, else `../shared` from the workspace root.
pub fn shared_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("SPARSEC_SHARED") {
        return PathBuf::from(p);
    }
    let cwd = PathBuf::from("../shared");
    if cwd.is_dir() {
        return cwd;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared")
}
