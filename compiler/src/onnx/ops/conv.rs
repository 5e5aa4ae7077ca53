//! Converters of the convolutions (`Conv`, `ConvTranspose`).

use sparsec_ir::Op;

use super::Registry;

/// Registers the conv family.
pub(crate) fn register(reg: &mut Registry) {
    reg.add("Conv", |c| {
        let a = c.attrs;
        c.all(Op::Conv {
            auto_pad: a.string("auto_pad", "NOTSET")?,
            dilations: a.ints_or_empty("dilations")?,
            group: a.i64("group", 1)?,
            kernel_shape: a.ints_or_empty("kernel_shape")?,
            pads: a.ints_or_empty("pads")?,
            strides: a.ints_or_empty("strides")?,
        })
    });
    reg.add("ConvTranspose", |c| {
        let a = c.attrs;
        c.all(Op::ConvTranspose {
            auto_pad: a.string("auto_pad", "NOTSET")?,
            dilations: a.ints_or_empty("dilations")?,
            group: a.i64("group", 1)?,
            kernel_shape: a.ints_or_empty("kernel_shape")?,
            output_padding: a.ints_or_empty("output_padding")?,
            output_shape: a.ints_or_empty("output_shape")?,
            pads: a.ints_or_empty("pads")?,
            strides: a.ints_or_empty("strides")?,
        })
    });
}
