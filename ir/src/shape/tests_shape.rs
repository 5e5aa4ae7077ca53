//! Tests of shape inference for the shape family (data movement, padding, resizing, generators)
//! and the gathers and scatters.

use super::tests::{err, floats, ints, one, run, v, Arg};
use crate::attr::Scalar;
use crate::op::Op;
use crate::tensor::Tensor;
use crate::types::DType;

fn reshape(allowzero: i64) -> Op {
    Op::Reshape { allowzero }
}

fn split(axis: i64) -> Op {
    Op::Split {
        axis,
        num_outputs: 0,
    }
}

#[test]
fn reshape_copies_infers_and_checks_counts() {
    let x = || v("f32[2,3,4]");
    assert_eq!(one(reshape(0), vec![x(), ints(&[0, -1])]), "f32[2,12]");
    assert_eq!(one(reshape(0), vec![x(), ints(&[-1])]), "f32[24]");
    assert_eq!(one(reshape(0), vec![x(), ints(&[4, -1, 2])]), "f32[4,3,2]");
    assert_eq!(
        one(reshape(1), vec![v("f32[0,3]"), ints(&[3, 0])]),
        "f32[3,0]"
    );
    assert_eq!(
        err(reshape(0), vec![v("f32[2,3]"), ints(&[4, 2])]),
        "reshape: cannot reshape operand 0 f32[2,3] to [4, 2]: the element counts differ"
    );
    assert_eq!(
        err(reshape(0), vec![v("f32[2,3]"), ints(&[4, -1])]),
        "reshape: cannot reshape operand 0 f32[2,3] to [4, -1]: the element counts differ"
    );
    assert_eq!(
        err(reshape(0), vec![x(), ints(&[-1, -1])]),
        "reshape: operand 1 [-1, -1] has more than one -1"
    );
    assert_eq!(
        err(reshape(0), vec![x(), floats(&[24.0])]),
        "reshape: operand 1 has element type f32, expected an integer type"
    );
    // Symbols cancel: a copied batch dimension leaves a known product for -1.
    assert_eq!(
        one(reshape(0), vec![v("f32[batch,4,16]"), ints(&[0, -1])]),
        "f32[batch,64]"
    );
    assert_eq!(
        one(reshape(0), vec![v("f32[batch,64]"), ints(&[-1, 64])]),
        "f32[batch,64]"
    );
    assert_eq!(
        one(reshape(0), vec![v("f32[batch,64]"), ints(&[-1, 8, 8])]),
        "f32[batch,8,8]"
    );
    assert_eq!(
        one(reshape(0), vec![v("f32[batch,64]"), ints(&[-1, 32])]),
        "f32[?,32]"
    );
    // A shape computed at run time gives the right rank with unknown dimensions.
    assert_eq!(one(reshape(0), vec![x(), v("i64[3]")]), "f32[?,?,?]");
    assert_eq!(
        err(reshape(0), vec![x(), v("i64[n]")]),
        "reshape: cannot infer the rank: operand 1 (shape) i64[n] is not a constant and its length is unknown"
    );
}

