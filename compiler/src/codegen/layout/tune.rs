//! `sparsec tune`: micro-benchmarks of the dense GEMM and the sparse kernels on this machine,
//! fitted into a [`CostTable`].
//!
//! One thread, medians of repeated runs. Dense: `sgemm` GFLOP/s at several `n` for a matrix
//! product, and for a convolution-shaped product with its im2col copy. Sparse: CSR (loop and
//! pattern-baked), BSR 4x1 on 4x1-block zeros and 2:4, at 50% / 90% / 99% zeros (2:4: 50%), at
//! batch 1 and a few batches, on two matrix heights; per layout, least squares fit the time per
//! byte and per row at batch 1, and per stored value and row per `f32x4` batch vector above.
//! The sparse convolution is measured by `tune_conv.rs`.

use super::table::{CostTable, SparseCost};
use crate::codegen::jit::Jit;
use crate::codegen::sparse::sample::{blocks, keep_2_of_4, Rng};
use crate::codegen::sparse::{
    baked_size, compile, transpose_kernel, Bsr, Csr, LocalRun, MatmulSpec, Nm24, Packing,
    SparseError, Strategy, BAKED_MAX_NNZ,
};
use crate::codegen::CodegenError;
use sparsec_runtime::dense::sgemm;
use std::time::Instant;

/// How much to measure.
#[derive(Clone, Copy, Debug, Default)]
pub struct TuneOptions {
    /// Small matrices and few repetitions (a few seconds instead of tens).
    pub quick: bool,
}

