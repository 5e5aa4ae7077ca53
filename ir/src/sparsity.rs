//! Sparsity facts of a weight, computed when the weight is created.
//!
//! A weight of shape `[d0, d1, ...]` is viewed as a matrix of `d0` rows (output channels of a Conv,
//! rows of a PyTorch `Linear` weight) and `d1 * d2 * ...` columns (the reduction dimension of those
//! layers). Patterns are detected on that view; N:M groups run along a row (consecutive columns),
//! or, when that fails, down a column (consecutive rows, the reduction dimension of a `MatMul`
//! weight `[K, N]`).

use crate::tensor::Tensor;
use std::fmt;

/// The sparsity pattern detected in a weight.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Pattern {
    /// Every element is nonzero.
    Dense,
    /// Every element is zero.
    Zero,
    /// Some rows (output channels) are all zero; every other row is fully dense.
    ZeroRows,
    /// Zeros come in whole `r x c` blocks and every other block is fully dense.
    Block {
        /// Block height (rows).
        r: u8,
        /// Block width (columns).
        c: u8,
    },
    /// At most `n` nonzeros in every group of `m` consecutive elements along the reduction dimension.
    NM {
        /// Nonzeros allowed per group.
        n: u8,
        /// Group size.
        m: u8,
    },
    /// Zeros without a structure sparsec exploits.
    Unstructured,
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pattern::Dense => f.write_str("dense"),
            Pattern::Zero => f.write_str("zero"),
            Pattern::ZeroRows => f.write_str("zero-rows"),
            Pattern::Block { r, c } => write!(f, "block{r}x{c}"),
            Pattern::NM { n, m } => write!(f, "{n}:{m}"),
            Pattern::Unstructured => f.write_str("unstructured"),
        }
    }
}

impl Pattern {
    /// Parses the text produced by `Display`.
    pub fn parse(s: &str) -> Option<Pattern> {
        Some(match s {
            "dense" => Pattern::Dense,
            "zero" => Pattern::Zero,
            "zero-rows" => Pattern::ZeroRows,
            "unstructured" => Pattern::Unstructured,
            _ => {
                if let Some(rest) = s.strip_prefix("block") {
                    let (r, c) = rest.split_once('x')?;
                    Pattern::Block {
                        r: r.parse().ok()?,
                        c: c.parse().ok()?,
                    }
                } else {
                    let (n, m) = s.split_once(':')?;
                    Pattern::NM {
                        n: n.parse().ok()?,
                        m: m.parse().ok()?,
                    }
                }
            }
        })
    }
}

/// Facts about the zeros of a weight.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SparsityFacts {
    /// Number of elements.
    pub numel: usize,
    /// Number of nonzero elements.
    pub nnz: usize,
    /// Number of all-zero rows (output channels) in the matrix view.
    pub zero_rows: usize,
    /// The detected pattern.
    pub pattern: Pattern,
}

/// N:M candidates, sparsest (`n / m`) first, so the tightest bound a weight meets is reported: a
/// 2:8 weight also meets 2:4, and a 4:8 weight 2:4 only by chance.
const NM_CANDIDATES: [(usize, usize); 6] = [(1, 8), (1, 4), (2, 8), (3, 8), (2, 4), (4, 8)];
/// Block candidates, largest first.
const BLOCK_CANDIDATES: [(usize, usize); 7] =
    [(8, 8), (4, 4), (8, 1), (1, 8), (4, 1), (1, 4), (2, 2)];

impl SparsityFacts {
    /// Computes the facts of a tensor (see the module doc for the matrix view).
    pub fn compute(t: &Tensor) -> SparsityFacts {
        let numel = t.numel();
        let (rows, cols) = matrix_view(t.shape());
        let d = t.data();
        let nz: Vec<bool> = (0..numel).map(|i| !d.is_zero(i)).collect();
        let nnz = nz.iter().filter(|&&b| b).count();
        let mut zero_rows = 0;
        let mut partial_rows = false;
        for r in 0..rows {
            let row = &nz[r * cols..(r + 1) * cols];
            let k = row.iter().filter(|&&b| b).count();
            if k == 0 {
                zero_rows += 1;
            } else if k < cols {
                partial_rows = true;
            }
        }
        let pattern =
            if nnz == numel {
                Pattern::Dense
            } else if nnz == 0 {
                Pattern::Zero
            } else if !partial_rows {
                Pattern::ZeroRows
            } else if let Some((r, c)) = BLOCK_CANDIDATES
                .iter()
                .copied()
                .find(|&(r, c)| is_block(&nz, rows, cols, r, c))
            {
                Pattern::Block {
                    r: r as u8,
                    c: c as u8,
                }
            } else if let Some((n, m)) = NM_CANDIDATES.iter().copied().find(|&(n, m)| {
                is_nm_rows(&nz, rows, cols, n, m) || is_nm_cols(&nz, rows, cols, n, m)
            }) {
                Pattern::NM {
                    n: n as u8,
                    m: m as u8,
                }
            } else {
                Pattern::Unstructured
            };
        SparsityFacts {
            numel,
            nnz,
            zero_rows,
            pattern,
        }
    }