#[test]
fn flatten_transpose_squeeze_unsqueeze() {
    let x = || v("f32[2,3,4]");
    assert_eq!(one(Op::Flatten { axis: 1 }, vec![x()]), "f32[2,12]");
    assert_eq!(one(Op::Flatten { axis: 0 }, vec![x()]), "f32[1,24]");
    assert_eq!(one(Op::Flatten { axis: -1 }, vec![x()]), "f32[6,4]");
    assert_eq!(one(Op::Flatten { axis: 3 }, vec![x()]), "f32[24,1]");
    assert_eq!(
        one(Op::Flatten { axis: 1 }, vec![v("f32[b,3,4]")]),
        "f32[b,12]"
    );
    assert_eq!(
        err(Op::Flatten { axis: 4 }, vec![x()]),
        "flatten: axis 4 is out of range for rank 3"
    );
    assert_eq!(one(Op::Transpose { perm: vec![] }, vec![x()]), "f32[4,3,2]");
    assert_eq!(
        one(
            Op::Transpose {
                perm: vec![0, 2, 1]
            },
            vec![v("f32[b,s,8]")]
        ),
        "f32[b,8,s]"
    );
    assert_eq!(
        err(
            Op::Transpose {
                perm: vec![0, 0, 1]
            },
            vec![x()]
        ),
        "transpose: axis 0 is repeated in [0, 0, 1]"
    );
    let y = || v("f32[1,3,1,n]");
    assert_eq!(one(Op::Squeeze {}, vec![y()]), "f32[3,n]");
    assert_eq!(one(Op::Squeeze {}, vec![y(), ints(&[0])]), "f32[3,1,n]");
    assert_eq!(one(Op::Squeeze {}, vec![y(), ints(&[-2, -1])]), "f32[1,3]");
    assert_eq!(
        err(Op::Squeeze {}, vec![y(), ints(&[1])]),
        "squeeze: operand 0 f32[1,3,1,n] has size 3 at axis 1, which squeeze cannot remove"
    );
    assert_eq!(
        one(Op::Unsqueeze {}, vec![v("f32[3,4]"), ints(&[0, -1])]),
        "f32[1,3,4,1]"
    );
    assert_eq!(
        one(Op::Unsqueeze {}, vec![v("f32[3,4]"), ints(&[1])]),
        "f32[3,1,4]"
    );
    assert_eq!(
        one(Op::Unsqueeze {}, vec![v("f32[]"), ints(&[0])]),
        "f32[1]"
    );
}

#[test]
fn concat_sums_along_the_axis() {
    let cat = |axis| Op::Concat { axis };
    assert_eq!(one(cat(1), vec![v("f32[2,3]"), v("f32[2,5]")]), "f32[2,8]");
    assert_eq!(one(cat(-1), vec![v("f32[2,3]"), v("f32[2,5]")]), "f32[2,8]");
    assert_eq!(one(cat(0), vec![v("f32[b,3]"), v("f32[b,3]")]), "f32[?,3]");
    assert_eq!(one(cat(0), vec![v("f32[n,3]"), v("f32[0,3]")]), "f32[n,3]");
    assert_eq!(one(cat(1), vec![v("f32[b,3]"), v("f32[2,3]")]), "f32[2,6]");
    assert_eq!(
        err(cat(2), vec![v("f32[2,3]"), v("f32[2,3]")]),
        "concat: axis 2 is out of range for rank 2"
    );
    assert_eq!(
        err(cat(1), vec![v("f32[2,3]"), v("f32[4,3]")]),
        "concat: operand 1 has shape f32[4,3], expected [2,*]"
    );
    assert_eq!(
        err(cat(0), vec![v("f32[2,3]"), v("f32[3]")]),
        "concat: operand 1 has shape f32[3], expected [*,3]"
    );
}

