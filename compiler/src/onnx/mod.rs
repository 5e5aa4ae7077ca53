//! The ONNX frontend: reads an ONNX `ModelProto` and builds a [`sparsec_ir::Graph`].
//!
//! This module owns the public import API ([`import_file`], [`import_reader`], [`import_bytes`],
//! [`ImportOptions`]) and its error type [`ImportError`]. Files are parsed from a buffered reader,
//! never read whole into memory, so an import holds the serialized weights once (in the parsed
//! message) and frees each as it is decoded. The walk over the model lives in `import`, tensor decoding in
//! [`tensor_proto`] (with external data in `external`), attribute access in `attrs`, and the
//! per-op conversion rules in `ops` (one module per op family, each registering its converters).
//! The way back, writing a pruned model as the user's own `ModelProto` with zeros applied, is
//! [`export`].

mod attrs;
pub mod export;
mod external;
mod import;
mod ops;
pub mod tensor_proto;

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use onnx_protobuf::{Message, ModelProto};
use protobuf::CodedInputStream;

use sparsec_ir::shape::ShapeError;
use sparsec_ir::Graph;
use thiserror::Error;

/// Options of an import.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// Binds symbolic input dimensions (`dim_param` names) to concrete sizes.
    pub dims: BTreeMap<String, usize>,
    /// Evaluates nodes whose operands are all constants at import time.
    pub fold_constants: bool,
}

impl Default for ImportOptions {
    fn default() -> ImportOptions {
        ImportOptions {
            dims: BTreeMap::new(),
            fold_constants: true,
        }
    }
}

/// One unsupported operator of a model and the nodes that use it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnsupportedOp {
    /// The op type (prefixed by its domain when not the default one), plus the unsupported
    /// feature in brackets when the op itself is supported but this use of it is not.
    pub op_type: String,
    /// Names of the nodes, in model order.
    pub nodes: Vec<String>,
}

impl fmt::Display for UnsupportedOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.nodes.len();
        let noun = if n == 1 { "node" } else { "nodes" };
        write!(
            f,
            "{} ({n} {noun}: {})",
            self.op_type,
            self.nodes.join(", ")
        )
    }
}

/// The list of unsupported operators of a model, formatted on one line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnsupportedOps(pub Vec<UnsupportedOp>);

impl fmt::Display for UnsupportedOps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, op) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{op}")?;
        }
        Ok(())
    }
}

/// Why a model could not be imported.
#[derive(Debug, Error)]
pub enum ImportError {
    /// The model file could not be read.
    #[error("cannot read model `{path}`: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not a valid ONNX protobuf message.
    #[error("not an ONNX model: {0}")]
    Parse(String),
    /// The model has no graph.
    #[error("model has no graph")]
    NoGraph,
    /// Some operators (or uses of them) are not supported; every one of them is listed.
    #[error("unsupported operators: {0}")]
    Unsupported(UnsupportedOps),
    /// The model's default-domain opset is outside the supported range.
    #[error("{}", opset_message(*version))]
    UnsupportedOpset {
        /// The opset version the model imports, `None` when it imports none.
        version: Option<i64>,
    },
    /// A tensor or value has an element type sparsec does not support.
    #[error("tensor `{tensor}` has unsupported element type {dtype}")]
    UnsupportedDType {
        /// The tensor or value name.
        tensor: String,
        /// The ONNX element type name.
        dtype: String,
    },
    /// A tensor's data is malformed (length disagrees with dims, bad indices, ...).
    #[error("tensor `{tensor}`: {reason}")]
    Tensor {
        /// The tensor name.
        tensor: String,
        /// What is wrong.
        reason: String,
    },
    /// A tensor's external data is missing, out of bounds or outside the model folder.
    #[error("external data of tensor `{tensor}`: {reason}")]
    ExternalData {
        /// The tensor name.
        tensor: String,
        /// What is wrong.
        reason: String,
    },
    /// A graph input or output is malformed.
    #[error("graph value `{name}`: {reason}")]
    Value {
        /// The value name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// A node reads a value that nothing defines.
    #[error("node `{node}` ({op_type}) reads undefined value `{value}`")]
    UndefinedValue {
        /// The node name.
        node: String,
        /// The node's op type.
        op_type: String,
        /// The missing value.
        value: String,
    },
    /// A node is malformed (bad attribute, wrong operand count, ...).
    #[error("node `{node}` ({op_type}): {reason}")]
    Node {
        /// The node name.
        node: String,
        /// The node's op type.
        op_type: String,
        /// What is wrong.
        reason: String,
    },
    /// Shape inference rejected a node.
    #[error("node `{node}` ({op_type}): shape inference failed: {source}")]
    Shape {
        /// The node name.
        node: String,
        /// The node's op type.
        op_type: String,
        /// The cause.
        #[source]
        source: ShapeError,
    },
}

impl ImportError {
    /// True when the model is valid but uses an op, element type or feature sparsec does not
    /// support (as opposed to a malformed model or an I/O failure).
    pub fn is_unsupported(&self) -> bool {
        matches!(
            self,
            ImportError::Unsupported(_)
                | ImportError::UnsupportedOpset { .. }
                | ImportError::UnsupportedDType { .. }
        )
    }
}

/// The message of [`ImportError::UnsupportedOpset`].
fn opset_message(version: Option<i64>) -> String {
    match version {
        Some(v) => format!("unsupported opset {v} of the default domain (supported: 6 to 28)"),
        None => "the model imports no default-domain opset (supported: 6 to 28)".to_string(),
    }
}

/// Reads and imports an ONNX model file; external data is read relative to the file's folder.
pub fn import_file(path: &Path, opts: &ImportOptions) -> Result<Graph, ImportError> {
    let io_err = |source| ImportError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io_err)?;
    let base = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let model = parse_model(&mut file).map_err(|e| e.into_import_error(path))?;
    import::import_model(model, Some(&base), opts)
}

