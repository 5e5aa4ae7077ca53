//! The pass manager: a plain table of named passes, named pipelines, and a runner that can print
//! the IR after a pass, stop after a pass, verify after each pass and time each one.
//!
//! Each pass lives in its own file and is a function `fn(&mut Graph, &mut PassContext) ->
//! Result<bool, PassError>` returning whether it changed the graph.

mod channel_graph;
#[cfg(test)]
pub(crate) mod channel_test_util;
mod dce;
mod fold_affine;
mod fold_batchnorm;
mod fold_constants;
mod infer_shapes;
mod propagate_sparsity;
mod prune_channels;
mod prune_magnitude;
mod prune_nm;
mod prune_policy;
#[cfg(test)]
mod prune_test_util;

pub use fold_constants::{const_results, fold_node};
pub use infer_shapes::infer_node;
pub use propagate_sparsity::propagate_sparsity;
pub use prune_channels::{
    channel_report, parse_channel_overrides, prune_channels, ChannelMode, ChannelNorm,
    ChannelOptions, ChannelOverride, ChannelReport, PrunedUnit,
};
pub use prune_policy::{
    glob_match, parse_layer_sparsity, parse_sparsity, root_weight, LayerOverride, NmPattern,
    PruneOptions, PrunePolicy, PruneScope, PrunedLayer, NM_PATTERNS,
};

use sparsec_ir::{Graph, ValueId};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use thiserror::Error;

/// Why a pass failed.
#[derive(Debug, Error)]
pub enum PassError {
    /// The pass name is not in the table.
    #[error("unknown pass `{0}` (known passes: {known})", known = pass_names().join(", "))]
    UnknownPass(String),
    /// A pass failed on a node.
    #[error("pass `{pass}`: {message}")]
    Failed {
        /// The pass.
        pass: &'static str,
        /// What went wrong, naming the node.
        message: String,
    },
    /// The graph failed verification after a pass.
    #[error("IR verification failed after pass `{pass}`:\n{errors}")]
    Verify {
        /// The pass after which the graph was checked.
        pass: &'static str,
        /// One located error per line.
        errors: String,
    },
}

/// State shared by the passes of one pipeline run.
#[derive(Debug, Default)]
pub struct PassContext {
    /// Log lines passes want the user to see (what they did, per layer).
    pub notes: Vec<String>,
    /// Options of the pruning passes.
    pub prune: PruneOptions,
    /// Provenance of weights passes created: new weight -> the weight it was computed from, when
    /// the two have zeros at the same positions (a per-output-channel rescale, or pruning). An
    /// exporter follows it back to the model's own initializer ([`root_weight`]).
    pub derived_from: BTreeMap<ValueId, ValueId>,
    /// What the pruning passes did, one entry per prunable layer they considered.
    pub pruned: Vec<PrunedLayer>,
    /// Options of `prune-channels`.
    pub channels: ChannelOptions,
}

/// A registered pass.
#[derive(Clone, Copy)]
pub struct PassInfo {
    /// The name used by `--passes` and `--print-after`.
    pub name: &'static str,
    /// One line for `--help` and docs.
    pub description: &'static str,
    /// The pass itself.
    pub run: fn(&mut Graph, &mut PassContext) -> Result<bool, PassError>,
}

/// Every pass, in the order of the default pipeline where they appear in it.
pub const PASSES: &[PassInfo] = &[
    PassInfo {
        name: "infer-shapes",
        description: "recompute every result type from the operand types and constant operands",
        run: infer_shapes::run,
    },
    PassInfo {
        name: "fold-constants",
        description: "evaluate nodes whose operands are all constants (and Shape/Size of static types) into weights",
        run: fold_constants::run,
    },
    PassInfo {
        name: "fold-batchnorm",
        description: "fold an inference BatchNormalization into the Conv or constant-weight Gemm feeding it",
        run: fold_batchnorm::run,
    },
    PassInfo {
        name: "fold-channel-affine",
        description: "fold a Mul or Add of a per-output-channel constant into the Conv feeding it",
        run: fold_affine::run,
    },
    PassInfo {
        name: "prune-magnitude",
        description: "zero the smallest-magnitude weights of Conv/Gemm/MatMul layers (global or per-layer target; not in the default pipeline)",
        run: prune_magnitude::run,
    },
    PassInfo {
        name: "prune-nm",
        description: "keep the N largest of every M consecutive weights along the reduction dimension (2:4 default; not in the default pipeline)",
        run: prune_nm::run,
    },
    PassInfo {
        name: "prune-channels",
        description: "remove the lowest-norm output channels of Conv/Gemm/MatMul layers and the matching input channels of their consumers",
        run: prune_channels::run,
    },
    PassInfo {
        name: "propagate-sparsity",
        description: "fold all-zero output channels into consumers as constants and remove channels no nonzero weight reads",
        run: propagate_sparsity::run,
    },
    PassInfo {
        name: "dce",
        description: "remove nodes whose results reach no graph output",
        run: dce::run,
    },
];

