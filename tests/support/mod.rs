//! Helpers shared by the integration tests: locating `../shared`, running the `sparsec` binary.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The shared data folder (`$SPARSEC_SHARED`, default `../shared` beside the repository), or
/// `None` after printing a skip note when it is absent.
pub fn shared(test: &str) -> Option<PathBuf> {
    let dir = sparsec::conformance::shared_dir();
    if dir.is_dir() {
        Some(dir)
    } else {
        // Written to stderr directly so the test harness's capture does not hide it.
        let _ = writeln!(
            std::io::stderr(),
            "note: skipping {test}: shared data not found at {} (set SPARSEC_SHARED)",
            dir.display()
        );
        None
    }
}

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs the `sparsec` binary with `args`.
pub fn sparsec(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sparsec"))
        .args(args)
        .output()
        .expect("the sparsec binary runs")
}

/// Runs the `sparsec` binary with `args` and the environment variables `env` set.
pub fn sparsec_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sparsec"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("the sparsec binary runs")
}

/// A fresh empty temporary folder for one test.
pub fn temp_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sparsec-test-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}
