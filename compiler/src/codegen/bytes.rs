//! Tensors to and from the raw little-endian bytes of runtime buffers.

use half::f16;
use sparsec_ir::{DType, Tensor, TensorData};
use sparsec_runtime::ElemType;

/// The runtime element type of an IR element type.
pub fn elem_type(d: DType) -> ElemType {
    match d {
        DType::F32 => ElemType::F32,
        DType::F64 => ElemType::F64,
        DType::F16 => ElemType::F16,
        DType::I64 => ElemType::I64,
        DType::I32 => ElemType::I32,
        DType::I8 => ElemType::I8,
        DType::U8 => ElemType::U8,
        DType::Bool => ElemType::Bool,
    }
}

/// The IR element type of a runtime element type.
pub fn dtype_of(e: ElemType) -> DType {
    match e {
        ElemType::F32 => DType::F32,
        ElemType::F64 => DType::F64,
        ElemType::F16 => DType::F16,
        ElemType::I64 => DType::I64,
        ElemType::I32 => DType::I32,
        ElemType::I8 => DType::I8,
        ElemType::U8 => DType::U8,
        ElemType::Bool => DType::Bool,
    }
}

/// The little-endian bytes of a tensor's elements.
pub fn tensor_bytes(t: &Tensor) -> Vec<u8> {
    match t.data() {
        TensorData::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        TensorData::F64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        TensorData::F16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        TensorData::I64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        TensorData::I32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        TensorData::I8(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        TensorData::U8(v) => v.clone(),
        TensorData::Bool(v) => v.iter().map(|&b| b as u8).collect(),
    }
}

/// A tensor of `dtype` and `shape` read from little-endian bytes (exactly `numel * size` of them).
pub fn tensor_from_bytes(dtype: DType, shape: &[usize], b: &[u8]) -> Tensor {
    fn chunks<const N: usize, T>(b: &[u8], f: impl Fn([u8; N]) -> T) -> Vec<T> {
        b.chunks_exact(N)
            .map(|c| f(c.try_into().expect("chunk of N bytes")))
            .collect()
    }
    let data = match dtype {
        DType::F32 => TensorData::F32(chunks(b, f32::from_le_bytes)),
        DType::F64 => TensorData::F64(chunks(b, f64::from_le_bytes)),
        DType::F16 => TensorData::F16(chunks(b, f16::from_le_bytes)),
        DType::I64 => TensorData::I64(chunks(b, i64::from_le_bytes)),
        DType::I32 => TensorData::I32(chunks(b, i32::from_le_bytes)),
        DType::I8 => TensorData::I8(chunks(b, i8::from_le_bytes)),
        DType::U8 => TensorData::U8(b.to_vec()),
        DType::Bool => TensorData::Bool(b.iter().map(|&x| x != 0).collect()),
    };
    Tensor::new(shape.to_vec(), data).expect("byte length matches the shape")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_trip_every_dtype() {
        for d in DType::ALL {
            let t = Tensor::from_f64s(d, &[2, 3], [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
            let b = tensor_bytes(&t);
            assert_eq!(b.len(), 6 * d.size_bytes());
            assert_eq!(tensor_from_bytes(d, &[2, 3], &b), t);
        }
    }
}
