//! The Cranelift emitter of the channel-major sparse convolution kernel (lowered by `conv.rs`):
//! `Y[co, pixel] = sum over the nonzeros (offset, w) of row co of  w * X[offset + pixel]`.
//!
//! `X` is a plane whose row stride is `wx` (the input image itself, or the padded / phase-split
//! copy `conv.rs` prepares), and every nonzero of the weight carries the element offset of its
//! `(input channel, kernel position)` in that plane, so every kernel shape reduces to the same
//! product. The output grid is `rows x cols` pixels with row stride `wy` in `Y`.
//!
//! A *tile* is `r` grid rows times a fixed list of column starts (`f32x4` vectors, or scalars
//! for grids narrower than 4); its accumulators stay in registers while the row's nonzeros are
//! walked (two per iteration, each broadcast once and multiplied into every accumulator with an
//! FMA: measured 10-15% faster than the multiply-add pair of the other sparse kernels here). Tiles
//! step by `r` rows and `width` columns over the block of the grid given at run time; the last
//! tile of a row or column range is shifted back to end at the block's edge, recomputing a few
//! pixels with exactly the same operations instead of a masked tail. The fused epilogue (bias,
//! residual add, ReLU, clip, leaky ReLU) runs on the accumulators before the store.
//!
//! Kernel ABI: `args = [x, blob, y, block, epilogue operands...]`, `begin..end` = output
//! channels; `block` points at four `i64`: first and one-past-last grid row, first and
//! one-past-last grid column.

use super::emit::{emit_for, halves, load_f32, load_t, mem, relu, ro, scaled, zero};
use crate::codegen::dense::EpiStep;
use crate::codegen::jit::KernelParams;
use crate::codegen::CodegenError;
use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{types, InstBuilder, MemFlagsData, Type, Value};
use cranelift_frontend::FunctionBuilder;

/// Argument index of the first epilogue operand in the kernel's argument array.
pub(super) const FIRST_EPI_ARG: usize = 4;

/// The compile-time shape of one kernel.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct ConvKernelSpec {
    /// Grid rows per tile.
    pub r: usize,
    /// Column starts of the tile's accumulators, relative to the tile's first column.
    pub cols: Vec<usize>,
    /// Lanes of each accumulator: 1 (`f32`), 4 (`f32x4`) or 8 (`f32x8`).
    pub lanes: usize,
    /// Columns a tile covers (the column step between tiles).
    pub width: usize,
    /// Row stride of `X` in elements.
    pub wx: usize,
    /// Row stride of `Y` in elements.
    pub wy: usize,
    /// Elements per output channel of `Y` (one image).
    pub plane: usize,
    /// Byte offset of the row pointers (`u32`, channels + 1) in the blob.
    pub ptr: i64,
    /// Byte offset of the nonzeros' element offsets into `X` (`u32`).
    pub offs: i64,
    /// Byte offset of the nonzeros' values (`f32`).
    pub vals: i64,
    /// The fused epilogue; operand indices point into the kernel's argument array.
    pub epi: Vec<EpiStep>,
}

impl ConvKernelSpec {
    /// Accumulators per tile.
    pub fn accumulators(&self) -> usize {
        self.r * self.cols.len()
    }

    /// Element offset of accumulator `(k, j)` (tile row `k`, column entry `j`) in `X`.
    fn x_at(&self, k: usize, j: usize) -> i64 {
        4 * (k * self.wx + self.cols[j]) as i64
    }

    /// Byte offset of accumulator `(k, j)` in `Y`.
    fn y_at(&self, k: usize, j: usize) -> i64 {
        4 * (k * self.wy + self.cols[j]) as i64
    }

    /// The accumulators' type.
    fn ty(&self) -> Type {
        match self.lanes {
            1 => types::F32,
            4 => types::F32X4,
            _ => types::F32X8,
        }
    }

    /// The same tile with each `f32x8` accumulator as two `f32x4` (the epilogue's view, see
    /// `emit::halves`).
    fn narrow(&self) -> ConvKernelSpec {
        if self.lanes != 8 {
            return self.clone();
        }
        ConvKernelSpec {
            lanes: 4,
            cols: self.cols.iter().flat_map(|&c| [c, c + 4]).collect(),
            ..self.clone()
        }
    }
}

/// `min(a, b)` of two `i64`.
fn imin(b: &mut FunctionBuilder, x: Value, y: Value) -> Value {
    let lt = b.ins().icmp(IntCC::SignedLessThan, x, y);
    b.ins().select(lt, x, y)
}

