//! The matrix-product family: `Gemm`, `MatMul` (numpy `matmul`) and `Einsum` (in `einsum.rs`).
//!
//! Products accumulate in the operands' element type (`f16` in `f32`) with an `i-k-j` loop order,
//! so the innermost loop is a contiguous `axpy` over a result row that the compiler vectorizes.

use super::einsum;
use super::elem::{checked_numel, dispatch, tensor, typed, Elem};
use super::util::{arg, broadcast_indices, broadcast_shape, opt_arg};
use super::InterpError;
use sparsec_ir::{DType, Op, Tensor};

/// Evaluates an op of the matrix-product family.
pub(crate) fn eval(
    op: &Op,
    inputs: &[Option<&Tensor>],
    _n_outputs: usize,
) -> Result<Vec<Tensor>, InterpError> {
    let out = match op {
        Op::Gemm {
            alpha,
            beta,
            trans_a,
            trans_b,
        } => gemm(
            op,
            arg(op, inputs, 0)?,
            arg(op, inputs, 1)?,
            opt_arg(inputs, 2),
            (*alpha, *beta),
            (*trans_a != 0, *trans_b != 0),
        )?,
        Op::MatMul {} => matmul(op, arg(op, inputs, 0)?, arg(op, inputs, 1)?)?,
        Op::Einsum { equation } => {
            let operands = inputs
                .iter()
                .enumerate()
                .map(|(k, t)| {
                    t.ok_or_else(|| InterpError::invalid(op, format!("operand {k} is missing")))
                })
                .collect::<Result<Vec<&Tensor>, _>>()?;
            einsum::einsum(op, equation, &operands)?
        }
        _ => return Err(InterpError::unsupported(op, "not a matrix-product op")),
    };
    Ok(vec![out])
}

/// `c[m, n] += a[m, k] @ b[k, n]` for row-major slices.
pub(crate) fn matmul_acc<T: Elem>(a: &[T], b: &[T], c: &mut [T], m: usize, k: usize, n: usize) {
    if n == 0 {
        return;
    }
    for (i, crow) in c.chunks_exact_mut(n).take(m).enumerate() {
        let arow = &a[i * k..(i + 1) * k];
        for (&av, brow) in arow.iter().zip(b.chunks_exact(n)) {
            for (cv, &bv) in crow.iter_mut().zip(brow) {
                *cv = cv.add(av.mul(bv));
            }
        }
    }
}

/// Checks that the operands of a product have the same element type and that it is numeric.
fn check_dtypes(op: &Op, a: &Tensor, b: &Tensor) -> Result<(), InterpError> {
    if a.dtype() != b.dtype() {
        return Err(InterpError::invalid(
            op,
            format!(
                "operands have element types {} and {}",
                a.dtype(),
                b.dtype()
            ),
        ));
    }
    if a.dtype() == DType::Bool {
        return Err(InterpError::unsupported(op, "bool operands"));
    }
    Ok(())
}

