//! Dtype-generic element access for the data-movement, indexing and linear-algebra ops.
//!
//! [`Elem`] is implemented by the Rust type of every [`DType`]; [`dispatch!`] runs a generic body
//! once per element type, so an op matches on the dtype once and then works on typed slices. The
//! module also owns the operand readers (integer lists, scalars) and the index arithmetic that
//! several families share (row-major unravelling, permutations).

use super::InterpError;
use half::f16;
use sparsec_ir::tensor::strides;
use sparsec_ir::{DType, Op, Tensor, TensorData};

/// The Rust type of one IR element type, with the few operations the interpreter needs on it.
pub(crate) trait Elem: Copy + PartialOrd + Default + Send + Sync + 'static {
    /// The IR element type.
    const DTYPE: DType;
    /// Converts from `f64` (saturating for integers, `!= 0` for bool).
    fn from_f64(x: f64) -> Self;
    /// Converts to `f64` (bool as 0/1).
    fn to_f64(self) -> f64;
    /// Sum (wrapping for integers, or for bool).
    fn add(self, o: Self) -> Self;
    /// Product (wrapping for integers, and for bool).
    fn mul(self, o: Self) -> Self;
    /// The typed elements of `d` if it holds this type.
    fn slice(d: &TensorData) -> Option<&[Self]>;
    /// Wraps typed elements as tensor storage.
    fn wrap(v: Vec<Self>) -> TensorData;
}

macro_rules! impl_elem_num {
    ($t:ty, $dt:ident, $add:expr, $mul:expr) => {
        impl Elem for $t {
            const DTYPE: DType = DType::$dt;
            #[inline]
            fn from_f64(x: f64) -> Self {
                x as $t
            }
            #[inline]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline]
            fn add(self, o: Self) -> Self {
                $add(self, o)
            }
            #[inline]
            fn mul(self, o: Self) -> Self {
                $mul(self, o)
            }
            fn slice(d: &TensorData) -> Option<&[Self]> {
                match d {
                    TensorData::$dt(v) => Some(v),
                    _ => None,
                }
            }
            fn wrap(v: Vec<Self>) -> TensorData {
                TensorData::$dt(v)
            }
        }
    };
}

impl_elem_num!(f32, F32, |a: f32, b| a + b, |a: f32, b| a * b);
impl_elem_num!(f64, F64, |a: f64, b| a + b, |a: f64, b| a * b);
impl_elem_num!(i64, I64, i64::wrapping_add, i64::wrapping_mul);
impl_elem_num!(i32, I32, i32::wrapping_add, i32::wrapping_mul);
impl_elem_num!(i8, I8, i8::wrapping_add, i8::wrapping_mul);
impl_elem_num!(u8, U8, u8::wrapping_add, u8::wrapping_mul);

impl Elem for f16 {
    const DTYPE: DType = DType::F16;
    fn from_f64(x: f64) -> Self {
        f16::from_f64(x)
    }
    fn to_f64(self) -> f64 {
        f16::to_f64(self)
    }
    fn add(self, o: Self) -> Self {
        f16::from_f32(self.to_f32() + o.to_f32())
    }
    fn mul(self, o: Self) -> Self {
        f16::from_f32(self.to_f32() * o.to_f32())
    }
    fn slice(d: &TensorData) -> Option<&[Self]> {
        match d {
            TensorData::F16(v) => Some(v),
            _ => None,
        }
    }
    fn wrap(v: Vec<Self>) -> TensorData {
        TensorData::F16(v)
    }
}

impl Elem for bool {
    const DTYPE: DType = DType::Bool;
    fn from_f64(x: f64) -> Self {
        x != 0.0
    }
    fn to_f64(self) -> f64 {
        self as u8 as f64
    }
    fn add(self, o: Self) -> Self {
        self || o
    }
    fn mul(self, o: Self) -> Self {
        self && o
    }
    fn slice(d: &TensorData) -> Option<&[Self]> {
        match d {
            TensorData::Bool(v) => Some(v),
            _ => None,
        }
    }
    fn wrap(v: Vec<Self>) -> TensorData {
        TensorData::Bool(v)
    }
}