/// Median seconds of `reps` runs of `f` after one warm-up run.
pub(super) fn median(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut t: Vec<f64> = (0..reps.max(1))
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

/// Seconds of `Y [n x rows] = X [n x cols] W^T` by `sgemm` (W row-major `rows x cols`).
fn dense_secs(reps: usize, n: usize, rows: usize, cols: usize, w: &[f32], x: &[f32]) -> f64 {
    let mut y = vec![0.0f32; n * rows];
    median(reps, || {
        // SAFETY: `x` is `n x cols`, `w` read as `cols x rows` with strides (1, cols), `y` is
        // `n x rows`, all with the lengths allocated above.
        unsafe {
            sgemm(
                n,
                cols,
                rows,
                1.0,
                x.as_ptr(),
                cols as isize,
                1,
                w.as_ptr(),
                1,
                cols as isize,
                0.0,
                y.as_mut_ptr(),
                rows as isize,
                1,
            )
        }
    })
}

/// Seconds of a sparse product at `batch`, the transpose step included for batch > 1.
fn sparse_secs(
    reps: usize,
    packing: &Packing,
    strategy: Strategy,
    batch: usize,
    x: &[f32],
    evict: Option<&mut [u8]>,
) -> Result<f64, CodegenError> {
    let mut jit = Jit::new()?;
    let sm = compile(&mut jit, "tune", packing, strategy, &MatmulSpec::new(batch)).map_err(
        |e| match e {
            SparseError::Codegen(c) => c,
            other => CodegenError::Unsupported(other.to_string()),
        },
    )?;
    jit.finalize()?;
    let mut y = vec![0.0f32; batch * sm.rows];
    let x = &x[..batch * sm.cols];
    let mut run = LocalRun::new(&jit, &sm)?;
    if let Some(evict) = evict {
        // Batch 1 streams the packing: time it with the caches emptied of it first, as in a
        // model whose weights together exceed the cache.
        let mut times: Vec<f64> = (0..reps.max(1))
            .map(|i| {
                evict
                    .iter_mut()
                    .for_each(|b| *b = b.wrapping_add(i as u8 | 1));
                let s = Instant::now();
                run.run(x, &mut y);
                s.elapsed().as_secs_f64()
            })
            .collect();
        times.sort_by(f64::total_cmp);
        return Ok(times[times.len() / 2]);
    }
    Ok(median(reps, || run.run(x, &mut y)))
}

/// Least squares `y = a x1 + b x2` with `a, b >= floor`.
pub(super) fn fit2(points: &[(f64, f64, f64)], floor: f64) -> (f64, f64) {
    let (mut s11, mut s12, mut s22, mut s1y, mut s2y) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for &(x1, x2, y) in points {
        s11 += x1 * x1;
        s12 += x1 * x2;
        s22 += x2 * x2;
        s1y += x1 * y;
        s2y += x2 * y;
    }
    let det = s11 * s22 - s12 * s12;
    if det.abs() > 1e-12 * s11 * s22 {
        let a = (s1y * s22 - s2y * s12) / det;
        let b = (s11 * s2y - s12 * s1y) / det;
        if a >= floor && b >= floor {
            return (a, b);
        }
    }
    // Degenerate or negative: everything on the first term.
    let a = if s11 > 0.0 { s1y / s11 } else { floor };
    (a.max(floor), floor)
}

/// Runs the benchmarks and fits the table; `progress` receives one line per measurement group.
pub fn tune(opts: TuneOptions, progress: &mut dyn FnMut(&str)) -> Result<CostTable, CodegenError> {
    let mut table = CostTable::builtin();
    let reps = if opts.quick { 3 } else { 9 };
    let cols = if opts.quick { 256 } else { 1024 };
    let heights: [usize; 2] = if opts.quick { [64, 256] } else { [256, 1024] };
    let batches: &[usize] = if opts.quick { &[8] } else { &[8, 64] };
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let max_n = 256;
    let x: Vec<f32> = (0..max_n * cols).map(|_| rng.value()).collect();

    // Dense products.
    let (drows, dcols) = (heights[1], cols);
    let wd = blocks(&mut rng, drows, dcols, 0.0, 1, 1);
    let ns: &[usize] = if opts.quick {
        &[1, 16, 64]
    } else {
        &[1, 4, 16, 64, 256]
    };
    let mut curve = Vec::new();
    for &n in ns {
        let s = dense_secs(reps, n, drows, dcols, &wd, &x);
        curve.push((n, 2.0 * (n * drows * dcols) as f64 / s / 1e9));
    }
    progress(&format!("dense matmul GFLOP/s by n: {}", show(&curve)));
    table.dense_matmul = curve;
    let tiny = dense_secs(reps * 4, 1, 4, 4, &wd[..16], &x[..4]);
    table.dense_fixed_ns = (tiny * 1e9).max(1.0);
    // A weight larger than the cache, streamed by a matrix-vector product.
    table.cache_bytes = last_level_cache().unwrap_or(table.cache_bytes);
    let big_rows = if opts.quick { 2048 } else { 4096 };
    let wb = blocks(&mut rng, big_rows, 4096, 0.0, 1, 1);
    let s = dense_secs(reps.min(5), 1, big_rows, 4096, &wb, &x);
    drop(wb);
    table.dense_ns_per_byte = (s * 1e9 / (big_rows * 4096 * 4) as f64).max(1e-4);
    progress(&format!(
        "dense weight streaming: {:.3} ns/byte ({:.1} GB/s); cache {:.0} MiB",
        table.dense_ns_per_byte,
        1.0 / table.dense_ns_per_byte,
        table.cache_bytes / 1048576.0
    ));

    // Dense convolutions: a 3x3, 64 -> 64 channel layer as im2col (a copy of n x 576) + GEMM.
    let (crows, ccols) = (64, 576);
    let wc = blocks(&mut rng, crows, ccols, 0.0, 1, 1);
    let pixels: &[usize] = if opts.quick {
        &[64, 1024]
    } else {
        &[64, 1024, 4096]
    };
    let xc: Vec<f32> = (0..pixels[pixels.len() - 1] * ccols)
        .map(|_| rng.value())
        .collect();
    let mut curve = Vec::new();
    for &n in pixels {
        let mut cols_buf = vec![0.0f32; n * ccols];
        let copy = median(reps, || cols_buf.copy_from_slice(&xc[..n * ccols]));
        let s = dense_secs(reps, n, crows, ccols, &wc, &xc) + copy;
        curve.push((n, 2.0 * (n * crows * ccols) as f64 / s / 1e9));
    }
    progress(&format!("dense conv GFLOP/s by n: {}", show(&curve)));
    table.dense_conv = curve;

    // The transpose step.
    let nt = 64;
    let mut xt = vec![0.0f32; cols * nt];
    let tk = transpose_kernel(nt, cols);
    let s = median(reps, || {
        let args = [x.as_ptr() as *mut u8, xt.as_mut_ptr() as *mut u8];
        // SAFETY: `x` holds at least `nt x cols` floats and `xt` `cols x nt` (nt is a multiple
        // of 4).
        unsafe { tk.call(&args, 0, cols) };
    });
    table.transpose_ns_per_elem = (s * 1e9 / (nt * cols) as f64).max(1e-3);
    progress(&format!(
        "transpose: {:.3} ns per element",
        table.transpose_ns_per_elem
    ));

    // The fixed cost of a sparse call: a tiny product.
    let w8 = blocks(&mut rng, 8, 8, 0.5, 1, 1);
    let tiny = Packing::Csr(
        Csr::from_dense("tune", 8, 8, &w8).map_err(|e| CodegenError::Unsupported(e.to_string()))?,
    );
    let sparse_fixed = (sparse_secs(reps * 4, &tiny, Strategy::Loop, 1, &x, None)? * 1e9).max(1.0);

    // Sparse kernels. Batch 1 is timed cold: a buffer the size of the cache is written before
    // each run.
    let mut evict = vec![0u8; table.cache_bytes.min(256.0 * 1048576.0) as usize];
    type Maker = fn(&mut Rng, usize, usize, f32) -> Result<Packing, SparseError>;
    let csr: Maker = |rng, rows, cols, z| {
        let w = blocks(rng, rows, cols, z, 1, 1);
        Ok(Packing::Csr(Csr::from_dense("tune", rows, cols, &w)?))
    };
    let bsr: Maker = |rng, rows, cols, z| {
        let w = blocks(rng, rows, cols, z, 4, 1);
        Ok(Packing::Bsr(Bsr::from_dense("tune", rows, cols, &w, 4, 1)?))
    };
    let nm: Maker = |rng, rows, cols, _| {
        let mut w = blocks(rng, rows, cols, 0.0, 1, 1);
        keep_2_of_4(&mut w, cols);
        Ok(Packing::Nm24(Nm24::from_dense("tune", rows, cols, &w)?))
    };
    let families: [(&str, Maker, Strategy, &[f32]); 4] = [
        ("csr", csr, Strategy::Loop, &[0.5, 0.9, 0.99]),
        ("csr_baked", csr, Strategy::Baked, &[0.9, 0.99]),
        ("bsr", bsr, Strategy::Loop, &[0.5, 0.9, 0.99]),
        ("nm24", nm, Strategy::Loop, &[0.5]),
    ];
    for (label, make, strategy, zeros) in families {
        let (mut b1, mut bn) = (Vec::new(), Vec::new());
        // Pattern-baked code takes long to compile: measured on small matrices only.
        let (heights, cols) = if strategy == Strategy::Baked {
            ([64, 128], 256)
        } else {
            (heights, cols)
        };
        for &rows in &heights {
            for &z in zeros {
                let p = make(&mut rng, rows, cols, z)
                    .map_err(|e| CodegenError::Unsupported(e.to_string()))?;
                let stored = p.stored() as f64;
                for &batch in std::iter::once(&1).chain(batches) {
                    if strategy == Strategy::Baked && baked_size(p.stored(), batch) > BAKED_MAX_NNZ
                    {
                        continue;
                    }
                    let cold = (batch == 1).then_some(evict.as_mut_slice());
                    let ns = sparse_secs(reps, &p, strategy, batch, &x, cold)? * 1e9;
                    if batch == 1 {
                        b1.push((p.byte_size() as f64, rows as f64, ns));
                    } else {
                        let vecs = (batch.div_ceil(4)) as f64;
                        let t = ns - (batch * cols) as f64 * table.transpose_ns_per_elem;
                        bn.push((vecs * stored, vecs * rows as f64, t.max(1.0)));
                    }
                }
            }
        }
        let floor = 1e-4;
        let (per_byte, per_row) = fit2(&b1, floor);
        let (per_stored, per_row_vec) = if bn.is_empty() {
            (floor * 1e3, floor)
        } else {
            fit2(&bn, floor)
        };
        let cost = SparseCost {
            b1_ns_per_byte: per_byte,
            b1_ns_per_row: per_row,
            ns_per_stored_vec: per_stored,
            ns_per_row_vec: per_row_vec,
            fixed_ns: sparse_fixed,
        };
        progress(&format!(
            "{label}: batch 1 {:.4} ns/byte + {:.2} ns/row; batch > 1 {:.4} ns/value/vector + {:.2} ns/row/vector",
            cost.b1_ns_per_byte, cost.b1_ns_per_row, cost.ns_per_stored_vec, cost.ns_per_row_vec
        ));
        match label {
            "csr" => table.csr = cost,
            "csr_baked" => table.csr_baked = cost,
            "bsr" => table.bsr = cost,
            _ => table.nm24 = cost,
        }
    }
    super::tune_conv::tune_conv(&mut table, &mut rng, reps, opts.quick, progress)?;
    Ok(table)
}

fn show(curve: &[(usize, f64)]) -> String {
    curve
        .iter()
        .map(|(n, g)| format!("{n}: {g:.1}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The size of the last-level cache in bytes, from Linux's sysfs (`None` elsewhere).
fn last_level_cache() -> Option<f64> {
    let dir = std::path::Path::new("/sys/devices/system/cpu/cpu0/cache");
    let mut best = None;
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let Ok(text) = std::fs::read_to_string(e.path().join("size")) else {
            continue;
        };
        let t = text.trim();
        let bytes = if let Some(k) = t.strip_suffix('K') {
            k.parse::<f64>().ok().map(|v| v * 1024.0)
        } else if let Some(m) = t.strip_suffix('M') {
            m.parse::<f64>().ok().map(|v| v * 1048576.0)
        } else {
            t.parse::<f64>().ok()
        };
        if let Some(b) = bytes {
            best = Some(best.map_or(b, |x: f64| x.max(b)));
        }
    }
    best
}