/// Lane-wise `if cond(x, y) { p } else { q }` for `f32` or `f32x4` operands.
fn choose(
    b: &mut FunctionBuilder,
    cc: FloatCC,
    (x, y): (Value, Value),
    p: Value,
    q: Value,
) -> Value {
    let ty = b.func.dfg.value_type(x);
    let c = b.ins().fcmp(cc, x, y);
    if ty == types::F32 {
        b.ins().select(c, p, q)
    } else {
        let m = b.ins().bitcast(ty, MemFlagsData::new(), c);
        b.ins().bitselect(m, p, q)
    }
}

/// A constant of type `ty` (`f32` or `f32x4`).
fn constant(b: &mut FunctionBuilder, ty: Type, v: f32) -> Value {
    let c = b.ins().f32const(v);
    if ty == types::F32 {
        c
    } else {
        b.ins().splat(ty, c)
    }
}

/// Emits the kernel body (the entry block is current; the body returns).
pub(super) fn emit(
    b: &mut FunctionBuilder,
    p: KernelParams,
    spec: &ConvKernelSpec,
    n_args: usize,
) -> Result<(), CodegenError> {
    let ptr_ty = types::I64;
    let ty = spec.ty();
    // The epilogue's view of a tile: `f32x4` halves of `f32x8` accumulators.
    let out_spec = spec.narrow();
    let out_ty = out_spec.ty();
    let arg = |b: &mut FunctionBuilder, k: usize| b.ins().load(ptr_ty, ro(), p.args, 8 * k as i32);
    let x = arg(b, 0);
    let blob = arg(b, 1);
    let y = arg(b, 2);
    let block = arg(b, 3);
    let epi_base: Vec<Value> = (FIRST_EPI_ARG..n_args).map(|k| arg(b, k)).collect();
    let r0 = b.ins().load(ptr_ty, ro(), block, 0);
    let r1 = b.ins().load(ptr_ty, ro(), block, 8);
    let c0 = b.ins().load(ptr_ty, ro(), block, 16);
    let c1 = b.ins().load(ptr_ty, ro(), block, 24);
    let rlast = b.ins().iadd_imm_s(r1, -(spec.r as i64));
    let clast = b.ins().iadd_imm_s(c1, -(spec.width as i64));
    // Loop ends such that `start, start + step, ...` covers `start..end` with a shifted last step.
    let rend = b.ins().iadd_imm_s(r1, spec.r as i64 - 1);
    let cend = b.ins().iadd_imm_s(c1, spec.width as i64 - 1);
    let ptr = b.ins().iadd_imm_s(blob, spec.ptr);
    let offs = b.ins().iadd_imm_s(blob, spec.offs);
    let vals = b.ins().iadd_imm_s(blob, spec.vals);
    let epi_arg = |k: usize| epi_base[k - FIRST_EPI_ARG];
    emit_for(b, p.begin, p.end, 1, &[], &mut |b, co, _| {
        let at = scaled(b, ptr, co, 4);
        let p0 = b.ins().uload32(ro(), at, 0);
        let p1 = b.ins().uload32(ro(), at, 4);
        // The per-channel operands of the epilogue, loaded once per channel.
        let biases: Vec<Option<Value>> = spec
            .epi
            .iter()
            .map(|s| match *s {
                EpiStep::Bias(k) => {
                    let at = scaled(b, epi_arg(k), co, 4);
                    let v = load_f32(b, at, 0);
                    Some(if out_spec.lanes > 1 {
                        b.ins().splat(out_ty, v)
                    } else {
                        v
                    })
                }
                _ => None,
            })
            .collect();
        let chan = b.ins().imul_imm_s(co, 4 * spec.plane as i64);
        emit_for(b, r0, rend, spec.r as i64, &[], &mut |b, r, _| {
            let rr = imin(b, r, rlast);
            emit_for(b, c0, cend, spec.width as i64, &[], &mut |b, c, _| {
                let cc = imin(b, c, clast);
                let xi = b.ins().imul_imm_s(rr, spec.wx as i64);
                let xi = b.ins().iadd(xi, cc);
                let xt = scaled(b, x, xi, 4);
                let yi = b.ins().imul_imm_s(rr, spec.wy as i64);
                let yi = b.ins().iadd(yi, cc);
                let yoff = scaled(b, chan, yi, 4);
                tile(b, spec, ty, (xt, offs, vals), (p0, p1), &mut |b, acc| {
                    let acc = halves(b, acc);
                    store(b, &out_spec, &acc, yoff, y, &biases, &|k| epi_arg(k));
                });
                vec![]
            });
            vec![]
        });
        vec![]
    });
    b.ins().return_(&[]);
    Ok(())
}

/// Nonzeros per iteration of a tile's loop (4 measured no faster).
const UNROLL: i64 = 2;

