//! Differential tests of the sparse kernels against a plain dense loop (and the interpreter's
//! Gemm): every packing and strategy, densities from all-nonzero to all-zero, ragged shapes,
//! batches 1 to 64, and calls over uneven sub-ranges that together cover the work.

use super::sample::{keep_2_of_4, unstructured, Rng};
use super::*;
use crate::codegen::wide::lane_choices;
use crate::interp::eval_op;
use sparsec_ir::{Op, Tensor};

/// `Y = X W^T + bias`, ReLU; also the magnitudes `sum |x w| + |bias|` for the tolerance.
fn reference(
    x: &[f32],
    w: &[f32],
    rows: usize,
    cols: usize,
    spec: &MatmulSpec,
) -> (Vec<f32>, Vec<f32>) {
    let mut y = vec![0.0; spec.batch * rows];
    let mut mag = vec![0.0; spec.batch * rows];
    for bi in 0..spec.batch {
        for r in 0..rows {
            let mut s = 0.0f64;
            let mut a = 0.0f64;
            for k in 0..cols {
                let p = x[bi * cols + k] as f64 * w[r * cols + k] as f64;
                s += p;
                a += p.abs();
            }
            if let Some(bias) = &spec.bias {
                s += bias[r] as f64;
                a += (bias[r] as f64).abs();
            }
            let v = s as f32;
            y[bi * rows + r] = if spec.relu { v.max(0.0) } else { v };
            mag[bi * rows + r] = a as f32;
        }
    }
    (y, mag)
}

/// Splits `0..n` into uneven consecutive ranges (some empty) that cover it.
fn ranges(n: usize) -> Vec<(usize, usize)> {
    let cuts = [0, n / 3, n / 3, (n * 3) / 4, n.saturating_sub(1), n];
    cuts.windows(2).map(|c| (c[0], c[1].max(c[0]))).collect()
}

/// Runs `sm` (from `jit`) on `x` over uneven sub-ranges and returns `Y`.
fn run(jit: &Jit, sm: &SparseMatmul, x: &[f32]) -> Vec<f32> {
    let mut y = vec![f32::NAN; sm.batch * sm.rows];
    let mut r = LocalRun::new(jit, sm).unwrap();
    r.run_chunks(x, &mut y, &ranges(sm.cols), &ranges(sm.work));
    y
}

/// Compiles and runs every given packing of `w` at `spec` and compares with the reference.
fn check(
    w: &[f32],
    rows: usize,
    cols: usize,
    spec: &MatmulSpec,
    what: &[(&str, Packing, Strategy)],
) {
    let mut rng = Rng(0x5eed ^ (rows * 31 + cols * 7 + spec.batch) as u64);
    let x: Vec<f32> = (0..spec.batch * cols).map(|_| rng.value()).collect();
    let (want, mag) = reference(&x, w, rows, cols, spec);
    for lanes in lane_choices() {
        let mut jit = Jit::new().unwrap();
        jit.set_vector_lanes(lanes).unwrap();
        let built: Vec<(&str, SparseMatmul)> = what
            .iter()
            .map(|(n, p, s)| (*n, compile(&mut jit, n, p, *s, spec).unwrap()))
            .collect();
        jit.finalize().unwrap();
        compare(&jit, &built, &x, (&want, &mag), (rows, spec), lanes);
    }
}

/// Runs every kernel of `built` on `x` and compares with `want` (tolerance from `mag`).
fn compare(
    jit: &Jit,
    built: &[(&str, SparseMatmul)],
    x: &[f32],
    (want, mag): (&[f32], &[f32]),
    (rows, spec): (usize, &MatmulSpec),
    lanes: usize,
) {
    let cols = built.first().map_or(0, |b| b.1.cols);
    for (n, sm) in built {
        let got = run(jit, sm, x);
        for i in 0..want.len() {
            let tol = 1e-5 * mag[i] + 1e-6;
            assert!(
                (got[i] - want[i]).abs() <= tol,
                "{n} ({}, {lanes} lanes) {rows}x{cols} batch {} bias {} relu {}: y[{}, {}] = {} want {}",
                sm.layout,
                spec.batch,
                spec.bias.is_some(),
                spec.relu,
                i / rows,
                i % rows,
                got[i],
                want[i]
            );
        }
    }
}

