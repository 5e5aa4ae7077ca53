//! Differential cases of the data-movement ops: reshape, flatten, transpose, squeeze/unsqueeze,
//! concat, split, slice (negative steps and clamped ends), expand, tile, pad (every mode),
//! depth/space rearrangements and trilu. Shape operands are constants, as after import.

use crate::diff_tests;
use crate::gen::{broadcast_of, dims, dims_upto, floats, i64s, ints, Rng};
use crate::harness::{Builder, Case};
use proptest::prelude::*;
use sparsec_ir::{Op, Tensor};

/// Cases per op.
const N: u32 = 16;

/// An input of `shape`: f32, or i64 when `int`.
fn data(seed: u64, shape: &[usize], int: bool) -> Tensor {
    if int {
        ints(seed, shape, -1000, 1000)
    } else {
        floats(seed, shape, -5.0, 5.0)
    }
}

/// `Reshape` to a regrouping of the input's dims, with a `0` (copy) or `-1` (infer) entry.
fn reshape() -> impl Strategy<Value = Case> {
    (dims(1, 4), any::<u64>(), any::<bool>()).prop_map(|(s, seed, int)| {
        let mut r = Rng::new(seed);
        // Merge neighbouring dims at random, then maybe split off size-1 dims.
        let mut target: Vec<i64> = Vec::new();
        for &d in &s {
            match target.last_mut() {
                Some(last) if r.int(0, 1) == 0 => *last *= d as i64,
                _ => target.push(d as i64),
            }
            if r.int(0, 4) == 0 {
                target.push(1);
            }
        }
        let pick = r.int(0, target.len() as i64 - 1) as usize;
        match r.int(0, 2) {
            0 => target[pick] = -1,
            1 if pick < s.len() && target[pick] == s[pick] as i64 => target[pick] = 0,
            _ => {}
        }
        let mut b = Builder::new();
        let x = b.input(data(seed, &s, int));
        let shape = b.constant(i64s(&target));
        let y = b.node1(Op::Reshape { allowzero: 0 }, vec![Some(x), Some(shape)]);
        b.finish(vec![y])
    })
}

/// `Flatten` at every axis `-rank..=rank`.
fn flatten() -> impl Strategy<Value = Case> {
    (dims(0, 4), any::<u64>(), any::<prop::sample::Index>()).prop_map(|(s, seed, i)| {
        let rank = s.len() as i64;
        let axis = i.index(2 * s.len() + 1) as i64 - rank;
        let mut b = Builder::new();
        let x = b.input(data(seed, &s, false));
        let y = b.node1(Op::Flatten { axis }, vec![Some(x)]);
        b.finish(vec![y])
    })
}

/// `Transpose` by a random permutation (or the default reversal).
fn transpose() -> impl Strategy<Value = Case> {
    (dims(0, 5), any::<u64>(), any::<bool>()).prop_map(|(s, seed, int)| {
        let s: Vec<usize> = if s.len() == 5 {
            s.iter().map(|&d| d.min(5)).collect()
        } else {
            s
        };
        let mut r = Rng::new(seed);
        let mut perm: Vec<i64> = (0..s.len() as i64).collect();
        for i in (1..perm.len()).rev() {
            perm.swap(i, r.int(0, i as i64) as usize);
        }
        if r.int(0, 4) == 0 {
            perm.clear();
        }
        let mut b = Builder::new();
        let x = b.input(data(seed, &s, int));
        let y = b.node1(Op::Transpose { perm }, vec![Some(x)]);
        b.finish(vec![y])
    })
}

