//! Packing of a constant f32 weight matrix `W [rows x cols]` (row-major; rows are output features,
//! cols the reduction dimension K) into the sparse layouts the kernels read: [`Csr`] (u16 or u32
//! column indices), [`Bsr`] (r x c blocks) and [`Nm24`] (2:4 compressed), plus [`balance`], which
//! splits rows into parallel work units of about equal nonzero count.
//!
//! Each packing knows its [`byte_size`](Csr::byte_size): the bytes a batch-1 product streams
//! from memory, which is its cost when the product is memory bound.

use super::SparseError;

/// Width of the column indices of a packing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IndexWidth {
    /// Two bytes (matrices with at most 65536 columns).
    U16,
    /// Four bytes.
    U32,
}

impl IndexWidth {
    /// The narrowest width that holds every index below `n`.
    pub fn for_extent(n: usize) -> IndexWidth {
        if n <= 1 << 16 {
            IndexWidth::U16
        } else {
            IndexWidth::U32
        }
    }

    /// Bytes per index.
    pub fn bytes(self) -> usize {
        match self {
            IndexWidth::U16 => 2,
            IndexWidth::U32 => 4,
        }
    }
}

/// Checks that `w` holds a `rows x cols` matrix whose indices fit the packings.
fn check(name: &str, rows: usize, cols: usize, w: &[f32]) -> Result<(), SparseError> {
    let numel = rows.checked_mul(cols);
    if numel != Some(w.len()) {
        return Err(SparseError::Shape(format!(
            "weight `{name}`: {} values for a {rows} x {cols} matrix",
            w.len()
        )));
    }
    if rows == 0 || cols == 0 {
        return Err(SparseError::Shape(format!(
            "weight `{name}`: empty {rows} x {cols} matrix"
        )));
    }
    if rows > u32::MAX as usize / 2 || cols > u32::MAX as usize / 2 || w.len() > u32::MAX as usize {
        return Err(SparseError::Shape(format!(
            "weight `{name}`: {rows} x {cols} is too large to pack"
        )));
    }
    Ok(())
}

/// Compressed sparse rows: row `r`'s nonzeros are `values[row_ptr[r]..row_ptr[r + 1]]` at columns
/// `col_idx[..]` (ascending), stored with [`Csr::index_width`] bytes each.
#[derive(Clone, Debug, PartialEq)]
pub struct Csr {
    /// Number of rows (output features).
    pub rows: usize,
    /// Number of columns (the reduction dimension).
    pub cols: usize,
    /// `rows + 1` offsets into `col_idx` / `values`.
    pub row_ptr: Vec<u32>,
    /// Column of each nonzero.
    pub col_idx: Vec<u32>,
    /// Value of each nonzero.
    pub values: Vec<f32>,
}

impl Csr {
    /// Packs the nonzeros of `w` (`name` is for errors); exact zeros are dropped, NaN is kept.
    pub fn from_dense(name: &str, rows: usize, cols: usize, w: &[f32]) -> Result<Csr, SparseError> {
        check(name, rows, cols, w)?;
        let mut row_ptr = Vec::with_capacity(rows + 1);
        let (mut col_idx, mut values) = (Vec::new(), Vec::new());
        row_ptr.push(0);
        for row in w.chunks_exact(cols) {
            for (c, &v) in row.iter().enumerate() {
                if v != 0.0 {
                    col_idx.push(c as u32);
                    values.push(v);
                }
            }
            row_ptr.push(values.len() as u32);
        }
        Ok(Csr {
            rows,
            cols,
            row_ptr,
            col_idx,
            values,
        })
    }

    /// Number of stored nonzeros.
    pub fn nnz(&self) -> usize {
        self.values.len()
    }

    /// Width of the stored column indices (u16 when `cols <= 65536`).
    pub fn index_width(&self) -> IndexWidth {
        IndexWidth::for_extent(self.cols)
    }

    /// Nonzeros of row `r`.
    pub fn row_nnz(&self, r: usize) -> usize {
        (self.row_ptr[r + 1] - self.row_ptr[r]) as usize
    }

    /// Bytes of the packing: row pointers, indices and values.
    pub fn byte_size(&self) -> usize {
        4 * self.row_ptr.len() + self.nnz() * (4 + self.index_width().bytes())
    }

