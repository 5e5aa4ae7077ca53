//! `Einsum`: general Einstein summation with explicit or implicit output, `...` ellipsis
//! (broadcast across operands), repeated letters (diagonals and traces) and any number of operands.
//!
//! The evaluation is a plain index loop: every output element sums, over all values of the summed
//! labels, the product of one element of each operand. It computes in `f64`.

use super::elem::{checked_numel, strided_indices};
use super::InterpError;
use sparsec_ir::tensor::strides;
use sparsec_ir::{Op, Tensor};
use std::collections::BTreeMap;

/// One subscript of a term: a letter or the ellipsis.
#[derive(Clone, Copy, PartialEq)]
enum Sub {
    Letter(char),
    Ellipsis,
}

/// Parses one term (`ab...c`) of an equation.
fn parse_term(op: &Op, term: &str) -> Result<Vec<Sub>, InterpError> {
    let mut out = Vec::new();
    let mut chars = term.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '.' {
            if chars.next() != Some('.') || chars.next() != Some('.') {
                return Err(InterpError::invalid(
                    op,
                    format!("bad ellipsis in term `{term}`"),
                ));
            }
            if out.contains(&Sub::Ellipsis) {
                return Err(InterpError::invalid(
                    op,
                    format!("two ellipses in term `{term}`"),
                ));
            }
            out.push(Sub::Ellipsis);
        } else if c.is_ascii_alphabetic() {
            out.push(Sub::Letter(c));
        } else {
            return Err(InterpError::invalid(
                op,
                format!("bad character `{c}` in term `{term}`"),
            ));
        }
    }
    Ok(out)
}