/// `Squeeze` of some size-1 axes (or all, without the axes operand); with `empty_axes` the axes
/// operand is an empty list whenever the input has no size-1 axis picked.
fn squeeze(empty_axes: bool) -> impl Strategy<Value = Case> {
    (dims_upto(1, 5, 3), any::<u64>(), any::<bool>()).prop_map(move |(s, seed, all)| {
        let ones: Vec<i64> = (0..s.len())
            .filter(|&i| s[i] == 1)
            .map(|i| i as i64)
            .collect();
        let mut r = Rng::new(seed);
        let mut axes: Vec<i64> = ones
            .iter()
            .filter_map(|&a| match r.int(0, 3) {
                0 => Some(a - s.len() as i64),
                1 => Some(a),
                _ => None,
            })
            .collect();
        let all = all && !empty_axes;
        if empty_axes {
            axes.clear();
        } else if axes.is_empty() {
            // An empty axes list is the separate `squeeze_empty_axes` case.
            axes.extend(ones.first());
        }
        let all = all || axes.is_empty() && !empty_axes;
        let mut b = Builder::new();
        let x = b.input(data(seed, &s, false));
        let ax = (!all).then(|| b.constant(i64s(&axes)));
        let y = b.node1(Op::Squeeze {}, vec![Some(x), ax]);
        b.finish(vec![y])
    })
}

/// `Unsqueeze` at one to three positions of the result.
fn unsqueeze() -> impl Strategy<Value = Case> {
    (dims(0, 3), any::<u64>(), 1usize..=3).prop_map(|(s, seed, k)| {
        let out_rank = s.len() + k;
        let mut r = Rng::new(seed);
        let mut axes: Vec<i64> = Vec::new();
        while axes.len() < k {
            let a = r.int(0, out_rank as i64 - 1);
            if !axes.contains(&a) {
                axes.push(a);
            }
        }
        let axes: Vec<i64> = axes
            .iter()
            .map(|&a| {
                if r.int(0, 1) == 0 {
                    a - out_rank as i64
                } else {
                    a
                }
            })
            .collect();
        let mut b = Builder::new();
        let x = b.input(data(seed, &s, false));
        let ax = b.constant(i64s(&axes));
        let y = b.node1(Op::Unsqueeze {}, vec![Some(x), Some(ax)]);
        b.finish(vec![y])
    })
}

/// `Concat` of one to four inputs along a random axis (one operand may be a constant).
fn concat() -> impl Strategy<Value = Case> {
    (
        dims(1, 4),
        any::<u64>(),
        any::<prop::sample::Index>(),
        1usize..=4,
        any::<bool>(),
    )
        .prop_map(|(s, seed, axis, n, int)| {
            let a = axis.index(s.len());
            let mut r = Rng::new(seed);
            let mut b = Builder::new();
            let ins: Vec<_> = (0..n)
                .map(|k| {
                    let mut sk = s.clone();
                    sk[a] = r.int(1, 5) as usize;
                    let t = data(seed + k as u64, &sk, int);
                    Some(if k == 1 { b.constant(t) } else { b.input(t) })
                })
                .collect();
            let axis = if seed.is_multiple_of(2) {
                a as i64 - s.len() as i64
            } else {
                a as i64
            };
            let y = b.node1(Op::Concat { axis }, ins);
            b.finish(vec![y])
        })
}

/// `Concat` of two inputs whose result (1 MB) splits over threads in 16 KiB blocks, so a
/// thread's range starts inside an input's run of a row, at a random point of the last axis.
fn concat_large() -> impl Strategy<Value = Case> {
    (any::<u64>(), 6000usize..8000).prop_map(|(seed, w)| {
        let mut b = Builder::new();
        let x = b.input(floats(seed, &[3, 5, w], -5.0, 5.0));
        let y = b.input(floats(seed + 1, &[3, 7, w], -5.0, 5.0));
        let r = b.node1(Op::Concat { axis: 1 }, vec![Some(x), Some(y)]);
        b.finish(vec![r])
    })
}

/// `Split` along a random axis by a sizes operand or into `num_outputs` parts.
fn split() -> impl Strategy<Value = Case> {
    (
        dims(1, 4),
        any::<u64>(),
        any::<prop::sample::Index>(),
        1usize..=4,
        any::<bool>(),
    )
        .prop_map(|(s, seed, axis, parts, by_sizes)| {
            let a = axis.index(s.len());
            let d = s[a];
            let mut b = Builder::new();
            let x = b.input(data(seed, &s, false));
            let (op, sizes, n) = if by_sizes {
                let mut r = Rng::new(seed);
                let mut left = d as i64;
                let mut sizes = Vec::new();
                while left > 0 && sizes.len() + 1 < parts {
                    let k = r.int(0, left);
                    sizes.push(k);
                    left -= k;
                }
                sizes.push(left);
                let n = sizes.len();
                (
                    Op::Split {
                        axis: a as i64,
                        num_outputs: 0,
                    },
                    Some(b.constant(i64s(&sizes))),
                    n,
                )
            } else {
                let n = parts.min(d);
                (
                    Op::Split {
                        axis: a as i64,
                        num_outputs: n as i64,
                    },
                    None,
                    n,
                )
            };
            let ys = b.node(op, vec![Some(x), sizes], n);
            b.finish(ys)
        })
}

