//! `sparsec compile MODEL.onnx -o OUT.spx`: import, optionally prune (the flags of `sparsec
//! prune`), run a pass pipeline and write the graph and its weights as a `.spx` file.
//!
//! Pruning follows `sparsec prune`: BatchNormalization is folded first and then `prune-magnitude`
//! or `prune-nm` runs (or `prune-channels` on the model's own weights); the pass list of
//! `--passes` (the default pipeline unless given) runs after it. No pruning flag, no pruning.
//! The layout plan of the result (`codegen::layout`) is recorded as the file's layer notes and,
//! with `--explain`, printed one line per layer.

use super::prune::{same_file, PruneFlags};
use crate::{parse_dims, DimArgs};
use anyhow::{bail, Context, Result};
use sparsec::codegen::layout::{plan_layouts, CostTable};
use sparsec::onnx::{import_file, ImportOptions};
use sparsec::passes::{
    parse_pipeline, prune_channels, run_pipeline_with, ChannelMode, PassContext, RunOptions,
};
use sparsec::spx::LayerNote;
use std::path::PathBuf;

/// The flags of `sparsec compile`.
#[derive(clap::Args)]
pub struct CompileArgs {
    /// The ONNX model.
    model: PathBuf,
    /// The `.spx` file to write (never the input; written to a temporary file, then renamed).
    #[arg(short = 'o', long, value_name = "OUT.spx")]
    output: PathBuf,
    /// Comma-separated passes run after pruning (`default` is the default pipeline).
    #[arg(long, default_value = "default")]
    passes: String,
    /// Print the layout chosen for every layer and why (the cost model's estimate against dense;
    /// symbolic dims count as 1 unless bound with --dim). The choices are also recorded in the
    /// `.spx` file.
    #[arg(long)]
    explain: bool,
    #[command(flatten)]
    prune: PruneFlags,
    #[command(flatten)]
    dims: DimArgs,
}

/// Runs `sparsec compile`.
pub fn compile(a: CompileArgs) -> Result<()> {
    if same_file(&a.model, &a.output) {
        bail!(
            "-o {}: refusing to overwrite the input model",
            a.output.display()
        );
    }
    if matches!(sparsec::spx::is_spx(&a.model), Ok(true)) {
        bail!(
            "{}: already a .spx file; compile reads an ONNX model",
            a.model.display()
        );
    }
    let pipeline = parse_pipeline(&a.passes).context("--passes")?;
    let dims = parse_dims(&a.dims)?;
    let opts = ImportOptions {
        dims: dims.clone(),
        ..ImportOptions::default()
    };
    let mut graph = import_file(&a.model, &opts)
        .with_context(|| format!("cannot import {}", a.model.display()))?;
    let mut cx = PassContext::default();
    let run_opts = RunOptions {
        verify: cfg!(debug_assertions),
        ..RunOptions::default()
    };
    if a.prune.any() {
        let r = a.prune.request(a.model.clone(), a.output.clone(), dims);
        if r.method == "channels" {
            let o = super::prune_channels::options(&r)?;
            let units = prune_channels(&mut graph, &o, ChannelMode::Remove)?;
            println!(
                "prune-channels: {} of output channels per layer by {} norm, {} units",
                o.fraction,
                o.norm,
                units.len()
            );
        } else {
            if r.norm.is_some() {
                bail!("--norm applies to --method channels only");
            }
            let (pass, o) = super::prune::options(&r)?;
            cx.prune = o;
            run_pipeline_with(
                &mut graph,
                &["fold-batchnorm", "fold-channel-affine", pass],
                &run_opts,
                &mut cx,
            )?;
            print!("{}", super::prune::summary(&graph, &cx, None));
        }
    }
    run_pipeline_with(&mut graph, &pipeline, &run_opts, &mut cx)?;
    let plan = plan_layouts(&graph, &CostTable::load_or_builtin());
    if a.explain {
        print!("{}", plan.explain());
    }
    let notes: Vec<LayerNote> = plan
        .layers
        .iter()
        .map(|c| LayerNote {
            node: c.desc.node.clone(),
            layout: c.layout.to_string(),
            reason: format!("n={}, {}", c.desc.n, c.reason),
        })
        .collect();
    let s = sparsec::spx::write(&graph, &notes, &a.output)?;
    println!(
        "wrote {} ({} bytes; {} weights dense, {} as CSR)",
        a.output.display(),
        s.file_bytes,
        s.dense_weights,
        s.csr_weights
    );
    Ok(())
}
