//! Single-threaded speed of the sparse kernels (`codegen::sparse`) against the dense
//! `sparsec_runtime::dense::sgemm` on the same `Y = X W^T` shapes: median of repeated runs,
//! printed as dense-equivalent GFLOP/s (`2 * batch * rows * cols / time`) and speedup over the
//! faster of two dense weight layouts. Batch > 1 times include the `X^T` transpose step.
//!
//! Weights: 90% random zeros (CSR loop, pattern-baked where it fits the budget, BSR 1x4 to show
//! the cost of blocks on unstructured zeros), 90% zeros in 4x1 / 8x1 blocks (BSR), and 2:4
//! (50% zeros; 2:4 and CSR).
//!
//! `mlp` as the filter times the issue-4 MLP (1024-4096-4096-1024, 90% random zeros) layer by
//! layer and in total. `SPARSE_CPU=1` times thread CPU time instead of wall time (steadier on a
//! shared machine); `SPARSE_TILE=vectors,sets` overrides the batch tiling.
//!
//! Run with `cargo run --release -p sparsec --example sparse_bench [reps] [label filter | mlp]`.

use sparsec::codegen::jit::Jit;
use sparsec::codegen::sparse::sample::{blocks, keep_2_of_4, Rng};
use sparsec::codegen::sparse::{
    baked_size, compile, Bsr, Csr, LocalRun, MatmulSpec, Nm24, Packing, Strategy, BAKED_MAX_NNZ,
};
use sparsec_runtime::dense::sgemm;
use std::time::Instant;

mod common;
use common::thread_cpu;

/// A weight to time: its label, its values and the packings to try on it.
type Case<'a> = (String, &'a [f32], Vec<(String, Packing, Strategy)>);

/// Whether times are thread CPU time (`SPARSE_CPU=1`) rather than wall time.
fn cpu_clock() -> bool {
    std::env::var("SPARSE_CPU").is_ok_and(|v| v == "1")
}

/// Median seconds of `reps` runs of `f` (after one warm-up run).
fn median(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    let cpu = cpu_clock();
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let (s, c) = (Instant::now(), thread_cpu());
            f();
            if cpu {
                thread_cpu() - c
            } else {
                s.elapsed().as_secs_f64()
            }
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[reps / 2]
}

/// Median seconds of the dense product, the faster of `W` read as a strided `W^T` view and a
/// contiguous `W^T` copy.
fn dense_time(reps: usize, x: &[f32], w: &[f32], rows: usize, cols: usize, batch: usize) -> f64 {
    let mut y = vec![0.0f32; batch * rows];
    let mut wt = vec![0.0f32; rows * cols];
    for r in 0..rows {
        for k in 0..cols {
            wt[k * rows + r] = w[r * cols + k];
        }
    }
    let (rs, cs) = (rows as isize, cols as isize);
    let a = median(reps, || {
        // SAFETY: `x` is batch x cols, `w` read as cols x rows with strides (1, cols), `y` is
        // batch x rows.
        unsafe {
            sgemm(
                batch,
                cols,
                rows,
                1.0,
                x.as_ptr(),
                cs,
                1,
                w.as_ptr(),
                1,
                cs,
                0.0,
                y.as_mut_ptr(),
                rs,
                1,
            )
        }
    });
    let b = median(reps, || {
        // SAFETY: as above with `wt` contiguous cols x rows.
        unsafe {
            sgemm(
                batch,
                cols,
                rows,
                1.0,
                x.as_ptr(),
                cs,
                1,
                wt.as_ptr(),
                rs,
                1,
                0.0,
                y.as_mut_ptr(),
                rs,
                1,
            )
        }
    });
    a.min(b)
}

/// Median seconds of a sparse variant (transpose step included for batch > 1), with a fused
/// bias when `bias` and ReLU.
fn sparse_time(
    reps: usize,
    packing: &Packing,
    strategy: Strategy,
    x: &[f32],
    batch: usize,
    bias: bool,
) -> f64 {
    let mut jit = Jit::new().expect("jit");
    let mut spec = MatmulSpec::new(batch);
    spec.relu = true;
    if bias {
        spec.bias = Some((0..packing.rows()).map(|r| r as f32 * 1e-3).collect());
    }
    // `SPARSE_TILE=vectors,sets` overrides the batch tiling.
    if let Ok(t) = std::env::var("SPARSE_TILE") {
        let v: Vec<usize> = t.split(',').filter_map(|s| s.parse().ok()).collect();
        if let [vectors, sets] = v[..] {
            spec.tile_vectors = vectors;
            spec.sets = sets;
        }
    }
    let sm = compile(&mut jit, "w", packing, strategy, &spec).expect("compile");
    jit.finalize().expect("finalize");
    let mut y = vec![0.0f32; batch * sm.rows];
    let mut run = LocalRun::new(&jit, &sm).expect("kernel");
    median(reps, || run.run(x, &mut y))
}

