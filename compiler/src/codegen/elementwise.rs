//! Fused elementwise kernels: [`ElementwiseChain`] (a chain of f32 elementwise IR nodes with
//! numpy broadcasting), [`chain_from_nodes`] which builds one from the graph, and
//! [`lower_elementwise`] which emits a Cranelift kernel specialized on its concrete shapes.
//!
//! The kernel's parallel dimension is the output's *rows*: every output dim but the last
//! (their product, at least 1). For each row it computes the row offset of every input from the
//! row index with constant strides (outer dims are coalesced first, so a full tensor or a bias
//! costs no index arithmetic beyond one multiply), then walks the last dim with `f32x4` vectors
//! (two per iteration) and finishes with a scalar tail. Inputs broadcast along the last dim are
//! loaded once per row and splatted. A `mul` whose only use is the next `add`/`sub` becomes an
//! `fma`. The math of each op lives in `math.rs`.

use super::jit::{emit_loop, Jit, KernelId};
use super::{Arg, CodegenError, LoweredKernel};
use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::{types, InstBuilder, MemFlagsData, Type, Value};
use cranelift_frontend::FunctionBuilder;
use math::Vm;
use sparsec_ir::ValueId;
use sparsec_runtime::Kernel;

pub use chain::chain_from_nodes;

#[path = "elementwise_chain.rs"]
mod chain;
#[path = "math.rs"]
mod math;

/// Where a step reads an operand.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Operand {
    /// External input `k` of the chain.
    Input(usize),
    /// The result of an earlier step.
    Step(usize),
    /// A constant.
    Const(f32),
}

/// A one-operand step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UnaryOp {
    /// `x`.
    Identity,
    /// `-x`.
    Neg,
    /// `|x|`.
    Abs,
    /// Square root.
    Sqrt,
    /// `x * x` (`Pow` with exponent 2).
    Square,
    /// `1 / x`.
    Reciprocal,
    /// `e^x`.
    Exp,
    /// Natural logarithm.
    Log,
    /// Error function.
    Erf,
    /// Hyperbolic tangent.
    Tanh,
    /// Logistic sigmoid.
    Sigmoid,
    /// `max(x, 0)` (NaN gives 0, as in the interpreter).
    Relu,
    /// `alpha * x` where `x < 0`, else `x`.
    LeakyRelu(f32),
    /// `alpha * (e^x - 1)` where `x < 0`, else `x`.
    Elu(f32),
    /// Clamp to `[lo, hi]` (infinite bounds for missing ones).
    Clip(f32, f32),
    /// `clamp01(alpha * x + beta)`.
    HardSigmoid(f32, f32),
    /// `x * clamp01(x / 6 + 1/2)`.
    HardSwish,
    /// `x/2 * (1 + erf(x / sqrt 2))`.
    GeluErf,
    /// `x/2 * (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`.
    GeluTanh,
    /// `ln(1 + e^x)`.
    Softplus,
}

/// A two-operand step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BinaryOp {
    /// `a + b`.
    Add,
    /// `a - b`.
    Sub,
    /// `a * b`.
    Mul,
    /// `a / b`.
    Div,
    /// Maximum (NaN wins, as in the interpreter).
    Max,
    /// Minimum (NaN wins).
    Min,
    /// `b * a` where `a < 0`, else `a`.
    PRelu,
}

/// One step of a chain.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Step {
    /// A one-operand op.
    Unary(UnaryOp, Operand),
    /// A two-operand op.
    Binary(BinaryOp, Operand, Operand),
}

impl Step {
    /// The operands the step reads.
    fn operands(&self) -> Vec<Operand> {
        match *self {
            Step::Unary(_, a) => vec![a],
            Step::Binary(_, a, b) => vec![a, b],
        }
    }
}

/// An external input of a chain.
#[derive(Clone, Debug, PartialEq)]
pub struct ChainInput {
    /// The graph value.
    pub value: ValueId,
    /// Its concrete shape, which broadcasts (numpy rules, one direction) to the output shape.
    pub shape: Vec<usize>,
}

