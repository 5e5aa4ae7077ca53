//! Tests of the pooling ops; expected values were checked against the ONNX reference
//! implementation.

use super::*;

fn max_pool(k: &[i64], s: &[i64], pads: &[i64], ceil: bool, storage_order: i64) -> Op {
    Op::MaxPool {
        auto_pad: "NOTSET".into(),
        ceil_mode: ceil as i64,
        dilations: vec![],
        kernel_shape: k.to_vec(),
        pads: pads.to_vec(),
        storage_order,
        strides: s.to_vec(),
    }
}

fn avg_pool(k: &[i64], s: &[i64], pads: &[i64], ceil: bool, include_pad: bool) -> Op {
    Op::AveragePool {
        auto_pad: "NOTSET".into(),
        ceil_mode: ceil as i64,
        count_include_pad: include_pad as i64,
        dilations: vec![],
        kernel_shape: k.to_vec(),
        pads: pads.to_vec(),
        strides: s.to_vec(),
    }
}

fn ramp(shape: &[usize], start: f32) -> Tensor {
    let n: usize = shape.iter().product();
    Tensor::from_f32(shape, (0..n).map(|i| i as f32 + start).collect())
}

fn assert_close(got: &Tensor, want: &[f32]) {
    let g = got.to_f32_vec();
    assert_eq!(g.len(), want.len(), "{g:?} vs {want:?}");
    for (a, b) in g.iter().zip(want) {
        assert!((a - b).abs() < 1e-5, "{g:?} vs {want:?}");
    }
}

#[test]
fn max_pool_ceil_mode_and_indices() {
    let x = ramp(&[1, 1, 4, 4], 1.0);
    let out = eval(&max_pool(&[3, 3], &[2, 2], &[], true, 0), &[Some(&x)], 2).unwrap();
    assert_eq!(out[0].shape(), &[1, 1, 2, 2]);
    assert_close(&out[0], &[11.0, 12.0, 15.0, 16.0]);
    assert_eq!(out[1].as_i64().unwrap(), &[10, 11, 14, 15]);
    // Column-major indices.
    let out = eval(&max_pool(&[3, 3], &[2, 2], &[], true, 1), &[Some(&x)], 2).unwrap();
    assert_eq!(out[1].as_i64().unwrap(), &[10, 14, 11, 15]);
    // Without ceil_mode only one window fits.
    let out = eval(&max_pool(&[3, 3], &[2, 2], &[], false, 0), &[Some(&x)], 1).unwrap();
    assert_close(&out[0], &[11.0]);
    // Indices count the batch and channel planes before the window's.
    let x2 = ramp(&[2, 1, 2, 2], 0.0);
    let out = eval(&max_pool(&[2, 2], &[], &[], false, 0), &[Some(&x2)], 2).unwrap();
    assert_eq!(out[1].as_i64().unwrap(), &[3, 7]);
}

#[test]
fn max_pool_dilations_padding_and_ints() {
    let x = Tensor::from_f32(&[1, 1, 8], vec![3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0]);
    let op = Op::MaxPool {
        auto_pad: "NOTSET".into(),
        ceil_mode: 0,
        dilations: vec![3],
        kernel_shape: vec![2],
        pads: vec![],
        storage_order: 0,
        strides: vec![],
    };
    let out = eval(&op, &[Some(&x)], 2).unwrap();
    assert_close(&out[0], &[3.0, 5.0, 9.0, 2.0, 6.0]);
    assert_eq!(out[1].as_i64().unwrap(), &[0, 4, 5, 6, 7]);
    // Padding is never the maximum, even for negative inputs.
    let neg = Tensor::from_f32(&[1, 1, 2, 2], vec![-4.0, -3.0, -2.0, -1.0]);
    let out = eval(
        &max_pool(&[2, 2], &[1, 1], &[1, 1, 1, 1], false, 0),
        &[Some(&neg)],
        1,
    )
    .unwrap();
    assert_close(
        &out[0],
        &[-4.0, -3.0, -3.0, -2.0, -1.0, -1.0, -2.0, -1.0, -1.0],
    );
    let u = Tensor::from_f64s(DType::U8, &[1, 1, 2, 2], [7.0, 250.0, 3.0, 9.0]);
    let out = eval(&max_pool(&[2, 2], &[], &[], false, 0), &[Some(&u)], 1).unwrap();
    assert_eq!(out[0].dtype(), DType::U8);
    assert_eq!(out[0].to_i64_vec(), vec![250]);
}