/// Runs `$body` with the type alias `$T` bound to the Rust type of the [`DType`] `$dtype`.
macro_rules! dispatch {
    ($dtype:expr, $T:ident => $body:expr) => {
        match $dtype {
            sparsec_ir::DType::F32 => {
                type $T = f32;
                $body
            }
            sparsec_ir::DType::F64 => {
                type $T = f64;
                $body
            }
            sparsec_ir::DType::F16 => {
                type $T = half::f16;
                $body
            }
            sparsec_ir::DType::I64 => {
                type $T = i64;
                $body
            }
            sparsec_ir::DType::I32 => {
                type $T = i32;
                $body
            }
            sparsec_ir::DType::I8 => {
                type $T = i8;
                $body
            }
            sparsec_ir::DType::U8 => {
                type $T = u8;
                $body
            }
            sparsec_ir::DType::Bool => {
                type $T = bool;
                $body
            }
        }
    };
}
pub(crate) use dispatch;

/// The typed elements of `t`, or an error naming `what` when its dtype is not `T`.
pub(crate) fn typed<'a, T: Elem>(
    op: &Op,
    t: &'a Tensor,
    what: &str,
) -> Result<&'a [T], InterpError> {
    T::slice(t.data()).ok_or_else(|| {
        InterpError::invalid(
            op,
            format!(
                "{what} has element type {}, expected {}",
                t.dtype(),
                T::DTYPE
            ),
        )
    })
}

/// Builds a tensor from typed elements, checking the length against the shape.
pub(crate) fn tensor<T: Elem>(
    op: &Op,
    shape: Vec<usize>,
    v: Vec<T>,
) -> Result<Tensor, InterpError> {
    Tensor::new(shape, T::wrap(v)).map_err(|e| InterpError::invalid(op, e.to_string()))
}

/// A tensor of `t`'s dtype with `out[i] = t[idx[i]]`; every index must be in range.
pub(crate) fn take(
    op: &Op,
    t: &Tensor,
    shape: Vec<usize>,
    idx: &[usize],
) -> Result<Tensor, InterpError> {
    dispatch!(t.dtype(), T => {
        let v = typed::<T>(op, t, "input")?;
        tensor(op, shape, idx.iter().map(|&i| v[i]).collect())
    })
}

/// Like [`take`], but an index of `usize::MAX` yields `fill` (converted to `t`'s dtype).
pub(crate) fn take_or_fill(
    op: &Op,
    t: &Tensor,
    shape: Vec<usize>,
    idx: &[usize],
    fill: f64,
) -> Result<Tensor, InterpError> {
    dispatch!(t.dtype(), T => {
        let v = typed::<T>(op, t, "input")?;
        let f = T::from_f64(fill);
        tensor(op, shape, idx.iter().map(|&i| if i == usize::MAX { f } else { v[i] }).collect())
    })
}

/// The most elements a computed result may have: a guard against absurd shapes in model files
/// (2^30 elements, 4 GiB of `f32`, far beyond any activation this interpreter should meet).
pub(crate) const MAX_ELEMENTS: usize = 1 << 30;

/// The element count of a result of shape `shape`, or an error when it (or any one dimension,
/// since per-axis tables are built even for empty results) exceeds [`MAX_ELEMENTS`].
pub(crate) fn checked_numel(op: &Op, shape: &[usize]) -> Result<usize, InterpError> {
    shape
        .iter()
        .try_fold(1usize, |acc, &d| {
            if d > MAX_ELEMENTS {
                None
            } else {
                acc.checked_mul(d)
            }
        })
        .filter(|&n| n <= MAX_ELEMENTS)
        .ok_or_else(|| InterpError::invalid(op, format!("result of shape {shape:?} is too large")))
}

/// The elements of an integer operand (shape, axes, indices, ...) as `i64`.
pub(crate) fn ints(op: &Op, t: &Tensor, what: &str) -> Result<Vec<i64>, InterpError> {
    if !t.dtype().is_int() {
        return Err(InterpError::invalid(
            op,
            format!("{what} must be an integer tensor, found {}", t.dtype()),
        ));
    }
    Ok(t.to_i64_vec())
}

