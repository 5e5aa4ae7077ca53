//! Batch-1 kernels (`y = W x`, sparse matrix times vector): memory bound, so they stream as few
//! bytes per nonzero as the layout allows and keep several independent accumulators so the FMA
//! latency is hidden.
//!
//! - [`csr_loop`]: per row, 8 nonzeros per iteration as two `f32x4` FMAs: four values are one
//!   vector load and their four `x[col]` are gathered lane by lane (`insertlane` with the load
//!   folded in), into 2 vector accumulators; then a one-at-a-time scalar tail. Against one
//!   scalar FMA per nonzero this issues about half the instructions (4096 x 4096 at 90% zeros:
//!   0.66 -> 0.52 ms).
//! - [`csr_baked`]: straight-line code per work unit; each nonzero is one FMA whose `x` offset
//!   (`4 * col`) and value offset are immediates, so no index is read at all.
//! - [`bsr`]: per block row; blocks of `r % 4 == 0` rows are vectorized along the rows (one
//!   broadcast `x[col]` per block column), `1 x c` blocks with `c % 4 == 0` along the columns,
//!   other shapes use scalar FMAs. Two or four blocks per iteration go to separate accumulators.
//! - [`nm24`]: per row, 2 groups of 4 columns per iteration: one metadata byte gives the two
//!   positions inside the group.

use super::emit::{
    bsr_body, emit_for, entry, epilogue, hsum, load_f32, load_index, load_v, mem, ro, scaled, sum,
    u16_lane, zero, Entry,
};
use super::{Bsr, Csr, IndexWidth, MatmulSpec, Nm24, Sections};
use crate::codegen::jit::KernelParams;
use crate::codegen::CodegenError;
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, InstBuilder, Value};
use cranelift_frontend::FunctionBuilder;

/// Nonzeros per iteration of the CSR loop.
const UNROLL: i64 = 16;
/// Scalar accumulators of the baked CSR kernel.
const ACCS: usize = 8;
/// `f32x4` accumulators of the CSR loop.
const VACCS: usize = 2;

/// The bias of row `r` (a runtime row index), if any.
fn bias_at(b: &mut FunctionBuilder, blob: Value, s: &Sections, r: Value) -> Option<Value> {
    s.bias.map(|off| {
        let base = b.ins().iadd_imm_s(blob, off);
        let at = scaled(b, base, r, 4);
        load_f32(b, at, 0)
    })
}

