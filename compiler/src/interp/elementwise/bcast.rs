//! Numpy broadcasting without per-element index vectors: a walker over an output shape that yields,
//! for every output element in row-major order, the flat index of the element each operand
//! contributes.
//!
//! The reductions reuse it: a reduced tensor with kept dimensions broadcasts to the input shape, so
//! walking the input shape with both shapes maps every input element to its accumulator.

use sparsec_ir::tensor::strides;

/// Calls `f` with the operand flat indices of every element of `out_shape`, in row-major order.
///
/// Each shape in `shapes` must broadcast to `out_shape` (right-aligned, each dimension equal or 1);
/// the caller checks this (with `util::broadcast_shape`).
pub(crate) fn walk<const N: usize>(
    out_shape: &[usize],
    shapes: [&[usize]; N],
    mut f: impl FnMut([usize; N]),
) {
    let r = out_shape.len();
    let n: usize = out_shape.iter().product();
    if n == 0 {
        return;
    }
    // Effective strides per operand and axis: 0 on broadcast axes.
    let mut st = vec![[0usize; N]; r];
    for (k, shape) in shapes.iter().enumerate() {
        let off = r - shape.len();
        let s = strides(shape);
        for ax in off..r {
            if shape[ax - off] != 1 {
                st[ax][k] = s[ax - off];
            }
        }
    }
    if r == 0 {
        f([0; N]);
        return;
    }
    let inner = out_shape[r - 1];
    let inner_st = st[r - 1];
    let mut idx = vec![0usize; r];
    let mut base = [0usize; N];
    loop {
        let mut cur = base;
        for _ in 0..inner {
            f(cur);
            for k in 0..N {
                cur[k] += inner_st[k];
            }
        }
        // Advance the outer odometer.
        let mut ax = r - 1;
        loop {
            if ax == 0 {
                return;
            }
            ax -= 1;
            idx[ax] += 1;
            for k in 0..N {
                base[k] += st[ax][k];
            }
            if idx[ax] < out_shape[ax] {
                break;
            }
            for k in 0..N {
                base[k] -= st[ax][k] * idx[ax];
            }
            idx[ax] = 0;
        }
    }
}

/// Applies `f` elementwise to two operands broadcast to `out_shape`.
pub(crate) fn zip2<A: Copy, B: Copy, R>(
    a: &[A],
    a_shape: &[usize],
    b: &[B],
    b_shape: &[usize],
    out_shape: &[usize],
    f: impl Fn(A, B) -> R,
) -> Vec<R> {
    if a_shape == out_shape && b_shape == out_shape {
        return a.iter().zip(b).map(|(&x, &y)| f(x, y)).collect();
    }
    if a_shape == out_shape && b.len() == 1 {
        let y = b[0];
        return a.iter().map(|&x| f(x, y)).collect();
    }
    if b_shape == out_shape && a.len() == 1 {
        let x = a[0];
        return b.iter().map(|&y| f(x, y)).collect();
    }
    let mut out = Vec::with_capacity(out_shape.iter().product());
    walk(out_shape, [a_shape, b_shape], |[i, j]| {
        out.push(f(a[i], b[j]))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interp::util::broadcast_indices;

    #[test]
    fn walk_agrees_with_broadcast_indices() {
        let cases: [(&[usize], &[usize]); 6] = [
            (&[2, 3, 4], &[3, 1]),
            (&[2, 3, 4], &[]),
            (&[2, 1, 4], &[2, 1, 4]),
            (&[5], &[1]),
            (&[3, 1, 2, 2], &[1, 2, 1]),
            (&[], &[]),
        ];
        for (out, inp) in cases {
            let mut got = Vec::new();
            walk(out, [out, inp], |[i, j]| got.push((i, j)));
            let want: Vec<(usize, usize)> = broadcast_indices(inp, out)
                .into_iter()
                .enumerate()
                .collect();
            assert_eq!(got, want, "out {out:?} in {inp:?}");
        }
        let mut count = 0;
        walk(&[2, 0, 3], [&[2, 0, 3]], |_| count += 1);
        assert_eq!(count, 0);
    }

    #[test]
    fn zip2_broadcasts_both_sides() {
        let a = [1, 2, 3];
        let b = [10, 20];
        let out = zip2(&a, &[1, 3], &b, &[2, 1], &[2, 3], |x, y| x + y);
        assert_eq!(out, vec![11, 12, 13, 21, 22, 23]);
        let out = zip2(&[5], &[], &a, &[3], &[3], |x, y| x - y);
        assert_eq!(out, vec![4, 3, 2]);
    }
}
