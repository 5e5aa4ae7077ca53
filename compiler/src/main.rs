//! The `sparsec` command line: `inspect`, `ir`, `run`, `bench`, `prune`, `compile` and `tune`
//! over ONNX models (and `.spx` files compiled from them).

mod cli;

/// Large blocks (weights) cache-line aligned, so plans can read them in place at full speed.
#[global_allocator]
static ALLOC: cli::alloc::CacheAligned = cli::alloc::CacheAligned;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};

use sparsec::engine::Engine;
use sparsec::inputs::bind_inputs;
use sparsec::onnx::{import_file, ImportOptions};
use sparsec::passes::{default_pipeline, parse_pipeline, run_pipeline, RunOptions};
use sparsec::tensor_io::{read_tensor, write_tensor_pb};
use sparsec_ir::{Graph, Tensor, TensorData};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// sparsec: an ahead-of-time compiler that makes pruned (sparse) ONNX models run fast.
#[derive(Parser)]
#[command(name = "sparsec", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show every weight-bearing node with its weight's shape, nonzeros, density and sparsity
    /// pattern, the layout the cost model chooses and why (for the `--dim` bound shapes,
    /// unbound dims = 1), and model totals (parameters, nonzeros, MACs dense vs nonzero-only,
    /// bytes).
    Inspect {
        /// The ONNX model.
        model: PathBuf,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
        /// Leave out the layout choices.
        #[arg(long)]
        no_layouts: bool,
        #[command(flatten)]
        dims: DimArgs,
    },
    /// Print the model's IR in sparsec's text form after import and a pass pipeline.
    Ir {
        /// The ONNX model.
        model: PathBuf,
        /// Comma-separated passes to run (`default` is the default pipeline; empty runs none).
        #[arg(long, default_value = "default")]
        passes: String,
        /// Print the IR after this pass (instead of only at the end).
        #[arg(long, value_name = "PASS")]
        print_after: Option<String>,
        /// Stop the pipeline after this pass.
        #[arg(long, value_name = "PASS")]
        stop_after: Option<String>,
        /// Print a per-pass timing table to stderr.
        #[arg(long)]
        time_passes: bool,
        #[command(flatten)]
        dims: DimArgs,
    },
    /// Run the model on input tensors and write its outputs.
    Run(RunArgs),
    /// Compile the model with the JIT and time it: compile time per phase, median/min/p90 latency,
    /// arena size, peak resident memory, and the top kernels by time.
    Bench(BenchArgs),
    /// Prune the weights of Conv, Gemm and MatMul layers and write the model back as ONNX.
    ///
    /// BatchNormalization is folded first, so magnitudes are judged on the weights that will run;
    /// the output is the input model with the pruned positions zeroed in its own initializers
    /// (BatchNormalization nodes and everything else stay as they were). `--method channels`
    /// instead removes whole channels and writes the smaller tensors. By default the first and
    /// last weight layers and tensors under 4096 parameters stay dense; `--layer-sparsity` and
    /// `--all-layers` override that. Prints one line per layer (density before and after, and why)
    /// and totals.
    Prune(PruneArgs),
    /// Compile a model into a `.spx` file (optionally pruning it first, with the flags of
    /// `prune`): the graph after the passes and its weights, sparse ones as CSR. `run`, `bench`,
    /// `ir` and `inspect` accept the `.spx` file in place of the ONNX model.
    Compile(cli::compile::CompileArgs),
    /// Measure the dense and sparse kernels on this machine and write the cost table that layout
    /// selection reads (default: `$SPARSEC_TUNE`, else `~/.cache/sparsec/tune.json`).
    Tune {
        /// Where to write the table.
        #[arg(short = 'o', long, value_name = "PATH")]
        output: Option<PathBuf>,
        /// Small matrices and few repetitions (a few seconds).
        #[arg(long)]
        quick: bool,
    },
}

#[derive(Args)]
struct PruneArgs {
    /// The ONNX model.
    model: PathBuf,
    /// The pruned model to write (never the input; written to a temporary file, then renamed).
    #[arg(short = 'o', long, value_name = "OUT.onnx")]
    output: PathBuf,
    #[command(flatten)]
    flags: cli::prune::PruneFlags,
    #[command(flatten)]
    dims: DimArgs,
}

#[derive(Args)]
struct BenchArgs {
    /// The ONNX model.
    model: PathBuf,
    /// An input tensor, `NAME=FILE` (`.pb` or `.npy`); inputs not given are random.
    #[arg(long = "input", value_name = "NAME=FILE")]
    input: Vec<String>,
    /// Threads (default: the number of physical cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Untimed runs before timing.
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Timed runs.
    #[arg(long, default_value_t = 20)]
    iterations: usize,
    /// Print one JSON object (median_ms, min_ms, p90_ms, compile_ms, threads, arena_bytes, peak_rss_bytes, ...).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    dims: DimArgs,
}

