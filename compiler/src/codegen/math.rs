//! Float math emitted as Cranelift IR, for scalars (`f32`) and vectors (`f32x4`) alike:
//! constants, selects, polynomials, and the transcendental approximations of the elementwise
//! kernels (`exp`, `log`, `log1p`, `erf`, `tanh`, `sigmoid`).
//!
//! The approximations follow Cephes' single-precision routines (range reduction plus minimax
//! polynomials; `erf` is the rational form of Eigen and XLA) and are branch-free: where two formulas cover two ranges, both are computed and
//! the result is selected per lane. Relative error is about 1e-7 on the normal range; inputs are
//! clamped so that no intermediate overflows to NaN (`exp` saturates to `+inf` above 88.72 and
//! underflows to about 1e-38 below -87.3; subnormal inputs of `log` are treated as zero).

#![allow(clippy::excessive_precision)] // The coefficient tables keep their published digits.

use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::{types, InstBuilder, MemFlagsData, Type, Value};
use cranelift_frontend::FunctionBuilder;

/// An emitter of float math over one value type (`F32` or `F32X4`).
pub(crate) struct Vm<'a, 'b> {
    /// The function being built.
    pub b: &'a mut FunctionBuilder<'b>,
    /// `F32` or `F32X4`.
    pub ty: Type,
}

/// Cephes `expf` polynomial, highest degree first.
const EXP_P: [f32; 6] = [
    1.987_569_1e-4,
    1.398_199_9e-3,
    8.333_452e-3,
    4.166_579_6e-2,
    1.666_666_5e-1,
    5.000_000_1e-1,
];
/// Cephes `logf` polynomial, highest degree first.
const LOG_P: [f32; 9] = [
    7.037_683_6e-2,
    -1.151_461e-1,
    1.167_699_9e-1,
    -1.242_014_1e-1,
    1.424_932_3e-1,
    -1.666_805_8e-1,
    2.000_071_4e-1,
    -2.499_999_4e-1,
    3.333_333_1e-1,
];
/// Numerator of the rational `erf` on `[-4, 4]` (Eigen's and XLA's `x P(x^2) / Q(x^2)`): `P`,
/// highest degree first.
const ERF_P: [f32; 7] = [
    -2.726_142_258_013_06e-10,
    2.770_681_424_959_02e-8,
    -2.101_024_020_825_08e-6,
    -5.692_506_394_623_46e-5,
    -7.349_906_303_268_55e-4,
    -2.954_599_808_540_25e-3,
    -1.609_603_332_624_15e-2,
];
/// Denominator `Q` of the rational `erf`, highest degree first.
const ERF_Q: [f32; 5] = [
    -1.456_607_184_649_96e-5,
    -2.133_740_552_789_05e-4,
    -1.682_826_974_382_03e-3,
    -7.373_329_167_204_68e-3,
    -1.426_473_905_141_89e-2,
];
/// Cephes `tanhf` polynomial in `x^2` for `|x| < 0.625`, highest degree first.
const TANH_P: [f32; 5] = [
    -5.704_988_7e-3,
    2.063_908_9e-2,
    -5.373_971_6e-2,
    1.333_144_2e-1,
    -3.333_328_2e-1,
];

impl Vm<'_, '_> {
    /// True when emitting vectors.
    fn vector(&self) -> bool {
        self.ty.is_vector()
    }

    /// The integer type of the same shape (`I32` or `I32X4`).
    fn int_ty(&self) -> Type {
        if self.vector() {
            types::I32X4
        } else {
            types::I32
        }
    }

    /// A float constant (splatted for vectors).
    pub fn c(&mut self, x: f32) -> Value {
        let s = self.b.ins().f32const(x);
        self.splat(s)
    }

    /// Broadcasts a scalar `f32` to the value type (no-op for scalars).
    pub fn splat(&mut self, s: Value) -> Value {
        if self.vector() {
            self.b.ins().splat(self.ty, s)
        } else {
            s
        }
    }

    /// An integer constant of the integer type of the same shape.
    fn ci(&mut self, x: i32) -> Value {
        let s = self.b.ins().iconst(types::I32, x as i64);
        if self.vector() {
            self.b.ins().splat(types::I32X4, s)
        } else {
            s
        }
    }

    /// `a + b`.
    pub fn add(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().fadd(a, b)
    }

    /// `a - b`.
    pub fn sub(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().fsub(a, b)
    }

    /// `a * b`.
    pub fn mul(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().fmul(a, b)
    }

    /// `a / b`.
    pub fn div(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().fdiv(a, b)
    }

    /// `a * b + c` with one rounding.
    pub fn fma(&mut self, a: Value, b: Value, c: Value) -> Value {
        self.b.ins().fma(a, b, c)
    }

    /// `a * k + c` with one rounding, `k` a constant.
    fn fmac(&mut self, a: Value, k: f32, c: Value) -> Value {
        let k = self.c(k);
        self.fma(a, k, c)
    }

    /// `a * k`, `k` a constant.
    pub fn mulc(&mut self, a: Value, k: f32) -> Value {
        let k = self.c(k);
        self.mul(a, k)
    }

