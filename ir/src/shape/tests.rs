//! Tests of shape inference for elementwise ops, matrix products, convolutions, pools,
//! normalizations and reductions, plus the shared test helpers.

use super::{infer, InputFact};
use crate::op::Op;
use crate::tensor::Tensor;
use crate::types::{DType, Dim, TensorType};

/// One operand of a test: a type, a constant, or an omitted optional operand.
pub(super) enum Arg {
    /// A value known only by its type.
    T(TensorType),
    /// A compile-time constant.
    C(Tensor),
    /// An omitted optional operand.
    None,
}

/// Parses a type written as its text form, `f32[batch,64]`.
pub(super) fn ty(s: &str) -> TensorType {
    let (dt, rest) = s.split_once('[').expect("type has dims");
    let dims = rest.trim_end_matches(']');
    TensorType {
        dtype: DType::from_name(dt).expect("known dtype"),
        dims: if dims.is_empty() {
            vec![]
        } else {
            dims.split(',')
                .map(|d| match d.parse() {
                    Ok(n) => Dim::Known(n),
                    Err(_) => Dim::Sym(d.to_string()),
                })
                .collect()
        },
    }
}

/// An operand known by its type.
pub(super) fn v(s: &str) -> Arg {
    Arg::T(ty(s))
}

/// A constant 1-D i64 operand.
pub(super) fn ints(vals: &[i64]) -> Arg {
    Arg::C(Tensor::from_i64(&[vals.len()], vals.to_vec()))
}

/// A constant 1-D f32 operand.
pub(super) fn floats(vals: &[f32]) -> Arg {
    Arg::C(Tensor::from_f32(&[vals.len()], vals.to_vec()))
}

/// Runs inference and formats every result type.
pub(super) fn run(op: Op, args: Vec<Arg>, n_outputs: usize) -> Result<Vec<String>, String> {
    let consts: Vec<Option<(TensorType, Option<Tensor>)>> = args
        .into_iter()
        .map(|a| match a {
            Arg::T(t) => Some((t, None)),
            Arg::C(c) => Some((c.ty(), Some(c))),
            Arg::None => None,
        })
        .collect();
    let facts: Vec<Option<InputFact>> = consts
        .iter()
        .map(|a| {
            a.as_ref().map(|(ty, value)| InputFact {
                ty,
                value: value.as_ref(),
            })
        })
        .collect();
    infer(&op, &facts, n_outputs)
        .map(|ts| ts.iter().map(TensorType::to_string).collect())
        .map_err(|e| e.0)
}

/// The single result type of a valid use.
pub(super) fn one(op: Op, args: Vec<Arg>) -> String {
    match run(op, args, 1) {
        Ok(v) => v.join(" "),
        Err(e) => format!("error: {e}"),
    }
}

/// The error message of an invalid use.
pub(super) fn err(op: Op, args: Vec<Arg>) -> String {
    match run(op, args, 1) {
        Ok(v) => format!("unexpected success: {v:?}"),
        Err(e) => e,
    }
}

fn gemm(trans_a: i64, trans_b: i64) -> Op {
    Op::Gemm {
        alpha: 1.0,
        beta: 1.0,
        trans_a,
        trans_b,
    }
}

fn conv(pads: &[i64], strides: &[i64], auto_pad: &str) -> Op {
    Op::Conv {
        auto_pad: auto_pad.to_string(),
        dilations: vec![],
        group: 1,
        kernel_shape: vec![],
        pads: pads.to_vec(),
        strides: strides.to_vec(),
    }
}

fn max_pool(k: i64, s: i64, pads: &[i64], ceil_mode: i64, auto_pad: &str) -> Op {
    Op::MaxPool {
        auto_pad: auto_pad.to_string(),
        ceil_mode,
        dilations: vec![],
        kernel_shape: vec![k, k],
        pads: pads.to_vec(),
        storage_order: 0,
        strides: vec![s, s],
    }
}

#[test]
fn unary_keeps_type_and_predicates_give_bool() {
    assert_eq!(one(Op::Relu {}, vec![v("f32[batch,3]")]), "f32[batch,3]");
    assert_eq!(one(Op::IsNaN {}, vec![v("f16[2,3]")]), "bool[2,3]");
    assert_eq!(one(Op::Not {}, vec![v("bool[4]")]), "bool[4]");
    assert_eq!(
        err(Op::Not {}, vec![v("f32[4]")]),
        "not: operand 0 has element type f32, expected bool"
    );
}