#[test]
fn average_pool_padding_and_ceil_mode() {
    let x = ramp(&[1, 1, 5, 5], 0.0);
    let incl = eval(
        &avg_pool(&[3, 3], &[2, 2], &[1, 1, 1, 1], true, true),
        &[Some(&x)],
        1,
    )
    .unwrap();
    assert_eq!(incl[0].shape(), &[1, 1, 3, 3]);
    assert_close(
        &incl[0],
        &[
            4.0 / 3.0,
            3.0,
            8.0 / 3.0,
            7.0,
            12.0,
            9.0,
            8.0,
            13.0,
            28.0 / 3.0,
        ],
    );
    let excl = eval(
        &avg_pool(&[3, 3], &[2, 2], &[1, 1, 1, 1], true, false),
        &[Some(&x)],
        1,
    )
    .unwrap();
    assert_close(
        &excl[0],
        &[3.0, 4.5, 6.0, 10.5, 12.0, 13.5, 18.0, 19.5, 21.0],
    );
    // Asymmetric pads and kernel.
    let asym = eval(
        &avg_pool(&[2, 3], &[2, 1], &[1, 0, 0, 2], false, false),
        &[Some(&x)],
        1,
    )
    .unwrap();
    assert_eq!(asym[0].shape(), &[1, 1, 3, 5]);
    assert_close(
        &asym[0],
        &[
            1.0, 2.0, 3.0, 3.5, 4.0, 8.5, 9.5, 10.5, 11.0, 11.5, 18.5, 19.5, 20.5, 21.0, 21.5,
        ],
    );
    // A ceil-mode window that would start in the end padding is dropped.
    let x3 = ramp(&[1, 1, 3], 0.0);
    let y = eval(&avg_pool(&[2], &[2], &[0, 2], true, false), &[Some(&x3)], 1).unwrap();
    assert_eq!(y[0].shape(), &[1, 1, 2]);
    assert_close(&y[0], &[0.5, 2.0]);
    // Integer input is not averaged.
    let xi = Tensor::from_i64(&[1, 1, 2], vec![1, 2]);
    assert!(eval(&avg_pool(&[2], &[], &[], false, false), &[Some(&xi)], 1).is_err());
}

#[test]
fn average_pool_auto_pad_and_3d() {
    let x = ramp(&[1, 1, 3, 3], 0.0);
    let mut op = avg_pool(&[2, 2], &[], &[], false, false);
    if let Op::AveragePool { auto_pad, .. } = &mut op {
        *auto_pad = "SAME_UPPER".into();
    }
    let y = eval(&op, &[Some(&x)], 1).unwrap();
    assert_close(&y[0], &[2.0, 3.0, 3.5, 5.0, 6.0, 6.5, 6.5, 7.5, 8.0]);
    if let Op::AveragePool { auto_pad, .. } = &mut op {
        *auto_pad = "SAME_LOWER".into();
    }
    let y = eval(&op, &[Some(&x)], 1).unwrap();
    assert_close(&y[0], &[0.0, 0.5, 1.5, 1.5, 2.0, 3.0, 4.5, 5.0, 6.0]);
    let x = ramp(&[1, 1, 2, 2, 2], 0.0);
    let y = eval(
        &avg_pool(&[2, 2, 2], &[], &[], false, false),
        &[Some(&x)],
        1,
    )
    .unwrap();
    assert_eq!(y[0].shape(), &[1, 1, 1, 1, 1]);
    assert_close(&y[0], &[3.5]);
}

#[test]
fn lp_pool() {
    let x = Tensor::from_f32(&[1, 1, 6], vec![-1.0, -0.5, 0.0, 0.5, 1.0, 1.5]);
    let op = Op::LpPool {
        auto_pad: "NOTSET".into(),
        ceil_mode: 0,
        dilations: vec![],
        kernel_shape: vec![3],
        p: 2,
        pads: vec![1, 1],
        strides: vec![2],
    };
    let y = eval(&op, &[Some(&x)], 1).unwrap();
    assert_close(&y[0], &[1.118034, 0.70710677, 1.8708287]);
    let op = Op::LpPool {
        auto_pad: "NOTSET".into(),
        ceil_mode: 0,
        dilations: vec![],
        kernel_shape: vec![2],
        p: 3,
        pads: vec![],
        strides: vec![],
    };
    let y = eval(&op, &[Some(&x)], 1).unwrap();
    assert_close(&y[0], &[1.0400419, 0.5, 0.5, 1.0400419, 1.6355332]);
}

#[test]
fn global_pools() {
    let x = Tensor::from_f32(
        &[1, 2, 2, 2],
        vec![1.0, -2.0, 3.0, 4.0, 0.0, 0.0, 3.0, -4.0],
    );
    let y = eval(&Op::GlobalAveragePool {}, &[Some(&x)], 1).unwrap();
    assert_eq!(y[0].shape(), &[1, 2, 1, 1]);
    assert_close(&y[0], &[1.5, -0.25]);
    let y = eval(&Op::GlobalMaxPool {}, &[Some(&x)], 1).unwrap();
    assert_close(&y[0], &[4.0, 3.0]);
    let y = eval(&Op::GlobalLpPool { p: 2 }, &[Some(&x)], 1).unwrap();
    assert_close(&y[0], &[30f32.sqrt(), 5.0]);
    let flat = Tensor::from_f32(&[2, 2], vec![1.0; 4]);
    assert!(eval(&Op::GlobalMaxPool {}, &[Some(&flat)], 1).is_err());
}

#[test]
fn bad_windows() {
    let x = ramp(&[1, 1, 2, 2], 0.0);
    assert!(eval(&max_pool(&[3, 3], &[], &[], false, 0), &[Some(&x)], 1).is_err());
    assert!(eval(&max_pool(&[2], &[], &[], false, 0), &[Some(&x)], 1).is_err());
    assert!(eval(&max_pool(&[2, 2], &[0, 1], &[], false, 0), &[Some(&x)], 1).is_err());
    assert!(eval(
        &max_pool(&[2, 2], &[], &[-1, 0, 0, 0], false, 0),
        &[Some(&x)],
        1
    )
    .is_err());
}