/// `Slice` with random starts/ends (out of range and negative included), axes and steps.
fn slice() -> impl Strategy<Value = Case> {
    (dims(1, 4), any::<u64>(), 0u8..3).prop_map(|(s, seed, form)| {
        let mut r = Rng::new(seed);
        let (mut starts, mut ends, mut axes, mut steps): (Vec<i64>, Vec<i64>, Vec<i64>, Vec<i64>) =
            (vec![], vec![], vec![], vec![]);
        for (a, &d) in s.iter().enumerate() {
            if r.int(0, 3) == 0 {
                continue;
            }
            let d = d as i64;
            let step = *[1, 1, 2, 3, -1, -2].get(r.int(0, 5) as usize).unwrap_or(&1);
            starts.push(r.int(-d - 2, d + 2));
            ends.push(if r.int(0, 5) == 0 {
                if step > 0 {
                    i64::MAX
                } else {
                    i64::MIN
                }
            } else {
                r.int(-d - 2, d + 2)
            });
            axes.push(if r.int(0, 1) == 0 {
                a as i64 - s.len() as i64
            } else {
                a as i64
            });
            steps.push(step);
        }
        if starts.is_empty() {
            starts.push(0);
            ends.push(1);
            axes.push(0);
            steps.push(1);
        }
        let mut b = Builder::new();
        let x = b.input(data(seed, &s, false));
        let mut ins = vec![
            Some(x),
            Some(b.constant(i64s(&starts))),
            Some(b.constant(i64s(&ends))),
        ];
        if form >= 1 {
            ins.push(Some(b.constant(i64s(&axes))));
        }
        if form == 2 {
            ins.push(Some(b.constant(i64s(&steps))));
        }
        let y = b.node1(Op::Slice {}, ins);
        b.finish(vec![y])
    })
}

/// `Expand` of a broadcastable input to a shape (maybe of higher rank, maybe with 1s).
fn expand() -> impl Strategy<Value = Case> {
    (dims(0, 4), any::<u64>()).prop_map(|(full, seed)| {
        let small = broadcast_of(&full, seed);
        let mut r = Rng::new(seed);
        // The shape operand may itself hold 1s where the input has the full size.
        let target: Vec<i64> = full
            .iter()
            .enumerate()
            .map(|(i, &d)| {
                let off = full.len() - small.len();
                if i >= off && small[i - off] == d && r.int(0, 3) == 0 {
                    1
                } else {
                    d as i64
                }
            })
            .collect();
        let mut b = Builder::new();
        let x = b.input(data(seed, &small, false));
        let sh = b.constant(i64s(&target));
        let y = b.node1(Op::Expand {}, vec![Some(x), Some(sh)]);
        b.finish(vec![y])
    })
}

/// `Tile` by repeats in `1..=3`.
fn tile() -> impl Strategy<Value = Case> {
    (dims_upto(1, 4, 7), any::<u64>(), any::<bool>()).prop_map(|(s, seed, int)| {
        let mut r = Rng::new(seed);
        let reps: Vec<i64> = s.iter().map(|_| r.int(1, 3)).collect();
        let mut b = Builder::new();
        let x = b.input(data(seed, &s, int));
        let rp = b.constant(i64s(&reps));
        let y = b.node1(Op::Tile {}, vec![Some(x), Some(rp)]);
        b.finish(vec![y])
    })
}

