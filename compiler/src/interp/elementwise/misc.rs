//! The misc elementwise ops: `Cast`, `CastLike`, `Clip`, `Where` and inference `Dropout`.

use super::bcast::walk;
use crate::interp::util::{arg, broadcast_shape, opt_arg};
use crate::interp::InterpError;
use half::f16;
use sparsec_ir::{DType, Op, Tensor, TensorData};

/// Evaluates a misc op.
pub(crate) fn eval(
    op: &Op,
    inputs: &[Option<&Tensor>],
    n_outputs: usize,
) -> Result<Vec<Tensor>, InterpError> {
    match op {
        Op::Cast { to } => Ok(vec![cast(op, arg(op, inputs, 0)?, *to)?]),
        Op::CastLike {} => {
            let like = arg(op, inputs, 1)?;
            Ok(vec![cast(op, arg(op, inputs, 0)?, like.dtype())?])
        }
        Op::Clip {} => Ok(vec![clip(op, inputs)?]),
        Op::Where {} => Ok(vec![select(op, inputs)?]),
        Op::Dropout {} => dropout(op, inputs, n_outputs),
        _ => Err(InterpError::unsupported(op, "not a misc op")),
    }
}

/// An element type that converts to every other one like numpy's `astype`: floats to integers
/// truncate toward zero (saturating, NaN gives 0), integers to integers wrap, anything to bool
/// is `!= 0`, bool to numbers is 0 or 1.
trait CastElem: Copy {
    fn to_f32(self) -> f32;
    fn to_f64(self) -> f64;
    fn to_f16(self) -> f16;
    fn to_i64(self) -> i64;
    fn to_i32(self) -> i32;
    fn to_i8(self) -> i8;
    fn to_u8(self) -> u8;
    fn to_bool(self) -> bool;
}

macro_rules! impl_cast_prim {
    ($t:ty, $to_f16:expr) => {
        impl CastElem for $t {
            fn to_f32(self) -> f32 {
                self as f32
            }
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn to_f16(self) -> f16 {
                $to_f16(self)
            }
            fn to_i64(self) -> i64 {
                self as i64
            }
            fn to_i32(self) -> i32 {
                self as i32
            }
            fn to_i8(self) -> i8 {
                self as i8
            }
            fn to_u8(self) -> u8 {
                self as u8
            }
            #[allow(clippy::float_cmp)]
            fn to_bool(self) -> bool {
                self != (0 as $t)
            }
        }
    };
}

impl_cast_prim!(f32, f16::from_f32);
impl_cast_prim!(f64, f16::from_f64);
impl_cast_prim!(i64, |x: i64| f16::from_f64(x as f64));
impl_cast_prim!(i32, |x: i32| f16::from_f64(x as f64));
impl_cast_prim!(i8, |x: i8| f16::from_f64(x as f64));
impl_cast_prim!(u8, |x: u8| f16::from_f64(x as f64));

impl CastElem for f16 {
    fn to_f32(self) -> f32 {
        f16::to_f32(self)
    }
    fn to_f64(self) -> f64 {
        f16::to_f64(self)
    }
    fn to_f16(self) -> f16 {
        self
    }
    fn to_i64(self) -> i64 {
        f16::to_f32(self) as i64
    }
    fn to_i32(self) -> i32 {
        f16::to_f32(self) as i32
    }
    fn to_i8(self) -> i8 {
        f16::to_f32(self) as i8
    }
    fn to_u8(self) -> u8 {
        f16::to_f32(self) as u8
    }
    fn to_bool(self) -> bool {
        f16::to_f32(self) != 0.0
    }
}

impl CastElem for bool {
    fn to_f32(self) -> f32 {
        self as u8 as f32
    }
    fn to_f64(self) -> f64 {
        self as u8 as f64
    }
    fn to_f16(self) -> f16 {
        if self {
            f16::ONE
        } else {
            f16::ZERO
        }
    }
    fn to_i64(self) -> i64 {
        self as i64
    }
    fn to_i32(self) -> i32 {
        self as i32
    }
    fn to_i8(self) -> i8 {
        self as i8
    }
    fn to_u8(self) -> u8 {
        self as u8
    }
    fn to_bool(self) -> bool {
        self
    }
}

