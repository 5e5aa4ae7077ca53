//! Tests of `Resize`; expected values were checked against the ONNX reference implementation.

use super::*;
use sparsec_ir::DType;

/// A `Resize` op with the given modes and otherwise default attributes.
fn op(mode: &str, coord: &str) -> Op {
    Op::Resize {
        antialias: 0,
        axes: vec![],
        coordinate_transformation_mode: coord.into(),
        cubic_coeff_a: -0.75,
        exclude_outside: 0,
        extrapolation_value: 0.0,
        keep_aspect_ratio_policy: "stretch".into(),
        mode: mode.into(),
        nearest_mode: "round_prefer_floor".into(),
    }
}

fn scales(v: &[f32]) -> Tensor {
    Tensor::from_f32(&[v.len()], v.to_vec())
}

fn sizes(v: &[i64]) -> Tensor {
    Tensor::from_i64(&[v.len()], v.to_vec())
}

fn ramp(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    Tensor::from_f32(shape, (0..n).map(|i| i as f32).collect())
}

fn assert_close(got: &Tensor, want: &[f32]) {
    let g = got.to_f32_vec();
    assert_eq!(g.len(), want.len(), "{g:?} vs {want:?}");
    for (a, b) in g.iter().zip(want) {
        assert!((a - b).abs() < 1e-4, "{g:?} vs {want:?}");
    }
}

#[test]
fn nearest_modes() {
    let x = Tensor::from_f32(&[1, 1, 2, 2], vec![1.0, 2.0, 3.0, 4.0]);
    let mut o = op("nearest", "asymmetric");
    if let Op::Resize { nearest_mode, .. } = &mut o {
        *nearest_mode = "floor".into();
    }
    let s = scales(&[1.0, 1.0, 2.0, 3.0]);
    let y = resize(&o, &[Some(&x), None, Some(&s)]).unwrap();
    assert_eq!(y.shape(), &[1, 1, 4, 6]);
    assert_close(
        &y,
        &[
            1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 3.0, 3.0, 3.0, 4.0, 4.0,
            4.0, 3.0, 3.0, 3.0, 4.0, 4.0, 4.0,
        ],
    );
    // Sizes on two axes with the aspect ratio kept (the smaller scale wins).
    let x4 = ramp(&[1, 1, 4, 4]);
    let mut o = op("nearest", "half_pixel");
    if let Op::Resize {
        axes,
        keep_aspect_ratio_policy,
        ..
    } = &mut o
    {
        *axes = vec![2, 3];
        *keep_aspect_ratio_policy = "not_larger".into();
    }
    let y = resize(&o, &[Some(&x4), None, None, Some(&sizes(&[3, 2]))]).unwrap();
    assert_eq!(y.shape(), &[1, 1, 2, 2]);
    assert_close(&y, &[0.0, 2.0, 8.0, 10.0]);
}

#[test]
fn linear_modes() {
    let x4 = ramp(&[1, 1, 4, 4]);
    let y = resize(
        &op("linear", "half_pixel"),
        &[Some(&x4), None, Some(&scales(&[1.0, 1.0, 0.6, 0.6]))],
    )
    .unwrap();
    assert_eq!(y.shape(), &[1, 1, 2, 2]);
    assert_close(&y, &[1.6666666, 3.3333333, 8.333333, 10.0]);
    let v = Tensor::from_f32(&[3], vec![1.0, 2.0, 4.0]);
    let y = resize(
        &op("linear", "half_pixel"),
        &[Some(&v), None, Some(&scales(&[2.0]))],
    )
    .unwrap();
    assert_close(&y, &[1.0, 1.25, 1.75, 2.5, 3.5, 4.0]);
    let v = Tensor::from_f32(&[4], vec![1.0, 2.0, 4.0, 8.0]);
    let y = resize(
        &op("linear", "pytorch_half_pixel"),
        &[Some(&v), None, None, Some(&sizes(&[3]))],
    )
    .unwrap();
    assert_close(&y, &[1.1666666, 3.0, 7.3333335]);
    let y = resize(
        &op("linear", "half_pixel_symmetric"),
        &[Some(&v), None, Some(&scales(&[0.7]))],
    )
    .unwrap();
    assert_close(&y, &[1.7857143, 4.857143]);
    let mut o = op("linear", "half_pixel");
    if let Op::Resize { antialias, .. } = &mut o {
        *antialias = 1;
    }
    let sq = Tensor::from_f32(&[8], (0..8).map(|i| (i * i) as f32).collect());
    let y = resize(&o, &[Some(&sq), None, Some(&scales(&[0.5]))]).unwrap();
    assert_close(&y, &[0.875, 7.0, 21.0, 41.125]);
    // Integers round half to even and saturate.
    let u = Tensor::from_f64s(DType::U8, &[1, 3], [10.0, 20.0, 255.0]);
    let y = resize(
        &op("linear", "half_pixel"),
        &[Some(&u), None, Some(&scales(&[1.0, 2.0]))],
    )
    .unwrap();
    assert_eq!(y.dtype(), DType::U8);
    assert_eq!(y.to_i64_vec(), vec![10, 12, 18, 79, 196, 255]);
}

