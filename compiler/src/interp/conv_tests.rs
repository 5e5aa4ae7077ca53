//! Tests of `Conv` and `ConvTranspose` against naive loop references and hand-checked values.

use super::*;
use crate::interp::elem::for_each_index;

/// Deterministic pseudo-random values in [-1, 1).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn rand_tensor(shape: &[usize], seed: u64) -> Tensor {
    Tensor::from_f32(shape, values(shape.iter().product(), seed))
}

/// Parameters of one naive reference run.
struct Params<'a> {
    group: usize,
    strides: &'a [usize],
    dil: &'a [usize],
    pads: &'a [i64],
}

fn flat(idx: &[usize], shape: &[usize]) -> usize {
    idx.iter().zip(shape).fold(0, |acc, (&i, &d)| acc * d + i)
}

/// The textbook convolution: for every output element, sum over input channels and kernel taps.
fn naive_conv(x: &Tensor, w: &Tensor, b: Option<&Tensor>, p: &Params) -> (Vec<usize>, Vec<f32>) {
    let xs = x.shape();
    let ws = w.shape();
    let ns = xs.len() - 2;
    let (n, c, m) = (xs[0], xs[1], ws[0]);
    let cg = c / p.group;
    let mg = m / p.group;
    let ysp: Vec<usize> = (0..ns)
        .map(|i| {
            let eff = (ws[2 + i] - 1) * p.dil[i] + 1;
            ((xs[2 + i] as i64 + p.pads[i] + p.pads[ns + i] - eff as i64) / p.strides[i] as i64 + 1)
                as usize
        })
        .collect();
    let mut yshape = vec![n, m];
    yshape.extend(&ysp);
    let xv = x.as_f32().unwrap();
    let wv = w.as_f32().unwrap();
    let mut y = vec![0.0f32; yshape.iter().product()];
    for_each_index(&yshape, |yi| {
        let (bn, oc) = (yi[0], yi[1]);
        let mut acc = b.map_or(0.0, |b| b.as_f32().unwrap()[oc]);
        for icg in 0..cg {
            let ic = (oc / mg) * cg + icg;
            for_each_index(&ws[2..], |k| {
                let mut xi = vec![bn, ic];
                for i in 0..ns {
                    let pos = (yi[2 + i] * p.strides[i] + k[i] * p.dil[i]) as i64 - p.pads[i];
                    if pos < 0 || pos >= xs[2 + i] as i64 {
                        return;
                    }
                    xi.push(pos as usize);
                }
                let mut wi = vec![oc, icg];
                wi.extend(k);
                acc += xv[flat(&xi, xs)] * wv[flat(&wi, ws)];
            });
        }
        y[flat(yi, &yshape)] = acc;
    });
    (yshape, y)
}

/// The textbook transposed convolution: every input element scatters into the output.
fn naive_conv_transpose(
    x: &Tensor,
    w: &Tensor,
    ysp: &[usize],
    p: &Params,
) -> (Vec<usize>, Vec<f32>) {
    let xs = x.shape();
    let ws = w.shape();
    let ns = xs.len() - 2;
    let (n, c) = (xs[0], xs[1]);
    let mg = ws[1];
    let m = mg * p.group;
    let cg = c / p.group;
    let mut yshape = vec![n, m];
    yshape.extend(ysp);
    let xv = x.as_f32().unwrap();
    let wv = w.as_f32().unwrap();
    let mut y = vec![0.0f32; yshape.iter().product()];
    for_each_index(xs, |xi| {
        let (bn, ic) = (xi[0], xi[1]);
        for ocg in 0..mg {
            let oc = (ic / cg) * mg + ocg;
            for_each_index(&ws[2..], |k| {
                let mut yi = vec![bn, oc];
                for i in 0..ns {
                    let pos = (xi[2 + i] * p.strides[i] + k[i] * p.dil[i]) as i64 - p.pads[i];
                    if pos < 0 || pos >= ysp[i] as i64 {
                        return;
                    }
                    yi.push(pos as usize);
                }
                let mut wi = vec![ic, ocg];
                wi.extend(k);
                y[flat(&yi, &yshape)] += xv[flat(xi, xs)] * wv[flat(&wi, ws)];
            });
        }
    });
    (yshape, y)
}

