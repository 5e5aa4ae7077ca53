//! Numeric element traits shared by the elementwise, reduction and normalization kernels.
//!
//! [`Float`] lets one generic kernel serve `f32` and `f64` (`f16` data is widened to `f32`, computed
//! and narrowed back by the callers); [`Int`] does the same for the integer types. The Gauss error
//! function, which Rust's standard library lacks, is implemented here in `f64`.

use half::f16;
use std::ops::{Add, Div, Mul, Neg, Rem, Sub};

/// A floating-point element type the kernels compute in (`f32` or `f64`).
pub(crate) trait Float:
    Copy
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Rem<Output = Self>
    + Neg<Output = Self>
    + 'static
{
    /// Zero.
    const ZERO: Self;
    /// One.
    const ONE: Self;
    /// Converts from `f64` (rounding to nearest).
    fn from_f64(x: f64) -> Self;
    /// Absolute value.
    fn abs(self) -> Self;
    /// Square root.
    fn sqrt(self) -> Self;
    /// `e^x`.
    fn exp(self) -> Self;
    /// Natural logarithm.
    fn ln(self) -> Self;
    /// `ln(1 + x)`, accurate near zero.
    fn ln_1p(self) -> Self;
    /// Hyperbolic tangent.
    fn tanh(self) -> Self;
    /// Sine.
    fn sin(self) -> Self;
    /// Cosine.
    fn cos(self) -> Self;
    /// Tangent.
    fn tan(self) -> Self;
    /// Arcsine.
    fn asin(self) -> Self;
    /// Arccosine.
    fn acos(self) -> Self;
    /// Arctangent.
    fn atan(self) -> Self;
    /// Hyperbolic sine.
    fn sinh(self) -> Self;
    /// Hyperbolic cosine.
    fn cosh(self) -> Self;
    /// Inverse hyperbolic sine.
    fn asinh(self) -> Self;
    /// Inverse hyperbolic cosine.
    fn acosh(self) -> Self;
    /// Inverse hyperbolic tangent.
    fn atanh(self) -> Self;
    /// Rounds toward minus infinity.
    fn floor(self) -> Self;
    /// Rounds toward plus infinity.
    fn ceil(self) -> Self;
    /// Rounds half to even.
    fn round_even(self) -> Self;
    /// Gauss error function.
    fn erf(self) -> Self;
    /// True for NaN.
    fn is_nan(self) -> bool;
}

macro_rules! impl_float {
    ($t:ty) => {
        impl Float for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            fn from_f64(x: f64) -> Self {
                x as $t
            }
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            fn ln_1p(self) -> Self {
                <$t>::ln_1p(self)
            }
            fn tanh(self) -> Self {
                <$t>::tanh(self)
            }
            fn sin(self) -> Self {
                <$t>::sin(self)
            }
            fn cos(self) -> Self {
                <$t>::cos(self)
            }
            fn tan(self) -> Self {
                <$t>::tan(self)
            }
            fn asin(self) -> Self {
                <$t>::asin(self)
            }
            fn acos(self) -> Self {
                <$t>::acos(self)
            }
            fn atan(self) -> Self {
                <$t>::atan(self)
            }
            fn sinh(self) -> Self {
                <$t>::sinh(self)
            }
            fn cosh(self) -> Self {
                <$t>::cosh(self)
            }
            fn asinh(self) -> Self {
                <$t>::asinh(self)
            }
            fn acosh(self) -> Self {
                <$t>::acosh(self)
            }
            fn atanh(self) -> Self {
                <$t>::atanh(self)
            }
            fn floor(self) -> Self {
                <$t>::floor(self)
            }
            fn ceil(self) -> Self {
                <$t>::ceil(self)
            }
            fn round_even(self) -> Self {
                <$t>::round_ties_even(self)
            }
            fn erf(self) -> Self {
                erf(self as f64) as $t
            }
            fn is_nan(self) -> bool {
                <$t>::is_nan(self)
            }
        }
    };
}

impl_float!(f32);
impl_float!(f64);

/// An integer element type (`i64`, `i32`, `i8`, `u8`); arithmetic wraps like numpy.
pub(crate) trait Int: Copy + Ord + Eq + 'static {
    /// Zero.
    const ZERO: Self;
    /// True for signed types.
    const SIGNED: bool;
    /// Wrapping addition.
    fn add(self, b: Self) -> Self;
    /// Wrapping subtraction.
    fn sub(self, b: Self) -> Self;
    /// Wrapping multiplication.
    fn mul(self, b: Self) -> Self;
    /// Division truncating toward zero (wrapping on `MIN / -1`); `b` must not be zero.
    fn div(self, b: Self) -> Self;
    /// Remainder with the sign of the dividend (wrapping); `b` must not be zero.
    fn rem(self, b: Self) -> Self;
    /// Wrapping negation.
    fn neg(self) -> Self;
    /// Wrapping absolute value.
    fn abs(self) -> Self;
    /// -1, 0 or 1.
    fn signum(self) -> Self;
    /// Wrapping power by a non-negative exponent.
    fn pow(self, e: u32) -> Self;
    /// Converts to `f64`.
    fn to_f64(self) -> f64;
    /// Converts from `f64`, truncating toward zero and saturating (NaN gives zero).
    fn from_f64(x: f64) -> Self;
}

