//! Binary and variadic elementwise ops with numpy broadcasting: arithmetic (floats, and exact
//! wrapping integers), `Pow`, comparisons, logic, `PRelu`, and `Sum`/`Max`/`Min`/`Mean`.

use super::bcast::zip2;
use super::num::{f16_to_f32, f32_to_f16, Float, Int};
use crate::interp::util::broadcast_shape;
use crate::interp::InterpError;
use half::f16;
use sparsec_ir::{Op, Tensor, TensorData};

/// An arithmetic operation on two same-typed operands.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Arith {
    /// `a + b`.
    Add,
    /// `a - b`.
    Sub,
    /// `a * b`.
    Mul,
    /// `a / b`, truncating for integers.
    Div,
    /// Remainder with the divisor's sign (`fmod=0`).
    Mod,
    /// Remainder with the dividend's sign (`fmod=1`).
    Fmod,
    /// Maximum (NaN wins).
    Max,
    /// Minimum (NaN wins).
    Min,
    /// `x` where `x >= 0`, else `slope * x`.
    PRelu,
}

/// Evaluates a binary op.
pub(crate) fn eval(op: &Op, a: &Tensor, b: &Tensor) -> Result<Tensor, InterpError> {
    match op {
        Op::Add {} => arith(op, Arith::Add, a, b),
        Op::Sub {} => arith(op, Arith::Sub, a, b),
        Op::Mul {} => arith(op, Arith::Mul, a, b),
        Op::Div {} => arith(op, Arith::Div, a, b),
        Op::Mod { fmod } => arith(op, if *fmod != 0 { Arith::Fmod } else { Arith::Mod }, a, b),
        Op::PRelu {} => arith(op, Arith::PRelu, a, b),
        Op::Pow {} => pow(op, a, b),
        Op::Equal {}
        | Op::Greater {}
        | Op::Less {}
        | Op::GreaterOrEqual {}
        | Op::LessOrEqual {} => compare(op, a, b),
        Op::And {} | Op::Or {} | Op::Xor {} => logic(op, a, b),
        _ => Err(InterpError::unsupported(op, "not a binary op")),
    }
}

/// Evaluates a variadic op (`Sum`, `Max`, `Min`, `Mean`) by folding broadcast pairs.
pub(crate) fn eval_variadic(op: &Op, inputs: &[&Tensor]) -> Result<Tensor, InterpError> {
    let kind = match op {
        Op::Sum {} | Op::Mean {} => Arith::Add,
        Op::Max {} => Arith::Max,
        Op::Min {} => Arith::Min,
        _ => return Err(InterpError::unsupported(op, "not a variadic op")),
    };
    let (first, rest) = inputs
        .split_first()
        .ok_or_else(|| InterpError::invalid(op, "needs at least one operand"))?;
    let mut acc = (*first).clone();
    for t in rest {
        acc = arith(op, kind, &acc, t)?;
    }
    if matches!(op, Op::Mean {}) {
        let n = inputs.len() as f64;
        let data = match acc.data() {
            TensorData::F32(v) => TensorData::F32(v.iter().map(|&x| x / n as f32).collect()),
            TensorData::F64(v) => TensorData::F64(v.iter().map(|&x| x / n).collect()),
            TensorData::F16(v) => TensorData::F16(
                v.iter()
                    .map(|x| f16::from_f32(x.to_f32() / n as f32))
                    .collect(),
            ),
            d => {
                return Err(InterpError::unsupported(
                    op,
                    format!("element type {}", d.dtype()),
                ))
            }
        };
        acc = Tensor::new(acc.shape().to_vec(), data)
            .map_err(|e| InterpError::invalid(op, e.to_string()))?;
    }
    Ok(acc)
}