fn conv_op(auto_pad: &str, group: usize, strides: &[usize], dil: &[usize], pads: &[i64]) -> Op {
    Op::Conv {
        auto_pad: auto_pad.to_string(),
        dilations: dil.iter().map(|&d| d as i64).collect(),
        group: group as i64,
        kernel_shape: vec![],
        pads: pads.to_vec(),
        strides: strides.iter().map(|&s| s as i64).collect(),
    }
}

fn assert_close(got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-4 * (1.0 + w.abs()),
            "element {i}: got {g}, want {w}"
        );
    }
}

fn run(op: &Op, inputs: &[Option<&Tensor>]) -> Result<Tensor, InterpError> {
    Ok(eval(op, inputs, 1)?.remove(0))
}

#[test]
fn conv_matches_naive_reference() {
    // (x shape, w shape, group, strides, dilations, pads)
    type Case = (
        Vec<usize>,
        Vec<usize>,
        usize,
        Vec<usize>,
        Vec<usize>,
        Vec<i64>,
    );
    let cases: Vec<Case> = vec![
        (
            vec![1, 1, 5, 5],
            vec![1, 1, 3, 3],
            1,
            vec![1, 1],
            vec![1, 1],
            vec![1, 1, 1, 1],
        ),
        (
            vec![2, 4, 7, 6],
            vec![6, 2, 3, 2],
            2,
            vec![2, 1],
            vec![1, 2],
            vec![1, 0, 2, 1],
        ),
        (
            vec![1, 3, 9, 8],
            vec![4, 3, 3, 3],
            1,
            vec![2, 3],
            vec![2, 1],
            vec![0, 2, 1, 0],
        ),
        (
            vec![1, 6, 6, 6],
            vec![6, 1, 3, 3],
            6,
            vec![1, 1],
            vec![1, 1],
            vec![1, 1, 1, 1],
        ),
        (
            vec![2, 3, 10],
            vec![4, 3, 4],
            1,
            vec![3],
            vec![2],
            vec![2, 1],
        ),
        (
            vec![1, 2, 11],
            vec![2, 1, 3],
            2,
            vec![1],
            vec![3],
            vec![0, 4],
        ),
        (
            vec![1, 2, 5, 6, 4],
            vec![3, 2, 2, 3, 2],
            1,
            vec![1, 2, 1],
            vec![2, 1, 1],
            vec![1, 0, 1, 0, 1, 1],
        ),
        (
            vec![1, 4, 5, 4, 4],
            vec![4, 2, 3, 1, 2],
            2,
            vec![1, 1, 1],
            vec![1, 1, 2],
            vec![1, 0, 0, 1, 0, 1],
        ),
        (
            vec![2, 8, 4, 4],
            vec![5, 8, 1, 1],
            1,
            vec![1, 1],
            vec![1, 1],
            vec![0, 0, 0, 0],
        ),
        (
            vec![1, 8, 7, 7],
            vec![5, 8, 1, 1],
            1,
            vec![2, 2],
            vec![1, 1],
            vec![0, 0, 0, 0],
        ),
    ];
    for (i, (xs, ws, group, strides, dil, pads)) in cases.into_iter().enumerate() {
        let x = rand_tensor(&xs, 2 * i as u64);
        let w = rand_tensor(&ws, 2 * i as u64 + 1);
        let b = rand_tensor(&[ws[0]], 100 + i as u64);
        let p = Params {
            group,
            strides: &strides,
            dil: &dil,
            pads: &pads,
        };
        let op = conv_op("NOTSET", group, &strides, &dil, &pads);
        for bias in [None, Some(&b)] {
            let (shape, want) = naive_conv(&x, &w, bias, &p);
            let got = run(&op, &[Some(&x), Some(&w), bias]).unwrap();
            assert_eq!(got.shape(), shape.as_slice(), "case {i}");
            assert_close(got.as_f32().unwrap(), &want);
        }
    }
}

