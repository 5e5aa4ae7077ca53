//! The sparse convolution's part of `sparsec tune`: `sparse::lower_sparse_conv` timed on a few
//! convolution shapes at 90% random zeros, fitted into the table's `sparse_conv` costs (per stored
//! value and per output channel, per `f32x4` vector of output pixels, from 1x1 stride-1 layers
//! that read their input in place) and its `conv_copy_ns_per_elem` (the rest of the time of
//! 3x3 and stride-2 layers, which copy their input into padded planes first).

use super::table::CostTable;
use super::tune::{fit2, median};
use crate::codegen::jit::Jit;
use crate::codegen::local::LocalSteps;
use crate::codegen::sparse::sample::Rng;
use crate::codegen::sparse::{lower_sparse_conv, Csr, Packing};
use crate::codegen::CodegenError;
use sparsec_ir::{DType, Graph, Op, Tensor, TensorType};

/// One measured convolution: stored values, output channels, output pixels, copied input
/// elements, and nanoseconds.
struct Sample {
    stored: f64,
    rows: f64,
    pixels: usize,
    copied: f64,
    ns: f64,
}

/// Times a `cin -> cout`, `k x k`, `stride` convolution over a `hw x hw` image with `zeros` of
/// its weights zero (padding `k / 2`).
#[allow(clippy::too_many_arguments)]
fn sample(
    rng: &mut Rng,
    reps: usize,
    cin: usize,
    cout: usize,
    hw: usize,
    k: usize,
    stride: usize,
    zeros: f32,
) -> Result<Sample, CodegenError> {
    let pad = k / 2;
    let out = (hw + 2 * pad - k) / stride + 1;
    let mut g = Graph::new("tune");
    let xs = [1, cin, hw, hw];
    let x = g.add_input("x", TensorType::known(DType::F32, &xs));
    let ws = [cout, cin, k, k];
    let w: Vec<f32> = (0..ws.iter().product())
        .map(|_| if rng.unit() < zeros { 0.0 } else { rng.value() })
        .collect();
    let wv = g.add_weight("w", Tensor::from_f32(&ws, w.clone()));
    let op = Op::Conv {
        auto_pad: "NOTSET".into(),
        dilations: vec![1, 1],
        group: 1,
        kernel_shape: vec![],
        pads: vec![pad as i64; 4],
        strides: vec![stride as i64; 2],
    };
    let ys = [1, cout, out, out];
    let node = g.add_node(
        "conv",
        op,
        vec![Some(x), Some(wv)],
        vec![("y".into(), TensorType::known(DType::F32, &ys))],
    );
    let cols = cin * k * k;
    let csr = Csr::from_dense("tune", cout, cols, &w)
        .map_err(|e| CodegenError::Unsupported(e.to_string()))?;
    let stored = csr.nnz() as f64;
    let mut jit = Jit::new()?;
    let steps = lower_sparse_conv(&g, node, &[], &Packing::Csr(csr), &mut jit, 0)?;
    let xdata: Vec<f32> = (0..xs.iter().product()).map(|_| rng.value()).collect();
    let mut init = |v| (v == x).then(|| Tensor::from_f32(&xs, xdata.clone()));
    let mut local = LocalSteps::new(&g, &steps, &mut init);
    let secs = median(reps, || local.run(&|_, work| vec![(0, work)]));
    drop(jit);
    let copied = if k > 1 || stride > 1 {
        (cin * (hw + 2 * pad) * (hw + 2 * pad)) as f64
    } else {
        0.0
    };
    Ok(Sample {
        stored,
        rows: cout as f64,
        pixels: out * out,
        copied,
        ns: secs * 1e9,
    })
}

/// Measures the sparse convolution and sets `table.sparse_conv` and
/// `table.conv_copy_ns_per_elem`.
pub fn tune_conv(
    table: &mut CostTable,
    rng: &mut Rng,
    reps: usize,
    quick: bool,
    progress: &mut dyn FnMut(&str),
) -> Result<(), CodegenError> {
    let scale = if quick { 2 } else { 1 };
    // 1x1, stride 1: no copy.
    let direct = [
        (64, 256, 56),
        (256, 64, 56),
        (512, 128, 28),
        (1024, 256, 14),
    ];
    let mut fit = Vec::new();
    for &(cin, cout, hw) in &direct {
        let s = sample(rng, reps, cin / scale, cout / scale, hw / scale, 1, 1, 0.9)?;
        let vecs = s.pixels.div_ceil(4) as f64;
        fit.push((vecs * s.stored, vecs * s.rows, s.ns));
    }
    let (per_stored, per_row) = fit2(&fit, 1e-4);
    table.sparse_conv.ns_per_stored_vec = per_stored;
    table.sparse_conv.ns_per_row_vec = per_row;
    // 3x3 and stride 2: the rest is the copy.
    let copying = [
        (64, 64, 56, 3, 1),
        (128, 128, 28, 3, 1),
        (128, 128, 56, 3, 2),
    ];
    let mut per_copy = Vec::new();
    for &(cin, cout, hw, k, stride) in &copying {
        let s = sample(
            rng,
            reps,
            cin / scale,
            cout / scale,
            hw / scale,
            k,
            stride,
            0.9,
        )?;
        let vecs = s.pixels.div_ceil(4) as f64;
        let model = vecs * (s.stored * per_stored + s.rows * per_row);
        per_copy.push(((s.ns - model) / s.copied.max(1.0)).max(1e-3));
    }
    per_copy.sort_by(f64::total_cmp);
    table.conv_copy_ns_per_elem = per_copy[per_copy.len() / 2];
    progress(&format!(
        "sparse conv: {:.4} ns/value/pixel-vector + {:.2} ns/channel/pixel-vector, input copy {:.3} ns/element",
        per_stored, per_row, table.conv_copy_ns_per_elem
    ));
    Ok(())
}
