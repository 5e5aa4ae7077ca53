//! Deterministic random sparse matrices for the sparse kernels' tests, `sparsec tune` and the
//! sparse benchmarks: one generator ([`Rng`], xorshift64*) and the weight shapes they all draw.

/// A small deterministic generator (xorshift64*); the seed must not be zero.
#[derive(Clone, Debug)]
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Uniform in `[-1, 1)`, never exactly zero.
    pub fn value(&mut self) -> f32 {
        let v = self.unit() * 2.0 - 1.0;
        if v == 0.0 {
            0.5
        } else {
            v
        }
    }

    /// `n` values of [`Rng::value`].
    pub fn values(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.value()).collect()
    }
}

/// A `rows x cols` matrix whose entries are each zero with probability `zeros` (unstructured).
pub fn unstructured(rng: &mut Rng, rows: usize, cols: usize, zeros: f32) -> Vec<f32> {
    (0..rows * cols)
        .map(|_| if rng.unit() < zeros { 0.0 } else { rng.value() })
        .collect()
}

/// A `rows x cols` matrix with each of its `r x c` blocks zero with probability `zeros`
/// (`1 x 1`: unstructured, drawn in a different order from [`unstructured`]).
pub fn blocks(rng: &mut Rng, rows: usize, cols: usize, zeros: f32, r: usize, c: usize) -> Vec<f32> {
    let mut w = rng.values(rows * cols);
    for bi in 0..rows.div_ceil(r) {
        for bj in 0..cols.div_ceil(c) {
            if rng.unit() < zeros {
                for i in bi * r..((bi + 1) * r).min(rows) {
                    for j in bj * c..((bj + 1) * c).min(cols) {
                        w[i * cols + j] = 0.0;
                    }
                }
            }
        }
    }
    w
}

/// Keeps the 2 largest magnitudes of each group of 4 columns of every row (2:4).
pub fn keep_2_of_4(w: &mut [f32], cols: usize) {
    for row in w.chunks_mut(cols) {
        for g in row.chunks_mut(4) {
            let mut order: Vec<usize> = (0..g.len()).collect();
            order.sort_by(|&a, &b| g[b].abs().total_cmp(&g[a].abs()));
            for &i in order.iter().skip(2) {
                g[i] = 0.0;
            }
        }
    }
}