#[test]
fn conv_hand_checked_values() {
    // The ONNX `basic_conv_with_padding` example: 5x5 ramp, 3x3 ones, pads 1.
    let x = Tensor::from_f32(&[1, 1, 5, 5], (0..25).map(|v| v as f32).collect());
    let w = Tensor::from_f32(&[1, 1, 3, 3], vec![1.0; 9]);
    let y = run(
        &conv_op("NOTSET", 1, &[], &[], &[1, 1, 1, 1]),
        &[Some(&x), Some(&w)],
    )
    .unwrap();
    assert_eq!(&y.as_f32().unwrap()[..5], &[12.0, 21.0, 27.0, 33.0, 24.0]);
    assert_eq!(y.as_f32().unwrap()[12], 108.0);
    // Strided with asymmetric padding (`conv_with_strides_and_asymmetric_padding`).
    let x = Tensor::from_f32(&[1, 1, 7, 5], (0..35).map(|v| v as f32).collect());
    let y = run(
        &conv_op("NOTSET", 1, &[2, 2], &[], &[1, 0, 1, 0]),
        &[Some(&x), Some(&w)],
    )
    .unwrap();
    assert_eq!(y.shape(), &[1, 1, 4, 2]);
    assert_eq!(
        y.as_f32().unwrap(),
        &[21.0, 33.0, 99.0, 117.0, 189.0, 207.0, 171.0, 183.0]
    );
}

#[test]
fn conv_auto_pad() {
    let x = rand_tensor(&[1, 2, 6, 5], 7);
    let w = rand_tensor(&[3, 2, 3, 2], 8);
    // SAME_UPPER with stride 2: out 3x3, total pads 1 (rows) and 1 (cols), the extra at the end.
    let got = run(
        &conv_op("SAME_UPPER", 1, &[2, 2], &[], &[]),
        &[Some(&x), Some(&w)],
    )
    .unwrap();
    let p = Params {
        group: 1,
        strides: &[2, 2],
        dil: &[1, 1],
        pads: &[0, 0, 1, 1],
    };
    let (shape, want) = naive_conv(&x, &w, None, &p);
    assert_eq!(got.shape(), shape.as_slice());
    assert_close(got.as_f32().unwrap(), &want);
    let got = run(
        &conv_op("SAME_LOWER", 1, &[2, 2], &[], &[]),
        &[Some(&x), Some(&w)],
    )
    .unwrap();
    let p = Params {
        pads: &[1, 1, 0, 0],
        ..p
    };
    assert_close(got.as_f32().unwrap(), &naive_conv(&x, &w, None, &p).1);
    let got = run(
        &conv_op("VALID", 1, &[1, 1], &[], &[3, 3, 3, 3]),
        &[Some(&x), Some(&w)],
    )
    .unwrap();
    assert_eq!(got.shape(), &[1, 3, 4, 4]);
    let p = Params {
        strides: &[1, 1],
        pads: &[0, 0, 0, 0],
        ..p
    };
    assert_close(got.as_f32().unwrap(), &naive_conv(&x, &w, None, &p).1);
}

