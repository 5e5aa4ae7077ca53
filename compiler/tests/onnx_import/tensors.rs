//! Import tests of tensor data: initializer encodings and element types, external data, sparse
//! initializers and the forms of `Constant` nodes.

use std::fs;

use half::f16;
use sparsec::onnx::{import_bytes, import_file, ImportError, ImportOptions};
use sparsec_ir::{DType, Tensor, TensorData};

use crate::builder::*;

/// Imports a model whose only output is the initializer `t` and returns its data.
fn init_roundtrip(t: onnx_protobuf::TensorProto) -> Result<Tensor, ImportError> {
    let name = t.name.clone();
    let g = model(17).init(t).output(&name).import()?;
    assert_eq!(g.node_count(), 0);
    assert_eq!(g.value(g.outputs()[0]).name, name);
    Ok(output_data(&g, 0).clone())
}

#[test]
fn raw_data_of_every_dtype() {
    let cases: Vec<(i32, Vec<u8>, TensorData)> = vec![
        (
            FLOAT,
            f32_bytes(&[1.5, -2.0]),
            TensorData::F32(vec![1.5, -2.0]),
        ),
        (
            DOUBLE,
            [0.25f64, -8.0]
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect(),
            TensorData::F64(vec![0.25, -8.0]),
        ),
        (
            FLOAT16,
            [f16::from_f32(0.5), f16::from_f32(-3.0)]
                .iter()
                .flat_map(|x| x.to_bits().to_le_bytes())
                .collect(),
            TensorData::F16(vec![f16::from_f32(0.5), f16::from_f32(-3.0)]),
        ),
        (
            INT64,
            [7i64, -1 << 40]
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect(),
            TensorData::I64(vec![7, -1 << 40]),
        ),
        (
            INT32,
            [-5i32, 1 << 30]
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect(),
            TensorData::I32(vec![-5, 1 << 30]),
        ),
        (INT8, vec![0xff, 0x7f], TensorData::I8(vec![-1, 127])),
        (UINT8, vec![0xff, 3], TensorData::U8(vec![255, 3])),
        (BOOL, vec![1, 0], TensorData::Bool(vec![true, false])),
    ];
    for (elem, raw, want) in cases {
        let t = init_roundtrip(tp_raw("w", elem, &[2], raw)).expect("import");
        assert_eq!(t.shape(), &[2]);
        assert_eq!(t.data(), &want, "element type {elem}");
    }
}

#[test]
fn typed_fields_of_every_dtype() {
    let t = init_roundtrip(tp_f32("w", &[2, 2], &[1.0, 2.0, 3.0, 4.0])).unwrap();
    assert_eq!(t.shape(), &[2, 2]);
    assert_eq!(t.as_f32(), Some(&[1.0, 2.0, 3.0, 4.0][..]));

    let t = init_roundtrip(tp_i64("w", &[3], &[1, -2, 3])).unwrap();
    assert_eq!(t.as_i64(), Some(&[1, -2, 3][..]));

    let mut d = tp("w", DOUBLE, &[1]);
    d.double_data = vec![2.5];
    assert_eq!(
        init_roundtrip(d).unwrap().data(),
        &TensorData::F64(vec![2.5])
    );

    // int32_data carries i32, and also f16 bits, i8, u8 and bool, one per entry.
    let int32_cases: Vec<(i32, Vec<i32>, TensorData)> = vec![
        (INT32, vec![-7, 9], TensorData::I32(vec![-7, 9])),
        (
            FLOAT16,
            vec![
                f16::from_f32(1.5).to_bits() as i32,
                f16::from_f32(-2.0).to_bits() as i32,
            ],
            TensorData::F16(vec![f16::from_f32(1.5), f16::from_f32(-2.0)]),
        ),
        (INT8, vec![-128, 5], TensorData::I8(vec![-128, 5])),
        (UINT8, vec![200, 0], TensorData::U8(vec![200, 0])),
        (BOOL, vec![0, 1], TensorData::Bool(vec![false, true])),
    ];
    for (elem, ints, want) in int32_cases {
        let mut t = tp("w", elem, &[2]);
        t.int32_data = ints;
        assert_eq!(
            init_roundtrip(t).unwrap().data(),
            &want,
            "element type {elem}"
        );
    }
}

#[test]
fn scalar_and_empty_initializers() {
    let t = init_roundtrip(tp_f32("s", &[], &[4.0])).unwrap();
    assert_eq!(t.shape(), &[] as &[usize]);
    assert_eq!(t.as_f32(), Some(&[4.0][..]));
    let t = init_roundtrip(tp("e", INT64, &[0, 3])).unwrap();
    assert_eq!(t.shape(), &[0, 3]);
    assert_eq!(t.numel(), 0);
}