/// Imports an ONNX model read from `reader` (buffered here; it is read to its end). `base_dir` is
/// the folder external data is read from; without it, a model with external data is rejected.
/// A read failure is an [`ImportError::Io`] naming the model `<reader>`.
pub fn import_reader(
    reader: &mut dyn Read,
    base_dir: Option<&Path>,
    opts: &ImportOptions,
) -> Result<Graph, ImportError> {
    let model = parse_model(reader).map_err(|e| e.into_import_error(Path::new("<reader>")))?;
    import::import_model(model, base_dir, opts)
}

/// Imports an ONNX model from its serialized bytes. `base_dir` is the folder external data is
/// read from; without it, a model with external data is rejected.
pub fn import_bytes(
    bytes: &[u8],
    base_dir: Option<&Path>,
    opts: &ImportOptions,
) -> Result<Graph, ImportError> {
    import::import_bytes(bytes, base_dir, opts)
}

/// The buffer between the model source and the protobuf parser (few, large reads).
const READ_BUFFER_BYTES: usize = 1 << 20;

/// Why a model could not be parsed from a reader.
enum ParseFailure {
    /// Reading failed.
    Io(io::Error),
    /// The bytes are not a valid `ModelProto`.
    Invalid(String),
}

impl ParseFailure {
    fn into_import_error(self, path: &Path) -> ImportError {
        match self {
            ParseFailure::Io(source) => ImportError::Io {
                path: path.to_path_buf(),
                source,
            },
            ParseFailure::Invalid(m) => ImportError::Parse(m),
        }
    }
}

/// Parses a `ModelProto` from a reader through a buffer, telling read failures from bad bytes.
fn parse_model(reader: &mut dyn Read) -> Result<ModelProto, ParseFailure> {
    let mut source = BufReader::with_capacity(
        READ_BUFFER_BYTES,
        Recorder {
            inner: reader,
            error: None,
        },
    );
    let parsed = {
        let buffered: &mut dyn BufRead = &mut source;
        let mut stream = CodedInputStream::from_buf_read(buffered);
        ModelProto::parse_from(&mut stream).and_then(|m| stream.check_eof().map(|()| m))
    };
    parsed.map_err(|e| match source.into_inner().error {
        Some(io) => ParseFailure::Io(io),
        None => ParseFailure::Invalid(e.to_string()),
    })
}

/// A reader that keeps the first read error it meets (the parser's own error type does not
/// tell read failures from malformed bytes).
struct Recorder<'r> {
    inner: &'r mut dyn Read,
    error: Option<io::Error>,
}

