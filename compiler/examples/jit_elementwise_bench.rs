//! Times JIT-compiled elementwise kernels against the reference interpreter over `[1,512,768]`:
//! a fused `add(x, bias) + relu` and an exact `gelu`.
//!
//! `cargo run --release --example jit_elementwise_bench [-- REPEATS]`; prints the median time of
//! each engine and the speedup, single-threaded (the kernel is called on `0..work`).

use sparsec::codegen::elementwise::{chain_from_nodes, lower_elementwise};
use sparsec::codegen::jit::Jit;
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

/// Benchmarks the chain of `ops` (each reading the previous result and, for binary ops, the
/// bias) over `shape`.
fn bench(label: &str, ops: &[Op], repeats: usize) -> Result<(), Box<dyn std::error::Error>> {
    let shape = [1usize, 512, 768];
    let n: usize = shape.iter().product();
    let ty = TensorType::known(DType::F32, &shape);
    let mut g = Graph::new(label);
    let x = g.add_input("x", ty.clone());
    let bias = g.add_weight("bias", Tensor::from_f32(&[768], data(768, 2)));
    let mut prev = x;
    let mut nodes = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        let mut inputs = vec![Some(prev)];
        if op.family() == sparsec_ir::Family::Binary {
            inputs.push(Some(bias));
        }
        let id = g.add_node(
            format!("n{i}"),
            op.clone(),
            inputs,
            vec![(format!("r{i}"), ty.clone())],
        );
        nodes.push(id);
        prev = g.node(id).outputs[0];
    }
    let chain = chain_from_nodes(&g, &nodes).ok_or("chain not supported")?;
    let mut jit = Jit::new()?;
    let t0 = Instant::now();
    let k = lower_elementwise(&mut jit, &chain)?;
    let compile_ms = t0.elapsed().as_secs_f64() * 1e3;

    let xt = Tensor::from_f32(&shape, data(n, 1));
    let bt = g.const_data(bias).ok_or("bias")?.clone();
    let mut interp_ms = Vec::new();
    let mut want = None;
    for _ in 0..repeats {
        let t = Instant::now();
        let mut cur = xt.clone();
        for op in ops {
            let args: Vec<Option<&Tensor>> = if op.family() == sparsec_ir::Family::Binary {
                vec![Some(&cur), Some(&bt)]
            } else {
                vec![Some(&cur)]
            };
            cur = eval_op(op, &args, 1)?.remove(0);
        }
        interp_ms.push(t.elapsed().as_secs_f64() * 1e3);
        want = Some(cur);
    }

    let mut ins: Vec<Vec<f32>> = chain
        .inputs
        .iter()
        .map(|i| {
            if i.value == x {
                data(n, 1)
            } else {
                bt.to_f32_vec()
            }
        })
        .collect();
    let mut out = vec![0.0f32; n];
    let mut args: Vec<*mut u8> = ins.iter_mut().map(|v| v.as_mut_ptr() as *mut u8).collect();
    args.push(out.as_mut_ptr() as *mut u8);
    let mut jit_ms = Vec::new();
    for _ in 0..repeats {
        let t = Instant::now();
        // SAFETY: the buffers have exactly the shapes the kernel was compiled for.
        unsafe { k.kernel.call(&args, 0, k.work) };
        jit_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let want = want.ok_or("no repeats")?;
    let max_err = out
        .iter()
        .zip(want.as_f32().ok_or("f32")?)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    let (i, j) = (median(interp_ms), median(jit_ms));
    println!(
        "{label:<10} interp {i:8.3} ms  jit {j:7.3} ms  speedup {:6.1}x  (compile {compile_ms:.2} ms, max abs err {max_err:.2e}, {:.2} Gelem/s)",
        i / j,
        n as f64 / (j * 1e-3) / 1e9
    );
    drop(jit.finish()?);
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let repeats: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(21);
    bench("add+relu", &[Op::Add {}, Op::Relu {}], repeats)?;
    bench(
        "gelu",
        &[Op::Gelu {
            approximate: "none".into(),
        }],
        repeats,
    )?;
    bench(
        "gelu_tanh",
        &[Op::Gelu {
            approximate: "tanh".into(),
        }],
        repeats,
    )?;
    Ok(())
}
