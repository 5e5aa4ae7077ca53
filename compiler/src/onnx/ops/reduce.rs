//! Converters of the reductions (`Reduce*`, `ArgMax`, `ArgMin`, `TopK`, `CumSum`).
//!
//! `Reduce*` took their axes as an attribute before opset 18 (13 for `ReduceSum`); the attribute
//! becomes a constant axes operand. `TopK` took `k` as an attribute before opset 10.

use sparsec_ir::Op;

use super::{i64_vec, NodeCtx, OpError, Operand, Registry};

/// Registers the reduce family.
pub(crate) fn register(reg: &mut Registry) {
    reg.add("ReduceMean", |c| {
        let (keepdims, noop_with_empty_axes) = keep(c)?;
        reduce(
            c,
            Op::ReduceMean {
                keepdims,
                noop_with_empty_axes,
            },
        )
    });
    reg.add("ReduceSum", |c| {
        let (keepdims, noop_with_empty_axes) = keep(c)?;
        reduce(
            c,
            Op::ReduceSum {
                keepdims,
                noop_with_empty_axes,
            },
        )
    });
    reg.add("ReduceMax", |c| {
        let (keepdims, noop_with_empty_axes) = keep(c)?;
        reduce(
            c,
            Op::ReduceMax {
                keepdims,
                noop_with_empty_axes,
            },
        )
    });
    reg.add("ReduceMin", |c| {
        let (keepdims, noop_with_empty_axes) = keep(c)?;
        reduce(
            c,
            Op::ReduceMin {
                keepdims,
                noop_with_empty_axes,
            },
        )
    });
    reg.add("ReduceProd", |c| {
        let (keepdims, noop_with_empty_axes) = keep(c)?;
        reduce(
            c,
            Op::ReduceProd {
                keepdims,
                noop_with_empty_axes,
            },
        )
    });
    reg.add("ReduceL1", |c| {
        let (keepdims, noop_with_empty_axes) = keep(c)?;
        reduce(
            c,
            Op::ReduceL1 {
                keepdims,
                noop_with_empty_axes,
            },
        )
    });
    reg.add("ReduceL2", |c| {
        let (keepdims, noop_with_empty_axes) = keep(c)?;
        reduce(
            c,
            Op::ReduceL2 {
                keepdims,
                noop_with_empty_axes,
            },
        )
    });
    reg.add("ReduceSumSquare", |c| {
        let (keepdims, noop_with_empty_axes) = keep(c)?;
        reduce(
            c,
            Op::ReduceSumSquare {
                keepdims,
                noop_with_empty_axes,
            },
        )
    });
    reg.add("ReduceLogSumExp", |c| {
        let (keepdims, noop_with_empty_axes) = keep(c)?;
        reduce(
            c,
            Op::ReduceLogSumExp {
                keepdims,
                noop_with_empty_axes,
            },
        )
    });
    reg.add("ReduceLogSum", |c| {
        let (keepdims, noop_with_empty_axes) = keep(c)?;
        reduce(
            c,
            Op::ReduceLogSum {
                keepdims,
                noop_with_empty_axes,
            },
        )
    });
    reg.add("ArgMax", |c| {
        c.all(Op::ArgMax {
            axis: c.attrs.i64("axis", 0)?,
            keepdims: c.attrs.i64("keepdims", 1)?,
            select_last_index: c.attrs.i64("select_last_index", 0)?,
        })
    });
    reg.add("ArgMin", |c| {
        c.all(Op::ArgMin {
            axis: c.attrs.i64("axis", 0)?,
            keepdims: c.attrs.i64("keepdims", 1)?,
            select_last_index: c.attrs.i64("select_last_index", 0)?,
        })
    });
    reg.add("TopK", |c| {
        let op = Op::TopK {
            axis: c.attrs.i64("axis", -1)?,
            largest: c.attrs.i64("largest", 1)?,
            sorted: c.attrs.i64("sorted", 1)?,
        };
        match c.attrs.opt_i64("k")? {
            Some(k) if !c.has_input(1) => c.with(
                op,
                vec![Operand::Input(0), Operand::Const("k", i64_vec(&[k]))],
            ),
            _ => c.all(op),
        }
    });
    reg.add("CumSum", |c| {
        c.all(Op::CumSum {
            exclusive: c.attrs.i64("exclusive", 0)?,
            reverse: c.attrs.i64("reverse", 0)?,
        })
    });
}

/// The `keepdims` and `noop_with_empty_axes` attributes.
fn keep(c: &NodeCtx) -> Result<(i64, i64), OpError> {
    Ok((
        c.attrs.i64("keepdims", 1)?,
        c.attrs.i64("noop_with_empty_axes", 0)?,
    ))
}

/// A reduction: the `axes` attribute of old opsets (when given and not empty) becomes the axes
/// operand; without it every axis is reduced.
fn reduce(c: &NodeCtx, op: Op) -> Result<super::Lowered, OpError> {
    if c.has_input(1) {
        return c.all(op);
    }
    match c.attrs.ints("axes")? {
        Some(axes) if !axes.is_empty() => c.with(
            op,
            vec![Operand::Input(0), Operand::Const("axes", i64_vec(&axes))],
        ),
        _ => c.with(op, vec![Operand::Input(0)]),
    }
}