/// A fused chain of f32 elementwise steps computed at the output shape.
#[derive(Clone, Debug, PartialEq)]
pub struct ElementwiseChain {
    /// Concrete shape of the result.
    pub out_shape: Vec<usize>,
    /// External inputs, in kernel-argument order.
    pub inputs: Vec<ChainInput>,
    /// The steps in order; the last one is the result.
    pub steps: Vec<Step>,
    /// The graph value the result is stored to.
    pub output: ValueId,
    /// Name for profiles (the fused ops, e.g. `add+relu`).
    pub name: String,
}

/// The most elements a chain's output or input may have.
pub(crate) const MAX_ELEMENTS: usize = 1 << 31;

/// True when `shape` broadcasts to `out` in one direction.
fn broadcasts_to(shape: &[usize], out: &[usize]) -> bool {
    shape.len() <= out.len()
        && shape
            .iter()
            .rev()
            .zip(out.iter().rev())
            .all(|(&d, &o)| d == o || d == 1)
}

/// The loop structure of a chain: rows, row length, and each input's offsets.
#[derive(Debug)]
struct Layout {
    /// Number of rows (the parallel dimension).
    rows: usize,
    /// Length of the last dim.
    len: usize,
    /// Coalesced outer dims, outermost first.
    dims: Vec<usize>,
    /// Per input: element stride along each coalesced dim.
    strides: Vec<Vec<usize>>,
    /// Per input: true when it is contiguous along the last dim (else one value per row).
    contiguous: Vec<bool>,
}

/// Checks the chain and computes its loop layout.
fn layout(chain: &ElementwiseChain) -> Result<Layout, CodegenError> {
    let unsupported = |m: String| Err(CodegenError::Unsupported(format!("`{}`: {m}", chain.name)));
    let out = &chain.out_shape;
    let numel = out.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    match numel {
        Some(0) => return unsupported("empty output".into()),
        Some(n) if n <= MAX_ELEMENTS => {}
        _ => return unsupported(format!("output shape {out:?} is too large")),
    }
    if chain.steps.is_empty() {
        return unsupported("no steps".into());
    }
    for (i, s) in chain.steps.iter().enumerate() {
        for o in s.operands() {
            let ok = match o {
                Operand::Input(k) => k < chain.inputs.len(),
                Operand::Step(k) => k < i,
                Operand::Const(_) => true,
            };
            if !ok {
                return unsupported(format!(
                    "step {i} reads {o:?}, which is not defined before it"
                ));
            }
        }
    }
    let rank = out.len();
    let len = out.last().copied().unwrap_or(1);
    let outer = &out[..rank.saturating_sub(1)];
    let rows = outer.iter().product::<usize>();
    // Per input: strides aligned to the output's dims (0 where broadcast).
    let mut full: Vec<Vec<usize>> = Vec::new();
    let mut contiguous = Vec::new();
    for (k, inp) in chain.inputs.iter().enumerate() {
        if !broadcasts_to(&inp.shape, out) {
            return unsupported(format!(
                "input {k} of shape {:?} does not broadcast to {out:?}",
                inp.shape
            ));
        }
        let mut padded = vec![1usize; rank - inp.shape.len()];
        padded.extend_from_slice(&inp.shape);
        let mut st = vec![0usize; rank];
        let mut acc = 1usize;
        for d in (0..rank).rev() {
            st[d] = if padded[d] == 1 { 0 } else { acc };
            acc *= padded[d];
        }
        contiguous.push(rank > 0 && padded[rank - 1] == len && len > 1);
        full.push(st);
    }
    // Coalesce the outer dims from the innermost out, dropping size-1 dims.
    let mut dims: Vec<usize> = Vec::new();
    let mut strides: Vec<Vec<usize>> = vec![Vec::new(); chain.inputs.len()];
    for d in (0..outer.len()).rev() {
        if outer[d] == 1 {
            continue;
        }
        let merge = !dims.is_empty()
            && full.iter().zip(&strides).all(|(f, s)| {
                let inner = *s.last().unwrap_or(&0);
                f[d] == inner * dims[dims.len() - 1]
            });
        if merge {
            let last = dims.len() - 1;
            dims[last] *= outer[d];
        } else {
            dims.push(outer[d]);
            for (s, f) in strides.iter_mut().zip(&full) {
                s.push(f[d]);
            }
        }
    }
    dims.reverse();
    for s in &mut strides {
        s.reverse();
    }
    Ok(Layout {
        rows,
        len,
        dims,
        strides,
        contiguous,
    })
}

