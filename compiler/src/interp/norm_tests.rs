//! Unit tests of the norm family, with values hand-computed or checked against numpy.

use super::*;
use half::f16;

fn close(got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "got {got:?}, want {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!(
            (g - w).abs() <= 1e-5 * w.abs().max(1.0),
            "got {got:?}, want {want:?}"
        );
    }
}

fn run(op: &Op, inputs: &[&Tensor], n_outputs: usize) -> Vec<Tensor> {
    let args: Vec<Option<&Tensor>> = inputs.iter().map(|t| Some(*t)).collect();
    eval(op, &args, n_outputs).unwrap()
}

fn f32s(shape: &[usize], v: &[f32]) -> Tensor {
    Tensor::from_f32(shape, v.to_vec())
}

#[test]
fn batch_norm_per_channel() {
    let x = f32s(&[1, 2, 1, 2], &[1.0, 2.0, 3.0, 4.0]);
    let scale = f32s(&[2], &[1.0, 2.0]);
    let bias = f32s(&[2], &[0.0, 1.0]);
    let mean = f32s(&[2], &[1.5, 3.5]);
    let var = f32s(&[2], &[0.25, 0.25]);
    let op = Op::BatchNormalization { epsilon: 0.0 };
    let y = run(&op, &[&x, &scale, &bias, &mean, &var], 1);
    close(y[0].as_f32().unwrap(), &[-1.0, 1.0, -1.0, 3.0]);
    // Rank 1 is `[C]`.
    let x1 = f32s(&[2], &[2.0, 4.0]);
    let y = run(&op, &[&x1, &scale, &bias, &mean, &var], 1);
    close(y[0].as_f32().unwrap(), &[1.0, 3.0]);
    let short = f32s(&[1], &[1.0]);
    let args = [Some(&x), Some(&short), Some(&bias), Some(&mean), Some(&var)];
    assert!(eval(&op, &args, 1).is_err());
}