/// `Pad` in every mode, pads (negative ones crop, in constant mode), constant value and axes.
fn pad() -> impl Strategy<Value = Case> {
    let modes = prop::sample::select(vec!["constant", "reflect", "edge", "wrap"]);
    (dims(1, 4), any::<u64>(), modes, any::<bool>()).prop_map(|(s, seed, mode, use_axes)| {
        let mut r = Rng::new(seed);
        let axes: Vec<usize> = if use_axes {
            (0..s.len()).filter(|_| r.int(0, 1) == 0).collect()
        } else {
            (0..s.len()).collect()
        };
        let lim = |d: usize| -> (i64, i64) {
            match mode {
                "constant" => (-(d as i64 - 1).min(2), 3),
                "reflect" => (0, (d as i64 - 1).min(3)),
                _ => (0, (d as i64).min(3)),
            }
        };
        let mut begin = Vec::new();
        let mut end = Vec::new();
        for &a in &axes {
            let (lo, hi) = lim(s[a]);
            begin.push(r.int(lo, hi));
            end.push(r.int(lo, hi));
            // Crop no more than the axis holds.
            if begin[begin.len() - 1] + end[end.len() - 1] <= -(s[a] as i64) {
                end.pop();
                end.push(0);
            }
        }
        let pads: Vec<i64> = [begin, end].concat();
        let mut b = Builder::new();
        let x = b.input(data(seed, &s, false));
        let p = b.constant(i64s(&pads));
        let cv = (mode == "constant").then(|| b.constant(Tensor::scalar_f32(r.float(-2.0, 2.0))));
        let mut ins = vec![Some(x), Some(p), cv];
        if use_axes {
            let ax: Vec<i64> = axes.iter().map(|&a| a as i64).collect();
            ins.push(Some(b.constant(i64s(&ax))));
        }
        let y = b.node1(
            Op::Pad {
                mode: mode.to_string(),
            },
            ins,
        );
        b.finish(vec![y])
    })
}

/// `DepthToSpace` (both modes) or `SpaceToDepth` with block sizes 1..=3.
fn depth_space(to_space: bool) -> impl Strategy<Value = Case> {
    (
        1usize..=2,
        1usize..=4,
        dims_upto(2, 2, 6),
        1usize..=3,
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(move |(n, c, hw, bs, dcr, seed)| {
            let (shape, op) = if to_space {
                let mode = if dcr { "DCR" } else { "CRD" };
                (
                    vec![n, c * bs * bs, hw[0], hw[1]],
                    Op::DepthToSpace {
                        blocksize: bs as i64,
                        mode: mode.into(),
                    },
                )
            } else {
                (
                    vec![n, c, hw[0] * bs, hw[1] * bs],
                    Op::SpaceToDepth {
                        blocksize: bs as i64,
                    },
                )
            };
            let mut b = Builder::new();
            let x = b.input(data(seed, &shape, false));
            let y = b.node1(op, vec![Some(x)]);
            b.finish(vec![y])
        })
}

/// `Trilu` upper or lower with an optional diagonal offset `k`.
fn trilu() -> impl Strategy<Value = Case> {
    (
        dims(2, 4),
        any::<u64>(),
        0i64..=1,
        prop::option::of(-14i64..=14),
    )
        .prop_map(|(s, seed, upper, k)| {
            let mut b = Builder::new();
            let x = b.input(data(seed, &s, seed.is_multiple_of(3)));
            let kv = k.map(|k| b.constant(Tensor::scalar_i64(k)));
            let y = b.node1(Op::Trilu { upper }, vec![Some(x), kv]);
            b.finish(vec![y])
        })
}

diff_tests! {
    reshape_regroup => "reshape", N, reshape();
    flatten_axis => "flatten", N, flatten();
    transpose_perm => "transpose", N, transpose();
    squeeze_axes => "squeeze", N, squeeze(false);
    squeeze_empty_axes => "squeeze", N, squeeze(true);
    unsqueeze_axes => "unsqueeze", N, unsqueeze();
    concat_inputs => "concat", N, concat();
    concat_large_blocks => "concat", 3, concat_large();
    split_parts => "split", N, split();
    slice_steps => "slice", 24, slice();
    expand_shape => "expand", N, expand();
    tile_repeats => "tile", N, tile();
    pad_modes => "pad", 24, pad();
    depth_to_space => "depth_to_space", N, depth_space(true);
    space_to_depth => "space_to_depth", N, depth_space(false);
    trilu_k => "trilu", N, trilu();
}