#[test]
fn cubic_modes() {
    let x4 = ramp(&[1, 1, 4, 4]);
    let y = resize(
        &op("cubic", "align_corners"),
        &[Some(&x4), None, Some(&scales(&[1.0, 1.0, 1.5, 1.5]))],
    )
    .unwrap();
    assert_eq!(y.shape(), &[1, 1, 6, 6]);
    let g = y.to_f32_vec();
    for (i, w) in [
        (0, 0.0),
        (1, 0.504),
        (2, 1.248),
        (7, 2.52),
        (20, 8.256),
        (22, 9.504),
        (35, 15.0),
    ] {
        assert!((g[i] - w).abs() < 1e-3, "{i}: {} vs {w}", g[i]);
    }
    let mut o = op("cubic", "half_pixel");
    if let Op::Resize {
        exclude_outside,
        cubic_coeff_a,
        ..
    } = &mut o
    {
        *exclude_outside = 1;
        *cubic_coeff_a = -0.5;
    }
    let y = resize(&o, &[Some(&x4), None, Some(&scales(&[1.0, 1.0, 0.5, 0.5]))]).unwrap();
    assert_close(&y, &[2.0588236, 4.2352943, 10.764706, 12.941176]);
}

#[test]
fn crop_and_resize_with_extrapolation() {
    let x4 = ramp(&[1, 1, 4, 4]);
    let mut o = op("linear", "tf_crop_and_resize");
    if let Op::Resize {
        extrapolation_value,
        ..
    } = &mut o
    {
        *extrapolation_value = 10.0;
    }
    let roi = Tensor::from_f32(&[8], vec![0.0, 0.0, 0.4, 0.6, 1.0, 1.0, 1.2, 0.7]);
    let y = resize(
        &o,
        &[Some(&x4), Some(&roi), None, Some(&sizes(&[1, 1, 3, 3]))],
    )
    .unwrap();
    assert_close(&y, &[6.6, 6.75, 6.9, 11.4, 11.55, 11.7, 10.0, 10.0, 10.0]);
    // A crop without a roi is invalid.
    assert!(resize(&o, &[Some(&x4), None, None, Some(&sizes(&[1, 1, 3, 3]))]).is_err());
}

#[test]
fn bad_operands() {
    let x = ramp(&[2, 2]);
    let o = op("linear", "half_pixel");
    assert!(resize(&o, &[Some(&x)]).is_err());
    assert!(resize(&o, &[Some(&x), None, Some(&scales(&[2.0]))]).is_err());
    assert!(resize(&o, &[Some(&x), None, Some(&scales(&[2.0, -1.0]))]).is_err());
    let s = scales(&[1.0, 2.0]);
    assert!(resize(&o, &[Some(&x), None, Some(&s), Some(&sizes(&[2, 4]))]).is_err());
    let err = resize(&op("area", "half_pixel"), &[Some(&x), None, Some(&s)]).unwrap_err();
    assert!(err.is_unsupported());
    // An identity resize returns the input unchanged.
    let y = resize(&o, &[Some(&x), None, Some(&scales(&[1.0, 1.0]))]).unwrap();
    assert_eq!(y, x);
}

#[test]
fn absurd_scales_are_errors() {
    let x = ramp(&[2, 2]);
    let o = op("nearest", "asymmetric");
    assert!(resize(&o, &[Some(&x), None, Some(&scales(&[1e30, 1e30]))]).is_err());
    assert!(resize(
        &o,
        &[Some(&x), None, None, Some(&sizes(&[1 << 40, 1 << 40]))]
    )
    .is_err());
    // A region of interest far outside the input only extrapolates.
    let o = op("linear", "tf_crop_and_resize");
    let roi = Tensor::from_f32(&[4], vec![-9e18, 3e11, 2.0, -2.0]);
    let y = resize(&o, &[Some(&x), Some(&roi), None, Some(&sizes(&[3, 3]))]).unwrap();
    assert_eq!(y.shape(), &[3, 3]);
}
