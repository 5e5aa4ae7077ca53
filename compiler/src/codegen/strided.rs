//! The loop structure shared by the host data-movement and selection kernels: an output walked
//! row by row, each operand read at constant per-dimension element strides (zero where it is
//! broadcast), with adjacent dimensions coalesced so that a contiguous copy is one long row.
//!
//! It also holds the chunk-size rule of these kernels: they move bytes rather than compute, so a
//! chunk should carry enough bytes that handing it to another thread pays off.

/// Chunks of a memory-bound kernel should touch at least this many bytes (some tens of
/// microseconds of one core), so that small kernels stay on one thread.
const MIN_CHUNK_BYTES: usize = 256 << 10;

/// The smallest useful chunk of `units` work units that each touch `bytes_per_unit` bytes.
pub(crate) fn grain_for_bytes(bytes_per_unit: usize, units: usize) -> usize {
    MIN_CHUNK_BYTES
        .div_ceil(bytes_per_unit.max(1))
        .clamp(1, units.max(1))
}

/// Calls `f(&mut dst[i], src[i * s])` for every `i` of `dst` (`src` holds at least
/// `(dst.len() - 1) * s + 1` values). Stride 2 (every downsampling convolution and pool of the
/// usual CNNs) walks whole chunks of 2 with the stride known to the compiler, which then
/// vectorizes the loop (`step_by` ran a stride-2 copy about 1.7x as long); other strides index.
#[inline(always)]
pub(crate) fn zip_strided(dst: &mut [f32], src: &[f32], s: usize, f: impl Fn(&mut f32, f32)) {
    match s {
        0 | 1 => dst.iter_mut().zip(src).for_each(|(d, &v)| f(d, v)),
        2 => zip_chunks::<2>(dst, src, f),
        _ => dst
            .iter_mut()
            .enumerate()
            .for_each(|(i, d)| f(d, src[i * s])),
    }
}

/// [`zip_strided`] for a stride known at compile time.
#[inline(always)]
fn zip_chunks<const S: usize>(dst: &mut [f32], src: &[f32], f: impl Fn(&mut f32, f32)) {
    let (chunks, _) = src.as_chunks::<S>();
    let (body, last) = dst.split_at_mut(dst.len().min(chunks.len()));
    body.iter_mut().zip(chunks).for_each(|(d, c)| f(d, c[0]));
    for (i, d) in last.iter_mut().enumerate() {
        f(d, src[(chunks.len() + i) * S]);
    }
}

/// Strides (in elements) of a row-major tensor of `shape`.
pub(crate) fn row_major_strides(shape: &[usize]) -> Vec<usize> {
    let mut st = vec![0usize; shape.len()];
    let mut acc = 1usize;
    for d in (0..shape.len()).rev() {
        st[d] = acc;
        acc = acc.saturating_mul(shape[d]);
    }
    st
}

/// Strides of an operand of `shape` broadcast (numpy rules, one direction) to `out`: aligned to
/// the right, zero on broadcast axes. `None` when `shape` does not broadcast to `out`.
pub(crate) fn broadcast_strides(shape: &[usize], out: &[usize]) -> Option<Vec<usize>> {
    if shape.len() > out.len() {
        return None;
    }
    let own = row_major_strides(shape);
    let lead = out.len() - shape.len();
    let mut st = vec![0usize; out.len()];
    for (i, (&d, &s)) in shape.iter().zip(&own).enumerate() {
        let o = out[lead + i];
        if d == o {
            st[lead + i] = if d == 1 { 0 } else { s };
        } else if d != 1 {
            return None;
        }
    }
    Some(st)
}

/// An output walked in rows with every operand at constant strides.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Rows {
    /// Coalesced output dims, outermost first; never empty, the last is the row.
    dims: Vec<usize>,
    /// Per operand: its element stride along each coalesced dim.
    strides: Vec<Vec<usize>>,
}

impl Rows {
    /// The walk of an output of shape `out` with operands at `strides` (one entry per output
    /// axis each). Size-1 axes are dropped and an axis is merged into the next inner one when
    /// every operand (and the output) steps through both as one.
    pub(crate) fn new(out: &[usize], strides: &[Vec<usize>]) -> Rows {
        let mut dims: Vec<usize> = Vec::new();
        let mut st: Vec<Vec<usize>> = vec![Vec::new(); strides.len()];
        for d in (0..out.len()).rev() {
            if out[d] == 1 {
                continue;
            }
            let merge = !dims.is_empty()
                && strides.iter().zip(&st).all(|(full, s)| {
                    let inner = s.last().copied().unwrap_or(0);
                    full[d] == inner * dims[dims.len() - 1]
                });
            if merge {
                let last = dims.len() - 1;
                dims[last] *= out[d];
            } else {
                dims.push(out[d]);
                for (s, full) in st.iter_mut().zip(strides) {
                    s.push(full[d]);
                }
            }
        }
        if dims.is_empty() {
            dims.push(1);
            st.iter_mut().for_each(|s| s.push(0));
        }
        dims.reverse();
        st.iter_mut().for_each(|s| s.reverse());
        Rows { dims, strides: st }
    }

