//! Tests of the gathers, scatters and `OneHot`.

use super::*;
use sparsec_ir::DType;

fn ramp(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    Tensor::from_f32(shape, (0..n).map(|i| i as f32).collect())
}

fn run(op: &Op, inputs: &[&Tensor]) -> Result<Tensor, InterpError> {
    let ins: Vec<Option<&Tensor>> = inputs.iter().map(|t| Some(*t)).collect();
    Ok(eval(op, &ins, 1)?.remove(0))
}

#[test]
fn gather_axes_and_negative_indices() {
    let x = ramp(&[3, 4]);
    let idx = Tensor::from_i64(&[2, 2], vec![0, 2, -1, 1]);
    let y = run(&Op::Gather { axis: 0 }, &[&x, &idx]).unwrap();
    assert_eq!(y.shape(), &[2, 2, 4]);
    let rows: Vec<f32> = [0.0, 2.0, 2.0, 1.0]
        .iter()
        .flat_map(|&r| (0..4).map(move |c| r * 4.0 + c as f32))
        .collect();
    assert_eq!(y.as_f32().unwrap(), rows.as_slice());
    let idx32 = Tensor::from_f64s(DType::I32, &[2], [3.0, -4.0]);
    let y = run(&Op::Gather { axis: -1 }, &[&x, &idx32]).unwrap();
    assert_eq!(y.shape(), &[3, 2]);
    assert_eq!(y.as_f32().unwrap(), &[3.0, 0.0, 7.0, 4.0, 11.0, 8.0]);
    // A scalar index drops the axis; bool data works too.
    let b = Tensor::from_bool(&[3], vec![false, true, false]);
    let y = run(&Op::Gather { axis: 0 }, &[&b, &Tensor::scalar_i64(1)]).unwrap();
    assert_eq!(y.shape(), &[] as &[usize]);
    assert_eq!(y.data(), &sparsec_ir::TensorData::Bool(vec![true]));
    let bad = Tensor::from_i64(&[1], vec![3]);
    assert!(run(&Op::Gather { axis: 0 }, &[&x, &bad]).is_err());
    let fidx = Tensor::from_f32(&[1], vec![0.0]);
    assert!(run(&Op::Gather { axis: 0 }, &[&x, &fidx]).is_err());
}

#[test]
fn gather_elements_and_nd() {
    let x = Tensor::from_f32(&[2, 2], vec![1.0, 2.0, 3.0, 4.0]);
    let idx = Tensor::from_i64(&[2, 2], vec![0, 0, 1, 0]);
    let y = run(&Op::GatherElements { axis: 1 }, &[&x, &idx]).unwrap();
    assert_eq!(y.as_f32().unwrap(), &[1.0, 1.0, 4.0, 3.0]);
    let idx = Tensor::from_i64(&[1, 2], vec![1, -2]);
    let y = run(&Op::GatherElements { axis: 0 }, &[&x, &idx]).unwrap();
    assert_eq!(y.as_f32().unwrap(), &[3.0, 2.0]);
    let bad = Tensor::from_i64(&[3, 1], vec![0, 0, 0]);
    assert!(run(&Op::GatherElements { axis: 1 }, &[&x, &bad]).is_err());
    let s = Tensor::scalar_f32(1.0);
    let i0 = Tensor::scalar_i64(0);
    assert!(run(&Op::GatherElements { axis: 0 }, &[&s, &i0]).is_err());
    let op = Op::ScatterElements {
        axis: 0,
        reduction: "none".into(),
    };
    assert!(run(&op, &[&s, &i0, &s]).is_err());
    // GatherNd: whole rows, single elements, and with a batch axis.
    let idx = Tensor::from_i64(&[2, 1], vec![1, 0]);
    let y = run(&Op::GatherNd { batch_dims: 0 }, &[&x, &idx]).unwrap();
    assert_eq!(y.shape(), &[2, 2]);
    assert_eq!(y.as_f32().unwrap(), &[3.0, 4.0, 1.0, 2.0]);
    let idx = Tensor::from_i64(&[2, 2], vec![0, 1, 1, -1]);
    let y = run(&Op::GatherNd { batch_dims: 0 }, &[&x, &idx]).unwrap();
    assert_eq!(y.as_f32().unwrap(), &[2.0, 4.0]);
    let x3 = ramp(&[2, 2, 2]);
    let idx = Tensor::from_i64(&[2, 1], vec![1, 0]);
    let y = run(&Op::GatherNd { batch_dims: 1 }, &[&x3, &idx]).unwrap();
    assert_eq!(y.shape(), &[2, 2]);
    assert_eq!(y.as_f32().unwrap(), &[2.0, 3.0, 4.0, 5.0]);
    let idx = Tensor::from_i64(&[1, 3], vec![0, 0, 0]);
    assert!(run(&Op::GatherNd { batch_dims: 0 }, &[&x, &idx]).is_err());
    let idx = Tensor::from_i64(&[3, 1], vec![0, 0, 0]);
    assert!(run(&Op::GatherNd { batch_dims: 1 }, &[&x3, &idx]).is_err());
}

fn scatter_nd(
    reduction: &str,
    data: &Tensor,
    idx: &Tensor,
    upd: &Tensor,
) -> Result<Tensor, InterpError> {
    run(
        &Op::ScatterNd {
            reduction: reduction.into(),
        },
        &[data, idx, upd],
    )
}

