//! Lowering a graph with static shapes to a runtime plan.
//!
//! Walks the nodes in topological order and forms groups: a Gemm/MatMul/Conv anchor with the
//! elementwise epilogue that follows it (bias, residual add, activation) goes to the dense path; a
//! chain of f32 elementwise nodes goes to the JIT; anything else falls back to the interpreter.
//! With a layout plan (`layout::plan_layouts`), a Gemm / MatMul whose weight's choice is sparse
//! becomes a sparse kernel (plus an `X^T` transpose step at batch > 1) with the bias and ReLU of
//! its epilogue fused, and a Conv whose choice is sparse becomes a sparse convolution with its
//! whole epilogue fused.
//! Then every value a kernel reads or writes gets a buffer: graph inputs and outputs are the
//! caller's, weights share the graph's tensors (packed weights are owned by the plan), and
//! intermediates and group-internal temporaries live in one arena laid out by the static memory
//! planner from their lifetimes.

use super::bytes::{elem_type, owned_buf, weight_buf};
use super::fallback::{lower_fallback, ErrorSlot};
use super::jit::Jit;
use super::layout::{lower_sparse_conv_group, lower_sparse_matmul, LayerKind, LayoutPlan};
use super::sparse::Packing;
use super::{
    batchnorm, dense, elementwise, lrn, movement, norm, pool, select, Arg, CodegenError, Epilogue,
    LoweredKernel,
};
use sparsec_ir::{DType, Graph, NodeId, Op, Tensor, ValueDef, ValueId};
use sparsec_runtime::{plan_arena, BufferLife};
use sparsec_runtime::{AlignedBuf, BufferRef, Kernel, Plan, Step, TensorSpec, WeightBuf};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A compiled graph: the plan and the slot where host kernels report run-time errors.
pub struct Compiled {
    /// The plan.
    pub plan: Plan,
    /// Run-time errors of host kernels; checked after every run.
    pub errors: ErrorSlot,
    /// The weights that run sparse, by weight name, with the packing their kernel was built from.
    pub packed: Vec<(String, Arc<Packing>)>,
    /// The shortest run of the plan on a single thread so far, in nanoseconds (0: never run so);
    /// the engine keeps small plans on one thread when its threads are far apart.
    pub serial_ns: std::sync::atomic::AtomicU64,
    /// How many runs on a single thread `serial_ns` has seen.
    pub serial_runs: std::sync::atomic::AtomicU32,
}

/// What the lowering may use besides the graph.
#[derive(Clone, Copy, Debug, Default)]
pub struct LowerOptions<'a> {
    /// Layout choices per layer; without them every layer is dense.
    pub layouts: Option<&'a LayoutPlan>,
    /// Packings made earlier, by weight name: used when they match the chosen layout (the
    /// graph's weight may then hold no data).
    pub prepacked: Option<&'a HashMap<String, Arc<Packing>>>,
}

/// Lowers `graph`, whose value types must all be static, to a plan with every layer dense.
pub fn lower_graph(graph: &Graph) -> Result<Compiled, CodegenError> {
    lower_graph_with(graph, LowerOptions::default())
}

/// Lowers `graph`, whose value types must all be static, to a plan, with the layer layouts and
/// packings of `opts`.
pub fn lower_graph_with(graph: &Graph, opts: LowerOptions) -> Result<Compiled, CodegenError> {
    for v in graph.referenced_values() {
        if graph.value(v).ty.shape().is_none() {
            return Err(CodegenError::Unsupported(format!(
                "value `{}` has type {} with unknown dims; bind them with --dim",
                graph.value(v).name,
                graph.value(v).ty
            )));
        }
    }
    let errors: ErrorSlot = Arc::new(Mutex::new(None));
    let mut jit = Jit::new()?;
    let order = graph.topo_order();
    let position: HashMap<NodeId, usize> = order.iter().enumerate().map(|(i, &n)| (n, i)).collect();
    let uses = use_counts(graph);
    let mut done = vec![false; order.len()];
    let mut kernels: Vec<(String, LoweredKernel)> = Vec::new();
    let mut packed = Vec::new();
    // Results that are views of an operand's bytes (no step; readers read the operand).
    let mut views: HashMap<ValueId, ValueId> = HashMap::new();
    for (i, &n) in order.iter().enumerate() {
        if done[i] {
            continue;
        }
        if let Some(src) = view_source(graph, n) {
            views.insert(graph.node(n).outputs[0], src);
            done[i] = true;
            continue;
        }
        let ctx = GroupCtx {
            position: &position,
            uses: &uses,
            errors: &errors,
            opts,
            temp: kernels.len(),
        };
        let (group, lowered) = match lower_sparse_group(graph, n, &ctx, &mut jit)? {
            Some((group, lowered, p)) => {
                packed.push(p);
                (group, lowered)
            }
            None => lower_group(graph, n, &ctx, &mut jit)?,
        };
        for g in group {
            done[position[&g]] = true;
        }
        for k in lowered {
            kernels.push((graph.node(n).name.clone(), k));
        }
    }
    for (_, k) in &mut kernels {
        for a in &mut k.args {
            if let Arg::Value(v) = a {
                while let Some(&src) = views.get(v) {
                    *v = src;
                }
            }
        }
    }
    let keep_alive = jit.finish()?;
    let mut compiled = build_plan(graph, kernels, keep_alive, errors)?;
    compiled.packed = packed;
    Ok(compiled)
}

