//! Converters of the elementwise ops of two or more broadcast tensors (`Add`, `Equal`, `Sum`, ...).
//!
//! Opsets 7 and later broadcast numpy-style. Opset 6 broadcast only with `broadcast=1`, aligning
//! `B` with `A`'s axes from `axis` on; that form becomes an `Unsqueeze` of `B` that appends the
//! trailing size-1 axes numpy broadcasting needs. Opset-6 `PRelu` applies a 1-D slope per channel
//! (axis 1); its slope is unsqueezed the same way.

use sparsec_ir::Op;

use super::{Lowered, NodeCtx, OpError, Operand, Registry};

/// The node with legacy broadcasting made explicit (see the module doc).
fn legacy(c: &NodeCtx, op: Op) -> Result<Lowered, OpError> {
    if c.opset >= 7 || c.n_inputs() != 2 {
        return c.all(op);
    }
    let (Some(Some(a)), Some(Some(b))) = (c.input_types.first(), c.input_types.get(1)) else {
        return c.all(op);
    };
    let (ra, rb) = (a.rank() as i64, b.rank() as i64);
    let axis = if matches!(op, Op::PRelu {}) {
        if rb != 1 || ra < 3 {
            return c.all(op);
        }
        1
    } else {
        if c.attrs.i64("broadcast", 0)? == 0 {
            return c.all(op);
        }
        let axis = c.attrs.i64("axis", ra - rb)?;
        if axis < 0 {
            axis + ra
        } else {
            axis
        }
    };
    let trailing = ra - axis - rb;
    if trailing < 0 || axis < 0 {
        return Err(OpError::Invalid(format!(
            "legacy broadcast of rank {rb} at axis {axis} into rank {ra}"
        )));
    }
    if trailing == 0 {
        return c.all(op);
    }
    let axes: Vec<i64> = (rb..rb + trailing).collect();
    c.with(op, vec![Operand::Input(0), Operand::Unsqueezed(1, axes)])
}

/// Registers the binary and variadic families.
pub(crate) fn register(reg: &mut Registry) {
    reg.add("Add", |c| legacy(c, Op::Add {}));
    reg.add("Sub", |c| legacy(c, Op::Sub {}));
    reg.add("Mul", |c| legacy(c, Op::Mul {}));
    reg.add("Div", |c| legacy(c, Op::Div {}));
    reg.add("Pow", |c| legacy(c, Op::Pow {}));
    reg.add("Mod", |c| {
        c.all(Op::Mod {
            fmod: c.attrs.i64("fmod", 0)?,
        })
    });
    reg.add("Equal", |c| legacy(c, Op::Equal {}));
    reg.add("Greater", |c| legacy(c, Op::Greater {}));
    reg.add("Less", |c| legacy(c, Op::Less {}));
    reg.add("GreaterOrEqual", |c| c.all(Op::GreaterOrEqual {}));
    reg.add("LessOrEqual", |c| c.all(Op::LessOrEqual {}));
    reg.add("And", |c| legacy(c, Op::And {}));
    reg.add("Or", |c| legacy(c, Op::Or {}));
    reg.add("Xor", |c| legacy(c, Op::Xor {}));
    reg.add("PRelu", |c| legacy(c, Op::PRelu {}));

    reg.add("Sum", |c| c.all(Op::Sum {}));
    reg.add("Max", |c| c.all(Op::Max {}));
    reg.add("Min", |c| c.all(Op::Min {}));
    reg.add("Mean", |c| c.all(Op::Mean {}));
}
