//! Layout selection: which weight layout (dense, CSR, BSR, 2:4) each weight-bearing layer runs
//! in, chosen by a cost model, and why.
//!
//! - [`describe`] turns a Gemm / MatMul with a constant 2-D weight, or a group-1 Conv, into a
//!   [`LayerDesc`]: the weight as a `rows x cols` matrix (rows = output features, cols = the
//!   reduction), the dense dimension `n`, nonzeros and pattern.
//! - `cost.rs` estimates each layout's time from a [`CostTable`] (`table.rs`, measured by
//!   `tune.rs` / `sparsec tune`); [`plan_layouts`] picks the fastest estimate per layer, and a
//!   sparse layout only when it is estimated faster than dense by [`MIN_GAIN`].
//! - [`pack`] packs a layer's weight for its choice, [`unpack`] gives the dense matrix back.
//! - `sparse_lower.rs` lowers a Gemm / MatMul whose choice is sparse to a sparse kernel (with
//!   the `X^T` transpose step at batch > 1).

pub mod cost;
mod sparse_lower;
pub mod table;
pub mod tune;
mod tune_conv;

#[cfg(test)]
mod tests;

pub use sparse_lower::{lower_sparse_conv_group, lower_sparse_matmul, SparseLowered};
pub use table::{CostTable, SparseCost, TableError};

use super::sparse::{Bsr, Csr, IndexWidth, Nm24, Packing, SparseError};
use sparsec_ir::{Dim, Graph, NodeId, Op, Pattern, ValueId};
use std::fmt;

/// A sparse layout is chosen only when estimated at least this many times faster than dense,
/// a margin for the model's error.
pub const MIN_GAIN: f64 = 1.1;

/// A sparse layout must also save at least this many estimated nanoseconds per call: a smaller
/// saving does not pay for compiling and holding a second kernel.
pub const MIN_SAVING_NS: f64 = 500.0;

/// What kind of product a layer computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerKind {
    /// Gemm or MatMul: `Y [n x rows] = X [n x cols] W^T`.
    Matmul,
    /// A 2-D (or 1-D) convolution with one group.
    Conv {
        /// Kernel height.
        kh: usize,
        /// Kernel width.
        kw: usize,
        /// Stride along the first spatial axis.
        stride: usize,
        /// The dense lowering takes the Winograd path (3x3, stride 1; see `dense/winograd.rs`).
        winograd: bool,
    },
}

/// A weight-bearing layer as the cost model sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerDesc {
    /// Node name.
    pub node: String,
    /// Weight name.
    pub weight: String,
    /// Output features (rows of the weight matrix).
    pub rows: usize,
    /// Reduction length: `K`, or `Cin * kh * kw`.
    pub cols: usize,
    /// The dense dimension: batch (or batch x tokens) for products, batch x output pixels for
    /// convolutions.
    pub n: usize,
    /// Product or convolution.
    pub kind: LayerKind,
    /// Nonzeros of the weight.
    pub nnz: usize,
    /// Detected pattern of the weight.
    pub pattern: Pattern,
    /// The weight is stored `[cols x rows]` (a Gemm without `trans_b`, a MatMul `B`).
    pub transposed: bool,
    /// The model's weights together exceed the cache ([`CostTable::cache_bytes`]), so a dense
    /// product at small `n` streams its weight from memory.
    pub streamed: bool,
}

impl LayerDesc {
    /// `nnz / (rows x cols)`.
    pub fn density(&self) -> f64 {
        let numel = self.rows * self.cols;
        if numel == 0 {
            1.0
        } else {
            self.nnz as f64 / numel as f64
        }
    }
}

/// A weight layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// The dense GEMM path.
    Dense,
    /// Compressed sparse rows.
    Csr {
        /// Column index width.
        width: IndexWidth,
        /// Pattern-baked straight-line code instead of a loop.
        baked: bool,
    },
    /// Block-sparse rows of `r x c` blocks.
    Bsr {
        /// Block height.
        r: usize,
        /// Block width.
        c: usize,
    },
    /// 2:4 compressed.
    Nm24,
}

