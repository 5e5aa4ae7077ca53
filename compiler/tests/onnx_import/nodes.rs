//! Import tests of nodes: old-opset normalization, the unsupported-ops report, aliasing, folding,
//! graph inputs and outputs, and malformed models.

use std::collections::BTreeMap;

use sparsec::onnx::{ImportError, ImportOptions};
use sparsec_ir::{DType, Dim, Op, Scalar, Tensor, TensorType, ValueDef};

use crate::builder::*;

/// A model with one input `x: f32[2,1,3]` and one output `y`.
fn unary_model(opset: i64) -> ModelBuilder {
    model(opset)
        .input("x", FLOAT, vec![D::V(2), D::V(1), D::V(3)])
        .output("y")
}

#[test]
fn squeeze_and_unsqueeze_axes_attributes_become_operands() {
    for op in ["Squeeze", "Unsqueeze"] {
        let g = unary_model(11)
            .named_node("sq", "", op, &["x"], &["y"], vec![attr_ints("axes", &[1])])
            .import()
            .unwrap();
        let n = single_node(&g);
        assert_eq!(n.inputs.len(), 2, "{op}");
        assert_eq!(operand_data(&g, n, 1), &Tensor::from_i64(&[1], vec![1]));
        assert_eq!(operand_name(&g, n, 1), "sq_axes");
        assert_eq!(g.value(n.outputs[0]).name, "y");
    }
    // Squeeze without axes keeps one operand; opset 13 passes the input through.
    let g = unary_model(11)
        .node("Squeeze", &["x"], &["y"], vec![])
        .import()
        .unwrap();
    assert_eq!(single_node(&g).inputs.len(), 1);
    let g = unary_model(13)
        .init(tp_i64("ax", &[1], &[1]))
        .node("Squeeze", &["x", "ax"], &["y"], vec![])
        .import()
        .unwrap();
    assert_eq!(operand_name(&g, single_node(&g), 1), "ax");
}

#[test]
fn softmax_family_gets_coerce_2d_before_opset_13() {
    for (opset, axis, coerce_2d) in [(11, 1, 1), (13, -1, 0)] {
        let g = unary_model(opset)
            .node("Softmax", &["x"], &["y"], vec![])
            .import()
            .unwrap();
        assert_eq!(
            single_op(&g),
            Op::Softmax { axis, coerce_2d },
            "opset {opset}"
        );
    }
    let g = unary_model(12)
        .node("LogSoftmax", &["x"], &["y"], vec![attr_i("axis", 2)])
        .import()
        .unwrap();
    assert_eq!(
        single_op(&g),
        Op::LogSoftmax {
            axis: 2,
            coerce_2d: 1
        }
    );
    let g = unary_model(9)
        .node("Hardmax", &["x"], &["y"], vec![])
        .import()
        .unwrap();
    assert_eq!(
        single_op(&g),
        Op::Hardmax {
            axis: 1,
            coerce_2d: 1
        }
    );
}

#[test]
fn reduce_axes_attribute_becomes_an_operand() {
    let keep0 = vec![attr_ints("axes", &[0, 2]), attr_i("keepdims", 0)];
    let g = unary_model(11)
        .node("ReduceSum", &["x"], &["y"], keep0.clone())
        .import()
        .unwrap();
    let n = single_node(&g);
    assert_eq!(
        n.op,
        Op::ReduceSum {
            keepdims: 0,
            noop_with_empty_axes: 0
        }
    );
    assert_eq!(operand_data(&g, n, 1), &Tensor::from_i64(&[2], vec![0, 2]));
    // ReduceMean kept the attribute form until opset 18.
    let g = unary_model(17)
        .node("ReduceMean", &["x"], &["y"], keep0)
        .import()
        .unwrap();
    assert_eq!(
        operand_data(&g, single_node(&g), 1).as_i64(),
        Some(&[0, 2][..])
    );
    // Without axes every axis is reduced: no axes operand.
    let g = unary_model(11)
        .node("ReduceMax", &["x"], &["y"], vec![])
        .import()
        .unwrap();
    assert_eq!(single_node(&g).inputs.len(), 1);
}