/// The single element of a one-element operand as `f64`.
pub(crate) fn scalar_f64(op: &Op, t: &Tensor, what: &str) -> Result<f64, InterpError> {
    if t.numel() != 1 {
        return Err(InterpError::invalid(
            op,
            format!("{what} must hold one element, has shape {:?}", t.shape()),
        ));
    }
    Ok(t.data().get_f64(0))
}

/// The single element of a one-element integer operand.
pub(crate) fn scalar_i64(op: &Op, t: &Tensor, what: &str) -> Result<i64, InterpError> {
    let v = ints(op, t, what)?;
    match v.as_slice() {
        [x] => Ok(*x),
        _ => Err(InterpError::invalid(
            op,
            format!("{what} must hold one element, has shape {:?}", t.shape()),
        )),
    }
}

/// Normalizes a possibly negative index against `dim`, or fails naming `what`.
pub(crate) fn norm_index(op: &Op, i: i64, dim: usize, what: &str) -> Result<usize, InterpError> {
    let j = if i < 0 { i + dim as i64 } else { i };
    if j < 0 || j >= dim as i64 {
        return Err(InterpError::invalid(
            op,
            format!("{what} {i} out of range for a dimension of size {dim}"),
        ));
    }
    Ok(j as usize)
}

/// For every flat index of the transposed shape, the flat index of its source element in `shape`.
pub(crate) fn permute_indices(shape: &[usize], perm: &[usize]) -> Vec<usize> {
    let in_strides = strides(shape);
    let out_shape: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
    let eff: Vec<usize> = perm.iter().map(|&p| in_strides[p]).collect();
    strided_indices(&out_shape, &eff, 0)
}

/// The flat source indices of walking `out_shape` row-major with per-axis source strides `eff`
/// starting at `base`.
pub(crate) fn strided_indices(out_shape: &[usize], eff: &[usize], base: usize) -> Vec<usize> {
    let n: usize = out_shape.iter().product();
    let r = out_shape.len();
    let mut out = Vec::with_capacity(n);
    if n == 0 {
        return out;
    }
    let mut idx = vec![0usize; r];
    let mut cur = base;
    for _ in 0..n {
        out.push(cur);
        for ax in (0..r).rev() {
            idx[ax] += 1;
            cur += eff[ax];
            if idx[ax] < out_shape[ax] {
                break;
            }
            cur -= eff[ax] * idx[ax];
            idx[ax] = 0;
        }
    }
    out
}

/// Calls `f` with every multi-index of `shape` in row-major order.
pub(crate) fn for_each_index(shape: &[usize], mut f: impl FnMut(&[usize])) {
    if shape.contains(&0) {
        return;
    }
    let mut idx = vec![0usize; shape.len()];
    loop {
        f(&idx);
        let mut ax = shape.len();
        loop {
            if ax == 0 {
                return;
            }
            ax -= 1;
            idx[ax] += 1;
            if idx[ax] < shape[ax] {
                break;
            }
            idx[ax] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutation_indices() {
        // A 2x3 matrix transposed reads columns.
        assert_eq!(permute_indices(&[2, 3], &[1, 0]), vec![0, 3, 1, 4, 2, 5]);
        assert_eq!(permute_indices(&[2, 3], &[0, 1]), vec![0, 1, 2, 3, 4, 5]);
        assert!(permute_indices(&[2, 0], &[1, 0]).is_empty());
    }

    #[test]
    fn index_walk() {
        let mut seen = Vec::new();
        for_each_index(&[2, 2], |i| seen.push(i.to_vec()));
        assert_eq!(seen, vec![vec![0, 0], vec![0, 1], vec![1, 0], vec![1, 1]]);
        let mut n = 0;
        for_each_index(&[], |_| n += 1);
        assert_eq!(n, 1);
        for_each_index(&[3, 0], |_| n += 1);
        assert_eq!(n, 1);
    }

    #[test]
    fn elem_conversions() {
        assert_eq!(<u8 as Elem>::from_f64(3.0), 3);
        assert_eq!(<i32 as Elem>::add(i32::MAX, 1), i32::MIN);
        assert!(<bool as Elem>::add(true, false));
        assert_eq!(<f16 as Elem>::to_f64(f16::from_f32(0.5)), 0.5);
    }
}