/// Loads and stores touch only the given buffers; they need not be aligned.
fn mem() -> MemFlagsData {
    MemFlagsData::new().with_notrap()
}

/// Emits the steps for one vector (or scalar) of every input and returns the result.
fn emit_steps(vm: &mut Vm, steps: &[Step], loads: &[Value], fused: &[bool]) -> Value {
    let mut vals: Vec<Option<Value>> = Vec::with_capacity(steps.len());
    for (i, s) in steps.iter().enumerate() {
        if fused[i] {
            vals.push(None);
            continue;
        }
        let get = |vm: &mut Vm, o: Operand| -> Value {
            match o {
                Operand::Input(k) => loads[k],
                Operand::Step(k) => vals[k].unwrap_or_else(|| vm.c(f32::NAN)),
                Operand::Const(c) => vm.c(c),
            }
        };
        // A fused `mul` feeding this `add`/`sub`: its factors.
        let factors = |o: Operand| match o {
            Operand::Step(k) if fused[k] => match steps[k] {
                Step::Binary(BinaryOp::Mul, a, b) => Some((a, b)),
                _ => None,
            },
            _ => None,
        };
        let v = match *s {
            Step::Unary(u, a) => {
                let x = get(vm, a);
                unary(vm, u, x)
            }
            Step::Binary(op @ (BinaryOp::Add | BinaryOp::Sub), a, b)
                if factors(a).is_some() || factors(b).is_some() =>
            {
                if let Some((p, q)) = factors(a) {
                    let (p, q, c) = (get(vm, p), get(vm, q), get(vm, b));
                    let c = if op == BinaryOp::Sub { vm.neg(c) } else { c };
                    vm.fma(p, q, c)
                } else {
                    let (p, q) = factors(b).unwrap_or((Operand::Const(0.0), Operand::Const(0.0)));
                    let (p, q, c) = (get(vm, p), get(vm, q), get(vm, a));
                    let p = if op == BinaryOp::Sub { vm.neg(p) } else { p };
                    vm.fma(p, q, c)
                }
            }
            // A division by a constant is a multiplication by its reciprocal (within an ulp),
            // which costs a fraction of a division.
            Step::Binary(BinaryOp::Div, a, Operand::Const(c))
                if c.is_normal() && c.recip().is_normal() =>
            {
                let x = get(vm, a);
                vm.mulc(x, c.recip())
            }
            Step::Binary(op, a, b) => {
                let (x, y) = (get(vm, a), get(vm, b));
                binary(vm, op, x, y)
            }
        };
        vals.push(Some(v));
    }
    vals.last()
        .copied()
        .flatten()
        .unwrap_or_else(|| vm.c(f32::NAN))
}

/// Which `mul` steps are fused into the `add`/`sub` that is their only reader.
fn fusable(steps: &[Step]) -> Vec<bool> {
    let mut users: Vec<Vec<usize>> = vec![Vec::new(); steps.len()];
    for (i, s) in steps.iter().enumerate() {
        for o in s.operands() {
            if let Operand::Step(k) = o {
                users[k].push(i);
            }
        }
    }
    steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            matches!(s, Step::Binary(BinaryOp::Mul, _, _))
                && i + 1 < steps.len()
                && users[i].len() == 1
                && matches!(
                    steps[users[i][0]],
                    Step::Binary(BinaryOp::Add | BinaryOp::Sub, _, _)
                )
        })
        .collect()
}

