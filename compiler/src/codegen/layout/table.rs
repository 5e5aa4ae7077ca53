//! The table of measured kernel throughputs the cost model reads: dense GEMM speed as a function
//! of the dense dimension `n` (for matrix products and convolutions) and, per sparse layout, the
//! cost of a stored value and of a row at batch 1 and at batch > 1.
//!
//! `sparsec tune` measures a table on the machine and writes it as JSON; [`CostTable::load`] reads
//! it from `$SPARSEC_TUNE` or the user cache (`$XDG_CACHE_HOME/sparsec/tune.json`, else
//! `~/.cache/sparsec/tune.json`), and [`CostTable::builtin`] is the default when there is none.

use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Why a table could not be read or written.
#[derive(Debug, Error)]
pub enum TableError {
    /// The file could not be read or written.
    #[error("cost table {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a cost table.
    #[error("cost table {path}: {msg}")]
    Format {
        /// The file (or `<json>` for text).
        path: String,
        /// What is wrong.
        msg: String,
    },
}

/// Costs of one sparse kernel family (all times in nanoseconds, one thread).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SparseCost {
    /// Batch 1: time per byte of the packing streamed (the inverse of the bandwidth).
    pub b1_ns_per_byte: f64,
    /// Batch 1: time per output row (loop overhead, the store).
    pub b1_ns_per_row: f64,
    /// Batch > 1: time per stored value per `f32x4` vector of batch columns.
    pub ns_per_stored_vec: f64,
    /// Batch > 1: time per output row per `f32x4` vector of batch columns.
    pub ns_per_row_vec: f64,
    /// Fixed time per call (dispatch, unit table).
    pub fixed_ns: f64,
}

/// Measured throughputs of the dense and sparse kernels on one machine.
#[derive(Clone, Debug, PartialEq)]
pub struct CostTable {
    /// Dense matrix product speed: `(n, GFLOP/s)` points sorted by `n`, interpolated in `log n`.
    pub dense_matmul: Vec<(usize, f64)>,
    /// Dense convolution (im2col + GEMM) speed: `(n = batch x output pixels, GFLOP/s)` points.
    pub dense_conv: Vec<(usize, f64)>,
    /// Fixed time of a dense product call in nanoseconds.
    pub dense_fixed_ns: f64,
    /// Time per byte of a dense weight streamed from memory (a matrix-vector product over a
    /// weight larger than the cache).
    pub dense_ns_per_byte: f64,
    /// Bytes of weights that stay in the cache between runs (the last-level cache).
    pub cache_bytes: f64,
    /// CSR loops (u16 or u32 indices).
    pub csr: SparseCost,
    /// Pattern-baked CSR.
    pub csr_baked: SparseCost,
    /// Block-sparse rows (any block shape; its explicit zeros count as stored values).
    pub bsr: SparseCost,
    /// 2:4 compressed.
    pub nm24: SparseCost,
    /// The `X -> X^T` step before a batch > 1 product: time per element.
    pub transpose_ns_per_elem: f64,
    /// The sparse convolution (`sparse::lower_sparse_conv`): its batch > 1 fields are per stored
    /// value and per output channel, per `f32x4` vector of output pixels; the batch-1 fields are
    /// unused.
    pub sparse_conv: SparseCost,
    /// The sparse convolution's copy of a padded or strided input into its planes: time per
    /// input element.
    pub conv_copy_ns_per_elem: f64,
}

impl CostTable {
    /// The built-in table, for machines that were never tuned: `sparsec tune` (full) on the
    /// development machine (AMD Zen 3, AVX2 + FMA, 32 MiB L3, one thread) while it was otherwise
    /// idle, rounded.
    pub fn builtin() -> CostTable {
        let cost = |b1_ns_per_byte, b1_ns_per_row, ns_per_stored_vec, ns_per_row_vec, fixed_ns| {
            SparseCost {
                b1_ns_per_byte,
                b1_ns_per_row,
                ns_per_stored_vec,
                ns_per_row_vec,
                fixed_ns,
            }
        };
        CostTable {
            dense_matmul: vec![(1, 38.6), (4, 6.3), (16, 20.9), (64, 43.5), (256, 67.5)],
            dense_conv: vec![(64, 69.3), (1024, 78.3), (4096, 45.8)],
            dense_fixed_ns: 60.0,
            dense_ns_per_byte: 0.092,
            cache_bytes: 32.0 * 1048576.0,
            csr: cost(0.055, 7.5, 0.382, 4.21, 70.0),
            csr_baked: cost(0.855, 0.0001, 0.661, 0.0001, 70.0),
            bsr: cost(0.0516, 2.99, 0.242, 2.24, 70.0),
            nm24: cost(0.108, 0.0001, 0.267, 0.0001, 70.0),
            transpose_ns_per_elem: 0.463,
            sparse_conv: cost(0.059, 1.3, 0.299, 0.0001, 200.0),
            conv_copy_ns_per_elem: 1.23,
        }
    }

