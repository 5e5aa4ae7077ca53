//! Runs the ONNX backend conformance cases through import and the reference interpreter.
//!
//! `cargo run --release --example conformance -- [DIR] [--filter SUBSTR] [--failures]
//! [--write-passing FILE] [--engine interp|jit]`; DIR defaults to `$SPARSEC_SHARED/onnx-backend-tests` (`../shared/...`).
//! Prints a table per folder and ends with `conformance: P passed, F failed, U unsupported`.

use sparsec::conformance::{discover, run_case_with, shared_dir, EngineKind, Outcome, FOLDERS};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    std::panic::set_hook(Box::new(|_| {}));
    let mut dir: Option<PathBuf> = None;
    let mut filter: Option<String> = None;
    let mut show_failures = false;
    let mut show_unsupported = false;
    let mut write_passing: Option<PathBuf> = None;
    let mut engine = EngineKind::Interp;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--filter" => filter = args.next(),
            "--failures" => show_failures = true,
            "--unsupported" => show_unsupported = true,
            "--write-passing" => write_passing = args.next().map(PathBuf::from),
            "--engine" => match args.next().as_deref() {
                Some("interp") => engine = EngineKind::Interp,
                Some("jit") => engine = EngineKind::Jit,
                other => {
                    eprintln!("error: --engine takes `interp` or `jit`, got {other:?}");
                    return ExitCode::FAILURE;
                }
            },
            "-h" | "--help" => {
                println!(
                    "usage: conformance [DIR] [--filter SUBSTR] [--failures] [--unsupported] [--write-passing FILE] [--engine interp|jit]"
                );
                return ExitCode::SUCCESS;
            }
            _ => dir = Some(PathBuf::from(a)),
        }
    }
    let dir = dir.unwrap_or_else(|| shared_dir().join("onnx-backend-tests"));
    if !dir.is_dir() {
        eprintln!(
            "error: {} is not a folder (pass DIR or set SPARSEC_SHARED)",
            dir.display()
        );
        return ExitCode::FAILURE;
    }
    let cases: Vec<_> = discover(&dir)
        .into_iter()
        .filter(|c| filter.as_ref().is_none_or(|f| c.id().contains(f.as_str())))
        .collect();
    let mut per_folder: BTreeMap<&str, [usize; 3]> = BTreeMap::new();
    let mut passing = Vec::new();
    let start = Instant::now();
    for case in &cases {
        let t = Instant::now();
        let outcome = run_case_with(case, engine);
        let folder = FOLDERS
            .iter()
            .find(|f| **f == case.folder)
            .copied()
            .unwrap_or("other");
        let slot = per_folder.entry(folder).or_default();
        match &outcome {
            Outcome::Pass => {
                slot[0] += 1;
                passing.push(case.id());
            }
            Outcome::Fail(why) => {
                slot[1] += 1;
                if show_failures {
                    println!(
                        "FAIL {} ({:.1}s): {why}",
                        case.id(),
                        t.elapsed().as_secs_f64()
                    );
                }
            }
            Outcome::Unsupported(why) => {
                slot[2] += 1;
                if show_unsupported {
                    println!("UNSUPPORTED {}: {why}", case.id());
                }
            }
        }
    }
    println!(
        "\n{:<20} {:>7} {:>7} {:>12}",
        "folder", "passed", "failed", "unsupported"
    );
    let mut total = [0usize; 3];
    for folder in FOLDERS {
        if let Some(c) = per_folder.get(folder) {
            println!("{:<20} {:>7} {:>7} {:>12}", folder, c[0], c[1], c[2]);
            for i in 0..3 {
                total[i] += c[i];
            }
        }
    }
    println!(
        "({} cases in {:.1}s)",
        cases.len(),
        start.elapsed().as_secs_f64()
    );
    if let Some(path) = write_passing {
        let mut text = String::from("# ONNX backend cases expected to pass (folder/case), written by the conformance runner\n");
        for id in &passing {
            text.push_str(id);
            text.push('\n');
        }
        if let Err(e) = std::fs::write(&path, text) {
            eprintln!("error: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    println!(
        "conformance: {} passed, {} failed, {} unsupported",
        total[0], total[1], total[2]
    );
    ExitCode::SUCCESS
}
