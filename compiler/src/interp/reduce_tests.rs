//! Unit tests of the reduce family, with values checked against numpy.

use super::*;

fn red(op: Op, x: &Tensor, axes: Option<Vec<i64>>) -> Tensor {
    let a = axes.map(|v| Tensor::from_i64(&[v.len()], v));
    let mut out = eval(&op, &[Some(x), a.as_ref()], 1).unwrap();
    out.remove(0)
}

fn sum(keepdims: i64) -> Op {
    Op::ReduceSum {
        keepdims,
        noop_with_empty_axes: 0,
    }
}

/// Each `Reduce*` op with `keepdims=0`, and its result over axis 1 of `[[1, -2], [3, 4]]`.
fn all_kinds() -> Vec<(Op, [f32; 2])> {
    let (keepdims, noop_with_empty_axes) = (0, 0);
    macro_rules! op {
        ($v:ident) => {
            Op::$v {
                keepdims,
                noop_with_empty_axes,
            }
        };
    }
    vec![
        (op!(ReduceSum), [-1.0, 7.0]),
        (op!(ReduceMean), [-0.5, 3.5]),
        (op!(ReduceMax), [1.0, 4.0]),
        (op!(ReduceMin), [-2.0, 3.0]),
        (op!(ReduceProd), [-2.0, 12.0]),
        (op!(ReduceL1), [3.0, 7.0]),
        (op!(ReduceL2), [2.236068, 5.0]),
        (op!(ReduceSumSquare), [5.0, 25.0]),
        (op!(ReduceLogSumExp), [1.0485873, 4.3132615]),
    ]
}

#[test]
fn each_reduction_mode_on_f32() {
    let x = Tensor::from_f32(&[2, 2], vec![1.0, -2.0, 3.0, 4.0]);
    for (op, want) in all_kinds() {
        let y = red(op.clone(), &x, Some(vec![1]));
        assert_eq!(y.shape(), &[2], "{op:?}");
        let got = y.as_f32().unwrap();
        for (g, w) in got.iter().zip(want) {
            assert!(
                (g - w).abs() <= 1e-6 * w.abs().max(1.0),
                "{op:?}: {got:?} vs {want:?}"
            );
        }
    }
    let p = Tensor::from_f32(&[2, 2], vec![1.0, 2.0, 3.0, 4.0]);
    let op = Op::ReduceLogSum {
        keepdims: 1,
        noop_with_empty_axes: 0,
    };
    let y = red(op, &p, Some(vec![0]));
    assert_eq!(y.shape(), &[1, 2]);
    let got = y.as_f32().unwrap();
    assert!((got[0] - 4f32.ln()).abs() < 1e-6 && (got[1] - 6f32.ln()).abs() < 1e-6);
}

#[test]
fn axes_keepdims_negative_and_noop() {
    let x = Tensor::from_f32(&[2, 3, 2], (0..12).map(|v| v as f32).collect());
    let y = red(sum(1), &x, Some(vec![0, -1]));
    assert_eq!(y.shape(), &[1, 3, 1]);
    assert_eq!(y.as_f32().unwrap(), &[14.0, 22.0, 30.0]);
    let y = red(sum(0), &x, Some(vec![2, 0]));
    assert_eq!(y.shape(), &[3]);
    let mean = Op::ReduceMean {
        keepdims: 0,
        noop_with_empty_axes: 0,
    };
    let y = red(mean, &x, Some(vec![-1]));
    assert_eq!(y.shape(), &[2, 3]);
    assert_eq!(y.as_f32().unwrap(), &[0.5, 2.5, 4.5, 6.5, 8.5, 10.5]);
    // Absent or empty axes reduce everything...
    let y = red(sum(0), &x, None);
    assert_eq!(y.shape(), &[] as &[usize]);
    assert_eq!(y.as_f32().unwrap(), &[66.0]);
    let y = red(sum(1), &x, Some(vec![]));
    assert_eq!(y.shape(), &[1, 1, 1]);
    // ...unless noop_with_empty_axes asks for the identity.
    let noop = Op::ReduceSum {
        keepdims: 1,
        noop_with_empty_axes: 1,
    };
    assert_eq!(red(noop.clone(), &x, Some(vec![])), x);
    assert_eq!(red(noop, &x, None), x);
    let bad = eval(
        &sum(1),
        &[Some(&x), Some(&Tensor::from_i64(&[1], vec![3]))],
        1,
    );
    assert!(bad.is_err());
}