/// The MLP of issue 4 (1024-4096-4096-1024, 90% random zeros, bias and ReLU fused): per layer
/// and in total, the CSR kernels against dense `sgemm` at batch 1 and 64.
fn mlp(reps: usize) {
    let mut rng = Rng(0x51ed_2700_90aa_1234);
    let dims = [1024usize, 4096, 4096, 1024];
    let layers: Vec<(usize, usize, Vec<f32>)> = dims
        .windows(2)
        .map(|d| (d[1], d[0], blocks(&mut rng, d[1], d[0], 0.9, 1, 1)))
        .collect();
    println!(
        "{:<22} {:>5} {:>9} {:>10} {:>10} {:>9} {:>8}",
        "layer (out x in)", "batch", "csr ms", "GFLOP/s", "eff GF/s", "dense ms", "speedup"
    );
    for batch in [1usize, 64] {
        let (mut st, mut dt, mut fl, mut nz) = (0.0, 0.0, 0.0, 0.0);
        for (rows, cols, w) in &layers {
            let (rows, cols) = (*rows, *cols);
            let x: Vec<f32> = (0..batch * cols).map(|_| rng.value()).collect();
            let p = Packing::Csr(Csr::from_dense("w", rows, cols, w).expect("csr"));
            let t = sparse_time(reps, &p, Strategy::Loop, &x, batch, true);
            let d = dense_time(reps, &x, w, rows, cols, batch);
            let flops = 2.0 * (batch * rows * cols) as f64;
            let eff = 2.0 * (batch * p.stored()) as f64;
            println!(
                "{:<22} {batch:>5} {:>9.3} {:>10.1} {:>10.1} {:>9.3} {:>7.2}x",
                format!("{rows}x{cols}"),
                t * 1e3,
                flops / t / 1e9,
                eff / t / 1e9,
                d * 1e3,
                d / t
            );
            (st, dt, fl, nz) = (st + t, dt + d, fl + flops, nz + eff);
        }
        println!(
            "{:<22} {batch:>5} {:>9.3} {:>10.1} {:>10.1} {:>9.3} {:>7.2}x",
            "MLP total",
            st * 1e3,
            fl / st / 1e9,
            nz / st / 1e9,
            dt * 1e3,
            dt / st
        );
    }
}

fn main() {
    let reps: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(11);
    // An optional second argument keeps only the weights whose label contains it; `mlp` times
    // the issue-4 MLP alone.
    let filter = std::env::args().nth(2).unwrap_or_default();
    if filter == "mlp" {
        mlp(reps);
        return;
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    println!(
        "{:<22} {:>5} {:<16} {:>9} {:>9} {:>10} {:>8} {:>8}",
        "weight", "batch", "variant", "MB", "ms", "GFLOP/s", "dense ms", "speedup"
    );
    for &(rows, cols) in &[
        (4096usize, 4096usize),
        (1024, 4096),
        (4096, 1024),
        (256, 1024),
    ] {
        let random = blocks(&mut rng, rows, cols, 0.9, 1, 1);
        let blocks4 = blocks(&mut rng, rows, cols, 0.9, 4, 1);
        let blocks8 = blocks(&mut rng, rows, cols, 0.9, 8, 1);
        let mut nm = blocks(&mut rng, rows, cols, 0.0, 1, 1);
        keep_2_of_4(&mut nm, cols);
        let csr = |w: &[f32]| Packing::Csr(Csr::from_dense("w", rows, cols, w).expect("csr"));
        let bsr =
            |w: &[f32], r, c| Packing::Bsr(Bsr::from_dense("w", rows, cols, w, r, c).expect("bsr"));
        let cases: Vec<Case> = vec![
            (
                "90% random".into(),
                &random,
                vec![
                    ("csr".into(), csr(&random), Strategy::Loop),
                    ("csr-baked".into(), csr(&random), Strategy::Baked),
                    ("bsr1x4".into(), bsr(&random, 1, 4), Strategy::Loop),
                ],
            ),
            (
                "90% in 4x1 blocks".into(),
                &blocks4,
                vec![
                    ("csr".into(), csr(&blocks4), Strategy::Loop),
                    ("bsr4x1".into(), bsr(&blocks4, 4, 1), Strategy::Loop),
                ],
            ),
            (
                "90% in 8x1 blocks".into(),
                &blocks8,
                vec![
                    ("csr".into(), csr(&blocks8), Strategy::Loop),
                    ("bsr8x1".into(), bsr(&blocks8, 8, 1), Strategy::Loop),
                ],
            ),
            (
                "2:4 (50%)".into(),
                &nm,
                vec![
                    ("csr".into(), csr(&nm), Strategy::Loop),
                    (
                        "2:4".into(),
                        Packing::Nm24(Nm24::from_dense("w", rows, cols, &nm).expect("2:4")),
                        Strategy::Loop,
                    ),
                ],
            ),
        ];
        for batch in [1usize, 64] {
            let x: Vec<f32> = (0..batch * cols).map(|_| rng.value()).collect();
            let flops = 2.0 * (batch * rows * cols) as f64;
            for (label, w, variants) in &cases {
                let label = format!("{rows}x{cols} {label}");
                if !label.contains(&filter) {
                    continue;
                }
                let dense = dense_time(reps, &x, w, rows, cols, batch);
                println!(
                    "{label:<22} {batch:>5} {:<16} {:>9.2} {:>9.3} {:>10.1} {:>8.3} {:>8}",
                    "dense sgemm",
                    (rows * cols * 4) as f64 / 1e6,
                    dense * 1e3,
                    flops / dense / 1e9,
                    dense * 1e3,
                    "1.00x"
                );
                for (name, p, s) in variants {
                    if *s == Strategy::Baked && baked_size(p.stored(), batch) > BAKED_MAX_NNZ {
                        continue;
                    }
                    let t = sparse_time(reps, p, *s, &x, batch, false);
                    println!(
                        "{label:<22} {batch:>5} {name:<16} {:>9.2} {:>9.3} {:>10.1} {:>8.3} {:>7.2}x",
                        p.byte_size() as f64 / 1e6,
                        t * 1e3,
                        flops / t / 1e9,
                        dense * 1e3,
                        dense / t
                    );
                }
            }
        }
    }
}
