//! Differential property tests: every op of the table, run through the JIT engine (1 and 2
//! threads) and through the reference interpreter on random shapes, attributes and values, with
//! the results compared (exactly for integers and bools, with a tolerance for floats).
//!
//! One module per op family; `harness` builds and checks cases, `gen` draws shapes and data, and
//! [`coverage`] fails when an op of the table has no case.

mod differential {
    pub mod binary;
    pub mod dense;
    pub mod extreme;
    pub mod gen;
    pub mod harness;
    pub mod index;
    pub mod layout;
    pub mod misc;
    pub mod movement;
    pub mod norm;
    pub mod pool;
    pub mod reduce;
    pub mod split;
    pub mod unary;
    pub mod window;
}

pub use differential::{gen, harness, window};

use sparsec_ir::Op;

/// Ops without a differential case, each with the reason it cannot be built standalone.
const EXCLUDED: &[(&str, &str)] = &[];

/// The comparison reports a difference with its position, matches NaN with NaN, and compares
/// integers exactly: the differential tests can fail.
#[test]
fn compare_reports_the_first_difference() {
    use sparsec_ir::Tensor;
    let want = Tensor::from_f32(&[2, 3], vec![0.0, 1.0, 2.0, 3.0, f32::NAN, 5.0]);
    let same = Tensor::from_f32(&[2, 3], vec![0.0, 1.0, 2.0, 3.0, f32::NAN, 5.000_01]);
    assert!(harness::compare(&same, &want, 1e-5, 1e-4).is_ok());
    let off = Tensor::from_f32(&[2, 3], vec![0.0, 1.0, 2.0, 3.0, f32::NAN, 5.1]);
    let e = harness::compare(&off, &want, 1e-5, 1e-4).unwrap_err();
    assert!(e.contains("[1, 2]") && e.contains("interpreter 5"), "{e}");
    let nan = Tensor::from_f32(&[2, 3], vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    assert!(harness::compare(&nan, &want, 1e-5, 1e-4).is_err());
    let a = Tensor::from_i64(&[2], vec![1 << 60, 2]);
    let b = Tensor::from_i64(&[2], vec![(1 << 60) + 1, 2]);
    assert!(harness::compare(&a, &b, 1.0, 1.0).is_err());
    assert!(harness::compare(&a, &Tensor::from_i64(&[1, 2], vec![1 << 60, 2]), 0.0, 0.0).is_err());
}

/// Every op of the table has at least one differential case, and every exclusion names a real op.
#[test]
fn coverage() {
    let covered: Vec<&str> = [
        differential::unary::OPS,
        differential::binary::OPS,
        differential::reduce::OPS,
        differential::norm::OPS,
        differential::pool::OPS,
        differential::dense::OPS,
        differential::movement::OPS,
        differential::layout::OPS,
        differential::index::OPS,
        differential::misc::OPS,
        differential::split::OPS,
        differential::extreme::OPS,
    ]
    .concat();
    let missing: Vec<&str> = Op::NAMES
        .iter()
        .copied()
        .filter(|n| !covered.contains(n) && !EXCLUDED.iter().any(|(e, _)| e == n))
        .collect();
    assert!(
        missing.is_empty(),
        "ops without a differential case: {missing:?}"
    );
    for (e, _) in EXCLUDED {
        assert!(
            Op::NAMES.contains(e),
            "excluded op `{e}` is not in the op table"
        );
        assert!(
            !covered.contains(e),
            "excluded op `{e}` has a case; drop the exclusion"
        );
    }
    for c in &covered {
        assert!(Op::NAMES.contains(c), "case for unknown op `{c}`");
    }
}
