//! Converters of the remaining ops (`Cast`, `CastLike`, `Clip`, `Where`, `Dropout`) and of
//! `Constant`, which becomes a weight rather than a node.
//!
//! `Clip` took `min`/`max` as float attributes before opset 11; they become scalar operands of
//! the input's element type. `Dropout` is inference only: its `ratio`/`seed` attributes are
//! ignored and the importer aliases it away when only its first result is used.

use sparsec_ir::{DType, Op, Tensor};

use super::{f32_vec, i64_vec, scalar_of, Lowered, NodeCtx, OpError, Operand, Registry};
use crate::onnx::tensor_proto::{dtype_from_onnx, onnx_dtype_name};

/// Registers the misc family and `Constant`.
pub(crate) fn register(reg: &mut Registry) {
    reg.add("Cast", |c| {
        let code = c
            .attrs
            .opt_i64("to")?
            .ok_or_else(|| OpError::Invalid("attribute `to` is required".into()))?;
        let to = i32::try_from(code)
            .ok()
            .and_then(dtype_from_onnx)
            .ok_or_else(|| OpError::Unsupported(format!("to={}", onnx_dtype_name(code as i32))))?;
        c.all(Op::Cast { to })
    });
    reg.add("CastLike", |c| c.all(Op::CastLike {}));
    reg.add("Clip", clip);
    reg.add("Where", |c| c.all(Op::Where {}));
    reg.add("Dropout", |c| c.all(Op::Dropout {}));
    reg.add("Constant", constant);
}

/// `Clip`: before opset 11, `min` and `max` are float attributes.
fn clip(c: &NodeCtx) -> Result<Lowered, OpError> {
    if c.opset >= 11 {
        return c.all(Op::Clip {});
    }
    let dtype = c.input_dtype(0).unwrap_or(DType::F32);
    let bound = |name: &'static str| -> Result<Operand, OpError> {
        Ok(match c.attrs.opt_f32(name)? {
            Some(x) => Operand::Const(name, scalar_of(dtype, x as f64)),
            None => Operand::Absent,
        })
    };
    c.with(
        Op::Clip {},
        vec![Operand::Input(0), bound("min")?, bound("max")?],
    )
}

/// `Constant`: exactly one of its value attributes gives the tensor.
fn constant(c: &NodeCtx) -> Result<Lowered, OpError> {
    let a = c.attrs;
    let t: Tensor = if let Some(p) = a.tensor("value")? {
        c.decode_attr_tensor(p, "value")?
    } else if let Some(p) = a.sparse_tensor("sparse_value")? {
        c.decode_attr_sparse(p, "sparse_value")?
    } else if let Some(x) = a.opt_f32("value_float")? {
        Tensor::scalar_f32(x)
    } else if let Some(v) = a.floats("value_floats")? {
        f32_vec(&v)
    } else if let Some(x) = a.opt_i64("value_int")? {
        Tensor::scalar_i64(x)
    } else if let Some(v) = a.ints("value_ints")? {
        i64_vec(&v)
    } else if a.has("value_string") || a.has("value_strings") {
        return Err(OpError::Unsupported("string value".into()));
    } else {
        return Err(OpError::Invalid("no value attribute".into()));
    };
    Ok(Lowered::Constant(t))
}
