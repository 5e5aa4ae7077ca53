//! The ONNX frontend: reads an ONNX `ModelProto` and builds a [`sparsec_ir::Graph`].
//!
//! This module owns the public import API ([`import_file`], [`import_bytes`], [`ImportOptions`])
//! and its error type [`ImportError`]. The walk over the model lives in `import`, tensor decoding in
//! [`tensor_proto`] (with external data in `external`), attribute access in `attrs`, and the
//! per-op conversion rules in `ops` (one module per op family, each registering its converters).

mod attrs;
mod external;
mod import;
mod ops;
pub mod tensor_proto;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

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
    let bytes = std::fs::read(path).map_err(|source| ImportError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let base = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    import_bytes(&bytes, Some(&base), opts)
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
