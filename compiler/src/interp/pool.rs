//! Placeholder: this family's ops are being written.

use super::InterpError;
use sparsec_ir::{Op, Tensor};

/// Evaluates an op of this family.
pub(crate) fn eval(
    op: &Op,
    _inputs: &[Option<&Tensor>],
    _n_outputs: usize,
) -> Result<Vec<Tensor>, InterpError> {
    Err(InterpError::unsupported(op, "not implemented yet"))
}