    /// `a + k`, `k` a constant.
    pub fn addc(&mut self, a: Value, k: f32) -> Value {
        let k = self.c(k);
        self.add(a, k)
    }

    /// `-a`.
    pub fn neg(&mut self, a: Value) -> Value {
        self.b.ins().fneg(a)
    }

    /// `|a|`.
    pub fn abs(&mut self, a: Value) -> Value {
        self.b.ins().fabs(a)
    }

    /// The lane mask of `a cc b`.
    pub fn cmp(&mut self, cc: FloatCC, a: Value, b: Value) -> Value {
        self.b.ins().fcmp(cc, a, b)
    }

    /// The lane mask of `a cc k`, `k` a constant.
    pub fn cmpc(&mut self, cc: FloatCC, a: Value, k: f32) -> Value {
        let k = self.c(k);
        self.cmp(cc, a, k)
    }

    /// The union of two masks.
    pub fn or(&mut self, m: Value, n: Value) -> Value {
        self.b.ins().bor(m, n)
    }

    /// Per lane: `t` where `mask`, else `f`.
    pub fn select(&mut self, mask: Value, t: Value, f: Value) -> Value {
        if self.vector() {
            // The mask lanes are all ones or all zeros, so this lowers to a blend.
            let m = self.b.ins().bitcast(self.ty, MemFlagsData::new(), mask);
            self.b.ins().bitselect(m, t, f)
        } else {
            self.b.ins().select(mask, t, f)
        }
    }

    /// Per lane: the constant `k` where `mask`, else `f`.
    pub fn select_c(&mut self, mask: Value, k: f32, f: Value) -> Value {
        let k = self.c(k);
        self.select(mask, k, f)
    }

    /// `max(0, min(1, x))`, keeping NaN.
    pub fn clamp01(&mut self, x: Value) -> Value {
        self.clamp(x, 0.0, 1.0)
    }

    /// `lo` where `x < lo`, `hi` where `x > hi`, else `x` (NaN stays NaN).
    pub fn clamp(&mut self, x: Value, lo: f32, hi: f32) -> Value {
        let below = self.cmpc(FloatCC::LessThan, x, lo);
        let y = self.select_c(below, lo, x);
        let above = self.cmpc(FloatCC::GreaterThan, y, hi);
        self.select_c(above, hi, y)
    }

    /// `p[0] * x^(n-1) + ... + p[n-1]` by Horner's rule with fused multiply-adds.
    fn poly(&mut self, x: Value, p: &[f32]) -> Value {
        let mut acc = self.c(p[0]);
        for &k in &p[1..] {
            let k = self.c(k);
            acc = self.fma(acc, x, k);
        }
        acc
    }

    /// Reinterprets float lanes as `i32` lanes.
    fn bits_of(&mut self, x: Value) -> Value {
        let t = self.int_ty();
        self.b.ins().bitcast(t, MemFlagsData::new(), x)
    }

    /// Reinterprets `i32` lanes as float lanes.
    fn float_of(&mut self, x: Value) -> Value {
        self.b.ins().bitcast(self.ty, MemFlagsData::new(), x)
    }

    /// `e^x`; `+inf` above 88.72 and NaN for NaN.
    pub fn exp(&mut self, x: Value) -> Value {
        let y = self.exp_finite(x);
        let big = self.cmpc(FloatCC::GreaterThan, x, 88.722_84);
        self.select_c(big, f32::INFINITY, y)
    }

    /// `e^x` with the argument clamped to `[-87.3, 88.3]`, so the result is always finite
    /// (about 1e-38 at the low end, 2e38 at the high end) unless `x` is NaN.
    pub fn exp_finite(&mut self, x: Value) -> Value {
        let x = self.clamp(x, -87.3, 88.3);
        // `t = x*log2(e) + 1.5*2^23` rounds `x*log2(e)` to the nearest integer `n`, which then
        // sits in the low mantissa bits of `t`.
        const MAGIC: f32 = 12_582_912.0;
        let magic = self.c(MAGIC);
        let t = self.fmac(x, std::f32::consts::LOG2_E, magic);
        let n = self.sub(t, magic);
        let r = self.fmac(n, -0.693_359_4, x);
        let r = self.fmac(n, 2.121_944_4e-4, r);
        let p = self.poly(r, &EXP_P);
        let r2 = self.mul(r, r);
        let one_r = self.addc(r, 1.0);
        let y = self.fma(p, r2, one_r);
        // 2^n from the integer bits of `t`.
        let bits = self.bits_of(t);
        let bias = self.ci(127 - MAGIC.to_bits() as i32);
        let e = self.b.ins().iadd(bits, bias);
        let e = self.b.ins().ishl_imm_u(e, 23);
        let scale = self.float_of(e);
        self.mul(y, scale)
    }

