//! Decoding ONNX `TensorProto` and `SparseTensorProto` messages into IR [`Tensor`]s.
//!
//! Handles every encoding ONNX writers use: little-endian `raw_data`, the typed repeated fields
//! (`float_data`, `int32_data`, `int64_data`, `double_data`) and external data files. Element
//! types outside the IR's set are an [`ImportError::UnsupportedDType`] naming the tensor. The
//! reverse direction (IR tensor to `TensorProto`) is `crate::tensor_io::tensor_to_proto`.

use std::path::Path;

use half::f16;
use onnx_protobuf::tensor_proto::DataLocation;
use onnx_protobuf::{SparseTensorProto, TensorProto};
use sparsec_ir::{DType, Tensor, TensorData};

use super::external;
use super::ImportError;

/// The largest dense tensor a sparse tensor may expand to (its dims are not backed by data, so
/// they are bounded before allocating).
const MAX_SPARSE_DENSE_BYTES: usize = 1 << 34;

/// ONNX `TensorProto.DataType` codes of the IR element types.
const FLOAT: i32 = 1;
const UINT8: i32 = 2;
const INT8: i32 = 3;
const INT32: i32 = 6;
const INT64: i32 = 7;
const BOOL: i32 = 9;
const FLOAT16: i32 = 10;
const DOUBLE: i32 = 11;

/// The IR element type of an ONNX `DataType` code, if the IR has it.
pub fn dtype_from_onnx(code: i32) -> Option<DType> {
    Some(match code {
        FLOAT => DType::F32,
        UINT8 => DType::U8,
        INT8 => DType::I8,
        INT32 => DType::I32,
        INT64 => DType::I64,
        BOOL => DType::Bool,
        FLOAT16 => DType::F16,
        DOUBLE => DType::F64,
        _ => return None,
    })
}

/// The ONNX `DataType` code of an IR element type.
pub fn dtype_to_onnx(dtype: DType) -> i32 {
    match dtype {
        DType::F32 => FLOAT,
        DType::U8 => UINT8,
        DType::I8 => INT8,
        DType::I32 => INT32,
        DType::I64 => INT64,
        DType::Bool => BOOL,
        DType::F16 => FLOAT16,
        DType::F64 => DOUBLE,
    }
}

/// The ONNX name of a `DataType` code (`float`, `string`, `bfloat16`, ...), for messages.
pub fn onnx_dtype_name(code: i32) -> String {
    let name = match code {
        0 => "undefined",
        FLOAT => "float",
        UINT8 => "uint8",
        INT8 => "int8",
        4 => "uint16",
        5 => "int16",
        INT32 => "int32",
        INT64 => "int64",
        8 => "string",
        BOOL => "bool",
        FLOAT16 => "float16",
        DOUBLE => "double",
        12 => "uint32",
        13 => "uint64",
        14 => "complex64",
        15 => "complex128",
        16 => "bfloat16",
        17 => "float8e4m3fn",
        18 => "float8e4m3fnuz",
        19 => "float8e5m2",
        20 => "float8e5m2fnuz",
        21 => "uint4",
        22 => "int4",
        23 => "float4e2m1",
        _ => return format!("with code {code}"),
    };
    name.to_string()
}

/// The IR element type of an ONNX code, or an unsupported-dtype error naming `what`.
pub(crate) fn dtype_or_err(code: i32, what: &str) -> Result<DType, ImportError> {
    if code == 0 {
        return Err(ImportError::Tensor {
            tensor: what.to_string(),
            reason: "no element type".into(),
        });
    }
    dtype_from_onnx(code).ok_or_else(|| ImportError::UnsupportedDType {
        tensor: what.to_string(),
        dtype: onnx_dtype_name(code),
    })
}

/// Decodes a `TensorProto` named by its own `name`. External data is read relative to
/// `base_dir`; without a base folder, external data is an error.
pub fn tensor_from_proto(p: &TensorProto, base_dir: Option<&Path>) -> Result<Tensor, ImportError> {
    let label = if p.name.is_empty() {
        "<unnamed>"
    } else {
        &p.name
    };
    decode_tensor(p, label, base_dir)
}