/// Every packing of `w` that applies.
fn packings(
    w: &[f32],
    rows: usize,
    cols: usize,
    batch: usize,
) -> Vec<(&'static str, Packing, Strategy)> {
    let csr = Csr::from_dense("w", rows, cols, w).unwrap();
    let mut out = vec![("csr", Packing::Csr(csr.clone()), Strategy::Loop)];
    // Baked kernels are kept small here (compile time); one test compiles one at the budget.
    if baked_size(csr.nnz(), batch) <= BAKED_MAX_NNZ / 2 {
        out.push(("baked", Packing::Csr(csr), Strategy::Baked));
    }
    for (n, r, c) in [
        ("bsr1x4", 1, 4),
        ("bsr4x1", 4, 1),
        ("bsr8x1", 8, 1),
        ("bsr2x3", 2, 3),
    ] {
        let m = Bsr::from_dense("w", rows, cols, w, r, c).unwrap();
        out.push((n, Packing::Bsr(m), Strategy::Loop));
    }
    if let Ok(m) = Nm24::from_dense("w", rows, cols, w) {
        out.push(("2:4", Packing::Nm24(m), Strategy::Loop));
    }
    out
}

const DENSITIES: [f32; 5] = [0.0, 0.5, 0.9, 0.99, 1.0];
const BATCHES: [usize; 5] = [1, 3, 4, 17, 64];
const SHAPES: [(usize, usize); 7] = [
    (1, 1),
    (1, 9),
    (7, 1),
    (13, 29),
    (33, 64),
    (64, 300),
    (5, 4),
];

/// Runs every shape, density and batch (with 2:4 versions of each weight) through the packings
/// whose names `pick` accepts; half of the cases fuse a bias and ReLU. Returns how many
/// packings it checked.
fn sweep(pick: fn(&str) -> bool) -> usize {
    let mut rng = Rng(42);
    let mut checked = 0;
    for &(rows, cols) in &SHAPES {
        for (d, &zeros) in DENSITIES.iter().enumerate() {
            let w = unstructured(&mut rng, rows, cols, zeros);
            let mut w24 = w.clone();
            keep_2_of_4(&mut w24, cols);
            for (i, &batch) in BATCHES.iter().enumerate() {
                let mut spec = MatmulSpec::new(batch);
                if (d + i) % 2 == 1 {
                    spec.relu = true;
                    spec.bias = Some((0..rows).map(|_| rng.value()).collect());
                }
                for w in [&w, &w24] {
                    let mut what = packings(w, rows, cols, batch);
                    what.retain(|(n, _, _)| pick(n));
                    checked += what.len();
                    check(w, rows, cols, &spec, &what);
                }
            }
        }
    }
    checked
}

#[test]
fn csr_loops_match_the_reference() {
    assert!(sweep(|n| n == "csr") >= 10);
}

#[test]
fn pattern_baked_kernels_match_the_reference() {
    assert!(sweep(|n| n == "baked") >= 10);
}

#[test]
fn bsr_kernels_match_the_reference() {
    assert!(sweep(|n| n.starts_with("bsr")) >= 10);
}

#[test]
fn nm24_kernels_match_the_reference() {
    assert!(sweep(|n| n == "2:4") >= 10);
}

