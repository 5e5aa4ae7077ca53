//! The `Norm` family: batch, layer, instance, RMS, local-response and mean-variance
//! normalization, and `Softmax`/`LogSoftmax`/`Hardmax` (with the opset < 13 `coerce_2d` form).
//!
//! Every op computes in `f64` and rounds once to the input's float type: the statistics these ops
//! take (means, variances, sums of exponentials) are where precision is lost, and one code path
//! for `f16`, `f32` and `f64` keeps the kernels plain.

use super::elementwise::bcast::zip2;
use super::reduce::fold;
use super::util::{arg, broadcast_indices, broadcast_shape, norm_axis, opt_arg};
use super::InterpError;
use sparsec_ir::{DType, Op, Tensor, TensorData};

/// Evaluates an op of the norm family.
pub(crate) fn eval(
    op: &Op,
    inputs: &[Option<&Tensor>],
    n_outputs: usize,
) -> Result<Vec<Tensor>, InterpError> {
    let x = arg(op, inputs, 0)?;
    match op {
        Op::BatchNormalization { epsilon } => Ok(vec![batch_norm(op, inputs, x, *epsilon)?]),
        Op::LayerNormalization { axis, epsilon, .. } => {
            let mut out = layer_norm(op, inputs, x, *axis, *epsilon)?;
            out.truncate(n_outputs.max(1));
            Ok(out)
        }
        Op::InstanceNormalization { epsilon } => Ok(vec![instance_norm(op, inputs, x, *epsilon)?]),
        Op::RmsNormalization { axis, epsilon, .. } => {
            Ok(vec![rms_norm(op, inputs, x, *axis, *epsilon)?])
        }
        Op::Lrn {
            alpha,
            beta,
            bias,
            size,
        } => Ok(vec![lrn(op, x, *alpha, *beta, *bias, *size)?]),
        Op::MeanVarianceNormalization { axes } => Ok(vec![mvn(op, x, axes)?]),
        Op::Softmax { axis, coerce_2d } => {
            Ok(vec![softmax(op, x, *axis, *coerce_2d != 0, Soft::Softmax)?])
        }
        Op::LogSoftmax { axis, coerce_2d } => {
            Ok(vec![softmax(op, x, *axis, *coerce_2d != 0, Soft::Log)?])
        }
        Op::Hardmax { axis, coerce_2d } => {
            Ok(vec![softmax(op, x, *axis, *coerce_2d != 0, Soft::Hard)?])
        }
        _ => Err(InterpError::unsupported(op, "not a norm op")),
    }
}

/// The elements of a float tensor as `f64` (one type match, then a flat loop).
fn floats(op: &Op, t: &Tensor) -> Result<Vec<f64>, InterpError> {
    Ok(match t.data() {
        TensorData::F32(v) => v.iter().map(|&x| x as f64).collect(),
        TensorData::F64(v) => v.clone(),
        TensorData::F16(v) => v.iter().map(|x| x.to_f64()).collect(),
        d => {
            return Err(InterpError::unsupported(
                op,
                format!("element type {}", d.dtype()),
            ))
        }
    })
}

/// A tensor of float type `dtype` from `f64` results.
fn finish(op: &Op, dtype: DType, shape: Vec<usize>, v: Vec<f64>) -> Result<Tensor, InterpError> {
    Tensor::new(shape, TensorData::from_f64s(dtype, v))
        .map_err(|e| InterpError::invalid(op, e.to_string()))
}

/// Operand `k` as a per-channel vector of exactly `c` floats.
fn channel_param(
    op: &Op,
    inputs: &[Option<&Tensor>],
    k: usize,
    name: &str,
    c: usize,
) -> Result<Vec<f64>, InterpError> {
    let t = arg(op, inputs, k)?;
    if t.numel() != c {
        return Err(InterpError::invalid(
            op,
            format!(
                "{name} has shape {:?}, expected {c} channel values",
                t.shape()
            ),
        ));
    }
    floats(op, t)
}