#[test]
fn split_slice_pad_clip_topk_old_forms() {
    let g = unary_model(11)
        .node(
            "Split",
            &["x"],
            &["y", "z"],
            vec![attr_i("axis", 2), attr_ints("split", &[1, 2])],
        )
        .output("z")
        .import()
        .unwrap();
    let n = single_node(&g);
    assert_eq!(
        n.op,
        Op::Split {
            axis: 2,
            num_outputs: 0
        }
    );
    assert_eq!(operand_data(&g, n, 1).as_i64(), Some(&[1, 2][..]));
    assert_eq!(n.outputs.len(), 2);

    let g = unary_model(9)
        .node(
            "Slice",
            &["x"],
            &["y"],
            vec![
                attr_ints("starts", &[0]),
                attr_ints("ends", &[2]),
                attr_ints("axes", &[2]),
            ],
        )
        .import()
        .unwrap();
    let n = single_node(&g);
    assert_eq!(n.inputs.len(), 4);
    let consts: Vec<Vec<i64>> = (1..4)
        .map(|k| operand_data(&g, n, k).to_i64_vec())
        .collect();
    assert_eq!(consts, [vec![0], vec![2], vec![2]]);

    let g = unary_model(10)
        .node(
            "Pad",
            &["x"],
            &["y"],
            vec![attr_ints("pads", &[0, 0, 1, 0, 0, 1]), attr_f("value", 1.5)],
        )
        .import()
        .unwrap();
    let n = single_node(&g);
    assert_eq!(
        n.op,
        Op::Pad {
            mode: "constant".into()
        }
    );
    assert_eq!(
        operand_data(&g, n, 1).as_i64(),
        Some(&[0, 0, 1, 0, 0, 1][..])
    );
    assert_eq!(operand_data(&g, n, 2), &Tensor::scalar_f32(1.5));

    let g = unary_model(10)
        .node("Clip", &["x"], &["y"], vec![attr_f("max", 6.0)])
        .import()
        .unwrap();
    let n = single_node(&g);
    assert_eq!(n.inputs[1], None);
    assert_eq!(operand_data(&g, n, 2), &Tensor::scalar_f32(6.0));

    let g = unary_model(9)
        .node("TopK", &["x"], &["y", "i"], vec![attr_i("k", 2)])
        .output("i")
        .import()
        .unwrap();
    let n = single_node(&g);
    assert_eq!(operand_data(&g, n, 1).as_i64(), Some(&[2][..]));
    assert_eq!(n.outputs.len(), 2);
}

#[test]
fn upsample_and_resize_10_become_resize() {
    let g = unary_model(8)
        .node(
            "Upsample",
            &["x"],
            &["y"],
            vec![attr_floats("scales", &[1.0, 1.0, 2.0])],
        )
        .import()
        .unwrap();
    let n = single_node(&g);
    match &n.op {
        Op::Resize {
            mode,
            coordinate_transformation_mode,
            nearest_mode,
            ..
        } => {
            assert_eq!(mode, "nearest");
            assert_eq!(coordinate_transformation_mode, "asymmetric");
            assert_eq!(nearest_mode, "floor");
        }
        op => panic!("expected resize, found {op:?}"),
    }
    assert_eq!(n.inputs[1], None);
    assert_eq!(operand_data(&g, n, 2).as_f32(), Some(&[1.0, 1.0, 2.0][..]));

    let g = unary_model(10)
        .init(tp_f32("s", &[3], &[1.0, 1.0, 2.0]))
        .node(
            "Resize",
            &["x", "s"],
            &["y"],
            vec![attr_s("mode", "linear")],
        )
        .import()
        .unwrap();
    let n = single_node(&g);
    assert!(matches!(&n.op, Op::Resize { mode, .. } if mode == "linear"));
    assert_eq!((n.inputs.len(), n.inputs[1]), (3, None));
    assert_eq!(operand_name(&g, n, 2), "s");

    // Opset 11+: x, roi, scales, sizes with an omitted roi and scales.
    let g = unary_model(13)
        .init(tp_i64("sz", &[3], &[2, 1, 6]))
        .node("Resize", &["x", "", "", "sz"], &["y"], vec![])
        .import()
        .unwrap();
    let n = single_node(&g);
    assert_eq!((n.inputs[1], n.inputs[2]), (None, None));
    assert_eq!(operand_name(&g, n, 3), "sz");
}