/// What every group's lowering reads.
struct GroupCtx<'a> {
    position: &'a HashMap<NodeId, usize>,
    uses: &'a HashMap<ValueId, usize>,
    errors: &'a ErrorSlot,
    opts: LowerOptions<'a>,
    /// An id for a group-internal temporary, unique within the lowering.
    temp: usize,
}

/// A lowered group: its nodes, its steps, and the packing of a sparse weight.
type SparseGroup = (Vec<NodeId>, Vec<LoweredKernel>, (String, Arc<Packing>));

/// The sparse lowering of `n` when its layout choice is sparse; `None` when it runs dense.
fn lower_sparse_group(
    graph: &Graph,
    n: NodeId,
    ctx: &GroupCtx,
    jit: &mut Jit,
) -> Result<Option<SparseGroup>, CodegenError> {
    let node = graph.node(n);
    let Some(choice) = ctx
        .opts
        .layouts
        .and_then(|p| p.get(&node.name))
        .filter(|c| c.layout.is_sparse())
    else {
        return Ok(None);
    };
    if node.outputs.len() != 1 || graph.value(node.outputs[0]).ty.dtype != DType::F32 {
        return Ok(None);
    }
    let at = ctx.position[&n];
    let (epi_nodes, epilogue) = collect_epilogue(graph, n, at, ctx.position, ctx.uses);
    let prepacked = ctx.opts.prepacked.and_then(|m| m.get(&choice.desc.weight));
    let weight_has_data = node
        .inputs
        .get(1)
        .copied()
        .flatten()
        .is_some_and(|w| graph.const_data(w).is_some());
    if let LayerKind::Conv { .. } = choice.desc.kind {
        return match lower_sparse_conv_group(graph, n, choice, &epilogue, prepacked, jit, ctx.temp)
        {
            Ok((mut ks, packing)) => {
                let mut group = vec![n];
                group.extend_from_slice(&epi_nodes);
                if let (Some(&last), Some(k)) = (epi_nodes.last(), ks.last_mut()) {
                    // The kernel writes the last epilogue node's result, not the anchor's.
                    retarget_result(k, node.outputs[0], graph.node(last).outputs[0]);
                }
                Ok(Some((group, ks, (choice.desc.weight.clone(), packing))))
            }
            // The dense path needs the weight's data; without it the failure is final.
            Err(CodegenError::Unsupported(_)) if weight_has_data => Ok(None),
            Err(e) => Err(e),
        };
    }
    match lower_sparse_matmul(graph, n, choice, &epilogue, prepacked, jit, ctx.temp) {
        Ok(mut s) => {
            let mut group = vec![n];
            group.extend_from_slice(&epi_nodes[..s.fused]);
            if let (Some(&last), Some(k)) = (group.last(), s.kernels.last_mut()) {
                if last != n {
                    // The kernel writes the last fused node's result, not the anchor's.
                    retarget_result(k, node.outputs[0], graph.node(last).outputs[0]);
                }
            }
            Ok(Some((group, s.kernels, (s.weight, s.packing))))
        }
        // The dense path needs the weight's data; without it the failure is final.
        Err(CodegenError::Unsupported(_)) if weight_has_data => Ok(None),
        Err(e) => Err(e),
    }
}