/// Operand `t` broadcast to `shape` (it must broadcast unidirectionally), flattened.
fn param_to(op: &Op, t: &Tensor, name: &str, shape: &[usize]) -> Result<Vec<f64>, InterpError> {
    if broadcast_shape(t.shape(), shape).as_deref() != Some(shape) {
        return Err(InterpError::invalid(
            op,
            format!(
                "{name} of shape {:?} does not broadcast to {shape:?}",
                t.shape()
            ),
        ));
    }
    let v = floats(op, t)?;
    if t.shape() == shape {
        return Ok(v);
    }
    Ok(broadcast_indices(t.shape(), shape)
        .into_iter()
        .map(|i| v[i])
        .collect())
}

/// `(N, C, spatial)` of a `[N, C, ...]` tensor; a rank-1 tensor is `[C]`.
fn nc_spatial(op: &Op, x: &Tensor) -> Result<(usize, usize, usize), InterpError> {
    match x.shape() {
        [] => Err(InterpError::invalid(op, "input is a scalar")),
        [c] => Ok((1, *c, 1)),
        [n, c, rest @ ..] => Ok((*n, *c, rest.iter().product())),
    }
}

/// Inference `BatchNormalization`: operands `x, scale, bias, mean, var` along dimension 1.
fn batch_norm(
    op: &Op,
    inputs: &[Option<&Tensor>],
    x: &Tensor,
    epsilon: f32,
) -> Result<Tensor, InterpError> {
    let (n, c, s) = nc_spatial(op, x)?;
    let scale = channel_param(op, inputs, 1, "scale", c)?;
    let bias = channel_param(op, inputs, 2, "bias", c)?;
    let mean = channel_param(op, inputs, 3, "mean", c)?;
    let var = channel_param(op, inputs, 4, "var", c)?;
    let eps = epsilon as f64;
    let mut v = floats(op, x)?;
    for (b, chunk) in v.chunks_mut(s.max(1)).enumerate().take(n * c) {
        let ch = b % c;
        let k = scale[ch] / (var[ch] + eps).sqrt();
        for y in chunk {
            *y = (*y - mean[ch]) * k + bias[ch];
        }
    }
    finish(op, x.dtype(), x.shape().to_vec(), v)
}

/// `LayerNormalization` over the axes from `axis` on: results `y`, then the mean and the inverse
/// standard deviation with the normalized axes kept as size 1.
fn layer_norm(
    op: &Op,
    inputs: &[Option<&Tensor>],
    x: &Tensor,
    axis: i64,
    epsilon: f32,
) -> Result<Vec<Tensor>, InterpError> {
    if x.rank() == 0 {
        return Err(InterpError::invalid(op, "input is a scalar"));
    }
    let ax = norm_axis(op, axis, x.rank())?;
    let norm_shape = &x.shape()[ax..];
    let cols: usize = norm_shape.iter().product();
    let scale = param_to(op, arg(op, inputs, 1)?, "scale", norm_shape)?;
    let bias = match opt_arg(inputs, 2) {
        Some(b) => Some(param_to(op, b, "bias", norm_shape)?),
        None => None,
    };
    let mut v = floats(op, x)?;
    let rows = v.len().checked_div(cols).unwrap_or(0);
    let (mut means, mut inv_stds) = (Vec::with_capacity(rows), Vec::with_capacity(rows));
    for row in v.chunks_mut(cols.max(1)) {
        let mean = row.iter().sum::<f64>() / cols as f64;
        let var = row.iter().map(|&a| (a - mean) * (a - mean)).sum::<f64>() / cols as f64;
        let inv = 1.0 / (var + epsilon as f64).sqrt();
        for (j, y) in row.iter_mut().enumerate() {
            *y = (*y - mean) * inv * scale[j] + bias.as_ref().map_or(0.0, |b| b[j]);
        }
        means.push(mean);
        inv_stds.push(inv);
    }
    let stat_shape: Vec<usize> = x
        .shape()
        .iter()
        .enumerate()
        .map(|(i, &d)| if i < ax { d } else { 1 })
        .collect();
    let dt = x.dtype();
    Ok(vec![
        finish(op, dt, x.shape().to_vec(), v)?,
        finish(op, dt, stat_shape.clone(), means)?,
        finish(op, dt, stat_shape, inv_stds)?,
    ])
}

