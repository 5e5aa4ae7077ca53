//! Batch > 1 kernels (`Y = X W^T` with the batch-tiled `X^T` as input): vectorized along the
//! batch. For each output row and each *tile* of `4 x vectors` batch columns, every stored weight
//! `w[r, k]` is broadcast once and multiplied into `vectors` `f32x4` accumulators with the
//! contiguous `X^T[k, tile]`; `sets` independent accumulator sets take consecutive nonzeros so
//! that `vectors x sets` FMA chains hide the FMA latency. The epilogue adds the bias, applies
//! ReLU and writes each lane to `Y[b, r]` (lanes past the batch are dropped at compile time).
//!
//! - [`csr_loop`]: data-driven over the row's nonzeros, `sets` per iteration.
//! - [`csr_baked`]: straight-line per work unit; `X^T` row offsets and value offsets are
//!   immediates.
//! - [`bsr`]: per block row and tile, `rows x vectors` accumulators; each block column's `X^T`
//!   vectors are loaded once and reused by every row of the block.
//! - [`nm24`]: per group of 4 columns, the two stored values go to two accumulator sets.

use super::emit::{
    bsr_body, emit_for, entry, epilogue, halves, lane_splat, load_f32, load_index, load_t, load_v,
    madd, mem, ro, scaled, sum, u16_lane, zero, Entry,
};
use super::spmv::if_unit;
use super::transpose::xt_vector;
use super::{Bsr, Csr, IndexWidth, MatmulSpec, Nm24, Sections};
use crate::codegen::jit::KernelParams;
use crate::codegen::CodegenError;
use cranelift_codegen::ir::{types, InstBuilder, Value};
use cranelift_frontend::FunctionBuilder;

/// The batch tiles: `(first vector, vectors)` over `stride / 4` vectors.
fn tiles(stride: usize, per: usize) -> Vec<(usize, usize)> {
    let n = stride / 4;
    (0..n).step_by(per).map(|v| (v, per.min(n - v))).collect()
}

/// Bias, ReLU and the transposed store of one tile of row results: `acc[v]` holds batch
/// columns `4 (v0 + v) ..`; `yr` is `&Y[0, r]`; `bias` the row's bias splatted.
#[allow(clippy::too_many_arguments)]
fn store_tile(
    b: &mut FunctionBuilder,
    acc: &[Value],
    v0: usize,
    yr: Value,
    bias: Option<Value>,
    spec: &MatmulSpec,
    rows: usize,
) {
    for (v, &a) in acc.iter().enumerate() {
        let out = epilogue(b, a, bias, spec.relu);
        for l in 0..4 {
            let col = 4 * (v0 + v) + l;
            if col < spec.batch {
                let x = b.ins().extractlane(out, l as u8);
                b.ins().store(mem(), x, yr, (4 * col * rows) as i32);
            }
        }
    }
}

/// Adds the accumulator sets: `accs[u * n + v]` for set `u`, vector `v`.
fn merge(b: &mut FunctionBuilder, accs: &[Value], n: usize) -> Vec<Value> {
    (0..n)
        .map(|v| {
            let terms: Vec<Value> = accs.iter().skip(v).step_by(n).copied().collect();
            sum(b, &terms)
        })
        .collect()
}

/// The bias of row `r` (runtime index) splatted, if any.
fn bias_splat(b: &mut FunctionBuilder, blob: Value, s: &Sections, r: Value) -> Option<Value> {
    s.bias.map(|o| {
        let base = b.ins().iadd_imm_s(blob, o);
        let at = scaled(b, base, r, 4);
        let v = load_f32(b, at, 0);
        b.ins().splat(types::F32X4, v)
    })
}

/// Per vector `v0..v0 + nv` of `X^T` row `col + plus` (`col` a runtime value): the base
/// address and the immediate offset of its load. Vectors of tiles of the same width share one
/// base (`x + col * row_bytes`).
fn xt_loads(
    b: &mut FunctionBuilder,
    x: Value,
    col: Value,
    plus: i64,
    (cols, stride): (usize, usize),
    (v0, nv): (usize, usize),
) -> Vec<(Value, i64)> {
    let mut bases: Vec<(i64, Value)> = Vec::new();
    (v0..v0 + nv)
        .map(|v| {
            let (rb, off) = xt_vector(cols, stride, v);
            let base = match bases.iter().find(|(r, _)| *r == rb) {
                Some(&(_, base)) => base,
                None => {
                    let base = scaled(b, x, col, rb);
                    bases.push((rb, base));
                    base
                }
            };
            (base, off + plus * rb)
        })
        .collect()
}

