//! What the pruning passes share: their options ([`PruneOptions`] and its parts, with the text
//! forms the command line uses), the record of what they did ([`PrunedLayer`]), the discovery of
//! prunable weights, and the per-layer policy deciding which of them to prune and how much.
//!
//! A *prunable weight* is an f32 constant operand of a weight-bearing node: the weight of a `Conv`,
//! the constant `B` of a `Gemm` (or its constant `A` when `B` is not constant), the constant operand
//! of a `MatMul`. A weight read by several such nodes is one layer, named after its first reader
//! in topological order. The default policy keeps the first and last layers and tiny tensors dense;
//! per-layer overrides (`NAME=SPARSITY` with a `*` glob) win over it.

use super::{PassContext, PassError};
use sparsec_ir::{Graph, NodeId, Op, Tensor, ValueDef, ValueId};
use std::fmt;

/// How magnitude pruning ranks weights.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PruneScope {
    /// All prunable weights' magnitudes are ranked together against one threshold.
    #[default]
    Global,
    /// Each weight is pruned to the target on its own.
    Layer,
}

impl PruneScope {
    /// Parses `global` or `layer`.
    pub fn parse(s: &str) -> Result<PruneScope, String> {
        match s {
            "global" => Ok(PruneScope::Global),
            "layer" => Ok(PruneScope::Layer),
            _ => Err(format!("unknown scope `{s}` (expected global or layer)")),
        }
    }
}

impl fmt::Display for PruneScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PruneScope::Global => "global",
            PruneScope::Layer => "layer",
        })
    }
}

/// An N:M pattern: at most `n` nonzeros in every group of `m` consecutive elements along the
/// reduction dimension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NmPattern {
    /// Nonzeros kept per group.
    pub n: usize,
    /// Group size.
    pub m: usize,
}

impl Default for NmPattern {
    fn default() -> NmPattern {
        NmPattern { n: 2, m: 4 }
    }
}

/// The N:M patterns `prune-nm` supports.
pub const NM_PATTERNS: [NmPattern; 4] = [
    NmPattern { n: 2, m: 4 },
    NmPattern { n: 1, m: 4 },
    NmPattern { n: 2, m: 8 },
    NmPattern { n: 4, m: 8 },
];

impl NmPattern {
    /// Parses `N:M`, one of [`NM_PATTERNS`].
    pub fn parse(s: &str) -> Result<NmPattern, String> {
        let bad = || {
            let known: Vec<String> = NM_PATTERNS.iter().map(|p| p.to_string()).collect();
            format!(
                "unsupported N:M pattern `{s}` (supported: {})",
                known.join(", ")
            )
        };
        let (n, m) = s.split_once(':').ok_or_else(bad)?;
        let p = NmPattern {
            n: n.trim().parse().map_err(|_| bad())?,
            m: m.trim().parse().map_err(|_| bad())?,
        };
        if NM_PATTERNS.contains(&p) {
            Ok(p)
        } else {
            Err(bad())
        }
    }
}

impl fmt::Display for NmPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.n, self.m)
    }
}

/// One per-layer override: layers matching `pattern` get `sparsity` (0 keeps them dense).
#[derive(Clone, Debug, PartialEq)]
pub struct LayerOverride {
    /// A name pattern where `*` matches any run of characters; it must match the whole name.
    pub pattern: String,
    /// The fraction of zeros for matching layers, in `[0, 1]`.
    pub sparsity: f64,
}

/// Parses a comma-separated override list such as `conv1=0,fc.*=0.5`.
pub fn parse_layer_sparsity(s: &str) -> Result<Vec<LayerOverride>, String> {
    let mut out = Vec::new();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (pattern, value) = item
            .rsplit_once('=')
            .ok_or_else(|| format!("layer override `{item}`: expected NAME=SPARSITY"))?;
        let sparsity =
            parse_sparsity(value.trim()).map_err(|e| format!("layer override `{item}`: {e}"))?;
        if pattern.trim().is_empty() {
            return Err(format!("layer override `{item}`: empty name pattern"));
        }
        out.push(LayerOverride {
            pattern: pattern.trim().to_string(),
            sparsity,
        });
    }
    Ok(out)
}

/// Parses a sparsity: a number in `[0, 1]`.
pub fn parse_sparsity(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("sparsity `{s}` is not a number in [0, 1]")),
    }
}

/// The default per-layer policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrunePolicy {
    /// Keep the first prunable layer (in topological order) dense.
    pub keep_first: bool,
    /// Keep the last prunable layer dense.
    pub keep_last: bool,
    /// Keep weights with fewer elements than this dense.
    pub min_params: usize,
}