    /// Fraction of nonzero elements (1.0 for an empty tensor).
    pub fn density(&self) -> f64 {
        if self.numel == 0 {
            1.0
        } else {
            self.nnz as f64 / self.numel as f64
        }
    }
}

/// The `(rows, cols)` matrix view of a shape: `d0 x (d1 * d2 * ...)`; a vector is one row.
pub fn matrix_view(shape: &[usize]) -> (usize, usize) {
    match shape.len() {
        0 => (1, 1),
        1 => (1, shape[0]),
        _ => (shape[0], shape[1..].iter().product()),
    }
}

/// Every `r x c` block is either all zero or all nonzero, the matrix divides into whole blocks, and
/// the blocks hold more than one element of structure (at least one zero block).
fn is_block(nz: &[bool], rows: usize, cols: usize, r: usize, c: usize) -> bool {
    if !rows.is_multiple_of(r) || !cols.is_multiple_of(c) || rows * cols == 0 {
        return false;
    }
    for br in (0..rows).step_by(r) {
        for bc in (0..cols).step_by(c) {
            let first = nz[br * cols + bc];
            for i in br..br + r {
                for j in bc..bc + c {
                    if nz[i * cols + j] != first {
                        return false;
                    }
                }
            }
        }
    }
    true
}

/// At most `n` nonzeros in each group of `m` consecutive columns of every row.
fn is_nm_rows(nz: &[bool], rows: usize, cols: usize, n: usize, m: usize) -> bool {
    if !cols.is_multiple_of(m) {
        return false;
    }
    (0..rows).all(|r| {
        nz[r * cols..(r + 1) * cols]
            .chunks(m)
            .all(|g| g.iter().filter(|&&b| b).count() <= n)
    })
}

/// At most `n` nonzeros in each group of `m` consecutive rows of every column.
fn is_nm_cols(nz: &[bool], rows: usize, cols: usize, n: usize, m: usize) -> bool {
    if !rows.is_multiple_of(m) || rows < m {
        return false;
    }
    (0..cols).all(|c| {
        (0..rows)
            .step_by(m)
            .all(|r0| (r0..r0 + m).filter(|&r| nz[r * cols + c]).count() <= n)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(shape: &[usize], v: &[f32]) -> SparsityFacts {
        SparsityFacts::compute(&Tensor::from_f32(shape, v.to_vec()))
    }

    #[test]
    fn detects_patterns() {
        assert_eq!(facts(&[2, 2], &[1., 2., 3., 4.]).pattern, Pattern::Dense);
        assert_eq!(facts(&[2, 2], &[0.; 4]).pattern, Pattern::Zero);
        let f = facts(&[2, 2], &[0., 0., 3., 4.]);
        assert_eq!((f.pattern, f.zero_rows, f.nnz), (Pattern::ZeroRows, 1, 2));
        let two_four = [
            1., 0., 2., 0., 0., 3., 0., 4., 5., 6., 0., 0., 0., 0., 7., 8.,
        ];
        assert_eq!(
            facts(&[2, 8], &two_four).pattern,
            Pattern::NM { n: 2, m: 4 }
        );
        let block = [1., 1., 1., 1., 0., 0., 0., 0.];
        assert_eq!(
            facts(&[1, 8], &block).pattern,
            Pattern::Block { r: 1, c: 4 }
        );
        let un = [1., 1., 1., 0., 0., 0., 0., 1., 0.];
        assert_eq!(facts(&[1, 9], &un).pattern, Pattern::Unstructured);
        assert!((facts(&[1, 9], &un).density() - 4.0 / 9.0).abs() < 1e-12);
    }

    #[test]
    fn reports_the_sparsest_nm_bound() {
        // Two nonzeros per 8, both in the first half of each group of 8: 2:8 (it also meets 2:4).
        let two_eight = [
            1., 0., 2., 0., 0., 0., 0., 0., 0., 0., 0., 0., 3., 4., 0., 0.,
        ];
        assert_eq!(
            facts(&[1, 16], &two_eight).pattern,
            Pattern::NM { n: 2, m: 8 }
        );
        // Along axis 0 (`B[K, N]`, K = 8): one nonzero per 4 rows of each column is 1:4.
        let mut one_four = [0.0f32; 16];
        for (c, r) in [(0, 0), (1, 2), (0, 5), (1, 7)] {
            one_four[r * 2 + c] = 1.0;
        }
        assert_eq!(
            facts(&[8, 2], &one_four).pattern,
            Pattern::NM { n: 1, m: 4 }
        );
    }

    #[test]
    fn pattern_text_round_trips() {
        for p in [
            Pattern::Dense,
            Pattern::Zero,
            Pattern::ZeroRows,
            Pattern::Block { r: 4, c: 1 },
            Pattern::NM { n: 2, m: 4 },
            Pattern::Unstructured,
        ] {
            assert_eq!(Pattern::parse(&p.to_string()), Some(p));
        }
    }
}