#[test]
fn attributes_map_to_ir_fields() {
    let g = unary_model(17)
        .node("Cast", &["x"], &["y"], vec![attr_i("to", INT64 as i64)])
        .import()
        .unwrap();
    assert_eq!(single_op(&g), Op::Cast { to: DType::I64 });
    let e = unary_model(17)
        .named_node(
            "c",
            "",
            "Cast",
            &["x"],
            &["y"],
            vec![attr_i("to", BFLOAT16 as i64)],
        )
        .import()
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "unsupported operators: Cast [to=bfloat16] (1 node: c)"
    );

    let g = model(17)
        .init(tp_i64("shape", &[2], &[2, 2]))
        .node(
            "ConstantOfShape",
            &["shape"],
            &["y"],
            vec![attr_t("value", tp_i64("", &[1], &[3]))],
        )
        .output("y")
        .import_with(&ImportOptions {
            fold_constants: false,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        single_op(&g),
        Op::ConstantOfShape {
            value: Scalar {
                dtype: DType::I64,
                value: 3.0
            }
        }
    );

    let g = model(17)
        .input("a", FLOAT, vec![D::V(2), D::V(3)])
        .input("b", FLOAT, vec![D::V(2), D::V(3)])
        .node(
            "Gemm",
            &["a", "b"],
            &["y"],
            vec![attr_i("transB", 1), attr_f("alpha", 0.5)],
        )
        .output("y")
        .import()
        .unwrap();
    assert_eq!(
        single_op(&g),
        Op::Gemm {
            alpha: 0.5,
            beta: 1.0,
            trans_a: 0,
            trans_b: 1
        }
    );

    let g = unary_model(17)
        .node(
            "Conv",
            &["x", "x"],
            &["y"],
            vec![attr_ints("pads", &[1, 1]), attr_i("group", 1)],
        )
        .import()
        .unwrap();
    assert!(matches!(single_op(&g), Op::Conv { pads, .. } if pads == [1, 1]));

    let e = unary_model(17)
        .named_node(
            "bad",
            "",
            "Gelu",
            &["x"],
            &["y"],
            vec![attr_i("approximate", 1)],
        )
        .import()
        .unwrap_err();
    assert!(!e.is_unsupported());
    assert_eq!(
        e.to_string(),
        "node `bad` (Gelu): attribute `approximate` should be a string, found an int"
    );
}

#[test]
fn unsupported_ops_are_all_listed() {
    let e = unary_model(17)
        .named_node("a", "", "NonZero", &["x"], &["n1"], vec![])
        .named_node("r", "", "Relu", &["n1"], &["r1"], vec![])
        .named_node("l", "", "Loop", &["x"], &["l1"], vec![])
        .named_node("b", "", "NonZero", &["r1"], &["n2"], vec![])
        .named_node("f", "com.microsoft", "FusedGemm", &["x"], &["f1"], vec![])
        .named_node(
            "bn",
            "",
            "BatchNormalization",
            &["x", "x", "x", "x", "x"],
            &["b1"],
            vec![attr_i("training_mode", 1)],
        )
        .node("Relu", &["x"], &["y"], vec![])
        .import()
        .unwrap_err();
    assert!(e.is_unsupported());
    assert_eq!(
        e.to_string(),
        "unsupported operators: NonZero (2 nodes: a, b), Loop (1 node: l), \
         com.microsoft:FusedGemm (1 node: f), BatchNormalization [training_mode=1] (1 node: bn)"
    );
}

