//! Helpers shared by the interpreter's op families: broadcasting, axes, operand access.

use super::InterpError;
use sparsec_ir::tensor::strides;
use sparsec_ir::{Op, Tensor};

/// The numpy broadcast of two shapes.
pub fn broadcast_shape(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let r = a.len().max(b.len());
    let mut out = vec![0; r];
    for i in 0..r {
        let da = if i + a.len() >= r {
            a[i + a.len() - r]
        } else {
            1
        };
        let db = if i + b.len() >= r {
            b[i + b.len() - r]
        } else {
            1
        };
        out[i] = if da == db {
            da
        } else if da == 1 {
            db
        } else if db == 1 {
            da
        } else {
            return None;
        };
    }
    Some(out)
}

/// For every flat index of `out_shape`, the flat index of the element of a tensor of shape
/// `in_shape` that broadcasts to it.
pub fn broadcast_indices(in_shape: &[usize], out_shape: &[usize]) -> Vec<usize> {
    let r = out_shape.len();
    let off = r - in_shape.len();
    let in_strides = strides(in_shape);
    // Stride 0 on broadcast axes.
    let eff: Vec<usize> = (0..r)
        .map(|i| {
            if i < off || in_shape[i - off] == 1 {
                0
            } else {
                in_strides[i - off]
            }
        })
        .collect();
    super::elem::strided_indices(out_shape, &eff, 0)
}

/// Normalizes a possibly negative axis against `rank`.
pub fn norm_axis(op: &Op, axis: i64, rank: usize) -> Result<usize, InterpError> {
    let a = if axis < 0 { axis + rank as i64 } else { axis };
    if a < 0 || a >= rank.max(1) as i64 {
        return Err(InterpError::invalid(
            op,
            format!("axis {axis} out of range for rank {rank}"),
        ));
    }
    Ok(a as usize)
}

/// Operand `k`, which must be present.
pub fn arg<'a>(
    op: &Op,
    inputs: &[Option<&'a Tensor>],
    k: usize,
) -> Result<&'a Tensor, InterpError> {
    inputs
        .get(k)
        .copied()
        .flatten()
        .ok_or_else(|| InterpError::invalid(op, format!("operand {k} is missing")))
}

/// Operand `k` if present.
pub fn opt_arg<'a>(inputs: &[Option<&'a Tensor>], k: usize) -> Option<&'a Tensor> {
    inputs.get(k).copied().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasting() {
        assert_eq!(broadcast_shape(&[2, 1, 3], &[4, 1]), Some(vec![2, 4, 3]));
        assert_eq!(broadcast_shape(&[2], &[3]), None);
        assert_eq!(broadcast_indices(&[3], &[2, 3]), vec![0, 1, 2, 0, 1, 2]);
        assert_eq!(broadcast_indices(&[2, 1], &[2, 3]), vec![0, 0, 0, 1, 1, 1]);
        assert_eq!(broadcast_indices(&[], &[2]), vec![0, 0]);
    }
}
