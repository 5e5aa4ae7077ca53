//! Concrete tensors: a shape plus typed, row-major element data.
//!
//! Tensors are the data of weights and the values the reference interpreter computes. `f16` data is
//! stored as `half::f16`; arithmetic on it is done in `f32` by the consumers.

use crate::types::{DType, TensorType};
use half::f16;
use thiserror::Error;

/// Typed element storage of a [`Tensor`], row-major.
#[derive(Clone, Debug, PartialEq)]
pub enum TensorData {
    /// `f32` elements.
    F32(Vec<f32>),
    /// `f64` elements.
    F64(Vec<f64>),
    /// `f16` elements.
    F16(Vec<f16>),
    /// `i64` elements.
    I64(Vec<i64>),
    /// `i32` elements.
    I32(Vec<i32>),
    /// `i8` elements.
    I8(Vec<i8>),
    /// `u8` elements.
    U8(Vec<u8>),
    /// `bool` elements.
    Bool(Vec<bool>),
}

/// Applies `$body` to the inner vector of a [`TensorData`] whatever its element type.
#[macro_export]
macro_rules! with_data {
    ($data:expr, $v:ident => $body:expr) => {
        match $data {
            $crate::TensorData::F32($v) => $body,
            $crate::TensorData::F64($v) => $body,
            $crate::TensorData::F16($v) => $body,
            $crate::TensorData::I64($v) => $body,
            $crate::TensorData::I32($v) => $body,
            $crate::TensorData::I8($v) => $body,
            $crate::TensorData::U8($v) => $body,
            $crate::TensorData::Bool($v) => $body,
        }
    };
}

impl TensorData {
    /// The element type of this storage.
    pub fn dtype(&self) -> DType {
        match self {
            TensorData::F32(_) => DType::F32,
            TensorData::F64(_) => DType::F64,
            TensorData::F16(_) => DType::F16,
            TensorData::I64(_) => DType::I64,
            TensorData::I32(_) => DType::I32,
            TensorData::I8(_) => DType::I8,
            TensorData::U8(_) => DType::U8,
            TensorData::Bool(_) => DType::Bool,
        }
    }

    /// Number of elements stored.
    pub fn len(&self) -> usize {
        with_data!(self, v => v.len())
    }

    /// True when no element is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Storage of `n` zero (or `false`) elements of type `dtype`.
    pub fn zeros(dtype: DType, n: usize) -> TensorData {
        match dtype {
            DType::F32 => TensorData::F32(vec![0.0; n]),
            DType::F64 => TensorData::F64(vec![0.0; n]),
            DType::F16 => TensorData::F16(vec![f16::ZERO; n]),
            DType::I64 => TensorData::I64(vec![0; n]),
            DType::I32 => TensorData::I32(vec![0; n]),
            DType::I8 => TensorData::I8(vec![0; n]),
            DType::U8 => TensorData::U8(vec![0; n]),
            DType::Bool => TensorData::Bool(vec![false; n]),
        }
    }

    /// Converts `f64` values to storage of type `dtype` (saturating `as` casts for integers,
    /// `!= 0` for bool).
    pub fn from_f64s(dtype: DType, v: impl IntoIterator<Item = f64>) -> TensorData {
        let it = v.into_iter();
        match dtype {
            DType::F32 => TensorData::F32(it.map(|x| x as f32).collect()),
            DType::F64 => TensorData::F64(it.collect()),
            DType::F16 => TensorData::F16(it.map(f16::from_f64).collect()),
            DType::I64 => TensorData::I64(it.map(|x| x as i64).collect()),
            DType::I32 => TensorData::I32(it.map(|x| x as i32).collect()),
            DType::I8 => TensorData::I8(it.map(|x| x as i8).collect()),
            DType::U8 => TensorData::U8(it.map(|x| x as u8).collect()),
            DType::Bool => TensorData::Bool(it.map(|x| x != 0.0).collect()),
        }
    }

    /// Element `i` as `f64` (bool as 0/1).
    pub fn get_f64(&self, i: usize) -> f64 {
        match self {
            TensorData::F32(v) => v[i] as f64,
            TensorData::F64(v) => v[i],
            TensorData::F16(v) => v[i].to_f64(),
            TensorData::I64(v) => v[i] as f64,
            TensorData::I32(v) => v[i] as f64,
            TensorData::I8(v) => v[i] as f64,
            TensorData::U8(v) => v[i] as f64,
            TensorData::Bool(v) => v[i] as u8 as f64,
        }
    }

    /// Element `i` is zero (or `false`); NaN counts as nonzero.
    pub fn is_zero(&self, i: usize) -> bool {
        match self {
            TensorData::F32(v) => v[i] == 0.0,
            TensorData::F64(v) => v[i] == 0.0,
            TensorData::F16(v) => v[i].to_f32() == 0.0,
            TensorData::I64(v) => v[i] == 0,
            TensorData::I32(v) => v[i] == 0,
            TensorData::I8(v) => v[i] == 0,
            TensorData::U8(v) => v[i] == 0,
            TensorData::Bool(v) => !v[i],
        }
    }
}

/// Errors building a tensor.
#[derive(Debug, Error, PartialEq)]
pub enum TensorError {
    /// The element count does not match the shape.
    #[error("shape {shape:?} needs {expected} elements, data has {actual}")]
    ElementCount {
        /// The shape given.
        shape: Vec<usize>,
        /// Product of the shape.
        expected: usize,
        /// Length of the data.
        actual: usize,
    },
}

/// A concrete tensor: shape and row-major data.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    shape: Vec<usize>,
    data: TensorData,
}