#[test]
fn binary_broadcasts_numpy_style() {
    assert_eq!(
        one(Op::Add {}, vec![v("f32[batch,64]"), v("f32[64]")]),
        "f32[batch,64]"
    );
    assert_eq!(
        one(Op::Mul {}, vec![v("f32[2,1,3]"), v("f32[4,1]")]),
        "f32[2,4,3]"
    );
    assert_eq!(
        one(Op::Sub {}, vec![v("f32[n,1]"), v("f32[1,5]")]),
        "f32[n,5]"
    );
    assert_eq!(one(Op::Sub {}, vec![v("f32[a]"), v("f32[b]")]), "f32[?]");
    assert_eq!(one(Op::Sub {}, vec![v("f32[a]"), v("f32[5]")]), "f32[5]");
    assert_eq!(one(Op::Div {}, vec![v("f32[]"), v("f32[2,2]")]), "f32[2,2]");
    assert_eq!(one(Op::Less {}, vec![v("i64[3]"), v("i64[1]")]), "bool[3]");
    assert_eq!(one(Op::Pow {}, vec![v("f32[3]"), v("i64[]")]), "f32[3]");
    assert_eq!(
        err(Op::Add {}, vec![v("f32[2,3]"), v("f32[4]")]),
        "add: operand 1 has shape f32[4], which does not broadcast with operand 0 f32[2,3]"
    );
    assert_eq!(
        err(Op::Add {}, vec![v("f32[3]"), v("i64[3]")]),
        "add: operand 1 has element type i64, expected f32 (the type of operand 0)"
    );
}

#[test]
fn prelu_broadcasts_slope_one_way() {
    assert_eq!(
        one(Op::PRelu {}, vec![v("f32[2,3,4]"), v("f32[3,1]")]),
        "f32[2,3,4]"
    );
    assert_eq!(
        err(Op::PRelu {}, vec![v("f32[2,3,4]"), v("f32[3]")]),
        "prelu: operand 1 has shape f32[3], which does not broadcast to operand 0 f32[2,3,4]"
    );
}

#[test]
fn variadic_and_misc() {
    assert_eq!(
        one(Op::Sum {}, vec![v("f32[3,1]"), v("f32[1,4]"), v("f32[4]")]),
        "f32[3,4]"
    );
    assert_eq!(
        one(Op::Cast { to: DType::I64 }, vec![v("f32[b,2]")]),
        "i64[b,2]"
    );
    assert_eq!(
        one(Op::CastLike {}, vec![v("f32[2]"), v("f16[]")]),
        "f16[2]"
    );
    assert_eq!(
        one(
            Op::Where {},
            vec![v("bool[2,1]"), v("f32[3]"), v("f32[1,3]")]
        ),
        "f32[2,3]"
    );
    assert_eq!(
        one(Op::Clip {}, vec![v("f32[5]"), Arg::None, v("f32[]")]),
        "f32[5]"
    );
    assert_eq!(
        run(Op::Dropout {}, vec![v("f32[2,3]")], 2),
        Ok(vec!["f32[2,3]".to_string(), "bool[2,3]".to_string()])
    );
    assert_eq!(
        err(Op::Clip {}, vec![v("f32[5]"), v("f32[2]")]),
        "clip: operand 1 has shape f32[2], expected a scalar"
    );
}

#[test]
fn gemm_shapes() {
    assert_eq!(
        one(gemm(0, 1), vec![v("f32[batch,64]"), v("f32[1024,64]")]),
        "f32[batch,1024]"
    );
    assert_eq!(
        one(gemm(1, 0), vec![v("f32[4,3]"), v("f32[4,5]"), v("f32[5]")]),
        "f32[3,5]"
    );
    assert_eq!(
        one(
            gemm(0, 0),
            vec![v("f32[3,4]"), v("f32[4,5]"), v("f32[3,1]")]
        ),
        "f32[3,5]"
    );
    assert_eq!(
        err(gemm(0, 0), vec![v("f32[2,3]"), v("f32[4,5]")]),
        "gemm: operand 1 has shape f32[4,5], expected [3,*]"
    );
    assert_eq!(
        err(gemm(0, 1), vec![v("f32[2,3]"), v("f32[5,4]")]),
        "gemm: operand 1 has shape f32[5,4], expected [*,3]"
    );
    assert_eq!(
        err(gemm(0, 0), vec![v("f32[3,4]"), v("f32[4,5]"), v("f32[4]")]),
        "gemm: operand 2 has shape f32[4], which does not broadcast to the product shape [3,5]"
    );
}