#[derive(Args)]
struct DimArgs {
    /// Bind a symbolic dimension of the model's inputs, e.g. `--dim batch=1` (repeatable).
    #[arg(long = "dim", value_name = "NAME=VALUE")]
    dims: Vec<String>,
}

#[derive(Args)]
struct RunArgs {
    /// The ONNX model.
    model: PathBuf,
    /// An input tensor, `NAME=FILE`, FILE an ONNX TensorProto `.pb` or a numpy `.npy` (repeatable).
    #[arg(long = "input", value_name = "NAME=FILE", conflicts_with = "inputs")]
    input: Vec<String>,
    /// An ONNX `test_data_set_N` folder: `input_K.pb` for the K-th graph input.
    #[arg(long, value_name = "DIR")]
    inputs: Option<PathBuf>,
    /// Write each output to DIR/<name>.pb (the folder is created if missing).
    #[arg(long, value_name = "DIR")]
    output_dir: Option<PathBuf>,
    /// The execution engine: `jit` (compiled native kernels) or `interp` (the reference interpreter).
    #[arg(long, default_value = "jit", value_parser = ["jit", "interp"])]
    engine: String,
    /// Threads for the JIT engine (default: the number of physical cores).
    #[arg(long)]
    threads: Option<usize>,
    #[command(flatten)]
    dims: DimArgs,
}

fn main() -> ExitCode {
    std::panic::set_hook(Box::new(|info| {
        // A closed pipe (`sparsec ... | head`) is not an error of sparsec: stop quietly.
        if info.to_string().contains("Broken pipe") {
            std::process::exit(141);
        }
        eprintln!("error: internal error in sparsec (please report it): {info}");
    }));
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, skipping a cause whose text the message already holds
/// (library errors often print their source themselves).
fn one_line(e: &anyhow::Error) -> String {
    let mut msg = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !msg.contains(&text) {
            if !msg.is_empty() {
                msg.push_str(": ");
            }
            msg.push_str(&text);
        }
    }
    msg.replace('\n', " ")
}

fn dispatch(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Inspect {
            model,
            json,
            no_layouts,
            dims,
        } => {
            let graph = load(&model, &dims)?;
            let mut report = sparsec::inspect::inspect(&graph);
            if !no_layouts {
                let table = sparsec::codegen::layout::CostTable::load()?;
                report.add_layouts(&graph, &table);
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&report.to_json())?);
            } else {
                print!("{}", report.to_table());
            }
            Ok(())
        }
        Command::Ir {
            model,
            passes,
            print_after,
            stop_after,
            time_passes,
            dims,
        } => {
            let mut graph = import(&model, &dims)?;
            let pipeline = parse_pipeline(&passes)?;
            let opts = RunOptions {
                print_after: print_after.clone(),
                stop_after,
                verify: cfg!(debug_assertions),
            };
            let report = run_pipeline(&mut graph, &pipeline, &opts)?;
            if time_passes {
                eprint!("{}", report.timing_table());
            }
            if print_after.is_some() {
                for (pass, text) in &report.dumps {
                    println!("; after {pass}");
                    print!("{text}");
                }
            } else {
                print!("{}", sparsec_ir::print(&graph));
            }
            Ok(())
        }
        Command::Run(args) => run(args),
        Command::Bench(args) => bench(args),
        Command::Prune(args) => {
            let dims = parse_dims(&args.dims)?;
            cli::prune::prune(args.flags.request(args.model, args.output, dims))
        }
        Command::Compile(args) => cli::compile::compile(args),
        Command::Tune { output, quick } => cli::tune::tune(output, quick),
    }
}

fn parse_dims(d: &DimArgs) -> Result<BTreeMap<String, usize>> {
    let mut out = BTreeMap::new();
    for s in &d.dims {
        let (name, value) = s
            .split_once('=')
            .with_context(|| format!("--dim `{s}`: expected NAME=VALUE"))?;
        let v: usize = value
            .parse()
            .with_context(|| format!("--dim `{s}`: `{value}` is not a non-negative integer"))?;
        out.insert(name.to_string(), v);
    }
    Ok(out)
}

/// Imports an ONNX model, or reads a `.spx` file (told apart by its magic bytes).
fn import(model: &Path, dims: &DimArgs) -> Result<Graph> {
    if matches!(sparsec::spx::is_spx(model), Ok(true)) {
        let mut graph = sparsec::spx::read(model)?;
        sparsec::spx::bind_dims(&mut graph, &parse_dims(dims)?)?;
        return Ok(graph);
    }
    let opts = ImportOptions {
        dims: parse_dims(dims)?,
        ..ImportOptions::default()
    };
    import_file(model, &opts).with_context(|| format!("cannot import {}", model.display()))
}