    /// The built-in table adjusted to the kernels this host gets: where the sparse kernels use
    /// `f32x8` ([`crate::codegen::wide::available`]), the batch > 1 CSR and sparse-convolution
    /// costs are scaled by the ratios `sparsec tune` measured on the development machine with
    /// `f32x8` against `f32x4` (three runs each: CSR 0.137 against 0.189 ns per stored value and
    /// vector, 8.1 against 7.1 ns per row and vector; sparse convolution 0.192 against 0.263).
    pub fn builtin_for_host() -> CostTable {
        let mut t = Self::builtin();
        if crate::codegen::wide::available() {
            t.csr.ns_per_stored_vec *= 0.137 / 0.189;
            t.csr.ns_per_row_vec *= 8.1 / 7.1;
            t.sparse_conv.ns_per_stored_vec *= 0.192 / 0.263;
        }
        t
    }

    /// Where the table is looked up: `$SPARSEC_TUNE`, else `$XDG_CACHE_HOME/sparsec/tune.json`,
    /// else `~/.cache/sparsec/tune.json` (`None` when no home is known).
    pub fn default_path() -> Option<PathBuf> {
        if let Some(p) = std::env::var_os("SPARSEC_TUNE").filter(|p| !p.is_empty()) {
            return Some(PathBuf::from(p));
        }
        if let Some(c) = std::env::var_os("XDG_CACHE_HOME").filter(|p| !p.is_empty()) {
            return Some(PathBuf::from(c).join("sparsec").join("tune.json"));
        }
        std::env::var_os("HOME").filter(|p| !p.is_empty()).map(|h| {
            PathBuf::from(h)
                .join(".cache")
                .join("sparsec")
                .join("tune.json")
        })
    }

    /// The table of this machine: the file at [`CostTable::default_path`] when it exists, else
    /// the built-in one ([`CostTable::builtin_for_host`]). A file that exists but cannot be read
    /// is an error.
    pub fn load() -> Result<CostTable, TableError> {
        match Self::default_path() {
            Some(p) if p.exists() => Self::read(&p),
            _ => Ok(Self::builtin_for_host()),
        }
    }

    /// Like [`CostTable::load`], but a bad file gives a warning on stderr and the built-in table.
    pub fn load_or_builtin() -> CostTable {
        Self::load().unwrap_or_else(|e| {
            eprintln!("warning: {e}; using the built-in cost table");
            Self::builtin_for_host()
        })
    }

    /// Reads a table written by [`CostTable::write`].
    pub fn read(path: &Path) -> Result<CostTable, TableError> {
        let text = std::fs::read_to_string(path).map_err(|source| TableError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_json(&text).map_err(|e| match e {
            TableError::Format { msg, .. } => TableError::Format {
                path: path.display().to_string(),
                msg,
            },
            other => other,
        })
    }

    /// Writes the table as JSON, creating the folder if needed (to a temporary file, then renamed).
    pub fn write(&self, path: &Path) -> Result<(), TableError> {
        let io = |source| TableError::Io {
            path: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, self.to_json()).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// The table as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        let curve = |c: &[(usize, f64)]| -> Value {
            c.iter()
                .map(|&(n, g)| json!([n, g]))
                .collect::<Vec<_>>()
                .into()
        };
        let sparse = |s: &SparseCost| {
            json!({
                "b1_ns_per_byte": s.b1_ns_per_byte, "b1_ns_per_row": s.b1_ns_per_row,
                "ns_per_stored_vec": s.ns_per_stored_vec, "ns_per_row_vec": s.ns_per_row_vec,
                "fixed_ns": s.fixed_ns,
            })
        };
        let v = json!({
            "version": 2,
            "dense_matmul_gflops": curve(&self.dense_matmul),
            "dense_conv_gflops": curve(&self.dense_conv),
            "dense_fixed_ns": self.dense_fixed_ns,
            "dense_ns_per_byte": self.dense_ns_per_byte,
            "cache_bytes": self.cache_bytes,
            "csr": sparse(&self.csr),
            "csr_baked": sparse(&self.csr_baked),
            "bsr": sparse(&self.bsr),
            "nm24": sparse(&self.nm24),
            "transpose_ns_per_elem": self.transpose_ns_per_elem,
            "sparse_conv": sparse(&self.sparse_conv),
            "conv_copy_ns_per_elem": self.conv_copy_ns_per_elem,
        });
        serde_json::to_string_pretty(&v).unwrap_or_default()
    }

