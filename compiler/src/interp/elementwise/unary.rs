//! Unary elementwise ops: float math (computed in `f32` for `f16` and `f32` data, in `f64` for
//! `f64`), the integer forms of `Neg`, `Abs`, `Sign` and `Relu`, `Not`, the `IsNaN`/`IsInf` tests
//! and `Identity`.

use super::num::{f16_to_f32, f32_to_f16, Float, Int};
use crate::interp::InterpError;
use sparsec_ir::{Op, Tensor, TensorData};

/// Evaluates a unary op on `x`.
pub(crate) fn eval(op: &Op, x: &Tensor) -> Result<Tensor, InterpError> {
    let data = match op {
        Op::Identity {} => x.data().clone(),
        Op::Not {} => match x.data() {
            TensorData::Bool(v) => TensorData::Bool(v.iter().map(|b| !b).collect()),
            d => return Err(type_error(op, d)),
        },
        Op::IsNaN {} => TensorData::Bool(float_test(op, x.data(), |v| v.is_nan())?),
        Op::IsInf {
            detect_negative,
            detect_positive,
        } => {
            let (neg, pos) = (*detect_negative != 0, *detect_positive != 0);
            TensorData::Bool(float_test(op, x.data(), |v| {
                v.is_infinite() && ((v < 0.0 && neg) || (v > 0.0 && pos))
            })?)
        }
        _ => match x.data() {
            TensorData::F32(v) => TensorData::F32(float_unary(op, v)?),
            TensorData::F64(v) => TensorData::F64(float_unary(op, v)?),
            TensorData::F16(v) => TensorData::F16(f32_to_f16(float_unary(op, &f16_to_f32(v))?)),
            TensorData::I64(v) => TensorData::I64(int_unary(op, v)?),
            TensorData::I32(v) => TensorData::I32(int_unary(op, v)?),
            TensorData::I8(v) => TensorData::I8(int_unary(op, v)?),
            TensorData::U8(v) => TensorData::U8(int_unary(op, v)?),
            d => return Err(type_error(op, d)),
        },
    };
    Tensor::new(x.shape().to_vec(), data).map_err(|e| InterpError::invalid(op, e.to_string()))
}

/// The error for an element type the op does not take.
fn type_error(op: &Op, d: &TensorData) -> InterpError {
    InterpError::unsupported(op, format!("element type {}", d.dtype()))
}

/// Applies a float predicate (evaluated in `f64`) to float data.
fn float_test(op: &Op, d: &TensorData, f: impl Fn(f64) -> bool) -> Result<Vec<bool>, InterpError> {
    Ok(match d {
        TensorData::F32(v) => v.iter().map(|&x| f(x as f64)).collect(),
        TensorData::F64(v) => v.iter().map(|&x| f(x)).collect(),
        TensorData::F16(v) => v.iter().map(|x| f(x.to_f64())).collect(),
        d => return Err(type_error(op, d)),
    })
}

/// Maps `f` over `v`.
fn map<T: Copy>(v: &[T], f: impl Fn(T) -> T) -> Vec<T> {
    v.iter().map(|&x| f(x)).collect()
}

/// `ln(1 + e^x)` without overflow.
fn softplus<T: Float>(x: T) -> T {
    let m = if x > T::ZERO { x } else { T::ZERO };
    m + (-x.abs()).exp().ln_1p()
}