/// Converts a slice to storage of type `to`.
fn cast_slice<T: CastElem>(v: &[T], to: DType) -> TensorData {
    match to {
        DType::F32 => TensorData::F32(v.iter().map(|x| x.to_f32()).collect()),
        DType::F64 => TensorData::F64(v.iter().map(|x| x.to_f64()).collect()),
        DType::F16 => TensorData::F16(v.iter().map(|x| x.to_f16()).collect()),
        DType::I64 => TensorData::I64(v.iter().map(|x| x.to_i64()).collect()),
        DType::I32 => TensorData::I32(v.iter().map(|x| x.to_i32()).collect()),
        DType::I8 => TensorData::I8(v.iter().map(|x| x.to_i8()).collect()),
        DType::U8 => TensorData::U8(v.iter().map(|x| x.to_u8()).collect()),
        DType::Bool => TensorData::Bool(v.iter().map(|x| x.to_bool()).collect()),
    }
}

/// `Cast` of `x` to `to`, between every pair of element types.
pub(crate) fn cast(op: &Op, x: &Tensor, to: DType) -> Result<Tensor, InterpError> {
    if x.dtype() == to {
        return Ok(x.clone());
    }
    let data = sparsec_ir::with_data!(x.data(), v => cast_slice(v, to));
    Tensor::new(x.shape().to_vec(), data).map_err(|e| InterpError::invalid(op, e.to_string()))
}

/// Reads an optional scalar bound of `Clip`, which must have `x`'s element type.
fn bound(
    op: &Op,
    t: Option<&Tensor>,
    x: &Tensor,
    which: &str,
) -> Result<Option<Tensor>, InterpError> {
    let Some(t) = t else { return Ok(None) };
    // An empty tensor stands for an omitted bound in some exporters.
    if t.numel() == 0 {
        return Ok(None);
    }
    if t.numel() != 1 {
        return Err(InterpError::invalid(
            op,
            format!("{which} must be a scalar, has shape {:?}", t.shape()),
        ));
    }
    if t.dtype() != x.dtype() {
        return Err(InterpError::invalid(
            op,
            format!(
                "{which} has element type {}, input has {}",
                t.dtype(),
                x.dtype()
            ),
        ));
    }
    Ok(Some(t.clone()))
}

/// Clamps each element: `max(x, lo)` then `min(., hi)`, so `lo > hi` gives `hi`; NaN stays NaN.
fn clamp_slice<T: PartialOrd + Copy>(v: &[T], lo: Option<T>, hi: Option<T>) -> Vec<T> {
    v.iter()
        .map(|&x| {
            let mut y = x;
            if let Some(l) = lo {
                if y < l {
                    y = l;
                }
            }
            if let Some(h) = hi {
                if y > h {
                    y = h;
                }
            }
            y
        })
        .collect()
}

/// `Clip` with optional scalar `min`, `max` operands.
fn clip(op: &Op, inputs: &[Option<&Tensor>]) -> Result<Tensor, InterpError> {
    let x = arg(op, inputs, 0)?;
    let lo = bound(op, opt_arg(inputs, 1), x, "min")?;
    let hi = bound(op, opt_arg(inputs, 2), x, "max")?;
    macro_rules! first {
        ($t:expr, $var:ident) => {
            match $t.as_ref().map(|t| t.data()) {
                Some(TensorData::$var(v)) => Some(v[0]),
                _ => None,
            }
        };
    }
    let data = match x.data() {
        TensorData::F32(v) => TensorData::F32(clamp_slice(v, first!(lo, F32), first!(hi, F32))),
        TensorData::F64(v) => TensorData::F64(clamp_slice(v, first!(lo, F64), first!(hi, F64))),
        TensorData::F16(v) => TensorData::F16(clamp_slice(v, first!(lo, F16), first!(hi, F16))),
        TensorData::I64(v) => TensorData::I64(clamp_slice(v, first!(lo, I64), first!(hi, I64))),
        TensorData::I32(v) => TensorData::I32(clamp_slice(v, first!(lo, I32), first!(hi, I32))),
        TensorData::I8(v) => TensorData::I8(clamp_slice(v, first!(lo, I8), first!(hi, I8))),
        TensorData::U8(v) => TensorData::U8(clamp_slice(v, first!(lo, U8), first!(hi, U8))),
        TensorData::Bool(_) => return Err(InterpError::unsupported(op, "element type bool")),
    };
    Tensor::new(x.shape().to_vec(), data).map_err(|e| InterpError::invalid(op, e.to_string()))
}

