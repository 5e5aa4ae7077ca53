//! Converters of the elementwise ops of one tensor (`Relu`, `Exp`, `LeakyRelu`, `Gelu`, ...).

use sparsec_ir::Op;

use super::Registry;

/// Registers the unary family.
pub(crate) fn register(reg: &mut Registry) {
    reg.add("Neg", |c| c.all(Op::Neg {}));
    reg.add("Abs", |c| c.all(Op::Abs {}));
    reg.add("Sqrt", |c| c.all(Op::Sqrt {}));
    reg.add("Reciprocal", |c| c.all(Op::Reciprocal {}));
    reg.add("Exp", |c| c.all(Op::Exp {}));
    reg.add("Log", |c| c.all(Op::Log {}));
    reg.add("Erf", |c| c.all(Op::Erf {}));
    reg.add("Tanh", |c| c.all(Op::Tanh {}));
    reg.add("Sigmoid", |c| c.all(Op::Sigmoid {}));
    reg.add("Relu", |c| c.all(Op::Relu {}));
    reg.add("Sin", |c| c.all(Op::Sin {}));
    reg.add("Cos", |c| c.all(Op::Cos {}));
    reg.add("Tan", |c| c.all(Op::Tan {}));
    reg.add("Asin", |c| c.all(Op::Asin {}));
    reg.add("Acos", |c| c.all(Op::Acos {}));
    reg.add("Atan", |c| c.all(Op::Atan {}));
    reg.add("Sinh", |c| c.all(Op::Sinh {}));
    reg.add("Cosh", |c| c.all(Op::Cosh {}));
    reg.add("Asinh", |c| c.all(Op::Asinh {}));
    reg.add("Acosh", |c| c.all(Op::Acosh {}));
    reg.add("Atanh", |c| c.all(Op::Atanh {}));
    reg.add("Floor", |c| c.all(Op::Floor {}));
    reg.add("Ceil", |c| c.all(Op::Ceil {}));
    reg.add("Round", |c| c.all(Op::Round {}));
    reg.add("Sign", |c| c.all(Op::Sign {}));
    reg.add("Softsign", |c| c.all(Op::Softsign {}));
    reg.add("Softplus", |c| c.all(Op::Softplus {}));
    reg.add("HardSwish", |c| c.all(Op::HardSwish {}));
    reg.add("Mish", |c| c.all(Op::Mish {}));
    reg.add("Not", |c| c.all(Op::Not {}));
    reg.add("IsNaN", |c| c.all(Op::IsNaN {}));
    reg.add("Identity", |c| c.all(Op::Identity {}));
    reg.add("IsInf", |c| {
        c.all(Op::IsInf {
            detect_negative: c.attrs.i64("detect_negative", 1)?,
            detect_positive: c.attrs.i64("detect_positive", 1)?,
        })
    });
    reg.add("LeakyRelu", |c| {
        c.all(Op::LeakyRelu {
            alpha: c.attrs.f32("alpha", 0.01)?,
        })
    });
    reg.add("Elu", |c| {
        c.all(Op::Elu {
            alpha: c.attrs.f32("alpha", 1.0)?,
        })
    });
    reg.add("Selu", |c| {
        c.all(Op::Selu {
            alpha: c.attrs.f32("alpha", 1.673_263_2)?,
            gamma: c.attrs.f32("gamma", 1.050_701)?,
        })
    });
    reg.add("Celu", |c| {
        c.all(Op::Celu {
            alpha: c.attrs.f32("alpha", 1.0)?,
        })
    });
    reg.add("HardSigmoid", |c| {
        c.all(Op::HardSigmoid {
            alpha: c.attrs.f32("alpha", 0.2)?,
            beta: c.attrs.f32("beta", 0.5)?,
        })
    });
    reg.add("ThresholdedRelu", |c| {
        c.all(Op::ThresholdedRelu {
            alpha: c.attrs.f32("alpha", 1.0)?,
        })
    });
    reg.add("Gelu", |c| {
        c.all(Op::Gelu {
            approximate: c.attrs.string("approximate", "none")?,
        })
    });
    reg.add("Shrink", |c| {
        c.all(Op::Shrink {
            bias: c.attrs.f32("bias", 0.0)?,
            lambd: c.attrs.f32("lambd", 0.5)?,
        })
    });
}
