//! Shape inference: the result types of an op from its operand types and constant operand values.
//!
//! [`infer`] checks the operand and result counts against the op table, then dispatches to one
//! module per op family. A dimension that cannot be known at compile time (for example the result
//! of a `Reshape` whose shape operand is computed at run time) is `Dim::Sym("?")`; named symbolic
//! dimensions (such as a `batch` graph input dimension) flow through every op that keeps them.

mod conv;
mod ctx;
mod dims;
mod elementwise;
mod index;
mod layout;
mod matmul;
mod norm;
mod pool;
mod reduce;
mod shape_ops;
mod window;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_shape;

pub use window::{resolve_window, AxisWindow};

use crate::op::{Family, Op};
use crate::tensor::Tensor;
use crate::types::TensorType;
use ctx::Ctx;
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
///
/// `inputs[k]` is `None` for an omitted optional operand. The error message starts with the op
/// name and says which operand is wrong and why.
pub fn infer(
    op: &Op,
    inputs: &[Option<InputFact>],
    n_outputs: usize,
) -> Result<Vec<TensorType>, ShapeError> {
    let cx = Ctx::new(op, inputs, n_outputs);
    cx.check_arity()?;
    let out = match op.family() {
        Family::Unary | Family::Binary | Family::Variadic | Family::Misc => elementwise::infer(&cx),
        Family::MatMul => matmul::infer(&cx),
        Family::Conv => conv::infer(&cx),
        Family::Pool => pool::infer(&cx),
        Family::Norm => norm::infer(&cx),
        Family::Reduce => reduce::infer(&cx),
        Family::Shape => match op {
            Op::Reshape { .. }
            | Op::Flatten { .. }
            | Op::Transpose { .. }
            | Op::Squeeze { .. }
            | Op::Unsqueeze { .. }
            | Op::Concat { .. }
            | Op::Split { .. }
            | Op::Slice { .. }
            | Op::Expand { .. }
            | Op::Tile { .. } => shape_ops::infer(&cx),
            _ => layout::infer(&cx),
        },
        Family::Index => index::infer(&cx),
    }?;
    if out.len() != n_outputs {
        return Err(cx.err(format!(
            "inferred {} results, {} expected",
            out.len(),
            n_outputs
        )));
    }
    Ok(out)
}