#[test]
fn data_length_mismatch_is_an_error_naming_the_tensor() {
    for t in [
        tp_raw("short", FLOAT, &[3], f32_bytes(&[1.0, 2.0])),
        tp_f32("short", &[2, 2], &[1.0, 2.0, 3.0]),
        tp("short", INT64, &[2]),
        tp_f32("short", &[-1], &[]),
        tp_raw("short", 0, &[1], vec![0]),
    ] {
        let e = init_roundtrip(t).unwrap_err();
        assert!(
            matches!(e, ImportError::Tensor { ref tensor, .. } if tensor == "short"),
            "{e}"
        );
        assert!(!e.is_unsupported());
        assert!(!e.to_string().ends_with('.'));
    }
}

#[test]
fn unsupported_dtypes_are_named() {
    for (elem, dname) in [
        (STRING, "string"),
        (BFLOAT16, "bfloat16"),
        (UINT16, "uint16"),
        (99, "with code 99"),
    ] {
        let e = init_roundtrip(tp_raw("odd", elem, &[1], vec![0, 0])).unwrap_err();
        assert!(e.is_unsupported(), "{e}");
        assert_eq!(
            e.to_string(),
            format!("tensor `odd` has unsupported element type {dname}")
        );
    }
}

#[test]
fn external_data_is_read_from_the_model_folder() {
    let dir = temp_dir("ext-ok");
    fs::create_dir_all(dir.join("data")).unwrap();
    let mut blob = vec![0xAAu8; 8];
    blob.extend(f32_bytes(&[1.0, 2.0, 3.0]));
    fs::write(dir.join("data/w.bin"), &blob).unwrap();
    fs::write(dir.join("whole.bin"), f32_bytes(&[5.0, 6.0])).unwrap();
    let m = model(17)
        .init(tp_external("w", &[3], "data/w.bin", Some(8), Some(12)))
        .init(tp_external("v", &[2], "./whole.bin", None, None))
        .output("w")
        .output("v");
    fs::write(dir.join("model.onnx"), m.bytes()).unwrap();
    let g = import_file(&dir.join("model.onnx"), &ImportOptions::default()).unwrap();
    assert_eq!(output_data(&g, 0).as_f32(), Some(&[1.0, 2.0, 3.0][..]));
    assert_eq!(output_data(&g, 1).as_f32(), Some(&[5.0, 6.0][..]));

    // Without a folder, external data cannot be read.
    let e = import_bytes(&m.bytes(), None, &ImportOptions::default()).unwrap_err();
    assert!(
        matches!(e, ImportError::ExternalData { ref tensor, .. } if tensor == "w"),
        "{e}"
    );
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn external_data_outside_the_folder_is_rejected() {
    let root = temp_dir("ext-bad");
    let dir = root.join("model");
    fs::create_dir_all(&dir).unwrap();
    fs::write(root.join("escape.bin"), f32_bytes(&[1.0])).unwrap();
    fs::write(dir.join("in.bin"), f32_bytes(&[1.0])).unwrap();
    let abs = root.join("escape.bin").to_string_lossy().into_owned();
    let mut cases = vec![
        (
            tp_external("w", &[1], "../escape.bin", None, None),
            "escapes",
        ),
        (
            tp_external("w", &[1], "sub/../../escape.bin", None, None),
            "escapes",
        ),
        (tp_external("w", &[1], &abs, None, None), "absolute"),
        (
            tp_external("w", &[1], "missing.bin", None, None),
            "cannot open",
        ),
        (
            tp_external("w", &[1], "in.bin", Some(8), None),
            "past the end",
        ),
        (
            tp_external("w", &[1], "in.bin", Some(2), Some(4)),
            "past the end",
        ),
        (tp_external("w", &[2], "in.bin", None, None), "dims need 8"),
        (
            tp_external("w", &[1], "in.bin", Some(u64::MAX), Some(4)),
            "past the end",
        ),
    ];
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(root.join("escape.bin"), dir.join("link.bin")).unwrap();
        cases.push((tp_external("w", &[1], "link.bin", None, None), "outside"));
    }
    for (t, why) in cases {
        let m = model(17).init(t).output("w");
        let e = import_bytes(&m.bytes(), Some(&dir), &ImportOptions::default()).unwrap_err();
        let msg = e.to_string();
        assert!(
            matches!(e, ImportError::ExternalData { ref tensor, .. } if tensor == "w"),
            "{msg}"
        );
        assert!(msg.contains(why), "`{msg}` should say `{why}`");
    }
    fs::remove_dir_all(&root).unwrap();
}