/// Data-driven CSR matrix-vector product.
pub(super) fn csr_loop(
    b: &mut FunctionBuilder,
    p: KernelParams,
    m: &Csr,
    s: &Sections,
    spec: &MatmulSpec,
) -> Result<(), CodegenError> {
    let e = entry(b, p, s.units);
    let w = m.index_width();
    let ptr = b.ins().iadd_imm_s(e.blob, s.ptr);
    let idx = b.ins().iadd_imm_s(e.blob, s.idx);
    let vals = b.ins().iadd_imm_s(e.blob, s.vals);
    emit_for(b, e.lo, e.hi, 1, &[], &mut |b, r, _| {
        let at = scaled(b, ptr, r, 4);
        let p0 = b.ins().uload32(ro(), at, 0);
        let p1 = b.ins().uload32(ro(), at, 4);
        let z = zero(b, types::F32);
        let nnz = |b: &mut FunctionBuilder, q: Value, j: i64, acc: Value| {
            let col = load_index(b, w, idx, q, j * w.bytes() as i64);
            let xa = scaled(b, e.x, col, 4);
            let xv = load_f32(b, xa, 0);
            let va = scaled(b, vals, q, 4);
            let wv = load_f32(b, va, 4 * j);
            b.ins().fma(wv, xv, acc)
        };
        // Four nonzeros per vector FMA: the values are one `f32x4` load, `x[col]` is gathered
        // lane by lane (a scalar load and three `insertlane`s with folded loads); `u16` indices
        // come four at a time in one 64-bit load split by shifts (MLP-4096 at 90%, batch 1:
        // 0.83 -> 0.71 ms). Groups `g` of four at `q + 4 g`.
        let group = |b: &mut FunctionBuilder, q: Value, g: i64, acc: Value| {
            let packed = (w == IndexWidth::U16).then(|| {
                let at = scaled(b, idx, q, 2);
                b.ins().load(types::I64, ro(), at, (8 * g) as i32)
            });
            let mut xv = None;
            for l in 0..4i64 {
                let col = match packed {
                    Some(v) => u16_lane(b, v, l as usize),
                    None => load_index(b, w, idx, q, (4 * g + l) * w.bytes() as i64),
                };
                let xa = scaled(b, e.x, col, 4);
                let xs = load_f32(b, xa, 0);
                xv = Some(match xv {
                    None => b.ins().scalar_to_vector(types::F32X4, xs),
                    Some(v) => b.ins().insertlane(v, xs, l as u8),
                });
            }
            let va = scaled(b, vals, q, 4);
            let wv = load_v(b, va, 16 * g);
            b.ins().fma(wv, xv.unwrap(), acc)
        };
        let zv = zero(b, types::F32X4);
        let (qe, accs) = emit_for(b, p0, p1, UNROLL, &[zv; VACCS], &mut |b, q, accs| {
            let mut accs = accs.to_vec();
            for g in 0..UNROLL / 4 {
                let k = g as usize % VACCS;
                accs[k] = group(b, q, g, accs[k]);
            }
            accs
        });
        // Then groups of four, then single nonzeros (a row's last three at most).
        let (qe, a4) = emit_for(b, qe, p1, 4, &accs[..1], &mut |b, q, a| {
            vec![group(b, q, 0, a[0])]
        });
        let mut accs = accs;
        accs[0] = a4[0];
        let (_, t) = emit_for(b, qe, p1, 1, &[z], &mut |b, q, a| vec![nnz(b, q, 0, a[0])]);
        let v = sum(b, &accs);
        let h = hsum(b, v);
        let total = b.ins().fadd(h, t[0]);
        let bias = bias_at(b, e.blob, s, r);
        let out = epilogue(b, total, bias, spec.relu);
        let ya = scaled(b, e.y, r, 4);
        b.ins().store(mem(), out, ya, 0);
        vec![]
    });
    b.ins().return_(&[]);
    Ok(())
}

/// Emits `if begin <= u < end { body } ` and leaves the builder after it.
pub(super) fn if_unit(
    b: &mut FunctionBuilder,
    p: KernelParams,
    u: usize,
    body: &mut dyn FnMut(&mut FunctionBuilder),
) {
    let c1 = b
        .ins()
        .icmp_imm_s(IntCC::SignedLessThanOrEqual, p.begin, u as i64);
    let c2 = b
        .ins()
        .icmp_imm_s(IntCC::SignedGreaterThan, p.end, u as i64);
    let c = b.ins().band(c1, c2);
    let then = b.create_block();
    let next = b.create_block();
    b.ins().brif(c, then, &[], next, &[]);
    b.switch_to_block(then);
    body(b);
    b.ins().jump(next, &[]);
    b.switch_to_block(next);
}

/// Pattern-baked CSR matrix-vector product: straight-line code per work unit.
pub(super) fn csr_baked(
    b: &mut FunctionBuilder,
    p: KernelParams,
    m: &Csr,
    s: &Sections,
    units: &[u32],
    spec: &MatmulSpec,
) -> Result<(), CodegenError> {
    let Entry { x, blob, y, .. } = entry(b, p, s.units);
    let vals = b.ins().iadd_imm_s(blob, s.vals);
    let bias = s.bias.map(|o| b.ins().iadd_imm_s(blob, o));
    for u in 0..units.len() - 1 {
        if_unit(b, p, u, &mut |b| {
            for r in units[u] as usize..units[u + 1] as usize {
                let mut accs = vec![zero(b, types::F32); ACCS];
                for q in m.row_ptr[r] as usize..m.row_ptr[r + 1] as usize {
                    let xv = load_f32(b, x, 4 * m.col_idx[q] as i64);
                    let wv = b.ins().load(types::F32, ro(), vals, 4 * q as i32);
                    let k = q % ACCS;
                    accs[k] = b.ins().fma(wv, xv, accs[k]);
                }
                let total = sum(b, &accs);
                let bv = bias.map(|c| b.ins().load(types::F32, ro(), c, 4 * r as i32));
                let out = epilogue(b, total, bv, spec.relu);
                b.ins().store(mem(), out, y, 4 * r as i32);
            }
        });
    }
    b.ins().return_(&[]);
    Ok(())
}