/// The operand whose bytes the single result of node `n` is, when no copy is needed: a
/// `Reshape`/`Squeeze`/`Unsqueeze` with constant shape operands, a `Flatten`, an `Identity`, or
/// an inference `Dropout` (no training-mode operand, or a constant false one, and an unread
/// mask), whose result is not a graph output (outputs get their own buffers). Its readers then
/// read the operand's buffer: kernels never write their operands, so the two values can share
/// it, and the arena keeps it alive until the last reader of either. ShuffleNet's 33 reshapes
/// were 0.28 ms of copies.
fn view_source(graph: &Graph, n: NodeId) -> Option<ValueId> {
    let node = graph.node(n);
    let src = node.inputs.first().copied().flatten()?;
    let dst = *node.outputs.first()?;
    let constant = |v: &Option<ValueId>| v.is_none_or(|v| graph.const_data(v).is_some());
    let view = match &node.op {
        Op::Reshape { .. } | Op::Squeeze {} | Op::Unsqueeze {} => {
            node.inputs[1..].iter().all(constant)
        }
        Op::Flatten { .. } | Op::Identity {} => true,
        Op::Dropout {} => match node.inputs.get(2).copied().flatten() {
            None => true,
            Some(t) => graph.const_data(t).is_some_and(|t| t.nnz() == 0),
        },
        _ => false,
    };
    let (a, b) = (&graph.value(src).ty, &graph.value(dst).ty);
    let unread = |v: &ValueId| graph.users(*v).is_empty() && !graph.outputs().contains(v);
    (view
        && a.dtype == b.dtype
        && a.numel().is_some()
        && a.numel() == b.numel()
        && !graph.outputs().contains(&dst)
        && node.outputs[1..].iter().all(unread))
    .then_some(src)
}

/// How many times each value is read (by node operands and graph outputs).
fn use_counts(graph: &Graph) -> HashMap<ValueId, usize> {
    let mut uses: HashMap<ValueId, usize> = HashMap::new();
    for n in graph.node_ids() {
        for v in graph.node(n).inputs.iter().flatten() {
            *uses.entry(*v).or_default() += 1;
        }
    }
    for v in graph.outputs() {
        *uses.entry(*v).or_default() += 1;
    }
    uses
}

/// The single node reading `v`, when `v` has exactly one use and it is a node operand.
fn sole_user(graph: &Graph, v: ValueId, uses: &HashMap<ValueId, usize>) -> Option<(NodeId, usize)> {
    if uses.get(&v) != Some(&1) || graph.outputs().contains(&v) {
        return None;
    }
    let users = graph.users(v);
    (users.len() == 1).then(|| users[0])
}

/// True when `v` is available before the node at topological position `at` runs.
fn defined_before(graph: &Graph, v: ValueId, at: usize, position: &HashMap<NodeId, usize>) -> bool {
    match graph.producer(v) {
        None => true,
        Some((p, _)) => position.get(&p).is_some_and(|&i| i < at),
    }
}

