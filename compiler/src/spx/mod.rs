//! `.spx`: sparsec's minimal compiled-model artifact, its writer and its reader.
//!
//! A file is a fixed header (magic bytes, format version, body length, checksum; see [`format`])
//! and one prost message: the producer's version, the graph in sparsec's IR text form (weights
//! print as statistics), the data of every weight in the order the text numbers them (dense
//! little-endian bytes, or CSR when an `f32` weight's density is below
//! [`weights::CSR_MAX_DENSITY`]) and per-layer layout notes. The reader parses the text, checks
//! each weight's data against the type and nonzero count the text states and attaches it, so what
//! it returns prints and runs exactly as the graph that was written.

pub mod format;
pub mod weights;

pub use format::{LayerNote, FORMAT_VERSION, MAGIC};

use format::{HeaderError, SpxModel};
use prost::Message;
use sparsec_ir::{Dim, Graph, Numbering, SparsityFacts, ValueDef, Weight};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use thiserror::Error;

/// Why a `.spx` file could not be written or read.
#[derive(Debug, Error)]
pub enum SpxError {
    /// The file system failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The failure.
        source: std::io::Error,
    },
    /// The file does not start with [`MAGIC`].
    #[error("{path}: not a sparsec .spx file (wrong magic bytes)")]
    NotSpx {
        /// The file.
        path: String,
    },
    /// The file ends early.
    #[error("{path}: truncated .spx file: {detail}")]
    Truncated {
        /// The file.
        path: String,
        /// What is missing.
        detail: String,
    },
    /// The file was written by a newer sparsec.
    #[error("{path}: .spx format version {found} is not supported (this sparsec reads versions 1 to {FORMAT_VERSION}); compile the model again with this sparsec")]
    Version {
        /// The file.
        path: String,
        /// The version in its header.
        found: u32,
    },
    /// The file is damaged or inconsistent.
    #[error("{path}: corrupt .spx file: {detail}")]
    Corrupt {
        /// The file.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// A weight's data disagrees with the graph text or is malformed.
    #[error("{path}: weight {weight}: {detail}")]
    Weight {
        /// The file.
        path: String,
        /// The weight's printed id and name.
        weight: String,
        /// What is wrong.
        detail: String,
    },
    /// A weight of the graph to write has no data.
    #[error("weight {weight} has no data to write")]
    NoData {
        /// The weight's printed id and name.
        weight: String,
    },
    /// A `--dim` binding names no symbolic dimension of the graph's inputs.
    #[error("--dim {name}: no graph input has a symbolic dimension `{name}`")]
    UnknownDim {
        /// The dimension name.
        name: String,
    },
}

/// What [`write`] wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct WriteSummary {
    /// Bytes of the whole file.
    pub file_bytes: u64,
    /// Weights stored dense.
    pub dense_weights: usize,
    /// Weights stored as CSR.
    pub csr_weights: usize,
}

/// A decoded `.spx` file.
#[derive(Debug)]
pub struct SpxContents {
    /// The graph with every weight's data attached.
    pub graph: Graph,
    /// The program that wrote the file.
    pub producer: String,
    /// Per-layer layout notes.
    pub notes: Vec<LayerNote>,
}

/// This build's producer string.
pub fn producer() -> String {
    format!("sparsec {}", env!("CARGO_PKG_VERSION"))
}

/// `@w3 "name"` for messages.
fn label(id: &str, name: &str) -> String {
    if name.is_empty() {
        id.to_string()
    } else {
        format!("{id} `{name}`")
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> SpxError + '_ {
    move |source| SpxError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The encoded file (header and body) of `graph` with `notes`.
pub fn encode(graph: &Graph, notes: &[LayerNote]) -> Result<(Vec<u8>, WriteSummary), SpxError> {
    let num = Numbering::new(graph);
    let mut model = SpxModel {
        producer: producer(),
        graph_text: sparsec_ir::print(graph),
        weights: Vec::with_capacity(num.weights().len()),
        notes: notes.to_vec(),
    };
    let (mut dense_weights, mut csr_weights) = (0, 0);
    for &w in num.weights() {
        let id = num.value(w);
        let name = &graph.value(w).name;
        let data = graph.const_data(w).ok_or_else(|| SpxError::NoData {
            weight: label(id, name),
        })?;
        let rec = weights::encode(id, name, data);
        match rec.payload {
            Some(format::WeightPayload::Csr(_)) => csr_weights += 1,
            _ => dense_weights += 1,
        }
        model.weights.push(rec);
    }
    let body = model.encode_to_vec();
    drop(model);
    let mut file = Vec::with_capacity(format::HEADER_LEN + body.len());
    file.extend_from_slice(&format::header(&body));
    file.extend_from_slice(&body);
    let summary = WriteSummary {
        file_bytes: file.len() as u64,
        dense_weights,
        csr_weights,
    };
    Ok((file, summary))
}

/// Writes `graph` (every weight must hold data) and `notes` to `path`: to a temporary file in the
/// same folder first, renamed over `path` only once it is complete, so an existing file is
/// replaced atomically and only on success.
pub fn write(graph: &Graph, notes: &[LayerNote], path: &Path) -> Result<WriteSummary, SpxError> {
    let (bytes, summary) = encode(graph, notes)?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out.spx".into());
    let tmp = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_err(path)(e));
    }
    Ok(summary)
}

