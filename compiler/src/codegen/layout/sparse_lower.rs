//! Lowering of a Gemm / MatMul whose layout choice is sparse: the weight packed (rows = output
//! features; a `[K, N]` weight is transposed first) or taken from an earlier packing, one
//! `sparse::compile` kernel with the bias and ReLU of the epilogue fused, and at batch > 1 a
//! `transpose_kernel` step before it writing `X^T` into a group-internal temporary.

use super::{pack, weight_matrix, LayerChoice, Layout};
use crate::codegen::jit::Jit;
use crate::codegen::sparse::{
    compile, lower_sparse_conv, transpose_kernel, xt_stride, MatmulSpec, Packing, SparseError,
    Strategy,
};
use crate::codegen::{Arg, CodegenError, Epilogue, LoweredKernel};
use sparsec_ir::{DType, Graph, NodeId, Op};
use sparsec_runtime::Kernel;
use std::sync::Arc;

/// A sparse lowering: its steps, how many epilogue steps it fused, and the packing it used.
#[derive(Debug)]
pub struct SparseLowered {
    /// The transpose step (batch > 1), then the product.
    pub kernels: Vec<LoweredKernel>,
    /// The leading epilogue steps fused into the product (bias and ReLU).
    pub fused: usize,
    /// The packed weight.
    pub packing: Arc<Packing>,
    /// The weight's name.
    pub weight: String,
}

fn unsupported(graph: &Graph, n: NodeId, msg: impl std::fmt::Display) -> CodegenError {
    CodegenError::Unsupported(format!("sparse `{}`: {msg}", graph.node(n).name))
}