#[test]
fn empty_rows_and_all_zero_matrices_give_the_bias() {
    let (rows, cols) = (19, 23);
    let mut w = unstructured(&mut Rng(7), rows, cols, 0.7);
    for r in [0, 5, 6, 18] {
        w[r * cols..(r + 1) * cols]
            .iter_mut()
            .for_each(|v| *v = 0.0);
    }
    for w in [w, vec![0.0; rows * cols]] {
        for &batch in &BATCHES {
            let mut spec = MatmulSpec::new(batch);
            spec.bias = Some((0..rows).map(|r| r as f32 - 9.0).collect());
            spec.relu = batch % 2 == 1;
            check(&w, rows, cols, &spec, &packings(&w, rows, cols, batch));
        }
    }
}

#[test]
fn u32_indices_for_wide_matrices() {
    let (rows, cols) = (3, 70_000);
    let w = unstructured(&mut Rng(9), rows, cols, 0.999);
    let csr = Csr::from_dense("w", rows, cols, &w).unwrap();
    assert_eq!(csr.index_width(), IndexWidth::U32);
    for batch in [1, 5] {
        check(
            &w,
            rows,
            cols,
            &MatmulSpec::new(batch),
            &packings(&w, rows, cols, batch),
        );
    }
}

#[test]
fn tilings_all_agree() {
    let (rows, cols) = (37, 130);
    let w = unstructured(&mut Rng(11), rows, cols, 0.8);
    for (v, s) in [(1, 1), (2, 4), (4, 2), (8, 1), (3, 3), (6, 2)] {
        for batch in [17, 64] {
            let mut spec = MatmulSpec::new(batch);
            spec.tile_vectors = v;
            spec.sets = s;
            check(&w, rows, cols, &spec, &packings(&w, rows, cols, batch));
        }
    }
}

#[test]
fn long_reductions_take_wide_tiles_and_agree() {
    // More than 2048 columns: the `f32x8` CSR loop walks 32-column tiles (two `X^T` tiles side
    // by side); full and partial last tiles, with bias and ReLU, and the tilings of a spec.
    let (rows, cols) = (21, 2300);
    let w = unstructured(&mut Rng(17), rows, cols, 0.9);
    let csr = Packing::Csr(Csr::from_dense("w", rows, cols, &w).unwrap());
    for (batch, v, s) in [(64, 4, 2), (40, 4, 2), (13, 4, 2), (64, 2, 3), (33, 1, 1)] {
        let mut spec = MatmulSpec::new(batch);
        spec.tile_vectors = v;
        spec.sets = s;
        spec.relu = true;
        spec.bias = Some((0..rows).map(|r| r as f32 * 0.25 - 2.0).collect());
        check(
            &w,
            rows,
            cols,
            &spec,
            &[("csr", csr.clone(), Strategy::Loop)],
        );
    }
}

#[test]
fn large_matrix_splits_into_many_units() {
    let (rows, cols) = (512, 1024);
    let w = unstructured(&mut Rng(3), rows, cols, 0.9);
    let mut jit = Jit::new().unwrap();
    let csr = Packing::Csr(Csr::from_dense("w", rows, cols, &w).unwrap());
    let sm = compile(&mut jit, "w", &csr, Strategy::Loop, &MatmulSpec::new(1)).unwrap();
    assert!(sm.work >= 16, "{} units", sm.work);
    for batch in [1, 64] {
        check(
            &w,
            rows,
            cols,
            &MatmulSpec::new(batch),
            &packings(&w, rows, cols, batch),
        );
    }
}

#[test]
fn pattern_baked_kernel_at_the_code_size_budget() {
    let (rows, cols) = (25, 1024);
    let w = unstructured(&mut Rng(13), rows, cols, 0.7);
    let csr = Csr::from_dense("w", rows, cols, &w).unwrap();
    assert!(csr.nnz() > BAKED_MAX_NNZ / 2 && csr.nnz() <= BAKED_MAX_NNZ);
    let mut spec = MatmulSpec::new(1);
    spec.relu = true;
    check(
        &w,
        rows,
        cols,
        &spec,
        &[("baked", Packing::Csr(csr.clone()), Strategy::Baked)],
    );
    // Over the budget at batch 64 (several tiles).
    let mut jit = Jit::new().unwrap();
    let e = compile(
        &mut jit,
        "fc",
        &Packing::Csr(csr),
        Strategy::Baked,
        &MatmulSpec::new(64),
    );
    assert!(e.unwrap_err().to_string().contains("budget"));
}