/// The broadcast result shape of `a` and `b`, or an error naming both shapes.
fn out_shape(op: &Op, a: &Tensor, b: &Tensor) -> Result<Vec<usize>, InterpError> {
    broadcast_shape(a.shape(), b.shape()).ok_or_else(|| {
        InterpError::invalid(
            op,
            format!(
                "shapes {:?} and {:?} do not broadcast",
                a.shape(),
                b.shape()
            ),
        )
    })
}

/// Builds the result tensor.
fn make(op: &Op, shape: Vec<usize>, data: TensorData) -> Result<Tensor, InterpError> {
    Tensor::new(shape, data).map_err(|e| InterpError::invalid(op, e.to_string()))
}

/// The error for operands of different element types.
fn mismatch(op: &Op, a: &Tensor, b: &Tensor) -> InterpError {
    InterpError::invalid(
        op,
        format!(
            "operand element types differ: {} and {}",
            a.dtype(),
            b.dtype()
        ),
    )
}

/// Arithmetic on two broadcast operands of the same element type.
pub(crate) fn arith(op: &Op, kind: Arith, a: &Tensor, b: &Tensor) -> Result<Tensor, InterpError> {
    let shape = out_shape(op, a, b)?;
    let (sa, sb) = (a.shape(), b.shape());
    let data = match (a.data(), b.data()) {
        (TensorData::F32(x), TensorData::F32(y)) => {
            TensorData::F32(float_arith(kind, x, sa, y, sb, &shape))
        }
        (TensorData::F64(x), TensorData::F64(y)) => {
            TensorData::F64(float_arith(kind, x, sa, y, sb, &shape))
        }
        (TensorData::F16(x), TensorData::F16(y)) => TensorData::F16(f32_to_f16(float_arith(
            kind,
            &f16_to_f32(x),
            sa,
            &f16_to_f32(y),
            sb,
            &shape,
        ))),
        (TensorData::I64(x), TensorData::I64(y)) => {
            TensorData::I64(int_arith(op, kind, x, sa, y, sb, &shape)?)
        }
        (TensorData::I32(x), TensorData::I32(y)) => {
            TensorData::I32(int_arith(op, kind, x, sa, y, sb, &shape)?)
        }
        (TensorData::I8(x), TensorData::I8(y)) => {
            TensorData::I8(int_arith(op, kind, x, sa, y, sb, &shape)?)
        }
        (TensorData::U8(x), TensorData::U8(y)) => {
            TensorData::U8(int_arith(op, kind, x, sa, y, sb, &shape)?)
        }
        (TensorData::Bool(_), TensorData::Bool(_)) => {
            return Err(InterpError::unsupported(op, "element type bool"))
        }
        _ => return Err(mismatch(op, a, b)),
    };
    make(op, shape, data)
}

/// Float arithmetic.
fn float_arith<T: Float>(
    kind: Arith,
    a: &[T],
    sa: &[usize],
    b: &[T],
    sb: &[usize],
    shape: &[usize],
) -> Vec<T> {
    let zero = T::ZERO;
    match kind {
        Arith::Add => zip2(a, sa, b, sb, shape, |x, y| x + y),
        Arith::Sub => zip2(a, sa, b, sb, shape, |x, y| x - y),
        Arith::Mul => zip2(a, sa, b, sb, shape, |x, y| x * y),
        Arith::Div => zip2(a, sa, b, sb, shape, |x, y| x / y),
        Arith::Fmod => zip2(a, sa, b, sb, shape, |x, y| x % y),
        Arith::Mod => zip2(a, sa, b, sb, shape, |x, y| {
            let r = x % y;
            if r != zero && ((r < zero) != (y < zero)) {
                r + y
            } else {
                r
            }
        }),
        Arith::Max => zip2(a, sa, b, sb, shape, |x, y| {
            if x.is_nan() || x >= y {
                x
            } else {
                y
            }
        }),
        Arith::Min => zip2(a, sa, b, sb, shape, |x, y| {
            if x.is_nan() || x <= y {
                x
            } else {
                y
            }
        }),
        Arith::PRelu => zip2(a, sa, b, sb, shape, |x, s| if x < zero { s * x } else { x }),
    }
}