    /// Natural logarithm: `-inf` at 0, NaN below 0 and for NaN, `+inf` at `+inf`.
    pub fn log(&mut self, x: Value) -> Value {
        let bits = self.bits_of(x);
        let e = self.b.ins().ushr_imm_u(bits, 23);
        let c126 = self.ci(126);
        let e = self.b.ins().isub(e, c126);
        let ty = self.ty;
        let ef = self.b.ins().fcvt_from_sint(ty, e);
        let mant = self.ci(0x007F_FFFF);
        let half = self.ci(0x3F00_0000);
        let m = self.b.ins().band(bits, mant);
        let m = self.b.ins().bor(m, half);
        let m = self.float_of(m);
        // m in [0.5, 1); below sqrt(1/2) use 2m - 1 and e - 1, else m - 1.
        let low = self.cmpc(FloatCC::LessThan, m, std::f32::consts::FRAC_1_SQRT_2);
        let m2 = self.add(m, m);
        let mm = self.select(low, m2, m);
        let xm = self.addc(mm, -1.0);
        let ef1 = self.addc(ef, -1.0);
        let ef = self.select(low, ef1, ef);
        let z = self.mul(xm, xm);
        let p = self.poly(xm, &LOG_P);
        let xz = self.mul(xm, z);
        let y = self.mul(xz, p);
        let y = self.fmac(ef, -2.121_944_4e-4, y);
        let y = self.fmac(z, -0.5, y);
        let r = self.add(xm, y);
        let r = self.fmac(ef, 0.693_359_4, r);
        // Special values.
        let zero = self.cmpc(FloatCC::LessThan, x, f32::MIN_POSITIVE);
        let r = self.select_c(zero, f32::NEG_INFINITY, r);
        let inf = self.cmpc(FloatCC::Equal, x, f32::INFINITY);
        let r = self.select_c(inf, f32::INFINITY, r);
        let bad = self.cmpc(FloatCC::UnorderedOrLessThan, x, 0.0);
        self.select_c(bad, f32::NAN, r)
    }

    /// `ln(1 + y)` for `y >= 0`, accurate for small `y`.
    pub fn log1p(&mut self, y: Value) -> Value {
        let u = self.addc(y, 1.0);
        let d = self.addc(u, -1.0);
        let l = self.log(u);
        // ln(u) * y / (u - 1) corrects the rounding of 1 + y; where u == 1 the answer is y.
        let q = self.div(y, d);
        let r = self.mul(l, q);
        let tiny = self.cmpc(FloatCC::Equal, d, 0.0);
        self.select(tiny, y, r)
    }

    /// The error function.
    pub fn erf(&mut self, x: Value) -> Value {
        // x P(x^2) / Q(x^2) on x clamped to [-4, 4] (erf is 1 to f32 precision beyond), absolute
        // error below 5e-7, then clamped to [-1, 1]. No exponential and one division, so it
        // costs about half of the Cephes two-range form.
        let xc = self.clamp(x, -4.0, 4.0);
        let z = self.mul(xc, xc);
        let p = self.poly(z, &ERF_P);
        let p = self.mul(xc, p);
        let q = self.poly(z, &ERF_Q);
        let r = self.div(p, q);
        let r = self.clamp(r, -1.0, 1.0);
        // NaN in, NaN out.
        let nan = self.cmp(FloatCC::Unordered, x, x);
        self.select(nan, x, r)
    }

    /// Hyperbolic tangent.
    pub fn tanh(&mut self, x: Value) -> Value {
        let ax = self.abs(x);
        // |x| < 0.625: x + x z P(z), z = x^2.
        let z = self.mul(x, x);
        let p = self.poly(z, &TANH_P);
        let xz = self.mul(x, z);
        let small = self.fma(xz, p, x);
        // Otherwise 1 - 2 / (e^(2|x|) + 1), with the sign of x.
        let two_ax = self.add(ax, ax);
        let e = self.exp_finite(two_ax);
        let e1 = self.addc(e, 1.0);
        let two = self.c(2.0);
        let q = self.div(two, e1);
        let one = self.c(1.0);
        let big = self.sub(one, q);
        let neg = self.cmpc(FloatCC::LessThan, x, 0.0);
        let nbig = self.neg(big);
        let big = self.select(neg, nbig, big);
        let is_small = self.cmpc(FloatCC::LessThan, ax, 0.625);
        let r = self.select(is_small, small, big);
        let nan = self.cmp(FloatCC::Unordered, x, x);
        self.select(nan, x, r)
    }

    /// `1 / (1 + e^-x)`.
    pub fn sigmoid(&mut self, x: Value) -> Value {
        let nx = self.neg(x);
        let e = self.exp_finite(nx);
        let one = self.c(1.0);
        let d = self.add(one, e);
        self.div(one, d)
    }

    /// `ln(1 + e^x)` as `max(x, 0) + log1p(e^-|x|)`.
    pub fn softplus(&mut self, x: Value) -> Value {
        let ax = self.abs(x);
        let nax = self.neg(ax);
        let e = self.exp_finite(nax);
        let l = self.log1p(e);
        let zero = self.c(0.0);
        let pos = self.cmp(FloatCC::GreaterThan, x, zero);
        let m = self.select(pos, x, zero);
        self.add(m, l)
    }
}