#[test]
fn matches_the_interpreters_gemm() {
    let (rows, cols, batch) = (11, 18, 6);
    let w = unstructured(&mut Rng(5), rows, cols, 0.9);
    let bias: Vec<f32> = (0..rows).map(|r| 0.25 * r as f32).collect();
    let x: Vec<f32> = {
        let mut rng = Rng(0x5eed ^ (rows * 31 + cols * 7 + batch) as u64);
        (0..batch * cols).map(|_| rng.value()).collect()
    };
    let op = Op::Gemm {
        alpha: 1.0,
        beta: 1.0,
        trans_a: 0,
        trans_b: 1,
    };
    let xt = Tensor::from_f32(&[batch, cols], x.clone());
    let wt = Tensor::from_f32(&[rows, cols], w.clone());
    let bt = Tensor::from_f32(&[rows], bias.clone());
    let want = eval_op(&op, &[Some(&xt), Some(&wt), Some(&bt)], 1).unwrap()[0].to_f32_vec();
    let mut spec = MatmulSpec::new(batch);
    spec.bias = Some(bias);
    let (ours, _) = reference(&x, &w, rows, cols, &spec);
    for (a, b) in ours.iter().zip(&want) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
    check(&w, rows, cols, &spec, &packings(&w, rows, cols, batch));
}

#[test]
fn bad_specs_are_errors() {
    let w = vec![1.0, 0.0, 0.0, 2.0];
    let csr = Packing::Csr(Csr::from_dense("w", 2, 2, &w).unwrap());
    let bsr = Packing::Bsr(Bsr::from_dense("w", 2, 2, &w, 1, 2).unwrap());
    let mut jit = Jit::new().unwrap();
    let mut spec = MatmulSpec::new(0);
    assert!(compile(&mut jit, "w", &csr, Strategy::Loop, &spec).is_err());
    spec.batch = 2;
    spec.bias = Some(vec![1.0]);
    let e = compile(&mut jit, "fc", &csr, Strategy::Loop, &spec).unwrap_err();
    assert!(e.to_string().contains("`fc`"), "{e}");
    spec.bias = None;
    assert!(compile(&mut jit, "w", &bsr, Strategy::Baked, &spec).is_err());
    spec.tile_vectors = 13;
    assert!(compile(&mut jit, "w", &csr, Strategy::Loop, &spec).is_err());
}

/// `scattered_order` permutes each row's nonzeros within the row (every position once), is the
/// same on every call, and does leave column order on long rows.
#[test]
fn scattered_order_permutes_within_rows() {
    let (rows, cols) = (9, 300);
    let mut rng = Rng(0x5ca7_7e12);
    let w = unstructured(&mut rng, rows, cols, 0.6);
    let m = Csr::from_dense("w", rows, cols, &w).unwrap();
    let order: Vec<usize> = m.scattered_order().collect();
    assert_eq!(
        order,
        m.scattered_order().collect::<Vec<_>>(),
        "deterministic"
    );
    let mut seen = vec![false; m.nnz()];
    let mut moved = 0;
    for r in 0..rows {
        let (a, b) = (m.row_ptr[r] as usize, m.row_ptr[r + 1] as usize);
        for (i, &q) in order[a..b].iter().enumerate() {
            assert!(
                (a..b).contains(&q),
                "row {r}: position {q} from another row"
            );
            assert!(!seen[q], "position {q} twice");
            seen[q] = true;
            moved += usize::from(q != a + i);
        }
    }
    assert!(seen.iter().all(|&s| s));
    assert!(moved > m.nnz() / 2, "only {moved} of {} moved", m.nnz());
}
