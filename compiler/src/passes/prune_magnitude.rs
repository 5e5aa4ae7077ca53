//! `prune-magnitude`: unstructured magnitude pruning of the prunable weights (see
//! `prune_policy`): the smallest `|w|` become zero.
//!
//! With `scope = layer`, each pruned weight gets exactly `round(sparsity * numel)` zeros; with
//! `scope = global`, the weights the policy leaves to the pass's own target are ranked together
//! and exactly `round(sparsity * their total numel)` of them become zero, so layers whose weights
//! are small lose more. Layers with an override are pruned to their override on their own in
//! both scopes. Zeros already present count toward the target (they are the smallest
//! magnitudes). Ties at the threshold are broken by position: layer order, then element order.
//! Pruned weights are new weights (fresh sparsity facts) replacing the old ones in every reader.

use super::prune_policy::{candidates, decide, keep, replace, Candidate, Decision};
use super::{PassContext, PassError, PruneScope};
use sparsec_ir::Graph;

/// The pass name, for notes and errors.
const PASS: &str = "prune-magnitude";

/// Runs the pass.
pub(super) fn run(graph: &mut Graph, cx: &mut PassContext) -> Result<bool, PassError> {
    let cands = candidates(graph);
    let decisions = decide(PASS, graph, cx, &cands)?;
    let data: Vec<Vec<f32>> = cands
        .iter()
        .map(|c| {
            graph
                .const_data(c.weight)
                .map(|t| t.to_f32_vec())
                .unwrap_or_default()
        })
        .collect();
    let opts = cx.prune.clone();
    // Layers pruned by the pass's own target in global scope are ranked together.
    let global: Vec<usize> = (0..cands.len())
        .filter(|&i| opts.scope == PruneScope::Global && decisions[i] == Decision::Default)
        .collect();
    let mut masks: Vec<Option<Vec<bool>>> = vec![None; cands.len()];
    if !global.is_empty() {
        let slices: Vec<&[f32]> = global.iter().map(|&i| data[i].as_slice()).collect();
        let total: usize = slices.iter().map(|s| s.len()).sum();
        let k = target_zeros(opts.sparsity, total);
        for (&i, m) in global.iter().zip(smallest(&slices, k)) {
            masks[i] = Some(m);
        }
    }
    let mut changed = false;
    for (i, c) in cands.iter().enumerate() {
        let (sparsity, target) = match &decisions[i] {
            Decision::Keep(reason) => {
                keep(cx, PASS, c, reason);
                continue;
            }
            Decision::Override { sparsity, pattern } => {
                (*sparsity, format!("{sparsity:.3} (override {pattern})"))
            }
            Decision::Default if opts.scope == PruneScope::Global => {
                (opts.sparsity, format!("global {:.3}", opts.sparsity))
            }
            Decision::Default => (opts.sparsity, format!("{:.3}", opts.sparsity)),
        };
        let mask = match masks[i].take() {
            Some(m) => m,
            None => {
                let k = target_zeros(sparsity, data[i].len());
                smallest(&[data[i].as_slice()], k).remove(0)
            }
        };
        changed |= apply(graph, cx, c, &data[i], &mask, &target);
    }
    Ok(changed)
}

/// `round(sparsity * n)`, within `0..=n`.
fn target_zeros(sparsity: f64, n: usize) -> usize {
    ((sparsity * n as f64).round() as usize).min(n)
}

/// Marks exactly `k` elements of the concatenation of `slices` with the smallest magnitudes
/// (ties broken by position); one mask per slice, `true` = to be zeroed.
fn smallest(slices: &[&[f32]], k: usize) -> Vec<Vec<bool>> {
    let total: usize = slices.iter().map(|s| s.len()).sum();
    if k == 0 || total == 0 {
        return slices.iter().map(|s| vec![false; s.len()]).collect();
    }
    let mut mags: Vec<f32> = slices
        .iter()
        .flat_map(|s| s.iter().map(|x| x.abs()))
        .collect();
    let k = k.min(total);
    let (_, &mut t, _) = mags.select_nth_unstable_by(k - 1, f32::total_cmp);
    let below = slices
        .iter()
        .flat_map(|s| s.iter())
        .filter(|x| x.abs().total_cmp(&t).is_lt())
        .count();
    let mut ties = k - below;
    slices
        .iter()
        .map(|s| {
            s.iter()
                .map(|x| match x.abs().total_cmp(&t) {
                    std::cmp::Ordering::Less => true,
                    std::cmp::Ordering::Equal if ties > 0 => {
                        ties -= 1;
                        true
                    }
                    _ => false,
                })
                .collect()
        })
        .collect()
}

/// Zeroes the masked elements of the candidate's weight; returns whether any changed.
fn apply(
    graph: &mut Graph,
    cx: &mut PassContext,
    c: &Candidate,
    data: &[f32],
    mask: &[bool],
    target: &str,
) -> bool {
    let changed = data.iter().zip(mask).any(|(x, &m)| m && *x != 0.0);
    let pruned: Vec<f32> = data
        .iter()
        .zip(mask)
        .map(|(&x, &m)| if m { 0.0 } else { x })
        .collect();
    replace(graph, cx, PASS, c, pruned, target);
    changed
}

#[cfg(test)]
mod tests {
    use super::super::prune_test_util::*;
    use super::*;
    use crate::passes::{LayerOverride, PruneOptions, PrunePolicy};

