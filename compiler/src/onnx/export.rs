//! Writing a pruned model back as ONNX: the user's own `ModelProto` with zeros applied.
//!
//! sparsec does not serialize its IR. A pruned model is the original `ModelProto`, re-read from
//! its file, with the pruned positions zeroed in the tensors the IR weights came from (graph
//! initializers, or the `value` tensor of `Constant` nodes), so every node, attribute and
//! BatchNormalization of the user's graph stays as it was. The positions transfer because each
//! pruned IR weight has the shape of its source tensor and differs from it only by pruning and by
//! a per-output-channel scale (BatchNormalization folding). Float tensors stored as `raw_data` or
//! `float_data` are patched; external data, sparse initializers and other element types are an
//! [`ExportError`] naming the tensor. Files are written to a temporary file in the destination
//! folder and then renamed over it.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use onnx_protobuf::tensor_proto::DataLocation;
use onnx_protobuf::{Message, ModelProto, TensorProto};
use sparsec_ir::Tensor;
use thiserror::Error;

use super::{parse_model, ImportError};

/// Why a pruned model could not be written.
#[derive(Debug, Error)]
pub enum ExportError {
    /// The model file could not be read or parsed again.
    #[error(transparent)]
    Read(#[from] ImportError),
    /// The output could not be written.
    #[error("cannot write `{path}`: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A tensor to patch is missing, stored in a way the writer does not handle, or disagrees
    /// with the IR weight.
    #[error("tensor `{tensor}`: {reason}")]
    Tensor {
        /// The tensor name.
        tensor: String,
        /// What is wrong.
        reason: String,
    },
    /// The model could not be serialized.
    #[error("cannot serialize the model: {0}")]
    Serialize(String),
}

/// Zeros to apply: the tensor named `name` in the model gets a zero wherever `pruned` has one.
#[derive(Clone, Copy, Debug)]
pub struct ZeroPatch<'a> {
    /// The initializer name, or the output name of a `Constant` node.
    pub name: &'a str,
    /// The pruned IR weight; its shape must equal the tensor's dims.
    pub pruned: &'a Tensor,
}

/// Reads a model file into its `ModelProto`.
pub fn read_model(path: &Path) -> Result<ModelProto, ImportError> {
    let mut file = std::fs::File::open(path).map_err(|source| ImportError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_model(&mut file).map_err(|e| e.into_import_error(path))
}

/// Applies every patch to `model`; returns how many nonzero elements became zero. Nothing is
/// changed when any patch fails (all are checked first).
pub fn apply_zeros(
    model: &mut ModelProto,
    patches: &[ZeroPatch<'_>],
) -> Result<usize, ExportError> {
    let mut seen = HashSet::new();
    for p in patches {
        if !seen.insert(p.name) {
            return Err(bad(p.name, "several pruned weights come from it"));
        }
        check(p, model.tensor_mut(p.name)?)?;
    }
    let mut zeroed = 0;
    for p in patches {
        zeroed += patch(p, model.tensor_mut(p.name)?)?;
    }
    Ok(zeroed)
}

/// Serializes `model` to `path` through a temporary file in the same folder, renamed over it.
pub fn write_model(model: &ModelProto, path: &Path) -> Result<(), ExportError> {
    let bytes = model
        .write_to_bytes()
        .map_err(|e| ExportError::Serialize(e.to_string()))?;
    let io = |source| ExportError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file_name = path.file_name().ok_or_else(|| {
        io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a file path",
        ))
    })?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        // Best effort: do not leave the temporary file behind.
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io)
}

/// An [`ExportError::Tensor`].
fn bad(tensor: &str, reason: impl Into<String>) -> ExportError {
    ExportError::Tensor {
        tensor: tensor.to_string(),
        reason: reason.into(),
    }
}

/// Finding the tensor a name refers to.
trait FindTensor {
    /// The tensor named `name`: an initializer, or the `value` of the `Constant` node producing it.
    fn tensor_mut(&mut self, name: &str) -> Result<&mut TensorProto, ExportError>;
}

