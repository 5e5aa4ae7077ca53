//! Tests of the data-movement ops.

use super::*;
use sparsec_ir::DType;

fn ramp(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    Tensor::from_f32(shape, (0..n).map(|i| i as f32).collect())
}

fn i64s(v: &[i64]) -> Tensor {
    Tensor::from_i64(&[v.len()], v.to_vec())
}

fn run(op: &Op, inputs: &[Option<&Tensor>]) -> Result<Tensor, InterpError> {
    eval(op, inputs)
}

#[test]
fn transpose_permutes() {
    let x = ramp(&[2, 3]);
    let y = run(&Op::Transpose { perm: vec![] }, &[Some(&x)]).unwrap();
    assert_eq!(y.shape(), &[3, 2]);
    assert_eq!(y.as_f32().unwrap(), &[0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    let x = ramp(&[2, 3, 4]);
    let y = run(
        &Op::Transpose {
            perm: vec![1, 2, 0],
        },
        &[Some(&x)],
    )
    .unwrap();
    assert_eq!(y.shape(), &[3, 4, 2]);
    // y[i][j][k] = x[k][i][j] = 12k + 4i + j.
    assert_eq!(y.as_f32().unwrap()[..4], [0.0, 12.0, 1.0, 13.0]);
    assert_eq!(y.as_f32().unwrap()[23], 23.0);
    let b = Tensor::from_bool(&[1, 2], vec![true, false]);
    let y = run(&Op::Transpose { perm: vec![1, 0] }, &[Some(&b)]).unwrap();
    assert_eq!(y.shape(), &[2, 1]);
    assert!(run(
        &Op::Transpose {
            perm: vec![0, 0, 1]
        },
        &[Some(&x)]
    )
    .is_err());
    assert!(run(&Op::Transpose { perm: vec![0, 1] }, &[Some(&x)]).is_err());
}

#[test]
fn expand_and_tile() {
    let x = Tensor::from_f32(&[3, 1], vec![1.0, 2.0, 3.0]);
    let y = run(&Op::Expand {}, &[Some(&x), Some(&i64s(&[2, 1, 2]))]).unwrap();
    assert_eq!(y.shape(), &[2, 3, 2]);
    assert_eq!(
        y.as_f32().unwrap(),
        &[1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0]
    );
    // The result keeps the larger dimension on both sides.
    let y = run(&Op::Expand {}, &[Some(&x), Some(&i64s(&[1, 1]))]).unwrap();
    assert_eq!(y.shape(), &[3, 1]);
    assert!(run(&Op::Expand {}, &[Some(&x), Some(&i64s(&[2, 2, 2]))]).is_err());
    let m = Tensor::from_i64(&[2, 2], vec![1, 2, 3, 4]);
    let y = run(&Op::Tile {}, &[Some(&m), Some(&i64s(&[2, 1]))]).unwrap();
    assert_eq!(y.shape(), &[4, 2]);
    assert_eq!(y.as_i64().unwrap(), &[1, 2, 3, 4, 1, 2, 3, 4]);
    let y = run(&Op::Tile {}, &[Some(&m), Some(&i64s(&[1, 2]))]).unwrap();
    assert_eq!(y.as_i64().unwrap(), &[1, 2, 1, 2, 3, 4, 3, 4]);
    let y = run(&Op::Tile {}, &[Some(&m), Some(&i64s(&[0, 2]))]).unwrap();
    assert_eq!(y.shape(), &[0, 4]);
    assert!(run(&Op::Tile {}, &[Some(&m), Some(&i64s(&[2]))]).is_err());
    assert!(run(&Op::Tile {}, &[Some(&m), Some(&i64s(&[-1, 1]))]).is_err());
}

#[test]
fn concat_along_axes() {
    let a = Tensor::from_f32(&[2, 1], vec![1.0, 2.0]);
    let b = Tensor::from_f32(&[2, 2], vec![3.0, 4.0, 5.0, 6.0]);
    let y = run(&Op::Concat { axis: -1 }, &[Some(&a), Some(&b)]).unwrap();
    assert_eq!(y.shape(), &[2, 3]);
    assert_eq!(y.as_f32().unwrap(), &[1.0, 3.0, 4.0, 2.0, 5.0, 6.0]);
    let c = Tensor::from_f32(&[1, 2], vec![7.0, 8.0]);
    let e = Tensor::from_f32(&[0, 2], vec![]);
    let y = run(&Op::Concat { axis: 0 }, &[Some(&b), Some(&e), Some(&c)]).unwrap();
    assert_eq!(y.shape(), &[3, 2]);
    assert_eq!(y.as_f32().unwrap(), &[3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
    assert!(run(&Op::Concat { axis: 0 }, &[Some(&a), Some(&b)]).is_err());
    assert!(run(&Op::Concat { axis: 2 }, &[Some(&a), Some(&b)]).is_err());
    let i = Tensor::from_i64(&[2, 1], vec![1, 2]);
    assert!(run(&Op::Concat { axis: 1 }, &[Some(&i), Some(&b)]).is_err());
}

#[test]
fn split_by_sizes_and_counts() {
    let x = ramp(&[2, 7]);
    let op = Op::Split {
        axis: 1,
        num_outputs: 3,
    };
    let parts = split(&op, &[Some(&x), None], 3).unwrap();
    let shapes: Vec<&[usize]> = parts.iter().map(Tensor::shape).collect();
    assert_eq!(shapes, vec![&[2, 3][..], &[2, 3], &[2, 1]]);
    assert_eq!(parts[2].as_f32().unwrap(), &[6.0, 13.0]);
    assert_eq!(
        parts[1].as_f32().unwrap(),
        &[3.0, 4.0, 5.0, 10.0, 11.0, 12.0]
    );
    // Sizes operand, including an empty part.
    let op = Op::Split {
        axis: -1,
        num_outputs: 0,
    };
    let parts = split(&op, &[Some(&x), Some(&i64s(&[0, 2, 5]))], 3).unwrap();
    assert_eq!(parts[0].shape(), &[2, 0]);
    assert_eq!(parts[1].as_f32().unwrap(), &[0.0, 1.0, 7.0, 8.0]);
    // Equal parts from the number of results asked.
    let op = Op::Split {
        axis: 0,
        num_outputs: 0,
    };
    let parts = split(&op, &[Some(&x), None], 2).unwrap();
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[1].shape(), &[1, 7]);
    assert!(split(&op, &[Some(&x), Some(&i64s(&[1, 2]))], 2).is_err());
    assert!(split(&op, &[Some(&x), Some(&i64s(&[3, -1]))], 2).is_err());
    let op = Op::Split {
        axis: 1,
        num_outputs: 5,
    };
    assert!(split(&op, &[Some(&x), None], 5).is_err());
}

fn slice(
    x: &Tensor,
    starts: &[i64],
    ends: &[i64],
    axes: Option<&[i64]>,
    steps: Option<&[i64]>,
) -> Result<Tensor, InterpError> {
    let (s, e) = (i64s(starts), i64s(ends));
    let a = axes.map(i64s);
    let st = steps.map(i64s);
    run(
        &Op::Slice {},
        &[Some(x), Some(&s), Some(&e), a.as_ref(), st.as_ref()],
    )
}

#[test]
fn slice_clamps_and_steps() {
    let x = ramp(&[10]);
    let y = slice(&x, &[1], &[8], None, Some(&[3])).unwrap();
    assert_eq!(y.as_f32().unwrap(), &[1.0, 4.0, 7.0]);
    let y = slice(&x, &[-1], &[i64::MIN], None, Some(&[-2])).unwrap();
    assert_eq!(y.as_f32().unwrap(), &[9.0, 7.0, 5.0, 3.0, 1.0]);
    let y = slice(&x, &[-3], &[i64::MAX], None, None).unwrap();
    assert_eq!(y.as_f32().unwrap(), &[7.0, 8.0, 9.0]);
    let y = slice(&x, &[20], &[30], None, None).unwrap();
    assert_eq!(y.shape(), &[0]);
    let y = slice(&x, &[20], &[-30], None, Some(&[-4])).unwrap();
    assert_eq!(y.as_f32().unwrap(), &[9.0, 5.0, 1.0]);
    let x = ramp(&[3, 4]);
    let y = slice(&x, &[1, 0], &[-1, 3], Some(&[-1, 0]), None).unwrap();
    assert_eq!(y.shape(), &[3, 2]);
    assert_eq!(y.as_f32().unwrap(), &[1.0, 2.0, 5.0, 6.0, 9.0, 10.0]);
    assert!(slice(&x, &[0], &[1], None, Some(&[0])).is_err());
    assert!(slice(&x, &[0, 0], &[1, 1], Some(&[1, -1]), None).is_err());
    assert!(slice(&x, &[0, 0], &[1], None, None).is_err());
    assert!(slice(&x, &[0], &[1], Some(&[2]), None).is_err());
}

fn pad(x: &Tensor, mode: &str, pads: &[i64], value: Option<f32>, axes: Option<&[i64]>) -> Tensor {
    let p = i64s(pads);
    let v = value.map(Tensor::scalar_f32);
    let a = axes.map(i64s);
    run(
        &Op::Pad { mode: mode.into() },
        &[Some(x), Some(&p), v.as_ref(), a.as_ref()],
    )
    .unwrap()
}

#[test]
fn pad_modes() {
    let x = Tensor::from_f32(&[3], vec![1.0, 2.0, 3.0]);
    let got = |mode| {
        pad(&x, mode, &[2, 2], None, None)
            .as_f32()
            .unwrap()
            .to_vec()
    };
    assert_eq!(got("constant"), vec![0.0, 0.0, 1.0, 2.0, 3.0, 0.0, 0.0]);
    assert_eq!(got("reflect"), vec![3.0, 2.0, 1.0, 2.0, 3.0, 2.0, 1.0]);
    assert_eq!(got("edge"), vec![1.0, 1.0, 1.0, 2.0, 3.0, 3.0, 3.0]);
    assert_eq!(got("wrap"), vec![2.0, 3.0, 1.0, 2.0, 3.0, 1.0, 2.0]);
    // Negative pads crop; constant_value fills.
    let y = pad(&x, "constant", &[-1, 1], Some(9.0), None);
    assert_eq!(y.as_f32().unwrap(), &[2.0, 3.0, 9.0]);
    // Axes operand: pad only the last axis of a matrix.
    let m = Tensor::from_f32(&[2, 2], vec![1.0, 2.0, 3.0, 4.0]);
    let y = pad(&m, "edge", &[1, 0], None, Some(&[-1]));
    assert_eq!(y.shape(), &[2, 3]);
    assert_eq!(y.as_f32().unwrap(), &[1.0, 1.0, 2.0, 3.0, 3.0, 4.0]);
    let y = pad(&m, "constant", &[1, 0, 0, 1], Some(-1.0), None);
    assert_eq!(y.shape(), &[3, 3]);
    assert_eq!(
        y.as_f32().unwrap(),
        &[-1.0, -1.0, -1.0, 1.0, 2.0, -1.0, 3.0, 4.0, -1.0]
    );
    let p = i64s(&[1, 1]);
    let bad = run(
        &Op::Pad {
            mode: "constant".into(),
        },
        &[Some(&m), Some(&p)],
    );
    assert!(bad.is_err());
    let p = i64s(&[-4, 0]);
    assert!(run(
        &Op::Pad {
            mode: "constant".into()
        },
        &[Some(&x), Some(&p)]
    )
    .is_err());
    let p = i64s(&[1, 0]);
    let err = run(
        &Op::Pad {
            mode: "mirror".into(),
        },
        &[Some(&x), Some(&p)],
    )
    .unwrap_err();
    assert!(err.is_unsupported());
    let ints = Tensor::from_f64s(DType::U8, &[2], [5.0, 6.0]);
    let y = run(
        &Op::Pad {
            mode: "constant".into(),
        },
        &[
            Some(&ints),
            Some(&p),
            Some(&Tensor::from_f64s(DType::U8, &[], [7.0])),
        ],
    )
    .unwrap();
    assert_eq!(y.dtype(), DType::U8);
    assert_eq!(y.to_i64_vec(), vec![7, 5, 6]);
}

#[test]
fn depth_and_space() {
    let x = ramp(&[1, 8, 2, 3]);
    let dcr = run(
        &Op::DepthToSpace {
            blocksize: 2,
            mode: "DCR".into(),
        },
        &[Some(&x)],
    )
    .unwrap();
    assert_eq!(dcr.shape(), &[1, 2, 4, 6]);
    assert_eq!(
        dcr.as_f32().unwrap()[..12],
        [0.0, 12.0, 1.0, 13.0, 2.0, 14.0, 24.0, 36.0, 25.0, 37.0, 26.0, 38.0]
    );
    let crd = run(
        &Op::DepthToSpace {
            blocksize: 2,
            mode: "CRD".into(),
        },
        &[Some(&x)],
    )
    .unwrap();
    assert_eq!(
        crd.as_f32().unwrap()[..12],
        [0.0, 6.0, 1.0, 7.0, 2.0, 8.0, 12.0, 18.0, 13.0, 19.0, 14.0, 20.0]
    );
    // SpaceToDepth undoes DepthToSpace in DCR order.
    let back = run(&Op::SpaceToDepth { blocksize: 2 }, &[Some(&dcr)]).unwrap();
    assert_eq!(back, x);
    assert!(run(&Op::SpaceToDepth { blocksize: 4 }, &[Some(&dcr)]).is_err());
    let odd = ramp(&[1, 3, 2, 2]);
    let op = Op::DepthToSpace {
        blocksize: 2,
        mode: "DCR".into(),
    };
    assert!(run(&op, &[Some(&odd)]).is_err());
    assert!(run(&op, &[Some(&ramp(&[4, 2]))]).is_err());
}

#[test]
fn absurd_shapes_are_errors() {
    let x = ramp(&[2, 3]);
    let big = i64s(&[1 << 40, 1 << 40]);
    assert!(run(&Op::Tile {}, &[Some(&x), Some(&big)]).is_err());
    assert!(run(&Op::Expand {}, &[Some(&ramp(&[1, 1])), Some(&big)]).is_err());
    let pads = i64s(&[0, i64::MAX, 0, 0]);
    assert!(run(
        &Op::Pad {
            mode: "edge".into()
        },
        &[Some(&x), Some(&pads)]
    )
    .is_err());
    let pads = i64s(&[i64::MIN, 0]);
    assert!(run(
        &Op::Pad {
            mode: "edge".into()
        },
        &[Some(&ramp(&[3])), Some(&pads)]
    )
    .is_err());
    // An axis named twice.
    let pads = i64s(&[1, 1, 1, 1]);
    let axes = i64s(&[0, -2]);
    let op = Op::Pad {
        mode: "constant".into(),
    };
    assert!(run(&op, &[Some(&x), Some(&pads), None, Some(&axes)]).is_err());
    // Scalars, more starts than axes, huge counts and block sizes.
    let s = Tensor::scalar_f32(1.0);
    let op = Op::Split {
        axis: 0,
        num_outputs: 2,
    };
    assert!(split(&op, &[Some(&s), None], 2).is_err());
    let op = Op::Split {
        axis: 0,
        num_outputs: i64::MAX,
    };
    assert!(split(&op, &[Some(&ramp(&[0])), None], 1).is_err());
    let sizes = i64s(&[i64::MAX, i64::MAX, 2]);
    assert!(split(&op, &[Some(&ramp(&[0])), Some(&sizes)], 3).is_err());
    assert!(slice(&ramp(&[2]), &[0, 0], &[1, 1], None, None).is_err());
    let op = Op::DepthToSpace {
        blocksize: i64::MAX,
        mode: "DCR".into(),
    };
    assert!(run(&op, &[Some(&ramp(&[1, 8, 2, 3]))]).is_err());
}