    #[test]
    fn smallest_is_exact_with_ties() {
        let a = [3.0, -1.0, 1.0, 0.0];
        let b = [1.0, -1.0, 5.0];
        let m = smallest(&[&a, &b], 3);
        assert_eq!(m[0], vec![false, true, true, true]);
        assert_eq!(m[1], vec![false, false, false]);
        let m = smallest(&[&a, &b], 5);
        assert_eq!(m[0], vec![false, true, true, true]);
        assert_eq!(m[1], vec![true, true, false]);
        assert!(smallest(&[&a], 0)[0].iter().all(|&z| !z));
        assert!(smallest(&[&a], 9)[0].iter().all(|&z| z));
        // All equal: the first k by position.
        let e = [2.0f32; 6];
        assert_eq!(
            smallest(&[&e], 4)[0],
            vec![true, true, true, true, false, false]
        );
    }

    #[test]
    fn layer_scope_hits_the_target_per_layer() {
        let mut g = mlp(&[64, 96, 80, 64, 10], 1);
        let mut cx = cx_with(PruneOptions {
            sparsity: 0.7,
            scope: PruneScope::Layer,
            ..PruneOptions::default()
        });
        assert!(run(&mut g, &mut cx).expect("runs"));
        let d = densities(&g);
        // First and last stay dense (policy); the middle ones hit 0.3 within rounding.
        assert_eq!(d[0], 1.0);
        assert_eq!(d[3], 1.0);
        for &x in &d[1..3] {
            assert!((x - 0.3).abs() < 1e-3, "{d:?}");
        }
        assert_eq!(
            cx.notes,
            vec![
                "prune-magnitude: fc0: kept dense (first layer)",
                "prune-magnitude: fc1: 0.700 -> density 0.300",
                "prune-magnitude: fc2: 0.700 -> density 0.300",
                "prune-magnitude: fc3: kept dense (last layer)",
            ]
        );
        sparsec_ir::verify(&g).expect("verifies");
    }

    #[test]
    fn global_scope_hits_the_target_over_the_pruned_layers() {
        let mut g = mlp(&[64, 96, 80, 48, 10], 2);
        // Scale one layer's weights down so global ranking prunes it harder.
        scale_weight(&mut g, 1, 0.5);
        let mut cx = cx_with(PruneOptions {
            sparsity: 0.6,
            policy: PrunePolicy::none(),
            ..PruneOptions::default()
        });
        assert!(run(&mut g, &mut cx).expect("runs"));
        let (nnz, numel) = totals(&g);
        assert_eq!(numel - nnz, (0.6 * numel as f64).round() as usize);
        let d = densities(&g);
        assert!(d[1] < d[0] && d[1] < d[2], "{d:?}");
        assert!(cx.notes[1].starts_with("prune-magnitude: fc1: global 0.600 -> density"));
    }

    #[test]
    fn overrides_win_over_the_policy_and_tiny_tensors_stay_dense() {
        let mut g = mlp(&[64, 96, 80, 48, 10], 3);
        let mut cx = cx_with(PruneOptions {
            sparsity: 0.9,
            scope: PruneScope::Layer,
            layer_sparsity: vec![
                LayerOverride {
                    pattern: "fc0".into(),
                    sparsity: 0.5,
                },
                LayerOverride {
                    pattern: "w_fc2".into(),
                    sparsity: 0.25,
                },
                LayerOverride {
                    pattern: "*3".into(),
                    sparsity: 0.0,
                },
            ],
            ..PruneOptions::default()
        });
        run(&mut g, &mut cx).expect("runs");
        let d = densities(&g);
        assert!((d[0] - 0.5).abs() < 1e-3, "{d:?}");
        assert!((d[1] - 0.1).abs() < 1e-3, "{d:?}");
        assert!((d[2] - 0.75).abs() < 1e-3, "weight-name override: {d:?}");
        assert_eq!(d[3], 1.0);
        assert_eq!(
            cx.notes[0],
            "prune-magnitude: fc0: 0.500 (override fc0) -> density 0.500"
        );
        assert_eq!(
            cx.notes[3],
            "prune-magnitude: fc3: kept dense (override *3=0)"
        );
        // A pattern that matches nothing is an error naming it.
        let mut cx = cx_with(PruneOptions {
            layer_sparsity: vec![LayerOverride {
                pattern: "conv*".into(),
                sparsity: 0.5,
            }],
            ..PruneOptions::default()
        });
        let e = run(&mut g, &mut cx).unwrap_err().to_string();
        assert!(e.contains("`conv*` matches no prunable layer"), "{e}");
        // Tiny tensors stay dense by default.
        let mut g = mlp(&[8, 16, 16, 16, 4], 4);
        let mut cx = cx_with(PruneOptions::default());
        assert!(!run(&mut g, &mut cx).expect("runs"));
        assert_eq!(
            cx.notes[1],
            "prune-magnitude: fc1: kept dense (tiny: 256 parameters < 4096)"
        );
    }

    #[test]
    fn snapshot_before_and_after() {
        let mut g = mlp(&[64, 80, 72, 10], 5);
        let before = sparsec_ir::print(&g);
        let mut cx = cx_with(PruneOptions {
            sparsity: 0.8,
            policy: PrunePolicy {
                min_params: 100,
                ..PrunePolicy::default()
            },
            ..PruneOptions::default()
        });
        run(&mut g, &mut cx).expect("runs");
        sparsec_ir::verify(&g).expect("verifies");
        let after = sparsec_ir::print(&g);
        insta::assert_snapshot!(format!(
            "; before\n{before}; after\n{after}; notes\n{}\n",
            cx.notes.join("\n")
        ));
    }
}