#[test]
fn conv_f64_f16_and_errors() {
    let x = rand_tensor(&[1, 2, 4, 4], 1);
    let w = rand_tensor(&[2, 2, 3, 3], 2);
    let op = conv_op("NOTSET", 1, &[], &[], &[1, 1, 1, 1]);
    let y32 = run(&op, &[Some(&x), Some(&w)]).unwrap();
    let y64 = run(&op, &[Some(&x.cast(DType::F64)), Some(&w.cast(DType::F64))]).unwrap();
    assert_eq!(y64.dtype(), DType::F64);
    assert_close(&y64.to_f32_vec(), y32.as_f32().unwrap());
    let y16 = run(&op, &[Some(&x.cast(DType::F16)), Some(&w.cast(DType::F16))]).unwrap();
    assert_eq!(y16.dtype(), DType::F16);
    for (a, b) in y16.to_f32_vec().iter().zip(y32.as_f32().unwrap()) {
        assert!((a - b).abs() < 0.05);
    }
    // Channel mismatch, bad group, bad bias, kernel larger than the input, unknown auto_pad.
    let w_bad = rand_tensor(&[2, 3, 3, 3], 2);
    assert!(run(&op, &[Some(&x), Some(&w_bad)]).is_err());
    assert!(run(&conv_op("NOTSET", 3, &[], &[], &[]), &[Some(&x), Some(&w)]).is_err());
    let b_bad = rand_tensor(&[3], 3);
    assert!(run(&op, &[Some(&x), Some(&w), Some(&b_bad)]).is_err());
    let w_big = rand_tensor(&[2, 2, 5, 5], 2);
    assert!(run(
        &conv_op("NOTSET", 1, &[], &[], &[]),
        &[Some(&x), Some(&w_big)]
    )
    .is_err());
    assert!(run(&conv_op("SAME", 1, &[], &[], &[]), &[Some(&x), Some(&w)]).is_err());
    let xi = Tensor::from_i64(&[1, 1, 2, 2], vec![1, 2, 3, 4]);
    let wi = Tensor::from_i64(&[1, 1, 1, 1], vec![1]);
    let err = run(&op, &[Some(&xi), Some(&wi)]).unwrap_err();
    assert!(err.is_unsupported());
}

fn convt_op(
    group: usize,
    strides: &[usize],
    dil: &[usize],
    pads: &[i64],
    output_padding: &[i64],
    output_shape: &[i64],
    auto_pad: &str,
) -> Op {
    Op::ConvTranspose {
        auto_pad: auto_pad.to_string(),
        dilations: dil.iter().map(|&d| d as i64).collect(),
        group: group as i64,
        kernel_shape: vec![],
        output_padding: output_padding.to_vec(),
        output_shape: output_shape.to_vec(),
        pads: pads.to_vec(),
        strides: strides.iter().map(|&s| s as i64).collect(),
    }
}

#[test]
fn conv_transpose_matches_naive_reference() {
    // (x shape, w shape, group, strides, dilations, pads, output_padding, expected spatial out)
    type Case = (
        Vec<usize>,
        Vec<usize>,
        usize,
        Vec<usize>,
        Vec<usize>,
        Vec<i64>,
        Vec<i64>,
        Vec<usize>,
    );
    let cases: Vec<Case> = vec![
        (
            vec![1, 1, 3, 3],
            vec![1, 2, 3, 3],
            1,
            vec![1, 1],
            vec![1, 1],
            vec![0, 0, 0, 0],
            vec![],
            vec![5, 5],
        ),
        (
            vec![1, 1, 3, 3],
            vec![1, 2, 3, 3],
            1,
            vec![3, 2],
            vec![1, 1],
            vec![1, 2, 1, 2],
            vec![1, 1],
            vec![8, 4],
        ),
        (
            vec![2, 4, 3, 4],
            vec![4, 3, 2, 3],
            2,
            vec![2, 1],
            vec![2, 1],
            vec![0, 1, 1, 0],
            vec![],
            vec![6, 5],
        ),
        (
            vec![1, 2, 5],
            vec![2, 3, 3],
            1,
            vec![2],
            vec![2],
            vec![1, 1],
            vec![1],
            vec![12],
        ),
        (
            vec![1, 2, 3, 2, 2],
            vec![2, 2, 2, 3, 2],
            1,
            vec![2, 1, 2],
            vec![1, 1, 1],
            vec![0; 6],
            vec![],
            vec![6, 4, 4],
        ),
    ];
    for (i, (xs, ws, group, strides, dil, pads, opad, ysp)) in cases.into_iter().enumerate() {
        let x = rand_tensor(&xs, 30 + i as u64);
        let w = rand_tensor(&ws, 60 + i as u64);
        let p = Params {
            group,
            strides: &strides,
            dil: &dil,
            pads: &pads,
        };
        let (shape, want) = naive_conv_transpose(&x, &w, &ysp, &p);
        let op = convt_op(group, &strides, &dil, &pads, &opad, &[], "NOTSET");
        let got = run(&op, &[Some(&x), Some(&w)]).unwrap();
        assert_eq!(got.shape(), shape.as_slice(), "case {i}");
        assert_close(got.as_f32().unwrap(), &want);
    }
}

