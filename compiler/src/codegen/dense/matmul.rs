//! `Gemm` and `MatMul` as one strided, batched matrix product over `sgemm`.
//!
//! Both become a [`MmPlan`]: `batch` products `m x k` by `k x n` (batch offsets precomputed for
//! broadcasting), an optional `beta * C` broadcast into the result before the product (Gemm), and
//! the epilogue with the bias along the columns (the last axis). A constant Gemm `B` is read in
//! place with its own strides (no copy) when it already has the layout below, else packed into
//! it; a constant MatMul `B` is copied into an `Arg::Packed` in the layout
//! `sgemm` runs fastest on: row-major `k x n`, or `n x k` (column-major) for a single-row `A`. The parallel dimension is
//! `batch x` (columns when `m < n`, else rows): splitting the larger of the two means every chunk
//! re-reads (and the library re-packs) only the smaller operand.

use super::{
    apply_epilogue, build_epilogue, f32_shape, grain_for, operand, per_image, result, unsupported,
    Block, EpiStep,
};
use crate::codegen::{Arg, CodegenError, Epilogue, LoweredKernel};
use crate::interp::util::broadcast_shape;
use sparsec_ir::{Graph, NodeId, Op, Tensor};
use sparsec_runtime::dense::sgemm;
use sparsec_runtime::Kernel;

/// Fewest bytes of the matrix a chunk of a matrix-vector product streams.
const GEMV_CHUNK_BYTES: usize = 64 * 1024;
/// `beta * C` broadcast to `m x n` (element `(i, j)` at `i * rs + j * cs`).
#[derive(Clone, Copy, Debug)]
struct CPlan {
    arg: usize,
    rs: usize,
    cs: usize,
    beta: f32,
}

/// A strided operand of the product: argument index, per-batch element offsets, strides.
#[derive(Clone, Debug)]
struct Operand {
    arg: usize,
    offsets: Vec<usize>,
    rs: usize,
    cs: usize,
}

/// Everything the kernel needs, fixed at build time.
#[derive(Clone, Debug)]
struct MmPlan {
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: Operand,
    b: Operand,
    c: Option<CPlan>,
    epi: Vec<EpiStep>,
    out: usize,
    split_cols: bool,
}

impl MmPlan {
    /// Size of the split dimension.
    fn dim(&self) -> usize {
        if self.split_cols {
            self.n
        } else {
            self.m
        }
    }

    /// Computes units `begin..end` of `batch x dim`.
    ///
    /// # Safety
    /// `args` must hold the buffers the plan was built for.
    unsafe fn run(&self, args: &[*mut u8], begin: usize, end: usize) {
        let out = args[self.out] as *mut f32;
        let a = args[self.a.arg] as *const f32;
        let b = args[self.b.arg] as *const f32;
        for (bi, lo, hi) in per_image(begin, end, self.dim()) {
            let (r0, rows, c0, cols) = if self.split_cols {
                (0, self.m, lo, hi - lo)
            } else {
                (lo, hi - lo, 0, self.n)
            };
            let offset = bi * self.m * self.n + r0 * self.n + c0;
            let mut beta = 0.0;
            if let Some(c) = self.c {
                let cp = args[c.arg] as *const f32;
                for i in 0..rows {
                    for j in 0..cols {
                        // SAFETY: `C` broadcasts to `m x n` with these strides; the result block
                        // is this chunk's.
                        unsafe {
                            *out.add(offset + i * self.n + j) =
                                c.beta * *cp.add((r0 + i) * c.rs + (c0 + j) * c.cs);
                        }
                    }
                }
                beta = 1.0;
            }
            // SAFETY: the plan's offsets and strides address `A`, `B` and the result block of
            // batch `bi` inside their buffers, which the runtime sized from the graph's types.
            unsafe {
                sgemm(
                    rows,
                    self.k,
                    cols,
                    self.alpha,
                    a.add(self.a.offsets[bi] + r0 * self.a.rs),
                    self.a.rs as isize,
                    self.a.cs as isize,
                    b.add(self.b.offsets[bi] + c0 * self.b.cs),
                    self.b.rs as isize,
                    self.b.cs as isize,
                    beta,
                    out.add(offset),
                    self.n as isize,
                    1,
                );
            }
            let block = Block {
                offset,
                rows,
                cols,
                ld: self.n,
                ch0: c0,
                channel_rows: false,
            };
            // SAFETY: the block is this chunk's part of the result.
            unsafe { apply_epilogue(&self.epi, args, out, &block) };
        }
    }

