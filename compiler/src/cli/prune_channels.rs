//! `sparsec prune --method channels`: structured output-channel pruning written back as ONNX.
//!
//! Imports the model, runs `prune-channels` (which follows each pruned channel through
//! BatchNormalization, activations, pools, residual adds, Concat and Flatten/Reshape into the
//! consumers and removes the matching slices), then writes the user's `ModelProto` with every
//! sliced tensor replaced by its smaller version (`onnx::export::replace_tensor`), the Reshape
//! shape constants the pass rewrote, and no stale `value_info`. Channels are scored on the model's
//! own weights: BatchNormalization is not folded first, as the output keeps it.

use super::prune::PruneRequest;
use anyhow::{bail, Context, Result};
use sparsec::onnx::export::{
    clear_value_info, has_tensor, read_model, replace_tensor, write_model,
};
use sparsec::onnx::{import_file, ImportOptions};
use sparsec::passes::{
    channel_report, parse_channel_overrides, parse_sparsity, prune_channels, ChannelMode,
    ChannelNorm, ChannelOptions,
};
use sparsec_ir::{Graph, Op, ValueDef, ValueId};
use std::collections::BTreeSet;

/// The suffix `prune-channels` gives a weight it sliced.
const SLICED: &str = "_pruned";

/// The pass options from the flags.
pub(super) fn options(r: &PruneRequest) -> Result<ChannelOptions> {
    if r.scope.is_some() || r.pattern.is_some() {
        bail!("--scope and --pattern do not apply to --method channels");
    }
    let mut o = ChannelOptions::default();
    if let Some(s) = &r.sparsity {
        o.fraction = parse_sparsity(s).map_err(|e| anyhow::anyhow!("--sparsity: {e}"))?;
    }
    if let Some(n) = &r.norm {
        o.norm = ChannelNorm::parse(n).map_err(|e| anyhow::anyhow!("--norm: {e}"))?;
    }
    if let Some(s) = &r.layer_sparsity {
        o.overrides =
            parse_channel_overrides(s).map_err(|e| anyhow::anyhow!("--layer-sparsity: {e}"))?;
    }
    if r.all_layers {
        o.keep_first = false;
        o.keep_last = false;
        o.min_params = 0;
    }
    Ok(o)
}

/// Runs `sparsec prune --method channels` (the caller has checked the output path).
pub fn prune(r: &PruneRequest) -> Result<()> {
    let opts = options(r)?;
    let import = ImportOptions {
        dims: r.dims.clone(),
        ..ImportOptions::default()
    };
    let mut graph = import_file(&r.model, &import)
        .with_context(|| format!("cannot import {}", r.model.display()))?;
    let before = graph.clone();
    let units = prune_channels(&mut graph, &opts, ChannelMode::Remove)?;
    let report = channel_report(&before, &graph);
    let mut model = read_model(&r.model)?;
    let replaced = write_back(&before, &graph, &mut model)?;
    clear_value_info(&mut model);
    write_model(&model, &r.output)?;
    println!(
        "prune-channels: {} of output channels per layer by {} norm",
        opts.fraction, opts.norm
    );
    for u in &units {
        println!(
            "  {}: {} -> {} channels",
            u.layers.join(" + "),
            u.channels,
            u.kept.len()
        );
    }
    println!("{report}; {replaced} tensors rewritten");
    println!("wrote {}", r.output.display());
    Ok(())
}

/// The weights the graph's nodes read.
fn read_weights(graph: &Graph) -> BTreeSet<ValueId> {
    graph
        .node_ids()
        .into_iter()
        .flat_map(|n| graph.node(n).inputs.clone())
        .flatten()
        .filter(|&v| matches!(graph.value(v).def, ValueDef::Weight(_)))
        .collect()
}

/// Replaces each sliced tensor (and each rewritten Reshape shape) of `model`; returns how many.
fn write_back(
    before: &Graph,
    graph: &Graph,
    model: &mut onnx_protobuf::ModelProto,
) -> Result<usize> {
    let read = read_weights(graph);
    let names: BTreeSet<&str> = read.iter().map(|&v| graph.value(v).name.as_str()).collect();
    let mut replaced = 0;
    for &v in &read {
        let name = &graph.value(v).name;
        let Some(base) = name.strip_suffix(SLICED) else {
            continue;
        };
        if names.contains(base) {
            bail!("tensor `{base}` is read both sliced and whole after channel pruning; the model cannot be written back");
        }
        let data = graph
            .const_data(v)
            .with_context(|| format!("tensor `{name}` has no data"))?;
        if !has_tensor(model, base) {
            bail!("tensor `{base}` was computed at import, not stored in the model, so its pruned form cannot be written back");
        }
        replace_tensor(model, base, data)?;
        replaced += 1;
    }
    // Reshape shapes the pass rewrote keep their names: replace those that changed.
    let old: std::collections::BTreeMap<String, &sparsec_ir::Tensor> = read_weights(before)
        .into_iter()
        .filter_map(|v| Some((before.value(v).name.clone(), before.const_data(v)?)))
        .collect();
    for n in graph.node_ids() {
        if !matches!(graph.node(n).op, Op::Reshape { .. }) {
            continue;
        }
        let Some(Some(v)) = graph.node(n).inputs.get(1).copied() else {
            continue;
        };
        let name = graph.value(v).name.clone();
        if let Some(data) = graph.const_data(v) {
            if old.get(&name).is_some_and(|t| *t != data) && has_tensor(model, &name) {
                replace_tensor(model, &name, data)?;
                replaced += 1;
            }
        }
    }
    Ok(replaced)
}