#[test]
fn matmul_promotes_and_broadcasts() {
    let mm = |a: &str, b: &str| one(Op::MatMul {}, vec![v(a), v(b)]);
    assert_eq!(mm("f32[2,3,4]", "f32[4,5]"), "f32[2,3,5]");
    assert_eq!(mm("f32[4]", "f32[4,5]"), "f32[5]");
    assert_eq!(mm("f32[3,4]", "f32[4]"), "f32[3]");
    assert_eq!(mm("f32[4]", "f32[4]"), "f32[]");
    assert_eq!(mm("f32[2,1,3,4]", "f32[5,4,6]"), "f32[2,5,3,6]");
    assert_eq!(mm("f32[batch,seq,64]", "f32[64,32]"), "f32[batch,seq,32]");
    assert_eq!(
        err(Op::MatMul {}, vec![v("f32[3,4]"), v("f32[3,4]")]),
        "matmul: operand 1 has shape f32[3,4], expected [4,*]"
    );
    assert_eq!(
        err(Op::MatMul {}, vec![v("f32[2,3,4]"), v("f32[7,5,6]")]),
        "matmul: operand 1 has shape f32[7,5,6], expected [*,4,*]"
    );
    assert_eq!(
        err(Op::MatMul {}, vec![v("f32[2,3,4]"), v("f32[7,4,6]")]),
        "matmul: operand 1 has shape f32[7,4,6], whose batch dimensions [7] do not broadcast with those of operand 0 f32[2,3,4]"
    );
}

#[test]
fn einsum_equations() {
    let es = |eq: &str, args: Vec<Arg>| {
        one(
            Op::Einsum {
                equation: eq.to_string(),
            },
            args,
        )
    };
    assert_eq!(
        es("ij,jk->ik", vec![v("f32[2,3]"), v("f32[3,4]")]),
        "f32[2,4]"
    );
    // Implicit output: labels used once, sorted; `b` and `j` are summed.
    assert_eq!(
        es("bij,bjk", vec![v("f32[5,2,3]"), v("f32[5,3,4]")]),
        "f32[2,4]"
    );
    assert_eq!(
        es("...ij,...jk->...ik", vec![v("f32[b,2,3]"), v("f32[3,4]")]),
        "f32[b,2,4]"
    );
    assert_eq!(
        es("...ij,jk", vec![v("f32[7,2,3]"), v("f32[3,4]")]),
        "f32[7,2,4]"
    );
    assert_eq!(es("ii", vec![v("f32[3,3]")]), "f32[]");
    assert_eq!(es("i j -> j i", vec![v("f32[3,4]")]), "f32[4,3]");
    assert_eq!(
        es("ij,jk->ik", vec![v("f32[2,3]"), v("f32[4,5]")]),
        "error: einsum: operand 1 has shape f32[4,5], whose dimension 0 (label 'j') is 4, but 'j' is 3 elsewhere"
    );
    assert_eq!(
        es("ij->k", vec![v("f32[2,3]")]),
        "error: einsum: equation \"ij->k\" has output label 'k', which no input term has"
    );
    assert_eq!(
        es("ijk", vec![v("f32[2,3]")]),
        "error: einsum: operand 0 has shape f32[2,3], but term \"ijk\" of equation \"ijk\" needs rank 3"
    );
}

