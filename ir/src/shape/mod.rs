//! Shape inference: the result types of an op from its operand types and constant operand values.
//!
//! One module per op family. A dimension that cannot be known at compile time (for example the
//! result of a `Reshape` whose shape operand is computed at run time) is `Dim::Sym("?")`.

use crate::op::Op;
use crate::tensor::Tensor;
use crate::types::TensorType;
use thiserror::Error;

/// What shape inference knows of one operand.
#[derive(Clone, Copy, Debug)]
pub struct InputFact<'a> {
    /// Its type.
    pub ty: &'a TensorType,
    /// Its value, when it is a compile-time constant.
    pub value: Option<&'a Tensor>,
}

/// Why an op's result types could not be inferred.
#[derive(Debug, Error, PartialEq)]
#[error("{0}")]
pub struct ShapeError(pub String);

/// Infers the types of the first `n_outputs` results of `op`.
pub fn infer(
    op: &Op,
    inputs: &[Option<InputFact>],
    n_outputs: usize,
) -> Result<Vec<TensorType>, ShapeError> {
    // Placeholder until the per-family rules land: every result takes the first operand's type.
    let first = inputs
        .iter()
        .flatten()
        .next()
        .ok_or_else(|| ShapeError(format!("{}: no operand", op.name())))?;
    Ok(vec![first.ty.clone(); n_outputs])
}