    /// The positions of the nonzeros, row by row, each row's in a fixed pseudo-random order (a
    /// permutation of `0..nnz` that keeps every row's nonzeros within the row's range).
    ///
    /// The batch products walk each row's nonzeros in this order, reading one row of `X^T` per
    /// nonzero: in column order those reads climb through `X^T` in even steps, which the
    /// hardware prefetchers seem to follow with useless fetches. The 4096 x 4096 90% product at
    /// batch 64: best kernel time 7.3-8.9 ms instead of 7.8-9.3 ms (six interleaved pairs); the
    /// MLP-4096 at batch 64 in `sparsec bench`: 11.5-11.8 ms instead of 12.1-12.7 (best of 40,
    /// four interleaved pairs). The sparse convolution keeps column order: scattered, it
    /// measured the same on ResNet-50 at 90% (neighbouring kernel columns share cache lines).
    pub fn scattered_order(&self) -> impl Iterator<Item = usize> + '_ {
        // xorshift64* with a fixed seed, so packing is deterministic.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        (0..self.rows).flat_map(move |r| {
            let (a, b) = (self.row_ptr[r] as usize, self.row_ptr[r + 1] as usize);
            let mut row: Vec<usize> = (a..b).collect();
            for i in (1..row.len()).rev() {
                state ^= state >> 12;
                state ^= state << 25;
                state ^= state >> 27;
                let x = state.wrapping_mul(0x2545_f491_4f6c_dd1d);
                row.swap(i, (x >> 33) as usize % (i + 1));
            }
            row
        })
    }
}

/// Block-sparse rows with `r x c` blocks. Block row `i` covers rows `i*r..` (the last one may be
/// shorter when `r` does not divide `rows`); its blocks are
/// `block_ptr[i]..block_ptr[i + 1]`, block `k` starting at column `block_col[k]`. Block columns
/// are aligned to `c` except the last one of a row, which starts at `cols - c` when `c` does not
/// divide `cols` (its columns already covered by the aligned block before it are stored as zero),
/// so every block lies inside the matrix. Each block stores `r * c` values column by column
/// (`values[k*r*c + j*r + i]` is row `i`, column `j` of block `k`); rows past the end are zero.
#[derive(Clone, Debug, PartialEq)]
pub struct Bsr {
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
    /// Block height (at most `rows`).
    pub r: usize,
    /// Block width (at most `cols`).
    pub c: usize,
    /// `ceil(rows / r) + 1` offsets into `block_col`.
    pub block_ptr: Vec<u32>,
    /// First column of each block.
    pub block_col: Vec<u32>,
    /// `r * c` values per block, column-major inside the block.
    pub values: Vec<f32>,
}

impl Bsr {
    /// Packs every `r x c` block of `w` that holds a nonzero. `r` and `c` are clamped to the
    /// matrix's dims.
    pub fn from_dense(
        name: &str,
        rows: usize,
        cols: usize,
        w: &[f32],
        r: usize,
        c: usize,
    ) -> Result<Bsr, SparseError> {
        check(name, rows, cols, w)?;
        if r == 0 || c == 0 || r > 64 || c > 64 {
            return Err(SparseError::Shape(format!(
                "weight `{name}`: unsupported block shape {r} x {c}"
            )));
        }
        let (r, c) = (r.min(rows), c.min(cols));
        let block_rows = rows.div_ceil(r);
        let aligned = cols / c;
        // Block starts: aligned ones, then a shifted tail block when `c` does not divide `cols`.
        let mut starts: Vec<usize> = (0..aligned).map(|j| j * c).collect();
        if !cols.is_multiple_of(c) {
            starts.push(cols - c);
        }
        let mut block_ptr = vec![0u32];
        let (mut block_col, mut values) = (Vec::new(), Vec::new());
        let mut block = vec![0.0f32; r * c];
        for bi in 0..block_rows {
            for &s in &starts {
                // Columns below `first` belong to the previous (aligned) block.
                let first = if s % c != 0 { aligned * c } else { s };
                block.iter_mut().for_each(|v| *v = 0.0);
                let mut any = false;
                for i in 0..r {
                    let row = bi * r + i;
                    if row >= rows {
                        break;
                    }
                    for j in 0..c {
                        let col = s + j;
                        let v = w[row * cols + col];
                        if col >= first && v != 0.0 {
                            block[j * r + i] = v;
                            any = true;
                        }
                    }
                }
                if any {
                    block_col.push(s as u32);
                    values.extend_from_slice(&block);
                }
            }
            block_ptr.push(block_col.len() as u32);
        }
        Ok(Bsr {
            rows,
            cols,
            r,
            c,
            block_ptr,
            block_col,
            values,
        })
    }

