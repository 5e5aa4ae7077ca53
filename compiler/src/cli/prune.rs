//! `sparsec prune`: prune a model's weights and write it back as ONNX.
//!
//! Imports the model, folds BatchNormalization (so magnitudes are judged on the weights that will
//! run), runs `prune-magnitude` or `prune-nm` with the options given, then writes the user's own
//! `ModelProto` with the pruned positions zeroed in its original tensors (`onnx::export`), and
//! prints a per-layer summary (name, shape, density before and after, the policy's reason) and
//! totals.

use anyhow::{bail, Context, Result};
use sparsec::onnx::export::{apply_zeros, read_model, write_model, ZeroPatch};
use sparsec::onnx::{import_file, ImportOptions};
use sparsec::passes::{
    parse_layer_sparsity, parse_sparsity, root_weight, run_pipeline_with, NmPattern, PassContext,
    PruneOptions, PrunePolicy, PruneScope, RunOptions,
};
use sparsec_ir::Graph;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The pruning flags, shared by `sparsec prune` and `sparsec compile`.
#[derive(clap::Args, Default)]
pub struct PruneFlags {
    /// `magnitude` (unstructured, smallest |w| first), `nm` (N:M along the reduction dimension)
    /// or `channels` (remove whole output channels by filter norm, and the matching input
    /// channels of every consumer) [default: magnitude].
    #[arg(long)]
    pub method: Option<String>,
    /// Fraction of zeros for `magnitude`, or of output channels removed per layer for
    /// `channels`, in [0, 1] [default: 0.5].
    #[arg(long, value_name = "S")]
    pub sparsity: Option<String>,
    /// `global` (rank all pruned layers' magnitudes together) or `layer` (each layer to the
    /// target) [default: global].
    #[arg(long)]
    pub scope: Option<String>,
    /// The N:M pattern of `nm`: 2:4, 1:4, 2:8 or 4:8 [default: 2:4].
    #[arg(long, value_name = "N:M")]
    pub pattern: Option<String>,
    /// Per-layer sparsity overrides, e.g. `conv1=0,fc.*=0.5` (`*` matches anything; a name is a
    /// node name or a weight name, with or without `.weight`; 0 keeps a layer dense; with `nm`,
    /// any other value applies the pattern).
    #[arg(long, value_name = "NAME=S,...")]
    pub layer_sparsity: Option<String>,
    /// Prune every layer: no first/last/tiny-tensor exemptions.
    #[arg(long)]
    pub all_layers: bool,
    /// How `channels` scores a filter: `l1` or `l2` [default: l1].
    #[arg(long)]
    pub norm: Option<String>,
}

impl PruneFlags {
    /// True when any pruning flag was given.
    pub fn any(&self) -> bool {
        self.method.is_some()
            || self.sparsity.is_some()
            || self.scope.is_some()
            || self.pattern.is_some()
            || self.layer_sparsity.is_some()
            || self.all_layers
            || self.norm.is_some()
    }

    /// The request to prune `model` into `output` with these flags.
    pub fn request(
        self,
        model: PathBuf,
        output: PathBuf,
        dims: BTreeMap<String, usize>,
    ) -> PruneRequest {
        PruneRequest {
            model,
            output,
            method: self.method.unwrap_or_else(|| "magnitude".into()),
            sparsity: self.sparsity,
            scope: self.scope,
            pattern: self.pattern,
            layer_sparsity: self.layer_sparsity,
            all_layers: self.all_layers,
            norm: self.norm,
            dims,
        }
    }
}

/// What to prune and where to write it (flag values as typed, validated here).
pub struct PruneRequest {
    /// The input model.
    pub model: PathBuf,
    /// The output model.
    pub output: PathBuf,
    /// `magnitude` or `nm`.
    pub method: String,
    /// `--sparsity`.
    pub sparsity: Option<String>,
    /// `--scope`.
    pub scope: Option<String>,
    /// `--pattern`.
    pub pattern: Option<String>,
    /// `--layer-sparsity`.
    pub layer_sparsity: Option<String>,
    /// `--all-layers`: no default policy.
    pub all_layers: bool,
    /// `--norm` (channels only): `l1` or `l2`.
    pub norm: Option<String>,
    /// Symbolic dims bound for the import.
    pub dims: BTreeMap<String, usize>,
}

