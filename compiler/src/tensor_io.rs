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

impl TensorIoError {
    /// True when the file is valid but holds something sparsec does not support.
    pub fn is_unsupported(&self) -> bool {
        matches!(self, TensorIoError::Unsupported { .. })
    }
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
    if proto.data_type == 0 {
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

/// Little-endian bytes of tensor data (`bool` as one byte 0/1, `f16` as its bits).
pub(crate) fn data_to_le_bytes(d: &TensorData) -> Vec<u8> {
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
    let mut chars = descr.chars();
    let order = chars.next().unwrap_or(' ');
    let code = chars.as_str();
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
        '<' => true,
        // Byte order does not matter for one-byte types.
        '|' | '>' | '=' => dtype.size_bytes() == 1,
        _ => false,
    };
    if !ok {
        let why = if order == '>' { "big-endian " } else { "" };
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

#[cfg(test)]
mod tests {
    use super::*;
    use half::f16;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fresh scratch folder.
    fn scratch() -> PathBuf {
        static N: AtomicUsize = AtomicUsize::new(0);
        let d = std::env::temp_dir().join(format!(
            "sparsec-tensor-io-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).expect("scratch folder");
        d
    }

    /// An `.npy` file: magic, version, padded header, data.
    fn npy(major: u8, header: &str, data: &[u8]) -> Vec<u8> {
        let mut h = header.to_string();
        let prefix = if major == 1 { 10 } else { 12 };
        while !(prefix + h.len() + 1).is_multiple_of(64) {
            h.push(' ');
        }
        h.push('\n');
        let mut out = NPY_MAGIC.to_vec();
        out.extend([major, 0]);
        if major == 1 {
            out.extend((h.len() as u16).to_le_bytes());
        } else {
            out.extend((h.len() as u32).to_le_bytes());
        }
        out.extend(h.as_bytes());
        out.extend(data);
        out
    }

    fn read_bytes(
        dir: &Path,
        file: &str,
        bytes: &[u8],
    ) -> Result<(Option<String>, Tensor), TensorIoError> {
        let p = dir.join(file);
        fs::write(&p, bytes).expect("write test file");
        read_tensor(&p)
    }

    #[test]
    fn pb_round_trip_of_every_dtype() {
        let dir = scratch();
        let tensors = [
            Tensor::from_f32(&[2, 2], vec![1.0, -2.5, 0.0, f32::MAX]),
            Tensor::new(vec![3], TensorData::F64(vec![0.1, -1e300, 7.0])).unwrap(),
            Tensor::new(
                vec![2],
                TensorData::F16(vec![f16::from_f32(1.5), f16::from_f32(-0.25)]),
            )
            .unwrap(),
            Tensor::from_i64(&[], vec![-(1 << 50)]),
            Tensor::new(vec![2], TensorData::I32(vec![i32::MIN, 4])).unwrap(),
            Tensor::new(vec![2], TensorData::I8(vec![-128, 127])).unwrap(),
            Tensor::new(vec![1, 2], TensorData::U8(vec![0, 255])).unwrap(),
            Tensor::from_bool(&[3], vec![true, false, true]),
            Tensor::zeros(DType::F32, &[0, 4]),
        ];
        for (i, t) in tensors.iter().enumerate() {
            let p = dir.join(format!("t{i}.pb"));
            write_tensor_pb(&p, "my_tensor", t).unwrap();
            let (name, back) = read_tensor(&p).unwrap();
            assert_eq!(name.as_deref(), Some("my_tensor"));
            assert_eq!(&back, t);
        }
        // Only the written files are left: the temporary files were renamed.
        assert_eq!(fs::read_dir(&dir).unwrap().count(), tensors.len());
        // An unnamed tensor reads back without a name.
        let p = dir.join("unnamed.pb");
        write_tensor_pb(&p, "", &tensors[0]).unwrap();
        assert_eq!(read_tensor(&p).unwrap().0, None);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn proto_encoding_is_little_endian_raw_data() {
        let p = tensor_to_proto("w", &Tensor::from_i64(&[2], vec![1, -1]));
        assert_eq!(p.data_type, 7);
        assert_eq!(p.dims, vec![2]);
        assert_eq!(&p.raw_data[..8], &1i64.to_le_bytes());
        assert_eq!(&p.raw_data[8..], &(-1i64).to_le_bytes());
    }

    #[test]
    fn npy_f32_i64_bool_and_one_byte_types() {
        let dir = scratch();
        let f: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let h = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
        let (name, t) = read_bytes(&dir, "a.npy", &npy(1, h, &f)).unwrap();
        assert_eq!(name, None);
        assert_eq!(
            t,
            Tensor::from_f32(&[2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
        );

        let i: Vec<u8> = [7i64, -8].iter().flat_map(|x| x.to_le_bytes()).collect();
        let h = "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }";
        let (_, t) = read_bytes(&dir, "b.npy", &npy(2, h, &i)).unwrap();
        assert_eq!(t, Tensor::from_i64(&[2], vec![7, -8]));

        let h = "{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }";
        let (_, t) = read_bytes(&dir, "c.npy", &npy(3, h, &[1, 0, 1])).unwrap();
        assert_eq!(t, Tensor::from_bool(&[3], vec![true, false, true]));

        let h = "{'descr': '<u1', 'fortran_order': False, 'shape': (), }";
        let (_, t) = read_bytes(&dir, "d.npy", &npy(1, h, &[200])).unwrap();
        assert_eq!(t.data(), &TensorData::U8(vec![200]));
        assert_eq!(t.shape(), &[] as &[usize]);

        let h = "{'descr': '|i1', 'fortran_order': False, 'shape': (1, 1), }";
        let (_, t) = read_bytes(&dir, "e.npy", &npy(1, h, &[0xfe])).unwrap();
        assert_eq!(t.data(), &TensorData::I8(vec![-2]));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn npy_fortran_order_is_transposed() {
        let dir = scratch();
        // The 2x3 matrix [[1,2,3],[4,5,6]] stored column by column.
        let f: Vec<u8> = [1i32, 4, 2, 5, 3, 6]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let h = "{'descr': '<i4', 'fortran_order': True, 'shape': (2, 3), }";
        let (_, t) = read_bytes(&dir, "f.npy", &npy(1, h, &f)).unwrap();
        assert_eq!(t.shape(), &[2, 3]);
        assert_eq!(t.to_i64_vec(), vec![1, 2, 3, 4, 5, 6]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn npy_errors_name_the_file() {
        let dir = scratch();
        let ok = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
        let cases: Vec<(&str, Vec<u8>, &str, bool)> = vec![
            (
                "trunc_data.npy",
                npy(1, ok, &[0; 7]),
                "truncated data",
                false,
            ),
            ("extra.npy", npy(1, ok, &[0; 9]), "after the data", false),
            (
                "trunc_header.npy",
                npy(1, ok, &[])[..20].to_vec(),
                "truncated header",
                false,
            ),
            ("short.npy", NPY_MAGIC.to_vec(), "truncated header", false),
            (
                "big.npy",
                npy(
                    1,
                    "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }",
                    &[0; 8],
                ),
                "big-endian",
                true,
            ),
            (
                "complex.npy",
                npy(
                    1,
                    "{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }",
                    &[0; 8],
                ),
                "<c8",
                true,
            ),
            ("version.npy", npy(9, ok, &[0; 8]), "version 9", true),
            (
                "utf8.npy",
                npy(
                    3,
                    "{'descr': 'éf4', 'fortran_order': False, 'shape': (1,), }",
                    &[0; 4],
                ),
                "éf4",
                true,
            ),
            (
                "garbage_header.npy",
                npy(1, "{'descr': <f4}", &[]),
                "header",
                false,
            ),
        ];
        for (file, bytes, why, unsupported) in cases {
            let e = read_bytes(&dir, file, &bytes).unwrap_err();
            let msg = e.to_string();
            assert!(
                msg.contains(file) && msg.contains(why),
                "{file}: `{msg}` should say `{why}`"
            );
            assert_eq!(
                matches!(e, TensorIoError::Unsupported { .. }),
                unsupported,
                "{msg}"
            );
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn pb_errors_name_the_file() {
        let dir = scratch();
        let t = Tensor::from_f32(&[4], vec![1.0, 2.0, 3.0, 4.0]);
        let p = dir.join("full.pb");
        write_tensor_pb(&p, "t", &t).unwrap();
        let bytes = fs::read(&p).unwrap();
        let e = read_bytes(&dir, "cut.pb", &bytes[..bytes.len() - 3]).unwrap_err();
        assert!(matches!(e, TensorIoError::Format { .. }), "{e}");
        assert!(e.to_string().contains("cut.pb"), "{e}");

        let e = read_bytes(&dir, "text.pb", b"this is not a tensor\n").unwrap_err();
        assert!(e.to_string().contains("text.pb"), "{e}");
        let e = read_bytes(&dir, "empty.pb", b"").unwrap_err();
        assert!(e.to_string().contains("empty.pb"), "{e}");

        let mut proto = tensor_to_proto("s", &t);
        proto.data_type = 8;
        let e = read_bytes(&dir, "string.pb", &proto.write_to_bytes().unwrap()).unwrap_err();
        assert!(matches!(e, TensorIoError::Unsupported { .. }), "{e}");

        let e = read_tensor(&dir.join("missing.pb")).unwrap_err();
        assert!(matches!(e, TensorIoError::Io { .. }), "{e}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