/// Emits a one-operand op.
fn unary(vm: &mut Vm, u: UnaryOp, x: Value) -> Value {
    match u {
        UnaryOp::Identity => x,
        UnaryOp::Neg => vm.neg(x),
        UnaryOp::Abs => vm.abs(x),
        UnaryOp::Sqrt => vm.b.ins().sqrt(x),
        UnaryOp::Square => vm.mul(x, x),
        UnaryOp::Reciprocal => {
            let one = vm.c(1.0);
            vm.div(one, x)
        }
        UnaryOp::Exp => vm.exp(x),
        UnaryOp::Log => vm.log(x),
        UnaryOp::Erf => vm.erf(x),
        UnaryOp::Tanh => vm.tanh(x),
        UnaryOp::Sigmoid => vm.sigmoid(x),
        UnaryOp::Softplus => vm.softplus(x),
        UnaryOp::Relu => {
            let zero = vm.c(0.0);
            let pos = vm.cmp(FloatCC::GreaterThan, x, zero);
            vm.select(pos, x, zero)
        }
        UnaryOp::LeakyRelu(a) => {
            let ax = vm.mulc(x, a);
            let neg = vm.cmpc(FloatCC::LessThan, x, 0.0);
            vm.select(neg, ax, x)
        }
        UnaryOp::Elu(a) => {
            let e = vm.exp_finite(x);
            let em1 = vm.addc(e, -1.0);
            let y = vm.mulc(em1, a);
            let neg = vm.cmpc(FloatCC::LessThan, x, 0.0);
            vm.select(neg, y, x)
        }
        UnaryOp::Clip(lo, hi) => vm.clamp(x, lo, hi),
        UnaryOp::HardSigmoid(a, b) => {
            let (a, b) = (vm.c(a), vm.c(b));
            let y = vm.fma(x, a, b);
            vm.clamp01(y)
        }
        UnaryOp::HardSwish => {
            let (a, b) = (vm.c(1.0 / 6.0), vm.c(0.5));
            let y = vm.fma(x, a, b);
            let y = vm.clamp01(y);
            vm.mul(x, y)
        }
        UnaryOp::GeluErf => {
            let s = vm.mulc(x, std::f32::consts::FRAC_1_SQRT_2);
            let e = vm.erf(s);
            gelu_tail(vm, x, e)
        }
        UnaryOp::GeluTanh => {
            let x2 = vm.mul(x, x);
            let x3 = vm.mul(x2, x);
            let c = vm.c(0.044715);
            let inner = vm.fma(x3, c, x);
            let inner = vm.mulc(inner, (2.0 / std::f64::consts::PI).sqrt() as f32);
            let t = vm.tanh(inner);
            gelu_tail(vm, x, t)
        }
    }
}

/// `x/2 * (1 + t)`.
fn gelu_tail(vm: &mut Vm, x: Value, t: Value) -> Value {
    let hx = vm.mulc(x, 0.5);
    let one_t = vm.addc(t, 1.0);
    vm.mul(hx, one_t)
}

/// Emits a two-operand op.
fn binary(vm: &mut Vm, op: BinaryOp, x: Value, y: Value) -> Value {
    match op {
        BinaryOp::Add => vm.add(x, y),
        BinaryOp::Sub => vm.sub(x, y),
        BinaryOp::Mul => vm.mul(x, y),
        BinaryOp::Div => vm.div(x, y),
        BinaryOp::Max | BinaryOp::Min => {
            let cc = if op == BinaryOp::Max {
                FloatCC::GreaterThanOrEqual
            } else {
                FloatCC::LessThanOrEqual
            };
            let m = vm.cmp(cc, x, y);
            let nan = vm.cmp(FloatCC::Unordered, x, x);
            let m = vm.or(m, nan);
            vm.select(m, x, y)
        }
        BinaryOp::PRelu => {
            let sx = vm.mul(y, x);
            let neg = vm.cmpc(FloatCC::LessThan, x, 0.0);
            vm.select(neg, sx, x)
        }
    }
}

/// Vectors per iteration of the main loop.
const UNROLL: usize = 2;