    /// Wraps the plan into a lowered kernel.
    fn into_kernel(self, args: Vec<Arg>, op: String) -> LoweredKernel {
        let batch = self.a.offsets.len();
        let d = self.dim();
        let other = if self.split_cols { self.m } else { self.n };
        let work = batch * d;
        let grain = if other == 1 {
            // A matrix-vector product streams `k` values per unit for `2k` flops: bound by
            // memory, so it is worth splitting from far fewer flops (a chunk streams at least
            // `GEMV_CHUNK_BYTES` of the matrix).
            (GEMV_CHUNK_BYTES / (4 * self.k.max(1))).clamp(1, work.max(1))
        } else {
            grain_for(2 * self.k.max(1) * other.max(1), work)
        };
        LoweredKernel {
            kernel: Kernel::Host(Box::new(move |args: &[*mut u8], begin, end| {
                // SAFETY: the runtime passes the buffers of `args` in ABI order, sized from the
                // graph's types, and gives each thread a disjoint range.
                unsafe { self.run(args, begin, end) }
            })),
            args,
            work,
            grain,
            op,
            layout: "dense".to_string(),
        }
    }
}

/// Copies a constant `B` (`batch` matrices of `k x n`, each at element `i * k * n`, with strides
/// `rs`, `cs`) into the layout for `m`; returns the tensor and its strides.
fn pack_b(
    data: &[f32],
    batch: usize,
    k: usize,
    n: usize,
    rs: usize,
    cs: usize,
    m: usize,
) -> (Tensor, usize, usize) {
    // A matrix-vector product runs fastest with `B` as `n x k`; everything else with `k x n`.
    let col_major = m == 1;
    let mut out = Vec::with_capacity(batch * k * n);
    for bi in 0..batch {
        let base = bi * k * n;
        if col_major {
            for j in 0..n {
                out.extend((0..k).map(|p| data[base + p * rs + j * cs]));
            }
        } else {
            for p in 0..k {
                out.extend((0..n).map(|j| data[base + p * rs + j * cs]));
            }
        }
    }
    let (shape, prs, pcs) = if col_major {
        (vec![batch, n, k], 1, k)
    } else {
        (vec![batch, k, n], n, 1)
    };
    (Tensor::from_f32(&shape, out), prs, pcs)
}

