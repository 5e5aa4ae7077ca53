//! Elementwise ops: the `Unary`, `Binary`, `Variadic` and `Misc` families. This file dispatches;
//! the kernels live in the submodules, with the numeric traits ([`num`]) and the broadcast walker
//! ([`bcast`]) that the reduction and normalization modules reuse.

pub(crate) mod bcast;
mod binary;
mod misc;
pub(crate) mod num;
mod unary;

use super::util::arg;
use super::InterpError;
use sparsec_ir::{Family, Op, Tensor};

/// Evaluates an op of the unary, binary, variadic or misc family.
pub(crate) fn eval(
    op: &Op,
    inputs: &[Option<&Tensor>],
    n_outputs: usize,
) -> Result<Vec<Tensor>, InterpError> {
    match op.family() {
        Family::Unary => Ok(vec![unary::eval(op, arg(op, inputs, 0)?)?]),
        Family::Binary => Ok(vec![binary::eval(
            op,
            arg(op, inputs, 0)?,
            arg(op, inputs, 1)?,
        )?]),
        Family::Variadic => {
            let ts: Vec<&Tensor> = (0..inputs.len())
                .map(|k| arg(op, inputs, k))
                .collect::<Result<_, _>>()?;
            Ok(vec![binary::eval_variadic(op, &ts)?])
        }
        Family::Misc => misc::eval(op, inputs, n_outputs),
        _ => Err(InterpError::unsupported(op, "not an elementwise op")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interp::eval_op;

    #[test]
    fn dispatch_reaches_each_family() {
        let x = Tensor::from_f32(&[2], vec![-1.0, 4.0]);
        let y = eval_op(&Op::Abs {}, &[Some(&x)], 1).unwrap();
        assert_eq!(y[0].as_f32().unwrap(), &[1.0, 4.0]);
        let y = eval_op(&Op::Mul {}, &[Some(&x), Some(&x)], 1).unwrap();
        assert_eq!(y[0].as_f32().unwrap(), &[1.0, 16.0]);
        let y = eval_op(&Op::Sum {}, &[Some(&x), Some(&x), Some(&x)], 1).unwrap();
        assert_eq!(y[0].as_f32().unwrap(), &[-3.0, 12.0]);
        let y = eval_op(
            &Op::Cast {
                to: sparsec_ir::DType::I64,
            },
            &[Some(&x)],
            1,
        )
        .unwrap();
        assert_eq!(y[0].as_i64().unwrap(), &[-1, 4]);
        assert!(eval_op(&Op::Add {}, &[Some(&x), None], 1).is_err());
        assert!(eval_op(&Op::Sum {}, &[], 1).is_err());
    }
}