#[test]
fn conv_transpose_hand_checked_and_output_shape() {
    // The ONNX `convtranspose` example: 3x3 ramp, two 3x3 ones kernels -> 5x5 box sums.
    let x = Tensor::from_f32(&[1, 1, 3, 3], (0..9).map(|v| v as f32).collect());
    let w = Tensor::from_f32(&[1, 2, 3, 3], vec![1.0; 18]);
    let op = convt_op(1, &[], &[], &[], &[], &[], "NOTSET");
    let y = run(&op, &[Some(&x), Some(&w)]).unwrap();
    assert_eq!(y.shape(), &[1, 2, 5, 5]);
    assert_eq!(
        &y.as_f32().unwrap()[..10],
        &[0.0, 1.0, 3.0, 3.0, 2.0, 3.0, 8.0, 15.0, 12.0, 7.0]
    );
    // output_shape [10, 8] with strides [3, 2] pads the end by one row and one column of bias.
    let b = Tensor::from_f32(&[2], vec![0.5, -0.5]);
    let op = convt_op(1, &[3, 2], &[], &[], &[], &[10, 8], "NOTSET");
    let y = run(&op, &[Some(&x), Some(&w), Some(&b)]).unwrap();
    assert_eq!(y.shape(), &[1, 2, 10, 8]);
    let p = Params {
        group: 1,
        strides: &[3, 2],
        dil: &[1, 1],
        pads: &[0, 0, -1, -1],
    };
    let (_, want) = naive_conv_transpose(&x, &w, &[10, 8], &p);
    let want: Vec<f32> = want
        .iter()
        .enumerate()
        .map(|(i, v)| v + if i < 80 { 0.5 } else { -0.5 })
        .collect();
    assert_close(y.as_f32().unwrap(), &want);
    // SAME_UPPER: output = input * stride, total padding split with the larger half at the end.
    let op = convt_op(1, &[2, 2], &[], &[], &[], &[], "SAME_UPPER");
    let y = run(&op, &[Some(&x), Some(&w)]).unwrap();
    assert_eq!(y.shape(), &[1, 2, 6, 6]);
    let p = Params {
        group: 1,
        strides: &[2, 2],
        dil: &[1, 1],
        pads: &[0, 0, 1, 1],
    };
    assert_close(
        y.as_f32().unwrap(),
        &naive_conv_transpose(&x, &w, &[6, 6], &p).1,
    );
    // Weight channels that do not match the input.
    let w_bad = rand_tensor(&[2, 2, 3, 3], 1);
    assert!(run(&op, &[Some(&x), Some(&w_bad)]).is_err());
}

#[test]
fn absurd_attributes_are_errors() {
    let x = rand_tensor(&[1, 1, 4, 4], 1);
    let w = rand_tensor(&[1, 1, 2, 2], 2);
    let huge = i32::MAX as i64;
    let op = conv_op("NOTSET", 1, &[], &[], &[huge, huge, huge, huge]);
    assert!(run(&op, &[Some(&x), Some(&w)]).is_err());
    let op = conv_op("NOTSET", 1, &[], &[], &[i64::MAX, 0, 0, 0]);
    assert!(run(&op, &[Some(&x), Some(&w)]).is_err());
    let mut op = conv_op("NOTSET", 1, &[], &[], &[]);
    if let Op::Conv { dilations, .. } = &mut op {
        *dilations = vec![i64::MAX, 1];
    }
    assert!(run(&op, &[Some(&x), Some(&w)]).is_err());
    let op = convt_op(1, &[], &[], &[], &[], &[1 << 40, 1 << 40], "NOTSET");
    assert!(run(&op, &[Some(&x), Some(&w)]).is_err());
    let op = convt_op(1, &[], &[], &[], &[], &[i64::MIN, 4], "NOTSET");
    assert!(run(&op, &[Some(&x), Some(&w)]).is_err());
    let op = convt_op(i32::MAX as usize + 1, &[], &[], &[], &[], &[], "NOTSET");
    assert!(run(&op, &[Some(&x), Some(&w)]).is_err());
}
