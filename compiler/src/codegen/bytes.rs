//! Tensors to and from the raw little-endian bytes of runtime buffers, and byte views of a
//! tensor's own memory that runtime plans share instead of copying ([`weight_buf`]).

use half::f16;
use sparsec_ir::{with_data, DType, Tensor, TensorData};
use sparsec_runtime::{AlignedBuf, ElemType, WeightBuf, WeightBytes};
use std::sync::Arc;

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

/// The tensor's elements in memory, viewed as the bytes [`tensor_bytes`] would produce; `None`
/// when its in-memory bytes differ from them (multi-byte elements on a big-endian target).
///
/// Every element type qualifies on little-endian targets: numbers are stored little-endian,
/// `f16` is a transparent `u16`, and `bool` is one byte holding 0 or 1.
pub fn tensor_byte_view(t: &Tensor) -> Option<&[u8]> {
    fn view<T>(v: &[T]) -> &[u8] {
        // SAFETY: the element types of `TensorData` (numbers, `f16`, `bool`) have no padding
        // and no invalid byte patterns when read as `u8`; `u8` has alignment 1, and the slice
        // covers exactly the elements' bytes, borrowed for the same lifetime.
        unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), std::mem::size_of_val(v)) }
    }
    let one_byte = matches!(t.dtype(), DType::U8 | DType::I8 | DType::Bool);
    if !one_byte && cfg!(target_endian = "big") {
        return None;
    }
    Some(with_data!(t.data(), v => view(v)))
}

/// A weight tensor whose bytes a runtime plan reads in place.
struct SharedTensor(Arc<Tensor>);

impl WeightBytes for SharedTensor {
    fn bytes(&self) -> &[u8] {
        // `weight_buf` only wraps tensors that have a byte view.
        tensor_byte_view(&self.0).unwrap_or_default()
    }
}

/// A plan weight holding `t`'s bytes: shared with the tensor when its memory already holds them
/// (see [`tensor_byte_view`] and [`WeightBuf::shared`]), else an owned copy.
pub fn weight_buf(t: &Arc<Tensor>) -> WeightBuf {
    match tensor_byte_view(t) {
        Some(_) => WeightBuf::shared(Arc::new(SharedTensor(t.clone()))),
        None => WeightBuf::Owned(owned_buf(t)),
    }
}

/// An aligned buffer holding a copy of the tensor's bytes (copied once, without an intermediate
/// vector when the tensor has a byte view).
pub fn owned_buf(t: &Tensor) -> AlignedBuf {
    match tensor_byte_view(t) {
        Some(b) => AlignedBuf::from_bytes(b),
        None => AlignedBuf::from_bytes(&tensor_bytes(t)),
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

    #[test]
    fn shared_weights_hold_the_bytes_of_tensor_bytes_for_every_dtype() {
        // Values that exercise sign, fraction and every byte of the wider types.
        let vals = [
            0.0, 1.0, -2.5, 3.0e5, -7.0, 1.0, 0.5, 255.0, -128.0, 1.0e-3, 42.0, -1.0,
        ];
        for d in DType::ALL {
            for n in [0usize, 1, 3, 12, 1000] {
                let data: Vec<f64> = (0..n)
                    .map(|i| vals[i % vals.len()] * (i + 1) as f64)
                    .collect();
                let t = Arc::new(Tensor::from_f64s(d, &[n], data));
                let expected = tensor_bytes(&t);
                assert_eq!(tensor_byte_view(&t), Some(&expected[..]), "{d} x{n}");
                let w = weight_buf(&t);
                assert_eq!(w.as_bytes(), &expected[..], "{d} x{n}");
                assert_eq!(owned_buf(&t).as_bytes(), &expected[..], "{d} x{n}");
                if w.is_shared() {
                    // Shared in place: the plan reads the tensor's own memory.
                    assert_eq!(Some(w.as_ptr()), tensor_byte_view(&t).map(<[u8]>::as_ptr));
                }
            }
        }
        // A large f32 weight is shared, not copied, when its memory is cache-line aligned (the
        // binary's allocator aligns large blocks; the test harness's may not), else copied.
        let t = Arc::new(Tensor::from_f32(&[256, 256], vec![0.25; 65536]));
        let aligned = tensor_byte_view(&t)
            .is_some_and(|b| (b.as_ptr() as usize).is_multiple_of(sparsec_runtime::SHARED_ALIGN));
        assert_eq!(weight_buf(&t).is_shared(), aligned);
        assert_eq!(Arc::strong_count(&t), 1);
        let w = weight_buf(&t);
        assert_eq!(Arc::strong_count(&t), if aligned { 2 } else { 1 });
        drop(w);
        assert_eq!(Arc::strong_count(&t), 1);
    }
}