/// Decodes a `TensorProto`, naming it `label` in errors.
pub(crate) fn decode_tensor(
    p: &TensorProto,
    label: &str,
    base_dir: Option<&Path>,
) -> Result<Tensor, ImportError> {
    let err = |reason: String| ImportError::Tensor {
        tensor: label.to_string(),
        reason,
    };
    let dtype = dtype_or_err(p.data_type, label)?;
    if p.segment.is_some() {
        return Err(err("segmented tensors are not supported".into()));
    }
    let shape = dims_to_shape(&p.dims).map_err(err)?;
    let numel = numel_of(&shape).ok_or_else(|| err(format!("dims {:?} overflow", p.dims)))?;
    let external = p.data_location.value() == DataLocation::EXTERNAL as i32;
    let data = if external {
        let nbytes = numel
            .checked_mul(dtype.size_bytes())
            .ok_or_else(|| err(format!("dims {:?} overflow", p.dims)))?;
        let bytes = external::read(p, label, base_dir, nbytes)?;
        decode_raw(dtype, &bytes, numel).map_err(err)?
    } else if !p.raw_data.is_empty() {
        decode_raw(dtype, &p.raw_data, numel).map_err(err)?
    } else {
        decode_typed(p, dtype, numel).map_err(err)?
    };
    Tensor::new(shape, data).map_err(|e| err(e.to_string()))
}

/// Converts ONNX dims to a shape, rejecting negative sizes.
pub(crate) fn dims_to_shape(dims: &[i64]) -> Result<Vec<usize>, String> {
    dims.iter()
        .map(|&d| usize::try_from(d).map_err(|_| format!("negative dimension {d} in {dims:?}")))
        .collect()
}