#[test]
fn conv_output_sizes() {
    let x = "f32[1,3,32,32]";
    let w = "f32[16,3,3,3]";
    assert_eq!(
        one(conv(&[1, 1, 1, 1], &[], "NOTSET"), vec![v(x), v(w)]),
        "f32[1,16,32,32]"
    );
    assert_eq!(
        one(conv(&[], &[2, 2], "NOTSET"), vec![v(x), v(w)]),
        "f32[1,16,15,15]"
    );
    // SAME padding with stride 2: ceil(7 / 2) = 4; VALID: floor((7 - 3) / 2) + 1 = 3.
    let x7 = "f32[1,3,7,7]";
    assert_eq!(
        one(conv(&[], &[2, 2], "SAME_UPPER"), vec![v(x7), v(w)]),
        "f32[1,16,4,4]"
    );
    assert_eq!(
        one(conv(&[], &[2, 2], "SAME_LOWER"), vec![v(x7), v(w)]),
        "f32[1,16,4,4]"
    );
    assert_eq!(
        one(conv(&[], &[2, 2], "VALID"), vec![v(x7), v(w)]),
        "f32[1,16,3,3]"
    );
    // Asymmetric pads and dilation: the dilated kernel spans 5.
    let dilated = Op::Conv {
        auto_pad: "NOTSET".into(),
        dilations: vec![2, 2],
        group: 1,
        kernel_shape: vec![3, 3],
        pads: vec![0, 1, 0, 2],
        strides: vec![],
    };
    assert_eq!(
        one(dilated, vec![v(x), v(w), v("f32[16]")]),
        "f32[1,16,28,31]"
    );
    let grouped = Op::Conv {
        auto_pad: "NOTSET".into(),
        dilations: vec![],
        group: 2,
        kernel_shape: vec![],
        pads: vec![],
        strides: vec![],
    };
    assert_eq!(
        one(grouped.clone(), vec![v("f32[1,4,8,8]"), v("f32[8,2,3,3]")]),
        "f32[1,8,6,6]"
    );
    assert_eq!(
        err(grouped, vec![v("f32[1,3,8,8]"), v("f32[8,2,3,3]")]),
        "conv: operand 0 has shape f32[1,3,8,8] with 3 channels, but operand 1 f32[8,2,3,3] with group 2 expects 4"
    );
    // Symbolic batch flows; a symbolic spatial size survives "same" padding at stride 1.
    assert_eq!(
        one(
            conv(&[1, 1, 1, 1], &[], "NOTSET"),
            vec![v("f32[batch,3,h,w]"), v(w)]
        ),
        "f32[batch,16,h,w]"
    );
    assert_eq!(
        one(
            conv(&[], &[2, 2], "NOTSET"),
            vec![v("f32[batch,3,h,32]"), v(w)]
        ),
        "f32[batch,16,?,15]"
    );
    assert_eq!(
        err(conv(&[], &[], "NOTSET"), vec![v("f32[1,3,2,2]"), v(w)]),
        "conv: operand 0 dimension 2 is 2, smaller than the window of 3 with pads 0+0"
    );
    assert_eq!(
        err(conv(&[1, 1], &[], "NOTSET"), vec![v(x), v(w)]),
        "conv: attribute pads has 2 values [1, 1], expected 4"
    );
}

#[test]
fn conv_transpose_output_sizes() {
    let ct =
        |strides: &[i64], out_pad: &[i64], out_shape: &[i64], auto_pad: &str| Op::ConvTranspose {
            auto_pad: auto_pad.to_string(),
            dilations: vec![],
            group: 1,
            kernel_shape: vec![],
            output_padding: out_pad.to_vec(),
            output_shape: out_shape.to_vec(),
            pads: vec![],
            strides: strides.to_vec(),
        };
    let (x, w) = ("f32[1,1,3,3]", "f32[1,2,3,3]");
    assert_eq!(
        one(ct(&[], &[], &[], "NOTSET"), vec![v(x), v(w)]),
        "f32[1,2,5,5]"
    );
    assert_eq!(
        one(ct(&[3, 2], &[1, 1], &[], "NOTSET"), vec![v(x), v(w)]),
        "f32[1,2,10,8]"
    );
    assert_eq!(
        one(ct(&[3, 2], &[], &[10, 8], "NOTSET"), vec![v(x), v(w)]),
        "f32[1,2,10,8]"
    );
    assert_eq!(
        one(ct(&[2, 2], &[], &[], "SAME_UPPER"), vec![v(x), v(w)]),
        "f32[1,2,6,6]"
    );
    assert_eq!(
        one(ct(&[], &[], &[], "NOTSET"), vec![v("f32[n,1,h,3]"), v(w)]),
        "f32[n,2,?,5]"
    );
}