/// Lowers `Op::Gemm`: `alpha * op(A) * op(B) + beta * C`, with `C` broadcast to `[M, N]`.
///
/// Arguments, in order: `A`; `B` unless it is packed; `C` when present and `beta != 0`; the
/// packed `B` (a constant `B` whose layout is not the one `sgemm` runs fastest on: `trans_b == 0`
/// for a matrix-vector product, `trans_b != 0` otherwise); the epilogue
/// operands in epilogue order; the result. The
/// parallel dimension is the result's columns when `M < N`, else its rows; a `Bias` epilogue is
/// indexed by column.
pub fn lower_gemm(
    graph: &Graph,
    node: NodeId,
    epilogue: &[Epilogue],
) -> Result<LoweredKernel, CodegenError> {
    let Op::Gemm {
        alpha,
        beta,
        trans_a,
        trans_b,
    } = graph.node(node).op
    else {
        return Err(unsupported(graph, node, "not a gemm"));
    };
    let av = operand(graph, node, 0)?;
    let bv = operand(graph, node, 1)?;
    let cv = graph.node(node).inputs.get(2).copied().flatten();
    let yv = result(graph, node)?;
    let (sa, sb, sy) = (
        f32_shape(graph, node, av)?,
        f32_shape(graph, node, bv)?,
        f32_shape(graph, node, yv)?,
    );
    if sa.len() != 2 || sb.len() != 2 {
        return Err(unsupported(
            graph,
            node,
            format!("operands of shapes {sa:?} and {sb:?} are not matrices"),
        ));
    }
    let (m, k) = if trans_a != 0 {
        (sa[1], sa[0])
    } else {
        (sa[0], sa[1])
    };
    let (kb, n) = if trans_b != 0 {
        (sb[1], sb[0])
    } else {
        (sb[0], sb[1])
    };
    if kb != k || sy != [m, n] {
        return Err(unsupported(
            graph,
            node,
            format!("shapes {sa:?} x {sb:?} do not give the result shape {sy:?}"),
        ));
    }
    let (rsa, csa) = if trans_a != 0 { (1, m) } else { (k, 1) };
    let (rsb, csb) = if trans_b != 0 { (1, k) } else { (n, 1) };
    let mut args = vec![Arg::Value(av)];
    // A constant `B` already in the layout `sgemm` runs fastest on is read in place (shared with
    // the graph, no second copy of the weight); otherwise it is packed into that layout: `n x k`
    // for a matrix-vector product, `k x n` for the rest. A column-major `B` (`trans_b`,
    // PyTorch's Linear) made the library pack it on every call: the digits MLP's
    // `256x1024x1024` product ran at 94 GFLOP/s on it against 99 on `k x n` with the AVX2
    // microkernels, and 70 against 107 with the AVX-512 ones.
    let b_const = if (m == 1) != (trans_b != 0) {
        graph
            .const_data(bv)
            .and_then(|t| t.as_f32().map(|d| d.to_vec()))
    } else {
        None
    };
    if b_const.is_none() {
        args.push(Arg::Value(bv));
    }
    let mut c = None;
    if let Some(cv) = cv.filter(|_| beta != 0.0) {
        let sc = f32_shape(graph, node, cv)?;
        let (cm, cn) = match sc[..] {
            [] => (1, 1),
            [x] => (1, x),
            [x, y] => (x, y),
            _ => (0, 0),
        };
        if !(cm == 1 || cm == m) || !(cn == 1 || cn == n) {
            return Err(unsupported(
                graph,
                node,
                format!("C of shape {sc:?} does not broadcast to [{m}, {n}]"),
            ));
        }
        args.push(Arg::Value(cv));
        c = Some(CPlan {
            arg: args.len() - 1,
            rs: if cm == 1 { 0 } else { cn },
            cs: if cn == 1 { 0 } else { 1 },
            beta,
        });
    }
    let b = match b_const {
        Some(data) => {
            let (t, rs, cs) = pack_b(&data, 1, k, n, rsb, csb, m);
            args.push(Arg::Packed(t));
            Operand {
                arg: args.len() - 1,
                offsets: vec![0],
                rs,
                cs,
            }
        }
        None => Operand {
            arg: 1,
            offsets: vec![0],
            rs: rsb,
            cs: csb,
        },
    };
    let (epi, suffix) = build_epilogue(graph, node, epilogue, &sy, n, &mut args)?;
    args.push(Arg::Value(yv));
    let plan = MmPlan {
        m,
        k,
        n,
        alpha,
        a: Operand {
            arg: 0,
            offsets: vec![0],
            rs: rsa,
            cs: csa,
        },
        b,
        c,
        epi,
        out: args.len() - 1,
        split_cols: m < n,
    };
    Ok(plan.into_kernel(args, format!("gemm{suffix}")))
}

/// Element offsets of each batch matrix of an operand with batch dims `dims` (matrix size
/// `size`) inside the broadcast batch `out`.
fn batch_offsets(dims: &[usize], size: usize, out: &[usize]) -> Vec<usize> {
    let total: usize = out.iter().product();
    // Strides of the operand's batch dims right-aligned to `out`, zero where broadcast.
    let mut strides = vec![0usize; out.len()];
    let mut s = size;
    for (i, &d) in dims.iter().enumerate().rev() {
        let o = out.len() - dims.len() + i;
        strides[o] = if d == 1 { 0 } else { s };
        s *= d;
    }
    (0..total)
        .map(|mut flat| {
            let mut off = 0;
            for (o, &d) in out.iter().enumerate().rev() {
                off += (flat % d) * strides[o];
                flat /= d;
            }
            off
        })
        .collect()
}