/// Integer arithmetic, exact and wrapping; division by zero is an error.
fn int_arith<T: Int>(
    op: &Op,
    kind: Arith,
    a: &[T],
    sa: &[usize],
    b: &[T],
    sb: &[usize],
    shape: &[usize],
) -> Result<Vec<T>, InterpError> {
    if matches!(kind, Arith::Div | Arith::Mod | Arith::Fmod) && b.contains(&T::ZERO) {
        return Err(InterpError::invalid(op, "integer division by zero"));
    }
    let zero = T::ZERO;
    Ok(match kind {
        Arith::Add => zip2(a, sa, b, sb, shape, |x, y| x.add(y)),
        Arith::Sub => zip2(a, sa, b, sb, shape, |x, y| x.sub(y)),
        Arith::Mul => zip2(a, sa, b, sb, shape, |x, y| x.mul(y)),
        Arith::Div => zip2(a, sa, b, sb, shape, |x, y| x.div(y)),
        Arith::Fmod => zip2(a, sa, b, sb, shape, |x, y| x.rem(y)),
        Arith::Mod => zip2(a, sa, b, sb, shape, |x, y| {
            let r = x.rem(y);
            if r != zero && ((r < zero) != (y < zero)) {
                r.add(y)
            } else {
                r
            }
        }),
        Arith::Max => zip2(a, sa, b, sb, shape, |x, y| x.max(y)),
        Arith::Min => zip2(a, sa, b, sb, shape, |x, y| x.min(y)),
        Arith::PRelu => zip2(
            a,
            sa,
            b,
            sb,
            shape,
            |x, s| {
                if x < zero {
                    s.mul(x)
                } else {
                    x
                }
            },
        ),
    })
}

/// `Pow`: the result has the base's element type; the exponent may have any numeric type.
fn pow(op: &Op, a: &Tensor, b: &Tensor) -> Result<Tensor, InterpError> {
    let shape = out_shape(op, a, b)?;
    let (sa, sb) = (a.shape(), b.shape());
    if b.dtype() == sparsec_ir::DType::Bool {
        return Err(InterpError::unsupported(op, "bool exponent"));
    }
    let data = match a.data() {
        TensorData::F32(x) => {
            let e: Vec<f32> = b.to_f32_vec();
            TensorData::F32(zip2(x, sa, &e, sb, &shape, |x, y| x.powf(y)))
        }
        TensorData::F64(x) => {
            let e = b.to_f64_vec();
            TensorData::F64(zip2(x, sa, &e, sb, &shape, |x, y| x.powf(y)))
        }
        TensorData::F16(x) => {
            let e: Vec<f32> = b.to_f32_vec();
            let r = zip2(&f16_to_f32(x), sa, &e, sb, &shape, |x, y| x.powf(y));
            TensorData::F16(f32_to_f16(r))
        }
        TensorData::I64(x) => TensorData::I64(int_pow(x, sa, b, &shape)),
        TensorData::I32(x) => TensorData::I32(int_pow(x, sa, b, &shape)),
        TensorData::I8(x) => TensorData::I8(int_pow(x, sa, b, &shape)),
        TensorData::U8(x) => TensorData::U8(int_pow(x, sa, b, &shape)),
        TensorData::Bool(_) => return Err(InterpError::unsupported(op, "bool base")),
    };
    make(op, shape, data)
}

