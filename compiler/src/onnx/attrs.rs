//! Typed access to the attributes of an ONNX node.
//!
//! Every getter checks the attribute's declared type (old writers that leave the type
//! `UNDEFINED` are accepted when the matching field is set) and reports a mismatch as an
//! [`OpError::Invalid`] naming the attribute. Missing attributes take the caller's default.

use onnx_protobuf::attribute_proto::AttributeType;
use onnx_protobuf::{AttributeProto, NodeProto, SparseTensorProto, TensorProto};

use super::ops::OpError;

/// The attributes of one node.
#[derive(Clone, Copy)]
pub(crate) struct Attrs<'a> {
    node: &'a NodeProto,
}

impl<'a> Attrs<'a> {
    /// The attributes of `node`.
    pub(crate) fn new(node: &'a NodeProto) -> Attrs<'a> {
        Attrs { node }
    }

    /// The attribute named `name`, if present (the last one wins if repeated).
    pub(crate) fn get(&self, name: &str) -> Option<&'a AttributeProto> {
        self.node.attribute.iter().rev().find(|a| a.name == name)
    }

    /// True when the attribute is present.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The attribute if present and of type `ty` (or untyped); an error if of another type.
    fn typed(&self, name: &str, ty: AttributeType) -> Result<Option<&'a AttributeProto>, OpError> {
        let Some(a) = self.get(name) else {
            return Ok(None);
        };
        let code = a.type_.value();
        if code == ty as i32 || code == AttributeType::UNDEFINED as i32 {
            Ok(Some(a))
        } else {
            Err(OpError::Invalid(format!(
                "attribute `{name}` should be {}, found {}",
                type_name(ty as i32),
                type_name(code)
            )))
        }
    }

    /// An integer attribute, if present.
    pub(crate) fn opt_i64(&self, name: &str) -> Result<Option<i64>, OpError> {
        Ok(self.typed(name, AttributeType::INT)?.map(|a| a.i))
    }

    /// An integer attribute or `default`.
    pub(crate) fn i64(&self, name: &str, default: i64) -> Result<i64, OpError> {
        Ok(self.opt_i64(name)?.unwrap_or(default))
    }

    /// A float attribute, if present.
    pub(crate) fn opt_f32(&self, name: &str) -> Result<Option<f32>, OpError> {
        Ok(self.typed(name, AttributeType::FLOAT)?.map(|a| a.f))
    }

    /// A float attribute or `default`.
    pub(crate) fn f32(&self, name: &str, default: f32) -> Result<f32, OpError> {
        Ok(self.opt_f32(name)?.unwrap_or(default))
    }

    /// A string attribute (UTF-8), if present.
    pub(crate) fn opt_string(&self, name: &str) -> Result<Option<String>, OpError> {
        match self.typed(name, AttributeType::STRING)? {
            None => Ok(None),
            Some(a) => String::from_utf8(a.s.clone())
                .map(Some)
                .map_err(|_| OpError::Invalid(format!("attribute `{name}` is not UTF-8"))),
        }
    }

    /// A string attribute or `default`.
    pub(crate) fn string(&self, name: &str, default: &str) -> Result<String, OpError> {
        Ok(self
            .opt_string(name)?
            .unwrap_or_else(|| default.to_string()))
    }

    /// An integer list attribute, if present.
    pub(crate) fn ints(&self, name: &str) -> Result<Option<Vec<i64>>, OpError> {
        Ok(self
            .typed(name, AttributeType::INTS)?
            .map(|a| a.ints.clone()))
    }

    /// An integer list attribute, or the empty list ("ONNX default" in the IR).
    pub(crate) fn ints_or_empty(&self, name: &str) -> Result<Vec<i64>, OpError> {
        Ok(self.ints(name)?.unwrap_or_default())
    }

    /// A float list attribute, if present.
    pub(crate) fn floats(&self, name: &str) -> Result<Option<Vec<f32>>, OpError> {
        Ok(self
            .typed(name, AttributeType::FLOATS)?
            .map(|a| a.floats.clone()))
    }

    /// A tensor attribute, if present.
    pub(crate) fn tensor(&self, name: &str) -> Result<Option<&'a TensorProto>, OpError> {
        match self.typed(name, AttributeType::TENSOR)? {
            None => Ok(None),
            Some(a) => {
                a.t.as_ref()
                    .map(Some)
                    .ok_or_else(|| OpError::Invalid(format!("attribute `{name}` holds no tensor")))
            }
        }
    }

    /// A sparse tensor attribute, if present.
    pub(crate) fn sparse_tensor(
        &self,
        name: &str,
    ) -> Result<Option<&'a SparseTensorProto>, OpError> {
        match self.typed(name, AttributeType::SPARSE_TENSOR)? {
            None => Ok(None),
            Some(a) => a.sparse_tensor.as_ref().map(Some).ok_or_else(|| {
                OpError::Invalid(format!("attribute `{name}` holds no sparse tensor"))
            }),
        }
    }
}

/// The ONNX name of an attribute type code.
fn type_name(code: i32) -> &'static str {
    match code {
        0 => "undefined",
        1 => "a float",
        2 => "an int",
        3 => "a string",
        4 => "a tensor",
        5 => "a graph",
        6 => "floats",
        7 => "ints",
        8 => "strings",
        9 => "tensors",
        10 => "graphs",
        11 => "a sparse tensor",
        12 => "sparse tensors",
        13 => "a type",
        14 => "types",
        _ => "an unknown type",
    }
}