impl FindTensor for ModelProto {
    fn tensor_mut(&mut self, name: &str) -> Result<&mut TensorProto, ExportError> {
        let g = self
            .graph
            .as_mut()
            .ok_or_else(|| bad(name, "the model has no graph"))?;
        if g.sparse_initializer
            .iter()
            .any(|s| s.values.as_ref().is_some_and(|v| v.name == name))
        {
            return Err(bad(name, "sparse initializers cannot be patched"));
        }
        if let Some(i) = g.initializer.iter().position(|t| t.name == name) {
            return Ok(&mut g.initializer[i]);
        }
        let node = g
            .node
            .iter_mut()
            .find(|n| n.op_type == "Constant" && n.output.first().is_some_and(|o| o == name))
            .ok_or_else(|| {
                bad(
                    name,
                    "not an initializer or Constant of the model (it was computed at import)",
                )
            })?;
        node.attribute
            .iter_mut()
            .find(|a| a.name == "value")
            .and_then(|a| a.t.as_mut())
            .ok_or_else(|| {
                bad(
                    name,
                    "a Constant without a `value` tensor cannot be patched",
                )
            })
    }
}

/// Replaces the tensor named `name` (an initializer or a `Constant`'s value) by `t`, an f32 or
/// i64 tensor of the same element type, stored as raw little-endian data with `t`'s dims. Used
/// after structural pruning, which removes slices of weights. External data, segmented and
/// sparse tensors are an error naming the tensor.
pub fn replace_tensor(model: &mut ModelProto, name: &str, t: &Tensor) -> Result<(), ExportError> {
    let proto = model.tensor_mut(name)?;
    if proto.data_location.value() == DataLocation::EXTERNAL as i32 || proto.segment.is_some() {
        return Err(bad(
            name,
            "external or segmented tensors cannot be replaced",
        ));
    }
    let raw: Vec<u8> = match (proto.data_type, t.as_f32(), t.as_i64()) {
        (1, Some(v), _) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        (7, _, Some(v)) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        _ => {
            return Err(bad(
                name,
                format!(
                    "cannot store a {} tensor in ONNX element type {}",
                    t.dtype(),
                    proto.data_type
                ),
            ))
        }
    };
    proto.dims = t.shape().iter().map(|&d| d as i64).collect();
    proto.float_data.clear();
    proto.int64_data.clear();
    proto.int32_data.clear();
    proto.double_data.clear();
    proto.raw_data = raw;
    Ok(())
}

/// True when `model` has an initializer or a `Constant` output named `name`.
pub fn has_tensor(model: &mut ModelProto, name: &str) -> bool {
    model.tensor_mut(name).is_ok()
}

/// Drops the graph's `value_info` (shapes of intermediate values, optional in ONNX): after a
/// structural rewrite some of them are stale, and a runtime would reject the model.
pub fn clear_value_info(model: &mut ModelProto) {
    if let Some(g) = model.graph.as_mut() {
        g.value_info.clear();
    }
}

/// Checks that `t` can take the patch: f32 stored inline, dims equal to the IR weight's shape.
fn check(p: &ZeroPatch<'_>, t: &TensorProto) -> Result<(), ExportError> {
    if t.data_type != 1 {
        return Err(bad(p.name, "only float tensors can be patched"));
    }
    if t.data_location.value() == DataLocation::EXTERNAL as i32 {
        return Err(bad(
            p.name,
            "tensors stored as external data cannot be patched",
        ));
    }
    if t.segment.is_some() {
        return Err(bad(p.name, "segmented tensors cannot be patched"));
    }
    let shape: Vec<i64> = p.pruned.shape().iter().map(|&d| d as i64).collect();
    if t.dims != shape {
        return Err(bad(
            p.name,
            format!(
                "dims {:?} differ from the pruned weight's {shape:?}",
                t.dims
            ),
        ));
    }
    let n = p.pruned.numel();
    let ok = if t.raw_data.is_empty() {
        t.float_data.len() == n
    } else {
        t.raw_data.len() == 4 * n
    };
    if !ok || p.pruned.as_f32().is_none() {
        return Err(bad(p.name, "data length disagrees with its dims"));
    }
    Ok(())
}

