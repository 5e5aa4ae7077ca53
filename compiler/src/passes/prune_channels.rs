//! `prune-channels`: structured output-channel (filter) pruning that physically removes channels.
//!
//! Each unit of channels (the output channels of one `Conv`/`Gemm`/`MatMul`, or of several joined
//! by a residual `Add`, which share one mask) is scored per channel by the L1 or L2 norm of its
//! filters, summed over the unit's producers, and the lowest-scoring fraction is removed: the
//! producers' weight rows and bias entries, the matching slices of every channel-preserving node
//! on the way (BatchNormalization statistics, added constants, depthwise filters), offsets through
//! `Concat`, `H * W` feature groups through `Flatten`/`Reshape`, and the input channels of every
//! consuming weight. Channels whose readers cannot be adjusted are kept (see `channel_graph`).
//!
//! The per-layer fraction follows the policy of unstructured pruning: the first and last
//! weight-bearing layers and layers with fewer than `min_params` weights keep their channels;
//! overrides by node-name pattern win over it. A unit gets the smallest fraction of its producers.

use super::channel_graph::{f32_const, ChannelPlan};
use super::{PassContext, PassError};
use crate::inspect::inspect;
use sparsec_ir::{Graph, NodeId, Op};
use std::collections::HashMap;
use std::fmt;

/// How a channel's filters are scored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ChannelNorm {
    /// Sum of absolute values.
    #[default]
    L1,
    /// Square root of the sum of squares.
    L2,
}

impl ChannelNorm {
    /// Parses `l1` or `l2` (any case).
    pub fn parse(s: &str) -> Result<ChannelNorm, String> {
        match s.to_ascii_lowercase().as_str() {
            "l1" => Ok(ChannelNorm::L1),
            "l2" => Ok(ChannelNorm::L2),
            _ => Err(format!("unknown channel norm `{s}` (expected l1 or l2)")),
        }
    }
}

impl fmt::Display for ChannelNorm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ChannelNorm::L1 => "L1",
            ChannelNorm::L2 => "L2",
        })
    }
}

/// A per-layer override: layers whose node name matches `pattern` lose `fraction` of their
/// output channels (0 keeps them all).
#[derive(Clone, Debug, PartialEq)]
pub struct ChannelOverride {
    /// A name pattern where `*` matches any run of characters; it must match the whole name.
    pub pattern: String,
    /// The fraction of channels to remove, in `[0, 1]`.
    pub fraction: f64,
}

/// Parses a comma-separated override list such as `conv1=0,layer4.*=0.25`.
pub fn parse_channel_overrides(s: &str) -> Result<Vec<ChannelOverride>, String> {
    let mut out = Vec::new();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (pattern, value) = item
            .rsplit_once('=')
            .ok_or_else(|| format!("layer override `{item}`: expected NAME=FRACTION"))?;
        let fraction = match value.trim().parse::<f64>() {
            Ok(v) if (0.0..=1.0).contains(&v) => v,
            _ => {
                return Err(format!(
                    "layer override `{item}`: `{value}` is not a number in [0, 1]"
                ))
            }
        };
        if pattern.trim().is_empty() {
            return Err(format!("layer override `{item}`: empty name pattern"));
        }
        out.push(ChannelOverride {
            pattern: pattern.trim().to_string(),
            fraction,
        });
    }
    Ok(out)
}

/// Options of `prune-channels` (in `PassContext::channels`).
#[derive(Clone, Debug, PartialEq)]
pub struct ChannelOptions {
    /// Fraction of output channels removed per layer, in `[0, 1]`.
    pub fraction: f64,
    /// How channels are scored.
    pub norm: ChannelNorm,
    /// Per-layer overrides; the first matching one wins over the policy.
    pub overrides: Vec<ChannelOverride>,
    /// Keep the channels of the first weight-bearing layer (in topological order).
    pub keep_first: bool,
    /// Keep the channels of the last weight-bearing layer.
    pub keep_last: bool,
    /// Keep the channels of layers whose weight has fewer elements than this.
    pub min_params: usize,
}

impl Default for ChannelOptions {
    fn default() -> ChannelOptions {
        ChannelOptions {
            fraction: 0.5,
            norm: ChannelNorm::L1,
            overrides: Vec::new(),
            keep_first: true,
            keep_last: true,
            min_params: 4096,
        }
    }
}