#[test]
fn opsets_outside_6_to_28_are_unsupported() {
    for opset in [5, 29] {
        let e = unary_model(opset)
            .node("Relu", &["x"], &["y"], vec![])
            .import()
            .unwrap_err();
        assert!(matches!(e, ImportError::UnsupportedOpset { version: Some(v) } if v == opset));
        assert!(e.is_unsupported());
    }
}

#[test]
fn legacy_broadcast_becomes_unsqueeze() {
    // Opset 6: `Add(A[2,3,4], B[3]) broadcast=1 axis=1` aligns B with A's axis 1.
    let g = model(6)
        .input("a", FLOAT, vec![D::V(2), D::V(3), D::V(4)])
        .input("b", FLOAT, vec![D::V(3)])
        .output("y")
        .node(
            "Add",
            &["a", "b"],
            &["y"],
            vec![attr_i("broadcast", 1), attr_i("axis", 1)],
        )
        .import()
        .unwrap();
    let text = sparsec_ir::print(&g);
    assert!(text.contains("unsqueeze %b, @w0 : f32[3,1]"), "{text}");
    assert!(text.contains("add %a, %0 : f32[2,3,4]"), "{text}");
}

#[test]
fn identity_and_dropout_are_aliased_unless_outputs() {
    let g = unary_model(17)
        .node("Identity", &["x"], &["i"], vec![])
        .node("Dropout", &["i"], &["d"], vec![])
        .node("Relu", &["d"], &["y"], vec![])
        .import()
        .unwrap();
    let n = single_node(&g);
    assert_eq!(n.op, Op::Relu {});
    assert_eq!(n.inputs[0], Some(g.inputs()[0]));

    // Identity producing a graph output stays, and the output keeps its ONNX name.
    let g = unary_model(17)
        .node("Identity", &["x"], &["y"], vec![])
        .import()
        .unwrap();
    assert_eq!(single_op(&g), Op::Identity {});
    assert_eq!(g.value(g.outputs()[0]).name, "y");

    // Dropout with its mask requested stays.
    let g = unary_model(17)
        .node("Dropout", &["x"], &["d", "mask"], vec![])
        .node("Relu", &["d"], &["y"], vec![])
        .output("mask")
        .import()
        .unwrap();
    assert_eq!(nodes(&g).len(), 2);
}

#[test]
fn empty_inputs_are_omitted_operands_and_names_are_filled() {
    let g = unary_model(13)
        .init(tp_f32("hi", &[], &[1.0]))
        .node("Clip", &["x", "", "hi"], &["y"], vec![])
        .import()
        .unwrap();
    let n = single_node(&g);
    assert_eq!(n.name, "Clip_0");
    assert_eq!(n.inputs.len(), 3);
    assert_eq!(n.inputs[1], None);
    assert_eq!(operand_name(&g, n, 2), "hi");
    // Trailing empty inputs are dropped.
    let g = unary_model(13)
        .node("Clip", &["x", "", ""], &["y"], vec![])
        .import()
        .unwrap();
    assert_eq!(single_node(&g).inputs.len(), 1);
}

#[test]
fn graph_inputs_dims_and_weights() {
    let mut dims = BTreeMap::new();
    dims.insert("batch".to_string(), 4);
    let opts = ImportOptions {
        dims,
        fold_constants: true,
    };
    let g = model(17)
        .input(
            "x",
            FLOAT,
            vec![D::P("batch"), D::P("seq"), D::Unknown, D::V(8)],
        )
        .input("w", FLOAT, vec![D::V(1)])
        .init(tp_f32("w", &[1], &[2.0]))
        .node("Mul", &["x", "w"], &["y"], vec![])
        .output("y")
        .import_with(&opts)
        .unwrap();
    assert_eq!(g.inputs().len(), 1);
    let x = g.value(g.inputs()[0]);
    assert_eq!(x.name, "x");
    assert_eq!(
        x.ty,
        TensorType {
            dtype: DType::F32,
            dims: vec![
                Dim::Known(4),
                Dim::Sym("seq".into()),
                Dim::Sym("?".into()),
                Dim::Known(8)
            ],
        }
    );
    let n = single_node(&g);
    assert!(matches!(
        g.value(n.inputs[1].unwrap()).def,
        ValueDef::Weight(_)
    ));

    let e = model(17)
        .input("s", STRING, vec![D::V(1)])
        .output("s")
        .import()
        .unwrap_err();
    assert!(e.is_unsupported() && e.to_string().contains("`s`"), "{e}");
    let e = model(17)
        .input_no_shape("u", FLOAT)
        .output("u")
        .import()
        .unwrap_err();
    assert!(e.to_string().contains("`u`"), "{e}");
}

