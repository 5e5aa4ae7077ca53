//! The inference context of one op: operand access, constant operand values, axis normalization
//! and error construction shared by every family module.

use super::{InputFact, ShapeError};
use crate::op::Op;
use crate::tensor::Tensor;
use crate::types::{DType, Dim, TensorType};

/// One op being inferred: the op, its operands and how many results are wanted.
pub(crate) struct Ctx<'o, 'i, 'a> {
    /// The op.
    pub op: &'o Op,
    /// Its operands; `None` is an omitted optional operand.
    pub inputs: &'i [Option<InputFact<'a>>],
    /// Number of results wanted.
    pub n_outputs: usize,
}

impl<'o, 'i, 'a> Ctx<'o, 'i, 'a> {
    /// A context for `op`.
    pub fn new(op: &'o Op, inputs: &'i [Option<InputFact<'a>>], n_outputs: usize) -> Self {
        Ctx {
            op,
            inputs,
            n_outputs,
        }
    }

    /// An error about this op: the message is prefixed with the op name.
    pub fn err(&self, msg: impl AsRef<str>) -> ShapeError {
        ShapeError(format!("{}: {}", self.op.name(), msg.as_ref()))
    }

    /// Checks the operand and result counts against the op table and that every required operand
    /// (the first `min_inputs`) is present.
    pub fn check_arity(&self) -> Result<(), ShapeError> {
        let a = self.op.arity();
        let n = self.inputs.len();
        if n < a.min_inputs || n > a.max_inputs {
            let want = if a.max_inputs == usize::MAX {
                format!("at least {}", a.min_inputs)
            } else if a.min_inputs == a.max_inputs {
                format!("{}", a.min_inputs)
            } else {
                format!("{} to {}", a.min_inputs, a.max_inputs)
            };
            let most = if a.max_inputs == usize::MAX {
                a.min_inputs
            } else {
                a.max_inputs
            };
            let s = if most == 1 { "" } else { "s" };
            return Err(self.err(format!("expects {want} operand{s}, got {n}")));
        }
        if let Some(k) = (0..a.min_inputs).find(|&k| self.inputs[k].is_none()) {
            return Err(self.err(format!("operand {k} is required but missing")));
        }
        if self.n_outputs == 0 {
            return Err(self.err("no result requested"));
        }
        if self.n_outputs > a.max_outputs {
            return Err(self.err(format!(
                "has at most {} result{}, {} requested",
                a.max_outputs,
                if a.max_outputs == 1 { "" } else { "s" },
                self.n_outputs
            )));
        }
        Ok(())
    }

    /// Operand `k` if present.
    pub fn opt(&self, k: usize) -> Option<InputFact<'a>> {
        self.inputs.get(k).copied().flatten()
    }