impl Layout {
    /// True for every layout but [`Layout::Dense`].
    pub fn is_sparse(self) -> bool {
        self != Layout::Dense
    }

    /// True when `p` is a packing of this layout (the pattern-baked flag is a kernel choice, not
    /// a packing, so it is ignored).
    pub fn matches(self, p: &Packing) -> bool {
        match (self, p) {
            (Layout::Csr { width, .. }, Packing::Csr(m)) => m.index_width() == width,
            (Layout::Bsr { r, c }, Packing::Bsr(m)) => m.r == r.min(m.rows) && m.c == c.min(m.cols),
            (Layout::Nm24, Packing::Nm24(_)) => true,
            _ => false,
        }
    }
}

impl fmt::Display for Layout {
    /// The names of the profiles: `dense`, `csr-u16`, `csr-u32-baked`, `bsr4x1`, `2:4`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Layout::Dense => f.write_str("dense"),
            Layout::Csr { width, baked } => {
                let w = match width {
                    IndexWidth::U16 => "u16",
                    IndexWidth::U32 => "u32",
                };
                write!(f, "csr-{w}{}", if *baked { "-baked" } else { "" })
            }
            Layout::Bsr { r, c } => write!(f, "bsr{r}x{c}"),
            Layout::Nm24 => f.write_str("2:4"),
        }
    }
}

/// The decision for one layer.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerChoice {
    /// The layer.
    pub desc: LayerDesc,
    /// The chosen layout.
    pub layout: Layout,
    /// Estimated dense time over the best sparse layout's time (below 1: sparse is slower).
    pub est_speedup: f64,
    /// Why, e.g. `estimated 6.3x over dense` or `csr-u16 estimated 0.4x`.
    pub reason: String,
}

/// The decisions for every weight-bearing layer of a graph, in topological order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LayoutPlan {
    /// One entry per layer.
    pub layers: Vec<LayerChoice>,
}

impl LayoutPlan {
    /// The choice for the node named `node`.
    pub fn get(&self, node: &str) -> Option<&LayerChoice> {
        self.layers.iter().find(|c| c.desc.node == node)
    }

    /// One line per layer, e.g. `fc2: csr-u16, density 0.10, n=1, estimated 6.3x over dense`.
    pub fn explain(&self) -> String {
        let mut s = String::new();
        for c in &self.layers {
            let d = &c.desc;
            let sep = if c.layout.is_sparse() { "," } else { ":" };
            s.push_str(&format!(
                "{}: {}, density {:.2}, n={}{sep} {}",
                d.node,
                c.layout,
                d.density(),
                d.n,
                c.reason
            ));
            s.push('\n');
        }
        s
    }
}

/// The layout plan of `graph` under the machine's cost table, explained line by line (for
/// `compile --explain`). Symbolic dims count as 1.
pub fn explain(graph: &Graph) -> String {
    plan_layouts(graph, &CostTable::load_or_builtin()).explain()
}

/// Chooses a layout for every weight-bearing layer of `graph` (symbolic dims count as 1).
pub fn plan_layouts(graph: &Graph, table: &CostTable) -> LayoutPlan {
    let mut descs: Vec<LayerDesc> = graph
        .topo_order()
        .into_iter()
        .filter_map(|n| describe(graph, n))
        .collect();
    let bytes: f64 = descs.iter().map(|d| (d.rows * d.cols * 4) as f64).sum();
    for d in &mut descs {
        d.streamed = bytes > table.cache_bytes;
    }
    let layers = descs.into_iter().map(|d| choose(d, table)).collect();
    LayoutPlan { layers }
}