/// Whether pruned channels are removed or only zeroed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelMode {
    /// Remove the channels: weights, biases and every consumer's slices shrink.
    Remove,
    /// Zero the pruned channels' filters, biases and consumer slices, keeping every shape (the
    /// graph the removal must agree with).
    Zero,
}

/// One pruned unit of channels.
#[derive(Clone, Debug, PartialEq)]
pub struct PrunedUnit {
    /// The producers' node names.
    pub layers: Vec<String>,
    /// Channels before pruning.
    pub channels: usize,
    /// Indices of the kept channels, ascending.
    pub kept: Vec<usize>,
}

/// Parameter count and MACs before and after a rewrite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelReport {
    /// Weight elements before.
    pub params_before: usize,
    /// Weight elements after.
    pub params_after: usize,
    /// Multiply-accumulates of the weight-bearing nodes before (symbolic dims taken as 1).
    pub macs_before: u64,
    /// Multiply-accumulates after.
    pub macs_after: u64,
}

impl fmt::Display for ChannelReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pct = |a: f64, b: f64| if b > 0.0 { 100.0 * a / b } else { 100.0 };
        write!(
            f,
            "parameters {} -> {} ({:.1}%), MACs {} -> {} ({:.1}%)",
            self.params_before,
            self.params_after,
            pct(self.params_after as f64, self.params_before as f64),
            self.macs_before,
            self.macs_after,
            pct(self.macs_after as f64, self.macs_before as f64)
        )
    }
}

/// Compares parameter counts and dense MACs of two graphs (the model before and after pruning).
pub fn channel_report(before: &Graph, after: &Graph) -> ChannelReport {
    let (b, a) = (inspect(before), inspect(after));
    ChannelReport {
        params_before: b.total_params,
        params_after: a.total_params,
        macs_before: b.macs_dense,
        macs_after: a.macs_dense,
    }
}

/// Runs the pass with `cx.channels`.
pub(super) fn run(graph: &mut Graph, cx: &mut PassContext) -> Result<bool, PassError> {
    let opts = cx.channels.clone();
    let before = inspect(graph);
    let units = prune_channels(graph, &opts, ChannelMode::Remove)?;
    for u in &units {
        cx.notes.push(format!(
            "prune-channels: {}: kept {} of {} channels ({})",
            u.layers
                .iter()
                .map(|l| format!("`{l}`"))
                .collect::<Vec<_>>()
                .join(" + "),
            u.kept.len(),
            u.channels,
            opts.norm
        ));
    }
    let after = inspect(graph);
    let report = ChannelReport {
        params_before: before.total_params,
        params_after: after.total_params,
        macs_before: before.macs_dense,
        macs_after: after.macs_dense,
    };
    cx.notes.push(format!("prune-channels: {report}"));
    Ok(!units.is_empty())
}

fn failed(message: String) -> PassError {
    PassError::Failed {
        pass: "prune-channels",
        message,
    }
}

/// Prunes output channels of `graph` by `opts`; returns the units that lost channels. The graph's
/// types must be inferred; afterwards they are re-inferred and the graph verifies.
pub fn prune_channels(
    graph: &mut Graph,
    opts: &ChannelOptions,
    mode: ChannelMode,
) -> Result<Vec<PrunedUnit>, PassError> {
    let fractions = std::iter::once(opts.fraction).chain(opts.overrides.iter().map(|o| o.fraction));
    for f in fractions {
        if !(0.0..=1.0).contains(&f) {
            return Err(failed(format!("channel fraction {f} is not in [0, 1]")));
        }
    }
    let plan = ChannelPlan::analyze(graph);
    let layers = weight_layers(graph);
    let mut masks = HashMap::new();
    let mut units = Vec::new();
    for (root, members) in plan.units() {
        let channels = plan.space_len(root);
        let fraction = members
            .iter()
            .map(|&p| layer_fraction(graph, plan.producers[p].node, &layers, opts))
            .fold(1.0f64, f64::min);
        let drop = ((fraction * channels as f64 + 1e-9).floor() as usize).min(channels - 1);
        if drop == 0 {
            continue;
        }
        let mut score = vec![0.0f64; channels];
        for &p in &members {
            let pr = &plan.producers[p];
            let w = f32_const(graph, graph.node(pr.node).inputs[pr.operand]).ok_or_else(|| {
                failed(format!(
                    "node `{}`: weight is not an f32 constant",
                    graph.node(pr.node).name
                ))
            })?;
            for (s, x) in score.iter_mut().zip(channel_norms(w, pr.axis, opts.norm)) {
                *s += x;
            }
        }
        let mut order: Vec<usize> = (0..channels).collect();
        order.sort_by(|&a, &b| score[a].total_cmp(&score[b]).then(a.cmp(&b)));
        let mut keep = vec![true; channels];
        for &c in &order[..drop] {
            keep[c] = false;
        }
        units.push(PrunedUnit {
            layers: members
                .iter()
                .map(|&p| graph.node(plan.producers[p].node).name.clone())
                .collect(),
            channels,
            kept: (0..channels).filter(|&c| keep[c]).collect(),
        });
        masks.insert(root, keep);
    }
    plan.apply(graph, &masks, mode == ChannelMode::Zero)
        .map_err(failed)?;
    if let Err(errors) = sparsec_ir::verify(graph) {
        let errors: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        return Err(failed(format!(
            "the pruned graph does not verify: {}",
            errors.join("; ")
        )));
    }
    Ok(units)
}

