//! Compares the two dense GEMM libraries the runtime can use (`gemm` and `matrixmultiply`) on
//! single-threaded f32 GEMM over the shapes sparsec meets in practice (MLP, BERT, ResNet-50
//! convolutions as GEMM), and prints a markdown table of GFLOP/s (median of repeated runs).
//!
//! `A` is `M x K` row-major. `B` is `K x N`, timed twice: row-major (`B` as stored by an
//! activation or an im2col buffer) and column-major (a weight stored `N x K`, as Gemm with
//! `trans_b` and the runtime's packed weights have it). `C` is `M x N` row-major.
//!
//! Run with `cargo run --release -p sparsec-runtime --example gemm_compare [reps]`.

use std::time::Instant;

/// One shape: a label and `(m, k, n)`.
type Shape = (&'static str, usize, usize, usize);

const SHAPES: &[Shape] = &[
    ("mlp", 256, 64, 1024),
    ("mlp", 256, 1024, 1024),
    ("mlp batch 1", 1, 1024, 1024),
    ("bert", 128, 128, 128),
    ("bert", 128, 128, 512),
    ("bert", 128, 512, 128),
    // ResNet-50 convolutions as GEMM: out-channels x pixels x in-channels*k*k.
    ("r50 conv1", 64, 147, 12544),
    ("r50 s1 1x1", 64, 64, 3136),
    ("r50 s1 3x3", 64, 576, 3136),
    ("r50 s1 1x1 up", 256, 64, 3136),
    ("r50 s2 3x3", 128, 1152, 784),
    ("r50 s2 1x1 up", 512, 128, 784),
    ("r50 s3 3x3", 256, 2304, 196),
    ("r50 s3 1x1 up", 1024, 256, 196),
    ("r50 s4 3x3", 512, 4608, 49),
    ("r50 s4 1x1 up", 2048, 512, 49),
];

/// Deterministic pseudo-random data in `[-1, 1)`.
fn data(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// Median seconds per call of each of `fs`, timed round-robin (`reps` rounds, each call
/// repeated enough times to last about 2 ms) so that load from other processes hits every
/// variant alike; one warm-up call each first.
fn median_secs(reps: usize, flops: f64, fs: &mut [Box<dyn FnMut() + '_>]) -> Vec<f64> {
    for f in fs.iter_mut() {
        f();
    }
    let inner = ((2e-3 * 30e9 / flops).ceil() as usize).max(1);
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
            t[reps / 2]
        })
        .collect()
}

/// Runs `gemm` 0.18 single-threaded: `c = a * b`.
///
/// # Safety
/// The pointers and strides must describe valid matrices of the given sizes.
#[allow(clippy::too_many_arguments)]
unsafe fn run_gemm(
    m: usize,
    k: usize,
    n: usize,
    a: *const f32,
    (rsa, csa): (isize, isize),
    b: *const f32,
    (rsb, csb): (isize, isize),
    c: *mut f32,
) {
    // SAFETY: the caller guarantees the matrices; `c` is row-major `m x n`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c,
            1,
            n as isize,
            false,
            a,
            csa,
            rsa,
            b,
            csb,
            rsb,
            0.0f32,
            1.0f32,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// Runs `matrixmultiply` 0.3 (single-threaded build): `c = a * b`.
///
/// # Safety
/// The pointers and strides must describe valid matrices of the given sizes.
#[allow(clippy::too_many_arguments)]
unsafe fn run_mm(
    m: usize,
    k: usize,
    n: usize,
    a: *const f32,
    (rsa, csa): (isize, isize),
    b: *const f32,
    (rsb, csb): (isize, isize),
    c: *mut f32,
) {
    // SAFETY: the caller guarantees the matrices; `c` is row-major `m x n`.
    unsafe {
        matrixmultiply::sgemm(
            m, k, n, 1.0, a, rsa, csa, b, rsb, csb, 0.0, c, n as isize, 1,
        );
    }
}

fn main() {
    let reps: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(9);
    println!("Single-threaded f32 GEMM, GFLOP/s (median of {reps} runs); B row-major / B column-major.\n");
    println!(
        "| shape | M | K | N | gemm B rm | gemm B cm | matrixmultiply B rm | matrixmultiply B cm |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    // Totals are times summed over the shapes, so large shapes weigh more, as they do in a model.
    let mut total = [0.0f64; 4];
    let mut total_flops = 0.0;
    for &(label, m, k, n) in SHAPES {
        let a = data(m * k, 1);
        let b = data(k * n, 2);
        let mut cs = vec![vec![0.0f32; m * n]; 4];
        let flops = 2.0 * (m * k * n) as f64;
        let rm = (n as isize, 1);
        let cm = (1, k as isize);
        let ap = a.as_ptr();
        let bp = b.as_ptr();
        let mut fs: Vec<Box<dyn FnMut()>> = cs
            .iter_mut()
            .zip([(0, rm), (0, cm), (1, rm), (1, cm)])
            .map(|(c, (lib, bl))| {
                let cp = c.as_mut_ptr();
                Box::new(move || {
                    // SAFETY: `a` is m x k row-major, `b` holds k * n values read with layout
                    // `bl`, and `c` is m x n row-major; all outlive the closures.
                    unsafe {
                        if lib == 0 {
                            run_gemm(m, k, n, ap, (k as isize, 1), bp, bl, cp)
                        } else {
                            run_mm(m, k, n, ap, (k as isize, 1), bp, bl, cp)
                        }
                    }
                }) as Box<dyn FnMut()>
            })
            .collect();
        let secs = median_secs(reps, flops, &mut fs);
        drop(fs);
        for (t, s) in total.iter_mut().zip(&secs) {
            *t += s;
        }
        let row: Vec<f64> = secs.iter().map(|s| flops / s / 1e9).collect();
        let results = cs;
        // Cross-check the two libraries on the same layout.
        for (x, y) in [(0, 2), (1, 3)] {
            let err = results[x]
                .iter()
                .zip(&results[y])
                .map(|(p, q)| (p - q).abs())
                .fold(0.0f32, f32::max);
            assert!(
                err < 1e-3 * k as f32,
                "libraries disagree by {err} on {m}x{k}x{n}"
            );
        }
        total_flops += flops;
        println!(
            "| {label} | {m} | {k} | {n} | {:.1} | {:.1} | {:.1} | {:.1} |",
            row[0], row[1], row[2], row[3]
        );
    }
    let g: Vec<f64> = total.iter().map(|t| total_flops / t / 1e9).collect();
    println!(
        "| **total** | | | | **{:.1}** | **{:.1}** | **{:.1}** | **{:.1}** |",
        g[0], g[1], g[2], g[3]
    );
    let best = if total[0].min(total[1]) <= total[2].min(total[3]) {
        "gemm"
    } else {
        "matrixmultiply"
    };
    println!("\nFaster by total time: {best}");
}