/// The decision for one layer: the fastest estimated layout, sparse only if it beats dense by
/// [`MIN_GAIN`] and [`MIN_SAVING_NS`]; a weight without zeros stays dense.
pub fn choose(desc: LayerDesc, table: &CostTable) -> LayerChoice {
    if desc.nnz >= desc.rows * desc.cols {
        return LayerChoice {
            desc,
            layout: Layout::Dense,
            est_speedup: 0.0,
            reason: "no zeros".into(),
        };
    }
    let dense = cost::dense_ns(&desc, table);
    let best = cost::candidates(&desc)
        .into_iter()
        .filter_map(|l| cost::sparse_ns(&desc, l, table).map(|t| (l, t)))
        .min_by(|a, b| a.1.total_cmp(&b.1));
    match best {
        Some((layout, t)) if dense / t >= MIN_GAIN && dense - t >= MIN_SAVING_NS => LayerChoice {
            est_speedup: dense / t,
            reason: format!("estimated {:.1}x over dense", dense / t),
            desc,
            layout,
        },
        Some((layout, t)) => LayerChoice {
            est_speedup: dense / t,
            reason: format!("{layout} estimated {:.1}x", dense / t),
            desc,
            layout: Layout::Dense,
        },
        None => LayerChoice {
            est_speedup: 0.0,
            reason: "no sparse layout applies".into(),
            desc,
            layout: Layout::Dense,
        },
    }
}

fn known(dims: &[Dim]) -> Vec<usize> {
    dims.iter().map(|d| d.known().unwrap_or(1)).collect()
}

/// The constant f32 weight operand `k` of `n` with its shape, if it is one.
fn const_weight(graph: &Graph, n: NodeId, k: usize) -> Option<(ValueId, Vec<usize>)> {
    let v = graph.node(n).inputs.get(k).copied().flatten()?;
    let w = graph.weight(v)?;
    let ty = &graph.value(v).ty;
    (ty.dtype == sparsec_ir::DType::F32 && w.facts.numel > 0).then(|| (v, known(&ty.dims)))
}

/// The layer description of node `n`, if it is a Gemm / MatMul with a constant 2-D weight as its
/// second operand or a Conv with one group and a constant weight.
pub fn describe(graph: &Graph, n: NodeId) -> Option<LayerDesc> {
    let node = graph.node(n);
    let out = known(&graph.value(*node.outputs.first()?).ty.dims);
    let a = known(&graph.value(node.inputs.first().copied().flatten()?).ty.dims);
    let (w, kind, rows, cols, transposed, nn) = match &node.op {
        Op::Gemm { trans_b, .. } => {
            let (w, s) = const_weight(graph, n, 1)?;
            if s.len() != 2 || out.len() != 2 {
                return None;
            }
            let (rows, cols) = if *trans_b != 0 {
                (s[0], s[1])
            } else {
                (s[1], s[0])
            };
            (w, LayerKind::Matmul, rows, cols, *trans_b == 0, out[0])
        }
        Op::MatMul {} => {
            let (w, s) = const_weight(graph, n, 1)?;
            if s.len() != 2 || a.is_empty() {
                return None;
            }
            let nn = a[..a.len() - 1].iter().product();
            (w, LayerKind::Matmul, s[1], s[0], true, nn)
        }
        Op::Conv { group, strides, .. } => {
            let (w, s) = const_weight(graph, n, 1)?;
            if *group != 1 || !(3..=4).contains(&s.len()) || out.len() != s.len() {
                return None;
            }
            let kind = LayerKind::Conv {
                kh: s[2],
                kw: s.get(3).copied().unwrap_or(1),
                stride: strides.first().copied().unwrap_or(1).max(1) as usize,
                winograd: matches!(
                    crate::codegen::dense::conv_path(graph, n),
                    Ok(crate::codegen::dense::ConvPath::Winograd)
                ),
            };
            let pixels: usize = out[2..].iter().product();
            (
                w,
                kind,
                s[0],
                s[1..].iter().product(),
                false,
                out[0] * pixels,
            )
        }
        _ => return None,
    };
    let facts = &graph.weight(w)?.facts;
    Some(LayerDesc {
        node: node.name.clone(),
        weight: graph.value(w).name.clone(),
        rows,
        cols,
        n: nn.max(1),
        kind,
        nnz: facts.nnz,
        pattern: facts.pattern,
        transposed,
        streamed: false,
    })
}

