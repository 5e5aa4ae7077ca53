//! Tests of the shape-computing ops and `Trilu`.

use super::*;
use sparsec_ir::{DType, Scalar};

fn ramp(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    Tensor::from_f32(shape, (0..n).map(|i| i as f32).collect())
}

fn i64s(v: &[i64]) -> Tensor {
    Tensor::from_i64(&[v.len()], v.to_vec())
}

fn run(op: &Op, inputs: &[Option<&Tensor>]) -> Result<Tensor, InterpError> {
    Ok(eval(op, inputs, 1)?.remove(0))
}

#[test]
fn reshape_copies_zero_and_infers() {
    let x = ramp(&[2, 3, 4]);
    let op = Op::Reshape { allowzero: 0 };
    let y = run(&op, &[Some(&x), Some(&i64s(&[4, 0, -1]))]).unwrap();
    assert_eq!(y.shape(), &[4, 3, 2]);
    assert_eq!(y.as_f32(), x.as_f32());
    let y = run(&op, &[Some(&x), Some(&i64s(&[-1]))]).unwrap();
    assert_eq!(y.shape(), &[24]);
    for bad in [&[-1, -1][..], &[5, -1], &[0, 0, 0, 0], &[7], &[-2, 12]] {
        assert!(run(&op, &[Some(&x), Some(&i64s(bad))]).is_err(), "{bad:?}");
    }
    // With allowzero a 0 is a real zero-size dimension.
    let empty = Tensor::from_f32(&[0, 3], vec![]);
    let op = Op::Reshape { allowzero: 1 };
    let y = run(&op, &[Some(&empty), Some(&i64s(&[3, 0]))]).unwrap();
    assert_eq!(y.shape(), &[3, 0]);
    assert!(run(&op, &[Some(&x), Some(&i64s(&[0, 24]))]).is_err());
}

#[test]
fn flatten_squeeze_unsqueeze() {
    let x = ramp(&[2, 3, 4]);
    for (axis, shape) in [(0, [1, 24]), (1, [2, 12]), (-1, [6, 4]), (3, [24, 1])] {
        let y = run(&Op::Flatten { axis }, &[Some(&x)]).unwrap();
        assert_eq!(y.shape(), &shape);
    }
    assert!(run(&Op::Flatten { axis: 4 }, &[Some(&x)]).is_err());
    let x = ramp(&[1, 3, 1, 2]);
    let y = run(&Op::Squeeze {}, &[Some(&x), None]).unwrap();
    assert_eq!(y.shape(), &[3, 2]);
    let y = run(&Op::Squeeze {}, &[Some(&x), Some(&i64s(&[-2]))]).unwrap();
    assert_eq!(y.shape(), &[1, 3, 2]);
    assert!(run(&Op::Squeeze {}, &[Some(&x), Some(&i64s(&[1]))]).is_err());
    assert!(run(&Op::Squeeze {}, &[Some(&x), Some(&i64s(&[4]))]).is_err());
    let x = ramp(&[3, 4]);
    let y = run(&Op::Unsqueeze {}, &[Some(&x), Some(&i64s(&[0, -1]))]).unwrap();
    assert_eq!(y.shape(), &[1, 3, 4, 1]);
    let y = run(&Op::Unsqueeze {}, &[Some(&x), Some(&i64s(&[2, 0]))]).unwrap();
    assert_eq!(y.shape(), &[1, 3, 1, 4]);
    assert_eq!(y.as_f32(), x.as_f32());
    assert!(run(&Op::Unsqueeze {}, &[Some(&x), Some(&i64s(&[1, 1]))]).is_err());
    assert!(run(&Op::Unsqueeze {}, &[Some(&x), Some(&i64s(&[3]))]).is_err());
    let s = Tensor::scalar_f32(2.0);
    let y = run(&Op::Unsqueeze {}, &[Some(&s), Some(&i64s(&[0]))]).unwrap();
    assert_eq!(y.shape(), &[1]);
}

