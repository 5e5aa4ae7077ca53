//! Tensor files: reading `.pb` (serialized ONNX `TensorProto`) and `.npy` files, writing `.pb`.
//!
//! The format is chosen by the file's magic bytes, not its extension. `.npy` files of format
//! versions 1.0, 2.0 and 3.0 are read for the little-endian element types of the IR; Fortran-order
//! arrays are transposed to row-major. Writing goes through a temporary file in the same folder
//! that is then renamed, so a reader never sees a half-written file.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use onnx_protobuf::{Message, TensorProto};
use sparsec_ir::tensor::strides;
use sparsec_ir::{DType, Tensor, TensorData, TensorError};
use thiserror::Error;

use crate::onnx::tensor_proto::{dtype_to_onnx, le_bytes_to_data, numel_of, tensor_from_proto};

/// The magic bytes that start every `.npy` file.
const NPY_MAGIC: &[u8] = b"\x93NUMPY";

/// Why a tensor file could not be read or written.
#[derive(Debug, Error)]
pub enum TensorIoError {
    /// The file could not be read or written.
    #[error("`{path}`: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid tensor file (truncated, garbage, inconsistent header).
    #[error("`{path}`: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The file is valid but holds something sparsec does not support (element type, byte order).
    #[error("`{path}`: unsupported: {reason}")]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// What is not supported.
        reason: String,
    },
}