#[test]
fn sparse_initializers_become_dense_weights() {
    // COO indices as [nnz, rank].
    let s = sparse(
        tp_f32("sp", &[3], &[1.0, 2.0, 3.0]),
        tp_i64("", &[3, 2], &[0, 1, 1, 0, 2, 3]),
        &[3, 4],
    );
    let g = model(17).sparse_init(s).output("sp").import().unwrap();
    let t = output_data(&g, 0);
    assert_eq!(t.shape(), &[3, 4]);
    let mut want = [0.0f32; 12];
    want[1] = 1.0;
    want[4] = 2.0;
    want[11] = 3.0;
    assert_eq!(t.as_f32(), Some(&want[..]));
    let w = g.weight(g.outputs()[0]).unwrap();
    assert_eq!(w.facts.nnz, 3);
    assert_eq!(w.facts.numel, 12);
    assert!((w.facts.density() - 0.25).abs() < 1e-12);

    // Linearized indices [nnz].
    let s = sparse(
        tp_i64("lin", &[2], &[5, 6]),
        tp_i64("", &[2], &[0, 5]),
        &[2, 3],
    );
    let g = model(17).sparse_init(s).output("lin").import().unwrap();
    assert_eq!(output_data(&g, 0).as_i64(), Some(&[5, 0, 0, 0, 0, 6][..]));
    assert_eq!(g.weight(g.outputs()[0]).unwrap().facts.nnz, 2);

    // Dims too large to densify are refused before allocating.
    let s = sparse(
        tp_f32("huge", &[1], &[1.0]),
        tp_i64("", &[1], &[0]),
        &[1 << 40, 1 << 20],
    );
    let e = model(17)
        .sparse_init(s)
        .output("huge")
        .import()
        .unwrap_err();
    assert!(e.to_string().contains("too large"), "{e}");

    // Out-of-range indices are an error naming the tensor.
    let s = sparse(tp_f32("bad", &[1], &[1.0]), tp_i64("", &[1], &[6]), &[2, 3]);
    let e = model(17).sparse_init(s).output("bad").import().unwrap_err();
    assert!(
        e.to_string().contains("`bad`") && e.to_string().contains("out of range"),
        "{e}"
    );
}

#[test]
fn constant_nodes_become_weights() {
    let sp = sparse(tp_f32("", &[1], &[9.0]), tp_i64("", &[1], &[2]), &[3]);
    let g = model(17)
        .node(
            "Constant",
            &[],
            &["a"],
            vec![attr_t("value", tp_f32("", &[2], &[1.0, 2.0]))],
        )
        .node("Constant", &[], &["b"], vec![attr_f("value_float", 0.5)])
        .node(
            "Constant",
            &[],
            &["c"],
            vec![attr_floats("value_floats", &[1.0, -1.0])],
        )
        .node("Constant", &[], &["d"], vec![attr_i("value_int", 7)])
        .node(
            "Constant",
            &[],
            &["e"],
            vec![attr_ints("value_ints", &[3, 4, 5])],
        )
        .node(
            "Constant",
            &[],
            &["f"],
            vec![attr_sparse("sparse_value", sp)],
        )
        .output("a")
        .output("b")
        .output("c")
        .output("d")
        .output("e")
        .output("f")
        .import()
        .unwrap();
    assert_eq!(g.node_count(), 0);
    assert_eq!(output_data(&g, 0), &Tensor::from_f32(&[2], vec![1.0, 2.0]));
    assert_eq!(output_data(&g, 1), &Tensor::scalar_f32(0.5));
    assert_eq!(output_data(&g, 2), &Tensor::from_f32(&[2], vec![1.0, -1.0]));
    assert_eq!(output_data(&g, 3), &Tensor::scalar_i64(7));
    assert_eq!(output_data(&g, 4), &Tensor::from_i64(&[3], vec![3, 4, 5]));
    assert_eq!(
        output_data(&g, 5),
        &Tensor::from_f32(&[3], vec![0.0, 0.0, 9.0])
    );
    let names: Vec<&str> = g
        .outputs()
        .iter()
        .map(|&v| g.value(v).name.as_str())
        .collect();
    assert_eq!(names, ["a", "b", "c", "d", "e", "f"]);
    assert_eq!(g.value(g.outputs()[3]).ty.dtype, DType::I64);
}

#[test]
fn constant_of_strings_is_unsupported() {
    let mut s = tp("", STRING, &[1]);
    s.string_data = vec![b"hi".to_vec()];
    let e = model(17)
        .named_node("k", "", "Constant", &[], &["a"], vec![attr_t("value", s)])
        .output("a")
        .import()
        .unwrap_err();
    assert!(e.is_unsupported(), "{e}");
    assert!(
        e.to_string().contains("Constant") && e.to_string().contains("string"),
        "{e}"
    );
}
