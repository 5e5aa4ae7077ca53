//! `sparsec bench`: compile a model with the JIT and time it.
//!
//! Prints compile time per phase, median/min/p90 latency over the timed iterations, the arena size,
//! the process's peak resident memory, and the top kernels by time with their op and layout.
//! Without inputs it makes random ones of the declared shapes (`--dim` binds symbolic dims, default
//! 1): floats uniform in [-1, 1), integers in {0, 1}, bools random.

use anyhow::{Context, Result};
use sparsec::engine::Engine;
use sparsec_ir::{Dim, Graph, Tensor};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// What to benchmark.
pub struct BenchOptions {
    /// Named input tensors (random ones are made for the rest).
    pub given: Vec<(String, Tensor)>,
    /// Symbolic dim bindings for random inputs.
    pub dims: BTreeMap<String, usize>,
    /// Thread count.
    pub threads: usize,
    /// Untimed runs first.
    pub warmup: usize,
    /// Timed runs.
    pub iterations: usize,
    /// Print one JSON object.
    pub json: bool,
    /// Import time already spent.
    pub import: Duration,
    /// Pass-pipeline time already spent.
    pub passes: Duration,
    /// The model's path, for the report.
    pub model: String,
}

/// Runs the benchmark and prints the report.
pub fn bench(graph: Graph, opts: BenchOptions) -> Result<()> {
    let inputs = make_inputs(&graph, &opts)?;
    let mut engine = Engine::new(graph, opts.threads)?;
    // Validate before compiling so a bad input is an error, not a compile of the wrong shapes.
    let named: Vec<(String, Tensor)> = engine
        .graph()
        .inputs()
        .iter()
        .zip(&inputs)
        .map(|(&v, t)| (engine.graph().value(v).name.clone(), t.clone()))
        .collect();
    sparsec::inputs::bind_inputs(engine.graph(), named)?;
    let compiled = engine
        .compile_for_inputs(&inputs)
        .context("cannot compile the model")?;
    let times = engine.last_compile;
    for _ in 0..opts.warmup {
        engine.execute(&compiled, &inputs, false)?;
    }
    let mut lat = Vec::with_capacity(opts.iterations);
    for _ in 0..opts.iterations.max(1) {
        let t = Instant::now();
        engine.execute(&compiled, &inputs, false)?;
        lat.push(t.elapsed());
    }
    // Per-kernel profile: the median of a few profiled runs per step.
    let runs = 3;
    let mut per_step: Vec<Vec<Duration>> = vec![Vec::new(); compiled.plan.steps.len()];
    for _ in 0..runs {
        let (_, t) = engine.execute(&compiled, &inputs, true)?;
        for (i, d) in t.into_iter().enumerate() {
            per_step[i].push(d);
        }
    }
    lat.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let median = ms(lat[lat.len() / 2]);
    let min = ms(lat[0]);
    let p90 = ms(lat[((lat.len() as f64 * 0.9).ceil() as usize).clamp(1, lat.len()) - 1]);
    let compile_ms = ms(opts.import + opts.passes + times.specialize + times.lower);
    let mut kernels: Vec<(usize, f64)> = per_step
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let mut v = v.clone();
            v.sort();
            (i, v.get(v.len() / 2).map(|d| ms(*d)).unwrap_or(0.0))
        })
        .collect();
    kernels.sort_by(|a, b| b.1.total_cmp(&a.1));
    let total: f64 = kernels.iter().map(|k| k.1).sum::<f64>().max(1e-12);
    let arena = compiled.plan.arena_bytes;
    let rss = sparsec_runtime::mem::peak_rss_bytes();
    let round_trip_ns = engine.pool().round_trip().map(|d| d.as_nanos() as u64);
    let grain_scale = engine.pool().grain_scale();
    if opts.json {
        let top: Vec<serde_json::Value> = kernels
            .iter()
            .map(|&(i, t)| {
                let s = &compiled.plan.steps[i];
                serde_json::json!({"name": s.name, "op": s.op, "layout": s.layout, "median_ms": t})
            })
            .collect();
        let v = serde_json::json!({
            "model": opts.model, "threads": opts.threads, "warmup": opts.warmup,
            "iterations": lat.len(), "median_ms": median, "min_ms": min, "p90_ms": p90,
            "compile_ms": compile_ms, "import_ms": ms(opts.import), "passes_ms": ms(opts.passes),
            "specialize_ms": ms(times.specialize), "lower_ms": ms(times.lower),
            "arena_bytes": arena, "peak_rss_bytes": rss, "steps": compiled.plan.steps.len(),
            "round_trip_ns": round_trip_ns, "grain_scale": grain_scale,
            "threads_far": engine.pool().is_far(),
            "kernels": top,
        });
        println!("{v}");
        return Ok(());
    }
    println!("model:    {}", opts.model);
    println!(
        "compile:  {compile_ms:.1} ms (import {:.1}, passes {:.1}, specialize {:.1}, lower+jit {:.1})",
        ms(opts.import),
        ms(opts.passes),
        ms(times.specialize),
        ms(times.lower)
    );
    println!(
        "latency:  median {median:.3} ms, min {min:.3} ms, p90 {p90:.3} ms ({} runs, {} warmup, {} threads)",
        lat.len(),
        opts.warmup,
        opts.threads
    );
    if engine.pool().threads() > 1 {
        let rt = round_trip_ns.map_or("no answer".to_string(), |ns| format!("{ns} ns"));
        let verdict = if engine.pool().is_far() {
            format!(
                "far apart: grains x{grain_scale}, plans under {} ms on one thread",
                sparsec::engine::SMALL_PLAN.as_millis()
            )
        } else {
            "near".to_string()
        };
        println!("threads:  round trip {rt} between them ({verdict})");
    }
    println!(
        "memory:   arena {:.2} MiB, peak resident {}",
        arena as f64 / 1048576.0,
        rss.map(|b| format!("{:.1} MiB", b as f64 / 1048576.0))
            .unwrap_or_else(|| "unknown".into())
    );
    println!("\ntop kernels ({} steps):", compiled.plan.steps.len());
    println!("{:>9} {:>6}  {:<28} {:<10} node", "ms", "%", "op", "layout");
    for &(i, t) in kernels.iter().take(12) {
        let s = &compiled.plan.steps[i];
        println!(
            "{t:>9.3} {:>5.1}%  {:<28} {:<10} {}",
            100.0 * t / total,
            s.op,
            s.layout,
            s.name
        );
    }
    Ok(())
}

fn make_inputs(graph: &Graph, opts: &BenchOptions) -> Result<Vec<Tensor>> {
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut out = Vec::new();
    for &v in graph.inputs() {
        let value = graph.value(v);
        if let Some((_, t)) = opts.given.iter().find(|(n, _)| *n == value.name) {
            out.push(t.clone());
            continue;
        }
        let shape: Vec<usize> = value
            .ty
            .dims
            .iter()
            .map(|d| match d {
                Dim::Known(n) => *n,
                Dim::Sym(s) => opts.dims.get(s).copied().unwrap_or(1),
            })
            .collect();
        let n: usize = shape.iter().product();
        let d = value.ty.dtype;
        let vals = (0..n).map(|_| {
            let r = next();
            if d.is_float() {
                (r >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
            } else {
                (r & 1) as f64
            }
        });
        out.push(Tensor::from_f64s(d, &shape, vals));
    }
    for (name, _) in &opts.given {
        if !graph.inputs().iter().any(|&v| graph.value(v).name == *name) {
            anyhow::bail!("the model has no input named `{name}`");
        }
    }
    Ok(out)
}
