//! Weight data in a `.spx` body: a tensor to a [`WeightRecord`] (dense little-endian bytes, or CSR
//! for an `f32` weight with density below [`CSR_MAX_DENSITY`]) and back, checking every length and
//! index of the record so a damaged file gives an error instead of a wrong tensor or a panic.

use super::format::{CsrData, WeightPayload, WeightRecord};
use crate::onnx::tensor_proto::le_bytes_to_data;
use crate::tensor_io::data_to_le_bytes;
use sparsec_ir::sparsity::matrix_view;
use sparsec_ir::{DType, Tensor, TensorData};

/// A weight whose density (fraction of elements with nonzero bits) is below this is stored as CSR.
pub const CSR_MAX_DENSITY: f64 = 0.5;

/// The CSR form of an `f32` weight when it is sparse enough and its counts fit u32, else `None`.
fn csr(t: &Tensor) -> Option<CsrData> {
    let v = t.as_f32()?;
    let stored = v.iter().filter(|x| x.to_bits() != 0).count();
    if v.is_empty() || stored as f64 >= CSR_MAX_DENSITY * v.len() as f64 {
        return None;
    }
    u32::try_from(stored).ok()?;
    let (rows, cols) = matrix_view(t.shape());
    let col_bits = if cols <= 1 << 16 { 16 } else { 32 };
    let mut row_ptr = Vec::with_capacity((rows + 1) * 4);
    let mut col_idx = Vec::with_capacity(stored * col_bits / 8);
    let mut values = Vec::with_capacity(stored * 4);
    row_ptr.extend(0u32.to_le_bytes());
    let mut count = 0u32;
    for r in 0..rows {
        for (c, x) in v[r * cols..(r + 1) * cols].iter().enumerate() {
            if x.to_bits() != 0 {
                if col_bits == 16 {
                    col_idx.extend((c as u16).to_le_bytes());
                } else {
                    col_idx.extend(u32::try_from(c).ok()?.to_le_bytes());
                }
                values.extend(x.to_le_bytes());
                count += 1;
            }
        }
        row_ptr.extend(count.to_le_bytes());
    }
    Some(CsrData {
        row_ptr,
        col_bits: col_bits as u32,
        col_idx,
        values,
    })
}

/// The record of weight `id` (its printed id) named `name` holding `t`.
pub fn encode(id: &str, name: &str, t: &Tensor) -> WeightRecord {
    let payload = match csr(t) {
        Some(c) => WeightPayload::Csr(c),
        None => WeightPayload::Dense(data_to_le_bytes(t.data())),
    };
    WeightRecord {
        id: id.to_string(),
        name: name.to_string(),
        dtype: t.dtype().name().to_string(),
        shape: t.shape().iter().map(|&d| d as u64).collect(),
        payload: Some(payload),
    }
}

/// Reads little-endian u32 values (the caller checked the length is a multiple of 4).
fn u32s(bytes: &[u8]) -> impl Iterator<Item = u32> + '_ {
    bytes
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
}

/// Decodes a record into a tensor of `dtype` and `shape` (the graph text's type of the weight).
/// Errors say what disagrees, without the weight's name (the caller adds it).
pub fn decode(rec: WeightRecord, dtype: DType, shape: &[usize]) -> Result<Tensor, String> {
    if rec.dtype != dtype.name() {
        return Err(format!(
            "the data is {}, the graph text says {dtype}",
            rec.dtype
        ));
    }
    if rec.shape.len() != shape.len() || rec.shape.iter().zip(shape).any(|(&a, &b)| a != b as u64) {
        return Err(format!(
            "the data has shape {:?}, the graph text says {shape:?}",
            rec.shape
        ));
    }
    let numel = shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or("its element count overflows")?;
    let data = match rec.payload {
        None => return Err("the record holds no data".into()),
        Some(WeightPayload::Dense(bytes)) => {
            if Some(bytes.len()) != numel.checked_mul(dtype.size_bytes()) {
                return Err(format!(
                    "{} data bytes for {numel} {dtype} elements",
                    bytes.len()
                ));
            }
            le_bytes_to_data(dtype, &bytes)
        }
        Some(WeightPayload::Csr(c)) => {
            if dtype != DType::F32 {
                return Err(format!(
                    "CSR data for a {dtype} weight (only f32 is stored as CSR)"
                ));
            }
            TensorData::F32(decode_csr(&c, shape, numel)?)
        }
    };
    Tensor::new(shape.to_vec(), data).map_err(|e| e.to_string())
}