/// The element count of a shape, `None` on overflow.
pub(crate) fn numel_of(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

/// Decodes little-endian bytes holding `numel` elements of `dtype`.
pub(crate) fn decode_raw(dtype: DType, bytes: &[u8], numel: usize) -> Result<TensorData, String> {
    let size = dtype.size_bytes();
    let expected = numel
        .checked_mul(size)
        .ok_or_else(|| "element count overflows".to_string())?;
    if bytes.len() != expected {
        return Err(format!(
            "data has {} bytes, dims need {expected} ({numel} elements of {dtype})",
            bytes.len()
        ));
    }
    Ok(le_bytes_to_data(dtype, bytes))
}

/// Decodes little-endian bytes whose length is a multiple of the element size.
pub(crate) fn le_bytes_to_data(dtype: DType, bytes: &[u8]) -> TensorData {
    macro_rules! chunks {
        ($t:ty, $n:expr) => {
            bytes
                .chunks_exact($n)
                .map(|c| {
                    let mut a = [0u8; $n];
                    a.copy_from_slice(c);
                    <$t>::from_le_bytes(a)
                })
                .collect()
        };
    }
    match dtype {
        DType::F32 => TensorData::F32(chunks!(f32, 4)),
        DType::F64 => TensorData::F64(chunks!(f64, 8)),
        DType::F16 => TensorData::F16(
            bytes
                .chunks_exact(2)
                .map(|c| f16::from_bits(u16::from_le_bytes([c[0], c[1]])))
                .collect(),
        ),
        DType::I64 => TensorData::I64(chunks!(i64, 8)),
        DType::I32 => TensorData::I32(chunks!(i32, 4)),
        DType::I8 => TensorData::I8(bytes.iter().map(|&b| b as i8).collect()),
        DType::U8 => TensorData::U8(bytes.to_vec()),
        DType::Bool => TensorData::Bool(bytes.iter().map(|&b| b != 0).collect()),
    }
}

/// Decodes the typed repeated field that holds `dtype` elements.
fn decode_typed(p: &TensorProto, dtype: DType, numel: usize) -> Result<TensorData, String> {
    let (field, len) = match dtype {
        DType::F32 => ("float_data", p.float_data.len()),
        DType::F64 => ("double_data", p.double_data.len()),
        DType::I64 => ("int64_data", p.int64_data.len()),
        _ => ("int32_data", p.int32_data.len()),
    };
    if len != numel {
        return Err(format!(
            "{field} has {len} elements, dims need {numel} ({dtype})"
        ));
    }
    let ints = &p.int32_data;
    Ok(match dtype {
        DType::F32 => TensorData::F32(p.float_data.clone()),
        DType::F64 => TensorData::F64(p.double_data.clone()),
        DType::I64 => TensorData::I64(p.int64_data.clone()),
        DType::I32 => TensorData::I32(ints.clone()),
        // Narrow types are stored one per int32; keep the low bits as ONNX writers do.
        DType::F16 => TensorData::F16(ints.iter().map(|&x| f16::from_bits(x as u16)).collect()),
        DType::I8 => TensorData::I8(ints.iter().map(|&x| x as i8).collect()),
        DType::U8 => TensorData::U8(ints.iter().map(|&x| x as u8).collect()),
        DType::Bool => TensorData::Bool(ints.iter().map(|&x| x != 0).collect()),
    })
}

/// Decodes a `SparseTensorProto` (COO values and indices) into a dense tensor; returns the
/// tensor's name (the name of its `values`) with it.
pub fn sparse_tensor_from_proto(
    p: &SparseTensorProto,
    base_dir: Option<&Path>,
) -> Result<(String, Tensor), ImportError> {
    let values = p.values.as_ref().ok_or_else(|| ImportError::Tensor {
        tensor: "<sparse>".into(),
        reason: "sparse tensor has no values".into(),
    })?;
    let name = values.name.clone();
    let t = decode_sparse(p, &name, base_dir)?;
    Ok((name, t))
}

/// Decodes a `SparseTensorProto`, naming it `label` in errors.
pub(crate) fn decode_sparse(
    p: &SparseTensorProto,
    label: &str,
    base_dir: Option<&Path>,
) -> Result<Tensor, ImportError> {
    let err = |reason: String| ImportError::Tensor {
        tensor: label.to_string(),
        reason,
    };
    let values = p
        .values
        .as_ref()
        .ok_or_else(|| err("sparse tensor has no values".into()))?;
    let values = decode_tensor(values, label, base_dir)?;
    let shape = dims_to_shape(&p.dims).map_err(err)?;
    let numel = numel_of(&shape).ok_or_else(|| err(format!("dims {:?} overflow", p.dims)))?;
    if numel.saturating_mul(values.dtype().size_bytes()) > MAX_SPARSE_DENSE_BYTES {
        return Err(err(format!(
            "sparse tensor of dims {:?} is too large to densify",
            p.dims
        )));
    }
    let nnz = values.numel();
    if values.rank() != 1 {
        return Err(err(format!(
            "sparse values must be 1-D, found shape {:?}",
            values.shape()
        )));
    }
    let linear: Vec<usize> = match p.indices.as_ref() {
        None if nnz == 0 => Vec::new(),
        None => return Err(err("sparse tensor has values but no indices".into())),
        Some(ip) => {
            let idx = decode_tensor(ip, label, base_dir)?;
            let ids = match idx.data() {
                TensorData::I64(v) => v.clone(),
                _ => {
                    return Err(err(format!(
                        "sparse indices must be int64, found {}",
                        idx.dtype()
                    )))
                }
            };
            linear_indices(&ids, idx.shape(), &shape, nnz).map_err(err)?
        }
    };
    let mut dense = TensorData::zeros(values.dtype(), numel);
    scatter(&mut dense, values.data(), &linear);
    Tensor::new(shape, dense).map_err(|e| err(e.to_string()))
}

/// Flat positions of the nonzeros from COO indices shaped `[nnz]` (already flat) or
/// `[nnz, rank]`, every one checked against `shape`.
fn linear_indices(
    ids: &[i64],
    idx_shape: &[usize],
    shape: &[usize],
    nnz: usize,
) -> Result<Vec<usize>, String> {
    let numel: usize = shape.iter().product();
    let check = |i: i64, bound: usize| -> Result<usize, String> {
        usize::try_from(i)
            .ok()
            .filter(|&u| u < bound)
            .ok_or_else(|| format!("sparse index {i} out of range 0..{bound}"))
    };
    match idx_shape {
        [n] if *n == nnz => ids.iter().map(|&i| check(i, numel)).collect(),
        [n, r] if *n == nnz && *r == shape.len() => {
            let strides = sparsec_ir::tensor::strides(shape);
            ids.chunks_exact(shape.len().max(1))
                .take(nnz)
                .map(|tuple| {
                    tuple
                        .iter()
                        .zip(shape.iter().zip(&strides))
                        .try_fold(0usize, |acc, (&i, (&d, &s))| Ok(acc + check(i, d)? * s))
                })
                .collect()
        }
        _ => Err(format!(
            "sparse indices have shape {idx_shape:?}, expected [{nnz}] or [{nnz}, {}]",
            shape.len()
        )),
    }
}

/// Writes `values[k]` at `dense[pos[k]]`.
fn scatter(dense: &mut TensorData, values: &TensorData, pos: &[usize]) {
    macro_rules! put {
        ($d:expr, $v:expr) => {
            for (&p, &x) in pos.iter().zip($v.iter()) {
                $d[p] = x;
            }
        };
    }
    match (dense, values) {
        (TensorData::F32(d), TensorData::F32(v)) => put!(d, v),
        (TensorData::F64(d), TensorData::F64(v)) => put!(d, v),
        (TensorData::F16(d), TensorData::F16(v)) => put!(d, v),
        (TensorData::I64(d), TensorData::I64(v)) => put!(d, v),
        (TensorData::I32(d), TensorData::I32(v)) => put!(d, v),
        (TensorData::I8(d), TensorData::I8(v)) => put!(d, v),
        (TensorData::U8(d), TensorData::U8(v)) => put!(d, v),
        (TensorData::Bool(d), TensorData::Bool(v)) => put!(d, v),
        // The dense storage is created with the values' element type.
        _ => {}
    }
}