#[test]
fn integer_reductions_are_exact() {
    let x = Tensor::new(vec![2, 2], TensorData::I32(vec![i32::MAX, 1, 1, 2])).unwrap();
    let y = red(sum(0), &x, Some(vec![1]));
    assert_eq!(y.data(), &TensorData::I32(vec![i32::MIN, 3]));
    let big = Tensor::from_i64(&[2], vec![(1 << 60) + 1, 1]);
    let y = red(sum(0), &big, None);
    assert_eq!(y.as_i64().unwrap(), &[(1 << 60) + 2]);
    let mean = Op::ReduceMean {
        keepdims: 0,
        noop_with_empty_axes: 0,
    };
    let m = Tensor::from_i64(&[2, 2], vec![1, 2, -3, -4]);
    // numpy: mean in f64 (1.5, -3.5), then truncated by astype.
    assert_eq!(red(mean, &m, Some(vec![1])).as_i64().unwrap(), &[1, -3]);
    let u = Tensor::new(vec![3], TensorData::U8(vec![3, 250, 7])).unwrap();
    let max = Op::ReduceMax {
        keepdims: 0,
        noop_with_empty_axes: 0,
    };
    assert_eq!(red(max, &u, None).data(), &TensorData::U8(vec![250]));
    let prod = Op::ReduceProd {
        keepdims: 0,
        noop_with_empty_axes: 0,
    };
    assert_eq!(red(prod, &m, None).as_i64().unwrap(), &[24]);
}

#[test]
fn empty_reductions_and_bool() {
    let x = Tensor::from_f32(&[2, 0, 2], vec![]);
    let cases = [
        (sum(1), 0.0),
        (
            Op::ReduceProd {
                keepdims: 1,
                noop_with_empty_axes: 0,
            },
            1.0,
        ),
        (
            Op::ReduceMax {
                keepdims: 1,
                noop_with_empty_axes: 0,
            },
            f32::NEG_INFINITY,
        ),
        (
            Op::ReduceMin {
                keepdims: 1,
                noop_with_empty_axes: 0,
            },
            f32::INFINITY,
        ),
        (
            Op::ReduceLogSumExp {
                keepdims: 1,
                noop_with_empty_axes: 0,
            },
            f32::NEG_INFINITY,
        ),
    ];
    for (op, want) in cases {
        let y = red(op.clone(), &x, Some(vec![1]));
        assert_eq!(y.shape(), &[2, 1, 2]);
        assert_eq!(y.as_f32().unwrap(), &[want; 4], "{op:?}");
    }
    let i = Tensor::new(vec![0], TensorData::I8(vec![])).unwrap();
    let max = Op::ReduceMax {
        keepdims: 0,
        noop_with_empty_axes: 0,
    };
    assert_eq!(
        red(max.clone(), &i, None).data(),
        &TensorData::I8(vec![i8::MIN])
    );
    let b = Tensor::from_bool(&[2, 2], vec![true, false, false, false]);
    let y = red(max, &b, Some(vec![1]));
    assert_eq!(y.data(), &TensorData::Bool(vec![true, false]));
    let min = Op::ReduceMin {
        keepdims: 0,
        noop_with_empty_axes: 0,
    };
    assert_eq!(
        red(min, &b, Some(vec![0])).data(),
        &TensorData::Bool(vec![false, false])
    );
}

#[test]
fn arg_max_and_min() {
    let x = Tensor::from_f32(&[2, 3], vec![1.0, 5.0, 5.0, 2.0, 0.0, 2.0]);
    let am = |axis, keepdims, last| Op::ArgMax {
        axis,
        keepdims,
        select_last_index: last,
    };
    let y = eval(&am(1, 1, 0), &[Some(&x)], 1).unwrap();
    assert_eq!(y[0].shape(), &[2, 1]);
    assert_eq!(y[0].as_i64().unwrap(), &[1, 0]);
    let y = eval(&am(-1, 0, 1), &[Some(&x)], 1).unwrap();
    assert_eq!(y[0].shape(), &[2]);
    assert_eq!(y[0].as_i64().unwrap(), &[2, 2]);
    let y = eval(&am(0, 0, 0), &[Some(&x)], 1).unwrap();
    assert_eq!(y[0].as_i64().unwrap(), &[1, 0, 0]);
    let amin = Op::ArgMin {
        axis: 1,
        keepdims: 0,
        select_last_index: 1,
    };
    let i = Tensor::from_i64(&[2, 3], vec![3, 1, 1, 0, 9, 0]);
    let y = eval(&amin, &[Some(&i)], 1).unwrap();
    assert_eq!(y[0].as_i64().unwrap(), &[2, 2]);
    let n = Tensor::from_f32(&[3], vec![1.0, f32::NAN, 3.0]);
    let y = eval(&am(0, 0, 0), &[Some(&n)], 1).unwrap();
    assert_eq!(y[0].as_i64().unwrap(), &[1]);
    assert!(eval(&am(2, 0, 0), &[Some(&x)], 1).is_err());
}