/// The dense elements of a CSR record, every offset and index checked.
fn decode_csr(c: &CsrData, shape: &[usize], numel: usize) -> Result<Vec<f32>, String> {
    let (rows, cols) = matrix_view(shape);
    let width = match c.col_bits {
        16 => 2,
        32 => 4,
        b => {
            return Err(format!(
                "CSR column indices of {b} bits (expected 16 or 32)"
            ))
        }
    };
    if c.row_ptr.len() != (rows + 1) * 4 {
        return Err(format!(
            "CSR row offsets of {} bytes for {rows} rows",
            c.row_ptr.len()
        ));
    }
    if !c.values.len().is_multiple_of(4) {
        return Err(format!("CSR values of {} bytes", c.values.len()));
    }
    let nnz = c.values.len() / 4;
    if c.col_idx.len() != nnz * width {
        return Err(format!(
            "{} CSR column-index bytes for {nnz} values",
            c.col_idx.len()
        ));
    }
    let cols_of = |k: usize| -> usize {
        let b = &c.col_idx[k * width..(k + 1) * width];
        if width == 2 {
            u16::from_le_bytes([b[0], b[1]]) as usize
        } else {
            u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize
        }
    };
    let ptr: Vec<usize> = u32s(&c.row_ptr).map(|p| p as usize).collect();
    if ptr[0] != 0 || ptr[rows] != nnz || ptr.windows(2).any(|w| w[0] > w[1]) {
        return Err(format!(
            "CSR row offsets are not increasing from 0 to the {nnz} values"
        ));
    }
    let vals: Vec<f32> = u32s(&c.values).map(f32::from_bits).collect();
    let mut out = vec![0f32; numel];
    for r in 0..rows {
        for (k, &x) in vals.iter().enumerate().take(ptr[r + 1]).skip(ptr[r]) {
            let col = cols_of(k);
            if col >= cols {
                return Err(format!(
                    "CSR column index {col} in row {r} is out of range (the weight has {cols} columns)"
                ));
            }
            out[r * cols + col] = x;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_f32_goes_csr_and_comes_back_bit_exact() {
        let mut v = vec![0f32; 6 * 5];
        v[3] = 1.5;
        v[7] = -0.0;
        v[29] = f32::NAN;
        let t = Tensor::from_f32(&[6, 5], v.clone());
        let rec = encode("@w0", "w", &t);
        assert!(matches!(rec.payload, Some(WeightPayload::Csr(_))));
        let back = decode(rec, DType::F32, &[6, 5]).unwrap();
        let bits =
            |t: &Tensor| -> Vec<u32> { t.as_f32().unwrap().iter().map(|x| x.to_bits()).collect() };
        assert_eq!(bits(&back), bits(&t));
    }

    #[test]
    fn dense_and_other_dtypes_round_trip() {
        let t = Tensor::from_i64(&[3], vec![1, -2, 3]);
        let rec = encode("@w0", "", &t);
        assert!(matches!(rec.payload, Some(WeightPayload::Dense(_))));
        assert_eq!(decode(rec, DType::I64, &[3]).unwrap(), t);
        let d = Tensor::from_f32(&[2, 2], vec![1.0, 2.0, 0.0, 4.0]);
        assert_eq!(
            decode(encode("@w1", "", &d), DType::F32, &[2, 2]).unwrap(),
            d
        );
    }

    #[test]
    fn bad_records_are_errors() {
        let t = Tensor::from_f32(&[4, 4], vec![0.0; 16]);
        assert!(decode(encode("@w0", "", &t), DType::F32, &[4, 5]).is_err());
        assert!(decode(encode("@w0", "", &t), DType::I64, &[4, 4]).is_err());
        let mut one = vec![0.0; 16];
        one[5] = 1.0;
        let mut rec = encode("@w0", "", &Tensor::from_f32(&[4, 4], one));
        if let Some(WeightPayload::Csr(c)) = &mut rec.payload {
            c.col_idx[0] = 9;
        }
        let err = decode(rec, DType::F32, &[4, 4]).unwrap_err();
        assert!(err.contains("column index 9"), "{err}");
    }
}