#[test]
fn shape_and_size_of_known_shapes_are_folded() {
    let g = unary_model(17)
        .node("Shape", &["x"], &["s"], vec![])
        .node("Shape", &["x"], &["t"], vec![attr_i("start", -2)])
        .node("Size", &["x"], &["n"], vec![])
        .node("Relu", &["x"], &["y"], vec![])
        .output("s")
        .output("t")
        .output("n")
        .import()
        .unwrap();
    assert_eq!(nodes(&g).len(), 1);
    assert_eq!(output_data(&g, 1).as_i64(), Some(&[2, 1, 3][..]));
    assert_eq!(output_data(&g, 2).as_i64(), Some(&[1, 3][..]));
    assert_eq!(output_data(&g, 3), &Tensor::scalar_i64(6));
    assert_eq!(g.value(g.outputs()[1]).name, "s");

    // A symbolic dim, or folding turned off, keeps the node.
    let g = model(17)
        .input("x", FLOAT, vec![D::P("b"), D::V(3)])
        .node("Shape", &["x"], &["y"], vec![])
        .output("y")
        .import()
        .unwrap();
    assert_eq!(
        single_op(&g),
        Op::Shape {
            start: 0,
            end: i64::MAX
        }
    );
    let off = ImportOptions {
        fold_constants: false,
        ..Default::default()
    };
    let g = unary_model(17)
        .node("Shape", &["x"], &["y"], vec![])
        .import_with(&off)
        .unwrap();
    assert_eq!(nodes(&g).len(), 1);
}

#[test]
fn malformed_models_are_errors_not_panics() {
    let good = unary_model(17).node("Relu", &["x"], &["y"], vec![]);
    let bytes = good.bytes();
    let opts = ImportOptions::default();
    for cut in [bytes.len() / 2, bytes.len() - 1, 3] {
        let e = sparsec::onnx::import_bytes(&bytes[..cut], None, &opts).unwrap_err();
        assert!(!e.is_unsupported(), "{e}");
    }
    let e = sparsec::onnx::import_bytes(b"\x89PNG\r\n\x1a\n not a model at all", None, &opts)
        .unwrap_err();
    assert!(e.to_string().contains("not an ONNX model"), "{e}");
    let e = sparsec::onnx::import_bytes(b"", None, &opts).unwrap_err();
    assert!(matches!(e, ImportError::NoGraph), "{e}");

    let e = unary_model(17)
        .named_node("r", "", "Relu", &["nope"], &["y"], vec![])
        .import()
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "node `r` (Relu) reads undefined value `nope`"
    );

    let e = unary_model(17)
        .node("Relu", &["x"], &["x"], vec![])
        .import()
        .unwrap_err();
    assert!(e.to_string().contains("defined more than once"), "{e}");

    let e = unary_model(17)
        .node("Add", &["x"], &["y"], vec![])
        .import()
        .unwrap_err();
    assert!(
        e.to_string().contains("Add_0") && e.to_string().contains("missing"),
        "{e}"
    );

    let e = unary_model(17)
        .output("nowhere")
        .node("Relu", &["x"], &["y"], vec![])
        .import()
        .unwrap_err();
    assert!(e.to_string().contains("`nowhere`"), "{e}");

    let missing =
        sparsec::onnx::import_file(std::path::Path::new("no/such/model.onnx"), &opts).unwrap_err();
    assert!(matches!(missing, ImportError::Io { .. }));
}
