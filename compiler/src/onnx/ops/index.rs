//! Converters of the gathers and scatters (`Gather*`, `Scatter*`, `OneHot`).
//!
//! The deprecated `Scatter` (opsets 9-10) is `ScatterElements` without reduction.

use sparsec_ir::Op;

use super::Registry;

/// Registers the index family.
pub(crate) fn register(reg: &mut Registry) {
    reg.add("Gather", |c| {
        c.all(Op::Gather {
            axis: c.attrs.i64("axis", 0)?,
        })
    });
    reg.add("GatherElements", |c| {
        c.all(Op::GatherElements {
            axis: c.attrs.i64("axis", 0)?,
        })
    });
    reg.add("GatherND", |c| {
        c.all(Op::GatherNd {
            batch_dims: c.attrs.i64("batch_dims", 0)?,
        })
    });
    reg.add("ScatterND", |c| {
        c.all(Op::ScatterNd {
            reduction: c.attrs.string("reduction", "none")?,
        })
    });
    reg.add("ScatterElements", |c| {
        c.all(Op::ScatterElements {
            axis: c.attrs.i64("axis", 0)?,
            reduction: c.attrs.string("reduction", "none")?,
        })
    });
    reg.add("Scatter", |c| {
        c.all(Op::ScatterElements {
            axis: c.attrs.i64("axis", 0)?,
            reduction: "none".to_string(),
        })
    });
    reg.add("OneHot", |c| {
        c.all(Op::OneHot {
            axis: c.attrs.i64("axis", -1)?,
        })
    });
}
