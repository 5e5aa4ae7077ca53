//! A native kernel for inference `BatchNormalization` with constant parameters that the
//! `fold-batchnorm` pass could not fold into a preceding Conv or Gemm (DenseNet normalizes the
//! concatenation of its feature maps before each conv): `y = x * a[c] + b[c]`, with
//! `a = scale / sqrt(var + epsilon)` and `b = bias - mean * a` computed at lowering (in f64, as
//! the interpreter does).
//!
//! A [`Kernel::Host`] closure over `N x C` planes. Before it, these nodes ran in the interpreter
//! fallback: about 4 ms for DenseNet-121's largest.

use super::dense::{f32_shape, grain_for, operand, result, unsupported};
use super::{Arg, CodegenError, LoweredKernel};
use sparsec_ir::{Graph, NodeId, Op};
use sparsec_runtime::Kernel;

/// Lowers an f32 `BatchNormalization` whose scale, bias, mean and variance are constants of one
/// value per channel, and, when `relu` is given (a `Relu` node reading the BN's result alone),
/// that Relu in the same pass: `y = max(x * a[c] + b[c], 0)` written as the Relu's result.
/// Arguments: `X`, the result; the parallel dimension is `N x C` planes.
pub fn lower_batchnorm(
    graph: &Graph,
    n: NodeId,
    relu: Option<NodeId>,
) -> Result<LoweredKernel, CodegenError> {
    let Op::BatchNormalization { epsilon } = graph.node(n).op else {
        return Err(unsupported(graph, n, "not a batch normalization"));
    };
    let node = graph.node(n);
    if node.outputs.len() != 1 {
        return Err(unsupported(graph, n, "training-mode results"));
    }
    let x = operand(graph, n, 0)?;
    let y = match relu {
        Some(r) => result(graph, r)?,
        None => result(graph, n)?,
    };
    let shape = f32_shape(graph, n, x)?;
    if shape.len() < 2 || f32_shape(graph, n, y)? != shape {
        return Err(unsupported(graph, n, format!("input shape {shape:?}")));
    }
    let c = shape[1];
    let param = |k: usize| -> Result<Vec<f64>, CodegenError> {
        let v = operand(graph, n, k)?;
        let d = graph
            .const_data(v)
            .and_then(|t| t.as_f32())
            .filter(|d| d.len() == c)
            .ok_or_else(|| {
                unsupported(graph, n, format!("operand {k} is not {c} constant f32s"))
            })?;
        Ok(d.iter().map(|&v| v as f64).collect())
    };
    let (scale, bias, mean, var) = (param(1)?, param(2)?, param(3)?, param(4)?);
    let a: Vec<f32> = (0..c)
        .map(|i| (scale[i] / (var[i] + epsilon as f64).sqrt()) as f32)
        .collect();
    let b: Vec<f32> = (0..c)
        .map(|i| (bias[i] - mean[i] * a[i] as f64) as f32)
        .collect();
    let planes = shape[0] * c;
    let s: usize = shape[2..].iter().product();
    let (relu, op) = match relu {
        Some(_) => (true, "batch_normalization+relu"),
        None => (false, "batch_normalization"),
    };
    let kernel = Kernel::Host(Box::new(
        move |args: &[*mut u8], begin: usize, end: usize| {
            let (xp, yp) = (args[0] as *const f32, args[1] as *mut f32);
            for p in begin..end.min(planes) {
                // SAFETY: the runtime passes an input and a distinct result of `planes * s` f32
                // elements, and only this call writes plane `p` of the result.
                let (xs, ys) = unsafe {
                    (
                        std::slice::from_raw_parts(xp.add(p * s), s),
                        std::slice::from_raw_parts_mut(yp.add(p * s), s),
                    )
                };
                let (ac, bc) = (a[p % c], b[p % c]);
                if relu {
                    ys.iter_mut()
                        .zip(xs)
                        .for_each(|(o, &v)| *o = (v * ac + bc).max(0.0));
                } else {
                    ys.iter_mut().zip(xs).for_each(|(o, &v)| *o = v * ac + bc);
                }
            }
        },
    ));
    Ok(LoweredKernel {
        kernel,
        args: vec![Arg::Value(x), Arg::Value(y)],
        work: planes,
        grain: grain_for(2 * s, planes),
        op: op.into(),
        layout: "dense".into(),
    })
}