fn lower_group(
    graph: &Graph,
    n: NodeId,
    ctx: &GroupCtx,
    jit: &mut Jit,
) -> Result<(Vec<NodeId>, Vec<LoweredKernel>), CodegenError> {
    let (position, uses, errors) = (ctx.position, ctx.uses, ctx.errors);
    let node = graph.node(n);
    let at = position[&n];
    let f32_result = node.outputs.len() == 1 && graph.value(node.outputs[0]).ty.dtype == DType::F32;
    if f32_result && matches!(node.op, Op::Gemm { .. } | Op::MatMul {} | Op::Conv { .. }) {
        let (epi_nodes, epilogue) = collect_epilogue(graph, n, at, position, uses);
        let attempt = match node.op {
            Op::Gemm { .. } => dense::lower_gemm(graph, n, &epilogue),
            Op::MatMul {} => dense::lower_matmul(graph, n, &epilogue),
            _ => dense::lower_conv(graph, n, &epilogue),
        };
        match attempt {
            Ok(mut k) => {
                if let Some(&last) = epi_nodes.last() {
                    // The kernel writes the last epilogue node's result, not the anchor's.
                    retarget_result(
                        &mut k,
                        graph.node(n).outputs[0],
                        graph.node(last).outputs[0],
                    );
                }
                let mut group = vec![n];
                group.extend(epi_nodes);
                return Ok((group, vec![k]));
            }
            Err(CodegenError::Unsupported(_)) if !epilogue.is_empty() => {
                let plain = match node.op {
                    Op::Gemm { .. } => dense::lower_gemm(graph, n, &[]),
                    Op::MatMul {} => dense::lower_matmul(graph, n, &[]),
                    _ => dense::lower_conv(graph, n, &[]),
                };
                if let Ok(k) = plain {
                    return Ok((vec![n], vec![k]));
                }
            }
            Err(CodegenError::Unsupported(_)) => {}
            Err(e) => return Err(e),
        }
    } else if f32_result {
        // The longest elementwise chain starting here that the JIT accepts.
        let mut chain = vec![n];
        let mut cur = node.outputs[0];
        while let Some((m, _)) = sole_user(graph, cur, uses) {
            let mnode = graph.node(m);
            let ok = mnode.outputs.len() == 1
                && mnode
                    .inputs
                    .iter()
                    .flatten()
                    .all(|&v| v == cur || defined_before(graph, v, at, position));
            if !ok || !position.contains_key(&m) {
                break;
            }
            chain.push(m);
            cur = mnode.outputs[0];
        }
        while !chain.is_empty() {
            if let Some(c) = elementwise::chain_from_nodes(graph, &chain) {
                let k = elementwise::lower_elementwise(jit, &c)?;
                return Ok((chain, vec![k]));
            }
            chain.pop();
        }
    }
    if let Ok(k) = pool::lower_pool(graph, n) {
        return Ok((vec![n], vec![k]));
    }
    if let Ok(k) = norm::lower_norm(graph, n) {
        return Ok((vec![n], vec![k]));
    }
    if let Ok(k) = lrn::lower_lrn(graph, n) {
        return Ok((vec![n], vec![k]));
    }
    if matches!(node.op, Op::BatchNormalization { .. }) && f32_result {
        // A Relu that is the BN's only reader runs in the same pass.
        let relu = sole_user(graph, node.outputs[0], uses)
            .filter(|&(u, _)| matches!(graph.node(u).op, Op::Relu {}))
            .map(|(u, _)| u);
        if let Ok(k) = batchnorm::lower_batchnorm(graph, n, relu) {
            let mut group = vec![n];
            group.extend(relu);
            return Ok((group, vec![k]));
        }
    }
    if let Ok(k) = movement::lower_movement(graph, n, errors) {
        return Ok((vec![n], vec![k]));
    }
    if let Ok(k) = select::lower_select(graph, n) {
        return Ok((vec![n], vec![k]));
    }
    Ok((vec![n], vec![lower_fallback(graph, n, errors)]))
}

/// The elementwise nodes after an anchor that the dense path can apply as an epilogue.
fn collect_epilogue(
    graph: &Graph,
    anchor: NodeId,
    at: usize,
    position: &HashMap<NodeId, usize>,
    uses: &HashMap<ValueId, usize>,
) -> (Vec<NodeId>, Vec<Epilogue>) {
    let mut nodes = Vec::new();
    let mut epi = Vec::new();
    let mut cur = graph.node(anchor).outputs[0];
    let cur_ty = graph.value(cur).ty.clone();
    let channel_axis = match graph.node(anchor).op {
        Op::Conv { .. } => 1,
        _ => cur_ty.rank().saturating_sub(1),
    };
    while let Some((m, k)) = sole_user(graph, cur, uses) {
        let mnode = graph.node(m);
        if mnode.outputs.len() != 1 || graph.value(mnode.outputs[0]).ty != cur_ty {
            break;
        }
        let other = mnode.inputs.get(1 - k.min(1)).copied().flatten();
        let step = match &mnode.op {
            Op::Relu {} => Some(Epilogue::Relu),
            Op::LeakyRelu { alpha } => Some(Epilogue::LeakyRelu(*alpha)),
            Op::Clip {} => {
                let bound = |i: usize, d: f32| -> Option<f32> {
                    match mnode.inputs.get(i).copied().flatten() {
                        None => Some(d),
                        Some(v) => graph
                            .const_data(v)
                            .filter(|t| t.numel() == 1)
                            .map(|t| t.to_f32_vec()[0]),
                    }
                };
                match (k, bound(1, f32::NEG_INFINITY), bound(2, f32::INFINITY)) {
                    (0, Some(lo), Some(hi)) => Some(Epilogue::Clip(lo, hi)),
                    _ => None,
                }
            }
            Op::Add {} | Op::Sum {} if mnode.inputs.len() == 2 => other.and_then(|o| {
                let oty = &graph.value(o).ty;
                if oty.dtype != DType::F32 || !defined_before(graph, o, at, position) {
                    None
                } else if *oty == cur_ty {
                    Some(Epilogue::AddTensor(o))
                } else if is_channel_bias(
                    &oty.shape().unwrap_or_default(),
                    &cur_ty.shape().unwrap_or_default(),
                    channel_axis,
                ) {
                    Some(Epilogue::Bias(o))
                } else {
                    None
                }
            }),
            _ => None,
        };
        let Some(step) = step else { break };
        epi.push(step);
        nodes.push(m);
        cur = mnode.outputs[0];
    }
    (nodes, epi)
}