/// Imports and runs the default pipeline.
fn load(model: &Path, dims: &DimArgs) -> Result<Graph> {
    let mut graph = import(model, dims)?;
    run_pipeline(&mut graph, &default_pipeline(), &RunOptions::default())?;
    Ok(graph)
}

fn run(args: RunArgs) -> Result<()> {
    let graph = load(&args.model, &args.dims)?;
    let mut given: Vec<(String, Tensor)> = Vec::new();
    if let Some(dir) = &args.inputs {
        if !dir.is_dir() {
            bail!("--inputs {}: not a folder", dir.display());
        }
        for (k, &v) in graph.inputs().iter().enumerate() {
            let path = dir.join(format!("input_{k}.pb"));
            if !path.exists() {
                bail!(
                    "--inputs {}: missing {} for input `{}`",
                    dir.display(),
                    path.display(),
                    graph.value(v).name
                );
            }
            let (_, t) =
                read_tensor(&path).with_context(|| format!("cannot read {}", path.display()))?;
            given.push((graph.value(v).name.clone(), t));
        }
    } else {
        for spec in &args.input {
            let (name, file) = spec
                .split_once('=')
                .with_context(|| format!("--input `{spec}`: expected NAME=FILE"))?;
            let path = Path::new(file);
            let (_, t) =
                read_tensor(path).with_context(|| format!("cannot read {}", path.display()))?;
            given.push((name.to_string(), t));
        }
    }
    let (tensors, _syms) = bind_inputs(&graph, given)?;
    let outputs = if args.engine == "interp" {
        sparsec::interp::run_graph(&graph, &tensors)?
    } else {
        let threads = args.threads.unwrap_or_else(sparsec_runtime::physical_cores);
        Engine::new(graph.clone(), threads)?.run(&tensors)?
    };
    if let Some(dir) = &args.output_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    for (&v, t) in graph.outputs().iter().zip(&outputs) {
        let name = &graph.value(v).name;
        println!("{name}: {}{:?} {}", t.dtype(), t.shape(), summary(t));
        if let Some(dir) = &args.output_dir {
            let path = dir.join(format!("{}.pb", file_safe(name)));
            write_tensor_pb(&path, name, t)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
    }
    Ok(())
}

fn bench(args: BenchArgs) -> Result<()> {
    let t0 = std::time::Instant::now();
    let mut graph = import(&args.model, &args.dims)?;
    let import_time = t0.elapsed();
    let t1 = std::time::Instant::now();
    run_pipeline(&mut graph, &default_pipeline(), &RunOptions::default())?;
    let passes = t1.elapsed();
    let mut given = Vec::new();
    for spec in &args.input {
        let (name, file) = spec
            .split_once('=')
            .with_context(|| format!("--input `{spec}`: expected NAME=FILE"))?;
        let (_, t) = read_tensor(Path::new(file)).with_context(|| format!("cannot read {file}"))?;
        given.push((name.to_string(), t));
    }
    let opts = cli::bench::BenchOptions {
        given,
        dims: parse_dims(&args.dims)?,
        threads: args
            .threads
            .unwrap_or_else(sparsec_runtime::physical_cores)
            .max(1),
        warmup: args.warmup,
        iterations: args.iterations,
        json: args.json,
        import: import_time,
        passes,
        model: args.model.display().to_string(),
    };
    cli::bench::bench(graph, opts)
}

/// A short summary: min/max/mean for numbers, counts for bools, and the first values.
fn summary(t: &Tensor) -> String {
    let n = t.numel();
    if n == 0 {
        return "(empty)".into();
    }
    if let TensorData::Bool(v) = t.data() {
        return format!(
            "true={} false={}",
            v.iter().filter(|&&b| b).count(),
            v.iter().filter(|&&b| !b).count()
        );
    }
    let v = t.to_f64_vec();
    let (mut lo, mut hi, mut sum) = (f64::INFINITY, f64::NEG_INFINITY, 0.0);
    for &x in &v {
        lo = lo.min(x);
        hi = hi.max(x);
        sum += x;
    }
    let head: Vec<String> = v.iter().take(4).map(|x| format!("{x:.4}")).collect();
    format!(
        "min={lo:.4} max={hi:.4} mean={:.4} first=[{}{}]",
        sum / n as f64,
        head.join(", "),
        if n > 4 { ", ..." } else { "" }
    )
}

/// A name usable as a file name: anything but ASCII letters, digits, `-`, `_` and `.` becomes `_`.
fn file_safe(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with('.') {
        format!("output{s}")
    } else {
        s
    }
}