#[test]
fn pool_output_sizes() {
    let x4 = || v("f32[1,1,4,4]");
    assert_eq!(
        one(max_pool(2, 2, &[], 0, "NOTSET"), vec![x4()]),
        "f32[1,1,2,2]"
    );
    // ceil_mode: floor((4 - 3) / 2) + 1 = 1 but ceil gives 2.
    assert_eq!(
        one(max_pool(3, 2, &[], 0, "NOTSET"), vec![x4()]),
        "f32[1,1,1,1]"
    );
    assert_eq!(
        one(max_pool(3, 2, &[], 1, "NOTSET"), vec![x4()]),
        "f32[1,1,2,2]"
    );
    // ceil_mode never starts a window in the trailing padding.
    assert_eq!(
        one(max_pool(1, 2, &[], 1, "NOTSET"), vec![v("f32[1,1,2,2]")]),
        "f32[1,1,1,1]"
    );
    assert_eq!(
        one(
            max_pool(3, 2, &[], 0, "SAME_UPPER"),
            vec![v("f32[1,1,5,6]")]
        ),
        "f32[1,1,3,3]"
    );
    assert_eq!(
        one(
            max_pool(3, 2, &[1, 1, 1, 1], 0, "NOTSET"),
            vec![v("f32[1,1,5,5]")]
        ),
        "f32[1,1,3,3]"
    );
    assert_eq!(
        run(max_pool(2, 2, &[], 0, "NOTSET"), vec![v("f32[b,3,8,8]")], 2),
        Ok(vec!["f32[b,3,4,4]".to_string(), "i64[b,3,4,4]".to_string()])
    );
    let avg = Op::AveragePool {
        auto_pad: "NOTSET".into(),
        ceil_mode: 0,
        count_include_pad: 0,
        dilations: vec![2],
        kernel_shape: vec![2],
        pads: vec![],
        strides: vec![],
    };
    assert_eq!(one(avg, vec![v("f32[1,2,7]")]), "f32[1,2,5]");
    assert_eq!(
        one(Op::GlobalAveragePool {}, vec![v("f32[batch,16,h,w]")]),
        "f32[batch,16,1,1]"
    );
    assert_eq!(
        err(max_pool(2, 2, &[], 0, "NOTSET"), vec![v("f32[1,4]")]),
        "max_pool: operand 0 has shape f32[1,4], expected rank 3 or more"
    );
    assert_eq!(
        run(Op::Relu {}, vec![v("f32[1]")], 2),
        Err("relu: has at most 1 result, 2 requested".to_string())
    );
}

#[test]
fn normalizations_keep_x() {
    let bn = Op::BatchNormalization { epsilon: 1e-5 };
    let c = || v("f32[3]");
    assert_eq!(
        one(bn.clone(), vec![v("f32[n,3,4,4]"), c(), c(), c(), c()]),
        "f32[n,3,4,4]"
    );
    assert_eq!(
        err(bn, vec![v("f32[2,3,4,4]"), c(), c(), v("f32[4]"), c()]),
        "batch_normalization: operand 3 has shape f32[4], expected [3]"
    );
    let ln = |axis| Op::LayerNormalization {
        axis,
        epsilon: 1e-5,
        stash_type: 1,
    };
    assert_eq!(
        run(
            ln(-1),
            vec![v("f16[batch,seq,64]"), v("f16[64]"), v("f16[64]")],
            3
        ),
        Ok(vec![
            "f16[batch,seq,64]".to_string(),
            "f32[batch,seq,1]".to_string(),
            "f32[batch,seq,1]".to_string()
        ])
    );
    assert_eq!(
        run(ln(1), vec![v("f32[2,3,4]"), v("f32[3,4]")], 2),
        Ok(vec!["f32[2,3,4]".to_string(), "f32[2,1,1]".to_string()])
    );
    assert_eq!(
        err(ln(-1), vec![v("f32[2,3,4]"), v("f32[3]")]),
        "layer_normalization: operand 1 has shape f32[3], expected [4]"
    );
    let sm = Op::Softmax {
        axis: 2,
        coerce_2d: 0,
    };
    assert_eq!(
        err(sm, vec![v("f32[2,3]")]),
        "softmax: axis 2 is out of range for rank 2"
    );
    assert_eq!(
        one(
            Op::InstanceNormalization { epsilon: 1e-5 },
            vec![v("f32[1,2,5]"), v("f32[2]"), v("f32[2]")]
        ),
        "f32[1,2,5]"
    );
}

fn rsum(keepdims: i64, noop: i64) -> Op {
    Op::ReduceSum {
        keepdims,
        noop_with_empty_axes: noop,
    }
}