impl Default for PrunePolicy {
    fn default() -> PrunePolicy {
        PrunePolicy {
            keep_first: true,
            keep_last: true,
            min_params: 4096,
        }
    }
}

impl PrunePolicy {
    /// The policy that prunes every prunable layer.
    pub fn none() -> PrunePolicy {
        PrunePolicy {
            keep_first: false,
            keep_last: false,
            min_params: 0,
        }
    }
}

/// Options of the pruning passes.
#[derive(Clone, Debug, PartialEq)]
pub struct PruneOptions {
    /// Target fraction of zeros for `prune-magnitude` (default 0.5).
    pub sparsity: f64,
    /// How `prune-magnitude` ranks magnitudes (default global).
    pub scope: PruneScope,
    /// Per-layer overrides, first match wins; they take precedence over the policy.
    pub layer_sparsity: Vec<LayerOverride>,
    /// The pattern of `prune-nm` (default 2:4).
    pub nm: NmPattern,
    /// Which layers stay dense without an override.
    pub policy: PrunePolicy,
}

impl Default for PruneOptions {
    fn default() -> PruneOptions {
        PruneOptions {
            sparsity: 0.5,
            scope: PruneScope::Global,
            layer_sparsity: Vec::new(),
            nm: NmPattern::default(),
            policy: PrunePolicy::default(),
        }
    }
}

/// What a pruning pass did to one prunable layer.
#[derive(Clone, Debug, PartialEq)]
pub struct PrunedLayer {
    /// The layer: its first reader's node name.
    pub layer: String,
    /// The weight before the pass.
    pub before: ValueId,
    /// The weight after the pass (equal to `before` when the layer was kept).
    pub after: ValueId,
    /// The policy line: why it was kept, or the target it was pruned to.
    pub reason: String,
}

/// True when `name` matches `pattern` in full, `*` matching any run of characters.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = name.chars().collect();
    // Greedy matching with backtracking to the last star.
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while j < s.len() {
        if i < p.len() && p[i] == '*' {
            star = Some((i, j));
            i += 1;
        } else if i < p.len() && p[i] == s[j] {
            i += 1;
            j += 1;
        } else if let Some((si, sj)) = star {
            i = si + 1;
            j = sj + 1;
            star = Some((si, sj + 1));
        } else {
            return false;
        }
    }
    p[i..].iter().all(|&c| c == '*')
}

/// A prunable weight and where it is read.
#[derive(Clone, Debug)]
pub(super) struct Candidate {
    /// The name of its first reader.
    pub layer: String,
    /// The weight.
    pub weight: ValueId,
    /// Every `(node, operand)` of a weight-bearing node reading it.
    pub uses: Vec<(NodeId, usize)>,
    /// The weight's data viewed as `[outer, len, inner]` with the reduction dimension as `len`.
    pub reduction: [usize; 3],
}

/// The reduction view `[outer, len, inner]` of operand `k` of `op` with `shape`.
fn reduction_view(op: &Op, k: usize, shape: &[usize]) -> Option<[usize; 3]> {
    let prod = |s: &[usize]| s.iter().product::<usize>();
    match (op, k, shape.len()) {
        // Matrix view `Cout x (Cin/g * kh * kw)`: groups run along each output row.
        (Op::Conv { .. }, 1, r) if r >= 2 => Some([shape[0], prod(&shape[1..]), 1]),
        (Op::Gemm { trans_b, .. }, 1, 2) => Some(if *trans_b != 0 {
            [shape[0], shape[1], 1]
        } else {
            [1, shape[0], shape[1]]
        }),
        (Op::Gemm { trans_a, .. }, 0, 2) => Some(if *trans_a != 0 {
            [1, shape[0], shape[1]]
        } else {
            [shape[0], shape[1], 1]
        }),
        (Op::MatMul {}, _, 1) => Some([1, shape[0], 1]),
        (Op::MatMul {}, 1, r) if r >= 2 => {
            Some([prod(&shape[..r - 2]), shape[r - 2], shape[r - 1]])
        }
        (Op::MatMul {}, 0, r) if r >= 2 => Some([prod(&shape[..r - 1]), shape[r - 1], 1]),
        _ => None,
    }
}

/// The operand of a weight-bearing node that is its prunable weight, if any.
fn weight_operand(graph: &Graph, n: NodeId) -> Option<usize> {
    let node = graph.node(n);
    let is_f32_weight = |k: usize| {
        node.inputs
            .get(k)
            .copied()
            .flatten()
            .and_then(|v| graph.const_data(v))
            .is_some_and(|t| t.as_f32().is_some())
    };
    match node.op {
        Op::Conv { .. } => is_f32_weight(1).then_some(1),
        Op::Gemm { .. } | Op::MatMul {} => {
            if is_f32_weight(1) {
                Some(1)
            } else if is_f32_weight(0) {
                Some(0)
            } else {
                None
            }
        }
        _ => None,
    }
}

