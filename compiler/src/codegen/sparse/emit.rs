//! Small Cranelift helpers shared by the sparse kernels: the packed blob builder ([`Blob`]),
//! loops that carry values, loads at constant offsets, and the fused bias/ReLU epilogue.

use super::{IndexWidth, SparseError};
use crate::codegen::jit::KernelParams;
use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{
    types, ConstantData, Endianness, InstBuilder, MemFlagsData, StackSlotData, StackSlotKind, Type,
    Value,
};
use cranelift_frontend::FunctionBuilder;

/// Memory flags of stores: the buffers are valid, possibly unaligned.
pub(super) fn mem() -> MemFlagsData {
    MemFlagsData::new().with_notrap()
}

/// Memory flags of every load. A kernel reads only its argument array, the packed blob and
/// `X`, none of which it writes, and each load is in bounds wherever it is placed (loads are
/// only hoisted when loop-invariant, and then address valid data), so loads are pure: the
/// optimizer places each one next to its use instead of keeping program order, which would
/// issue all loads of an unrolled iteration first and spill.
pub(super) fn ro() -> MemFlagsData {
    MemFlagsData::new()
        .with_notrap()
        .with_readonly()
        .with_can_move()
}

/// A byte buffer of 64-byte aligned sections: the packed weights and tables of one kernel.
#[derive(Debug, Default)]
pub(super) struct Blob {
    /// The bytes.
    pub bytes: Vec<u8>,
}

impl Blob {
    /// Appends a section at the next 64-byte boundary and returns its offset.
    pub fn section(&mut self, data: impl IntoIterator<Item = [u8; 4]>) -> i64 {
        self.align();
        let off = self.bytes.len() as i64;
        for b in data {
            self.bytes.extend_from_slice(&b);
        }
        off
    }

    /// Appends a section of `u16`s.
    pub fn section_u16(&mut self, data: impl IntoIterator<Item = u16>) -> i64 {
        self.align();
        let off = self.bytes.len() as i64;
        for v in data {
            self.bytes.extend_from_slice(&v.to_ne_bytes());
        }
        off
    }

    /// Appends a section of bytes.
    pub fn section_u8(&mut self, data: &[u8]) -> i64 {
        self.align();
        let off = self.bytes.len() as i64;
        self.bytes.extend_from_slice(data);
        off
    }

    /// Pads to the next 64-byte boundary.
    fn align(&mut self) {
        while !self.bytes.len().is_multiple_of(64) {
            self.bytes.push(0);
        }
    }

    /// Fails when the blob is too large for 32-bit immediate offsets.
    pub fn check(&self, name: &str) -> Result<(), SparseError> {
        if self.bytes.len() >= i32::MAX as usize / 2 {
            return Err(SparseError::Shape(format!(
                "weight `{name}`: packing of {} bytes is too large",
                self.bytes.len()
            )));
        }
        Ok(())
    }
}

/// Section bytes of `u32`s.
pub(super) fn u32s(v: &[u32]) -> impl Iterator<Item = [u8; 4]> + '_ {
    v.iter().map(|x| x.to_ne_bytes())
}

/// Section bytes of `f32`s.
pub(super) fn f32s(v: &[f32]) -> impl Iterator<Item = [u8; 4]> + '_ {
    v.iter().map(|x| x.to_ne_bytes())
}

/// A loop body: gets the counter and the carried values, returns the next carried values.
pub(super) type LoopBody<'a> = dyn FnMut(&mut FunctionBuilder, Value, &[Value]) -> Vec<Value> + 'a;

/// Emits `while i + step <= end { vals = body(i, vals); i += step }` over `i64` counters and
/// returns the final `i` and carried values, leaving the builder after the loop.
///
/// The test is at the loop head and the body jumps back to it, so the values the body computes
/// have a single use (the jump). A test at the end would pass them to both the head and the
/// exit, and Cranelift treats every input of a twice-used value as used twice, which keeps it
/// from folding the body's loads into the arithmetic that consumes them.
pub(super) fn emit_for(
    b: &mut FunctionBuilder,
    start: Value,
    end: Value,
    step: i64,
    init: &[Value],
    body: &mut LoopBody,
) -> (Value, Vec<Value>) {
    let tys: Vec<Type> = init.iter().map(|&v| b.func.dfg.value_type(v)).collect();
    let head = b.create_block();
    let work = b.create_block();
    let after = b.create_block();
    b.append_block_param(head, types::I64);
    b.append_block_param(after, types::I64);
    for &t in &tys {
        b.append_block_param(head, t);
        b.append_block_param(after, t);
    }
    let args = |i: Value, vals: &[Value]| -> Vec<cranelift_codegen::ir::BlockArg> {
        std::iter::once(i)
            .chain(vals.iter().copied())
            .map(Into::into)
            .collect()
    };
    let limit = b.ins().iadd_imm_s(end, 1 - step);
    let a = args(start, init);
    b.ins().jump(head, &a);
    b.switch_to_block(head);
    let p = b.block_params(head).to_vec();
    let go = b.ins().icmp(IntCC::SignedLessThan, p[0], limit);
    let a = args(p[0], &p[1..]);
    b.ins().brif(go, work, &[], after, &a);
    b.switch_to_block(work);
    let out = body(b, p[0], &p[1..]);
    let next = b.ins().iadd_imm_s(p[0], step);
    let a = args(next, &out);
    b.ins().jump(head, &a);
    b.switch_to_block(after);
    let p = b.block_params(after).to_vec();
    (p[0], p[1..].to_vec())
}