/// Evaluates `equation` on `operands`.
pub(crate) fn einsum(op: &Op, equation: &str, operands: &[&Tensor]) -> Result<Tensor, InterpError> {
    let eq: String = equation.chars().filter(|c| !c.is_whitespace()).collect();
    let (lhs, rhs) = match eq.split_once("->") {
        Some((l, r)) => (l, Some(r)),
        None => (eq.as_str(), None),
    };
    let terms = lhs
        .split(',')
        .map(|t| parse_term(op, t))
        .collect::<Result<Vec<_>, _>>()?;
    if terms.len() != operands.len() {
        return Err(InterpError::invalid(
            op,
            format!(
                "equation `{equation}` has {} terms for {} operands",
                terms.len(),
                operands.len()
            ),
        ));
    }
    let dtype = operands
        .first()
        .map(|t| t.dtype())
        .ok_or_else(|| InterpError::invalid(op, "no operands"))?;
    // Label ids: letters first (in order of appearance), then one id per ellipsis dimension.
    let mut letter_ids: BTreeMap<char, usize> = BTreeMap::new();
    let mut letter_count: BTreeMap<char, usize> = BTreeMap::new();
    let mut n_ell = 0usize;
    for (term, t) in terms.iter().zip(operands) {
        let letters = term.iter().filter(|s| **s != Sub::Ellipsis).count();
        let has_ell = term.contains(&Sub::Ellipsis);
        if t.rank() < letters || (!has_ell && t.rank() != letters) {
            return Err(InterpError::invalid(
                op,
                format!(
                    "operand of shape {:?} does not match its term in `{equation}`",
                    t.shape()
                ),
            ));
        }
        if has_ell {
            n_ell = n_ell.max(t.rank() - letters);
        }
        for s in term {
            if let Sub::Letter(c) = s {
                let next = letter_ids.len();
                letter_ids.entry(*c).or_insert(next);
                *letter_count.entry(*c).or_insert(0) += 1;
            }
        }
    }
    let n_letters = letter_ids.len();
    let n_labels = n_letters + n_ell;
    // The label of every axis of every operand, and the size of every label.
    let mut sizes = vec![1usize; n_labels];
    let mut axis_labels: Vec<Vec<usize>> = Vec::with_capacity(operands.len());
    for (term, t) in terms.iter().zip(operands) {
        let letters = term.iter().filter(|s| **s != Sub::Ellipsis).count();
        let e = t.rank() - letters;
        let mut labels = Vec::with_capacity(t.rank());
        for s in term {
            match s {
                Sub::Letter(c) => labels.push(letter_ids[c]),
                Sub::Ellipsis => labels.extend((n_ell - e..n_ell).map(|i| n_letters + i)),
            }
        }
        for (&l, &d) in labels.iter().zip(t.shape()) {
            if sizes[l] == 1 {
                sizes[l] = d;
            } else if d != 1 && d != sizes[l] {
                return Err(InterpError::invalid(
                    op,
                    format!(
                        "dimension sizes {} and {d} disagree in `{equation}`",
                        sizes[l]
                    ),
                ));
            }
        }
        axis_labels.push(labels);
    }
    let ell_ids: Vec<usize> = (n_letters..n_labels).collect();
    let out_labels: Vec<usize> = match rhs {
        Some(r) => {
            let mut out = Vec::new();
            for s in parse_term(op, r)? {
                match s {
                    Sub::Letter(c) => {
                        let id = *letter_ids.get(&c).ok_or_else(|| {
                            InterpError::invalid(
                                op,
                                format!("output label `{c}` is not an input label"),
                            )
                        })?;
                        if out.contains(&id) {
                            return Err(InterpError::invalid(
                                op,
                                format!("output label `{c}` repeats"),
                            ));
                        }
                        out.push(id);
                    }
                    Sub::Ellipsis => out.extend(&ell_ids),
                }
            }
            out
        }
        None => {
            let mut out = ell_ids.clone();
            // BTreeMap iterates letters in ASCII order.
            out.extend(
                letter_count
                    .iter()
                    .filter(|(_, &n)| n == 1)
                    .map(|(c, _)| letter_ids[c]),
            );
            out
        }
    };
    let sum_labels: Vec<usize> = (0..n_labels).filter(|l| !out_labels.contains(l)).collect();
    let out_shape: Vec<usize> = out_labels.iter().map(|&l| sizes[l]).collect();
    let sum_shape: Vec<usize> = sum_labels.iter().map(|&l| sizes[l]).collect();
    checked_numel(op, &out_shape)?;
    checked_numel(op, &sum_shape)?;
    // Per operand: the stride of each label (summed over repeated axes, 0 when broadcast).
    let mut out_offsets = Vec::with_capacity(operands.len());
    let mut sum_offsets = Vec::with_capacity(operands.len());
    let values: Vec<Vec<f64>> = operands.iter().map(|t| t.to_f64_vec()).collect();
    for (labels, t) in axis_labels.iter().zip(operands) {
        let st = strides(t.shape());
        let mut label_stride = vec![0usize; n_labels];
        for ((&l, &s), &d) in labels.iter().zip(&st).zip(t.shape()) {
            if d != 1 || sizes[l] == 1 {
                label_stride[l] += s;
            }
        }
        let eo: Vec<usize> = out_labels.iter().map(|&l| label_stride[l]).collect();
        let es: Vec<usize> = sum_labels.iter().map(|&l| label_stride[l]).collect();
        out_offsets.push(strided_indices(&out_shape, &eo, 0));
        sum_offsets.push(strided_indices(&sum_shape, &es, 0));
    }
    let n_out: usize = out_shape.iter().product();
    let n_sum: usize = sum_shape.iter().product();
    let mut result = vec![0.0f64; n_out];
    for (o, r) in result.iter_mut().enumerate() {
        let mut acc = 0.0;
        for s in 0..n_sum {
            let mut p = 1.0;
            for k in 0..operands.len() {
                p *= values[k][out_offsets[k][o] + sum_offsets[k][s]];
            }
            acc += p;
        }
        *r = acc;
    }
    Ok(Tensor::from_f64s(dtype, &out_shape, result))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(shape: &[usize]) -> Tensor {
        let n: usize = shape.iter().product();
        Tensor::from_f32(shape, (0..n).map(|i| i as f32).collect())
    }

    fn op(eq: &str) -> Op {
        Op::Einsum {
            equation: eq.to_string(),
        }
    }

    fn ein(eq: &str, ts: &[&Tensor]) -> Tensor {
        einsum(&op(eq), eq, ts).unwrap()
    }

    #[test]
    fn matmul_transpose_and_sums() {
        let a = seq(&[2, 3]);
        let b = seq(&[3, 2]);
        let y = ein("ij,jk->ik", &[&a, &b]);
        assert_eq!(y.as_f32().unwrap(), &[10.0, 13.0, 28.0, 40.0]);
        // Implicit output: letters appearing once, sorted.
        let y = ein("ij,jk", &[&a, &b]);
        assert_eq!(y.as_f32().unwrap(), &[10.0, 13.0, 28.0, 40.0]);
        let y = ein("ji", &[&a]);
        assert_eq!(y.shape(), &[3, 2]);
        assert_eq!(y.as_f32().unwrap(), &[0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
        let y = ein("ij->", &[&a]);
        assert_eq!(y.shape(), &[] as &[usize]);
        assert_eq!(y.as_f32().unwrap(), &[15.0]);
        let y = ein("ij -> i", &[&a]);
        assert_eq!(y.as_f32().unwrap(), &[3.0, 12.0]);
    }

    #[test]
    fn diagonal_trace_and_ellipsis() {
        let m = seq(&[3, 3]);
        assert_eq!(ein("ii", &[&m]).as_f32().unwrap(), &[12.0]);
        assert_eq!(ein("ii->i", &[&m]).as_f32().unwrap(), &[0.0, 4.0, 8.0]);
        // Batched diagonal with an ellipsis: [2,3,3] -> [2,3].
        let b = seq(&[2, 3, 3]);
        let y = ein("...ii->...i", &[&b]);
        assert_eq!(y.shape(), &[2, 3]);
        assert_eq!(y.as_f32().unwrap(), &[0.0, 4.0, 8.0, 9.0, 13.0, 17.0]);
        // Batched matmul with broadcast ellipsis dims: [2,1,2] x [2,1] -> [2,1].
        let x = seq(&[2, 1, 2]);
        let w = seq(&[2, 1]);
        let y = ein("...ij,jk->...ik", &[&x, &w]);
        assert_eq!(y.shape(), &[2, 1, 1]);
        assert_eq!(y.as_f32().unwrap(), &[1.0, 3.0]);
        // Three operands and an outer product.
        let v = seq(&[2]);
        let y = ein("i,j,k->ijk", &[&v, &v, &v]);
        assert_eq!(y.shape(), &[2, 2, 2]);
        assert_eq!(
            y.as_f32().unwrap(),
            &[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]
        );
        // Inner product of vectors.
        let u = Tensor::from_f32(&[3], vec![1.0, 2.0, 3.0]);
        assert_eq!(ein("i,i", &[&u, &u]).as_f32().unwrap(), &[14.0]);
    }

    #[test]
    fn bad_equations() {
        let a = seq(&[2, 3]);
        assert!(einsum(&op("ijk"), "ijk", &[&a]).is_err());
        assert!(einsum(&op("ij->k"), "ij->k", &[&a]).is_err());
        assert!(einsum(&op("ij,jk"), "ij,jk", &[&a]).is_err());
        assert!(einsum(&op("ii"), "ii", &[&a]).is_err());
        assert!(einsum(&op("i.j"), "i.j", &[&a]).is_err());
    }
}
