//! sparsec: 256-bit (`ymm`) forms of the few AVX instructions that the `f32x8` lowering in
//! sparsec's patched `cranelift-codegen` needs. Upstream defines only the 128-bit forms.
//!
//! The operands keep the `xmm` kinds: a `ymm` register has the same number as its `xmm` half,
//! and the `VEX.L` bit (`L256`) selects the width. Printed listings therefore name the `xmm`
//! half of each register.

use crate::dsl::{Feature::*, Inst, Length::*, Location::*};
use crate::dsl::{fmt, inst, r, rw, vex, w};

#[rustfmt::skip] // Keeps instructions on a single line.
pub fn list() -> Vec<Inst> {
    vec![
        // Moves: register to register, load, store (unaligned).
        inst("vmovaps", fmt("Y", [w(xmm1), r(xmm_m128)]), vex(L256)._0f().op(0x28).r(), (_64b | compat) & avx),
        inst("vmovups", fmt("Y", [w(xmm1), r(xmm_m128)]), vex(L256)._0f().op(0x10).r(), (_64b | compat) & avx),
        inst("vmovups", fmt("YS", [w(xmm_m128), r(xmm1)]), vex(L256)._0f().op(0x11).r(), (_64b | compat) & avx),
        // Broadcast of a scalar from memory or from a register's lane 0 (the register form
        // needs AVX2, which sparsec's `f32x8` kernels require anyway).
        inst("vbroadcastss", fmt("Y", [w(xmm1), r(xmm_m32)]), vex(L256)._66()._0f38().w0().op(0x18).r(), (_64b | compat) & avx2),
        // Arithmetic.
        inst("vaddps", fmt("Y", [w(xmm1), r(xmm2), r(xmm_m128)]), vex(L256)._0f().op(0x58).r(), (_64b | compat) & avx),
        inst("vfmadd213ps", fmt("Y", [rw(xmm1), r(xmm2), r(xmm_m128)]), vex(L256)._66()._0f38().w0().op(0xA8).r(), (_64b | compat) & fma),
        inst("vfmadd231ps", fmt("Y", [rw(xmm1), r(xmm2), r(xmm_m128)]), vex(L256)._66()._0f38().w0().op(0xB8).r(), (_64b | compat) & fma),
    ]
}
