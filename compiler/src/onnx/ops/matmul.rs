//! Converters of the matrix products (`Gemm`, `MatMul`, `Einsum`).

use sparsec_ir::Op;

use super::Registry;

/// Registers the matmul family.
pub(crate) fn register(reg: &mut Registry) {
    // Gemm's `broadcast` attribute predates opset 7 and is ignored; `C` is optional from 11.
    reg.add("Gemm", |c| {
        c.all(Op::Gemm {
            alpha: c.attrs.f32("alpha", 1.0)?,
            beta: c.attrs.f32("beta", 1.0)?,
            trans_a: c.attrs.i64("transA", 0)?,
            trans_b: c.attrs.i64("transB", 0)?,
        })
    });
    reg.add("MatMul", |c| c.all(Op::MatMul {}));
    reg.add("Einsum", |c| {
        c.all(Op::Einsum {
            equation: c.attrs.string("equation", "")?,
        })
    });
}
