//! Converters of the elementwise ops of two or more broadcast tensors (`Add`, `Equal`, `Sum`, ...).
//!
//! Opsets 7 and later broadcast implicitly, so the old `broadcast`/`axis` attributes never occur
//! in supported models.

use sparsec_ir::Op;

use super::Registry;

/// Registers the binary and variadic families.
pub(crate) fn register(reg: &mut Registry) {
    reg.add("Add", |c| c.all(Op::Add {}));
    reg.add("Sub", |c| c.all(Op::Sub {}));
    reg.add("Mul", |c| c.all(Op::Mul {}));
    reg.add("Div", |c| c.all(Op::Div {}));
    reg.add("Pow", |c| c.all(Op::Pow {}));
    reg.add("Mod", |c| {
        c.all(Op::Mod {
            fmod: c.attrs.i64("fmod", 0)?,
        })
    });
    reg.add("Equal", |c| c.all(Op::Equal {}));
    reg.add("Greater", |c| c.all(Op::Greater {}));
    reg.add("Less", |c| c.all(Op::Less {}));
    reg.add("GreaterOrEqual", |c| c.all(Op::GreaterOrEqual {}));
    reg.add("LessOrEqual", |c| c.all(Op::LessOrEqual {}));
    reg.add("And", |c| c.all(Op::And {}));
    reg.add("Or", |c| c.all(Op::Or {}));
    reg.add("Xor", |c| c.all(Op::Xor {}));
    reg.add("PRelu", |c| c.all(Op::PRelu {}));

    reg.add("Sum", |c| c.all(Op::Sum {}));
    reg.add("Max", |c| c.all(Op::Max {}));
    reg.add("Min", |c| c.all(Op::Min {}));
    reg.add("Mean", |c| c.all(Op::Mean {}));
}