macro_rules! impl_int {
    ($t:ty, $signed:expr) => {
        impl Int for $t {
            const ZERO: Self = 0;
            const SIGNED: bool = $signed;
            fn add(self, b: Self) -> Self {
                self.wrapping_add(b)
            }
            fn sub(self, b: Self) -> Self {
                self.wrapping_sub(b)
            }
            fn mul(self, b: Self) -> Self {
                self.wrapping_mul(b)
            }
            fn div(self, b: Self) -> Self {
                self.wrapping_div(b)
            }
            fn rem(self, b: Self) -> Self {
                self.wrapping_rem(b)
            }
            fn neg(self) -> Self {
                self.wrapping_neg()
            }
            fn abs(self) -> Self {
                if self < 0 as $t {
                    self.wrapping_neg()
                } else {
                    self
                }
            }
            fn signum(self) -> Self {
                if self > 0 as $t {
                    1
                } else if self == 0 as $t {
                    0
                } else {
                    (0 as $t).wrapping_sub(1)
                }
            }
            fn pow(self, e: u32) -> Self {
                self.wrapping_pow(e)
            }
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn from_f64(x: f64) -> Self {
                x as $t
            }
        }
    };
}

impl_int!(i64, true);
impl_int!(i32, true);
impl_int!(i8, true);
impl_int!(u8, false);

/// Widens `f16` data to `f32`.
pub(crate) fn f16_to_f32(v: &[f16]) -> Vec<f32> {
    v.iter().map(|x| x.to_f32()).collect()
}

/// Narrows `f32` data to `f16` (round to nearest even).
pub(crate) fn f32_to_f16(v: Vec<f32>) -> Vec<f16> {
    v.into_iter().map(f16::from_f32).collect()
}

/// `2 / sqrt(pi)`.
const TWO_OVER_SQRT_PI: f64 = std::f64::consts::FRAC_2_SQRT_PI;

/// The Gauss error function in `f64`, accurate to a few units in the last place.
///
/// For `|x| < 3` it sums the series `erf(x) = 2/sqrt(pi) * e^(-x^2) * sum_n 2^n x^(2n+1) /
/// (1*3*...*(2n+1))`, whose terms are all positive so nothing cancels. Beyond that it uses the
/// continued fraction of `erfc(x) = e^(-x^2)/sqrt(pi) / (x + (1/2)/(x + 1/(x + (3/2)/(x + ...))))`,
/// evaluated from the tail, which converges fast there; from 6 on `erf` is 1 in `f64`.
pub(crate) fn erf(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    let a = x.abs();
    let r = if a < 3.0 {
        let x2 = a * a;
        let mut term = a;
        let mut sum = a;
        let mut n = 0.0;
        loop {
            n += 1.0;
            term *= 2.0 * x2 / (2.0 * n + 1.0);
            sum += term;
            if term <= sum * 1e-17 {
                break;
            }
        }
        TWO_OVER_SQRT_PI * (-x2).exp() * sum
    } else if a < 6.0 {
        let mut f = a;
        for k in (1..=60).rev() {
            f = a + (k as f64 * 0.5) / f;
        }
        let erfc = (-a * a).exp() / (std::f64::consts::PI.sqrt() * f);
        1.0 - erfc
    } else {
        1.0
    };
    if x < 0.0 {
        -r
    } else {
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_matches_reference_values() {
        // Values from Python's `math.erf`.
        let cases = [
            (0.0, 0.0),
            (1e-10, 1.1283791670955126e-10),
            (0.1, 0.1124629160182849),
            (0.5, 0.5204998778130465),
            (1.0, 0.8427007929497149),
            (1.5, 0.9661051464753108),
            (2.0, 0.9953222650189527),
            (2.9, 0.9999589021219005),
            (3.0, 0.9999779095030014),
            (3.5, 0.9999992569016276),
            (4.5, 0.9999999998033839),
            (-0.7, -0.6778011938374184),
            (-2.5, -0.999593047982555),
            (7.0, 1.0),
        ];
        for (x, want) in cases {
            let got = erf(x);
            let err = (got - want).abs() / want.abs().max(1e-300);
            assert!(err < 1e-14, "erf({x}) = {got}, want {want}");
        }
        assert!(erf(f64::NAN).is_nan());
        assert_eq!(erf(f64::INFINITY), 1.0);
        assert_eq!(erf(f64::NEG_INFINITY), -1.0);
    }

    #[test]
    fn int_helpers_wrap_like_numpy() {
        assert_eq!(Int::abs(i8::MIN), i8::MIN);
        assert_eq!(Int::div(-7i32, 2), -3);
        assert_eq!(Int::rem(-7i32, 2), -1);
        assert_eq!(Int::signum(200u8), 1);
        assert_eq!(<i32 as Int>::from_f64(-2.9), -2);
        assert_eq!(<i32 as Int>::from_f64(f64::NAN), 0);
    }
}