#[test]
fn reductions() {
    let x = || v("f32[2,3,4]");
    assert_eq!(one(rsum(1, 0), vec![x(), ints(&[1])]), "f32[2,1,4]");
    assert_eq!(one(rsum(0, 0), vec![x(), ints(&[1])]), "f32[2,4]");
    assert_eq!(one(rsum(0, 0), vec![x(), ints(&[-1, 0])]), "f32[3]");
    assert_eq!(one(rsum(1, 0), vec![x()]), "f32[1,1,1]");
    assert_eq!(one(rsum(0, 0), vec![x()]), "f32[]");
    assert_eq!(one(rsum(0, 0), vec![x(), ints(&[])]), "f32[]");
    assert_eq!(one(rsum(0, 1), vec![x(), ints(&[])]), "f32[2,3,4]");
    assert_eq!(one(rsum(0, 1), vec![x()]), "f32[2,3,4]");
    // Axes computed at run time.
    assert_eq!(one(rsum(0, 0), vec![x(), v("i64[1]")]), "f32[?,?]");
    assert_eq!(
        one(rsum(1, 0), vec![v("f32[2,1,4]"), v("i64[n]")]),
        "f32[?,1,?]"
    );
    assert_eq!(
        err(rsum(0, 0), vec![x(), v("i64[n]")]),
        "reduce_sum: cannot infer the rank: operand 1 i64[n] (axes) is not a constant and keepdims is 0"
    );
    assert_eq!(
        err(rsum(1, 0), vec![x(), ints(&[3])]),
        "reduce_sum: axis 3 is out of range for rank 3"
    );
    assert_eq!(
        err(rsum(1, 0), vec![x(), ints(&[1, -2])]),
        "reduce_sum: axis -2 is repeated in [1, -2]"
    );
    let am = Op::ArgMax {
        axis: -1,
        keepdims: 0,
        select_last_index: 0,
    };
    assert_eq!(one(am, vec![v("f32[batch,10]")]), "i64[batch]");
    let topk = Op::TopK {
        axis: -1,
        largest: 1,
        sorted: 1,
    };
    assert_eq!(
        run(topk.clone(), vec![v("f32[b,10]"), ints(&[3])], 2),
        Ok(vec!["f32[b,3]".to_string(), "i64[b,3]".to_string()])
    );
    assert_eq!(
        one(topk.clone(), vec![v("f32[b,10]"), v("i64[1]")]),
        "f32[b,?]"
    );
    assert_eq!(
        err(topk, vec![v("f32[2,3]"), ints(&[4])]),
        "top_k: operand 1 (k) is 4, but operand 0 f32[2,3] has only 3 elements along axis 1"
    );
    let cs = Op::CumSum {
        exclusive: 0,
        reverse: 0,
    };
    assert_eq!(
        one(cs.clone(), vec![x(), Arg::C(Tensor::scalar_i64(-1))]),
        "f32[2,3,4]"
    );
    assert_eq!(
        err(cs, vec![x(), Arg::C(Tensor::scalar_i64(3))]),
        "cum_sum: axis 3 is out of range for rank 3"
    );
}

#[test]
fn operand_and_result_counts_are_checked() {
    assert_eq!(
        err(Op::Add {}, vec![v("f32[2]")]),
        "add: expects 2 operands, got 1"
    );
    assert_eq!(
        err(conv(&[], &[], "NOTSET"), vec![v("f32[1,1,3,3]")]),
        "conv: expects 2 to 3 operands, got 1"
    );
    assert_eq!(
        err(Op::Sum {}, vec![]),
        "sum: expects at least 1 operand, got 0"
    );
    assert_eq!(
        err(Op::Add {}, vec![Arg::None, v("f32[2]")]),
        "add: operand 0 is required but missing"
    );
    assert_eq!(
        run(Op::Relu {}, vec![v("f32[2]")], 0),
        Err("relu: no result requested".to_string())
    );
    assert_eq!(
        err(gemm(0, 0), vec![v("f32[2,3,4]"), v("f32[4,5]")]),
        "gemm: operand 0 has shape f32[2,3,4], expected rank 2"
    );
}

#[test]
fn symbolic_batch_flows_through_an_mlp_and_a_cnn() {
    let h = one(
        gemm(0, 1),
        vec![v("f32[batch,64]"), v("f32[1024,64]"), v("f32[1024]")],
    );
    let h = one(Op::Relu {}, vec![v(&h)]);
    let h = one(gemm(0, 1), vec![v(&h), v("f32[10,1024]"), v("f32[10]")]);
    let sm = Op::Softmax {
        axis: -1,
        coerce_2d: 0,
    };
    assert_eq!(one(sm, vec![v(&h)]), "f32[batch,10]");

    let c = one(
        conv(&[1, 1, 1, 1], &[], "NOTSET"),
        vec![v("f32[batch,1,8,8]"), v("f32[16,1,3,3]"), v("f32[16]")],
    );
    let p = one(max_pool(2, 2, &[], 0, "NOTSET"), vec![v(&c)]);
    assert_eq!(p, "f32[batch,16,4,4]");
    let g = one(Op::GlobalAveragePool {}, vec![v(&p)]);
    assert_eq!(one(Op::Flatten { axis: 1 }, vec![v(&g)]), "f32[batch,16]");
}