#[test]
fn shape_size_and_constant_of_shape() {
    let x = ramp(&[2, 3, 4, 5]);
    let shape = |start, end| run(&Op::Shape { start, end }, &[Some(&x)]).unwrap();
    assert_eq!(shape(0, i64::MAX).as_i64().unwrap(), &[2, 3, 4, 5]);
    assert_eq!(shape(1, -1).as_i64().unwrap(), &[3, 4]);
    assert_eq!(shape(-10, 2).as_i64().unwrap(), &[2, 3]);
    assert_eq!(shape(3, 1).as_i64().unwrap(), &[] as &[i64]);
    assert_eq!(shape(3, 1).shape(), &[0]);
    let y = run(&Op::Size {}, &[Some(&x)]).unwrap();
    assert_eq!(y.shape(), &[] as &[usize]);
    assert_eq!(y.as_i64().unwrap(), &[120]);
    let op = Op::ConstantOfShape {
        value: Scalar {
            dtype: DType::I32,
            value: 7.0,
        },
    };
    let y = run(&op, &[Some(&i64s(&[2, 3]))]).unwrap();
    assert_eq!(y.dtype(), DType::I32);
    assert_eq!(y.to_i64_vec(), vec![7; 6]);
    let y = run(&op, &[Some(&i64s(&[]))]).unwrap();
    assert_eq!(y.shape(), &[] as &[usize]);
    assert_eq!(y.to_i64_vec(), vec![7]);
    let y = run(&op, &[Some(&i64s(&[2, 0]))]).unwrap();
    assert_eq!(y.numel(), 0);
    assert!(run(&op, &[Some(&i64s(&[-1]))]).is_err());
}

#[test]
fn range_of_each_type() {
    let f = |v: f32| Tensor::scalar_f32(v);
    let y = run(
        &Op::Range {},
        &[Some(&f(1.0)), Some(&f(2.0)), Some(&f(0.3))],
    )
    .unwrap();
    let got = y.as_f32().unwrap();
    assert_eq!(got.len(), 4);
    for (g, w) in got.iter().zip([1.0, 1.3, 1.6, 1.9]) {
        assert!((g - w).abs() < 1e-6);
    }
    let i = |v: f64| Tensor::from_f64s(DType::I32, &[], [v]);
    let y = run(
        &Op::Range {},
        &[Some(&i(10.0)), Some(&i(4.0)), Some(&i(-3.0))],
    )
    .unwrap();
    assert_eq!(y.dtype(), DType::I32);
    assert_eq!(y.to_i64_vec(), vec![10, 7]);
    let z = Tensor::scalar_i64(0);
    let one = Tensor::scalar_i64(1);
    let y = run(&Op::Range {}, &[Some(&z), Some(&z), Some(&one)]).unwrap();
    assert_eq!(y.shape(), &[0]);
    let y = run(&Op::Range {}, &[Some(&one), Some(&z), Some(&one)]).unwrap();
    assert_eq!(y.shape(), &[0]);
    assert!(run(&Op::Range {}, &[Some(&one), Some(&z), Some(&z)]).is_err());
    assert!(run(&Op::Range {}, &[Some(&one), Some(&f(3.0)), Some(&one)]).is_err());
}

#[test]
fn trilu_upper_and_lower() {
    let x = Tensor::from_f32(&[3, 4], (1..=12).map(|v| v as f32).collect());
    let up = |k: Option<i64>, upper: i64| {
        let kt = k.map(Tensor::scalar_i64);
        run(&Op::Trilu { upper }, &[Some(&x), kt.as_ref()]).unwrap()
    };
    assert_eq!(
        up(None, 1).as_f32().unwrap(),
        &[1.0, 2.0, 3.0, 4.0, 0.0, 6.0, 7.0, 8.0, 0.0, 0.0, 11.0, 12.0]
    );
    assert_eq!(
        up(Some(1), 1).as_f32().unwrap(),
        &[0.0, 2.0, 3.0, 4.0, 0.0, 0.0, 7.0, 8.0, 0.0, 0.0, 0.0, 12.0]
    );
    assert_eq!(
        up(Some(-1), 0).as_f32().unwrap(),
        &[0.0, 0.0, 0.0, 0.0, 5.0, 0.0, 0.0, 0.0, 9.0, 10.0, 0.0, 0.0]
    );
    // Batched, integer.
    let b = Tensor::from_i64(&[2, 2, 2], vec![1, 2, 3, 4, 5, 6, 7, 8]);
    let y = run(&Op::Trilu { upper: 0 }, &[Some(&b), None]).unwrap();
    assert_eq!(y.as_i64().unwrap(), &[1, 0, 3, 4, 5, 0, 7, 8]);
    assert!(run(&Op::Trilu { upper: 0 }, &[Some(&ramp(&[3])), None]).is_err());
}

#[test]
fn absurd_shapes_are_errors() {
    let x = ramp(&[2, 3]);
    let big = i64s(&[1 << 40, 1 << 40]);
    assert!(run(&Op::Reshape { allowzero: 0 }, &[Some(&x), Some(&big)]).is_err());
    let op = Op::ConstantOfShape {
        value: Scalar {
            dtype: DType::F32,
            value: 0.0,
        },
    };
    assert!(run(&op, &[Some(&big)]).is_err());
    let (lo, hi, one) = (
        Tensor::scalar_i64(i64::MIN),
        Tensor::scalar_i64(i64::MAX),
        Tensor::scalar_i64(1),
    );
    assert!(run(&Op::Range {}, &[Some(&lo), Some(&hi), Some(&one)]).is_err());
}