/// The pass and its options from the flags.
pub(super) fn options(r: &PruneRequest) -> Result<(&'static str, PruneOptions)> {
    let mut o = PruneOptions::default();
    let pass = match r.method.as_str() {
        "magnitude" => {
            if r.pattern.is_some() {
                bail!("--pattern applies to --method nm only");
            }
            if let Some(s) = &r.sparsity {
                o.sparsity = parse_sparsity(s).map_err(|e| anyhow::anyhow!("--sparsity: {e}"))?;
            }
            if let Some(s) = &r.scope {
                o.scope = PruneScope::parse(s).map_err(|e| anyhow::anyhow!("--scope: {e}"))?;
            }
            "prune-magnitude"
        }
        "nm" => {
            if r.sparsity.is_some() || r.scope.is_some() {
                bail!("--sparsity and --scope apply to --method magnitude only (N:M fixes the density)");
            }
            if let Some(p) = &r.pattern {
                o.nm = NmPattern::parse(p).map_err(|e| anyhow::anyhow!("--pattern: {e}"))?;
            }
            "prune-nm"
        }
        m => bail!("--method: unknown method `{m}` (expected magnitude, nm or channels)"),
    };
    if let Some(s) = &r.layer_sparsity {
        o.layer_sparsity =
            parse_layer_sparsity(s).map_err(|e| anyhow::anyhow!("--layer-sparsity: {e}"))?;
    }
    if r.all_layers {
        o.policy = PrunePolicy::none();
    }
    Ok((pass, o))
}

/// True when `a` and `b` name the same existing file.
pub(super) fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Runs `sparsec prune`.
pub fn prune(r: PruneRequest) -> Result<()> {
    if same_file(&r.model, &r.output) {
        bail!(
            "-o {}: refusing to overwrite the input model",
            r.output.display()
        );
    }
    if r.method == "channels" {
        return super::prune_channels::prune(&r);
    }
    if r.norm.is_some() {
        bail!("--norm applies to --method channels only");
    }
    let (pass, prune) = options(&r)?;
    let opts = ImportOptions {
        dims: r.dims.clone(),
        ..ImportOptions::default()
    };
    let mut graph = import_file(&r.model, &opts)
        .with_context(|| format!("cannot import {}", r.model.display()))?;
    let mut cx = PassContext {
        prune,
        ..PassContext::default()
    };
    run_pipeline_with(
        &mut graph,
        &["fold-batchnorm", "fold-channel-affine", pass],
        &RunOptions::default(),
        &mut cx,
    )?;
    let names = patch_names(&graph, &cx)?;
    let mut model = read_model(&r.model)?;
    let mut patches = Vec::new();
    for (layer, name) in &names {
        let pruned = graph
            .const_data(layer.after)
            .with_context(|| format!("layer `{}`: the pruned weight has no data", layer.layer))?;
        patches.push(ZeroPatch { name, pruned });
    }
    let zeroed = apply_zeros(&mut model, &patches)?;
    write_model(&model, &r.output)?;
    print!("{}", summary(&graph, &cx, Some(zeroed)));
    println!("wrote {}", r.output.display());
    Ok(())
}

/// The model tensor each pruned layer's weight came from. A source that the graph still reads
/// elsewhere (a weight shared with a layer left dense) cannot be patched without changing that
/// reader too, so it is an error.
fn patch_names<'c>(
    graph: &Graph,
    cx: &'c PassContext,
) -> Result<Vec<(&'c sparsec::passes::PrunedLayer, String)>> {
    let mut out = Vec::new();
    for l in cx.pruned.iter().filter(|l| l.after != l.before) {
        let root = root_weight(cx, l.after);
        let name = graph.value(root).name.clone();
        if let Some(&(n, _)) = graph.users(root).first() {
            bail!(
                "layer `{}`: its weight `{name}` is also read by node `{}`, which was not pruned with it",
                l.layer,
                graph.node(n).name
            );
        }
        out.push((l, name));
    }
    Ok(out)
}

/// The per-layer table and totals (`zeroed`: values zeroed in the written model, if any).
pub(super) fn summary(graph: &Graph, cx: &PassContext, zeroed: Option<usize>) -> String {
    let w = cx
        .pruned
        .iter()
        .map(|l| l.layer.len())
        .max()
        .unwrap_or(0)
        .max(5);
    let mut s = format!(
        "{:<w$} {:<18} {:>9} {:>8} {:>8}  policy\n",
        "layer", "shape", "params", "before", "after"
    );
    let (mut params, mut nnz_before, mut nnz_after) = (0usize, 0usize, 0usize);
    for l in &cx.pruned {
        let (Some(b), Some(a)) = (graph.weight(l.before), graph.weight(l.after)) else {
            continue;
        };
        let shape = format!("{:?}", graph.value(l.before).ty.shape().unwrap_or_default());
        s.push_str(&format!(
            "{:<w$} {:<18} {:>9} {:>8.4} {:>8.4}  {}\n",
            l.layer,
            shape,
            b.facts.numel,
            b.facts.density(),
            a.facts.density(),
            l.reason
        ));
        params += b.facts.numel;
        nnz_before += b.facts.nnz;
        nnz_after += a.facts.nnz;
    }
    let d = |nnz: usize| {
        if params == 0 {
            1.0
        } else {
            nnz as f64 / params as f64
        }
    };
    s.push_str(&format!(
        "total: {} layers, {params} weights, density {:.4} -> {:.4} (sparsity {:.4})",
        cx.pruned.len(),
        d(nnz_before),
        d(nnz_after),
        1.0 - d(nnz_after)
    ));
    match zeroed {
        Some(z) => s.push_str(&format!(", {z} values zeroed in the model\n")),
        None => s.push('\n'),
    }
    s
}
