//! `prune-nm`: N:M pruning of the prunable weights (see `prune_policy`) along their reduction
//! dimension: in every group of `m` consecutive elements, the `n` largest `|w|` stay and the rest
//! become zero (2:4 by default; 1:4, 2:8 and 4:8 too).
//!
//! Groups run along each output row of a Conv weight's matrix view (`Cout x Cin/g*kh*kw`), along
//! the `K` axis of a Gemm/MatMul weight (axis 0 of `B[K, N]`, the last axis with `transB = 1`,
//! likewise for a constant `A`). Ties keep the earlier element. When the reduction length is not
//! a multiple of `m`, the shorter tail group of `t` elements keeps `ceil(n * t / m)` of them, so a
//! tail padded with zeros to `m` is itself an N:M group (`SparsityFacts` detects N:M only on whole
//! groups, so such a weight is reported `unstructured`). An override `NAME=0` keeps a layer dense;
//! any other override value prunes it to the pattern, whatever the default policy says.

use super::prune_policy::{candidates, decide, keep, replace, Decision};
use super::{NmPattern, PassContext, PassError};
use sparsec_ir::Graph;

/// The pass name, for notes and errors.
const PASS: &str = "prune-nm";

/// Runs the pass.
pub(super) fn run(graph: &mut Graph, cx: &mut PassContext) -> Result<bool, PassError> {
    let cands = candidates(graph);
    let decisions = decide(PASS, graph, cx, &cands)?;
    let p = cx.prune.nm;
    let mut changed = false;
    for (c, d) in cands.iter().zip(&decisions) {
        if let Decision::Keep(reason) = d {
            keep(cx, PASS, c, reason);
            continue;
        }
        let Some(data) = graph.const_data(c.weight).map(|t| t.to_f32_vec()) else {
            continue;
        };
        let pruned = prune_groups(&data, c.reduction, p);
        changed |= pruned != data;
        replace(graph, cx, PASS, c, pruned, &p.to_string());
    }
    Ok(changed)
}