    /// Operand `k`, which must be present.
    pub fn input(&self, k: usize) -> Result<InputFact<'a>, ShapeError> {
        self.opt(k)
            .ok_or_else(|| self.err(format!("operand {k} is required but missing")))
    }

    /// The type of operand `k`, which must be present.
    pub fn ty(&self, k: usize) -> Result<&'a TensorType, ShapeError> {
        Ok(self.input(k)?.ty)
    }

    /// The constant value of operand `k`, when it is present and constant.
    pub fn value(&self, k: usize) -> Option<&'a Tensor> {
        self.opt(k).and_then(|f| f.value)
    }

    /// Checks that operand `k` has element type `dtype`; `why` says where `dtype` comes from.
    pub fn expect_dtype(&self, k: usize, dtype: DType, why: &str) -> Result<(), ShapeError> {
        let t = self.ty(k)?;
        if t.dtype != dtype {
            return Err(self.err(format!(
                "operand {k} has element type {}, expected {dtype}{why}",
                t.dtype
            )));
        }
        Ok(())
    }

    /// Checks that operand `k` has the element type of operand `base`.
    pub fn same_dtype(&self, k: usize, base: usize) -> Result<(), ShapeError> {
        let d = self.ty(base)?.dtype;
        self.expect_dtype(k, d, &format!(" (the type of operand {base})"))
    }

    /// Checks that operand `k` has an integer element type.
    pub fn expect_int(&self, k: usize) -> Result<(), ShapeError> {
        let t = self.ty(k)?;
        if !t.dtype.is_int() {
            return Err(self.err(format!(
                "operand {k} has element type {}, expected an integer type",
                t.dtype
            )));
        }
        Ok(())
    }

    /// Checks that operand `k` has a floating-point element type.
    pub fn expect_float(&self, k: usize) -> Result<(), ShapeError> {
        let t = self.ty(k)?;
        if !t.dtype.is_float() {
            return Err(self.err(format!(
                "operand {k} has element type {}, expected a float type",
                t.dtype
            )));
        }
        Ok(())
    }

    /// Checks that operand `k` has rank `rank`.
    pub fn expect_rank(&self, k: usize, rank: usize) -> Result<&'a TensorType, ShapeError> {
        let t = self.ty(k)?;
        if t.rank() != rank {
            return Err(self.err(format!("operand {k} has shape {t}, expected rank {rank}")));
        }
        Ok(t)
    }

    /// Checks that operand `k` has rank at least `rank`.
    pub fn expect_min_rank(&self, k: usize, rank: usize) -> Result<&'a TensorType, ShapeError> {
        let t = self.ty(k)?;
        if t.rank() < rank {
            return Err(self.err(format!(
                "operand {k} has shape {t}, expected rank {rank} or more"
            )));
        }
        Ok(t)
    }

    /// Checks that operand `k` holds at most one element (a scalar or a one-element tensor), as
    /// far as its type tells.
    pub fn expect_scalar(&self, k: usize) -> Result<&'a TensorType, ShapeError> {
        let t = self.ty(k)?;
        let ok = t.rank() == 0 || t.dims.iter().all(|d| d.known().is_none_or(|n| n == 1));
        if !ok {
            return Err(self.err(format!("operand {k} has shape {t}, expected a scalar")));
        }
        Ok(t)
    }

    /// Checks that operand `k` is a 1-D integer tensor (a list of sizes, axes or indices; a
    /// scalar counts as a list of one) and returns its length when known.
    pub fn expect_int_list(&self, k: usize) -> Result<Option<usize>, ShapeError> {
        self.expect_int(k)?;
        let t = self.ty(k)?;
        if t.rank() == 0 {
            return Ok(Some(1));
        }
        if t.rank() != 1 {
            return Err(self.err(format!("operand {k} has shape {t}, expected a 1-D list")));
        }
        Ok(match self.value(k) {
            Some(v) => Some(v.numel()),
            None => t.dims[0].known(),
        })
    }

    /// The values of the 1-D integer operand `k` when it is a constant; `None` when it is computed
    /// at run time. The operand must be present.
    pub fn const_ints(&self, k: usize) -> Result<Option<Vec<i64>>, ShapeError> {
        self.expect_int_list(k)?;
        Ok(self.value(k).map(Tensor::to_i64_vec))
    }

    /// Like [`Ctx::const_ints`] for an optional operand: `Ok(None)` when absent.
    pub fn opt_const_ints(&self, k: usize) -> Result<Option<Option<Vec<i64>>>, ShapeError> {
        match self.opt(k) {
            None => Ok(None),
            Some(_) => self.const_ints(k).map(Some),
        }
    }

    /// The single value of operand `k` (a scalar or one-element tensor) when it is a constant.
    pub fn const_scalar_f64(&self, k: usize) -> Result<Option<f64>, ShapeError> {
        self.expect_scalar(k)?;
        match self.value(k) {
            None => Ok(None),
            Some(v) if v.numel() == 1 => Ok(Some(v.data().get_f64(0))),
            Some(v) => Err(self.err(format!(
                "operand {k} holds {} elements, expected one",
                v.numel()
            ))),
        }
    }

    /// Normalizes axis `axis` (possibly negative) against `rank`: the result is in `0..rank`.
    pub fn axis(&self, axis: i64, rank: usize) -> Result<usize, ShapeError> {
        norm_axis(axis, rank)
            .ok_or_else(|| self.err(format!("axis {axis} is out of range for rank {rank}")))
    }

    /// Normalizes a list of distinct axes against `rank`.
    pub fn axes(&self, axes: &[i64], rank: usize) -> Result<Vec<usize>, ShapeError> {
        let mut out = Vec::with_capacity(axes.len());
        for &a in axes {
            let n = self.axis(a, rank)?;
            if out.contains(&n) {
                return Err(self.err(format!("axis {a} is repeated in {axes:?}")));
            }
            out.push(n);
        }
        Ok(out)
    }

    /// Validates a list attribute of per-axis values: empty means `default` for every axis,
    /// otherwise it must have `n` entries, each at least `min`.
    pub fn per_axis(
        &self,
        name: &str,
        values: &[i64],
        n: usize,
        default: i64,
        min: i64,
    ) -> Result<Vec<i64>, ShapeError> {
        if values.is_empty() {
            return Ok(vec![default; n]);
        }
        if values.len() != n {
            return Err(self.err(format!(
                "attribute {name} has {} values {values:?}, expected {n}",
                values.len()
            )));
        }
        if let Some(v) = values.iter().find(|&&v| v < min) {
            return Err(self.err(format!(
                "attribute {name} has value {v} in {values:?}, expected at least {min}"
            )));
        }
        Ok(values.to_vec())
    }

    /// An error saying operand `k` has the wrong shape: `operand k has shape T, expected E`.
    pub fn shape_err(&self, k: usize, expected: &[String]) -> ShapeError {
        let got = match self.opt(k) {
            Some(f) => f.ty.to_string(),
            None => "nothing".to_string(),
        };
        self.err(format!(
            "operand {k} has shape {got}, expected [{}]",
            expected.join(",")
        ))
    }

    /// A result type with element type `dtype` and dimensions `dims`.
    pub fn out(&self, dtype: DType, dims: Vec<Dim>) -> TensorType {
        TensorType { dtype, dims }
    }
}

/// Normalizes a possibly negative axis against `rank`; `None` when out of range.
pub(crate) fn norm_axis(axis: i64, rank: usize) -> Option<usize> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    (0..r).contains(&a).then_some(a as usize)
}