/// The float ops.
fn float_unary<T: Float>(op: &Op, v: &[T]) -> Result<Vec<T>, InterpError> {
    let c = |a: f32| T::from_f64(a as f64);
    let (zero, one) = (T::ZERO, T::ONE);
    Ok(match op {
        Op::Neg {} => map(v, |x| -x),
        Op::Abs {} => map(v, |x| x.abs()),
        Op::Sqrt {} => map(v, |x| x.sqrt()),
        Op::Reciprocal {} => map(v, |x| one / x),
        Op::Exp {} => map(v, |x| x.exp()),
        Op::Log {} => map(v, |x| x.ln()),
        Op::Erf {} => map(v, |x| x.erf()),
        Op::Tanh {} => map(v, |x| x.tanh()),
        Op::Sigmoid {} => map(v, |x| {
            // Both branches avoid overflow of `e^-x`.
            if x >= zero {
                one / (one + (-x).exp())
            } else {
                let e = x.exp();
                e / (one + e)
            }
        }),
        Op::Relu {} => map(v, |x| if x > zero { x } else { zero }),
        Op::Sin {} => map(v, |x| x.sin()),
        Op::Cos {} => map(v, |x| x.cos()),
        Op::Tan {} => map(v, |x| x.tan()),
        Op::Asin {} => map(v, |x| x.asin()),
        Op::Acos {} => map(v, |x| x.acos()),
        Op::Atan {} => map(v, |x| x.atan()),
        Op::Sinh {} => map(v, |x| x.sinh()),
        Op::Cosh {} => map(v, |x| x.cosh()),
        Op::Asinh {} => map(v, |x| x.asinh()),
        Op::Acosh {} => map(v, |x| x.acosh()),
        Op::Atanh {} => map(v, |x| x.atanh()),
        Op::Floor {} => map(v, |x| x.floor()),
        Op::Ceil {} => map(v, |x| x.ceil()),
        Op::Round {} => map(v, |x| x.round_even()),
        Op::Sign {} => map(v, |x| {
            if x > zero {
                one
            } else if x < zero {
                -one
            } else {
                // Zero stays zero and NaN stays NaN.
                x
            }
        }),
        Op::Softsign {} => map(v, |x| x / (one + x.abs())),
        Op::Softplus {} => map(v, softplus),
        Op::HardSwish {} => {
            let (sixth, half) = (T::from_f64(1.0 / 6.0), T::from_f64(0.5));
            map(v, |x| x * clamp01(x * sixth + half))
        }
        Op::Mish {} => map(v, |x| x * softplus(x).tanh()),
        Op::LeakyRelu { alpha } => {
            let a = c(*alpha);
            map(v, |x| if x < zero { a * x } else { x })
        }
        Op::Elu { alpha } => {
            let a = c(*alpha);
            map(v, |x| if x < zero { a * (x.exp() - one) } else { x })
        }
        Op::Selu { alpha, gamma } => {
            let (a, g) = (c(*alpha), c(*gamma));
            map(v, |x| {
                if x > zero {
                    g * x
                } else {
                    g * (a * x.exp() - a)
                }
            })
        }
        Op::Celu { alpha } => {
            let a = c(*alpha);
            map(v, |x| {
                let neg = a * ((x / a).exp() - one);
                let neg = if neg < zero { neg } else { zero };
                (if x > zero { x } else { zero }) + neg
            })
        }
        Op::HardSigmoid { alpha, beta } => {
            let (a, b) = (c(*alpha), c(*beta));
            map(v, |x| clamp01(a * x + b))
        }
        Op::ThresholdedRelu { alpha } => {
            let a = c(*alpha);
            map(v, |x| if x > a { x } else { zero })
        }
        Op::Gelu { approximate } => match approximate.as_str() {
            "none" => {
                let r = T::from_f64(std::f64::consts::FRAC_1_SQRT_2);
                let half = T::from_f64(0.5);
                map(v, |x| half * x * (one + (x * r).erf()))
            }
            "tanh" => {
                let k = T::from_f64((2.0 / std::f64::consts::PI).sqrt());
                let (c3, half) = (T::from_f64(0.044715), T::from_f64(0.5));
                map(v, |x| half * x * (one + (k * (x + c3 * x * x * x)).tanh()))
            }
            other => {
                return Err(InterpError::invalid(
                    op,
                    format!("unknown approximate mode `{other}`"),
                ))
            }
        },
        Op::Shrink { bias, lambd } => {
            let (b, l) = (c(*bias), c(*lambd));
            map(v, |x| {
                if x < -l {
                    x + b
                } else if x > l {
                    x - b
                } else {
                    zero
                }
            })
        }
        _ => return Err(InterpError::unsupported(op, "not a float unary op")),
    })
}

/// `max(0, min(1, x))`, keeping NaN.
fn clamp01<T: Float>(x: T) -> T {
    if x < T::ZERO {
        T::ZERO
    } else if x > T::ONE {
        T::ONE
    } else {
        x
    }
}