impl Read for Recorder<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.inner.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let kind = e.kind();
                    self.error.get_or_insert(e);
                    return Err(kind.into());
                }
                ok => return ok,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use onnx_protobuf::{
        tensor_shape_proto, type_proto, GraphProto, NodeProto, OperatorSetIdProto,
    };
    use onnx_protobuf::{TensorProto, TensorShapeProto, TypeProto, ValueInfoProto};
    use protobuf::MessageField;
    use sparsec_ir::Tensor;

    /// A reader handing out at most `chunk` bytes per call, failing after `fail_at` bytes.
    struct Trickle<'a> {
        bytes: &'a [u8],
        chunk: usize,
        fail_at: Option<usize>,
        pos: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.fail_at.is_some_and(|f| self.pos >= f) {
                return Err(io::Error::other("device unplugged"));
            }
            let n = buf.len().min(self.chunk).min(self.bytes.len() - self.pos);
            buf[..n].copy_from_slice(&self.bytes[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    fn trickle(bytes: &[u8], chunk: usize, fail_at: Option<usize>) -> Trickle<'_> {
        Trickle {
            bytes,
            chunk,
            fail_at,
            pos: 0,
        }
    }

    fn tensor(name: &str, dtype: i32, dims: &[i64], raw: Vec<u8>) -> TensorProto {
        let mut t = TensorProto::new();
        t.name = name.into();
        t.data_type = dtype;
        t.dims = dims.to_vec();
        t.raw_data = raw;
        t
    }

    /// A chain of `n` Adds over `n` f32 initializers (alternately raw and typed data), plus
    /// initializers of other element types that are graph outputs.
    fn many_initializers(n: usize) -> Vec<u8> {
        let mut g = GraphProto::new();
        g.name = "many".into();
        let mut x = ValueInfoProto::new();
        x.name = "x".into();
        let mut shape = TensorShapeProto::new();
        for d in [2, 3] {
            let mut dim = tensor_shape_proto::Dimension::new();
            dim.value = Some(tensor_shape_proto::dimension::Value::DimValue(d));
            shape.dim.push(dim);
        }
        let mut tt = type_proto::Tensor::new();
        tt.elem_type = 1;
        tt.shape = MessageField::some(shape);
        let mut ty = TypeProto::new();
        ty.value = Some(type_proto::Value::TensorType(tt));
        x.type_ = MessageField::some(ty);
        g.input.push(x);
        let mut prev = "x".to_string();
        for k in 0..n {
            let vals: Vec<f32> = (0..6).map(|i| (k * 6 + i) as f32 * 0.5 - 3.0).collect();
            let mut t = tensor(&format!("w{k}"), 1, &[2, 3], Vec::new());
            if k % 2 == 0 {
                t.raw_data = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
            } else {
                t.float_data = vals;
            }
            g.initializer.push(t);
            let mut node = NodeProto::new();
            node.op_type = "Add".into();
            node.input = vec![prev.clone(), format!("w{k}")];
            prev = format!("y{k}");
            node.output = vec![prev.clone()];
            g.node.push(node);
        }
        let big: Vec<u8> = (0..70_000u32)
            .flat_map(|i| (i as f32).to_le_bytes())
            .collect();
        g.initializer.push(tensor("big", 1, &[70_000], big));
        g.initializer.push(tensor("u8", 2, &[3], vec![1, 2, 250]));
        g.initializer.push(tensor("bool", 9, &[2], vec![1, 0]));
        let mut i64s = tensor("i64", 7, &[2], Vec::new());
        i64s.int64_data = vec![-5, 1 << 40];
        g.initializer.push(i64s);
        for name in [prev.as_str(), "big", "u8", "bool", "i64"] {
            let mut y = ValueInfoProto::new();
            y.name = name.into();
            g.output.push(y);
        }
        let mut m = ModelProto::new();
        m.ir_version = 8;
        let mut o = OperatorSetIdProto::new();
        o.version = 17;
        m.opset_import.push(o);
        m.graph = MessageField::some(g);
        m.write_to_bytes().expect("serializes")
    }

    /// The text form of a graph plus the data of every weight, in value order.
    fn summary(g: &Graph) -> (String, Vec<(String, Tensor)>) {
        let mut weights = Vec::new();
        for v in g.referenced_values() {
            if let Some(t) = g.const_data(v) {
                weights.push((g.value(v).name.clone(), t.clone()));
            }
        }
        (sparsec_ir::print(g), weights)
    }

    #[test]
    fn reader_file_and_bytes_import_the_same_graph() {
        let bytes = many_initializers(200);
        let opts = ImportOptions {
            fold_constants: false,
            ..ImportOptions::default()
        };
        let from_bytes = import_bytes(&bytes, None, &opts).expect("imports");
        let expected = summary(&from_bytes);
        assert_eq!(expected.1.len(), 204, "every initializer is a weight");
        for chunk in [1, 7, 4096, usize::MAX] {
            let g = import_reader(&mut trickle(&bytes, chunk, None), None, &opts).expect("reads");
            assert_eq!(summary(&g), expected, "chunk {chunk}");
        }
        let dir = std::env::temp_dir().join(format!("sparsec-import-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp folder");
        let path = dir.join("many.onnx");
        std::fs::write(&path, &bytes).expect("writes");
        let from_file = import_file(&path, &opts);
        std::fs::remove_dir_all(&dir).ok();
        assert_eq!(summary(&from_file.expect("imports")), expected);
    }

    #[test]
    fn reader_failures_are_io_errors_and_bad_bytes_parse_errors() {
        let bytes = many_initializers(3);
        let opts = ImportOptions::default();
        let e = import_reader(&mut trickle(&bytes, 5, Some(40)), None, &opts).unwrap_err();
        assert!(matches!(e, ImportError::Io { .. }), "{e}");
        assert!(e.to_string().contains("device unplugged"), "{e}");
        let half = &bytes[..bytes.len() / 2];
        let e = import_reader(&mut trickle(half, 5, None), None, &opts).unwrap_err();
        assert!(matches!(e, ImportError::Parse(_)), "{e}");
        let e = import_reader(
            &mut trickle(b"\x89PNG\r\n not a model", 3, None),
            None,
            &opts,
        )
        .unwrap_err();
        assert!(e.to_string().contains("not an ONNX model"), "{e}");
        let e = import_file(Path::new("."), &opts).unwrap_err();
        assert!(matches!(e, ImportError::Io { .. }), "a folder: {e}");
    }
}
