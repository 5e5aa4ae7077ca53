//! `sparsec tune`: measures the dense and sparse kernels on this machine and writes the cost
//! table the layout selection reads (to `-o PATH`, else where it is looked up:
//! `$SPARSEC_TUNE`, `$XDG_CACHE_HOME/sparsec/tune.json` or `~/.cache/sparsec/tune.json`).

use anyhow::{Context, Result};
use sparsec::codegen::layout::table::CostTable;
use sparsec::codegen::layout::tune::{tune as run_tune, TuneOptions};
use std::path::PathBuf;
use std::time::Instant;

/// Runs the micro-benchmarks, prints progress and the fitted numbers, and writes the table.
pub fn tune(output: Option<PathBuf>, quick: bool) -> Result<()> {
    let path = match output {
        Some(p) => p,
        None => CostTable::default_path()
            .context("no place for the cost table: set SPARSEC_TUNE or HOME, or pass -o")?,
    };
    let t0 = Instant::now();
    println!(
        "measuring kernels ({}, one thread)...",
        if quick { "quick" } else { "full" }
    );
    let table = run_tune(TuneOptions { quick }, &mut |line| println!("  {line}"))
        .context("tuning failed")?;
    table
        .write(&path)
        .with_context(|| format!("cannot write the cost table {}", path.display()))?;
    println!(
        "wrote {} in {:.1} s",
        path.display(),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}