/// Lowers `Op::MatMul` (numpy semantics: batch dims broadcast, a 1-D `A` is a row and a 1-D `B`
/// a column, both dropped from the result).
///
/// Arguments, in order: `A`; `B` unless it is a constant; the packed `B` when it is a constant;
/// the epilogue operands in epilogue order; the result. The parallel dimension is the broadcast
/// batch times the result's columns when `M < N`, else times its rows; a `Bias` epilogue is
/// indexed by the last axis.
pub fn lower_matmul(
    graph: &Graph,
    node: NodeId,
    epilogue: &[Epilogue],
) -> Result<LoweredKernel, CodegenError> {
    if !matches!(graph.node(node).op, Op::MatMul {}) {
        return Err(unsupported(graph, node, "not a matmul"));
    }
    let av = operand(graph, node, 0)?;
    let bv = operand(graph, node, 1)?;
    let yv = result(graph, node)?;
    let (sa, sb, sy) = (
        f32_shape(graph, node, av)?,
        f32_shape(graph, node, bv)?,
        f32_shape(graph, node, yv)?,
    );
    if sa.is_empty() || sb.is_empty() {
        return Err(unsupported(graph, node, "scalar operand"));
    }
    let a2 = if sa.len() == 1 {
        vec![1, sa[0]]
    } else {
        sa.clone()
    };
    let b2 = if sb.len() == 1 {
        vec![sb[0], 1]
    } else {
        sb.clone()
    };
    let (m, k) = (a2[a2.len() - 2], a2[a2.len() - 1]);
    let (kb, n) = (b2[b2.len() - 2], b2[b2.len() - 1]);
    let (abatch, bbatch) = (&a2[..a2.len() - 2], &b2[..b2.len() - 2]);
    let batch = broadcast_shape(abatch, bbatch);
    let mut want = batch.clone().unwrap_or_default();
    if sa.len() > 1 {
        want.push(m);
    }
    if sb.len() > 1 {
        want.push(n);
    }
    let Some(batch) = batch.filter(|_| kb == k && want == sy) else {
        return Err(unsupported(
            graph,
            node,
            format!("shapes {sa:?} x {sb:?} do not give the result shape {sy:?}"),
        ));
    };
    let mut args = vec![Arg::Value(av)];
    let a = Operand {
        arg: 0,
        offsets: batch_offsets(abatch, m * k, &batch),
        rs: k,
        cs: 1,
    };
    let b_offsets = batch_offsets(bbatch, k * n, &batch);
    let b = match graph.const_data(bv).and_then(|t| t.as_f32()) {
        Some(data) => {
            let nb = bbatch.iter().product();
            let (t, rs, cs) = pack_b(data, nb, k, n, n, 1, m);
            args.push(Arg::Packed(t));
            Operand {
                arg: args.len() - 1,
                offsets: b_offsets,
                rs,
                cs,
            }
        }
        None => {
            args.push(Arg::Value(bv));
            Operand {
                arg: 1,
                offsets: b_offsets,
                rs: n,
                cs: 1,
            }
        }
    };
    if sb.len() == 1 && epilogue.iter().any(|e| matches!(e, Epilogue::Bias(_))) {
        return Err(unsupported(graph, node, "a bias along a dropped axis"));
    }
    let (epi, suffix) = build_epilogue(graph, node, epilogue, &sy, n, &mut args)?;
    args.push(Arg::Value(yv));
    let plan = MmPlan {
        m,
        k,
        n,
        alpha: 1.0,
        a,
        b,
        c: None,
        epi,
        out: args.len() - 1,
        split_cols: m < n,
    };
    Ok(plan.into_kernel(args, format!("matmul{suffix}")))
}