/// The integer ops.
fn int_unary<T: Int>(op: &Op, v: &[T]) -> Result<Vec<T>, InterpError> {
    Ok(match op {
        Op::Neg {} if T::SIGNED => map(v, |x| x.neg()),
        Op::Abs {} => map(v, |x| x.abs()),
        Op::Sign {} => map(v, |x| x.signum()),
        Op::Relu {} => map(v, |x| if x > T::ZERO { x } else { T::ZERO }),
        Op::Shrink { bias, lambd } => {
            // ONNX computes in the element type; the attributes are whole for integer data.
            let (b, l) = (*bias as f64, *lambd as f64);
            map(v, |x| {
                let xf = x.to_f64();
                if xf < -l {
                    T::from_f64(xf + b)
                } else if xf > l {
                    T::from_f64(xf - b)
                } else {
                    T::ZERO
                }
            })
        }
        _ => {
            return Err(InterpError::unsupported(
                op,
                format!("integer element type {}", std::any::type_name::<T>()),
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use half::f16;
    use sparsec_ir::DType;

    fn run(op: Op, x: &Tensor) -> Tensor {
        eval(&op, x).unwrap()
    }

    fn close(got: &[f32], want: &[f32], tol: f32) {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert!(
                (g - w).abs() <= tol * w.abs().max(1.0),
                "got {got:?}, want {want:?}"
            );
        }
    }

    #[test]
    fn float_math_on_f32() {
        let x = Tensor::from_f32(&[4], vec![-1.5, -0.5, 0.5, 2.5]);
        // Round is half to even.
        assert_eq!(
            run(Op::Round {}, &x).as_f32().unwrap(),
            &[-2.0, -0.0, 0.0, 2.0]
        );
        assert_eq!(
            run(Op::Floor {}, &x).as_f32().unwrap(),
            &[-2.0, -1.0, 0.0, 2.0]
        );
        assert_eq!(
            run(Op::Relu {}, &x).as_f32().unwrap(),
            &[0.0, 0.0, 0.5, 2.5]
        );
        // Values from numpy.
        close(
            run(Op::Sigmoid {}, &x).as_f32().unwrap(),
            &[0.18242552, 0.37754067, 0.62245935, 0.924_141_8],
            1e-6,
        );
        close(
            run(Op::Softplus {}, &x).as_f32().unwrap(),
            &[0.20141328, 0.474_077, 0.974077, 2.5788897],
            1e-6,
        );
        close(
            run(Op::Mish {}, &x).as_f32().unwrap(),
            &[-0.29809974, -0.22074377, 0.375_245_2, 2.4713923],
            1e-6,
        );
        close(
            run(Op::HardSwish {}, &x).as_f32().unwrap(),
            &[-0.375, -0.20833333, 0.29166666, 2.2916667],
            1e-6,
        );
        close(
            run(Op::Erf {}, &x).as_f32().unwrap(),
            &[-0.96610515, -0.5204999, 0.5204999, 0.999593],
            1e-7,
        );
    }

    #[test]
    fn activations_with_attributes() {
        let x = Tensor::from_f32(&[3], vec![-1.0, 0.0, 2.0]);
        close(
            run(Op::Elu { alpha: 2.0 }, &x).as_f32().unwrap(),
            &[-1.2642411, 0.0, 2.0],
            1e-6,
        );
        close(
            run(
                Op::Selu {
                    alpha: 2.0,
                    gamma: 3.0,
                },
                &x,
            )
            .as_f32()
            .unwrap(),
            &[-3.7927232, 0.0, 6.0],
            1e-6,
        );
        close(
            run(Op::Celu { alpha: 2.0 }, &x).as_f32().unwrap(),
            &[-0.7869387, 0.0, 2.0],
            1e-6,
        );
        close(
            run(
                Op::Shrink {
                    bias: 1.5,
                    lambd: 1.5,
                },
                &x,
            )
            .as_f32()
            .unwrap(),
            &[0.0, 0.0, 0.5],
            0.0,
        );
        close(
            run(Op::ThresholdedRelu { alpha: 1.0 }, &x)
                .as_f32()
                .unwrap(),
            &[0.0, 0.0, 2.0],
            0.0,
        );
        close(
            run(
                Op::Gelu {
                    approximate: "none".into(),
                },
                &x,
            )
            .as_f32()
            .unwrap(),
            &[-0.15865526, 0.0, 1.9544997],
            1e-6,
        );
        close(
            run(
                Op::Gelu {
                    approximate: "tanh".into(),
                },
                &x,
            )
            .as_f32()
            .unwrap(),
            &[-0.15880801, 0.0, 1.9545977],
            1e-6,
        );
    }

    #[test]
    fn f16_and_f64_keep_their_type() {
        let h = Tensor::new(
            vec![2],
            TensorData::F16(vec![f16::from_f32(4.0), f16::from_f32(0.25)]),
        )
        .unwrap();
        let y = run(Op::Sqrt {}, &h);
        assert_eq!(
            y.data(),
            &TensorData::F16(vec![f16::from_f32(2.0), f16::from_f32(0.5)])
        );
        let d = Tensor::new(vec![1], TensorData::F64(vec![1.0])).unwrap();
        let y = run(Op::Exp {}, &d);
        assert_eq!(y.data(), &TensorData::F64(vec![std::f64::consts::E]));
    }

    #[test]
    fn integer_bool_and_tests() {
        let x = Tensor::new(vec![3], TensorData::I8(vec![-128, -3, 4])).unwrap();
        assert_eq!(
            run(Op::Abs {}, &x).data(),
            &TensorData::I8(vec![-128, 3, 4])
        );
        assert_eq!(
            run(Op::Neg {}, &x).data(),
            &TensorData::I8(vec![-128, 3, -4])
        );
        assert_eq!(
            run(Op::Sign {}, &x).data(),
            &TensorData::I8(vec![-1, -1, 1])
        );
        let u = Tensor::new(vec![1], TensorData::U8(vec![3])).unwrap();
        assert!(eval(&Op::Neg {}, &u).unwrap_err().is_unsupported());
        assert!(eval(&Op::Exp {}, &x).unwrap_err().is_unsupported());
        let b = Tensor::from_bool(&[2], vec![true, false]);
        assert_eq!(
            run(Op::Not {}, &b).data(),
            &TensorData::Bool(vec![false, true])
        );
        assert_eq!(run(Op::Identity {}, &b), b);
        let f = Tensor::from_f32(&[4], vec![f32::NAN, f32::INFINITY, -f32::INFINITY, 1.0]);
        assert_eq!(
            run(Op::IsNaN {}, &f).data(),
            &TensorData::Bool(vec![true, false, false, false])
        );
        let y = run(
            Op::IsInf {
                detect_negative: 0,
                detect_positive: 1,
            },
            &f,
        );
        assert_eq!(y.dtype(), DType::Bool);
        assert_eq!(y.data(), &TensorData::Bool(vec![false, true, false, false]));
    }
}