    /// The number of rows (the parallel dimension).
    pub(crate) fn rows(&self) -> usize {
        self.dims[..self.dims.len() - 1].iter().product()
    }

    /// The length of a row.
    pub(crate) fn len(&self) -> usize {
        self.dims[self.dims.len() - 1]
    }

    /// Operand `k`'s element stride along a row.
    pub(crate) fn inner(&self, k: usize) -> usize {
        self.strides[k][self.dims.len() - 1]
    }

    /// Calls `f(row, offsets)` for rows `begin..end` (clamped to the rows), with each operand's
    /// element offset of the row's first element.
    pub(crate) fn for_rows(&self, begin: usize, end: usize, mut f: impl FnMut(usize, &[usize])) {
        let end = end.min(self.rows());
        if begin >= end {
            return;
        }
        let outer = self.dims.len() - 1;
        // The row's index along each outer dim, and each operand's offset.
        let mut idx = vec![0usize; outer];
        let mut rem = begin;
        for d in (0..outer).rev() {
            idx[d] = rem % self.dims[d];
            rem /= self.dims[d];
        }
        let mut offs: Vec<usize> = self
            .strides
            .iter()
            .map(|s| idx.iter().zip(s).map(|(i, s)| i * s).sum())
            .collect();
        for r in begin..end {
            f(r, &offs);
            // Advance the odometer by one row.
            for d in (0..outer).rev() {
                idx[d] += 1;
                for (o, s) in offs.iter_mut().zip(&self.strides) {
                    *o += s[d];
                }
                if idx[d] < self.dims[d] {
                    break;
                }
                for (o, s) in offs.iter_mut().zip(&self.strides) {
                    *o -= s[d] * self.dims[d];
                }
                idx[d] = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contiguous_copy_is_one_row() {
        let out = [2, 3, 4];
        let r = Rows::new(&out, &[row_major_strides(&out)]);
        assert_eq!((r.rows(), r.len(), r.inner(0)), (1, 24, 1));
    }

    #[test]
    fn transpose_rows_visit_every_source_once() {
        // [2,3,4] transposed by perm [2,0,1]: out [4,2,3].
        let src = row_major_strides(&[2, 3, 4]);
        let perm = [2, 0, 1];
        let out: Vec<usize> = perm.iter().map(|&p| [2, 3, 4][p]).collect();
        let st: Vec<usize> = perm.iter().map(|&p| src[p]).collect();
        let r = Rows::new(&out, &[st]);
        let mut seen = Vec::new();
        r.for_rows(0, r.rows(), |_, o| {
            seen.extend((0..r.len()).map(|j| o[0] + j * r.inner(0)))
        });
        let mut sorted = seen.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..24).collect::<Vec<_>>());
        assert_eq!(seen[..4], [0, 4, 8, 12]);
    }

    #[test]
    fn sub_ranges_match_the_whole_walk() {
        let out = [3, 1, 5, 2];
        let a = broadcast_strides(&[5, 1], &out).expect("broadcasts");
        let r = Rows::new(&out, &[a, row_major_strides(&out)]);
        let mut whole = Vec::new();
        r.for_rows(0, r.rows(), |i, o| whole.push((i, o.to_vec())));
        for b in 0..r.rows() {
            let mut part = Vec::new();
            r.for_rows(b, b + 2, |i, o| part.push((i, o.to_vec())));
            assert_eq!(part[..], whole[b..(b + 2).min(r.rows())]);
        }
    }

    #[test]
    fn broadcast_strides_follow_numpy_rules() {
        assert_eq!(broadcast_strides(&[3, 1], &[2, 3, 4]), Some(vec![0, 1, 0]));
        assert_eq!(broadcast_strides(&[], &[2]), Some(vec![0]));
        assert_eq!(broadcast_strides(&[2], &[3]), None);
        assert_eq!(broadcast_strides(&[1, 2, 3], &[2, 3]), None);
    }

    #[test]
    fn grain_keeps_small_kernels_whole() {
        assert_eq!(grain_for_bytes(4, 1000), 1000);
        assert_eq!(grain_for_bytes(1 << 20, 8), 1);
    }

    #[test]
    fn zip_strided_reads_every_sth_value() {
        let src: Vec<f32> = (0..20).map(|v| v as f32).collect();
        for s in 1..5 {
            // The longest destination the source allows, so the last chunk is cut short for
            // most strides, and shorter ones.
            let longest = (src.len() - 1) / s + 1;
            for n in [0, 1, longest / 2, longest] {
                let mut dst = vec![-1.0; n];
                zip_strided(&mut dst, &src, s, |d, v| *d = v);
                let want: Vec<f32> = (0..n).map(|i| (i * s) as f32).collect();
                assert_eq!(dst, want, "stride {s}, {n} values");
                zip_strided(&mut dst, &src, s, |d, v| *d += v);
                assert_eq!(dst, want.iter().map(|v| 2.0 * v).collect::<Vec<_>>());
            }
        }
    }
}
