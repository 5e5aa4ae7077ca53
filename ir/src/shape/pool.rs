//! Shape inference of the pools: `MaxPool` (with its optional i64 indices result),
//! `AveragePool`, `LpPool` and the global pools.

use super::conv::{window_out, windows, AutoPad};
use super::ctx::Ctx;
use super::ShapeError;
use crate::op::Op;
use crate::types::{DType, Dim, TensorType};

/// Infers the results of a pool.
pub(crate) fn infer(cx: &Ctx) -> Result<Vec<TensorType>, ShapeError> {
    let global = matches!(
        cx.op,
        Op::GlobalAveragePool {} | Op::GlobalMaxPool {} | Op::GlobalLpPool { .. }
    );
    let x = cx.expect_min_rank(0, if global { 2 } else { 3 })?;
    let (auto_pad, ceil_mode, dilations, kernel_shape, pads, strides) = match cx.op {
        Op::GlobalAveragePool {} | Op::GlobalMaxPool {} | Op::GlobalLpPool { .. } => {
            let mut dims = x.dims[..2].to_vec();
            dims.extend((2..x.rank()).map(|_| Dim::Known(1)));
            return Ok(vec![cx.out(x.dtype, dims)]);
        }
        Op::MaxPool {
            auto_pad,
            ceil_mode,
            dilations,
            kernel_shape,
            pads,
            strides,
            ..
        }
        | Op::AveragePool {
            auto_pad,
            ceil_mode,
            dilations,
            kernel_shape,
            pads,
            strides,
            ..
        }
        | Op::LpPool {
            auto_pad,
            ceil_mode,
            dilations,
            kernel_shape,
            pads,
            strides,
            ..
        } => (auto_pad, *ceil_mode, dilations, kernel_shape, pads, strides),
        _ => return Err(cx.err("is not a pool")),
    };
    let n = x.rank() - 2;
    if kernel_shape.is_empty() {
        return Err(cx.err("attribute kernel_shape is required"));
    }
    let kernel = cx.per_axis("kernel_shape", kernel_shape, n, 1, 1)?;
    let kernel: Vec<Option<i64>> = kernel.into_iter().map(Some).collect();
    let wins = windows(cx, &kernel, strides, dilations, pads)?;
    let auto_pad = AutoPad::parse(cx, auto_pad)?;
    let mut dims = x.dims[..2].to_vec();
    for (i, w) in wins.iter().enumerate() {
        dims.push(window_out(
            cx,
            i + 2,
            &x.dims[i + 2],
            w,
            auto_pad,
            ceil_mode != 0,
        )?);
    }
    let mut out = vec![cx.out(x.dtype, dims.clone())];
    if cx.n_outputs > 1 {
        out.push(cx.out(DType::I64, dims));
    }
    Ok(out)
}