/// How a BSR block is vectorized at batch 1.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// `r % 4 == 0`: `f32x4` along the block's rows.
    Rows,
    /// `r == 1`, `c % 4 == 0`: `f32x4` along the block's columns.
    Cols,
    /// Scalar FMAs.
    Scalar,
}

/// Block-sparse matrix-vector product.
pub(super) fn bsr(
    b: &mut FunctionBuilder,
    p: KernelParams,
    m: &Bsr,
    s: &Sections,
    spec: &MatmulSpec,
) -> Result<(), CodegenError> {
    bsr_body(b, p, s.units, (m.rows, m.r), &mut |b, e, bi, rr| {
        bsr_block_row(b, e, m, s, spec, bi, rr)
    });
    Ok(())
}

/// One block row `bi` of which the first `rr` rows exist.
fn bsr_block_row(
    b: &mut FunctionBuilder,
    e: &Entry,
    m: &Bsr,
    s: &Sections,
    spec: &MatmulSpec,
    bi: Value,
    rr: usize,
) {
    let (r, c) = (m.r, m.c);
    let mode = if r % 4 == 0 {
        Mode::Rows
    } else if r == 1 && c % 4 == 0 {
        Mode::Cols
    } else {
        Mode::Scalar
    };
    let (nacc, ty, sets) = match mode {
        Mode::Rows => (r / 4, types::F32X4, if r <= 8 { 4 } else { 2 }),
        Mode::Cols => (1, types::F32X4, 4),
        Mode::Scalar => (rr, types::F32, if rr <= 4 { 2 } else { 1 }),
    };
    let w = m.index_width();
    let ptr = b.ins().iadd_imm_s(e.blob, s.ptr);
    let idx = b.ins().iadd_imm_s(e.blob, s.idx);
    let vals = b.ins().iadd_imm_s(e.blob, s.vals);
    let at = scaled(b, ptr, bi, 4);
    let k0 = b.ins().uload32(ro(), at, 0);
    let k1 = b.ins().uload32(ro(), at, 4);
    let x = e.x;
    let block = |b: &mut FunctionBuilder, k: Value, accs: &mut [Value]| {
        let col = load_index(b, w, idx, k, 0);
        let xa = scaled(b, x, col, 4);
        let va = scaled(b, vals, k, (r * c * 4) as i64);
        match mode {
            Mode::Rows => {
                for j in 0..c {
                    let xs = load_f32(b, xa, 4 * j as i64);
                    let xs = b.ins().splat(types::F32X4, xs);
                    for (q, acc) in accs.iter_mut().enumerate() {
                        let wv = b.ins().load(ty, ro(), va, (4 * (j * r + 4 * q)) as i32);
                        *acc = b.ins().fma(wv, xs, *acc);
                    }
                }
            }
            Mode::Cols => {
                for jq in 0..c / 4 {
                    let xv = load_v(b, xa, 16 * jq as i64);
                    let wv = b.ins().load(ty, ro(), va, (16 * jq) as i32);
                    accs[0] = b.ins().fma(wv, xv, accs[0]);
                }
            }
            Mode::Scalar => {
                for j in 0..c {
                    let xs = load_f32(b, xa, 4 * j as i64);
                    for (i, acc) in accs.iter_mut().enumerate() {
                        let wv = b.ins().load(ty, ro(), va, (4 * (j * r + i)) as i32);
                        *acc = b.ins().fma(wv, xs, *acc);
                    }
                }
            }
        }
    };
    let z = zero(b, ty);
    let init = vec![z; nacc * sets];
    let (ke, accs) = emit_for(b, k0, k1, sets as i64, &init, &mut |b, k, accs| {
        let mut accs = accs.to_vec();
        for u in 0..sets {
            let kk = b.ins().iadd_imm_s(k, u as i64);
            block(b, kk, &mut accs[u * nacc..(u + 1) * nacc]);
        }
        accs
    });
    let (_, tail) = emit_for(b, ke, k1, 1, &accs[..nacc], &mut |b, k, a| {
        let mut a = a.to_vec();
        block(b, k, &mut a);
        a
    });
    let per: Vec<Value> = (0..nacc)
        .map(|a| {
            let mut terms = vec![tail[a]];
            terms.extend((1..sets).map(|u| accs[u * nacc + a]));
            sum(b, &terms)
        })
        .collect();
    let row0 = b.ins().imul_imm_s(bi, r as i64);
    let ya = scaled(b, e.y, row0, 4);
    let ba = s.bias.map(|o| {
        let base = b.ins().iadd_imm_s(e.blob, o);
        scaled(b, base, row0, 4)
    });
    // Scalar results of row `i`, stored one by one.
    let store_row = |b: &mut FunctionBuilder, i: usize, v: Value| {
        let bv = ba.map(|a| load_f32(b, a, 4 * i as i64));
        let out = epilogue(b, v, bv, spec.relu);
        b.ins().store(mem(), out, ya, 4 * i as i32);
    };
    match mode {
        Mode::Rows if rr == r => {
            for (q, &v) in per.iter().enumerate() {
                let bv = ba.map(|a| load_v(b, a, 16 * q as i64));
                let out = epilogue(b, v, bv, spec.relu);
                b.ins().store(mem(), out, ya, 16 * q as i32);
            }
        }
        Mode::Rows => {
            for i in 0..rr {
                let v = b.ins().extractlane(per[i / 4], (i % 4) as u8);
                store_row(b, i, v);
            }
        }
        Mode::Cols => {
            let v = hsum(b, per[0]);
            store_row(b, 0, v);
        }
        Mode::Scalar => {
            for (i, &v) in per.iter().enumerate() {
                store_row(b, i, v);
            }
        }
    }
}