/// Numpy `matmul`: 1-D operands are promoted to matrices and the promoted axis removed after;
/// leading (batch) axes broadcast.
fn matmul(op: &Op, a: &Tensor, b: &Tensor) -> Result<Tensor, InterpError> {
    check_dtypes(op, a, b)?;
    if a.rank() == 0 || b.rank() == 0 {
        return Err(InterpError::invalid(
            op,
            "operands must have rank 1 or more",
        ));
    }
    if a.dtype() == DType::F16 {
        // Accumulate in f32 and round once.
        return Ok(matmul(op, &a.cast(DType::F32), &b.cast(DType::F32))?.cast(DType::F16));
    }
    let mut ash = a.shape().to_vec();
    let mut bsh = b.shape().to_vec();
    let a_vec = ash.len() == 1;
    let b_vec = bsh.len() == 1;
    if a_vec {
        ash.insert(0, 1);
    }
    if b_vec {
        bsh.push(1);
    }
    let (m, k) = (ash[ash.len() - 2], ash[ash.len() - 1]);
    let (k2, n) = (bsh[bsh.len() - 2], bsh[bsh.len() - 1]);
    if k != k2 {
        return Err(InterpError::invalid(
            op,
            format!("inner dimensions differ: {:?} @ {:?}", a.shape(), b.shape()),
        ));
    }
    let a_batch = &ash[..ash.len() - 2];
    let b_batch = &bsh[..bsh.len() - 2];
    let batch = broadcast_shape(a_batch, b_batch).ok_or_else(|| {
        InterpError::invalid(
            op,
            format!(
                "batch dimensions of {:?} and {:?} do not broadcast",
                a.shape(),
                b.shape()
            ),
        )
    })?;
    let a_idx = broadcast_indices(a_batch, &batch);
    let b_idx = broadcast_indices(b_batch, &batch);
    let mut out_shape = batch.clone();
    if !a_vec {
        out_shape.push(m);
    }
    if !b_vec {
        out_shape.push(n);
    }
    checked_numel(op, &out_shape)?;
    dispatch!(a.dtype(), T => {
        let av = typed::<T>(op, a, "a")?;
        let bv = typed::<T>(op, b, "b")?;
        let mut out = vec![T::default(); a_idx.len() * m * n];
        if m * n > 0 {
            for ((cm, &ia), &ib) in out.chunks_exact_mut(m * n).zip(&a_idx).zip(&b_idx) {
                matmul_acc(
                    &av[ia * m * k..(ia + 1) * m * k],
                    &bv[ib * k * n..(ib + 1) * k * n],
                    cm,
                    m,
                    k,
                    n,
                );
            }
        }
        tensor(op, out_shape, out)
    })
}

/// Up to this many rows of `a`, a `Gemm` with `trans_b` uses dot products instead of a transpose.
const DOT_ROWS: usize = 16;

/// `sum a[i] * b[i]` with eight partial sums, so the loop vectorizes.
fn dot<T: Elem>(a: &[T], b: &[T]) -> T {
    let mut acc = [T::default(); 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ar, br) = (ac.remainder(), bc.remainder());
    for (x, y) in ac.zip(bc) {
        for l in 0..8 {
            acc[l] = acc[l].add(x[l].mul(y[l]));
        }
    }
    let mut s = acc.iter().fold(T::default(), |s, &v| s.add(v));
    for (&x, &y) in ar.iter().zip(br) {
        s = s.add(x.mul(y));
    }
    s
}

/// The transpose of a matrix, copied in square tiles so both sides stay in cache.
fn transposed(op: &Op, m: &Tensor) -> Result<Tensor, InterpError> {
    const TILE: usize = 32;
    let (r, c) = (m.shape()[0], m.shape()[1]);
    dispatch!(m.dtype(), T => {
        let v = typed::<T>(op, m, "matrix")?;
        let mut out = vec![T::default(); r * c];
        for i0 in (0..r).step_by(TILE) {
            for j0 in (0..c).step_by(TILE) {
                for i in i0..(i0 + TILE).min(r) {
                    for j in j0..(j0 + TILE).min(c) {
                        out[j * r + i] = v[i * c + j];
                    }
                }
            }
        }
        tensor(op, vec![c, r], out)
    })
}

