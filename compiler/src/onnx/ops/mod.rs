//! The ONNX op converters: a registry from ONNX op type to a conversion function.
//!
//! Each op family has one module with a `register` function that adds its converters, as tract
//! does. A converter sees one node through a [`NodeCtx`] (opset, attributes, operand types) and
//! returns a [`Lowered`]: the IR op with its attributes normalized to the newest opset form,
//! and its operand list, where attributes of old opsets that became inputs are new constants.

mod binary;
mod conv;
mod index;
mod matmul;
mod misc;
mod norm;
mod pool;
mod reduce;
mod shape;
mod unary;

use std::collections::HashMap;
use std::path::Path;

use onnx_protobuf::{SparseTensorProto, TensorProto};
use sparsec_ir::{DType, Op, Tensor, TensorType};

use super::attrs::Attrs;
use super::tensor_proto::{decode_sparse, decode_tensor};
use super::ImportError;

/// Why a converter rejected a node.
#[derive(Debug)]
pub(crate) enum OpError {
    /// The node uses a feature sparsec does not support (the text names the feature).
    Unsupported(String),
    /// The node is malformed.
    Invalid(String),
}

impl OpError {
    /// Classifies a tensor decoding error of an attribute.
    fn from_import(e: ImportError) -> OpError {
        if e.is_unsupported() {
            OpError::Unsupported(e.to_string())
        } else {
            OpError::Invalid(e.to_string())
        }
    }
}

/// One operand of a lowered node.
#[derive(Debug)]
pub(crate) enum Operand {
    /// The ONNX input at this position (omitted when missing or empty).
    Input(usize),
    /// A new constant weight, named `<node>_<suffix>`.
    Const(&'static str, Tensor),
    /// An omitted optional operand.
    Absent,
    /// The ONNX input at this position with size-1 axes inserted (old opsets' broadcasting).
    Unsqueezed(usize, Vec<i64>),
}

/// What a node becomes.
#[derive(Debug)]
pub(crate) enum Lowered {
    /// An IR node.
    Node {
        /// The op with normalized attributes.
        op: Op,
        /// Its operands in IR order.
        operands: Vec<Operand>,
    },
    /// A compile-time constant (the `Constant` op), which becomes a weight.
    Constant(Tensor),
}

/// What a converter knows about the node it converts.
pub(crate) struct NodeCtx<'a> {
    /// The default-domain opset of the model.
    pub opset: i64,
    /// The node's attributes.
    pub attrs: Attrs<'a>,
    /// The type of each ONNX input, `None` for an omitted one.
    pub input_types: Vec<Option<TensorType>>,
    /// How many results the node has (trailing unnamed results dropped).
    pub n_outputs: usize,
    /// The folder external data is read from.
    pub base_dir: Option<&'a Path>,
}

impl NodeCtx<'_> {
    /// Number of ONNX inputs (including omitted ones in the middle).
    pub fn n_inputs(&self) -> usize {
        self.input_types.len()
    }

    /// True when ONNX input `k` is given.
    pub fn has_input(&self, k: usize) -> bool {
        matches!(self.input_types.get(k), Some(Some(_)))
    }

    /// The element type of ONNX input `k`, if given.
    pub fn input_dtype(&self, k: usize) -> Option<DType> {
        self.input_types.get(k)?.as_ref().map(|t| t.dtype)
    }

    /// The node taking every ONNX input in order.
    pub fn all(&self, op: Op) -> Result<Lowered, OpError> {
        Ok(Lowered::Node {
            op,
            operands: (0..self.n_inputs()).map(Operand::Input).collect(),
        })
    }

    /// Decodes a tensor attribute (`value` of `Constant`, `ConstantOfShape`).
    pub fn decode_attr_tensor(&self, p: &TensorProto, name: &str) -> Result<Tensor, OpError> {
        decode_tensor(p, name, self.base_dir).map_err(OpError::from_import)
    }

    /// Decodes a sparse tensor attribute (`sparse_value` of `Constant`).
    pub fn decode_attr_sparse(&self, p: &SparseTensorProto, name: &str) -> Result<Tensor, OpError> {
        decode_sparse(p, name, self.base_dir).map_err(OpError::from_import)
    }

    /// The node taking the given operands.
    pub fn with(&self, op: Op, operands: Vec<Operand>) -> Result<Lowered, OpError> {
        Ok(Lowered::Node { op, operands })
    }
}

/// A converter from one ONNX node to IR.
pub(crate) type Convert = fn(&NodeCtx) -> Result<Lowered, OpError>;

/// The map from ONNX op type to converter.
pub(crate) struct Registry {
    map: HashMap<&'static str, Convert>,
}

impl Registry {
    /// The registry of every supported ONNX op.
    pub fn new() -> Registry {
        let mut reg = Registry {
            map: HashMap::new(),
        };
        unary::register(&mut reg);
        binary::register(&mut reg);
        matmul::register(&mut reg);
        conv::register(&mut reg);
        pool::register(&mut reg);
        norm::register(&mut reg);
        reduce::register(&mut reg);
        shape::register(&mut reg);
        index::register(&mut reg);
        misc::register(&mut reg);
        reg
    }

    /// Adds a converter.
    pub fn add(&mut self, op_type: &'static str, f: Convert) {
        self.map.insert(op_type, f);
    }

    /// The converter of an op type.
    pub fn get(&self, op_type: &str) -> Option<Convert> {
        self.map.get(op_type).copied()
    }
}

/// A 1-D `i64` constant (axes, sizes, pads, starts, ...).
pub(crate) fn i64_vec(v: &[i64]) -> Tensor {
    Tensor::from_i64(&[v.len()], v.to_vec())
}

/// A rank-0 constant of type `dtype` holding `x` (for `min`/`max`/pad values).
pub(crate) fn scalar_of(dtype: DType, x: f64) -> Tensor {
    Tensor::from_f64s(dtype, &[], [x])
}

/// A 1-D `f32` constant.
pub(crate) fn f32_vec(v: &[f32]) -> Tensor {
    Tensor::from_f32(&[v.len()], v.to_vec())
}

/// Reads a 0/1 flag attribute that must not be set for inference (`training_mode`, ...).
pub(crate) fn reject_flag(ctx: &NodeCtx, name: &str) -> Result<(), OpError> {
    if ctx.attrs.i64(name, 0)? != 0 {
        return Err(OpError::Unsupported(format!("{name}=1")));
    }
    Ok(())
}

/// The single element of a one-element tensor as `f64` (the `value` of `ConstantOfShape`).
pub(crate) fn single_value(t: &Tensor) -> Option<f64> {
    (t.numel() == 1).then(|| t.data().get_f64(0))
}