/// The accumulators of tile `(v0, nv)` (`f32x4` vectors of `X^T`): `(first vector, 2)` for each
/// pair of vectors that is one contiguous `f32x8` when `lanes == 8`, `(vector, 1)` for the rest.
fn groups(
    (v0, nv): (usize, usize),
    lanes: usize,
    (cols, stride): (usize, usize),
) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut v = v0;
    while v < v0 + nv {
        let pair = lanes == 8 && v + 1 < v0 + nv && {
            let (rb, off) = xt_vector(cols, stride, v);
            xt_vector(cols, stride, v + 1) == (rb, off + 16)
        };
        let n = if pair { 2 } else { 1 };
        out.push((v, n));
        v += n;
    }
    out
}

/// Bytes a 16-column `X^T` tile must exceed for the `f32x8` loop to take 32-column tiles.
const WIDE_TILE_MIN_BYTES: usize = 128 * 1024;

/// Data-driven CSR times dense. Tile by tile over all of the call's rows: one tile of `X^T`
/// (`cols` cache lines with the default tiling) stays in the L2 cache while the rows' nonzeros
/// stream past it in order. With `lanes == 8` two adjacent vectors of a tile are one `f32x8`
/// accumulator (half the FMAs and loads; MLP-4096 at 90% zeros, batch 64: see `ARCHITECTURE.md`).
pub(super) fn csr_loop(
    b: &mut FunctionBuilder,
    p: KernelParams,
    m: &Csr,
    s: &Sections,
    spec: &MatmulSpec,
    lanes: usize,
) -> Result<(), CodegenError> {
    let e = entry(b, p, s.units);
    let stride = super::xt_stride(spec.batch);
    let w = m.index_width();
    let ptr = b.ins().iadd_imm_s(e.blob, s.ptr);
    let idx = b.ins().iadd_imm_s(e.blob, s.idx);
    let vals = b.ins().iadd_imm_s(e.blob, s.vals);
    // With `f32x8` and a long reduction, tiles twice as wide (32 batch columns, two `X^T` tiles
    // side by side): each nonzero's index and broadcast serve four FMAs, each row's loop and
    // epilogue 32 columns, and the packed weight streams half as often. Where a 16-column tile of
    // `X^T` is at most 128 KiB (4x L1) it keeps 16: more of it hits L1. MLP-4096 at 90%, batch
    // 64, 1 thread, five interleaved rounds: 4096 x 4096 6.25 -> 5.40 ms with 32 columns, but
    // 4096 x 1024 1.47 -> 1.82 ms.
    let per = if lanes == 8 && m.cols * 64 > WIDE_TILE_MIN_BYTES {
        2 * spec.tile_vectors
    } else {
        spec.tile_vectors
    };
    for tile in tiles(stride, per) {
        let gs = groups(tile, lanes, (m.cols, stride));
        let ng = gs.len();
        let wide = gs.iter().any(|g| g.1 == 2);
        // Enough accumulator sets for 8-12 independent chains (FMA latency 4 x 2 pipes; 16
        // accumulators with the broadcast spill): 3 sets of the 4 `f32x8` of a 32-column tile,
        // 4 of the 2 of a 16-column one.
        let sets = if wide {
            (12 / ng).clamp(1, 4)
        } else {
            spec.sets
        };
        // Nonzeros per iteration: a multiple of the sets, at least 4.
        let unroll = sets * 4usize.div_ceil(sets);
        // `f32x4` weights come packed four to a load and are shuffled lane by lane; an `f32x8`
        // broadcast reads its weight from memory itself.
        let pack_vals = !wide;
        emit_for(b, e.lo, e.hi, 1, &[], &mut |b, r, _| {
            let at = scaled(b, ptr, r, 4);
            let p0 = b.ins().uload32(ro(), at, 0);
            let p1 = b.ins().uload32(ro(), at, 4);
            let bias = bias_splat(b, e.blob, s, r);
            let yr = scaled(b, e.y, r, 4);
            let nnz = |b: &mut FunctionBuilder,
                       q: Value,
                       j: usize,
                       packed: Option<(Value, Option<Value>)>,
                       acc: &mut [Value]| {
                let col = match packed {
                    Some((v, _)) => u16_lane(b, v, j % 4),
                    None => load_index(b, w, idx, q, (j * w.bytes()) as i64),
                };
                let (w4, w8) = match packed.and_then(|p| p.1) {
                    Some(w4) => (Some(lane_splat(b, w4, j % 4)), None),
                    None => {
                        let va = scaled(b, vals, q, 4);
                        let splat = |b: &mut FunctionBuilder, ty| {
                            let wv = load_f32(b, va, 4 * j as i64);
                            b.ins().splat(ty, wv)
                        };
                        let w8 = wide.then(|| splat(b, types::F32X8));
                        let w4 = gs.iter().any(|g| g.1 == 1).then(|| splat(b, types::F32X4));
                        (w4, w8)
                    }
                };
                let loads = xt_loads(b, e.x, col, 0, (m.cols, stride), tile);
                for (a, &(v, n)) in acc.iter_mut().zip(&gs) {
                    let (base, off) = loads[v - tile.0];
                    let (ty, ws) = if n == 2 {
                        (types::F32X8, w8.unwrap())
                    } else {
                        (types::F32X4, w4.unwrap())
                    };
                    let xv = load_t(b, ty, base, off);
                    *a = madd(b, ws, xv, *a);
                }
            };
            let init: Vec<Value> = (0..sets)
                .flat_map(|_| gs.iter().map(|g| g.1))
                .map(|n| zero(b, if n == 2 { types::F32X8 } else { types::F32X4 }))
                .collect();
            let (qe, accs) = emit_for(b, p0, p1, unroll as i64, &init, &mut |b, q, a| {
                let mut a = a.to_vec();
                // Groups of four with `u16` indices: the indices are one 64-bit load split by
                // shifts, the values (`f32x4` tiles) one `f32x4` load broadcast lane by lane
                // (MLP-4096 at 90%, batch 64: 12.5 -> 11.5 ms against a load of each).
                let mut packed = None;
                for j in 0..unroll {
                    if j % 4 == 0 {
                        packed = (w == IndexWidth::U16 && j + 4 <= unroll).then(|| {
                            let at = scaled(b, idx, q, 2);
                            let va = scaled(b, vals, q, 4);
                            let idx4 = b.ins().load(types::I64, ro(), at, (2 * j) as i32);
                            (idx4, pack_vals.then(|| load_v(b, va, 4 * j as i64)))
                        });
                    }
                    let u = j % sets;
                    nnz(b, q, j, packed, &mut a[u * ng..(u + 1) * ng]);
                }
                a
            });
            let (_, t) = emit_for(b, qe, p1, 1, &accs[..ng], &mut |b, q, a| {
                let mut a = a.to_vec();
                nnz(b, q, 0, None, &mut a);
                a
            });
            let mut all = t;
            all.extend_from_slice(&accs[ng..]);
            let acc = merge(b, &all, ng);
            let acc = halves(b, &acc);
            store_tile(b, &acc, tile.0, yr, bias, spec, m.rows);
            vec![]
        });
    }
    b.ins().return_(&[]);
    Ok(())
}