/// 2:4 compressed matrix-vector product.
pub(super) fn nm24(
    b: &mut FunctionBuilder,
    p: KernelParams,
    m: &Nm24,
    s: &Sections,
    spec: &MatmulSpec,
) -> Result<(), CodegenError> {
    let e = entry(b, p, s.units);
    let g = m.groups() as i64;
    let meta = b.ins().iadd_imm_s(e.blob, s.meta);
    let vals = b.ins().iadd_imm_s(e.blob, s.vals);
    let start = b.ins().iconst(types::I64, 0);
    let ng = b.ins().iconst(types::I64, g);
    emit_for(b, e.lo, e.hi, 1, &[], &mut |b, r, _| {
        let mrow = scaled(b, meta, r, g);
        let vrow = scaled(b, vals, r, 8 * g);
        let group = |b: &mut FunctionBuilder, q: Value, a: Value, c: Value| {
            let mb = {
                let at = b.ins().iadd(mrow, q);
                b.ins().uload8(types::I64, ro(), at, 0)
            };
            let p0 = b.ins().band_imm_s(mb, 3);
            let p1 = b.ins().ushr_imm_s(mb, 2);
            let p1 = b.ins().band_imm_s(p1, 3);
            let xg = scaled(b, e.x, q, 16);
            let x0a = scaled(b, xg, p0, 4);
            let x1a = scaled(b, xg, p1, 4);
            let x0 = load_f32(b, x0a, 0);
            let x1 = load_f32(b, x1a, 0);
            let va = scaled(b, vrow, q, 8);
            let w0 = b.ins().load(types::F32, ro(), va, 0);
            let w1 = b.ins().load(types::F32, ro(), va, 4);
            let a = b.ins().fma(w0, x0, a);
            let c = b.ins().fma(w1, x1, c);
            (a, c)
        };
        let z = zero(b, types::F32);
        let (qe, accs) = emit_for(b, start, ng, 2, &[z; 4], &mut |b, q, a| {
            let (a0, a1) = group(b, q, a[0], a[1]);
            let q1 = b.ins().iadd_imm_s(q, 1);
            let (a2, a3) = group(b, q1, a[2], a[3]);
            vec![a0, a1, a2, a3]
        });
        let (_, t) = emit_for(b, qe, ng, 1, &accs[..2], &mut |b, q, a| {
            let (a0, a1) = group(b, q, a[0], a[1]);
            vec![a0, a1]
        });
        let total = sum(b, &[t[0], t[1], accs[2], accs[3]]);
        let bias = bias_at(b, e.blob, s, r);
        let out = epilogue(b, total, bias, spec.relu);
        let ya = scaled(b, e.y, r, 4);
        b.ins().store(mem(), out, ya, 0);
        vec![]
    });
    b.ins().return_(&[]);
    Ok(())
}