/// True when the file at `path` starts with [`MAGIC`] (false for a shorter or other file).
pub fn is_spx(path: &Path) -> Result<bool, SpxError> {
    let mut f = std::fs::File::open(path).map_err(io_err(path))?;
    let mut head = [0u8; 8];
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]).map_err(io_err(path))? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n == head.len() && head == MAGIC)
}

/// Reads a `.spx` file into a graph with every weight's data attached.
pub fn read(path: &Path) -> Result<Graph, SpxError> {
    Ok(read_contents(path)?.graph)
}

/// Reads a `.spx` file: the graph, its producer and its layout notes.
pub fn read_contents(path: &Path) -> Result<SpxContents, SpxError> {
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    decode(&bytes, &path.display().to_string())
}

/// Decodes the bytes of a `.spx` file; `path` names it in errors.
pub fn decode(bytes: &[u8], path: &str) -> Result<SpxContents, SpxError> {
    let p = || path.to_string();
    let body = format::split(bytes).map_err(|e| match e {
        HeaderError::NotSpx => SpxError::NotSpx { path: p() },
        HeaderError::Truncated(detail) => SpxError::Truncated { path: p(), detail },
        HeaderError::Version(found) => SpxError::Version { path: p(), found },
        HeaderError::Corrupt(detail) => SpxError::Corrupt { path: p(), detail },
    })?;
    let model = SpxModel::decode(body).map_err(|e| SpxError::Corrupt {
        path: p(),
        detail: format!("cannot decode the body: {e}"),
    })?;
    let mut graph = sparsec_ir::parse(&model.graph_text).map_err(|e| SpxError::Corrupt {
        path: p(),
        detail: format!("the graph text does not parse: {e}"),
    })?;
    attach(&mut graph, model.weights, path)?;
    Ok(SpxContents {
        graph,
        producer: model.producer,
        notes: model.notes,
    })
}

/// Attaches each record's data to the weight the text numbers the same, checking its id, type,
/// shape and sparsity facts against the text.
fn attach(
    graph: &mut Graph,
    records: Vec<format::WeightRecord>,
    path: &str,
) -> Result<(), SpxError> {
    let num = Numbering::new(graph);
    if records.len() != num.weights().len() {
        return Err(SpxError::Corrupt {
            path: path.to_string(),
            detail: format!(
                "{} weight records for the {} weights of the graph text",
                records.len(),
                num.weights().len()
            ),
        });
    }
    for (&w, rec) in num.weights().iter().zip(records) {
        let id = num.value(w).to_string();
        let value = graph.value(w);
        let wrong = |detail: String| SpxError::Weight {
            path: path.to_string(),
            weight: label(&id, &value.name),
            detail,
        };
        if rec.id != id || rec.name != value.name {
            return Err(wrong(format!(
                "the data is of {}, out of step with the graph text",
                label(&rec.id, &rec.name)
            )));
        }
        let shape: Option<Vec<usize>> = value
            .ty
            .dims
            .iter()
            .map(|d| match d {
                Dim::Known(n) => Some(*n),
                Dim::Sym(_) => None,
            })
            .collect();
        let shape = shape.ok_or_else(|| wrong("its type has a symbolic dimension".into()))?;
        let tensor = weights::decode(rec, value.ty.dtype, &shape).map_err(&wrong)?;
        let facts = SparsityFacts::compute(&tensor);
        let stated = match &value.def {
            ValueDef::Weight(w) => w.facts,
            _ => {
                return Err(wrong(
                    "the graph text does not define it as a weight".into(),
                ))
            }
        };
        if facts != stated {
            return Err(wrong(format!(
                "the data has {} nonzeros ({} zero rows, pattern {}), the graph text states {} ({} zero rows, pattern {})",
                facts.nnz, facts.zero_rows, facts.pattern, stated.nnz, stated.zero_rows, stated.pattern
            )));
        }
        graph.value_mut(w).def = ValueDef::Weight(Weight {
            data: Some(Arc::new(tensor)),
            facts,
        });
    }
    Ok(())
}

/// Binds symbolic dimensions of the graph's inputs (`--dim batch=8`); the shape-inference pass
/// then carries them through the graph.
pub fn bind_dims(graph: &mut Graph, dims: &BTreeMap<String, usize>) -> Result<(), SpxError> {
    let mut used = BTreeSet::new();
    for v in graph.inputs().to_vec() {
        for d in &mut graph.value_mut(v).ty.dims {
            if let Dim::Sym(s) = d {
                if let Some(&n) = dims.get(s.as_str()) {
                    used.insert(s.clone());
                    *d = Dim::Known(n);
                }
            }
        }
    }
    match dims.keys().find(|k| !used.contains(*k)) {
        Some(name) => Err(SpxError::UnknownDim { name: name.clone() }),
        None => Ok(()),
    }
}