/// `base + (index << shift)`, an address the x64 backend folds into one addressing mode.
pub(super) fn scaled(b: &mut FunctionBuilder, base: Value, index: Value, scale: i64) -> Value {
    let off = if scale > 0 && scale & (scale - 1) == 0 {
        b.ins().ishl_imm_u(index, scale.trailing_zeros() as i64)
    } else {
        b.ins().imul_imm_s(index, scale)
    };
    b.ins().iadd(base, off)
}

/// The `f32` at `base + off`.
pub(super) fn load_f32(b: &mut FunctionBuilder, base: Value, off: i64) -> Value {
    b.ins().load(types::F32, ro(), base, off as i32)
}

/// The `f32x4` at `base + off`.
pub(super) fn load_v(b: &mut FunctionBuilder, base: Value, off: i64) -> Value {
    b.ins().load(types::F32X4, ro(), base, off as i32)
}

/// The vector of type `ty` (`f32x4` or `f32x8`) at `base + off`.
pub(super) fn load_t(b: &mut FunctionBuilder, ty: Type, base: Value, off: i64) -> Value {
    b.ins().load(ty, ro(), base, off as i32)
}

/// Each `f32x8` of `vals` as its two `f32x4` halves (low lanes first); an `f32x4` stays as it is.
/// The epilogues work on `f32x4`: the `f32x8` operations of the workspace's Cranelift are only
/// those the accumulation needs (`codegen/wide.rs`). The halves go through a stack slot.
pub(super) fn halves(b: &mut FunctionBuilder, vals: &[Value]) -> Vec<Value> {
    let is_wide = |b: &FunctionBuilder, v: Value| b.func.dfg.value_type(v) == types::F32X8;
    let wide = vals.iter().filter(|&&v| is_wide(b, v)).count();
    if wide == 0 {
        return vals.to_vec();
    }
    let slot = b.create_sized_stack_slot(StackSlotData::new(
        StackSlotKind::ExplicitSlot,
        32 * wide as u32,
        5,
    ));
    let at = b.ins().stack_addr(types::I64, slot, 0);
    let mut out = Vec::with_capacity(vals.len() + wide);
    let mut k = 0;
    for &v in vals {
        if is_wide(b, v) {
            let off = 32 * k;
            k += 1;
            b.ins().store(mem(), v, at, off);
            for h in 0..2 {
                out.push(b.ins().load(types::F32X4, mem(), at, off + 16 * h));
            }
        } else {
            out.push(v);
        }
    }
    out
}

/// A zero `f32`, `f32x4` or `f32x8`.
pub(super) fn zero(b: &mut FunctionBuilder, ty: Type) -> Value {
    let z = b.ins().f32const(0.0);
    if ty == types::F32 {
        z
    } else {
        b.ins().splat(ty, z)
    }
}

/// The sum of `vals` as a balanced tree (at least one value).
pub(super) fn sum(b: &mut FunctionBuilder, vals: &[Value]) -> Value {
    if vals.len() == 1 {
        return vals[0];
    }
    let (l, r) = vals.split_at(vals.len() / 2);
    let (l, r) = (sum(b, l), sum(b, r));
    b.ins().fadd(l, r)
}

/// The sum of the 4 lanes of an `f32x4`.
pub(super) fn hsum(b: &mut FunctionBuilder, v: Value) -> Value {
    let l: Vec<Value> = (0..4u8).map(|i| b.ins().extractlane(v, i)).collect();
    sum(b, &l)
}

/// `max(x, 0)` per lane (NaN gives 0, as in the interpreter).
pub(super) fn relu(b: &mut FunctionBuilder, x: Value) -> Value {
    let ty = b.func.dfg.value_type(x);
    let z = zero(b, ty);
    let pos = b.ins().fcmp(FloatCC::GreaterThan, x, z);
    if ty == types::F32 {
        b.ins().select(pos, x, z)
    } else {
        let m = b.ins().bitcast(ty, MemFlagsData::new(), pos);
        b.ins().bitselect(m, x, z)
    }
}

/// The fused epilogue: `x + bias` (a scalar or vector value already loaded) then ReLU.
pub(super) fn epilogue(
    b: &mut FunctionBuilder,
    x: Value,
    bias: Option<Value>,
    relu_: bool,
) -> Value {
    let x = match bias {
        Some(c) => b.ins().fadd(x, c),
        None => x,
    };
    if relu_ {
        relu(b, x)
    } else {
        x
    }
}

