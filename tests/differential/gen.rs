//! Value generators for the differential cases: proptest strategies for shapes (ranks with dims
//! in `1..=13`, so size-1 dims and sizes that are not multiples of 4 occur) and seeded tensor data
//! in an op's domain.

use proptest::collection::vec;
use proptest::prelude::*;
use sparsec_ir::{DType, Tensor};

/// Largest dimension drawn.
pub const MAX_DIM: usize = 13;

/// A small deterministic generator (an LCG) for tensor data, seeded by proptest.
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }

    /// The next 64 random bits.
    pub fn bits(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 11
    }

    /// A float in `[lo, hi)`.
    pub fn float(&mut self, lo: f32, hi: f32) -> f32 {
        let u = (self.bits() >> 29) as f32 / (1u64 << 24) as f32;
        lo + (hi - lo) * u
    }

    /// An integer in `lo..=hi`.
    pub fn int(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.bits() % ((hi - lo + 1) as u64)) as i64
    }
}

/// Number of elements of `shape`.
pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// An f32 tensor with elements uniform in `[lo, hi)`.
pub fn floats(seed: u64, shape: &[usize], lo: f32, hi: f32) -> Tensor {
    let mut r = Rng::new(seed);
    Tensor::from_f32(shape, (0..numel(shape)).map(|_| r.float(lo, hi)).collect())
}

/// Every special value: NaN, infinities, signed zeros and huge magnitudes.
pub const SPECIAL: &[f32] = &[
    f32::NAN,
    f32::INFINITY,
    f32::NEG_INFINITY,
    0.0,
    -0.0,
    1e30,
    -1e30,
];

/// The special values without huge finite magnitudes (whose sums cancel differently in f32
/// than in the interpreter's f64).
pub const NON_FINITE: &[f32] = &[f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.0, -0.0];

/// The special values without NaN.
pub const NO_NAN: &[f32] = &[f32::INFINITY, f32::NEG_INFINITY, 0.0, -0.0, 1e30, -1e30];

/// An f32 tensor mixing each of `special` (one element in `rate * special.len()` each) into
/// ordinary values in `[-4, 4)`.
pub fn extreme_of(seed: u64, shape: &[usize], rate: i64, special: &[f32]) -> Tensor {
    let mut r = Rng::new(seed);
    let v: Vec<f32> = (0..numel(shape))
        .map(
            |_| match r.int(0, rate * special.len() as i64 - 1) as usize {
                k if k < special.len() => special[k],
                _ => r.float(-4.0, 4.0),
            },
        )
        .collect();
    Tensor::from_f32(shape, v)
}

/// [`extreme_of`] with every [`SPECIAL`] value.
pub fn extreme(seed: u64, shape: &[usize], rate: i64) -> Tensor {
    extreme_of(seed, shape, rate, SPECIAL)
}

/// An f32 tensor of whole numbers in `lo..=hi` (so comparisons see ties).
pub fn whole_floats(seed: u64, shape: &[usize], lo: i64, hi: i64) -> Tensor {
    let mut r = Rng::new(seed);
    Tensor::from_f32(
        shape,
        (0..numel(shape)).map(|_| r.int(lo, hi) as f32).collect(),
    )
}

/// A tensor of `dtype` with integer elements in `lo..=hi`.
pub fn ints_of(dtype: DType, seed: u64, shape: &[usize], lo: i64, hi: i64) -> Tensor {
    let mut r = Rng::new(seed);
    let v: Vec<f64> = (0..numel(shape)).map(|_| r.int(lo, hi) as f64).collect();
    Tensor::from_f64s(dtype, shape, v)
}

/// An i64 tensor with elements in `lo..=hi`.
pub fn ints(seed: u64, shape: &[usize], lo: i64, hi: i64) -> Tensor {
    ints_of(DType::I64, seed, shape, lo, hi)
}

/// A bool tensor.
pub fn bools(seed: u64, shape: &[usize]) -> Tensor {
    let mut r = Rng::new(seed);
    Tensor::from_bool(
        shape,
        (0..numel(shape)).map(|_| r.bits() & 1 == 1).collect(),
    )
}

/// An i64 vector constant.
pub fn i64s(v: &[i64]) -> Tensor {
    Tensor::from_i64(&[v.len()], v.to_vec())
}

/// Shapes of rank `min..=max` with dims in `1..=MAX_DIM`.
pub fn dims(min: usize, max: usize) -> impl Strategy<Value = Vec<usize>> {
    vec(1..=MAX_DIM, min..=max)
}

/// Shapes of rank `min..=max` with dims in `1..=hi`.
pub fn dims_upto(min: usize, max: usize, hi: usize) -> impl Strategy<Value = Vec<usize>> {
    vec(1..=hi, min..=max)
}

/// A shape and another that broadcasts to it (leading dims dropped, some dims set to 1), in
/// either order as the first or second operand.
pub fn broadcast_pair(max_rank: usize) -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
    (dims(0, max_rank), any::<u64>(), any::<bool>()).prop_map(|(full, seed, swap)| {
        let small = broadcast_of(&full, seed);
        if swap {
            (small, full)
        } else {
            (full, small)
        }
    })
}

/// Two shapes that both broadcast to a common one (each with its own dims set to 1 or dropped).
pub fn mutual_pair(max_rank: usize) -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
    (dims(0, max_rank), any::<u64>()).prop_map(|(full, seed)| {
        (
            broadcast_of(&full, seed),
            broadcast_of(&full, seed ^ 0x5555),
        )
    })
}

/// A shape broadcasting to `full`, derived from `seed`.
pub fn broadcast_of(full: &[usize], seed: u64) -> Vec<usize> {
    let mut r = Rng::new(seed);
    let drop = r.int(0, full.len() as i64) as usize;
    full[drop..]
        .iter()
        .map(|&d| if r.int(0, 2) == 0 { 1 } else { d })
        .collect()
}

/// A random subset of `0..rank` in increasing order, from `seed`.
pub fn subset(rank: usize, seed: u64) -> Vec<usize> {
    let mut r = Rng::new(seed);
    (0..rank).filter(|_| r.int(0, 1) == 1).collect()
}