/// Zeroes the pruned positions of a checked tensor; returns how many nonzeros became zero.
fn patch(p: &ZeroPatch<'_>, t: &mut TensorProto) -> Result<usize, ExportError> {
    check(p, t)?;
    let pruned = p.pruned.as_f32().unwrap_or_default();
    let mut zeroed = 0;
    if t.raw_data.is_empty() {
        for (x, &w) in t.float_data.iter_mut().zip(pruned) {
            if w == 0.0 && *x != 0.0 {
                *x = 0.0;
                zeroed += 1;
            }
        }
    } else {
        for (c, &w) in t.raw_data.chunks_exact_mut(4).zip(pruned) {
            if w == 0.0 && f32::from_le_bytes([c[0], c[1], c[2], c[3]]) != 0.0 {
                c.copy_from_slice(&0f32.to_le_bytes());
                zeroed += 1;
            }
        }
    }
    Ok(zeroed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use onnx_protobuf::{AttributeProto, GraphProto, NodeProto};
    use protobuf::MessageField;

    fn model() -> ModelProto {
        let mut g = GraphProto::new();
        let mut raw = TensorProto::new();
        raw.name = "raw".into();
        raw.data_type = 1;
        raw.dims = vec![2, 2];
        raw.raw_data = [1.0f32, 2.0, 3.0, 4.0]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let mut typed = raw.clone();
        typed.name = "typed".into();
        typed.raw_data.clear();
        typed.float_data = vec![5.0, 0.0, 7.0, 8.0];
        let mut ext = raw.clone();
        ext.name = "ext".into();
        ext.raw_data.clear();
        ext.data_location = DataLocation::EXTERNAL.into();
        let mut int = raw.clone();
        int.name = "int".into();
        int.data_type = 7;
        g.initializer = vec![raw.clone(), typed, ext, int];
        let mut c = NodeProto::new();
        c.op_type = "Constant".into();
        c.output = vec!["const".into()];
        let mut a = AttributeProto::new();
        a.name = "value".into();
        let mut ct = raw;
        ct.name = String::new();
        a.t = MessageField::some(ct);
        c.attribute.push(a);
        g.node.push(c);
        let mut m = ModelProto::new();
        m.graph = MessageField::some(g);
        m
    }

    fn floats(t: &TensorProto) -> Vec<f32> {
        if t.raw_data.is_empty() {
            t.float_data.clone()
        } else {
            t.raw_data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        }
    }

    #[test]
    fn zeroes_raw_typed_and_constant_tensors() {
        let mut m = model();
        let a = Tensor::from_f32(&[2, 2], vec![0.0, 2.0, 0.0, 4.0]);
        let b = Tensor::from_f32(&[2, 2], vec![0.0, 0.0, 7.0, 0.0]);
        let patches = [
            ZeroPatch {
                name: "raw",
                pruned: &a,
            },
            ZeroPatch {
                name: "typed",
                pruned: &b,
            },
            ZeroPatch {
                name: "const",
                pruned: &b,
            },
        ];
        // 2 in `raw`, 2 in `typed` (one was already zero), 3 in `const`.
        assert_eq!(apply_zeros(&mut m, &patches).expect("patches"), 7);
        assert_eq!(
            floats(m.tensor_mut("raw").unwrap()),
            vec![0.0, 2.0, 0.0, 4.0]
        );
        assert_eq!(
            floats(m.tensor_mut("typed").unwrap()),
            vec![0.0, 0.0, 7.0, 0.0]
        );
        assert_eq!(
            floats(m.tensor_mut("const").unwrap()),
            vec![0.0, 0.0, 3.0, 0.0]
        );
    }

    #[test]
    fn unpatchable_tensors_are_errors_naming_them_and_change_nothing() {
        let z = Tensor::from_f32(&[2, 2], vec![0.0; 4]);
        let wrong = Tensor::from_f32(&[4], vec![0.0; 4]);
        for (name, pruned, needle) in [
            ("ext", &z, "external data"),
            ("int", &z, "only float"),
            ("missing", &z, "not an initializer or Constant"),
            ("raw", &wrong, "dims [2, 2] differ"),
        ] {
            let mut m = model();
            let ok = ZeroPatch {
                name: "typed",
                pruned: &z,
            };
            let e = apply_zeros(&mut m, &[ok, ZeroPatch { name, pruned }]).unwrap_err();
            let text = e.to_string();
            assert!(
                text.contains(&format!("`{name}`")) && text.contains(needle),
                "{text}"
            );
            assert_eq!(m, model(), "nothing changed");
        }
        let mut m = model();
        let twice = [ZeroPatch {
            name: "raw",
            pruned: &z,
        }; 2];
        assert!(apply_zeros(&mut m, &twice)
            .unwrap_err()
            .to_string()
            .contains("several"));
    }

    #[test]
    fn writes_through_a_temporary_file() {
        let dir = std::env::temp_dir().join(format!("sparsec-export-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp folder");
        let path = dir.join("out.onnx");
        write_model(&model(), &path).expect("writes");
        let back =
            ModelProto::parse_from_bytes(&std::fs::read(&path).expect("reads")).expect("parses");
        let leftovers = std::fs::read_dir(&dir).expect("lists").count();
        std::fs::remove_dir_all(&dir).ok();
        assert_eq!(back, model());
        assert_eq!(leftovers, 1, "no temporary file is left");
        let e = write_model(&model(), &dir.join("no/such/folder/out.onnx")).unwrap_err();
        assert!(e.to_string().contains("out.onnx"), "{e}");
    }
}