#[test]
fn top_k_sorts_and_keeps_tie_order() {
    let x = Tensor::from_f32(&[2, 4], vec![1.0, 3.0, 3.0, 2.0, 0.0, -1.0, 0.0, 5.0]);
    let k = Tensor::from_i64(&[1], vec![3]);
    let top = |axis, largest| Op::TopK {
        axis,
        largest,
        sorted: 1,
    };
    let y = eval(&top(-1, 1), &[Some(&x), Some(&k)], 2).unwrap();
    assert_eq!(y[0].shape(), &[2, 3]);
    assert_eq!(y[0].as_f32().unwrap(), &[3.0, 3.0, 2.0, 5.0, 0.0, 0.0]);
    assert_eq!(y[1].as_i64().unwrap(), &[1, 2, 3, 3, 0, 2]);
    let y = eval(&top(1, 0), &[Some(&x), Some(&k)], 2).unwrap();
    assert_eq!(y[0].as_f32().unwrap(), &[1.0, 2.0, 3.0, -1.0, 0.0, 0.0]);
    assert_eq!(y[1].as_i64().unwrap(), &[0, 3, 1, 1, 0, 2]);
    let i = Tensor::new(vec![3, 1], TensorData::I32(vec![4, 9, 4])).unwrap();
    let k2 = Tensor::from_i64(&[1], vec![2]);
    let y = eval(&top(0, 1), &[Some(&i), Some(&k2)], 2).unwrap();
    assert_eq!(y[0].data(), &TensorData::I32(vec![9, 4]));
    assert_eq!(y[1].as_i64().unwrap(), &[1, 0]);
    let k9 = Tensor::from_i64(&[1], vec![9]);
    assert!(eval(&top(0, 1), &[Some(&i), Some(&k9)], 2).is_err());
}

#[test]
fn cum_sum_modes() {
    let x = Tensor::from_f32(&[2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let axis = Tensor::from_i64(&[], vec![1]);
    let cs = |exclusive, reverse| Op::CumSum { exclusive, reverse };
    let run = |op: Op, x: &Tensor, a: &Tensor| eval(&op, &[Some(x), Some(a)], 1).unwrap().remove(0);
    assert_eq!(
        run(cs(0, 0), &x, &axis).as_f32().unwrap(),
        &[1.0, 3.0, 6.0, 4.0, 9.0, 15.0]
    );
    assert_eq!(
        run(cs(1, 0), &x, &axis).as_f32().unwrap(),
        &[0.0, 1.0, 3.0, 0.0, 4.0, 9.0]
    );
    assert_eq!(
        run(cs(0, 1), &x, &axis).as_f32().unwrap(),
        &[6.0, 5.0, 3.0, 15.0, 11.0, 6.0]
    );
    assert_eq!(
        run(cs(1, 1), &x, &axis).as_f32().unwrap(),
        &[5.0, 3.0, 0.0, 11.0, 6.0, 0.0]
    );
    let a0 = Tensor::new(vec![1], TensorData::I32(vec![-2])).unwrap();
    let i = Tensor::new(vec![2, 2], TensorData::I32(vec![1, 2, 3, 4])).unwrap();
    assert_eq!(
        run(cs(0, 0), &i, &a0).data(),
        &TensorData::I32(vec![1, 2, 4, 6])
    );
    let bad = Tensor::from_f32(&[1], vec![0.0]);
    assert!(eval(&cs(0, 0), &[Some(&x), Some(&bad)], 1).is_err());
}