/// A bias shape that broadcasts along `channel_axis` of `out` only: `[N]` for the last axis of a
/// Gemm/MatMul result, `[C,1,1]` or `[1,C,1,1]` for axis 1 of a Conv result.
fn is_channel_bias(bias: &[usize], out: &[usize], channel_axis: usize) -> bool {
    let Some(&c) = out.get(channel_axis) else {
        return false;
    };
    let nontrivial: Vec<(usize, usize)> = bias
        .iter()
        .copied()
        .enumerate()
        .filter(|&(_, d)| d != 1)
        .collect();
    if bias.len() > out.len() || nontrivial.len() != 1 || nontrivial[0].1 != c {
        return false;
    }
    // Align the bias to the right of `out`: its nontrivial axis must land on the channel axis.
    out.len() - bias.len() + nontrivial[0].0 == channel_axis
}

fn retarget_result(k: &mut LoweredKernel, from: ValueId, to: ValueId) {
    for a in k.args.iter_mut().rev() {
        if let Arg::Value(v) = a {
            if *v == from {
                *v = to;
                return;
            }
        }
    }
}

/// Assigns buffers to every kernel argument and builds the plan.
fn build_plan(
    graph: &Graph,
    mut kernels: Vec<(String, LoweredKernel)>,
    keep_alive: Box<dyn std::any::Any + Send + Sync>,
    errors: ErrorSlot,
) -> Result<Compiled, CodegenError> {
    let spec = |v: ValueId| TensorSpec {
        name: graph.value(v).name.clone(),
        elem: elem_type(graph.value(v).ty.dtype),
        shape: graph.value(v).ty.shape().unwrap_or_default(),
    };
    let inputs: Vec<TensorSpec> = graph.inputs().iter().map(|&v| spec(v)).collect();
    let outputs: Vec<TensorSpec> = graph.outputs().iter().map(|&v| spec(v)).collect();
    // Graph weights are shared with the graph's tensors (no copy); packed ones are owned.
    let mut weights: Vec<WeightBuf> = Vec::new();
    let graph_weight = |w: &sparsec_ir::Weight| match &w.data {
        Some(t) => weight_buf(t),
        None => WeightBuf::Owned(AlignedBuf::zeroed(0)),
    };
    let mut weight_index: HashMap<ValueId, usize> = HashMap::new();
    // Intermediates and temporaries: (first step, last step, bytes).
    let mut intervals: HashMap<Slot, (usize, usize, usize)> = HashMap::new();
    let mut arg_refs: Vec<Vec<Result<BufferRef, Slot>>> = Vec::new();
    for (s, (_, k)) in kernels.iter_mut().enumerate() {
        let mut refs = Vec::new();
        for a in &mut k.args {
            refs.push(match a {
                Arg::Packed(t) => {
                    // Copied into an aligned buffer, and the tensor freed right away: holding
                    // every packed tensor until the plan was built kept both copies at the peak
                    // (dense ResNet-50 with its Winograd weights: 252 -> 228 MiB).
                    let t = std::mem::replace(t, Tensor::from_f32(&[0], Vec::new()));
                    weights.push(WeightBuf::Owned(owned_buf(&t)));
                    Ok(BufferRef::Weight(weights.len() - 1))
                }
                Arg::Blob(b) => {
                    // Moved, not copied: the plan owns the blob from here on.
                    weights.push(WeightBuf::Owned(std::mem::replace(
                        b,
                        AlignedBuf::zeroed(0),
                    )));
                    Ok(BufferRef::Weight(weights.len() - 1))
                }
                Arg::Temp { id, bytes } => {
                    let e = intervals.entry(Slot::Temp(*id)).or_insert((s, s, *bytes));
                    e.1 = s;
                    Err(Slot::Temp(*id))
                }
                Arg::Value(v) => {
                    let v = *v;
                    if let Some(k) = graph.inputs().iter().position(|&x| x == v) {
                        Ok(BufferRef::Input(k))
                    } else if let ValueDef::Weight(w) = &graph.value(v).def {
                        let idx = *weight_index.entry(v).or_insert_with(|| {
                            weights.push(graph_weight(w));
                            weights.len() - 1
                        });
                        Ok(BufferRef::Weight(idx))
                    } else if let Some(k) = graph.outputs().iter().position(|&x| x == v) {
                        Ok(BufferRef::Output(k))
                    } else {
                        let bytes = spec(v).bytes();
                        let e = intervals.entry(Slot::Value(v)).or_insert((s, s, bytes));
                        e.1 = s;
                        Err(Slot::Value(v))
                    }
                }
            });
        }
        arg_refs.push(refs);
    }
    let mut ids: Vec<Slot> = intervals.keys().copied().collect();
    ids.sort();
    let reqs: Vec<BufferLife> = ids
        .iter()
        .map(|v| {
            let (first, last, size) = intervals[v];
            BufferLife { size, first, last }
        })
        .collect();
    let layout = plan_arena(&reqs).map_err(|e| CodegenError::Jit(format!("arena: {e}")))?;
    let offset: HashMap<Slot, (usize, usize)> = ids
        .iter()
        .zip(&layout.offsets)
        .map(|(v, &o)| (*v, (o, intervals[v].2)))
        .collect();
    let mut steps: Vec<Step> = kernels
        .into_iter()
        .zip(arg_refs)
        .map(|((name, k), refs)| Step {
            args: refs
                .into_iter()
                .map(|r| {
                    r.unwrap_or_else(|v| {
                        let (offset, len) = offset[&v];
                        BufferRef::Arena { offset, len }
                    })
                })
                .collect(),
            kernel: k.kernel,
            work: k.work,
            grain: k.grain,
            name,
            op: k.op,
            layout: k.layout,
        })
        .collect();
    // Graph outputs no kernel writes (an input, a weight, or a value listed twice) are copied.
    for (k, &v) in graph.outputs().iter().enumerate() {
        let first = graph.outputs().iter().position(|&x| x == v) == Some(k);
        let written = graph.producer(v).is_some() && first;
        if written {
            continue;
        }
        let src = if let Some(i) = graph.inputs().iter().position(|&x| x == v) {
            BufferRef::Input(i)
        } else if let ValueDef::Weight(w) = &graph.value(v).def {
            weights.push(graph_weight(w));
            BufferRef::Weight(weights.len() - 1)
        } else {
            BufferRef::Output(graph.outputs().iter().position(|&x| x == v).unwrap_or(k))
        };
        let len = spec(v).bytes();
        steps.push(Step {
            kernel: Kernel::Host(Box::new(move |p: &[*mut u8], _, _| {
                // SAFETY: both buffers hold `len` bytes and are distinct allocations.
                unsafe { std::ptr::copy_nonoverlapping(p[0], p[1], len) }
            })),
            args: vec![src, BufferRef::Output(k)],
            work: 1,
            grain: 1,
            name: graph.value(v).name.clone(),
            op: "copy".into(),
            layout: "dense".into(),
        });
    }
    let plan = Plan::with_weights(
        steps,
        weights,
        layout.size,
        inputs,
        outputs,
        vec![keep_alive],
    )
    .map_err(|e| CodegenError::Jit(format!("plan: {e}")))?;
    Ok(Compiled {
        plan,
        errors,
        packed: Vec::new(),
        serial_ns: Default::default(),
        serial_runs: Default::default(),
    })
}

/// An arena-planned buffer: an intermediate value or a group-internal temporary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Slot {
    Value(ValueId),
    Temp(usize),
}

#[cfg(test)]
#[path = "lower_tests.rs"]
mod tests;