/// Lowers node `n` with the sparse layout of `choice`. `prepacked` is used when it matches the
/// layout (the graph's weight may then have no data); `temp` names the group's `X^T` temporary.
pub fn lower_sparse_matmul(
    graph: &Graph,
    n: NodeId,
    choice: &LayerChoice,
    epilogue: &[Epilogue],
    prepacked: Option<&Arc<Packing>>,
    jit: &mut Jit,
    temp: usize,
) -> Result<SparseLowered, CodegenError> {
    let d = &choice.desc;
    let node = graph.node(n);
    let (Some(Some(xv)), Some(Some(wv)), Some(&yv)) = (
        node.inputs.first(),
        node.inputs.get(1),
        node.outputs.first(),
    ) else {
        return Err(unsupported(graph, n, "missing operand"));
    };
    let (xv, wv) = (*xv, *wv);
    let xty = &graph.value(xv).ty;
    let xs = xty.shape().unwrap_or_default();
    let ys = graph.value(yv).ty.shape().unwrap_or_default();
    let batch: usize = xs.iter().rev().skip(1).product();
    if xty.dtype != DType::F32
        || xs.last() != Some(&d.cols)
        || batch != d.n
        || ys.iter().product::<usize>() != batch * d.rows
    {
        return Err(unsupported(
            graph,
            n,
            format!("activation {xs:?} and result {ys:?} do not fit"),
        ));
    }
    let mut bias: Option<Vec<f32>> = None;
    let mut op = "matmul".to_string();
    if let Op::Gemm {
        alpha,
        beta,
        trans_a,
        ..
    } = node.op
    {
        op = "gemm".into();
        if alpha != 1.0 || trans_a != 0 {
            return Err(unsupported(graph, n, "alpha != 1 or trans_a"));
        }
        if let Some(c) = node.inputs.get(2).copied().flatten() {
            let t = graph
                .const_data(c)
                .and_then(|t| t.as_f32())
                .ok_or_else(|| unsupported(graph, n, "C is not a constant f32"))?;
            let cs = graph.value(c).ty.shape().unwrap_or_default();
            let per_feature = cs.iter().rev().skip(1).all(|&x| x == 1)
                && cs.last().is_none_or(|&l| l == d.rows || l == 1);
            bias = Some(match t.len() {
                1 => vec![beta * t[0]; d.rows],
                l if l == d.rows && per_feature => t.iter().map(|v| beta * v).collect(),
                _ => return Err(unsupported(graph, n, "C is not a per-feature bias")),
            });
        }
    }
    // Fuse leading bias steps and one ReLU.
    let mut relu = false;
    let mut fused = 0;
    for e in epilogue {
        match e {
            Epilogue::Bias(v) if !relu => {
                let Some(t) = graph.const_data(*v).and_then(|t| t.as_f32()) else {
                    break;
                };
                if t.len() != d.rows {
                    break;
                }
                let b = bias.get_or_insert_with(|| vec![0.0; d.rows]);
                b.iter_mut().zip(t).for_each(|(b, v)| *b += v);
                op.push_str("+bias");
            }
            Epilogue::Relu if !relu => {
                relu = true;
                op.push_str("+relu");
            }
            _ => break,
        }
        fused += 1;
    }
    let packing = match prepacked.filter(|p| choice.layout.matches(p)) {
        Some(p) => p.clone(),
        None => {
            let data = graph
                .const_data(wv)
                .and_then(|t| t.as_f32())
                .ok_or_else(|| unsupported(graph, n, "the weight has no f32 data"))?;
            let m = weight_matrix(d, data);
            Arc::new(pack(choice, &m).map_err(|e| unsupported(graph, n, e))?)
        }
    };
    let strategy = match choice.layout {
        Layout::Csr { baked: true, .. } => Strategy::Baked,
        _ => Strategy::Loop,
    };
    let mut spec = MatmulSpec::new(batch);
    spec.bias = bias;
    spec.relu = relu;
    let sm = compile(jit, &node.name, &packing, strategy, &spec).map_err(|e| match e {
        SparseError::Codegen(c) => c,
        other => unsupported(graph, n, other),
    })?;
    jit.finalize()?;
    let kernel = Kernel::Jit(jit.kernel(sm.kernel)?);
    let mut kernels = Vec::new();
    let input = if batch > 1 {
        let bytes = d.cols * xt_stride(batch) * 4;
        kernels.push(LoweredKernel {
            kernel: transpose_kernel(batch, d.cols),
            args: vec![Arg::Value(xv), Arg::Temp { id: temp, bytes }],
            work: d.cols,
            grain: (1 << 14) / xt_stride(batch).max(1) + 1,
            op: "transpose".into(),
            layout: "x^t".into(),
        });
        Arg::Temp { id: temp, bytes }
    } else {
        Arg::Value(xv)
    };
    kernels.push(LoweredKernel {
        kernel,
        args: vec![input, Arg::Blob(sm.blob), Arg::Value(yv)],
        work: sm.work,
        grain: 1,
        op,
        layout: sm.layout,
    });
    Ok(SparseLowered {
        kernels,
        fused,
        packing,
        weight: graph.value(wv).name.clone(),
    })
}

/// Lowers Conv node `n` with the sparse layout of `choice` (CSR) and its whole `epilogue` fused:
/// the weight packed as `Cout x Cin*kh*kw`, or `prepacked` when it matches the layout; `temp`
/// names the group's planes temporary. Returns the steps and the packing they were built from.
pub fn lower_sparse_conv_group(
    graph: &Graph,
    n: NodeId,
    choice: &LayerChoice,
    epilogue: &[Epilogue],
    prepacked: Option<&Arc<Packing>>,
    jit: &mut Jit,
    temp: usize,
) -> Result<(Vec<LoweredKernel>, Arc<Packing>), CodegenError> {
    let node = graph.node(n);
    let packing = match prepacked.filter(|p| choice.layout.matches(p)) {
        Some(p) => p.clone(),
        None => {
            let wv = node
                .inputs
                .get(1)
                .copied()
                .flatten()
                .ok_or_else(|| unsupported(graph, n, "missing weight"))?;
            let data = graph
                .const_data(wv)
                .and_then(|t| t.as_f32())
                .ok_or_else(|| unsupported(graph, n, "the weight has no f32 data"))?;
            let m = weight_matrix(&choice.desc, data);
            Arc::new(pack(choice, &m).map_err(|e| unsupported(graph, n, e))?)
        }
    };
    let k = lower_sparse_conv(graph, n, epilogue, &packing, jit, temp)?;
    Ok((k, packing))
}