#[test]
fn split_by_sizes_or_equal_parts() {
    let r = |x: &str, sizes: Option<&[i64]>, n| {
        let mut args = vec![v(x)];
        if let Some(s) = sizes {
            args.push(ints(s));
        }
        run(split(0), args, n)
    };
    let strs = |v: &[&str]| Ok(v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    assert_eq!(
        r("f32[6,4]", None, 3),
        strs(&["f32[2,4]", "f32[2,4]", "f32[2,4]"])
    );
    assert_eq!(
        r("f32[6,4]", Some(&[2, 4]), 2),
        strs(&["f32[2,4]", "f32[4,4]"])
    );
    // Opset 18: an uneven split makes the last chunk smaller.
    assert_eq!(r("f32[5]", None, 3), strs(&["f32[2]", "f32[2]", "f32[1]"]));
    assert_eq!(
        r("f32[7]", None, 4),
        strs(&["f32[2]", "f32[2]", "f32[2]", "f32[1]"])
    );
    assert_eq!(r("f32[n,2]", None, 2), strs(&["f32[?,2]", "f32[?,2]"]));
    assert_eq!(
        r("f32[6,4]", Some(&[2, 3]), 2),
        Err(
            "split: operand 1 [2, 3] sums to 5, but operand 0 f32[6,4] has size 6 along axis 0"
                .into()
        )
    );
    assert_eq!(
        r("f32[5]", None, 4),
        Err(
            "split: operand 0 f32[5] has size 5 along axis 0, which cannot be split into 4 parts"
                .into()
        )
    );
    let by_attr = Op::Split {
        axis: -1,
        num_outputs: 2,
    };
    assert_eq!(
        run(by_attr.clone(), vec![v("f32[3,4]")], 2),
        strs(&["f32[3,2]", "f32[3,2]"])
    );
    assert_eq!(
        run(by_attr, vec![v("f32[3,4]")], 3),
        Err("split: attribute num_outputs is 2, but 3 results are requested".into())
    );
}

#[test]
fn slice_clamps_and_steps() {
    let x = || v("f32[20,10,5]");
    assert_eq!(
        one(
            Op::Slice {},
            vec![
                x(),
                ints(&[0, 0]),
                ints(&[3, 10]),
                ints(&[0, 1]),
                ints(&[1, 1])
            ]
        ),
        "f32[3,10,5]"
    );
    // Axes default to the first ones; ends past the size clamp.
    assert_eq!(
        one(Op::Slice {}, vec![x(), ints(&[1]), ints(&[1000])]),
        "f32[19,10,5]"
    );
    assert_eq!(
        one(
            Op::Slice {},
            vec![x(), ints(&[-3]), ints(&[i64::MAX]), ints(&[1])]
        ),
        "f32[20,3,5]"
    );
    // Negative steps walk backwards: 20 -> 1 by 1, 9 -> 1 by 3, 4 -> 2 by 2.
    assert_eq!(
        one(
            Op::Slice {},
            vec![
                x(),
                ints(&[20, 10, 4]),
                ints(&[0, 0, 1]),
                ints(&[0, 1, 2]),
                ints(&[-1, -3, -2])
            ]
        ),
        "f32[19,3,2]"
    );
    assert_eq!(
        one(
            Op::Slice {},
            vec![
                v("f32[10]"),
                ints(&[-1]),
                ints(&[i64::MIN]),
                Arg::None,
                ints(&[-1])
            ]
        ),
        "f32[10]"
    );
    assert_eq!(
        one(Op::Slice {}, vec![v("f32[10]"), ints(&[25]), ints(&[30])]),
        "f32[0]"
    );
    // Symbolic dimensions survive a whole-axis slice only.
    assert_eq!(
        one(
            Op::Slice {},
            vec![v("f32[b,8]"), ints(&[0, 2]), ints(&[i64::MAX, 6])]
        ),
        "f32[b,4]"
    );
    assert_eq!(
        one(
            Op::Slice {},
            vec![
                v("f32[b]"),
                ints(&[-1]),
                ints(&[-i64::MAX]),
                Arg::None,
                ints(&[-1])
            ]
        ),
        "f32[b]"
    );
    assert_eq!(
        one(Op::Slice {}, vec![v("f32[b,8]"), ints(&[1]), ints(&[3])]),
        "f32[?,8]"
    );
    // Starts computed at run time: the sliced axes are unknown.
    assert_eq!(
        one(Op::Slice {}, vec![x(), v("i64[1]"), ints(&[2]), ints(&[1])]),
        "f32[20,?,5]"
    );
    assert_eq!(
        err(
            Op::Slice {},
            vec![x(), ints(&[0]), ints(&[2]), ints(&[0]), ints(&[0])]
        ),
        "slice: operand 4 [0] has a zero step at index 0"
    );
    assert_eq!(
        err(Op::Slice {}, vec![x(), ints(&[0, 0]), ints(&[2])]),
        "slice: operand 2 has shape i64[1], expected [2]"
    );
}

#[test]
fn expand_tile_pad() {
    assert_eq!(
        one(Op::Expand {}, vec![v("f32[3,1]"), ints(&[2, 1, 6])]),
        "f32[2,3,6]"
    );
    assert_eq!(
        one(Op::Expand {}, vec![v("f32[b,1]"), ints(&[1, 4])]),
        "f32[b,4]"
    );
    assert_eq!(
        one(Op::Expand {}, vec![v("f32[3,1]"), v("i64[3]")]),
        "f32[?,3,?]"
    );
    assert_eq!(
        err(Op::Expand {}, vec![v("f32[3]"), ints(&[4])]),
        "expand: operand 0 f32[3] does not broadcast with the shape [4]"
    );
    assert_eq!(
        one(Op::Tile {}, vec![v("f32[2,3]"), ints(&[2, 1])]),
        "f32[4,3]"
    );
    assert_eq!(
        one(Op::Tile {}, vec![v("f32[b,3]"), ints(&[1, 3])]),
        "f32[b,9]"
    );
    assert_eq!(
        err(Op::Tile {}, vec![v("f32[2,3]"), ints(&[2])]),
        "tile: operand 1 has shape i64[1], expected [2]"
    );
    let pad = || Op::Pad {
        mode: "constant".into(),
    };
    assert_eq!(
        one(pad(), vec![v("f32[3,4]"), ints(&[1, 1, 2, 2])]),
        "f32[6,7]"
    );
    assert_eq!(
        one(
            pad(),
            vec![v("f32[3,4]"), ints(&[1, 2]), Arg::None, ints(&[-1])]
        ),
        "f32[3,7]"
    );
    assert_eq!(
        one(pad(), vec![v("f32[b,4]"), ints(&[0, -1, 0, -1])]),
        "f32[b,2]"
    );
    assert_eq!(one(pad(), vec![v("f32[3,4]"), v("i64[4]")]), "f32[?,?]");
    assert_eq!(
        err(pad(), vec![v("f32[3,4]"), ints(&[-2, 0, -2, 0])]),
        "pad: operand 1 [-2, 0, -2, 0] pads axis 0 of operand 0 f32[3,4] to a negative size"
    );
}

fn resize(axes: &[i64], policy: &str) -> Op {
    Op::Resize {
        antialias: 0,
        axes: axes.to_vec(),
        coordinate_transformation_mode: "half_pixel".into(),
        cubic_coeff_a: -0.75,
        exclude_outside: 0,
        extrapolation_value: 0.0,
        keep_aspect_ratio_policy: policy.into(),
        mode: "nearest".into(),
        nearest_mode: "round_prefer_floor".into(),
    }
}

#[test]
fn resize_by_scales_or_sizes() {
    let x = || v("f32[1,1,4,4]");
    let scales = |s: &[f32]| vec![x(), Arg::None, floats(s)];
    assert_eq!(
        one(resize(&[], "stretch"), scales(&[1.0, 1.0, 0.5, 2.0])),
        "f32[1,1,2,8]"
    );
    // floor(4 * 0.6) = 2, floor(4 * 1.7) = 6.
    assert_eq!(
        one(resize(&[], "stretch"), scales(&[1.0, 1.0, 0.6, 1.7])),
        "f32[1,1,2,6]"
    );
    assert_eq!(
        one(resize(&[2, 3], "stretch"), scales(&[3.0, 0.25])),
        "f32[1,1,12,1]"
    );
    let sizes = |s: &[i64]| vec![v("f32[1,1,2,2]"), Arg::None, Arg::None, ints(s)];
    assert_eq!(
        one(resize(&[], "stretch"), sizes(&[1, 1, 7, 8])),
        "f32[1,1,7,8]"
    );
    assert_eq!(
        one(resize(&[2, 3], "not_larger"), sizes(&[7, 8])),
        "f32[1,1,7,7]"
    );
    assert_eq!(
        one(resize(&[2, 3], "not_smaller"), sizes(&[7, 8])),
        "f32[1,1,8,8]"
    );
    // An empty scales tensor next to sizes, as exporters write it.
    assert_eq!(
        one(
            resize(&[], "stretch"),
            vec![x(), Arg::None, floats(&[]), ints(&[1, 1, 3, 3])]
        ),
        "f32[1,1,3,3]"
    );
    assert_eq!(
        one(
            resize(&[], "stretch"),
            vec![v("f32[b,3,h,w]"), Arg::None, floats(&[1.0, 1.0, 2.0, 1.0])]
        ),
        "f32[b,3,?,w]"
    );
    assert_eq!(
        err(
            resize(&[], "stretch"),
            vec![x(), Arg::None, floats(&[2.0, 2.0])]
        ),
        "resize: operand 2 has shape f32[2], expected [4]"
    );
    assert_eq!(
        err(resize(&[], "stretch"), vec![x()]),
        "resize: needs operand 2 (scales) or operand 3 (sizes)"
    );
}

#[test]
fn shape_size_constant_of_shape_range() {
    let shape = |start, end| Op::Shape { start, end };
    assert_eq!(one(shape(0, i64::MAX), vec![v("f32[b,3,4]")]), "i64[3]");
    assert_eq!(one(shape(-1, i64::MAX), vec![v("f32[b,3,4]")]), "i64[1]");
    assert_eq!(one(shape(1, -1), vec![v("f32[b,3,4]")]), "i64[1]");
    assert_eq!(one(shape(2, 1), vec![v("f32[b,3,4]")]), "i64[0]");
    assert_eq!(one(Op::Size {}, vec![v("f32[b,3]")]), "i64[]");
    let cos = Op::ConstantOfShape {
        value: Scalar {
            dtype: DType::I64,
            value: 1.0,
        },
    };
    assert_eq!(one(cos.clone(), vec![ints(&[2, 3])]), "i64[2,3]");
    assert_eq!(one(cos.clone(), vec![ints(&[])]), "i64[]");
    assert_eq!(one(cos, vec![v("i64[2]")]), "i64[?,?]");
    let range =
        |s: Tensor, l: Tensor, d: Tensor| one(Op::Range {}, vec![Arg::C(s), Arg::C(l), Arg::C(d)]);
    let i = Tensor::scalar_i64;
    let f = Tensor::scalar_f32;
    assert_eq!(range(i(0), i(10), i(3)), "i64[4]");
    assert_eq!(range(i(10), i(4), i(-3)), "i64[2]");
    assert_eq!(range(i(5), i(1), i(1)), "i64[0]");
    assert_eq!(range(f(1.0), f(10.0), f(2.0)), "f32[5]");
    assert_eq!(range(f(0.0), f(1.0), f(0.1)), "f32[10]");
    assert_eq!(
        one(Op::Range {}, vec![Arg::C(i(0)), v("i64[]"), Arg::C(i(1))]),
        "i64[?]"
    );
    assert_eq!(
        err(Op::Range {}, vec![Arg::C(i(0)), Arg::C(i(5)), Arg::C(i(0))]),
        "range: operand 2 (delta) is zero"
    );
    assert_eq!(
        err(
            Op::Range {},
            vec![Arg::C(i(0)), Arg::C(f(5.0)), Arg::C(i(1))]
        ),
        "range: operand 1 has element type f32, expected i64 (the type of operand 0)"
    );
}

#[test]
fn trilu_depth_space() {
    assert_eq!(
        one(
            Op::Trilu { upper: 1 },
            vec![v("f32[b,4,5]"), Arg::C(Tensor::scalar_i64(-1))]
        ),
        "f32[b,4,5]"
    );
    let d2s = Op::DepthToSpace {
        blocksize: 2,
        mode: "DCR".into(),
    };
    assert_eq!(one(d2s.clone(), vec![v("f32[b,8,2,3]")]), "f32[b,2,4,6]");
    assert_eq!(
        err(d2s, vec![v("f32[1,6,2,3]")]),
        "depth_to_space: operand 0 f32[1,6,2,3] has size 6 at axis 1, which is not a multiple of 4"
    );
    assert_eq!(
        one(Op::SpaceToDepth { blocksize: 2 }, vec![v("f32[1,2,4,6]")]),
        "f32[1,8,2,3]"
    );
}

#[test]
fn gathers_and_scatters() {
    let x = || v("f32[5,4]");
    assert_eq!(
        one(Op::Gather { axis: 0 }, vec![x(), v("i64[2,3]")]),
        "f32[2,3,4]"
    );
    assert_eq!(
        one(Op::Gather { axis: -1 }, vec![x(), v("i32[2,3]")]),
        "f32[5,2,3]"
    );
    assert_eq!(
        one(
            Op::Gather { axis: 0 },
            vec![x(), Arg::C(Tensor::scalar_i64(1))]
        ),
        "f32[4]"
    );
    assert_eq!(
        one(
            Op::Gather { axis: 0 },
            vec![v("f32[1000,128]"), v("i64[batch,seq]")]
        ),
        "f32[batch,seq,128]"
    );
    assert_eq!(
        err(Op::Gather { axis: 0 }, vec![x(), v("f32[2]")]),
        "gather: operand 1 has element type f32, expected an integer type"
    );
    assert_eq!(
        one(Op::GatherElements { axis: 1 }, vec![x(), v("i64[5,2]")]),
        "f32[5,2]"
    );
    let gnd = |b| Op::GatherNd { batch_dims: b };
    assert_eq!(one(gnd(0), vec![v("f32[2,2]"), v("i64[2,2]")]), "f32[2]");
    assert_eq!(one(gnd(0), vec![v("f32[2,2]"), v("i64[2,1]")]), "f32[2,2]");
    assert_eq!(
        one(gnd(1), vec![v("f32[2,2,2]"), v("i64[2,1]")]),
        "f32[2,2]"
    );
    assert_eq!(
        err(gnd(0), vec![v("f32[2,2]"), v("i64[2,3]")]),
        "gather_nd: operand 1 has shape i64[2,3], whose index tuples of length 3 do not fit operand 0 f32[2,2] with batch_dims 0"
    );
    let snd = Op::ScatterNd {
        reduction: "none".into(),
    };
    assert_eq!(
        one(
            snd.clone(),
            vec![v("f32[4,4,4]"), v("i64[2,1]"), v("f32[2,4,4]")]
        ),
        "f32[4,4,4]"
    );
    assert_eq!(
        err(snd, vec![v("f32[4,4,4]"), v("i64[2,1]"), v("f32[2,4]")]),
        "scatter_nd: operand 2 has shape f32[2,4], expected [2,4,4]"
    );
    let se = Op::ScatterElements {
        axis: 0,
        reduction: "add".into(),
    };
    assert_eq!(
        one(
            se.clone(),
            vec![v("f32[3,3]"), v("i64[2,3]"), v("f32[2,3]")]
        ),
        "f32[3,3]"
    );
    assert_eq!(
        err(se, vec![v("f32[3,3]"), v("i64[2,3]"), v("f32[3,3]")]),
        "scatter_elements: operand 2 has shape f32[3,3], expected [2,3]"
    );
    let oh = |axis| Op::OneHot { axis };
    let depth = || Arg::C(Tensor::scalar_i64(10));
    assert_eq!(
        one(oh(-1), vec![v("i64[b,3]"), depth(), v("f32[2]")]),
        "f32[b,3,10]"
    );
    assert_eq!(
        one(oh(0), vec![v("i64[3]"), depth(), v("i32[2]")]),
        "i32[10,3]"
    );
    assert_eq!(
        one(oh(-1), vec![v("i64[3]"), v("i64[]"), v("f32[2]")]),
        "f32[3,?]"
    );
    assert_eq!(
        err(oh(2), vec![v("i64[3]"), depth(), v("f32[2]")]),
        "one_hot: axis 2 is out of range for rank 2"
    );
}