/// Picks `a[i]` where `c[i]`, else `b[i]`, over the three-way broadcast.
fn select_slice<T: Copy>(
    c: &[bool],
    sc: &[usize],
    a: &[T],
    sa: &[usize],
    b: &[T],
    sb: &[usize],
    shape: &[usize],
) -> Vec<T> {
    let mut out = Vec::with_capacity(shape.iter().product());
    walk(shape, [sc, sa, sb], |[i, j, k]| {
        out.push(if c[i] { a[j] } else { b[k] })
    });
    out
}

/// `Where`: operands `cond, a, b`.
fn select(op: &Op, inputs: &[Option<&Tensor>]) -> Result<Tensor, InterpError> {
    let (c, a, b) = (
        arg(op, inputs, 0)?,
        arg(op, inputs, 1)?,
        arg(op, inputs, 2)?,
    );
    let TensorData::Bool(cv) = c.data() else {
        return Err(InterpError::invalid(
            op,
            format!("condition has element type {}, expected bool", c.dtype()),
        ));
    };
    let shape = broadcast_shape(a.shape(), b.shape())
        .and_then(|s| broadcast_shape(c.shape(), &s))
        .ok_or_else(|| {
            InterpError::invalid(
                op,
                format!(
                    "shapes {:?}, {:?} and {:?} do not broadcast",
                    c.shape(),
                    a.shape(),
                    b.shape()
                ),
            )
        })?;
    let (sc, sa, sb) = (c.shape(), a.shape(), b.shape());
    macro_rules! sel {
        ($($var:ident),*) => {
            match (a.data(), b.data()) {
                $((TensorData::$var(x), TensorData::$var(y)) => {
                    TensorData::$var(select_slice(cv, sc, x, sa, y, sb, &shape))
                })*
                _ => {
                    return Err(InterpError::invalid(
                        op,
                        format!("operand element types differ: {} and {}", a.dtype(), b.dtype()),
                    ))
                }
            }
        };
    }
    let data = sel!(F32, F64, F16, I64, I32, I8, U8, Bool);
    Tensor::new(shape, data).map_err(|e| InterpError::invalid(op, e.to_string()))
}