/// `RmsNormalization` over the axes from `axis` on: `x / sqrt(mean(x^2) + epsilon) * scale`.
fn rms_norm(
    op: &Op,
    inputs: &[Option<&Tensor>],
    x: &Tensor,
    axis: i64,
    epsilon: f32,
) -> Result<Tensor, InterpError> {
    if x.rank() == 0 {
        return Err(InterpError::invalid(op, "input is a scalar"));
    }
    let ax = norm_axis(op, axis, x.rank())?;
    let norm_shape = &x.shape()[ax..];
    let cols: usize = norm_shape.iter().product();
    let scale = param_to(op, arg(op, inputs, 1)?, "scale", norm_shape)?;
    let mut v = floats(op, x)?;
    for row in v.chunks_mut(cols.max(1)) {
        let ms = row.iter().map(|&a| a * a).sum::<f64>() / cols as f64;
        let inv = 1.0 / (ms + epsilon as f64).sqrt();
        for (j, y) in row.iter_mut().enumerate() {
            *y *= inv * scale[j];
        }
    }
    finish(op, x.dtype(), x.shape().to_vec(), v)
}

/// `InstanceNormalization`: operands `x, scale, bias`; each `(n, c)` plane is normalized.
fn instance_norm(
    op: &Op,
    inputs: &[Option<&Tensor>],
    x: &Tensor,
    epsilon: f32,
) -> Result<Tensor, InterpError> {
    if x.rank() < 2 {
        return Err(InterpError::invalid(op, "input needs rank 2 or more"));
    }
    let (_, c, s) = nc_spatial(op, x)?;
    let scale = channel_param(op, inputs, 1, "scale", c)?;
    let bias = channel_param(op, inputs, 2, "bias", c)?;
    let mut v = floats(op, x)?;
    for (b, plane) in v.chunks_mut(s.max(1)).enumerate() {
        if s == 0 {
            break;
        }
        let ch = b % c;
        let mean = plane.iter().sum::<f64>() / s as f64;
        let var = plane.iter().map(|&a| (a - mean) * (a - mean)).sum::<f64>() / s as f64;
        let k = scale[ch] / (var + epsilon as f64).sqrt();
        for y in plane {
            *y = (*y - mean) * k + bias[ch];
        }
    }
    finish(op, x.dtype(), x.shape().to_vec(), v)
}

/// `LRN` across channels: `x / (bias + alpha / size * sum of squares over the window)^beta`,
/// the window running from `c - floor((size-1)/2)` to `c + ceil((size-1)/2)`.
fn lrn(
    op: &Op,
    x: &Tensor,
    alpha: f32,
    beta: f32,
    bias: f32,
    size: i64,
) -> Result<Tensor, InterpError> {
    if x.rank() < 2 {
        return Err(InterpError::invalid(op, "input needs rank 2 or more"));
    }
    if size < 1 {
        return Err(InterpError::invalid(
            op,
            format!("size {size} is not positive"),
        ));
    }
    let (n, c, s) = nc_spatial(op, x)?;
    let v = floats(op, x)?;
    let (before, after) = (((size - 1) / 2) as usize, (size / 2) as usize);
    let k = alpha as f64 / size as f64;
    let mut out = vec![0.0; v.len()];
    for b in 0..n {
        for ch in 0..c {
            let lo = ch.saturating_sub(before);
            let hi = (ch + after).min(c - 1);
            for p in 0..s {
                let mut sq = 0.0;
                for w in lo..=hi {
                    let a = v[(b * c + w) * s + p];
                    sq += a * a;
                }
                let at = (b * c + ch) * s + p;
                out[at] = v[at] / (bias as f64 + k * sq).powf(beta as f64);
            }
        }
    }
    finish(op, x.dtype(), x.shape().to_vec(), out)
}