/// Every prunable weight, in topological order of its first reader.
pub(super) fn candidates(graph: &Graph) -> Vec<Candidate> {
    let mut out: Vec<Candidate> = Vec::new();
    for n in graph.topo_order() {
        let Some(k) = weight_operand(graph, n) else {
            continue;
        };
        let node = graph.node(n);
        let Some(w) = node.inputs[k] else { continue };
        if let Some(c) = out.iter_mut().find(|c| c.weight == w) {
            c.uses.push((n, k));
            continue;
        }
        let Some(shape) = graph.value(w).ty.shape() else {
            continue;
        };
        let Some(reduction) = reduction_view(&node.op, k, &shape) else {
            continue;
        };
        out.push(Candidate {
            layer: node.name.clone(),
            weight: w,
            uses: vec![(n, k)],
            reduction,
        });
    }
    out
}

/// The weight `v` was derived from, followed back to a weight no pass created.
pub fn root_weight(cx: &PassContext, mut v: ValueId) -> ValueId {
    // Each step goes to an older value, so the walk ends; the bound guards a corrupt map.
    for _ in 0..=cx.derived_from.len() {
        match cx.derived_from.get(&v) {
            Some(&older) => v = older,
            None => break,
        }
    }
    v
}

/// What the policy decided for one layer.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Decision {
    /// Keep it dense, for this reason.
    Keep(String),
    /// Prune it to this sparsity set by an override (`pattern`).
    Override { sparsity: f64, pattern: String },
    /// Prune it by the pass's own target.
    Default,
}

/// The names an override pattern is matched against: the node name, the weight's name, the name
/// of the weight it was derived from, and those weight names without a `.weight` suffix.
fn layer_names(graph: &Graph, cx: &PassContext, c: &Candidate) -> Vec<String> {
    let mut names = vec![c.layer.clone()];
    for v in [c.weight, root_weight(cx, c.weight)] {
        let name = graph.value(v).name.clone();
        if let Some(s) = name.strip_suffix(".weight") {
            names.push(s.to_string());
        }
        names.push(name);
    }
    names
}

/// Decides every candidate's fate; an override matching no candidate is an error (a typo would
/// otherwise silently prune nothing).
pub(super) fn decide(
    pass: &'static str,
    graph: &Graph,
    cx: &PassContext,
    cands: &[Candidate],
) -> Result<Vec<Decision>, PassError> {
    let opts = &cx.prune;
    let mut used = vec![false; opts.layer_sparsity.len()];
    let last = cands.len().saturating_sub(1);
    let mut out = Vec::with_capacity(cands.len());
    for (i, c) in cands.iter().enumerate() {
        let names = layer_names(graph, cx, c);
        let hit = opts
            .layer_sparsity
            .iter()
            .position(|o| names.iter().any(|n| glob_match(&o.pattern, n)));
        let numel = graph.weight(c.weight).map_or(0, |w| w.facts.numel);
        out.push(match hit {
            Some(k) => {
                used[k] = true;
                let o = &opts.layer_sparsity[k];
                if o.sparsity == 0.0 {
                    Decision::Keep(format!("override {}=0", o.pattern))
                } else {
                    Decision::Override {
                        sparsity: o.sparsity,
                        pattern: o.pattern.clone(),
                    }
                }
            }
            None if opts.policy.keep_first && i == 0 => Decision::Keep("first layer".into()),
            None if opts.policy.keep_last && i == last => Decision::Keep("last layer".into()),
            None if numel < opts.policy.min_params => Decision::Keep(format!(
                "tiny: {numel} parameters < {}",
                opts.policy.min_params
            )),
            None => Decision::Default,
        });
    }
    if let Some(k) = used.iter().position(|u| !u) {
        return Err(PassError::Failed {
            pass,
            message: format!(
                "layer override `{}` matches no prunable layer",
                opts.layer_sparsity[k].pattern
            ),
        });
    }
    Ok(out)
}

/// Records a kept layer.
pub(super) fn keep(cx: &mut PassContext, pass: &str, c: &Candidate, reason: &str) {
    cx.notes
        .push(format!("{pass}: {}: kept dense ({reason})", c.layer));
    cx.pruned.push(PrunedLayer {
        layer: c.layer.clone(),
        before: c.weight,
        after: c.weight,
        reason: format!("kept dense ({reason})"),
    });
}

