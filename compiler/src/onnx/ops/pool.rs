//! Converters of the pooling ops (`MaxPool`, `AveragePool`, `LpPool` and their global forms).

use sparsec_ir::Op;

use super::Registry;

/// Registers the pool family.
pub(crate) fn register(reg: &mut Registry) {
    reg.add("MaxPool", |c| {
        let a = c.attrs;
        c.all(Op::MaxPool {
            auto_pad: a.string("auto_pad", "NOTSET")?,
            ceil_mode: a.i64("ceil_mode", 0)?,
            dilations: a.ints_or_empty("dilations")?,
            kernel_shape: a.ints_or_empty("kernel_shape")?,
            pads: a.ints_or_empty("pads")?,
            storage_order: a.i64("storage_order", 0)?,
            strides: a.ints_or_empty("strides")?,
        })
    });
    reg.add("AveragePool", |c| {
        let a = c.attrs;
        c.all(Op::AveragePool {
            auto_pad: a.string("auto_pad", "NOTSET")?,
            ceil_mode: a.i64("ceil_mode", 0)?,
            count_include_pad: a.i64("count_include_pad", 0)?,
            dilations: a.ints_or_empty("dilations")?,
            kernel_shape: a.ints_or_empty("kernel_shape")?,
            pads: a.ints_or_empty("pads")?,
            strides: a.ints_or_empty("strides")?,
        })
    });
    reg.add("LpPool", |c| {
        let a = c.attrs;
        c.all(Op::LpPool {
            auto_pad: a.string("auto_pad", "NOTSET")?,
            ceil_mode: a.i64("ceil_mode", 0)?,
            dilations: a.ints_or_empty("dilations")?,
            kernel_shape: a.ints_or_empty("kernel_shape")?,
            p: a.i64("p", 2)?,
            pads: a.ints_or_empty("pads")?,
            strides: a.ints_or_empty("strides")?,
        })
    });
    reg.add("GlobalAveragePool", |c| c.all(Op::GlobalAveragePool {}));
    reg.add("GlobalMaxPool", |c| c.all(Op::GlobalMaxPool {}));
    reg.add("GlobalLpPool", |c| {
        c.all(Op::GlobalLpPool {
            p: c.attrs.i64("p", 2)?,
        })
    });
}