/// Integer base: exact wrapping power for non-negative integer exponents, otherwise computed in
/// `f64` and truncated toward zero (as numpy's `power(...).astype(...)` does).
fn int_pow<T: Int>(x: &[T], sa: &[usize], b: &Tensor, shape: &[usize]) -> Vec<T> {
    if b.dtype().is_int() {
        let e = b.to_i64_vec();
        zip2(x, sa, &e, b.shape(), shape, |x, e| {
            if (0..=u32::MAX as i64).contains(&e) {
                x.pow(e as u32)
            } else {
                T::from_f64(x.to_f64().powf(e as f64))
            }
        })
    } else {
        let e = b.to_f64_vec();
        zip2(x, sa, &e, b.shape(), shape, |x, e| {
            T::from_f64(x.to_f64().powf(e))
        })
    }
}

/// Comparisons on any element type; the result is bool.
fn compare(op: &Op, a: &Tensor, b: &Tensor) -> Result<Tensor, InterpError> {
    let shape = out_shape(op, a, b)?;
    let (sa, sb) = (a.shape(), b.shape());
    let data = match (a.data(), b.data()) {
        (TensorData::F32(x), TensorData::F32(y)) => cmp(op, x, sa, y, sb, &shape),
        (TensorData::F64(x), TensorData::F64(y)) => cmp(op, x, sa, y, sb, &shape),
        (TensorData::F16(x), TensorData::F16(y)) => cmp(op, x, sa, y, sb, &shape),
        (TensorData::I64(x), TensorData::I64(y)) => cmp(op, x, sa, y, sb, &shape),
        (TensorData::I32(x), TensorData::I32(y)) => cmp(op, x, sa, y, sb, &shape),
        (TensorData::I8(x), TensorData::I8(y)) => cmp(op, x, sa, y, sb, &shape),
        (TensorData::U8(x), TensorData::U8(y)) => cmp(op, x, sa, y, sb, &shape),
        (TensorData::Bool(x), TensorData::Bool(y)) => cmp(op, x, sa, y, sb, &shape),
        _ => return Err(mismatch(op, a, b)),
    };
    make(op, shape, TensorData::Bool(data))
}

/// One comparison kernel (IEEE semantics for floats: NaN compares false, except `!=`).
fn cmp<T: PartialOrd + Copy>(
    op: &Op,
    a: &[T],
    sa: &[usize],
    b: &[T],
    sb: &[usize],
    shape: &[usize],
) -> Vec<bool> {
    match op {
        Op::Equal {} => zip2(a, sa, b, sb, shape, |x, y| x == y),
        Op::Greater {} => zip2(a, sa, b, sb, shape, |x, y| x > y),
        Op::Less {} => zip2(a, sa, b, sb, shape, |x, y| x < y),
        Op::GreaterOrEqual {} => zip2(a, sa, b, sb, shape, |x, y| x >= y),
        _ => zip2(a, sa, b, sb, shape, |x, y| x <= y),
    }
}