/// The entry values every sparse kernel starts from.
pub(super) struct Entry {
    /// `X` (batch 1) or `X^T`.
    pub x: Value,
    /// The packed blob.
    pub blob: Value,
    /// `Y`.
    pub y: Value,
    /// First row (block row) of the call's units.
    pub lo: Value,
    /// One past the last row (block row) of the call's units.
    pub hi: Value,
}

/// Loads the three buffer addresses and maps `begin..end` units to rows through the unit table
/// at `units`.
pub(super) fn entry(b: &mut FunctionBuilder, p: KernelParams, units: i64) -> Entry {
    let ptr = types::I64;
    // Not `can_move`: the buffer addresses stay in registers from the entry block on instead of
    // being reloaded next to each use inside the loops.
    let flags = MemFlagsData::new().with_notrap().with_readonly();
    let x = b.ins().load(ptr, flags, p.args, 0);
    let blob = b.ins().load(ptr, flags, p.args, 8);
    let y = b.ins().load(ptr, flags, p.args, 16);
    let table = b.ins().iadd_imm_s(blob, units);
    let at = scaled(b, table, p.begin, 4);
    let lo = b.ins().uload32(ro(), at, 0);
    let at = scaled(b, table, p.end, 4);
    let hi = b.ins().uload32(ro(), at, 0);
    Entry { x, blob, y, lo, hi }
}

/// A column index of width `w` at `base + (i << log2 w) + off`, as `i64`.
pub(super) fn load_index(
    b: &mut FunctionBuilder,
    w: IndexWidth,
    base: Value,
    i: Value,
    off: i64,
) -> Value {
    let at = scaled(b, base, i, w.bytes() as i64);
    match w {
        IndexWidth::U16 => b.ins().uload16(types::I64, ro(), at, off as i32),
        IndexWidth::U32 => b.ins().uload32(ro(), at, off as i32),
    }
}

/// Index `l` (0..4) of four `u16` indices loaded as one `i64` (little-endian): one 64-bit load
/// and shifts instead of four index loads, where loads bound the kernel.
pub(super) fn u16_lane(b: &mut FunctionBuilder, v: Value, l: usize) -> Value {
    match l {
        0 => b.ins().band_imm_u(v, 0xffff),
        3 => b.ins().ushr_imm_u(v, 48),
        _ => {
            let sh = b.ins().ushr_imm_u(v, 16 * l as i64);
            b.ins().band_imm_u(sh, 0xffff)
        }
    }
}

/// Lane `l` of `v` (`f32x4`) in all four lanes: one `pshufd`, where a broadcast would need a
/// load of its own.
pub(super) fn lane_splat(b: &mut FunctionBuilder, v: Value, l: usize) -> Value {
    let bytes: Vec<u8> = (0..4)
        .flat_map(|_| (0..4).map(move |k| (4 * l + k) as u8))
        .collect();
    let mask = b.func.dfg.immediates.push(ConstantData::from(bytes));
    let le = MemFlagsData::new().with_endianness(Endianness::Little);
    let x = b.ins().bitcast(types::I8X16, le, v);
    let s = b.ins().shuffle(x, x, mask);
    b.ins().bitcast(types::F32X4, le, s)
}

/// `w * x + acc` for the vector kernels, as one FMA. With the workspace's Cranelift (see
/// `vendor/README.md`) a loaded `x` becomes the memory operand of a `vfmadd231ps` whose result is
/// tied to `acc`: one instruction and no register copy. Against a multiply (with the load folded
/// in) and an add: half the floating-point instructions, MLP-4096 at 90% and batch 64 2% faster
/// (10.68 -> 10.46 ms, five interleaved rounds, before the patch).
pub(super) fn madd(b: &mut FunctionBuilder, w: Value, x: Value, acc: Value) -> Value {
    b.ins().fma(x, w, acc)
}

/// The whole body of a block-sparse kernel: the full block rows among this call's units through
/// `row(b, entry, block_row, rows)`, then the last, shorter block row (when `rows % r != 0` and
/// this call's units include it), then the return. Batch 1 and batch > 1 differ only in `row`.
pub(super) fn bsr_body(
    b: &mut FunctionBuilder,
    p: KernelParams,
    units: i64,
    (rows, r): (usize, usize),
    row: &mut dyn FnMut(&mut FunctionBuilder, &Entry, Value, usize),
) {
    let e = entry(b, p, units);
    let full = (rows / r) as i64;
    let mid = b.ins().iconst(types::I64, full);
    let cond = b.ins().icmp(IntCC::SignedLessThan, e.hi, mid);
    let stop = b.ins().select(cond, e.hi, mid);
    emit_for(b, e.lo, stop, 1, &[], &mut |b, bi, _| {
        row(b, &e, bi, r);
        vec![]
    });
    if !rows.is_multiple_of(r) {
        let has = b.ins().icmp_imm_s(IntCC::SignedGreaterThan, e.hi, full);
        let then = b.create_block();
        let done = b.create_block();
        b.ins().brif(has, then, &[], done, &[]);
        b.switch_to_block(then);
        row(b, &e, mid, rows % r);
        b.ins().jump(done, &[]);
        b.switch_to_block(done);
    }
    b.ins().return_(&[]);
}
