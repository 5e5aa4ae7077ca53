//! Temporary probe: the CSR batch kernel on a 4096 x 4096 90%-sparse weight at batch 64, kernel
//! only (no X^T step), min of runs, with the X^T buffer aligned or not and the nonzeros of a row
//! sorted or shuffled.
use sparsec::codegen::jit::Jit;
use sparsec::codegen::sparse::sample::{blocks, Rng};
use sparsec::codegen::sparse::{compile, Csr, MatmulSpec, Packing, Strategy};
use std::time::Instant;

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let (rows, cols, batch) = (4096usize, 4096usize, 64usize);
    let mut rng = Rng(0x51ed_2700_90aa_1234);
    let w = blocks(&mut rng, rows, cols, 0.9, 1, 1);
    let mut csr = Csr::from_dense("w", rows, cols, &w).unwrap();
    if mode.contains("shuffle") {
        for r in 0..rows {
            let (a, b) = (csr.row_ptr[r] as usize, csr.row_ptr[r + 1] as usize);
            for i in (a + 1..b).rev() {
                let j = a + (rng.value().abs() * 1e6) as usize % (i - a + 1);
                csr.col_idx.swap(i, j);
                csr.values.swap(i, j);
            }
        }
    }
    let reorder = |csr: &mut Csr, f: &dyn Fn(usize) -> Vec<usize>| {
        for r in 0..rows {
            let (a, b) = (csr.row_ptr[r] as usize, csr.row_ptr[r + 1] as usize);
            let perm = f(b - a);
            let ci: Vec<u32> = perm.iter().map(|&i| csr.col_idx[a + i]).collect();
            let vs: Vec<f32> = perm.iter().map(|&i| csr.values[a + i]).collect();
            csr.col_idx[a..b].copy_from_slice(&ci);
            csr.values[a..b].copy_from_slice(&vs);
        }
    };
    if mode.contains("reverse") {
        reorder(&mut csr, &|n| (0..n).rev().collect());
    }
    if mode.contains("halves") {
        reorder(&mut csr, &|n| {
            let h = n.div_ceil(2);
            (0..n)
                .map(|i| if i % 2 == 0 { i / 2 } else { h + i / 2 })
                .collect()
        });
    }
    if mode.contains("quarters") {
        reorder(&mut csr, &|n| {
            let q = n.div_ceil(4);
            let mut v: Vec<usize> = (0..4 * q)
                .map(|i| (i % 4) * q + i / 4)
                .filter(|&j| j < n)
                .collect();
            v.truncate(n);
            v
        });
    }
    let nnz = csr.values.len();
    let mut spec = MatmulSpec::new(batch);
    if let Ok(t) = std::env::var("TILE") {
        let v: Vec<usize> = t.split(',').filter_map(|s| s.parse().ok()).collect();
        spec.tile_vectors = v[0];
        spec.sets = v[1];
    }
    let mut jit = Jit::new().unwrap();
    let sm = compile(&mut jit, "w", &Packing::Csr(csr), Strategy::Loop, &spec).unwrap();
    jit.finalize().unwrap();
    let f = jit.kernel(sm.kernel).unwrap();
    let mut xt_buf = vec![0.0f32; cols * sm.xt_stride + 64];
    let mis = (xt_buf.as_ptr() as usize / 4) % 16;
    let mut off = (16 - mis) % 16;
    if mode.contains("unaligned") {
        off += 4;
    }
    for v in xt_buf.iter_mut() {
        *v = rng.value();
    }
    let xt = unsafe { xt_buf.as_mut_ptr().add(off) };
    let mut y = vec![0.0f32; batch * rows];
    let args = [
        xt as *mut u8,
        sm.blob.as_ptr() as *mut u8,
        y.as_mut_ptr() as *mut u8,
    ];
    let mut ts = Vec::new();
    for _ in 0..40 {
        let t = Instant::now();
        unsafe { f(args.as_ptr(), 0, sm.work) };
        ts.push(t.elapsed().as_secs_f64());
    }
    ts.sort_by(f64::total_cmp);
    let best = ts[0];
    println!("median {:.3} ms", ts[20] * 1e3);
    let madds = (nnz * batch / 4) as f64;
    println!(
        "{mode:>20}: {:.3} ms, {:.3} ns/madd",
        best * 1e3,
        best * 1e9 / madds
    );
}