/// Weight-bearing nodes (a Conv, Gemm or MatMul with an f32 constant operand of rank >= 2) in
/// topological order, with their weight's element count.
fn weight_layers(graph: &Graph) -> Vec<(NodeId, usize)> {
    graph
        .topo_order()
        .into_iter()
        .filter_map(|n| {
            let node = graph.node(n);
            if !matches!(node.op, Op::Conv { .. } | Op::Gemm { .. } | Op::MatMul {}) {
                return None;
            }
            node.inputs
                .iter()
                .take(2)
                .filter_map(|&v| f32_const(graph, v))
                .find(|t| t.rank() >= 2)
                .map(|t| (n, t.numel()))
        })
        .collect()
}

/// The fraction of channels node `n` may lose: an override, else the policy.
fn layer_fraction(
    graph: &Graph,
    n: NodeId,
    layers: &[(NodeId, usize)],
    opts: &ChannelOptions,
) -> f64 {
    let name = &graph.node(n).name;
    if let Some(o) = opts.overrides.iter().find(|o| glob(&o.pattern, name)) {
        return o.fraction;
    }
    let pos = layers.iter().position(|&(l, _)| l == n);
    let numel = pos.map_or(0, |i| layers[i].1);
    let first = pos == Some(0);
    let last = pos.is_some() && pos == layers.len().checked_sub(1);
    if (opts.keep_first && first) || (opts.keep_last && last) || numel < opts.min_params {
        0.0
    } else {
        opts.fraction
    }
}

/// True when `name` matches `pattern` as a whole, `*` matching any run of characters.
fn glob(pattern: &str, name: &str) -> bool {
    let (p, s): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    // match_at[j]: the pattern prefix seen so far matches s[..j].
    let mut m = vec![false; s.len() + 1];
    m[0] = true;
    for &pc in &p {
        let mut next = vec![false; s.len() + 1];
        if pc == '*' {
            let mut any = false;
            for j in 0..=s.len() {
                any |= m[j];
                next[j] = any;
            }
        } else {
            for j in 0..s.len() {
                next[j + 1] = m[j] && s[j] == pc;
            }
        }
        m = next;
    }
    m[s.len()]
}

/// The norm of every slice of `w` along `axis`.
fn channel_norms(w: &sparsec_ir::Tensor, axis: usize, norm: ChannelNorm) -> Vec<f64> {
    let shape = w.shape();
    let (outer, len, inner): (usize, usize, usize) = (
        shape[..axis].iter().product(),
        shape[axis],
        shape[axis + 1..].iter().product(),
    );
    let d = w.to_f32_vec();
    let mut acc = vec![0.0f64; len];
    for o in 0..outer {
        for (c, a) in acc.iter_mut().enumerate() {
            let at = (o * len + c) * inner;
            for &x in &d[at..at + inner] {
                let x = x as f64;
                *a += match norm {
                    ChannelNorm::L1 => x.abs(),
                    ChannelNorm::L2 => x * x,
                };
            }
        }
    }
    if norm == ChannelNorm::L2 {
        acc.iter_mut().for_each(|a| *a = a.sqrt());
    }
    acc
}

#[cfg(test)]
#[path = "prune_channels_tests.rs"]
mod tests;