/// Emits the kernel body of `chain` (entry block current, its parameters given).
fn emit_kernel(
    b: &mut FunctionBuilder,
    p: super::jit::KernelParams,
    chain: &ElementwiseChain,
    lay: &Layout,
) -> Result<(), CodegenError> {
    let ptr = types::I64;
    let n = chain.inputs.len();
    let fused = fusable(&chain.steps);
    let rows = b.ins().iconst(ptr, lay.rows as i64);
    let end = b.ins().umin(p.end, rows);
    let ro = MemFlagsData::trusted().with_readonly();
    let bases: Vec<Value> = (0..=n)
        .map(|k| b.ins().load(ptr, ro, p.args, (8 * k) as i32))
        .collect();
    let len = lay.len;
    let nvec = len / 4;
    let (pairs, single) = (nvec / UNROLL, nvec % UNROLL);
    let row_bytes = (len * 4) as i64;
    emit_loop(b, p.begin, end, 1, &mut |b, r| {
        // Coalesced outer indices of row `r`, computed only where some input needs them.
        let mut idx: Vec<Option<Value>> = vec![None; lay.dims.len()];
        let mut inner = 1usize;
        let mut below: Vec<usize> = vec![0; lay.dims.len()];
        for j in (0..lay.dims.len()).rev() {
            below[j] = inner;
            inner *= lay.dims[j];
        }
        let mut rows_at: Vec<Value> = Vec::with_capacity(n);
        for (&base, strides) in bases.iter().zip(&lay.strides) {
            let mut off: Option<Value> = None;
            for (j, &s) in strides.iter().enumerate() {
                if s == 0 {
                    continue;
                }
                let i = match idx[j] {
                    Some(i) => i,
                    None => {
                        let q = if below[j] > 1 {
                            b.ins().udiv_imm_u(r, below[j] as i64)
                        } else {
                            r
                        };
                        let i = if j > 0 {
                            b.ins().urem_imm_u(q, lay.dims[j] as i64)
                        } else {
                            q
                        };
                        idx[j] = Some(i);
                        i
                    }
                };
                let t = b.ins().imul_imm_s(i, (s * 4) as i64);
                off = Some(match off {
                    Some(o) => b.ins().iadd(o, t),
                    None => t,
                });
            }
            rows_at.push(match off {
                Some(o) => b.ins().iadd(base, o),
                None => base,
            });
        }
        let o = b.ins().imul_imm_s(r, row_bytes);
        let out_row = b.ins().iadd(bases[n], o);
        // Inputs with one value per row.
        let scalars: Vec<Option<Value>> = (0..n)
            .map(|k| (!lay.contiguous[k]).then(|| b.ins().load(types::F32, mem(), rows_at[k], 0)))
            .collect();
        let splats: Vec<Option<Value>> = if nvec > 0 {
            scalars
                .iter()
                .map(|s| s.map(|s| b.ins().splat(types::F32X4, s)))
                .collect()
        } else {
            vec![None; n]
        };
        // One vector (or scalar) at byte offset `ib` of the row.
        let block = |b: &mut FunctionBuilder, ib: Value, ty: Type| {
            let loads: Vec<Value> = (0..n)
                .map(|k| {
                    let pre = if ty == types::F32 {
                        scalars[k]
                    } else {
                        splats[k]
                    };
                    match pre {
                        Some(v) => v,
                        None => {
                            let a = b.ins().iadd(rows_at[k], ib);
                            b.ins().load(ty, mem(), a, 0)
                        }
                    }
                })
                .collect();
            let mut vm = Vm { b: &mut *b, ty };
            let v = emit_steps(&mut vm, &chain.steps, &loads, &fused);
            let a = b.ins().iadd(out_row, ib);
            b.ins().store(mem(), v, a, 0);
        };
        if pairs > 0 {
            let lo = b.ins().iconst(ptr, 0);
            let hi = b.ins().iconst(ptr, (pairs * UNROLL * 16) as i64);
            emit_loop(b, lo, hi, (UNROLL * 16) as i64, &mut |b, ib| {
                for u in 0..UNROLL {
                    let at = b.ins().iadd_imm_s(ib, (u * 16) as i64);
                    block(b, at, types::F32X4);
                }
                Ok(())
            })?;
        }
        for u in 0..single {
            let at = b.ins().iconst(ptr, ((pairs * UNROLL + u) * 16) as i64);
            block(b, at, types::F32X4);
        }
        if !len.is_multiple_of(4) {
            let lo = b.ins().iconst(ptr, (nvec * 16) as i64);
            let hi = b.ins().iconst(ptr, (len * 4) as i64);
            emit_loop(b, lo, hi, 4, &mut |b, ib| {
                block(b, ib, types::F32);
                Ok(())
            })?;
        }
        Ok(())
    })?;
    b.ins().return_(&[]);
    Ok(())
}

