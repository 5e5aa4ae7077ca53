//! Times the native row kernels of `codegen::norm` against the reference interpreter: softmax
//! over `[1,2,128,128]` (attention scores) and layer normalization over `[1,128,768]`.
//!
//! `cargo run --release --example norm_bench [-- REPEATS]`; prints the median time of each engine
//! and the speedup, single-threaded (the kernel is called on `0..work`).

use sparsec::codegen::norm::lower_norm;
use sparsec::interp::eval_op;
use sparsec_ir::{DType, Graph, Op, Tensor, TensorType};
use std::time::Instant;

/// Median of the timings, in milliseconds.
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Deterministic data in `[-3, 3)`.
fn data(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2654435761).wrapping_add(1);
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s >> 8) as f32 / (1u32 << 24) as f32 * 6.0 - 3.0
        })
        .collect()
}

/// Benchmarks `op` over `shape`; a layer norm gets a `[D]` scale and bias.
fn bench(
    label: &str,
    op: Op,
    shape: &[usize],
    repeats: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = shape.iter().product();
    let d = shape[shape.len() - 1];
    let ty = TensorType::known(DType::F32, shape);
    let mut g = Graph::new(label);
    let xt = Tensor::from_f32(shape, data(n, 1));
    let x = g.add_input("x", ty.clone());
    let mut inputs = vec![Some(x)];
    let mut tensors = vec![xt];
    if matches!(op, Op::LayerNormalization { .. }) {
        for (i, name) in ["scale", "bias"].iter().enumerate() {
            let t = Tensor::from_f32(&[d], data(d, i as u32 + 2));
            inputs.push(Some(g.add_weight(*name, t.clone())));
            tensors.push(t);
        }
    }
    let id = g.add_node("n", op.clone(), inputs, vec![("y".into(), ty)]);
    let k = lower_norm(&g, id)?;
    let mut bufs: Vec<Vec<f32>> = tensors.iter().map(|t| t.to_f32_vec()).collect();
    bufs.push(vec![0.0; n]);
    let ptrs: Vec<*mut u8> = bufs.iter_mut().map(|b| b.as_mut_ptr() as *mut u8).collect();
    let args: Vec<Option<&Tensor>> = tensors.iter().map(Some).collect();
    let (mut native, mut interp) = (Vec::new(), Vec::new());
    let mut want = Vec::new();
    for _ in 0..repeats {
        let t = Instant::now();
        // SAFETY: the buffers match the kernel's arguments in order and size.
        unsafe { k.kernel.call(&ptrs, 0, k.work) };
        native.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        want = eval_op(&op, &args, 1)?.remove(0).to_f32_vec();
        interp.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let out = &bufs[bufs.len() - 1];
    let err = out
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    let (a, b) = (median(native), median(interp));
    println!(
        "{label:<28} native {a:8.3} ms   interpreter {b:8.3} ms   speedup {:6.1}x   max |err| {err:.2e}   grain {}/{}",
        b / a,
        k.grain,
        k.work
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let repeats = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(21);
    let softmax = Op::Softmax {
        axis: -1,
        coerce_2d: 0,
    };
    bench("softmax [1,2,128,128]", softmax, &[1, 2, 128, 128], repeats)?;
    let log_softmax = Op::LogSoftmax {
        axis: -1,
        coerce_2d: 0,
    };
    bench(
        "log_softmax [1,2,128,128]",
        log_softmax,
        &[1, 2, 128, 128],
        repeats,
    )?;
    let ln = Op::LayerNormalization {
        axis: -1,
        epsilon: 1e-5,
        stash_type: 1,
    };
    bench("layer_norm [1,128,768]", ln, &[1, 128, 768], repeats)?;
    Ok(())
}