    /// Number of block rows.
    pub fn block_rows(&self) -> usize {
        self.block_ptr.len() - 1
    }

    /// Number of stored blocks.
    pub fn blocks(&self) -> usize {
        self.block_col.len()
    }

    /// Number of stored values (zeros inside blocks included).
    pub fn stored(&self) -> usize {
        self.values.len()
    }

    /// Width of the stored block columns.
    pub fn index_width(&self) -> IndexWidth {
        IndexWidth::for_extent(self.cols)
    }

    /// Bytes of the packing: block pointers, block columns and values.
    pub fn byte_size(&self) -> usize {
        4 * self.block_ptr.len() + self.blocks() * self.index_width().bytes() + 4 * self.stored()
    }
}

/// 2:4 compressed rows: every group of 4 consecutive columns (the last one may be shorter) holds
/// at most 2 nonzeros, stored as 2 values (`values[(r*groups + g)*2 + k]`, zero when the group has
/// fewer) and one metadata byte per group, `pos0 | pos1 << 2`, the positions inside the group
/// (always columns that exist, so padding values read valid activations).
#[derive(Clone, Debug, PartialEq)]
pub struct Nm24 {
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
    /// Two values per group.
    pub values: Vec<f32>,
    /// One byte per group.
    pub meta: Vec<u8>,
}

impl Nm24 {
    /// Packs `w`, or fails with [`SparseError::Pattern`] when a group holds more than 2 nonzeros.
    pub fn from_dense(
        name: &str,
        rows: usize,
        cols: usize,
        w: &[f32],
    ) -> Result<Nm24, SparseError> {
        check(name, rows, cols, w)?;
        let groups = cols.div_ceil(4);
        let mut values = Vec::with_capacity(rows * groups * 2);
        let mut meta = Vec::with_capacity(rows * groups);
        for (ri, row) in w.chunks_exact(cols).enumerate() {
            for g in 0..groups {
                let group = &row[4 * g..(4 * g + 4).min(cols)];
                let nz: Vec<usize> = (0..group.len()).filter(|&p| group[p] != 0.0).collect();
                if nz.len() > 2 {
                    return Err(SparseError::Pattern(format!(
                        "weight `{name}`: row {ri}, columns {}..{} hold {} nonzeros, not 2:4",
                        4 * g,
                        4 * g + group.len(),
                        nz.len()
                    )));
                }
                let p0 = nz.first().copied().unwrap_or(0);
                let p1 = nz.get(1).copied().unwrap_or(p0);
                values.push(nz.first().map_or(0.0, |&p| group[p]));
                values.push(nz.get(1).map_or(0.0, |&p| group[p]));
                meta.push((p0 | p1 << 2) as u8);
            }
        }
        Ok(Nm24 {
            rows,
            cols,
            values,
            meta,
        })
    }

    /// Groups of 4 columns per row.
    pub fn groups(&self) -> usize {
        self.cols.div_ceil(4)
    }

    /// Bytes of the packing: values and metadata.
    pub fn byte_size(&self) -> usize {
        4 * self.values.len() + self.meta.len()
    }
}