#[test]
fn layer_norm_with_extra_results() {
    let x = f32s(&[2, 3], &[1.0, 2.0, 3.0, 2.0, 4.0, 6.0]);
    let scale = f32s(&[3], &[1.0, 1.0, 2.0]);
    let bias = f32s(&[3], &[0.0, 0.0, 1.0]);
    let op = Op::LayerNormalization {
        axis: -1,
        epsilon: 0.0,
        stash_type: 1,
    };
    let y = run(&op, &[&x, &scale, &bias], 3);
    assert_eq!(y.len(), 3);
    close(
        y[0].as_f32().unwrap(),
        &[-1.2247449, 0.0, 3.4494897, -1.2247449, 0.0, 3.4494897],
    );
    assert_eq!(y[1].shape(), &[2, 1]);
    close(y[1].as_f32().unwrap(), &[2.0, 4.0]);
    assert_eq!(y[2].shape(), &[2, 1]);
    close(y[2].as_f32().unwrap(), &[1.2247449, 0.61237244]);
    // Axis 0 normalizes everything; no bias; one result asked.
    let op0 = Op::LayerNormalization {
        axis: 0,
        epsilon: 0.0,
        stash_type: 1,
    };
    let s2 = f32s(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let y = eval(&op0, &[Some(&x), Some(&s2), None], 1).unwrap();
    assert_eq!(y.len(), 1);
    close(
        y[0].as_f32().unwrap(),
        &[
            -1.2247449, -1.2247449, 0.0, -2.4494897, 3.0618622, 11.022704,
        ],
    );
    let bad = f32s(&[2], &[1.0, 1.0]);
    assert!(eval(&op, &[Some(&x), Some(&bad)], 1).is_err());
}

#[test]
fn instance_rms_lrn_and_mvn() {
    let x = f32s(&[1, 2, 1, 3], &[1.0, 2.0, 4.0, 0.0, 0.0, 3.0]);
    let scale = f32s(&[2], &[1.0, 2.0]);
    let bias = f32s(&[2], &[0.0, 1.0]);
    let op = Op::InstanceNormalization { epsilon: 1e-5 };
    let y = run(&op, &[&x, &scale, &bias], 1);
    close(
        y[0].as_f32().unwrap(),
        &[
            -1.0690415,
            -0.26726038,
            1.3363019,
            -0.41421003,
            -0.41421003,
            3.828_42,
        ],
    );

    let r = f32s(&[1, 3], &[1.0, 2.0, 2.0]);
    let op = Op::RmsNormalization {
        axis: -1,
        epsilon: 0.0,
        stash_type: 1,
    };
    let y = run(&op, &[&r, &f32s(&[3], &[1.0, 1.0, 3.0])], 1);
    close(y[0].as_f32().unwrap(), &[0.57735027, 1.1547005, 3.4641016]);

    // alpha / size = 1, beta = 1, bias = 1: y = x / (1 + window sum of squares).
    let l = f32s(&[1, 3, 1, 1], &[1.0, 2.0, 3.0]);
    let op = Op::Lrn {
        alpha: 3.0,
        beta: 1.0,
        bias: 1.0,
        size: 3,
    };
    let y = run(&op, &[&l], 1);
    close(y[0].as_f32().unwrap(), &[1.0 / 6.0, 2.0 / 15.0, 3.0 / 14.0]);

    let m = f32s(&[1, 2, 1, 2], &[1.0, 3.0, 2.0, 2.0]);
    let op = Op::MeanVarianceNormalization {
        axes: vec![0, 2, 3],
    };
    let y = run(&op, &[&m], 1);
    close(y[0].as_f32().unwrap(), &[-1.0, 1.0, 0.0, 0.0]);
}

#[test]
fn softmax_axis_and_coerce_2d() {
    let x = f32s(&[2, 2, 2], &[0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5]);
    let sm = |axis, coerce_2d| Op::Softmax { axis, coerce_2d };
    let (a, b) = (0.26894142, 0.7310586);
    let y = run(&sm(1, 0), &[&x], 1);
    close(y[0].as_f32().unwrap(), &[a, a, b, b, a, a, b, b]);
    // Opset < 13: flatten to [2, 4] at axis 1 and normalize each row.
    let y = run(&sm(1, 1), &[&x], 1);
    let row = [0.10153632, 0.1674051, 0.27600434, 0.45505423];
    let want: Vec<f32> = row.iter().chain(row.iter()).copied().collect();
    close(y[0].as_f32().unwrap(), &want);
    let ls = Op::LogSoftmax {
        axis: -1,
        coerce_2d: 0,
    };
    let y = run(&ls, &[&x], 1);
    let pair = [-0.974077, -0.474_077];
    close(y[0].as_f32().unwrap(), &pair.repeat(4));
    let big = f32s(&[1, 2], &[1000.0, 1000.0]);
    close(
        run(&sm(-1, 0), &[&big], 1)[0].as_f32().unwrap(),
        &[0.5, 0.5],
    );
    let hm = Op::Hardmax {
        axis: 0,
        coerce_2d: 0,
    };
    let h = f32s(&[3, 2], &[1.0, 5.0, 3.0, 5.0, 3.0, 0.0]);
    let y = run(&hm, &[&h], 1);
    assert_eq!(y[0].as_f32().unwrap(), &[0.0, 1.0, 1.0, 0.0, 0.0, 0.0]);
    assert!(eval(&sm(3, 0), &[Some(&x)], 1).is_err());
}

#[test]
fn dtypes_are_kept_or_rejected() {
    let h = Tensor::new(
        vec![2],
        TensorData::F16(vec![f16::from_f32(1.0), f16::from_f32(1.0)]),
    )
    .unwrap();
    let op = Op::Softmax {
        axis: 0,
        coerce_2d: 0,
    };
    let y = run(&op, &[&h], 1);
    assert_eq!(
        y[0].data(),
        &TensorData::F16(vec![f16::from_f32(0.5), f16::from_f32(0.5)])
    );
    let i = Tensor::from_i64(&[2], vec![1, 2]);
    assert!(eval(&op, &[Some(&i)], 1).unwrap_err().is_unsupported());
    let d = Tensor::new(vec![1, 2], TensorData::F64(vec![1.0, 3.0])).unwrap();
    let op = Op::LayerNormalization {
        axis: 1,
        epsilon: 0.0,
        stash_type: 1,
    };
    let s = Tensor::new(vec![2], TensorData::F64(vec![1.0, 1.0])).unwrap();
    let y = run(&op, &[&d, &s], 1);
    assert_eq!(y[0].data(), &TensorData::F64(vec![-1.0, 1.0]));
}