/// `And`, `Or`, `Xor` on bool.
fn logic(op: &Op, a: &Tensor, b: &Tensor) -> Result<Tensor, InterpError> {
    let shape = out_shape(op, a, b)?;
    let (sa, sb) = (a.shape(), b.shape());
    let (TensorData::Bool(x), TensorData::Bool(y)) = (a.data(), b.data()) else {
        return Err(InterpError::unsupported(
            op,
            format!("element types {} and {}", a.dtype(), b.dtype()),
        ));
    };
    let data = match op {
        Op::And {} => zip2(x, sa, y, sb, &shape, |x, y| x && y),
        Op::Or {} => zip2(x, sa, y, sb, &shape, |x, y| x || y),
        _ => zip2(x, sa, y, sb, &shape, |x, y| x != y),
    };
    make(op, shape, TensorData::Bool(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t_i32(shape: &[usize], v: Vec<i32>) -> Tensor {
        Tensor::new(shape.to_vec(), TensorData::I32(v)).unwrap()
    }

    #[test]
    fn float_arith_broadcasts() {
        let a = Tensor::from_f32(&[2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let b = Tensor::from_f32(&[3], vec![10.0, 20.0, 30.0]);
        let y = eval(&Op::Add {}, &a, &b).unwrap();
        assert_eq!(y.shape(), &[2, 3]);
        assert_eq!(y.as_f32().unwrap(), &[11.0, 22.0, 33.0, 14.0, 25.0, 36.0]);
        let c = Tensor::from_f32(&[2, 1], vec![2.0, 4.0]);
        let y = eval(&Op::Div {}, &c, &b).unwrap();
        assert_eq!(y.shape(), &[2, 3]);
        assert_eq!(
            y.as_f32().unwrap(),
            &[0.2, 0.1, 2.0 / 30.0, 0.4, 0.2, 4.0 / 30.0]
        );
        assert!(eval(&Op::Add {}, &a, &Tensor::from_f32(&[2], vec![1.0, 2.0])).is_err());
        let i = t_i32(&[3], vec![1, 2, 3]);
        assert!(!eval(&Op::Add {}, &a, &i).unwrap_err().is_unsupported());
    }

    #[test]
    fn integer_div_and_mod_follow_onnx() {
        let a = t_i32(&[4], vec![7, -7, 7, -7]);
        let b = t_i32(&[4], vec![2, 2, -2, -2]);
        let div = eval(&Op::Div {}, &a, &b).unwrap();
        assert_eq!(div.data(), &TensorData::I32(vec![3, -3, -3, 3]));
        let m = eval(&Op::Mod { fmod: 0 }, &a, &b).unwrap();
        assert_eq!(m.data(), &TensorData::I32(vec![1, 1, -1, -1]));
        let f = eval(&Op::Mod { fmod: 1 }, &a, &b).unwrap();
        assert_eq!(f.data(), &TensorData::I32(vec![1, -1, 1, -1]));
        let z = t_i32(&[1], vec![0]);
        assert!(eval(&Op::Div {}, &a, &z).is_err());
        let x = Tensor::from_f32(&[2], vec![-4.3, 5.5]);
        let y = Tensor::from_f32(&[2], vec![2.1, -2.0]);
        let m = eval(&Op::Mod { fmod: 0 }, &x, &y).unwrap();
        let got = m.as_f32().unwrap();
        assert!((got[0] - 2.0).abs() < 1e-5 && (got[1] + 0.5).abs() < 1e-6);
        let u = Tensor::new(vec![2], TensorData::U8(vec![250, 3])).unwrap();
        let s = eval(&Op::Add {}, &u, &u).unwrap();
        assert_eq!(s.data(), &TensorData::U8(vec![244, 6]));
    }

    #[test]
    fn pow_mixed_types() {
        let base = Tensor::from_i64(&[3], vec![2, 3, -2]);
        let e = Tensor::from_f32(&[3], vec![0.5, 2.0, 3.0]);
        let y = eval(&Op::Pow {}, &base, &e).unwrap();
        assert_eq!(y.data(), &TensorData::I64(vec![1, 9, -8]));
        let e = t_i32(&[1], vec![3]);
        let x = Tensor::from_f32(&[2], vec![2.0, -0.5]);
        let y = eval(&Op::Pow {}, &x, &e).unwrap();
        assert_eq!(y.as_f32().unwrap(), &[8.0, -0.125]);
        let y = eval(&Op::Pow {}, &base, &Tensor::from_i64(&[], vec![10])).unwrap();
        assert_eq!(y.data(), &TensorData::I64(vec![1024, 59049, 1024]));
    }

    #[test]
    fn comparisons_logic_and_prelu() {
        let a = Tensor::from_f32(&[3], vec![1.0, f32::NAN, 3.0]);
        let b = Tensor::from_f32(&[1], vec![1.0]);
        let ge = eval(&Op::GreaterOrEqual {}, &a, &b).unwrap();
        assert_eq!(ge.data(), &TensorData::Bool(vec![true, false, true]));
        let eq = eval(&Op::Equal {}, &a, &b).unwrap();
        assert_eq!(eq.data(), &TensorData::Bool(vec![true, false, false]));
        let p = Tensor::from_bool(&[2, 1], vec![true, false]);
        let q = Tensor::from_bool(&[2], vec![true, false]);
        let x = eval(&Op::Xor {}, &p, &q).unwrap();
        assert_eq!(x.shape(), &[2, 2]);
        assert_eq!(x.data(), &TensorData::Bool(vec![false, true, true, false]));
        let lt = eval(&Op::Less {}, &q, &p).unwrap();
        assert_eq!(
            lt.data(),
            &TensorData::Bool(vec![false, true, false, false])
        );
        let x = Tensor::from_f32(&[2, 2], vec![-1.0, 2.0, -3.0, 4.0]);
        let s = Tensor::from_f32(&[2], vec![0.5, 0.25]);
        let y = eval(&Op::PRelu {}, &x, &s).unwrap();
        assert_eq!(y.as_f32().unwrap(), &[-0.5, 2.0, -1.5, 4.0]);
    }

    #[test]
    fn f16_compares_ieee_and_int_pow_truncates() {
        let h = |v: &[f32]| {
            Tensor::new(
                vec![v.len()],
                TensorData::F16(v.iter().map(|&x| f16::from_f32(x)).collect()),
            )
            .unwrap()
        };
        let a = h(&[-0.0, f32::NAN, 1.5]);
        let b = h(&[0.0, f32::NAN, 1.0]);
        let eq = eval(&Op::Equal {}, &a, &b).unwrap();
        assert_eq!(eq.data(), &TensorData::Bool(vec![true, false, false]));
        let gt = eval(&Op::Greater {}, &a, &b).unwrap();
        assert_eq!(gt.data(), &TensorData::Bool(vec![false, false, true]));
        let s = eval(&Op::Sub {}, &a, &b).unwrap();
        assert_eq!(s.dtype(), sparsec_ir::DType::F16);
        let base = Tensor::from_i64(&[3], vec![2, -1, 1]);
        let e = Tensor::from_i64(&[1], vec![-1]);
        let y = eval(&Op::Pow {}, &base, &e).unwrap();
        assert_eq!(y.as_i64().unwrap(), &[0, -1, 1]);
    }

    #[test]
    fn variadic_folds_with_broadcast() {
        let a = Tensor::from_f32(&[3], vec![1.0, 5.0, 3.0]);
        let b = Tensor::from_f32(&[2, 1], vec![2.0, 4.0]);
        let c = Tensor::from_f32(&[], vec![0.0]);
        let s = eval_variadic(&Op::Sum {}, &[&a, &b, &c]).unwrap();
        assert_eq!(s.shape(), &[2, 3]);
        assert_eq!(s.as_f32().unwrap(), &[3.0, 7.0, 5.0, 5.0, 9.0, 7.0]);
        let m = eval_variadic(&Op::Mean {}, &[&a, &b]).unwrap();
        assert_eq!(m.as_f32().unwrap(), &[1.5, 3.5, 2.5, 2.5, 4.5, 3.5]);
        let mx = eval_variadic(&Op::Max {}, &[&a, &b]).unwrap();
        assert_eq!(mx.as_f32().unwrap(), &[2.0, 5.0, 3.0, 4.0, 5.0, 4.0]);
        let i = t_i32(&[2], vec![3, -1]);
        let j = t_i32(&[2], vec![1, 0]);
        let mn = eval_variadic(&Op::Min {}, &[&i, &j]).unwrap();
        assert_eq!(mn.data(), &TensorData::I32(vec![1, -1]));
        let one = eval_variadic(&Op::Max {}, &[&i]).unwrap();
        assert_eq!(one, i);
        let n = Tensor::from_f32(&[1], vec![f32::NAN]);
        let mx = eval_variadic(&Op::Max {}, &[&a, &n]).unwrap();
        assert!(mx.as_f32().unwrap().iter().all(|x| x.is_nan()));
    }
}