/// Splits `0..n` into consecutive units of about `target` cost each (every unit non-empty, at
/// least one unit); returns the `units + 1` boundaries. `cost(i)` is item `i`'s cost (a row's
/// nonzeros plus a fixed per-row overhead, so empty rows still count).
pub fn balance(n: usize, target: u64, cost: impl Fn(usize) -> u64) -> Vec<u32> {
    let mut bounds = vec![0u32];
    let mut acc = 0u64;
    for i in 0..n {
        acc += cost(i);
        if acc >= target.max(1) && i + 1 < n {
            bounds.push((i + 1) as u32);
            acc = 0;
        }
    }
    bounds.push(n as u32);
    bounds
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Dense matrix back from a CSR.
    fn csr_dense(m: &Csr) -> Vec<f32> {
        let mut w = vec![0.0; m.rows * m.cols];
        for r in 0..m.rows {
            for p in m.row_ptr[r] as usize..m.row_ptr[r + 1] as usize {
                w[r * m.cols + m.col_idx[p] as usize] = m.values[p];
            }
        }
        w
    }

    /// Dense matrix back from a BSR.
    fn bsr_dense(m: &Bsr) -> Vec<f32> {
        let mut w = vec![0.0; m.rows * m.cols];
        for bi in 0..m.block_rows() {
            for k in m.block_ptr[bi] as usize..m.block_ptr[bi + 1] as usize {
                for j in 0..m.c {
                    for i in 0..m.r {
                        let (row, col) = (bi * m.r + i, m.block_col[k] as usize + j);
                        let v = m.values[k * m.r * m.c + j * m.r + i];
                        if row < m.rows {
                            w[row * m.cols + col] += v;
                        } else {
                            assert_eq!(v, 0.0, "padding row holds a value");
                        }
                    }
                }
            }
        }
        w
    }

    /// Dense matrix back from a 2:4 packing.
    fn nm_dense(m: &Nm24) -> Vec<f32> {
        let mut w = vec![0.0; m.rows * m.cols];
        let g = m.groups();
        for r in 0..m.rows {
            for q in 0..g {
                let b = m.meta[r * g + q];
                for (k, pos) in [(b & 3) as usize, (b >> 2 & 3) as usize].iter().enumerate() {
                    let col = 4 * q + pos;
                    assert!(col < m.cols, "position outside the matrix");
                    w[r * m.cols + col] += m.values[(r * g + q) * 2 + k];
                }
            }
        }
        w
    }

    fn sample(rows: usize, cols: usize) -> Vec<f32> {
        (0..rows * cols)
            .map(|i| {
                if i % 3 == 0 {
                    (i % 7) as f32 - 3.0
                } else {
                    0.0
                }
            })
            .collect()
    }

    #[test]
    fn csr_round_trips_and_counts_bytes() {
        let w = sample(5, 7);
        let m = Csr::from_dense("w", 5, 7, &w).unwrap();
        assert_eq!(csr_dense(&m), w);
        assert_eq!(m.index_width(), IndexWidth::U16);
        assert_eq!(m.byte_size(), 4 * 6 + 6 * m.nnz());
        assert_eq!(IndexWidth::for_extent(65536), IndexWidth::U16);
        assert_eq!(IndexWidth::for_extent(65537), IndexWidth::U32);
    }

    #[test]
    fn bsr_round_trips_with_ragged_edges() {
        for &(rows, cols) in &[(5, 7), (1, 1), (9, 4), (3, 13), (16, 16)] {
            let w = sample(rows, cols);
            for &(r, c) in &[(1, 4), (4, 1), (8, 1), (2, 3), (4, 4)] {
                let m = Bsr::from_dense("w", rows, cols, &w, r, c).unwrap();
                assert_eq!(bsr_dense(&m), w, "{rows}x{cols} blocks {r}x{c}");
                assert!(m.block_col.iter().all(|&s| s as usize + m.c <= cols));
            }
        }
    }

    #[test]
    fn nm24_round_trips_and_rejects_dense_groups() {
        let mut w = vec![0.0f32; 3 * 6];
        w[1] = 1.0;
        w[3] = 2.0;
        w[4] = 3.0;
        w[6 + 5] = 4.0;
        w[12] = 5.0;
        w[13] = 6.0;
        let m = Nm24::from_dense("w", 3, 6, &w).unwrap();
        assert_eq!(nm_dense(&m), w);
        assert_eq!(m.byte_size(), 3 * 2 * 9);
        w[0] = 7.0;
        let e = Nm24::from_dense("w", 3, 6, &w).unwrap_err();
        assert!(e.to_string().contains("row 0, columns 0..4"), "{e}");
    }

    #[test]
    fn bad_shapes_are_errors() {
        assert!(Csr::from_dense("w", 2, 2, &[1.0]).is_err());
        assert!(Csr::from_dense("w", 0, 2, &[]).is_err());
        assert!(Bsr::from_dense("w", 1, 1, &[1.0], 0, 1).is_err());
    }

    #[test]
    fn balance_covers_everything_in_order() {
        let b = balance(10, 5, |i| i as u64 + 1);
        assert_eq!(b.first(), Some(&0));
        assert_eq!(b.last(), Some(&10));
        assert!(b.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(balance(3, 1000, |_| 1), vec![0, 3]);
        assert_eq!(balance(1, 1, |_| 5), vec![0, 1]);
    }
}