/// Accumulates one tile over the nonzeros `p0..p1` (two per iteration, then one) and hands the
/// accumulators to `done`.
fn tile(
    b: &mut FunctionBuilder,
    spec: &ConvKernelSpec,
    ty: Type,
    (xt, offs, vals): (Value, Value, Value),
    (p0, p1): (Value, Value),
    done: &mut dyn FnMut(&mut FunctionBuilder, &[Value]),
) {
    let n = spec.accumulators();
    let z = zero(b, ty);
    // The tile's base address is carried through the loops as their last value (returned as
    // `xt + 0`, which the optimizer folds only after it has kept the block parameter): computed
    // once per tile, instead of the optimizer re-deriving it from the tile's row and column in
    // every iteration.
    let mut init = vec![z; n];
    init.push(xt);
    let carry = |b: &mut FunctionBuilder, xt: Value| b.ins().iadd_imm_s(xt, 0);
    let one = |b: &mut FunctionBuilder, q: Value, j: i64, xt: Value, acc: &mut [Value]| {
        let at = scaled(b, offs, q, 4);
        let off = b.ins().uload32(ro(), at, (4 * j) as i32);
        let va = scaled(b, vals, q, 4);
        let w = load_f32(b, va, 4 * j);
        let ws = if spec.lanes > 1 {
            b.ins().splat(ty, w)
        } else {
            w
        };
        let xa = scaled(b, xt, off, 4);
        for k in 0..spec.r {
            for jj in 0..spec.cols.len() {
                let i = k * spec.cols.len() + jj;
                let xv = load_t(b, ty, xa, spec.x_at(k, jj));
                // With the workspace's Cranelift, the x64 FMA reads the vector from memory
                // and ties its result to the accumulator: one instruction, no register copy.
                acc[i] = b.ins().fma(xv, ws, acc[i]);
            }
        }
    };
    let (qe, acc) = emit_for(b, p0, p1, UNROLL, &init, &mut |b, q, a| {
        let mut a = a.to_vec();
        let xt = a[n];
        for j in 0..UNROLL {
            one(b, q, j, xt, &mut a[..n]);
        }
        a[n] = carry(b, xt);
        a
    });
    let (_, acc) = emit_for(b, qe, p1, 1, &acc, &mut |b, q, a| {
        let mut a = a.to_vec();
        let xt = a[n];
        one(b, q, 0, xt, &mut a[..n]);
        a[n] = carry(b, xt);
        a
    });
    done(b, &acc[..n]);
}

/// Applies the epilogue to the accumulators and stores them at `y + yoff + ...`.
fn store(
    b: &mut FunctionBuilder,
    spec: &ConvKernelSpec,
    acc: &[Value],
    yoff: Value,
    y: Value,
    biases: &[Option<Value>],
    epi_arg: &dyn Fn(usize) -> Value,
) {
    let yt = b.ins().iadd(y, yoff);
    // Base addresses of added tensors at this tile.
    let adds: Vec<Option<Value>> = spec
        .epi
        .iter()
        .map(|s| match *s {
            EpiStep::Add(k) => Some(b.ins().iadd(epi_arg(k), yoff)),
            _ => None,
        })
        .collect();
    for k in 0..spec.r {
        for j in 0..spec.cols.len() {
            let mut v = acc[k * spec.cols.len() + j];
            let ty = b.func.dfg.value_type(v);
            for (si, s) in spec.epi.iter().enumerate() {
                v = match *s {
                    EpiStep::Bias(_) => match biases[si] {
                        Some(c) => b.ins().fadd(v, c),
                        None => v,
                    },
                    EpiStep::Add(_) => match adds[si] {
                        Some(a) => {
                            let o = b.ins().load(ty, ro(), a, spec.y_at(k, j) as i32);
                            b.ins().fadd(v, o)
                        }
                        None => v,
                    },
                    EpiStep::Relu => relu(b, v),
                    EpiStep::Clip(lo, hi) => {
                        let l = constant(b, ty, lo);
                        let h = constant(b, ty, hi);
                        let v = choose(b, FloatCC::GreaterThan, (v, l), v, l);
                        choose(b, FloatCC::LessThan, (v, h), v, h)
                    }
                    EpiStep::LeakyRelu(a) => {
                        let ac = constant(b, ty, a);
                        let z = zero(b, ty);
                        let s = b.ins().fmul(v, ac);
                        choose(b, FloatCC::GreaterThanOrEqual, (v, z), v, s)
                    }
                };
            }
            b.ins().store(mem(), v, yt, spec.y_at(k, j) as i32);
        }
    }
}
