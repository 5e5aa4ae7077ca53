//! Window geometry for the pooling and convolution cases: kernel sizes, strides, dilations and
//! pads drawn from their legal ranges and clamped so every output size is at least one.

use crate::gen::Rng;

/// The window attributes of one case.
#[derive(Clone, Debug)]
pub struct Window {
    /// Kernel size per spatial axis.
    pub kernel: Vec<i64>,
    /// Strides (empty half the time: the default).
    pub strides: Vec<i64>,
    /// Dilations (empty half the time).
    pub dilations: Vec<i64>,
    /// Pads, begins then ends (empty when `auto_pad` is not `NOTSET`, or for the default).
    pub pads: Vec<i64>,
    /// `NOTSET`, `VALID`, `SAME_UPPER` or `SAME_LOWER`.
    pub auto_pad: String,
}

/// A window over `spatial` sizes: kernel `1..=max_k`, stride `1..=3`, dilation `1..=2` (when
/// `dilate`), pads below the kernel size, one case in four with an `auto_pad` mode.
pub fn window(spatial: &[usize], seed: u64, max_k: i64, dilate: bool) -> Window {
    let mut r = Rng::new(seed);
    let ns = spatial.len();
    let mut kernel = Vec::new();
    let mut strides = Vec::new();
    let mut dilations = Vec::new();
    let mut begin = Vec::new();
    let mut end = Vec::new();
    let auto_pad = match r.int(0, 7) {
        0 => "VALID",
        1 => "SAME_UPPER",
        2 => "SAME_LOWER",
        _ => "NOTSET",
    };
    for &s in spatial {
        let s = s as i64;
        let mut k = r.int(1, max_k);
        let mut d = if dilate { r.int(1, 2) } else { 1 };
        let mut pb = r.int(0, k - 1);
        let mut pe = r.int(0, k - 1);
        if auto_pad != "NOTSET" {
            pb = 0;
            pe = 0;
        }
        // Keep the effective kernel inside the (padded) input.
        if (k - 1) * d + 1 > s + pb + pe {
            d = 1;
            k = k.min(s);
            pb = pb.min(k - 1);
            pe = pe.min(k - 1);
        }
        kernel.push(k);
        strides.push(r.int(1, 3));
        dilations.push(d);
        begin.push(pb);
        end.push(pe);
    }
    let defaults = r.int(0, 1) == 0;
    let pads = if auto_pad == "NOTSET" && !(defaults && begin.iter().chain(&end).all(|&p| p == 0)) {
        begin.into_iter().chain(end).collect()
    } else {
        Vec::new()
    };
    let keep = |v: Vec<i64>| {
        if defaults && v.iter().all(|&x| x == 1) {
            Vec::new()
        } else {
            v
        }
    };
    debug_assert_eq!(kernel.len(), ns);
    Window {
        kernel,
        strides: keep(strides),
        dilations: keep(dilations),
        pads,
        auto_pad: auto_pad.to_string(),
    }
}