/// Defines the kernel of one chain (not finalized).
fn define(jit: &mut Jit, chain: &ElementwiseChain) -> Result<(KernelId, Layout), CodegenError> {
    let lay = layout(chain)?;
    let id = jit.define(&chain.name, |b, p| emit_kernel(b, p, chain, &lay))?;
    Ok((id, lay))
}

/// The lowered kernel of a defined chain.
fn lowered(
    jit: &Jit,
    chain: &ElementwiseChain,
    id: KernelId,
    lay: &Layout,
) -> Result<LoweredKernel, CodegenError> {
    let mut args: Vec<Arg> = chain.inputs.iter().map(|i| Arg::Value(i.value)).collect();
    args.push(Arg::Value(chain.output));
    Ok(LoweredKernel {
        kernel: Kernel::Jit(jit.kernel(id)?),
        args,
        work: lay.rows,
        grain: grain_for_chain(chain, lay),
        op: chain.name.clone(),
        layout: "dense".into(),
    })
}

/// Rough cost of one element of a step, in units of one vector add per lane.
fn step_cost(s: &Step) -> usize {
    match *s {
        Step::Unary(u, _) => match u {
            UnaryOp::Identity | UnaryOp::Neg | UnaryOp::Abs | UnaryOp::Square => 1,
            UnaryOp::Relu | UnaryOp::LeakyRelu(_) | UnaryOp::Clip(..) => 1,
            UnaryOp::HardSigmoid(..) | UnaryOp::HardSwish => 2,
            UnaryOp::Sqrt | UnaryOp::Reciprocal => 4,
            UnaryOp::Exp | UnaryOp::Erf | UnaryOp::Elu(_) | UnaryOp::Sigmoid => 12,
            UnaryOp::Log | UnaryOp::Tanh | UnaryOp::Softplus => 16,
            UnaryOp::GeluErf | UnaryOp::GeluTanh => 16,
        },
        Step::Binary(BinaryOp::Div, _, Operand::Const(_)) => 1,
        Step::Binary(BinaryOp::Div, _, _) => 4,
        Step::Binary(..) => 1,
    }
}

/// Chunks of an elementwise kernel should cost at least this many units of [`step_cost`]
/// (about 30 us of one core), so that the many small chains of a transformer stay on one
/// thread, where handing half of them to another thread costs more than it saves.
const MIN_CHUNK_COST: usize = 1 << 17;

/// The smallest useful chunk of rows of `chain`: at least [`MIN_CHUNK_COST`] worth of elements,
/// counting the memory traffic of each input and the output as one unit per element.
fn grain_for_chain(chain: &ElementwiseChain, lay: &Layout) -> usize {
    let per_elem = chain.steps.iter().map(step_cost).sum::<usize>() + chain.inputs.len() + 1;
    let per_row = per_elem * lay.len.max(1);
    MIN_CHUNK_COST.div_ceil(per_row).clamp(1, lay.rows.max(1))
}

/// Compiles one chain and finalizes the JIT, so the kernel is callable at once. Arguments: the
/// chain's inputs in order, then its output; the parallel dimension is the output's rows.
pub fn lower_elementwise(
    jit: &mut Jit,
    chain: &ElementwiseChain,
) -> Result<LoweredKernel, CodegenError> {
    let mut v = lower_elementwise_batch(jit, std::slice::from_ref(chain))?;
    v.pop()
        .ok_or_else(|| CodegenError::Jit(format!("`{}`: no kernel", chain.name)))
}

/// Compiles several chains and finalizes the JIT once (cheaper than one finalize per kernel).
pub fn lower_elementwise_batch(
    jit: &mut Jit,
    chains: &[ElementwiseChain],
) -> Result<Vec<LoweredKernel>, CodegenError> {
    let defined: Vec<(KernelId, Layout)> = chains
        .iter()
        .map(|c| define(jit, c))
        .collect::<Result<_, _>>()?;
    jit.finalize()?;
    chains
        .iter()
        .zip(&defined)
        .map(|(c, (id, lay))| lowered(jit, c, *id, lay))
        .collect()
}

#[cfg(test)]
#[path = "elementwise_tests.rs"]
mod tests;