impl Tensor {
    /// Builds a tensor, checking that the data length matches the shape.
    pub fn new(shape: Vec<usize>, data: TensorData) -> Result<Tensor, TensorError> {
        let expected: usize = shape.iter().product();
        if expected != data.len() {
            return Err(TensorError::ElementCount {
                shape,
                expected,
                actual: data.len(),
            });
        }
        Ok(Tensor { shape, data })
    }

    /// A tensor of zeros.
    pub fn zeros(dtype: DType, shape: &[usize]) -> Tensor {
        Tensor {
            shape: shape.to_vec(),
            data: TensorData::zeros(dtype, shape.iter().product()),
        }
    }

    /// An `f32` tensor; panics if the length does not match (for code that computed both).
    pub fn from_f32(shape: &[usize], data: Vec<f32>) -> Tensor {
        Tensor::new(shape.to_vec(), TensorData::F32(data)).expect("f32 tensor length")
    }

    /// An `i64` tensor; panics if the length does not match (for code that computed both).
    pub fn from_i64(shape: &[usize], data: Vec<i64>) -> Tensor {
        Tensor::new(shape.to_vec(), TensorData::I64(data)).expect("i64 tensor length")
    }

    /// A `bool` tensor; panics if the length does not match (for code that computed both).
    pub fn from_bool(shape: &[usize], data: Vec<bool>) -> Tensor {
        Tensor::new(shape.to_vec(), TensorData::Bool(data)).expect("bool tensor length")
    }

    /// A tensor of type `dtype` from `f64` values (see [`TensorData::from_f64s`]).
    pub fn from_f64s(dtype: DType, shape: &[usize], v: impl IntoIterator<Item = f64>) -> Tensor {
        Tensor::new(shape.to_vec(), TensorData::from_f64s(dtype, v)).expect("tensor length")
    }

    /// A rank-0 `f32` tensor.
    pub fn scalar_f32(x: f32) -> Tensor {
        Tensor::from_f32(&[], vec![x])
    }

    /// A rank-0 `i64` tensor.
    pub fn scalar_i64(x: i64) -> Tensor {
        Tensor::from_i64(&[], vec![x])
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The rank.
    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.data.dtype()
    }

    /// The tensor type (all dimensions known).
    pub fn ty(&self) -> TensorType {
        TensorType::known(self.dtype(), &self.shape)
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.data.len()
    }

    /// The typed storage.
    pub fn data(&self) -> &TensorData {
        &self.data
    }

    /// The typed storage, mutable (the length must not change).
    pub fn data_mut(&mut self) -> &mut TensorData {
        &mut self.data
    }

    /// Splits into shape and storage.
    pub fn into_parts(self) -> (Vec<usize>, TensorData) {
        (self.shape, self.data)
    }

    /// Same data under another shape with the same element count.
    pub fn reshaped(self, shape: Vec<usize>) -> Result<Tensor, TensorError> {
        Tensor::new(shape, self.data)
    }

    /// The `f32` elements if the tensor is `f32`.
    pub fn as_f32(&self) -> Option<&[f32]> {
        match &self.data {
            TensorData::F32(v) => Some(v),
            _ => None,
        }
    }

    /// The `i64` elements if the tensor is `i64`.
    pub fn as_i64(&self) -> Option<&[i64]> {
        match &self.data {
            TensorData::I64(v) => Some(v),
            _ => None,
        }
    }

    /// Every element converted to `f32`.
    pub fn to_f32_vec(&self) -> Vec<f32> {
        match &self.data {
            TensorData::F32(v) => v.clone(),
            d => (0..d.len()).map(|i| d.get_f64(i) as f32).collect(),
        }
    }

    /// Every element converted to `f64`.
    pub fn to_f64_vec(&self) -> Vec<f64> {
        (0..self.numel()).map(|i| self.data.get_f64(i)).collect()
    }

    /// Every element converted to `i64` (floats truncated toward zero).
    pub fn to_i64_vec(&self) -> Vec<i64> {
        match &self.data {
            TensorData::I64(v) => v.clone(),
            TensorData::I32(v) => v.iter().map(|&x| x as i64).collect(),
            TensorData::I8(v) => v.iter().map(|&x| x as i64).collect(),
            TensorData::U8(v) => v.iter().map(|&x| x as i64).collect(),
            TensorData::Bool(v) => v.iter().map(|&x| x as i64).collect(),
            d => (0..d.len()).map(|i| d.get_f64(i) as i64).collect(),
        }
    }

    /// Converts to another element type (as ONNX `Cast` does for the common cases).
    pub fn cast(&self, dtype: DType) -> Tensor {
        if dtype == self.dtype() {
            return self.clone();
        }
        let data = match (&self.data, dtype) {
            (d, DType::I64) if d.dtype().is_int() || d.dtype() == DType::Bool => {
                TensorData::I64(self.to_i64_vec())
            }
            (d, DType::I32) if d.dtype().is_int() || d.dtype() == DType::Bool => {
                TensorData::I32(self.to_i64_vec().into_iter().map(|x| x as i32).collect())
            }
            (TensorData::I64(v), DType::F32) => {
                TensorData::F32(v.iter().map(|&x| x as f32).collect())
            }
            (TensorData::F64(v), DType::F32) => {
                TensorData::F32(v.iter().map(|&x| x as f32).collect())
            }
            (TensorData::F32(v), DType::F16) => {
                TensorData::F16(v.iter().map(|&x| f16::from_f32(x)).collect())
            }
            _ => TensorData::from_f64s(dtype, self.to_f64_vec()),
        };
        Tensor {
            shape: self.shape.clone(),
            data,
        }
    }

    /// Number of nonzero elements.
    pub fn nnz(&self) -> usize {
        (0..self.numel()).filter(|&i| !self.data.is_zero(i)).count()
    }
}

/// Row-major strides of a shape, in elements.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}
