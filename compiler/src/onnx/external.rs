//! Reading a tensor's external data file, confined to the model's folder.
//!
//! ONNX tensors with `data_location = EXTERNAL` name a file (`location`) and a byte range
//! (`offset`, `length`). The file must lie inside the model's folder: absolute locations, `..`
//! components and symlinks that resolve outside the folder are rejected, and the byte range is
//! checked against the file size before anything is read.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};

use onnx_protobuf::TensorProto;

use super::ImportError;

/// Reads the `nbytes` bytes of external data of `p` (named `label` in errors) from `base_dir`.
pub(crate) fn read(
    p: &TensorProto,
    label: &str,
    base_dir: Option<&Path>,
    nbytes: usize,
) -> Result<Vec<u8>, ImportError> {
    let err = |reason: String| ImportError::ExternalData {
        tensor: label.to_string(),
        reason,
    };
    let mut location = None;
    let mut offset = 0u64;
    let mut length = None;
    for kv in &p.external_data {
        match kv.key.as_str() {
            "location" => location = Some(kv.value.as_str()),
            "offset" => {
                offset = kv
                    .value
                    .parse()
                    .map_err(|_| err(format!("bad offset `{}`", kv.value)))?
            }
            "length" => {
                length = Some(
                    kv.value
                        .parse::<u64>()
                        .map_err(|_| err(format!("bad length `{}`", kv.value)))?,
                )
            }
            _ => {}
        }
    }
    let location = location.ok_or_else(|| err("no location given".into()))?;
    let base = base_dir.ok_or_else(|| {
        err("the model was loaded from bytes without a folder to read it from".into())
    })?;
    let path = confined_path(base, location).map_err(err)?;
    let mut file = File::open(&path).map_err(|e| err(format!("cannot open `{location}`: {e}")))?;
    let size = file
        .metadata()
        .map_err(|e| err(format!("cannot stat `{location}`: {e}")))?
        .len();
    if offset > size {
        return Err(err(format!(
            "offset {offset} is past the end of `{location}` ({size} bytes)"
        )));
    }
    let length = length.unwrap_or(size - offset);
    if offset.checked_add(length).is_none_or(|end| end > size) {
        return Err(err(format!(
            "range {offset}+{length} is past the end of `{location}` ({size} bytes)"
        )));
    }
    if length != nbytes as u64 {
        return Err(err(format!(
            "`{location}` range holds {length} bytes, dims need {nbytes}"
        )));
    }
    file.seek(SeekFrom::Start(offset))
        .map_err(|e| err(format!("cannot seek in `{location}`: {e}")))?;
    let mut buf = vec![0u8; nbytes];
    file.read_exact(&mut buf)
        .map_err(|e| err(format!("cannot read `{location}`: {e}")))?;
    Ok(buf)
}

/// Resolves `location` inside `base`, rejecting anything that could leave it.
fn confined_path(base: &Path, location: &str) -> Result<PathBuf, String> {
    let rel = Path::new(location);
    if location.is_empty() {
        return Err("empty location".into());
    }
    for c in rel.components() {
        match c {
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir => {
                return Err(format!(
                    "location `{location}` escapes the model folder (`..`)"
                ))
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!("location `{location}` is absolute"))
            }
        }
    }
    let base = base
        .canonicalize()
        .map_err(|e| format!("cannot resolve the model folder: {e}"))?;
    let full = base
        .join(rel)
        .canonicalize()
        .map_err(|e| format!("cannot open `{location}`: {e}"))?;
    if !full.starts_with(&base) {
        return Err(format!(
            "location `{location}` resolves outside the model folder"
        ));
    }
    if !full.is_file() {
        return Err(format!("location `{location}` is not a file"));
    }
    Ok(full)
}