/// Replaces the candidate's weight with `data` (same shape) in every weight-bearing reader, as a
/// new weight with fresh sparsity facts, and records it. The old weight's data is released when
/// nothing reads it any more.
pub(super) fn replace(
    graph: &mut Graph,
    cx: &mut PassContext,
    pass: &str,
    c: &Candidate,
    data: Vec<f32>,
    target: &str,
) {
    let old = c.weight;
    let name = graph.value(old).name.clone();
    let shape = graph.value(old).ty.shape().unwrap_or_default();
    let new = graph.add_weight(name, Tensor::from_f32(&shape, data));
    for &(n, k) in &c.uses {
        graph.set_input(n, k, Some(new));
    }
    if !graph.outputs().contains(&old) && graph.users(old).is_empty() {
        if let ValueDef::Weight(w) = &mut graph.value_mut(old).def {
            w.data = None;
        }
    }
    let density = graph.weight(new).map_or(1.0, |w| w.facts.density());
    let reason = format!("{target} -> density {density:.3}");
    cx.notes.push(format!("{pass}: {}: {reason}", c.layer));
    cx.derived_from.insert(new, old);
    cx.pruned.push(PrunedLayer {
        layer: c.layer.clone(),
        before: old,
        after: new,
        reason,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_whole_names_with_stars() {
        assert!(glob_match("fc.*", "fc.1"));
        assert!(glob_match("fc.*", "fc."));
        assert!(!glob_match("fc.*", "xfc.1"));
        assert!(glob_match("conv1", "conv1"));
        assert!(!glob_match("conv1", "conv10"));
        assert!(glob_match("*conv*", "/layer1/conv2/Conv"));
        assert!(glob_match("a*b*c", "aXbYbZc"));
        assert!(!glob_match("a*b*c", "aXbYbZ"));
        assert!(glob_match("*", ""));
    }

    #[test]
    fn parses_options() {
        assert_eq!(
            parse_layer_sparsity("conv1=0, fc.*=0.5").unwrap(),
            vec![
                LayerOverride {
                    pattern: "conv1".into(),
                    sparsity: 0.0
                },
                LayerOverride {
                    pattern: "fc.*".into(),
                    sparsity: 0.5
                },
            ]
        );
        assert!(parse_layer_sparsity("conv1")
            .unwrap_err()
            .contains("NAME=SPARSITY"));
        assert!(parse_layer_sparsity("conv1=1.5")
            .unwrap_err()
            .contains("[0, 1]"));
        assert!(parse_layer_sparsity("=0.5").unwrap_err().contains("empty"));
        assert_eq!(NmPattern::parse("4:8").unwrap(), NmPattern { n: 4, m: 8 });
        assert!(NmPattern::parse("3:4")
            .unwrap_err()
            .contains("2:4, 1:4, 2:8, 4:8"));
        assert!(NmPattern::parse("x").is_err());
        assert_eq!(PruneScope::parse("layer").unwrap(), PruneScope::Layer);
        assert!(PruneScope::parse("model").is_err());
        assert!(parse_sparsity("nan").is_err());
    }

    #[test]
    fn reduction_views_follow_the_reduction_axis() {
        let conv = Op::Conv {
            auto_pad: String::new(),
            dilations: vec![],
            group: 1,
            kernel_shape: vec![],
            pads: vec![],
            strides: vec![],
        };
        assert_eq!(reduction_view(&conv, 1, &[8, 3, 3, 3]), Some([8, 27, 1]));
        let gemm = |trans_a, trans_b| Op::Gemm {
            alpha: 1.0,
            beta: 1.0,
            trans_a,
            trans_b,
        };
        assert_eq!(reduction_view(&gemm(0, 1), 1, &[10, 64]), Some([10, 64, 1]));
        assert_eq!(reduction_view(&gemm(0, 0), 1, &[64, 10]), Some([1, 64, 10]));
        assert_eq!(reduction_view(&gemm(0, 0), 0, &[5, 64]), Some([5, 64, 1]));
        assert_eq!(reduction_view(&gemm(1, 0), 0, &[64, 5]), Some([1, 64, 5]));
        let mm = Op::MatMul {};
        assert_eq!(reduction_view(&mm, 1, &[64, 10]), Some([1, 64, 10]));
        assert_eq!(reduction_view(&mm, 1, &[2, 64, 10]), Some([2, 64, 10]));
        assert_eq!(reduction_view(&mm, 0, &[5, 64]), Some([5, 64, 1]));
        assert_eq!(reduction_view(&mm, 1, &[64]), Some([1, 64, 1]));
    }
}