/// The weight of `desc` as a row-major `rows x cols` matrix, from its stored data (`stored`,
/// `[cols x rows]` when `desc.transposed`); borrowed when no transpose is needed.
pub fn weight_matrix<'a>(desc: &LayerDesc, stored: &'a [f32]) -> std::borrow::Cow<'a, [f32]> {
    if !desc.transposed {
        return std::borrow::Cow::Borrowed(stored);
    }
    let (rows, cols) = (desc.rows, desc.cols);
    let mut m = vec![0.0f32; rows * cols];
    for (k, src) in stored.chunks_exact(rows).enumerate() {
        for (r, &v) in src.iter().enumerate() {
            m[r * cols + k] = v;
        }
    }
    std::borrow::Cow::Owned(m)
}

/// Packs `w` (row-major `rows x cols`) in the layout of `choice`. Fails for a dense choice, and
/// for 2:4 when a group of 4 holds more than 2 nonzeros.
pub fn pack(choice: &LayerChoice, w: &[f32]) -> Result<Packing, SparseError> {
    let d = &choice.desc;
    match choice.layout {
        Layout::Dense => Err(SparseError::Shape(format!(
            "layer `{}`: the dense layout has no packing",
            d.node
        ))),
        Layout::Csr { .. } => Ok(Packing::Csr(Csr::from_dense(&d.weight, d.rows, d.cols, w)?)),
        Layout::Bsr { r, c } => Ok(Packing::Bsr(Bsr::from_dense(
            &d.weight, d.rows, d.cols, w, r, c,
        )?)),
        Layout::Nm24 => Ok(Packing::Nm24(Nm24::from_dense(
            &d.weight, d.rows, d.cols, w,
        )?)),
    }
}

/// The dense row-major `rows x cols` matrix of a packing (exactly the packed matrix).
pub fn unpack(p: &Packing) -> Vec<f32> {
    let (rows, cols) = (p.rows(), p.cols());
    let mut w = vec![0.0f32; rows * cols];
    match p {
        Packing::Csr(m) => {
            for r in 0..rows {
                for q in m.row_ptr[r] as usize..m.row_ptr[r + 1] as usize {
                    w[r * cols + m.col_idx[q] as usize] = m.values[q];
                }
            }
        }
        Packing::Bsr(m) => {
            let area = m.r * m.c;
            for bi in 0..m.block_rows() {
                for q in m.block_ptr[bi] as usize..m.block_ptr[bi + 1] as usize {
                    let s = m.block_col[q] as usize;
                    let block = &m.values[q * area..(q + 1) * area];
                    for j in 0..m.c {
                        for i in 0..m.r {
                            let (row, v) = (bi * m.r + i, block[j * m.r + i]);
                            // Zeros are skipped: a shifted tail block holds zeros over the
                            // columns of the block before it.
                            if row < rows && v != 0.0 {
                                w[row * cols + s + j] = v;
                            }
                        }
                    }
                }
            }
        }
        Packing::Nm24(m) => {
            let groups = m.groups();
            for r in 0..rows {
                for g in 0..groups {
                    let at = r * groups + g;
                    let meta = m.meta[at] as usize;
                    for (k, pos) in [meta & 3, (meta >> 2) & 3].into_iter().enumerate() {
                        let v = m.values[2 * at + k];
                        if v != 0.0 && 4 * g + pos < cols {
                            w[r * cols + 4 * g + pos] = v;
                        }
                    }
                }
            }
        }
    }
    w
}

/// The stored form of a `rows x cols` matrix: itself, or its transpose when `desc.transposed`
/// (the inverse of [`weight_matrix`]).
pub fn stored_form(desc: &LayerDesc, m: &[f32]) -> Vec<f32> {
    if !desc.transposed {
        return m.to_vec();
    }
    let (rows, cols) = (desc.rows, desc.cols);
    let mut s = vec![0.0f32; rows * cols];
    for r in 0..rows {
        for k in 0..cols {
            s[k * rows + r] = m[r * cols + k];
        }
    }
    s
}
