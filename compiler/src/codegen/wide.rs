//! Whether the sparse kernels may use 256-bit `f32x8` vectors ([`available`]).
//!
//! Upstream Cranelift's x64 backend has 128-bit vectors only. The workspace builds it with a
//! patch (`vendor/README.md`) that adds the few `f32x8` operations the sparse kernels accumulate
//! with: load, store, splat, `fma`, `fadd`, and whole-`ymm` moves, spills and reloads. They
//! need AVX2 and FMA. [`available`] is true when the host has both, the environment does not
//! ask for 128-bit vectors (`SPARSEC_VECTOR_BITS=128`), and a probe kernel compiles and computes
//! the right numbers; without the patch the probe fails to compile and every kernel keeps
//! `f32x4`, so correctness never depends on the patch.

use super::jit::Jit;
use super::CodegenError;
use cranelift_codegen::ir::{types, InstBuilder, MemFlagsData, StackSlotData, StackSlotKind};
use std::sync::OnceLock;

/// True when the sparse kernels may use `f32x8` (probed once per process).
pub fn available() -> bool {
    static WIDE: OnceLock<bool> = OnceLock::new();
    *WIDE.get_or_init(|| !asked_narrow() && host_has_avx2_fma() && probe().unwrap_or(false))
}

/// Whether the environment asks for 128-bit vectors (`SPARSEC_VECTOR_BITS=128`).
fn asked_narrow() -> bool {
    std::env::var("SPARSEC_VECTOR_BITS").is_ok_and(|v| v.trim() == "128")
}

/// The vector lanes a test should compile each sparse kernel with: 4, and 8 where
/// [`available`].
#[cfg(test)]
pub(crate) fn lane_choices() -> Vec<usize> {
    if available() {
        vec![4, 8]
    } else {
        vec![4]
    }
}

/// AVX2 and FMA on this CPU.
fn host_has_avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Compiles and runs a kernel that uses every `f32x8` operation the sparse kernels emit, with
/// more live vectors than there are registers (so that moves, spills and reloads carry whole
/// vectors), and checks its result against the same sums in `f64`.
fn probe() -> Result<bool, CodegenError> {
    const N: usize = 20;
    let mut jit = Jit::host()?;
    let id = jit.define("probe:f32x8", |b, p| {
        let flags = MemFlagsData::new().with_notrap();
        let x = b.ins().load(types::I64, flags, p.args, 0);
        let y = b.ins().load(types::I64, flags, p.args, 8);
        let w = b.ins().load(types::F32, flags, x, 0);
        let ws = b.ins().splat(types::F32X8, w);
        let accs: Vec<_> = (0..N)
            .map(|i| {
                let a = b.ins().load(types::F32X8, flags, x, 32 * (i as i32 + 1));
                let v = b.ins().load(types::F32X8, flags, x, 32 * (N - i) as i32);
                b.ins().fma(v, ws, a)
            })
            .collect();
        // All `N` results are live here, then summed pairwise and stored by halves.
        let mut sum = accs[0];
        for &a in &accs[1..] {
            sum = b.ins().fadd(sum, a);
        }
        let slot =
            b.create_sized_stack_slot(StackSlotData::new(StackSlotKind::ExplicitSlot, 32, 5));
        let at = b.ins().stack_addr(types::I64, slot, 0);
        b.ins().store(flags, sum, at, 0);
        let lo = b.ins().load(types::F32X4, flags, at, 0);
        let hi = b.ins().load(types::F32X4, flags, at, 16);
        b.ins().store(flags, lo, y, 0);
        b.ins().store(flags, hi, y, 16);
        b.ins().return_(&[]);
        Ok(())
    });
    let Ok(id) = id else { return Ok(false) };
    jit.finalize()?;
    let f = jit.kernel(id)?;
    let x: Vec<f32> = (0..8 * (N + 1))
        .map(|i| ((i * 7 % 13) as f32) * 0.25 - 1.0)
        .collect();
    let mut y = vec![0f32; 8];
    let args = [x.as_ptr() as *mut u8, y.as_mut_ptr() as *mut u8];
    // SAFETY: the kernel reads `x` at bytes 0..32 * (N + 1) (its length) and writes the 8 floats
    // of `y`.
    unsafe { f(args.as_ptr(), 0, 1) };
    let w = x[0] as f64;
    let ok = (0..8).all(|l| {
        let want: f64 = (0..N)
            .map(|i| x[8 * (i + 1) + l] as f64 + w * x[8 * (N - i) + l] as f64)
            .sum();
        (y[l] as f64 - want).abs() <= 1e-4 * (1.0 + want.abs())
    });
    Ok(ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workspace_code_generator_has_f32x8_on_avx2_hosts() {
        // The workspace builds the patched code generator, so on an AVX2 + FMA host the probe
        // must succeed (unless a run asked for 128-bit vectors).
        if host_has_avx2_fma() && !asked_narrow() {
            assert!(probe().unwrap(), "the f32x8 probe kernel failed");
            assert!(available());
        } else {
            eprintln!("note: no AVX2 + FMA (or 128-bit vectors asked for); f32x8 not probed");
        }
    }
}