/// Pattern-baked CSR times dense: straight-line code per work unit.
pub(super) fn csr_baked(
    b: &mut FunctionBuilder,
    p: KernelParams,
    m: &Csr,
    s: &Sections,
    units: &[u32],
    spec: &MatmulSpec,
) -> Result<(), CodegenError> {
    let Entry { x, blob, y, .. } = entry(b, p, s.units);
    let stride = super::xt_stride(spec.batch);
    let vals = b.ins().iadd_imm_s(blob, s.vals);
    let biasp = s.bias.map(|o| b.ins().iadd_imm_s(blob, o));
    let sets = spec.sets;
    for u in 0..units.len() - 1 {
        if_unit(b, p, u, &mut |b| {
            for r in units[u] as usize..units[u + 1] as usize {
                let bias = biasp.map(|c| {
                    let v = b.ins().load(types::F32, ro(), c, 4 * r as i32);
                    b.ins().splat(types::F32X4, v)
                });
                let yr = b.ins().iadd_imm_s(y, 4 * r as i64);
                for (v0, nv) in tiles(stride, spec.tile_vectors) {
                    let z = zero(b, types::F32X4);
                    let mut accs = vec![z; nv * sets];
                    for (i, q) in (m.row_ptr[r] as usize..m.row_ptr[r + 1] as usize).enumerate() {
                        let wv = b.ins().load(types::F32, ro(), vals, 4 * q as i32);
                        let ws = b.ins().splat(types::F32X4, wv);
                        let set = i % sets;
                        let col = m.col_idx[q] as i64;
                        for v in 0..nv {
                            let (rb, off) = xt_vector(m.cols, stride, v0 + v);
                            let xv = load_v(b, x, col * rb + off);
                            let a = &mut accs[set * nv + v];
                            *a = madd(b, ws, xv, *a);
                        }
                    }
                    let acc = merge(b, &accs, nv);
                    store_tile(b, &acc, v0, yr, bias, spec, m.rows);
                }
            }
        });
    }
    b.ins().return_(&[]);
    Ok(())
}