/// Inference `Dropout`: operands `x[, ratio[, training_mode]]`. The output is `x`; the optional
/// mask is all true. Training mode with a nonzero ratio is random and unsupported.
fn dropout(
    op: &Op,
    inputs: &[Option<&Tensor>],
    n_outputs: usize,
) -> Result<Vec<Tensor>, InterpError> {
    let x = arg(op, inputs, 0)?;
    let training = opt_arg(inputs, 2).is_some_and(|t| t.numel() > 0 && !t.data().is_zero(0));
    if training {
        let ratio = match opt_arg(inputs, 1) {
            Some(r) if r.numel() > 0 => r.data().get_f64(0),
            _ => 0.5,
        };
        if ratio != 0.0 {
            return Err(InterpError::unsupported(
                op,
                "training mode with a nonzero ratio",
            ));
        }
    }
    let mut out = vec![x.clone()];
    if n_outputs > 1 {
        out.push(Tensor::from_bool(x.shape(), vec![true; x.numel()]));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(x: &Tensor, to: DType) -> Tensor {
        cast(&Op::Cast { to }, x, to).unwrap()
    }

    #[test]
    fn cast_between_types() {
        let x = Tensor::from_f32(&[5], vec![-2.7, -0.5, 0.0, 3.9, f32::NAN]);
        assert_eq!(
            c(&x, DType::I32).data(),
            &TensorData::I32(vec![-2, 0, 0, 3, 0])
        );
        assert_eq!(
            c(&x, DType::Bool).data(),
            &TensorData::Bool(vec![true, true, false, true, true])
        );
        let big = Tensor::from_i64(&[2], vec![300, -1]);
        assert_eq!(c(&big, DType::U8).data(), &TensorData::U8(vec![44, 255]));
        assert_eq!(c(&big, DType::I8).data(), &TensorData::I8(vec![44, -1]));
        let h = c(&Tensor::from_f32(&[1], vec![0.1]), DType::F16);
        assert_eq!(h.data(), &TensorData::F16(vec![f16::from_f32(0.1)]));
        let d = c(&h, DType::F64);
        assert_eq!(
            d.data(),
            &TensorData::F64(vec![f16::from_f32(0.1).to_f64()])
        );
        let b = Tensor::from_bool(&[2], vec![true, false]);
        assert_eq!(c(&b, DType::F32).as_f32().unwrap(), &[1.0, 0.0]);
        let exact = Tensor::from_i64(&[1], vec![(1 << 53) + 1]);
        assert_eq!(c(&exact, DType::I64), exact);
        assert_eq!(
            c(&Tensor::from_i64(&[1], vec![i64::MAX]), DType::I32).data(),
            &TensorData::I32(vec![-1])
        );
        let like = Tensor::new(vec![0], TensorData::F64(vec![])).unwrap();
        let y = eval(&Op::CastLike {}, &[Some(&big), Some(&like)], 1).unwrap();
        assert_eq!(y[0].data(), &TensorData::F64(vec![300.0, -1.0]));
    }

    #[test]
    fn clip_with_optional_bounds() {
        let x = Tensor::from_f32(&[4], vec![-3.0, -1.0, 1.0, f32::NAN]);
        let lo = Tensor::scalar_f32(-2.0);
        let hi = Tensor::scalar_f32(0.5);
        let y = eval(&Op::Clip {}, &[Some(&x), Some(&lo), Some(&hi)], 1).unwrap();
        let v = y[0].as_f32().unwrap();
        assert_eq!(&v[..3], &[-2.0, -1.0, 0.5]);
        assert!(v[3].is_nan());
        let y = eval(&Op::Clip {}, &[Some(&x), None, Some(&hi)], 1).unwrap();
        assert_eq!(&y[0].as_f32().unwrap()[..3], &[-3.0, -1.0, 0.5]);
        let i = Tensor::from_i64(&[3], vec![-5, 0, 9]);
        let lo = Tensor::scalar_i64(-1);
        let y = eval(&Op::Clip {}, &[Some(&i), Some(&lo)], 1).unwrap();
        assert_eq!(y[0].as_i64().unwrap(), &[-1, 0, 9]);
        let bad = Tensor::scalar_f32(1.0);
        assert!(eval(&Op::Clip {}, &[Some(&i), Some(&bad)], 1).is_err());
    }

    #[test]
    fn where_broadcasts_three_ways() {
        let c = Tensor::from_bool(&[2, 1], vec![true, false]);
        let a = Tensor::from_i64(&[3], vec![1, 2, 3]);
        let b = Tensor::scalar_i64(0);
        let y = eval(&Op::Where {}, &[Some(&c), Some(&a), Some(&b)], 1).unwrap();
        assert_eq!(y[0].shape(), &[2, 3]);
        assert_eq!(y[0].as_i64().unwrap(), &[1, 2, 3, 0, 0, 0]);
        let f = Tensor::scalar_f32(0.0);
        assert!(eval(&Op::Where {}, &[Some(&c), Some(&a), Some(&f)], 1).is_err());
        let bad = Tensor::from_i64(&[2], vec![1, 2]);
        assert!(eval(&Op::Where {}, &[Some(&c), Some(&a), Some(&bad)], 1).is_err());
    }

    #[test]
    fn dropout_is_identity_with_mask() {
        let x = Tensor::from_f32(&[2], vec![1.0, 2.0]);
        let y = eval(&Op::Dropout {}, &[Some(&x)], 2).unwrap();
        assert_eq!(y[0], x);
        assert_eq!(y[1].data(), &TensorData::Bool(vec![true, true]));
        let ratio = Tensor::scalar_f32(0.5);
        let on = Tensor::from_bool(&[], vec![true]);
        let r = eval(&Op::Dropout {}, &[Some(&x), Some(&ratio), Some(&on)], 1);
        assert!(r.unwrap_err().is_unsupported());
        let zero = Tensor::scalar_f32(0.0);
        let y = eval(&Op::Dropout {}, &[Some(&x), Some(&zero), Some(&on)], 1).unwrap();
        assert_eq!(y.len(), 1);
        assert_eq!(y[0], x);
    }
}