/// `alpha * op(a) @ op(b) + beta * c` with `c` unidirectionally broadcast to `[M, N]`.
fn gemm(
    op: &Op,
    a: &Tensor,
    b: &Tensor,
    c: Option<&Tensor>,
    (alpha, beta): (f32, f32),
    (trans_a, trans_b): (bool, bool),
) -> Result<Tensor, InterpError> {
    check_dtypes(op, a, b)?;
    if a.rank() != 2 || b.rank() != 2 {
        return Err(InterpError::invalid(
            op,
            format!(
                "operands must be matrices, found shapes {:?} and {:?}",
                a.shape(),
                b.shape()
            ),
        ));
    }
    let a_t;
    let a = if trans_a {
        a_t = transposed(op, a)?;
        &a_t
    } else {
        a
    };
    let (m, k) = (a.shape()[0], a.shape()[1]);
    let (k2, n) = if trans_b {
        (b.shape()[1], b.shape()[0])
    } else {
        (b.shape()[0], b.shape()[1])
    };
    if k != k2 {
        return Err(InterpError::invalid(
            op,
            format!("inner dimensions differ: {m}x{k} @ {k2}x{n}"),
        ));
    }
    let ab = if trans_b && m <= DOT_ROWS && k > 0 && a.dtype() != DType::F16 {
        // Few rows (batch-1 fully connected layers): dot products with the rows of b, which
        // reads b once instead of transposing it.
        checked_numel(op, &[m, n])?;
        dispatch!(a.dtype(), T => {
            let av = typed::<T>(op, a, "a")?;
            let bv = typed::<T>(op, b, "b")?;
            let mut out = Vec::with_capacity(m * n);
            for ar in av.chunks_exact(k).take(m) {
                out.extend(bv.chunks_exact(k).take(n).map(|br| dot(ar, br)));
            }
            tensor(op, vec![m, n], out)?
        })
    } else if trans_b {
        matmul(op, a, &transposed(op, b)?)?
    } else {
        matmul(op, a, b)?
    };
    let c_vals = match c {
        Some(c) if beta != 0.0 => {
            let target = [m, n];
            if broadcast_shape(c.shape(), &target).as_deref() != Some(&target[..]) {
                return Err(InterpError::invalid(
                    op,
                    format!(
                        "c of shape {:?} does not broadcast to [{m}, {n}]",
                        c.shape()
                    ),
                ));
            }
            let cv = c.to_f64_vec();
            Some(
                broadcast_indices(c.shape(), &target)
                    .into_iter()
                    .map(move |i| cv[i]),
            )
        }
        _ => None,
    };
    if alpha == 1.0 && c_vals.is_none() {
        return Ok(ab);
    }
    let (alpha, beta) = (alpha as f64, beta as f64);
    // A zero coefficient drops its term, as BLAS and ONNX Runtime do, so an infinite or NaN
    // product or `c` it multiplies does not turn the result into NaN.
    let scaled = |p: f64| if alpha == 0.0 { 0.0 } else { alpha * p };
    let prod = ab.to_f64_vec();
    let vals: Vec<f64> = match c_vals {
        Some(cv) => prod
            .iter()
            .zip(cv)
            .map(|(&p, c)| scaled(p) + beta * c)
            .collect(),
        None => prod.iter().map(|&p| scaled(p)).collect(),
    };
    Ok(Tensor::from_f64s(ab.dtype(), &[m, n], vals))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(op: Op, inputs: &[&Tensor]) -> Result<Tensor, InterpError> {
        let ins: Vec<Option<&Tensor>> = inputs.iter().map(|t| Some(*t)).collect();
        Ok(eval(&op, &ins, 1)?.remove(0))
    }

    fn seq(shape: &[usize]) -> Tensor {
        let n: usize = shape.iter().product();
        Tensor::from_f32(shape, (0..n).map(|i| i as f32).collect())
    }

    #[test]
    fn matmul_2d_and_vectors() {
        let a = seq(&[2, 3]);
        let b = seq(&[3, 2]);
        let y = run(Op::MatMul {}, &[&a, &b]).unwrap();
        assert_eq!(y.shape(), &[2, 2]);
        // [[0,1,2],[3,4,5]] @ [[0,1],[2,3],[4,5]]
        assert_eq!(y.as_f32().unwrap(), &[10.0, 13.0, 28.0, 40.0]);
        let v = seq(&[3]);
        let y = run(Op::MatMul {}, &[&v, &b]).unwrap();
        assert_eq!(y.shape(), &[2]);
        assert_eq!(y.as_f32().unwrap(), &[10.0, 13.0]);
        let y = run(Op::MatMul {}, &[&a, &v]).unwrap();
        assert_eq!(y.as_f32().unwrap(), &[5.0, 14.0]);
        let y = run(Op::MatMul {}, &[&v, &v]).unwrap();
        assert_eq!(y.shape(), &[] as &[usize]);
        assert_eq!(y.as_f32().unwrap(), &[5.0]);
    }

    #[test]
    fn matmul_batched_broadcast_and_ints() {
        // [2,1,2,2] @ [3,2,1] -> [2,3,2,1]
        let a = Tensor::from_i64(&[2, 1, 2, 2], vec![1, 2, 3, 4, 5, 6, 7, 8]);
        let b = Tensor::from_i64(&[3, 2, 1], vec![1, 1, 1, 0, 0, 1]);
        let y = run(Op::MatMul {}, &[&a, &b]).unwrap();
        assert_eq!(y.shape(), &[2, 3, 2, 1]);
        assert_eq!(y.as_i64().unwrap(), &[3, 7, 1, 3, 2, 4, 11, 15, 5, 7, 6, 8]);
        let bad = seq(&[4, 2]);
        assert!(run(Op::MatMul {}, &[&seq(&[2, 3]), &bad]).is_err());
        let i32s = Tensor::from_f64s(DType::I32, &[1, 2], [2.0, 3.0]);
        let y = run(
            Op::MatMul {},
            &[&i32s, &Tensor::from_f64s(DType::I32, &[2], [4.0, 5.0])],
        )
        .unwrap();
        assert_eq!(y.to_i64_vec(), vec![23]);
        assert_eq!(y.dtype(), DType::I32);
    }

    #[test]
    fn matmul_f16() {
        let a = Tensor::from_f32(&[1, 2], vec![1.5, 2.0]).cast(DType::F16);
        let b = Tensor::from_f32(&[2, 1], vec![2.0, 0.25]).cast(DType::F16);
        let y = run(Op::MatMul {}, &[&a, &b]).unwrap();
        assert_eq!(y.dtype(), DType::F16);
        assert_eq!(y.to_f32_vec(), vec![3.5]);
    }

    #[test]
    fn gemm_trans_b_paths_agree_with_matmul() {
        // Few rows use dot products, many rows a transpose; k = 11 leaves a remainder after the
        // eight-wide partial sums, k = 0 gives zeros.
        for (m, k) in [(3, 11), (20, 11), (2, 0)] {
            let n = 5;
            let a = Tensor::from_f32(&[m, k], (0..m * k).map(|i| (i % 7) as f32 - 3.0).collect());
            let bt = Tensor::from_f32(&[n, k], (0..n * k).map(|i| (i % 5) as f32 - 2.0).collect());
            let b = transposed(&Op::MatMul {}, &bt).unwrap();
            let want = run(Op::MatMul {}, &[&a, &b]).unwrap();
            let op = Op::Gemm {
                alpha: 1.0,
                beta: 1.0,
                trans_a: 0,
                trans_b: 1,
            };
            let got = run(op, &[&a, &bt]).unwrap();
            assert_eq!(got.shape(), &[m, n]);
            assert_eq!(got, want, "m {m} k {k}");
        }
    }

    #[test]
    fn gemm_transposes_and_bias() {
        let a = seq(&[3, 2]); // transposed: [[0,2,4],[1,3,5]]
        let b = seq(&[2, 3]); // transposed: [[0,3],[1,4],[2,5]]
        let c = Tensor::from_f32(&[2, 1], vec![1.0, -1.0]);
        let op = Op::Gemm {
            alpha: 0.5,
            beta: 2.0,
            trans_a: 1,
            trans_b: 1,
        };
        let y = run(op, &[&a, &b, &c]).unwrap();
        // A'B' = [[10,28],[13,40]]
        assert_eq!(y.as_f32().unwrap(), &[7.0, 16.0, 4.5, 18.0]);
        // Without C, and a scalar C.
        let op = Op::Gemm {
            alpha: 1.0,
            beta: 1.0,
            trans_a: 0,
            trans_b: 0,
        };
        let y = eval(&op, &[Some(&seq(&[2, 3])), Some(&seq(&[3, 2])), None], 1).unwrap();
        assert_eq!(y[0].as_f32().unwrap(), &[10.0, 13.0, 28.0, 40.0]);
        let s = Tensor::scalar_f32(1.0);
        let y = run(op.clone(), &[&seq(&[2, 3]), &seq(&[3, 2]), &s]).unwrap();
        assert_eq!(y.as_f32().unwrap(), &[11.0, 14.0, 29.0, 41.0]);
        let bad_c = seq(&[3]);
        assert!(run(op, &[&seq(&[2, 3]), &seq(&[3, 2]), &bad_c]).is_err());
    }
}
