//! The JIT engine: specializes a graph to concrete input shapes, compiles it to a runtime plan,
//! caches one plan per input-shape signature, and runs it on the thread pool.
//!
//! Inputs are validated against the model's declared types (`inputs::bind_inputs`) and then
//! against the specialized plan (the runtime checks again) before any kernel runs.
//!
//! Each specialization chooses weight layouts with the cost model (`codegen::layout`). Once a
//! weight runs sparse, the engine keeps its packing and drops the dense data from its own graph
//! (`Weight.data = None`), so the dense copy does not outlive the packing; a later specialization
//! reuses the packing when it chooses the same layout and otherwise unpacks the dense data into
//! its private copy of the graph.

use crate::codegen::bytes::{dtype_of, tensor_byte_view, tensor_bytes, tensor_from_bytes};
use crate::codegen::layout::{
    pack, plan_layouts, stored_form, unpack, weight_matrix, CostTable, Layout, LayoutPlan,
};
use crate::codegen::lower::{lower_graph_with, Compiled, LowerOptions};
use crate::codegen::sparse::Packing;
use crate::codegen::CodegenError;
use crate::inputs::{bind_inputs, InputError};
use crate::passes::{run_pipeline, PassError, RunOptions};
use sparsec_ir::{Dim, Graph, Tensor, ValueDef, ValueId};
use sparsec_runtime::{RuntimeError, TensorView, ThreadPool};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use thiserror::Error;