/// `MeanVarianceNormalization` over `axes`: `(x - mean) / (sqrt(var) + 1e-9)` as the ONNX
/// function body defines it.
fn mvn(op: &Op, x: &Tensor, axes: &[i64]) -> Result<Tensor, InterpError> {
    let rank = x.rank();
    let mut mask = vec![false; rank];
    for &a in axes {
        let ax = norm_axis(op, a, rank)?;
        if ax >= rank {
            return Err(InterpError::invalid(
                op,
                format!("axis {a} out of range for rank {rank}"),
            ));
        }
        mask[ax] = true;
    }
    let shape = x.shape();
    let keep: Vec<usize> = shape
        .iter()
        .zip(&mask)
        .map(|(&d, &m)| if m { 1 } else { d })
        .collect();
    let count = x.numel() / keep.iter().product::<usize>().max(1);
    let mean_of = |v: &[f64]| -> Vec<f64> {
        fold(v, shape, &keep, 0.0, |a, x| a + x)
            .into_iter()
            .map(|s| s / count as f64)
            .collect()
    };
    let v = floats(op, x)?;
    let mean = mean_of(&v);
    let diff = zip2(&v, shape, &mean, &keep, shape, |a, m| a - m);
    let sq: Vec<f64> = diff.iter().map(|d| d * d).collect();
    let var = mean_of(&sq);
    let y = zip2(&diff, shape, &var, &keep, shape, |d, v| {
        d / (v.sqrt() + 1e-9)
    });
    finish(op, x.dtype(), shape.to_vec(), y)
}

/// The three softmax-like ops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Soft {
    /// `e^x / sum(e^x)`.
    Softmax,
    /// `x - max - ln(sum(e^(x - max)))`.
    Log,
    /// 1 at the first maximum, 0 elsewhere.
    Hard,
}

/// Softmax-like ops along `axis`; with `coerce_2d` the input is flattened to 2-D at `axis` and
/// each row is normalized (the opset < 13 form).
fn softmax(
    op: &Op,
    x: &Tensor,
    axis: i64,
    coerce_2d: bool,
    kind: Soft,
) -> Result<Tensor, InterpError> {
    let shape: Vec<usize> = if x.rank() == 0 {
        vec![1]
    } else {
        x.shape().to_vec()
    };
    let ax = norm_axis(op, axis, shape.len())?;
    let outer: usize = shape[..ax].iter().product();
    let (n, inner) = if coerce_2d {
        (shape[ax..].iter().product(), 1)
    } else {
        (shape[ax], shape[ax + 1..].iter().product())
    };
    let v = floats(op, x)?;
    let mut out = vec![0.0; v.len()];
    for o in 0..outer {
        for i in 0..inner {
            let at = |j: usize| (o * n + j) * inner + i;
            let mut max = f64::NEG_INFINITY;
            let mut arg = 0;
            for j in 0..n {
                if v[at(j)] > max {
                    max = v[at(j)];
                    arg = j;
                }
            }
            match kind {
                Soft::Hard => {
                    if n > 0 {
                        out[at(arg)] = 1.0;
                    }
                }
                Soft::Softmax | Soft::Log => {
                    let mut sum = 0.0;
                    for j in 0..n {
                        let e = (v[at(j)] - max).exp();
                        out[at(j)] = e;
                        sum += e;
                    }
                    for j in 0..n {
                        out[at(j)] = if kind == Soft::Log {
                            v[at(j)] - max - sum.ln()
                        } else {
                            out[at(j)] / sum
                        };
                    }
                }
            }
        }
    }
    finish(op, x.dtype(), x.shape().to_vec(), out)
}

#[cfg(test)]
#[path = "norm_tests.rs"]
mod tests;