    /// Parses the JSON of [`CostTable::to_json`]; every number must be finite and positive.
    pub fn from_json(text: &str) -> Result<CostTable, TableError> {
        let bad = |msg: String| TableError::Format {
            path: "<json>".into(),
            msg,
        };
        let v: Value = serde_json::from_str(text).map_err(|e| bad(format!("not JSON: {e}")))?;
        let obj = v
            .as_object()
            .ok_or_else(|| bad("expected a JSON object".into()))?;
        if obj.get("version").and_then(Value::as_u64) != Some(2) {
            return Err(bad(
                "missing or unknown `version` (expected 2; run `sparsec tune` again)".into(),
            ));
        }
        let num = |o: &Map<String, Value>, key: &str, ctx: &str| -> Result<f64, TableError> {
            match o.get(key).and_then(Value::as_f64) {
                Some(x) if x.is_finite() && x > 0.0 => Ok(x),
                Some(x) => Err(bad(format!("`{ctx}{key}` = {x} is not a positive number"))),
                None => Err(bad(format!("missing number `{ctx}{key}`"))),
            }
        };
        let curve = |key: &str| -> Result<Vec<(usize, f64)>, TableError> {
            let arr = obj
                .get(key)
                .and_then(Value::as_array)
                .ok_or_else(|| bad(format!("missing array `{key}`")))?;
            let mut out = Vec::new();
            for p in arr {
                let pair = p.as_array().filter(|a| a.len() == 2);
                let n = pair.and_then(|a| a[0].as_u64()).filter(|&n| n > 0);
                let g = pair
                    .and_then(|a| a[1].as_f64())
                    .filter(|g| g.is_finite() && *g > 0.0);
                match (n, g) {
                    (Some(n), Some(g)) => out.push((n as usize, g)),
                    _ => {
                        return Err(bad(format!(
                            "`{key}`: expected [n, GFLOP/s] pairs with positive values, got {p}"
                        )))
                    }
                }
            }
            if out.is_empty() {
                return Err(bad(format!("`{key}` is empty")));
            }
            out.sort_by_key(|p| p.0);
            Ok(out)
        };
        let sparse = |key: &str| -> Result<SparseCost, TableError> {
            let o = obj
                .get(key)
                .and_then(Value::as_object)
                .ok_or_else(|| bad(format!("missing object `{key}`")))?;
            let ctx = format!("{key}.");
            Ok(SparseCost {
                b1_ns_per_byte: num(o, "b1_ns_per_byte", &ctx)?,
                b1_ns_per_row: num(o, "b1_ns_per_row", &ctx)?,
                ns_per_stored_vec: num(o, "ns_per_stored_vec", &ctx)?,
                ns_per_row_vec: num(o, "ns_per_row_vec", &ctx)?,
                fixed_ns: num(o, "fixed_ns", &ctx)?,
            })
        };
        Ok(CostTable {
            dense_matmul: curve("dense_matmul_gflops")?,
            dense_conv: curve("dense_conv_gflops")?,
            dense_fixed_ns: num(obj, "dense_fixed_ns", "")?,
            dense_ns_per_byte: num(obj, "dense_ns_per_byte", "")?,
            cache_bytes: num(obj, "cache_bytes", "")?,
            csr: sparse("csr")?,
            csr_baked: sparse("csr_baked")?,
            bsr: sparse("bsr")?,
            nm24: sparse("nm24")?,
            transpose_ns_per_elem: num(obj, "transpose_ns_per_elem", "")?,
            sparse_conv: sparse("sparse_conv")?,
            conv_copy_ns_per_elem: num(obj, "conv_copy_ns_per_elem", "")?,
        })
    }
}

/// `curve` (sorted `(n, y)` points) at `n`, linear in `log n` between points, clamped at the ends.
pub fn interpolate(curve: &[(usize, f64)], n: usize) -> f64 {
    let n = n.max(1);
    let Some(&(n0, y0)) = curve.first() else {
        return 1.0;
    };
    if n <= n0 {
        return y0;
    }
    for w in curve.windows(2) {
        let ((a, ya), (b, yb)) = (w[0], w[1]);
        if n <= b {
            let t = ((n as f64).ln() - (a as f64).ln()) / ((b as f64).ln() - (a as f64).ln());
            return ya + t * (yb - ya);
        }
    }
    curve.last().map(|p| p.1).unwrap_or(y0)
}