/// Reads a tensor from a `.pb` (`TensorProto`) or `.npy` file, told apart by magic bytes. Returns
/// the `TensorProto`'s name when it has one (`.npy` files have none).
pub fn read_tensor(path: &Path) -> Result<(Option<String>, Tensor), TensorIoError> {
    let bytes = fs::read(path).map_err(|source| TensorIoError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if bytes.starts_with(NPY_MAGIC) {
        let t = parse_npy(&bytes).map_err(|e| e.at(path))?;
        return Ok((None, t));
    }
    let fmt = |reason: String| TensorIoError::Format {
        path: path.to_path_buf(),
        reason,
    };
    let proto = TensorProto::parse_from_bytes(&bytes)
        .map_err(|e| fmt(format!("not a TensorProto or .npy file: {e}")))?;
    if proto.dims.is_empty() && proto.data_type == 0 {
        return Err(fmt("not a TensorProto or .npy file: no element type".into()));
    }
    let base = path.parent().filter(|p| !p.as_os_str().is_empty());
    let t = tensor_from_proto(&proto, Some(base.unwrap_or(Path::new(".")))).map_err(|e| {
        if e.is_unsupported() {
            TensorIoError::Unsupported {
                path: path.to_path_buf(),
                reason: e.to_string(),
            }
        } else {
            fmt(e.to_string())
        }
    })?;
    let name = (!proto.name.is_empty()).then(|| proto.name.clone());
    Ok((name, t))
}

/// Builds a `TensorProto` holding `t` as little-endian `raw_data`.
pub fn tensor_to_proto(name: &str, t: &Tensor) -> TensorProto {
    let mut p = TensorProto::new();
    p.name = name.to_string();
    p.dims = t.shape().iter().map(|&d| d as i64).collect();
    p.data_type = dtype_to_onnx(t.dtype());
    p.raw_data = data_to_le_bytes(t.data());
    p
}

/// Writes `t` as a serialized `TensorProto` named `name`: to a temporary file in the same folder
/// first, then renamed over `path`.
pub fn write_tensor_pb(path: &Path, name: &str, t: &Tensor) -> Result<(), TensorIoError> {
    let io = |source: std::io::Error| TensorIoError::Io {
        path: path.to_path_buf(),
        source,
    };
    let bytes = tensor_to_proto(name, t)
        .write_to_bytes()
        .map_err(|e| TensorIoError::Format {
            path: path.to_path_buf(),
            reason: format!("cannot serialize: {e}"),
        })?;
    let file_name = path.file_name().ok_or_else(|| TensorIoError::Format {
        path: path.to_path_buf(),
        reason: "not a file path".into(),
    })?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        // Best effort: do not leave the temporary file behind.
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(io)
}

/// Little-endian bytes of tensor data (bool as one byte 0/1).
fn data_to_le_bytes(d: &TensorData) -> Vec<u8> {
    match d {
        TensorData::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        TensorData::F64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        TensorData::F16(v) => v.iter().flat_map(|x| x.to_bits().to_le_bytes()).collect(),
        TensorData::I64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        TensorData::I32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        TensorData::I8(v) => v.iter().map(|&x| x as u8).collect(),
        TensorData::U8(v) => v.clone(),
        TensorData::Bool(v) => v.iter().map(|&x| x as u8).collect(),
    }
}

/// An `.npy` parse failure before the file path is attached.
enum NpyError {
    Format(String),
    Unsupported(String),
}

impl NpyError {
    fn at(self, path: &Path) -> TensorIoError {
        match self {
            NpyError::Format(reason) => TensorIoError::Format {
                path: path.to_path_buf(),
                reason: format!("bad .npy file: {reason}"),
            },
            NpyError::Unsupported(reason) => TensorIoError::Unsupported {
                path: path.to_path_buf(),
                reason,
            },
        }
    }
}

/// Parses a whole `.npy` file.
fn parse_npy(bytes: &[u8]) -> Result<Tensor, NpyError> {
    let fmt = |s: &str| NpyError::Format(s.to_string());
    let major = *bytes.get(6).ok_or_else(|| fmt("truncated header"))?;
    let (header_len, header_start) = match major {
        1 => {
            let b = bytes.get(8..10).ok_or_else(|| fmt("truncated header"))?;
            (u16::from_le_bytes([b[0], b[1]]) as usize, 10usize)
        }
        2 | 3 => {
            let b = bytes.get(8..12).ok_or_else(|| fmt("truncated header"))?;
            (u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize, 12)
        }
        v => return Err(NpyError::Unsupported(format!(".npy format version {v}"))),
    };
    let header_end = header_start
        .checked_add(header_len)
        .ok_or_else(|| fmt("header length overflows"))?;
    let header = bytes
        .get(header_start..header_end)
        .ok_or_else(|| fmt("truncated header"))?;
    let header = std::str::from_utf8(header).map_err(|_| fmt("header is not text"))?;
    let h = parse_header(header).map_err(|e| NpyError::Format(format!("header: {e}")))?;
    let dtype = npy_dtype(&h.descr)?;
    let numel = numel_of(&h.shape).ok_or_else(|| fmt("shape overflows"))?;
    let nbytes = numel
        .checked_mul(dtype.size_bytes())
        .ok_or_else(|| fmt("shape overflows"))?;
    let body = &bytes[header_end..];
    if body.len() < nbytes {
        return Err(NpyError::Format(format!(
            "truncated data: {} bytes, shape {:?} of {} needs {nbytes}",
            body.len(),
            h.shape,
            h.descr
        )));
    }
    if body.len() > nbytes {
        return Err(NpyError::Format(format!(
            "{} bytes after the data of shape {:?}",
            body.len() - nbytes,
            h.shape
        )));
    }
    let data = le_bytes_to_data(dtype, body);
    let t = if h.fortran_order && h.shape.len() > 1 {
        from_fortran(&h.shape, data)
    } else {
        Tensor::new(h.shape, data)
    };
    t.map_err(|e| NpyError::Format(e.to_string()))
}

/// The fields of an `.npy` header.
struct NpyHeader {
    descr: String,
    fortran_order: bool,
    shape: Vec<usize>,
}

/// The IR element type of an `.npy` `descr`; big-endian and other types are unsupported.
fn npy_dtype(descr: &str) -> Result<DType, NpyError> {
    let (order, code) = descr.split_at(descr.len().min(1));
    let dtype = match code {
        "f4" => DType::F32,
        "f8" => DType::F64,
        "f2" => DType::F16,
        "i8" => DType::I64,
        "i4" => DType::I32,
        "i1" => DType::I8,
        "u1" => DType::U8,
        "b1" => DType::Bool,
        _ => {
            return Err(NpyError::Unsupported(format!(
                ".npy element type `{descr}`"
            )))
        }
    };
    let ok = match order {
        "<" => true,
        // Byte order does not matter for one-byte types.
        "|" | ">" | "=" => dtype.size_bytes() == 1,
        _ => false,
    };
    if !ok {
        let why = if order == ">" { "big-endian " } else { "" };
        return Err(NpyError::Unsupported(format!(
            "{why}.npy element type `{descr}`"
        )));
    }
    Ok(dtype)
}

/// Parses the Python dict literal of an `.npy` header, e.g.
/// `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`.
fn parse_header(text: &str) -> Result<NpyHeader, String> {
    let body = text
        .trim()
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .ok_or("not a dict literal")?;
    let mut descr = None;
    let mut fortran = None;
    let mut shape = None;
    let mut rest = body.trim_start();
    while !rest.is_empty() {
        let (key, after) = quoted(rest).ok_or("expected a quoted key")?;
        let after = after
            .trim_start()
            .strip_prefix(':')
            .ok_or("expected `:` after a key")?
            .trim_start();
        let after = match key {
            "descr" => {
                let (v, a) = quoted(after).ok_or("`descr` must be a string")?;
                descr = Some(v.to_string());
                a
            }
            "fortran_order" => {
                if let Some(a) = after.strip_prefix("True") {
                    fortran = Some(true);
                    a
                } else if let Some(a) = after.strip_prefix("False") {
                    fortran = Some(false);
                    a
                } else {
                    return Err("`fortran_order` must be True or False".into());
                }
            }
            "shape" => {
                let inner = after.strip_prefix('(').ok_or("`shape` must be a tuple")?;
                let close = inner.find(')').ok_or("unclosed `shape` tuple")?;
                let mut dims = Vec::new();
                for part in inner[..close].split(',') {
                    let part = part.trim().trim_end_matches('L');
                    if !part.is_empty() {
                        dims.push(
                            part.parse()
                                .map_err(|_| format!("bad dimension `{part}`"))?,
                        );
                    }
                }
                shape = Some(dims);
                &inner[close + 1..]
            }
            other => return Err(format!("unknown key `{other}`")),
        };
        let after = after.trim_start();
        rest = after.strip_prefix(',').unwrap_or(after).trim_start();
        if !rest.is_empty() && !after.starts_with(',') {
            return Err("expected `,` between entries".into());
        }
    }
    Ok(NpyHeader {
        descr: descr.ok_or("missing `descr`")?,
        fortran_order: fortran.ok_or("missing `fortran_order`")?,
        shape: shape.ok_or("missing `shape`")?,
    })
}

/// Splits a leading `'...'` or `"..."` string off `s`: returns its content and the rest.
fn quoted(s: &str) -> Option<(&str, &str)> {
    let q = s.chars().next().filter(|&c| c == '\'' || c == '"')?;
    let rest = &s[1..];
    let end = rest.find(q)?;
    Some((&rest[..end], &rest[end + 1..]))
}

/// Reorders column-major data of `shape` into a row-major tensor.
fn from_fortran(shape: &[usize], data: TensorData) -> Result<Tensor, TensorError> {
    let n = data.len();
    // Element at row-major multi-index `idx` sits at column-major offset sum(idx[k] * fstride[k]).
    let mut fstrides = vec![1usize; shape.len()];
    for k in 1..shape.len() {
        fstrides[k] = fstrides[k - 1] * shape[k - 1];
    }
    let cstrides = strides(shape);
    let src: Vec<usize> = (0..n)
        .map(|flat| {
            shape
                .iter()
                .zip(&cstrides)
                .zip(&fstrides)
                .map(|((&d, &cs), &fs)| (flat / cs % d) * fs)
                .sum()
        })
        .collect();
    macro_rules! gather {
        ($v:expr, $variant:ident) => {
            TensorData::$variant(src.iter().map(|&i| $v[i]).collect())
        };
    }
    let out = match &data {
        TensorData::F32(v) => gather!(v, F32),
        TensorData::F64(v) => gather!(v, F64),
        TensorData::F16(v) => gather!(v, F16),
        TensorData::I64(v) => gather!(v, I64),
        TensorData::I32(v) => gather!(v, I32),
        TensorData::I8(v) => gather!(v, I8),
        TensorData::U8(v) => gather!(v, U8),
        TensorData::Bool(v) => gather!(v, Bool),
    };
    Tensor::new(shape.to_vec(), out)
}