/// The names of every pass.
pub fn pass_names() -> Vec<&'static str> {
    PASSES.iter().map(|p| p.name).collect()
}

/// Looks a pass up by name.
pub fn find_pass(name: &str) -> Result<PassInfo, PassError> {
    PASSES
        .iter()
        .copied()
        .find(|p| p.name == name)
        .ok_or_else(|| PassError::UnknownPass(name.to_string()))
}

/// The default pipeline run after import.
pub fn default_pipeline() -> Vec<&'static str> {
    vec![
        "infer-shapes",
        "fold-constants",
        "fold-batchnorm",
        "fold-channel-affine",
        "dce",
    ]
}

/// Parses a comma-separated pass list (`default` expands to the default pipeline).
pub fn parse_pipeline(list: &str) -> Result<Vec<&'static str>, PassError> {
    let mut out = Vec::new();
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if name == "default" {
            out.extend(default_pipeline());
        } else {
            out.push(find_pass(name)?.name);
        }
    }
    Ok(out)
}

/// How to run a pipeline.
#[derive(Debug, Default, Clone)]
pub struct RunOptions {
    /// Print the IR after each pass of this name (to the returned dumps).
    pub print_after: Option<String>,
    /// Stop after the first pass of this name.
    pub stop_after: Option<String>,
    /// Verify the graph after every pass.
    pub verify: bool,
}

/// What a pipeline run did.
#[derive(Debug, Default)]
pub struct RunReport {
    /// `(pass, changed, time)` for every pass that ran.
    pub timings: Vec<(&'static str, bool, Duration)>,
    /// `(pass, IR text)` for every `print_after` match.
    pub dumps: Vec<(&'static str, String)>,
    /// Notes the passes left.
    pub notes: Vec<String>,
}

impl RunReport {
    /// A timing table, one pass per line.
    pub fn timing_table(&self) -> String {
        let mut s = String::from("pass               changed   time\n");
        for (name, changed, t) in &self.timings {
            s.push_str(&format!(
                "{name:<18} {:<8} {:>8.3} ms\n",
                if *changed { "yes" } else { "no" },
                t.as_secs_f64() * 1e3
            ));
        }
        s
    }
}

/// Runs `pipeline` over `graph` with default pass options.
pub fn run_pipeline(
    graph: &mut Graph,
    pipeline: &[&str],
    opts: &RunOptions,
) -> Result<RunReport, PassError> {
    run_pipeline_with(graph, pipeline, opts, &mut PassContext::default())
}

/// Runs `pipeline` over `graph` in the context `cx` (its options, e.g. `cx.prune`, are read by the
/// passes; what they record stays in it, except the notes, which move to the report).
pub fn run_pipeline_with(
    graph: &mut Graph,
    pipeline: &[&str],
    opts: &RunOptions,
    cx: &mut PassContext,
) -> Result<RunReport, PassError> {
    let mut report = RunReport::default();
    for name in pipeline {
        let pass = find_pass(name)?;
        let start = Instant::now();
        let changed = (pass.run)(graph, cx)?;
        report.timings.push((pass.name, changed, start.elapsed()));
        if opts.verify {
            if let Err(errors) = sparsec_ir::verify(graph) {
                let errors: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
                return Err(PassError::Verify {
                    pass: pass.name,
                    errors: errors.join("\n"),
                });
            }
        }
        if opts.print_after.as_deref() == Some(pass.name) {
            report.dumps.push((pass.name, sparsec_ir::print(graph)));
        }
        if opts.stop_after.as_deref() == Some(pass.name) {
            break;
        }
    }
    report.notes = std::mem::take(&mut cx.notes);
    Ok(report)
}
