//! Differential cases of the shape-computing and resampling ops: `Resize` (every mode, scales or
//! sizes), `Shape`, `Size`, `ConstantOfShape` and `Range` (whose result shapes depend on input
//! values, so the engine specializes on those values).

use crate::diff_tests;
use crate::gen::{dims, dims_upto, floats, i64s, Rng};
use crate::harness::{Builder, Case};
use proptest::prelude::*;
use sparsec_ir::{DType, Op, Scalar, Tensor};

/// Cases per op.
const N: u32 = 16;

/// `Resize` of an `[N, C, spatial..]` input by scales or sizes, over mode, coordinate mode,
/// nearest rounding, cubic coefficient and `exclude_outside`.
fn resize() -> impl Strategy<Value = Case> {
    let modes = prop::sample::select(vec!["nearest", "linear", "cubic"]);
    let coords = prop::sample::select(vec![
        "half_pixel",
        "half_pixel_symmetric",
        "pytorch_half_pixel",
        "align_corners",
        "asymmetric",
    ]);
    let nearest = prop::sample::select(vec![
        "round_prefer_floor",
        "round_prefer_ceil",
        "floor",
        "ceil",
    ]);
    (
        dims_upto(3, 4, 7),
        any::<u64>(),
        modes,
        coords,
        nearest,
        any::<bool>(),
        0i64..=1,
    )
        .prop_map(
            |(s, seed, mode, coord, nearest, by_sizes, exclude_outside)| {
                let mut r = Rng::new(seed);
                let mut b = Builder::new();
                let x = b.input(floats(seed, &s, -3.0, 3.0));
                let (scales, sizes) = if by_sizes {
                    let sz: Vec<i64> = s
                        .iter()
                        .enumerate()
                        .map(|(i, &d)| if i < 2 { d as i64 } else { r.int(1, 15) })
                        .collect();
                    (None, Some(b.constant(i64s(&sz))))
                } else {
                    let sc: Vec<f32> = s
                        .iter()
                        .enumerate()
                        .map(|(i, _)| {
                            if i < 2 {
                                1.0
                            } else {
                                [0.5, 0.75, 1.5, 2.0, 3.0][r.int(0, 4) as usize]
                            }
                        })
                        .collect();
                    (Some(b.constant(Tensor::from_f32(&[sc.len()], sc))), None)
                };
                let op = Op::Resize {
                    antialias: 0,
                    axes: Vec::new(),
                    coordinate_transformation_mode: coord.to_string(),
                    cubic_coeff_a: -0.75,
                    exclude_outside,
                    extrapolation_value: 0.0,
                    keep_aspect_ratio_policy: "stretch".to_string(),
                    mode: mode.to_string(),
                    nearest_mode: nearest.to_string(),
                };
                let y = b.node1(op, vec![Some(x), None, scales, sizes]);
                b.finish(vec![y]).tol(1e-4, 1e-4)
            },
        )
}

/// `Shape` with `start`/`end` anywhere in `-rank-1..=rank+1`.
fn shape() -> impl Strategy<Value = Case> {
    (dims(0, 4), any::<u64>(), any::<bool>()).prop_map(|(s, seed, bounds)| {
        let mut r = Rng::new(seed);
        let rank = s.len() as i64;
        let (start, end) = if bounds {
            (r.int(-rank - 1, rank + 1), r.int(-rank - 1, rank + 1))
        } else {
            (0, i64::MAX)
        };
        let mut b = Builder::new();
        let x = b.input(floats(seed, &s, -1.0, 1.0));
        let y = b.node1(Op::Shape { start, end }, vec![Some(x)]);
        b.finish(vec![y])
    })
}

/// `Size` of an input.
fn size() -> impl Strategy<Value = Case> {
    (dims(0, 4), any::<u64>()).prop_map(|(s, seed)| {
        let mut b = Builder::new();
        let x = b.input(floats(seed, &s, -1.0, 1.0));
        let y = b.node1(Op::Size {}, vec![Some(x)]);
        b.finish(vec![y])
    })
}

/// `ConstantOfShape` of a shape given as a graph input, with an f32, i64 or bool value.
fn constant_of_shape() -> impl Strategy<Value = Case> {
    (dims(0, 4), 0u8..3, -5i64..5).prop_map(|(s, kind, v)| {
        let value = match kind {
            0 => Scalar {
                dtype: DType::F32,
                value: v as f64 * 0.5,
            },
            1 => Scalar {
                dtype: DType::I64,
                value: v as f64,
            },
            _ => Scalar {
                dtype: DType::Bool,
                value: (v > 0) as i64 as f64,
            },
        };
        let dims: Vec<i64> = s.iter().map(|&d| d as i64).collect();
        let mut b = Builder::new();
        let x = b.input(i64s(&dims));
        let y = b.node1(Op::ConstantOfShape { value }, vec![Some(x)]);
        b.finish(vec![y])
    })
}

/// `Range` of scalar inputs (f32 or i64), positive or negative steps.
fn range() -> impl Strategy<Value = Case> {
    (
        -20i64..20,
        -20i64..20,
        1i64..=4,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(start, limit, step, neg, int)| {
            let delta = if neg { -step } else { step };
            let mut b = Builder::new();
            let ins: Vec<_> = [start, limit, delta]
                .iter()
                .map(|&v| {
                    Some(b.input(if int {
                        Tensor::scalar_i64(v)
                    } else {
                        Tensor::scalar_f32(v as f32 * 0.75)
                    }))
                })
                .collect();
            let y = b.node1(Op::Range {}, ins);
            b.finish(vec![y])
        })
}

diff_tests! {
    resize_modes => "resize", 32, resize();
    shape_bounds => "shape", N, shape();
    size_of => "size", N, size();
    constant_of_shape_values => "constant_of_shape", N, constant_of_shape();
    range_steps => "range", N, range();
}