#[test]
fn scatter_nd_reductions() {
    let data = Tensor::from_f32(&[4], vec![1.0, 2.0, 3.0, 4.0]);
    let idx = Tensor::from_i64(&[3, 1], vec![3, 1, -1]);
    let upd = Tensor::from_f32(&[3], vec![10.0, 20.0, 0.5]);
    let got = |r: &str| {
        scatter_nd(r, &data, &idx, &upd)
            .unwrap()
            .as_f32()
            .unwrap()
            .to_vec()
    };
    assert_eq!(got("add"), vec![1.0, 22.0, 3.0, 14.5]);
    assert_eq!(got("mul"), vec![1.0, 40.0, 3.0, 20.0]);
    assert_eq!(got("max"), vec![1.0, 20.0, 3.0, 10.0]);
    assert_eq!(got("min"), vec![1.0, 2.0, 3.0, 0.5]);
    assert_eq!(got("none"), vec![1.0, 20.0, 3.0, 0.5]);
    // Slices of a matrix.
    let m = Tensor::from_i64(&[2, 2], vec![1, 2, 3, 4]);
    let idx = Tensor::from_i64(&[1, 1], vec![1]);
    let upd = Tensor::from_i64(&[1, 2], vec![7, 8]);
    let y = scatter_nd("none", &m, &idx, &upd).unwrap();
    assert_eq!(y.as_i64().unwrap(), &[1, 2, 7, 8]);
    let bad_upd = Tensor::from_i64(&[2], vec![7, 8]);
    assert!(scatter_nd("none", &m, &idx, &bad_upd).is_err());
    let bad_idx = Tensor::from_i64(&[1, 1], vec![2]);
    assert!(scatter_nd("none", &m, &bad_idx, &upd).is_err());
    assert!(scatter_nd("avg", &m, &idx, &upd)
        .unwrap_err()
        .is_unsupported());
}

#[test]
fn scatter_elements_axes_and_duplicates() {
    let data = ramp(&[2, 3]);
    let idx = Tensor::from_i64(&[2, 2], vec![1, 1, -1, 0]);
    let upd = Tensor::from_f32(&[2, 2], vec![10.0, 20.0, 30.0, 40.0]);
    let op = |axis, reduction: &str| Op::ScatterElements {
        axis,
        reduction: reduction.into(),
    };
    let y = run(&op(1, "add"), &[&data, &idx, &upd]).unwrap();
    assert_eq!(y.as_f32().unwrap(), &[0.0, 31.0, 2.0, 43.0, 4.0, 35.0]);
    let y = run(&op(1, "none"), &[&data, &idx, &upd]).unwrap();
    assert_eq!(y.as_f32().unwrap(), &[0.0, 20.0, 2.0, 40.0, 4.0, 30.0]);
    let idx0 = Tensor::from_i64(&[1, 3], vec![1, 0, 1]);
    let upd0 = Tensor::from_f32(&[1, 3], vec![-1.0, -2.0, -3.0]);
    let y = run(&op(0, "min"), &[&data, &idx0, &upd0]).unwrap();
    assert_eq!(y.as_f32().unwrap(), &[0.0, -2.0, 2.0, -1.0, 4.0, -3.0]);
    assert!(run(&op(0, "none"), &[&data, &idx0, &upd]).is_err());
    let far = Tensor::from_i64(&[1, 3], vec![2, 0, 0]);
    assert!(run(&op(0, "none"), &[&data, &far, &upd0]).is_err());
}

#[test]
fn one_hot_axes_and_ranges() {
    let idx = Tensor::from_i64(&[3], vec![0, -1, 5]);
    let depth = Tensor::scalar_i64(3);
    let vals = Tensor::from_f32(&[2], vec![0.5, 2.0]);
    let op = |axis| Op::OneHot { axis };
    let y = run(&op(-1), &[&idx, &depth, &vals]).unwrap();
    assert_eq!(y.shape(), &[3, 3]);
    assert_eq!(
        y.as_f32().unwrap(),
        &[2.0, 0.5, 0.5, 0.5, 0.5, 2.0, 0.5, 0.5, 0.5]
    );
    let y = run(&op(0), &[&idx, &depth, &vals]).unwrap();
    assert_eq!(
        y.as_f32().unwrap(),
        &[2.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 2.0, 0.5]
    );
    // Float indices and depth, integer values.
    let fidx = Tensor::from_f32(&[2], vec![1.0, 0.0]);
    let fdepth = Tensor::scalar_f32(2.0);
    let ivals = Tensor::from_i64(&[2], vec![0, 1]);
    let y = run(&op(1), &[&fidx, &fdepth, &ivals]).unwrap();
    assert_eq!(y.as_i64().unwrap(), &[0, 1, 1, 0]);
    assert!(run(&op(2), &[&fidx, &fdepth, &ivals]).is_err());
    assert!(run(&op(1), &[&fidx, &Tensor::scalar_i64(0), &ivals]).is_err());
    assert!(run(
        &op(1),
        &[&fidx, &fdepth, &Tensor::from_i64(&[3], vec![0, 1, 2])]
    )
    .is_err());
}