/// Block-sparse times dense.
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
    let stride = super::xt_stride(spec.batch);
    // About 8 accumulators: rows x vectors.
    let per = (8 / rr).clamp(1, spec.tile_vectors.max(1) * 2);
    let w = m.index_width();
    let ptr = b.ins().iadd_imm_s(e.blob, s.ptr);
    let idx = b.ins().iadd_imm_s(e.blob, s.idx);
    let vals = b.ins().iadd_imm_s(e.blob, s.vals);
    let at = scaled(b, ptr, bi, 4);
    let k0 = b.ins().uload32(ro(), at, 0);
    let k1 = b.ins().uload32(ro(), at, 4);
    let row0 = b.ins().imul_imm_s(bi, r as i64);
    let yr = scaled(b, e.y, row0, 4);
    let ba = s.bias.map(|o| {
        let base = b.ins().iadd_imm_s(e.blob, o);
        scaled(b, base, row0, 4)
    });
    for (v0, nv) in tiles(stride, per) {
        let z = zero(b, types::F32X4);
        let init = vec![z; rr * nv];
        let (_, acc) = emit_for(b, k0, k1, 1, &init, &mut |b, k, a| {
            let mut a = a.to_vec();
            let col = load_index(b, w, idx, k, 0);
            let va = scaled(b, vals, k, (r * c * 4) as i64);
            for j in 0..c {
                let loads = xt_loads(b, e.x, col, j as i64, (m.cols, stride), (v0, nv));
                let xv: Vec<Value> = loads
                    .into_iter()
                    .map(|(base, off)| load_v(b, base, off))
                    .collect();
                for i in 0..rr {
                    let wv = b.ins().load(types::F32, ro(), va, (4 * (j * r + i)) as i32);
                    let ws = b.ins().splat(types::F32X4, wv);
                    for (v, &x) in xv.iter().enumerate() {
                        a[i * nv + v] = madd(b, ws, x, a[i * nv + v]);
                    }
                }
            }
            a
        });
        for i in 0..rr {
            let bias = ba.map(|a| {
                let v = load_f32(b, a, 4 * i as i64);
                b.ins().splat(types::F32X4, v)
            });
            let yi = b.ins().iadd_imm_s(yr, 4 * i as i64);
            store_tile(b, &acc[i * nv..(i + 1) * nv], v0, yi, bias, spec, m.rows);
        }
    }
}

/// 2:4 compressed times dense.
pub(super) fn nm24(
    b: &mut FunctionBuilder,
    p: KernelParams,
    m: &Nm24,
    s: &Sections,
    spec: &MatmulSpec,
) -> Result<(), CodegenError> {
    let e = entry(b, p, s.units);
    let stride = super::xt_stride(spec.batch);
    let g = m.groups() as i64;
    let meta = b.ins().iadd_imm_s(e.blob, s.meta);
    let vals = b.ins().iadd_imm_s(e.blob, s.vals);
    let start = b.ins().iconst(types::I64, 0);
    let ng = b.ins().iconst(types::I64, g);
    let per = spec.tile_vectors.clamp(1, 6);
    emit_for(b, e.lo, e.hi, 1, &[], &mut |b, r, _| {
        let mrow = scaled(b, meta, r, g);
        let vrow = scaled(b, vals, r, 8 * g);
        let bias = bias_splat(b, e.blob, s, r);
        let yr = scaled(b, e.y, r, 4);
        for (v0, nv) in tiles(stride, per) {
            let z = zero(b, types::F32X4);
            let init = vec![z; 2 * nv];
            let (_, acc) = emit_for(b, start, ng, 1, &init, &mut |b, q, a| {
                let mut a = a.to_vec();
                let at = b.ins().iadd(mrow, q);
                let mb = b.ins().uload8(types::I64, ro(), at, 0);
                let pos0 = b.ins().band_imm_s(mb, 3);
                let pos1 = b.ins().ushr_imm_s(mb, 2);
                let pos1 = b.ins().band_imm_s(pos1, 3);
                let q4 = b.ins().ishl_imm_u(q, 2);
                let va = scaled(b, vrow, q, 8);
                for (k, pos) in [pos0, pos1].into_iter().enumerate() {
                    let col = b.ins().iadd(q4, pos);
                    let loads = xt_loads(b, e.x, col, 0, (m.cols, stride), (v0, nv));
                    let wv = b.ins().load(types::F32, ro(), va, 4 * k as i32);
                    let ws = b.ins().splat(types::F32X4, wv);
                    for (v, (base, off)) in loads.into_iter().enumerate() {
                        let xv = load_v(b, base, off);
                        a[k * nv + v] = madd(b, ws, xv, a[k * nv + v]);
                    }
                }
                a
            });
            let acc = merge(b, &acc, nv);
            store_tile(b, &acc, v0, yr, bias, spec, m.rows);
        }
        vec![]
    });
    b.ins().return_(&[]);
    Ok(())
}