/// Prunes `data`, viewed as `[outer, len, inner]`, in groups of `p.m` consecutive elements along
/// `len` (see the module doc for ties and tails).
fn prune_groups(data: &[f32], [outer, len, inner]: [usize; 3], p: NmPattern) -> Vec<f32> {
    let mut out = data.to_vec();
    let mut idx: Vec<usize> = Vec::with_capacity(p.m);
    for o in 0..outer {
        for j in 0..inner {
            let at = |i: usize| (o * len + i) * inner + j;
            for start in (0..len).step_by(p.m.max(1)) {
                let t = p.m.min(len - start);
                let keep = (p.n * t).div_ceil(p.m);
                idx.clear();
                idx.extend(start..start + t);
                // Largest magnitude first; the stable sort keeps earlier elements first on ties.
                idx.sort_by(|&a, &b| data[at(b)].abs().total_cmp(&data[at(a)].abs()));
                for &i in &idx[keep..] {
                    out[at(i)] = 0.0;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::prune_test_util::*;
    use super::*;
    use crate::passes::{LayerOverride, PruneOptions, PrunePolicy};
    use sparsec_ir::{Pattern, SparsityFacts, Tensor};

    /// Nonzeros of each group of `m` along `len` of `[outer, len, inner]`.
    fn group_counts(d: &[f32], [outer, len, inner]: [usize; 3], m: usize) -> Vec<usize> {
        let mut out = Vec::new();
        for o in 0..outer {
            for j in 0..inner {
                for s in (0..len).step_by(m) {
                    out.push(
                        (s..len.min(s + m))
                            .filter(|&i| d[(o * len + i) * inner + j] != 0.0)
                            .count(),
                    );
                }
            }
        }
        out
    }

    #[test]
    fn every_group_keeps_exactly_n() {
        for p in crate::passes::NM_PATTERNS {
            for view in [[3, 16, 1], [1, 16, 5], [2, 8, 3]] {
                let n: usize = view.iter().product();
                let d = values(n, 7);
                let out = prune_groups(&d, view, p);
                assert!(
                    group_counts(&out, view, p.m).iter().all(|&c| c == p.n),
                    "{p} {view:?}"
                );
                // What stays is unchanged.
                assert!(out.iter().zip(&d).all(|(o, x)| *o == 0.0 || o == x));
                let shape = [view[0], view[1], view[2]];
                let f = SparsityFacts::compute(&Tensor::from_f32(&shape, out));
                assert_eq!(f.nnz * p.m, n * p.n);
            }
        }
    }

    #[test]
    fn ties_keep_the_earlier_elements_and_groups_keep_the_largest() {
        let d = [1.0, -1.0, 1.0, 1.0, 0.5, -3.0, 2.0, 0.1];
        let out = prune_groups(&d, [1, 8, 1], NmPattern { n: 2, m: 4 });
        assert_eq!(out, vec![1.0, -1.0, 0.0, 0.0, 0.0, -3.0, 2.0, 0.0]);
        let out = prune_groups(&d, [1, 8, 1], NmPattern { n: 2, m: 8 });
        assert_eq!(out, vec![0.0, 0.0, 0.0, 0.0, 0.0, -3.0, 2.0, 0.0]);
    }

    #[test]
    fn tail_groups_keep_a_ceil_proportion() {
        // len 11 = 4 + 4 + 3: the tail of 3 keeps ceil(2 * 3 / 4) = 2.
        let d = values(2 * 11, 3);
        let out = prune_groups(&d, [2, 11, 1], NmPattern { n: 2, m: 4 });
        assert_eq!(group_counts(&out, [2, 11, 1], 4), vec![2, 2, 2, 2, 2, 2]);
        // len 9 = 8 + 1 with 2:8: the tail of 1 keeps ceil(2 / 8) = 1 (it is left as it was).
        let d = values(9, 4);
        let out = prune_groups(&d, [1, 9, 1], NmPattern { n: 2, m: 8 });
        assert_eq!(group_counts(&out, [1, 9, 1], 8), vec![2, 1]);
        // len 5 with 1:4: the tail of 1 keeps ceil(1 / 4) = 1.
        let out = prune_groups(&values(5, 5), [1, 5, 1], NmPattern { n: 1, m: 4 });
        assert_eq!(group_counts(&out, [1, 5, 1], 4), vec![1, 1]);
    }

    #[test]
    fn facts_report_the_pattern_along_either_axis() {
        for p in crate::passes::NM_PATTERNS {
            // K along rows (transB = 1) and K along axis 0 (`B[K, N]`).
            for view in [[12, 64, 1], [1, 64, 12]] {
                let shape = if view[0] == 1 { [64, 12] } else { [12, 64] };
                let out = prune_groups(&values(768, 11), view, p);
                let f = SparsityFacts::compute(&Tensor::from_f32(&shape, out));
                let expected = Pattern::NM {
                    n: p.n as u8,
                    m: p.m as u8,
                };
                assert_eq!(f.pattern, expected, "{p} {view:?}");
            }
        }
    }

    #[test]
    fn pass_prunes_the_policy_layers_and_snapshots() {
        let mut g = mlp(&[64, 96, 80, 48, 10], 6);
        let before = sparsec_ir::print(&g);
        let mut cx = cx_with(PruneOptions {
            layer_sparsity: vec![LayerOverride {
                pattern: "fc2".into(),
                sparsity: 0.0,
            }],
            ..PruneOptions::default()
        });
        assert!(run(&mut g, &mut cx).expect("runs"));
        sparsec_ir::verify(&g).expect("verifies");
        let d = densities(&g);
        assert_eq!(d, vec![1.0, 0.5, 1.0, 1.0]);
        let after = sparsec_ir::print(&g);
        insta::assert_snapshot!(format!(
            "; before\n{before}; after\n{after}; notes\n{}\n",
            cx.notes.join("\n")
        ));
        // Without the policy every layer gets the pattern.
        let mut g = mlp(&[64, 96, 80, 48, 10], 6);
        let mut cx = cx_with(PruneOptions {
            nm: NmPattern { n: 1, m: 4 },
            policy: PrunePolicy::none(),
            ..PruneOptions::default()
        });
        run(&mut g, &mut cx).expect("runs");
        for w in weights(&g) {
            let f = g.weight(w).expect("weight").facts;
            assert_eq!(f.pattern, Pattern::NM { n: 1, m: 4 });
        }
    }
}
