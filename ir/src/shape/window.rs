//! The sliding-window size formula of convolutions and pools on one spatial axis, with concrete
//! sizes: explicit pads or `auto_pad`, strides, dilations and `ceil_mode`.
//!
//! Shape inference (`conv.rs`, which also handles symbolic dims), the interpreter and the
//! lowered kernels all resolve windows through [`resolve_window`], so they agree on every
//! output size and on the padding actually applied.

/// One spatial axis of a window op, resolved for a concrete input size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AxisWindow {
    /// Output positions along the axis; 0 when the window does not fit the padded input.
    pub out: usize,
    /// Padding applied before the first input element.
    pub pad_begin: usize,
    /// Padding applied after the last input element.
    pub pad_end: usize,
}

/// Resolves one spatial axis of size `input` for a window of `kernel` taps, `stride`,
/// `dilation`, explicit `pads` (begin, end; used only when `auto_pad` is `NOTSET` or empty) and
/// `ceil_mode` (pools; only with explicit pads, as ONNX Runtime does).
///
/// `SAME_UPPER`/`SAME_LOWER` give `ceil(input / stride)` positions and split the padding they
/// need, the odd element going to the end (upper) or the beginning (lower); `VALID` pads nothing.
/// With `ceil_mode`, the last window must start inside the input or its begin padding.
/// `None` when an attribute is out of range: a kernel, stride or dilation below 1 or above
/// `i32::MAX`, a negative pad, or an unknown `auto_pad`.
pub fn resolve_window(
    input: usize,
    kernel: i64,
    stride: i64,
    dilation: i64,
    pads: (i64, i64),
    auto_pad: &str,
    ceil_mode: bool,
) -> Option<AxisWindow> {
    let limit = i32::MAX as i64;
    let in_range = |v: i64| (1..=limit).contains(&v);
    if !in_range(kernel) || !in_range(stride) || !in_range(dilation) {
        return None;
    }
    if pads.0 < 0 || pads.1 < 0 {
        return None;
    }
    // Attributes come from the model: i128 keeps every product in range.
    let (x, k, s, d) = (
        input as i128,
        kernel as i128,
        stride as i128,
        dilation as i128,
    );
    let eff = (k - 1) * d + 1;
    let (out, b, e) = match auto_pad {
        "NOTSET" | "" => {
            let (b, e) = (pads.0 as i128, pads.1 as i128);
            let span = x + b + e - eff;
            let out = if span < 0 {
                0
            } else if ceil_mode {
                let mut out = (span + s - 1) / s + 1;
                if (out - 1) * s >= x + b {
                    out -= 1;
                }
                out
            } else {
                span / s + 1
            };
            (out, b, e)
        }
        "VALID" => (if x < eff { 0 } else { (x - eff) / s + 1 }, 0, 0),
        "SAME_UPPER" | "SAME_LOWER" => {
            let out = (x + s - 1) / s;
            let total = ((out - 1) * s + eff - x).max(0);
            let small = total / 2;
            if auto_pad == "SAME_UPPER" {
                (out, small, total - small)
            } else {
                (out, total - small, small)
            }
        }
        _ => return None,
    };
    Some(AxisWindow {
        out: usize::try_from(out).ok()?,
        pad_begin: usize::try_from(b).ok()?,
        pad_end: usize::try_from(e).ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(out: usize, pad_begin: usize, pad_end: usize) -> Option<AxisWindow> {
        Some(AxisWindow {
            out,
            pad_begin,
            pad_end,
        })
    }

    #[test]
    fn explicit_pads_floor_and_ceil() {
        // 7 inputs, 3 taps, stride 2, pads 1+1: floor((7 + 2 - 3) / 2) + 1 = 4.
        assert_eq!(
            resolve_window(7, 3, 2, 1, (1, 1), "NOTSET", false),
            w(4, 1, 1)
        );
        // 6 inputs, 3 taps, stride 2, no pads: floor 2, ceil 3 (the last window starts at 4 < 6).
        assert_eq!(resolve_window(6, 3, 2, 1, (0, 0), "", false), w(2, 0, 0));
        assert_eq!(
            resolve_window(6, 3, 2, 1, (0, 0), "NOTSET", true),
            w(3, 0, 0)
        );
        // ceil_mode never starts a window in the end padding: 5 inputs, 2 taps, stride 2, pads 0+1.
        assert_eq!(
            resolve_window(5, 2, 2, 1, (0, 1), "NOTSET", true),
            w(3, 0, 1)
        );
        // Dilation 2 makes 3 taps span 5 inputs.
        assert_eq!(
            resolve_window(5, 3, 1, 2, (0, 0), "NOTSET", false),
            w(1, 0, 0)
        );
    }

    #[test]
    fn auto_pad_modes() {
        // SAME: ceil(7 / 2) = 4 positions need (4 - 1) * 2 + 3 - 7 = 2 pads.
        assert_eq!(
            resolve_window(7, 3, 2, 1, (9, 9), "SAME_UPPER", false),
            w(4, 1, 1)
        );
        // An odd total goes to the end (upper) or the beginning (lower).
        assert_eq!(
            resolve_window(4, 2, 1, 1, (0, 0), "SAME_UPPER", false),
            w(4, 0, 1)
        );
        assert_eq!(
            resolve_window(4, 2, 1, 1, (0, 0), "SAME_LOWER", false),
            w(4, 1, 0)
        );
        // VALID ignores the explicit pads.
        assert_eq!(
            resolve_window(7, 3, 2, 1, (5, 5), "VALID", false),
            w(3, 0, 0)
        );
    }

    #[test]
    fn windows_that_do_not_fit_and_bad_attributes() {
        assert_eq!(
            resolve_window(2, 3, 1, 1, (0, 0), "NOTSET", false),
            w(0, 0, 0)
        );
        assert_eq!(
            resolve_window(2, 3, 1, 1, (0, 0), "VALID", false),
            w(0, 0, 0)
        );
        assert_eq!(resolve_window(2, 0, 1, 1, (0, 0), "NOTSET", false), None);
        assert_eq!(resolve_window(2, 1, 0, 1, (0, 0), "NOTSET", false), None);
        assert_eq!(resolve_window(2, 1, 1, 0, (0, 0), "NOTSET", false), None);
        assert_eq!(resolve_window(2, 1, 1, 1, (-1, 0), "NOTSET", false), None);
        assert_eq!(resolve_window(2, 1, 1, 1, (0, 0), "SAME", false), None);
        assert_eq!(
            resolve_window(2, i64::MAX, 1, 1, (0, 0), "NOTSET", false),
            None
        );
    }
}