/// Why the engine could not compile or run.
#[derive(Debug, Error)]
pub enum EngineError {
    /// The inputs do not fit the model.
    #[error(transparent)]
    Input(#[from] InputError),
    /// A pass failed while specializing.
    #[error(transparent)]
    Pass(#[from] PassError),
    /// Codegen failed.
    #[error(transparent)]
    Codegen(#[from] CodegenError),
    /// The runtime rejected the run.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// A result shape depends on input values, so the plan cannot be specialized on shapes alone.
    #[error("dynamic shape: {0}")]
    Dynamic(String),
    /// A kernel reported an error while running (for example an index out of range in the data).
    #[error("{0}")]
    Kernel(String),
}

/// Inputs of at most this many elements are the ones the engine specializes on by value when
/// shapes alone leave a result shape unknown.
pub const SMALL_INPUT: usize = 64;

/// The passes run after the input shapes are bound.
pub fn specialize_pipeline() -> Vec<&'static str> {
    let mut p = vec!["infer-shapes", "fold-constants"];
    if crate::passes::find_pass("fold-batchnorm").is_ok() {
        p.push("fold-batchnorm");
    }
    p.push("fold-channel-affine");
    p.push("dce");
    p
}

/// Times of one compilation.
#[derive(Clone, Copy, Debug, Default)]
pub struct CompileTimes {
    /// Binding shapes and the specialization passes.
    pub specialize: Duration,
    /// Lowering, JIT and plan building.
    pub lower: Duration,
}

/// When the pool's threads are far apart ([`ThreadPool::is_far`]), a plan whose shortest run on
/// one thread (of at least [`SERIAL_PROBES`]) took less than this runs on the caller alone:
/// handing its small steps to a distant thread costs more than it saves. Tiny BERT at 90%
/// sparsity ran 1.8-2.6 ms on two far threads (doubled grains or not) against 1.0 ms on one;
/// ResNet-50 at 90% (33 ms on one thread) still gained from the second (23-32 ms).
pub const SMALL_PLAN: Duration = Duration::from_millis(3);

/// Runs a plan makes on one thread, when its pool's threads are far apart, before the engine
/// judges its size: the first run after compiling pays for page faults and cold caches.
const SERIAL_PROBES: u32 = 2;

/// The engine probes its pool's placement again before a run when the last probe is older than
/// this (a virtual machine's vCPUs change hosts' cores within seconds).
const PLACEMENT_MAX_AGE: Duration = Duration::from_secs(1);

/// A model ready to run with the JIT.
pub struct Engine {
    graph: Graph,
    pool: ThreadPool,
    /// A pool of the caller alone, for small plans on far threads (see [`SMALL_PLAN`]).
    solo: ThreadPool,
    cache: HashMap<Vec<Vec<usize>>, Arc<Compiled>>,
    value_cache: HashMap<Vec<Vec<u8>>, Arc<Compiled>>,
    table: CostTable,
    /// Packings of the weights whose dense data was dropped, by weight name.
    packings: HashMap<String, PackedWeight>,
    /// Times of the most recent compilation.
    pub last_compile: CompileTimes,
    /// The layout plan of the most recent compilation.
    pub last_layouts: LayoutPlan,
}

/// A weight the engine holds packed only.
#[derive(Clone, Debug)]
struct PackedWeight {
    packing: Arc<Packing>,
    /// The weight's stored shape.
    shape: Vec<usize>,
    /// The weight is stored `[cols x rows]`, the transpose of the packed matrix.
    transposed: bool,
}

impl Engine {
    /// An engine for `graph` (imported, default pipeline run) on `threads` threads, choosing
    /// layouts with the machine's cost table (`CostTable::load_or_builtin`).
    pub fn new(graph: Graph, threads: usize) -> Result<Engine, EngineError> {
        Self::with_table(graph, threads, CostTable::load_or_builtin())
    }

    /// An engine choosing layouts with `table`.
    pub fn with_table(
        graph: Graph,
        threads: usize,
        table: CostTable,
    ) -> Result<Engine, EngineError> {
        let pool = ThreadPool::new(threads.max(1))
            .map_err(|e| EngineError::Kernel(format!("cannot start {threads} threads: {e}")))?;
        Self::with_pool(graph, pool, table)
    }

    /// An engine running its plans on `pool` (for instance one whose placement is given with
    /// [`ThreadPool::with_round_trip`]).
    pub fn with_pool(
        graph: Graph,
        pool: ThreadPool,
        table: CostTable,
    ) -> Result<Engine, EngineError> {
        let solo = ThreadPool::new(1)
            .map_err(|e| EngineError::Kernel(format!("cannot make a one-thread pool: {e}")))?;
        Ok(Engine {
            graph,
            pool,
            solo,
            cache: HashMap::new(),
            value_cache: HashMap::new(),
            table,
            packings: HashMap::new(),
            last_compile: CompileTimes::default(),
            last_layouts: LayoutPlan::default(),
        })
    }

    /// The thread pool plans run on (its size, and the round trip measured between its threads).
    pub fn pool(&self) -> &ThreadPool {
        &self.pool
    }

    /// The unspecialized graph. Weights that run sparse hold no dense data here (`data` is
    /// `None`; their facts stay): the engine keeps their packings instead.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The graph specialized to `shapes` (one per graph input); with `values`, the small inputs
    /// (see [`SMALL_INPUT`]) are also replaced by constants holding the given values.
    pub fn specialize(
        &self,
        shapes: &[Vec<usize>],
        values: Option<&[Tensor]>,
    ) -> Result<Graph, EngineError> {
        let mut g = self.graph.clone();
        for (&v, s) in g.inputs().to_vec().iter().zip(shapes) {
            g.value_mut(v).ty.dims = s.iter().map(|&d| Dim::Known(d)).collect();
        }
        if let Some(values) = values {
            for (&v, t) in g.inputs().to_vec().iter().zip(values) {
                if t.numel() <= SMALL_INPUT {
                    let name = g.value(v).name.clone();
                    let w = g.add_weight(name, t.clone());
                    for (n, k) in g.users(v) {
                        g.set_input(n, k, Some(w));
                    }
                }
            }
        }
        run_pipeline(&mut g, &specialize_pipeline(), &RunOptions::default())?;
        Ok(g)
    }

    /// The compiled plan for `shapes`, compiling it on first use. Fails with
    /// [`EngineError::Dynamic`] when some result shape depends on input values.
    pub fn compile_for(&mut self, shapes: &[Vec<usize>]) -> Result<Arc<Compiled>, EngineError> {
        if let Some(c) = self.cache.get(shapes) {
            return Ok(c.clone());
        }
        let compiled = self.compile_specialized(shapes, None)?;
        self.cache.insert(shapes.to_vec(), compiled.clone());
        Ok(compiled)
    }

    /// The compiled plan for these input tensors: specialized on their shapes, and when that
    /// leaves a result shape unknown (it depends on input values, e.g. a `Pad` whose pads are an
    /// input), also on the values of the small inputs, with one cached plan per such value set.
    pub fn compile_for_inputs(&mut self, inputs: &[Tensor]) -> Result<Arc<Compiled>, EngineError> {
        let shapes: Vec<Vec<usize>> = inputs.iter().map(|t| t.shape().to_vec()).collect();
        match self.compile_for(&shapes) {
            Err(EngineError::Dynamic(_)) => {}
            other => return other,
        }
        let key: Vec<Vec<u8>> = inputs
            .iter()
            .map(|t| {
                let mut k: Vec<u8> = t.shape().iter().flat_map(|d| d.to_le_bytes()).collect();
                if t.numel() <= SMALL_INPUT {
                    k.extend(tensor_bytes(t));
                }
                k
            })
            .collect();
        if let Some(c) = self.value_cache.get(&key) {
            return Ok(c.clone());
        }
        let compiled = self.compile_specialized(&shapes, Some(inputs))?;
        self.value_cache.insert(key, compiled.clone());
        Ok(compiled)
    }

    fn compile_specialized(
        &mut self,
        shapes: &[Vec<usize>],
        values: Option<&[Tensor]>,
    ) -> Result<Arc<Compiled>, EngineError> {
        let t0 = Instant::now();
        let g = self.specialize(shapes, values)?;
        if let Some(v) = g
            .referenced_values()
            .into_iter()
            .find(|&v| g.value(v).ty.shape().is_none())
        {
            return Err(EngineError::Dynamic(format!(
                "value `{}` has type {} after binding the input shapes",
                g.value(v).name,
                g.value(v).ty
            )));
        }
        let t1 = Instant::now();
        let mut g = g;
        let layouts = plan_layouts(&g, &self.table);
        let mut prepacked = self.restore_weights(&mut g, &layouts);
        self.prepack(&mut g, &layouts, &mut prepacked);
        let compiled = match lower_graph_with(
            &g,
            LowerOptions {
                layouts: Some(&layouts),
                prepacked: Some(&prepacked),
            },
        ) {
            Ok(c) => c,
            Err(e) if prepacked.is_empty() => return Err(e.into()),
            Err(_) => {
                // A layer refused its sparse kernel after its weight was packed: run the whole
                // graph dense, with the packed weights unpacked into this specialization.
                restore_all(&mut g, &layouts, &prepacked);
                lower_graph_with(&g, LowerOptions::default())?
            }
        };
        self.drop_packed(&g, &layouts, &compiled);
        self.last_layouts = layouts;
        self.last_compile = CompileTimes {
            specialize: t1 - t0,
            lower: t1.elapsed(),
        };
        Ok(Arc::new(compiled))
    }

    /// Gives back the dense data of every packed-only weight of `g` that some user does not run
    /// in the packing's layout, and returns the packings the others may reuse.
    fn restore_weights(
        &self,
        g: &mut Graph,
        layouts: &LayoutPlan,
    ) -> HashMap<String, Arc<Packing>> {
        let mut reuse = HashMap::new();
        for v in g.referenced_values() {
            let Some(w) = g.weight(v).filter(|w| w.data.is_none()) else {
                continue;
            };
            let name = g.value(v).name.clone();
            let Some(pw) = self.packings.get(&name) else {
                continue;
            };
            if users_all_run(g, v, &name, layouts, |l| l.matches(&pw.packing)) {
                reuse.insert(name, pw.packing.clone());
                continue;
            }
            let facts = w.facts;
            let m = unpack(&pw.packing);
            let desc = crate::codegen::layout::LayerDesc {
                node: String::new(),
                weight: name,
                rows: pw.packing.rows(),
                cols: pw.packing.cols(),
                n: 1,
                kind: crate::codegen::layout::LayerKind::Matmul,
                nnz: facts.nnz,
                pattern: facts.pattern,
                transposed: pw.transposed,
                streamed: false,
            };
            let data = stored_form(&desc, &m);
            if let Ok(t) = Tensor::new(pw.shape.clone(), sparsec_ir::TensorData::F32(data)) {
                g.value_mut(v).def = ValueDef::Weight(sparsec_ir::Weight {
                    data: Some(Arc::new(t)),
                    facts,
                });
            }
        }
        reuse
    }

    /// Packs, before the lowering, every weight of `g` whose users all run it in one sparse
    /// layout, one weight at a time, and releases its dense data from `g` and from the engine's
    /// graph right after, so that the dense copy does not outlive its packing and at most one
    /// weight is held twice at any time. The packings go to `prepacked` (which the lowering uses)
    /// and to the engine (for later specializations).
    fn prepack(
        &mut self,
        g: &mut Graph,
        layouts: &LayoutPlan,
        prepacked: &mut HashMap<String, Arc<Packing>>,
    ) {
        let (theirs, mine) = (weights_by_name(g), weights_by_name(&self.graph));
        for c in layouts.layers.iter().filter(|c| c.layout.is_sparse()) {
            let name = &c.desc.weight;
            let Some(&v) = theirs.get(name).filter(|_| !prepacked.contains_key(name)) else {
                continue;
            };
            let all_match = users_all_run(g, v, name, layouts, |l| *l == c.layout);
            let Some(data) = g
                .const_data(v)
                .and_then(|t| t.as_f32())
                .filter(|_| all_match)
            else {
                continue;
            };
            let Ok(p) = pack(c, &weight_matrix(&c.desc, data)) else {
                continue;
            };
            let p = Arc::new(p);
            prepacked.insert(name.clone(), p.clone());
            let Some(ValueDef::Weight(w)) = Some(&mut g.value_mut(v).def) else {
                continue;
            };
            let dense = w.data.take();
            let Some(&mv) = mine.get(name) else {
                continue;
            };
            let shape = self.graph.value(mv).ty.shape().unwrap_or_default();
            if let ValueDef::Weight(w) = &mut self.graph.value_mut(mv).def {
                if let (Some(a), Some(b)) = (&w.data, &dense) {
                    if Arc::ptr_eq(a, b) {
                        w.data = None;
                        self.packings.insert(
                            name.clone(),
                            PackedWeight {
                                packing: p,
                                shape,
                                transposed: c.desc.transposed,
                            },
                        );
                    }
                }
            }
        }
    }

    /// Drops from the engine's graph the dense data of the weights `compiled` runs packed (when
    /// the engine's weight is the very tensor that was packed) and keeps their packings.
    fn drop_packed(&mut self, g: &Graph, layouts: &LayoutPlan, compiled: &Compiled) {
        if compiled.packed.is_empty() {
            return;
        }
        let by_name = |graph: &Graph| -> HashMap<String, ValueId> {
            graph
                .referenced_values()
                .into_iter()
                .filter(|&v| graph.weight(v).is_some())
                .map(|v| (graph.value(v).name.clone(), v))
                .collect()
        };
        let (mine, theirs) = (by_name(&self.graph), by_name(g));
        for (name, packing) in &compiled.packed {
            let (Some(&v), Some(&sv)) = (mine.get(name), theirs.get(name)) else {
                continue;
            };
            let same = match (
                self.graph.weight(v).and_then(|w| w.data.as_ref()),
                g.weight(sv).and_then(|w| w.data.as_ref()),
            ) {
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                _ => false,
            };
            let Some(desc) = layouts.layers.iter().find(|c| &c.desc.weight == name) else {
                continue;
            };
            if !same {
                continue;
            }
            let shape = self.graph.value(v).ty.shape().unwrap_or_default();
            self.packings.insert(
                name.clone(),
                PackedWeight {
                    packing: packing.clone(),
                    shape,
                    transposed: desc.desc.transposed,
                },
            );
            if let ValueDef::Weight(w) = &mut self.graph.value_mut(v).def {
                w.data = None;
            }
        }
    }

    /// Names of the weights the engine holds packed only (no dense data in its graph).
    pub fn packed_weights(&self) -> Vec<String> {
        let mut v: Vec<String> = self.packings.keys().cloned().collect();
        v.sort();
        v
    }

    /// Validates `given` (name, tensor) pairs, compiles for their shapes if needed, and runs.
    pub fn run_named(&mut self, given: Vec<(String, Tensor)>) -> Result<Vec<Tensor>, EngineError> {
        let (tensors, _) = bind_inputs(&self.graph, given)?;
        self.run(&tensors)
    }

    /// Runs on tensors given in graph-input order (validated against the declared types first).
    pub fn run(&mut self, inputs: &[Tensor]) -> Result<Vec<Tensor>, EngineError> {
        let named: Vec<(String, Tensor)> = self
            .graph
            .inputs()
            .iter()
            .zip(inputs)
            .map(|(&v, t)| (self.graph.value(v).name.clone(), t.clone()))
            .collect();
        let (tensors, _) = bind_inputs(&self.graph, named)?;
        let compiled = self.compile_for_inputs(&tensors)?;
        self.execute(&compiled, &tensors, false).map(|(o, _)| o)
    }

    /// The pool a run of `compiled` goes to: the engine's, unless its threads are far apart and
    /// the plan is small or has not run [`SERIAL_PROBES`] times on one thread yet (see
    /// [`SMALL_PLAN`]). Re-probes the placement when the last probe is stale.
    fn pool_for(&self, compiled: &Compiled) -> &ThreadPool {
        self.pool.refresh_placement(PLACEMENT_MAX_AGE);
        if !self.pool.is_far() {
            return &self.pool;
        }
        let small = Duration::from_nanos(compiled.serial_ns.load(Ordering::Relaxed)) < SMALL_PLAN;
        if small || compiled.serial_runs.load(Ordering::Relaxed) < SERIAL_PROBES {
            &self.solo
        } else {
            &self.pool
        }
    }

    /// Runs a compiled plan; with `profile`, also returns per-step times.
    pub fn execute(
        &self,
        compiled: &Compiled,
        inputs: &[Tensor],
        profile: bool,
    ) -> Result<(Vec<Tensor>, Vec<Duration>), EngineError> {
        // The runtime reads each tensor's own memory where it holds the little-endian bytes
        // (it copies inputs that are not aligned for the kernels); others are converted.
        let converted: Vec<Option<Vec<u8>>> = inputs
            .iter()
            .map(|t| tensor_byte_view(t).is_none().then(|| tensor_bytes(t)))
            .collect();
        let views: Vec<TensorView> = inputs
            .iter()
            .zip(&converted)
            .map(|(t, c)| TensorView {
                elem: crate::codegen::bytes::elem_type(t.dtype()),
                shape: t.shape(),
                data: c.as_deref().or(tensor_byte_view(t)).unwrap_or_default(),
            })
            .collect();
        let pool = self.pool_for(compiled);
        let start = Instant::now();
        let (outs, times) = if profile {
            compiled.plan.run_profiled(pool, &views)?
        } else {
            (compiled.plan.run(pool, &views)?, Vec::new())
        };
        if std::ptr::eq(pool, &self.solo) {
            let ns = start.elapsed().as_nanos().clamp(1, u64::MAX as u128) as u64;
            let runs = compiled.serial_runs.fetch_add(1, Ordering::Relaxed);
            let best = compiled.serial_ns.load(Ordering::Relaxed);
            if runs == 0 || ns < best {
                compiled.serial_ns.store(ns, Ordering::Relaxed);
            }
        }
        if let Some(e) = compiled.errors.lock().ok().and_then(|mut s| s.take()) {
            return Err(EngineError::Kernel(e));
        }
        let tensors = compiled
            .plan
            .outputs
            .iter()
            .zip(&outs)
            .map(|(spec, buf)| {
                tensor_from_bytes(
                    dtype_of(spec.elem),
                    &spec.shape,
                    &buf.as_bytes()[..spec.bytes()],
                )
            })
            .collect();
        Ok((tensors, times))
    }
}

/// The weights of `g` by name.
fn weights_by_name(g: &Graph) -> HashMap<String, ValueId> {
    g.referenced_values()
        .into_iter()
        .filter(|&v| g.weight(v).is_some())
        .map(|v| (g.value(v).name.clone(), v))
        .collect()
}

/// Gives every weight of `g` that `prepacked` holds and that has no data its dense data back
/// (stored as `layouts` describes it).
fn restore_all(g: &mut Graph, layouts: &LayoutPlan, prepacked: &HashMap<String, Arc<Packing>>) {
    for (name, v) in weights_by_name(g) {
        let (Some(p), Some(c)) = (
            prepacked.get(&name),
            layouts.layers.iter().find(|c| c.desc.weight == name),
        ) else {
            continue;
        };
        let shape = g.value(v).ty.shape().unwrap_or_default();
        let ValueDef::Weight(w) = &mut g.value_mut(v).def else {
            continue;
        };
        if w.data.is_some() {
            continue;
        }
        let data = stored_form(&c.desc, &unpack(p));
        if let Ok(t) = Tensor::new(shape, sparsec_ir::TensorData::F32(data)) {
            w.data = Some(Arc::new(t));
        }
    }
}

/// Whether weight `v` (named `name`) has users and every one reads it as its weight operand
/// (operand 1) in a layer of `layouts` planned for that weight in a layout that passes `ok`.
fn users_all_run(
    g: &Graph,
    v: ValueId,
    name: &str,
    layouts: &LayoutPlan,
    ok: impl Fn(&Layout) -> bool,
) -> bool {
    let users = g.users(v);
    !users.is_empty()
        && users.iter().all(|&(n, k)| {
            k == 1
                && layouts
                    .get(&g.node(n).name)
                    .is_some_and(|c| c.desc.weight == name && ok(&c.layout))
        })
}
