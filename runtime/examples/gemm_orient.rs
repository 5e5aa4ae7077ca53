//! Which orientation of the result suits the `gemm` crate on the convolution-as-GEMM shapes of
//! ResNet-50: `C = W (M x K) * X (K x N)` with `M` output channels and `N` output pixels.
//!
//! The crate runs its microkernel (16 rows x 6 columns with AVX2 + FMA) with the rows along the
//! unit-stride axis of `C`. Written straight into NCHW (`C` row-major), the rows are the pixels,
//! so `N = 49` (the last ResNet-50 stage) leaves a ragged block of one pixel in every 49. Written
//! into a column-major scratch (`C^T`, pixels x channels) the rows are the channels, and the
//! scratch must then be transposed into NCHW; that copy is included in the time.
//!
//! Prints GFLOP/s, best and median of round-robin repetitions (best is the steadier figure on a
//! shared machine). Run with `cargo run --release -p sparsec-runtime --example gemm_orient [reps]`.

use sparsec_runtime::dense::sgemm;
use std::time::Instant;

/// One shape: a label and `(m, k, n)` (channels, channels x kernel, pixels).
type Shape = (&'static str, usize, usize, usize);

const SHAPES: &[Shape] = &[
    ("s1 3x3", 64, 576, 3136),
    ("s2 3x3", 128, 1152, 784),
    ("s3 3x3", 256, 2304, 196),
    ("s3 3x3 half", 128, 2304, 196),
    ("s3 3x3 64px", 256, 2304, 64),
    ("s4 3x3", 512, 4608, 49),
    ("s4 3x3 half", 256, 4608, 49),
    ("s3 1x1 up", 1024, 256, 196),
    ("s3 1x1 down", 256, 1024, 196),
    ("s4 1x1 up", 2048, 512, 49),
    ("s4 1x1 down", 512, 2048, 49),
    ("s4 1x1 up half", 1024, 512, 49),
];

/// Deterministic pseudo-random data in `[-1, 1)`.
fn data(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// Best and median seconds per call of each of `fs`, timed round-robin.
fn secs(reps: usize, flops: f64, fs: &mut [Box<dyn FnMut() + '_>]) -> Vec<(f64, f64)> {
    for f in fs.iter_mut() {
        f();
    }
    let inner = ((2e-3 * 60e9 / flops).ceil() as usize).max(1);
    let mut times = vec![Vec::with_capacity(reps); fs.len()];
    for _ in 0..reps {
        for (f, t) in fs.iter_mut().zip(&mut times) {
            let start = Instant::now();
            for _ in 0..inner {
                f();
            }
            t.push(start.elapsed().as_secs_f64() / inner as f64);
        }
    }
    times
        .into_iter()
        .map(|mut t| {
            t.sort_by(f64::total_cmp);
            (t[0], t[reps / 2])
        })
        .collect()
}

fn main() {
    let reps: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(9)
        .max(1);
    println!("Single-threaded conv-as-GEMM, GFLOP/s best / median of {reps} runs\n");
    println!("| shape | M | K | N | C row-major | C^T scratch + transpose |");
    println!("|---|---:|---:|---:|---:|---:|");
    for &(label, m, k, n) in SHAPES {
        let w = data(m * k, 1);
        let x = data(k * n, 2);
        let mut c_rm = vec![0.0f32; m * n];
        let mut c_tr = vec![0.0f32; m * n];
        let mut scratch = vec![0.0f32; m * n];
        let flops = 2.0 * (m * k * n) as f64;
        let (wp, xp) = (w.as_ptr(), x.as_ptr());
        let crm = c_rm.as_mut_ptr();
        let (ctr, sp) = (c_tr.as_mut_ptr(), scratch.as_mut_ptr());
        let mut fs: Vec<Box<dyn FnMut()>> = vec![
            Box::new(move || {
                // SAFETY: `w` is m x k, `x` is k x n, `c_rm` m x n, all row-major and alive.
                unsafe {
                    sgemm(
                        m, k, n, 1.0, wp, k as isize, 1, xp, n as isize, 1, 0.0, crm, n as isize, 1,
                    )
                }
            }),
            Box::new(move || {
                // SAFETY: as above, with the scratch holding `C` column-major (row stride 1).
                unsafe {
                    sgemm(
                        m, k, n, 1.0, wp, k as isize, 1, xp, n as isize, 1, 0.0, sp, 1, m as isize,
                    );
                    let s = std::slice::from_raw_parts(sp, m * n);
                    let c = std::slice::from_raw_parts_mut(ctr, m * n);
                    for (j, col) in s.chunks_exact(m).enumerate() {
                        for (i, v) in col.iter().enumerate() {
                            c[i * n + j] = *v;
                        }
                    }
                }
            }),
        ];
        let t = secs(reps, flops, &mut fs);
        drop(fs);
        let err = c_rm
            .iter()
            .zip(&c_tr)
            .map(|(p, q)| (p - q).abs())
            .fold(0.0f32, f32::max);
        assert!(err < 1e-3 * k as f32, "orientations disagree by {err}");
        let gf = |s: f64| flops / s / 1e9;
        println!(
            "| {label} | {m} | {k} | {n} | {:.1} / {:.1} | {:.1} / {:.1} |",
            gf(t[0].0),
            gf(t[0].1),
            gf(t[1].0),
            gf(t[1].1)
        );
    }
}
