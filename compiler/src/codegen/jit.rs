//! The Cranelift JIT: one [`Jit`] per compiled model owns a `JITModule` built for the host CPU
//! (with every ISA extension `cranelift_native` detects, e.g. AVX2 and FMA) and `opt_level=speed`.
//!
//! Kernels are defined with [`Jit::define`], which hands the caller a `FunctionBuilder` positioned
//! in the entry block of a function with the runtime's ABI signature
//! (`extern "C" fn(args: *const *mut u8, begin: usize, end: usize)`). [`Jit::finalize`] makes every
//! pending definition executable (once for a batch of kernels, or again after more definitions);
//! [`Jit::kernel`] then gives the native entry point. [`Jit::finish`] turns the module into an
//! opaque owner of the code that a plan keeps alive as long as it may call the kernels.
//!
//! Setting the environment variable `SPARSEC_JIT_DISASM` prints each kernel's machine code to
//! standard error as it is compiled; [`Jit::keep_listings`] keeps it for tests to inspect.

use super::{wide, CodegenError};
use cranelift_codegen::ir::{types, AbiParam, InstBuilder, Value};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_codegen::Context;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, FuncId, Module};
use sparsec_runtime::KernelFn;

/// The entry-block parameters of a kernel being defined.
#[derive(Clone, Copy, Debug)]
pub struct KernelParams {
    /// The argument array (`*const *mut u8`): buffer base addresses, operands then results.
    pub args: Value,
    /// First index of the parallel dimension to compute.
    pub begin: Value,
    /// One past the last index of the parallel dimension to compute.
    pub end: Value,
}

/// A kernel defined in a [`Jit`]; its code becomes callable after [`Jit::finalize`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelId(usize);

/// A JIT module for one compiled model: define kernels, finalize, fetch their entry points.
pub struct Jit {
    module: JITModule,
    ctx: Context,
    fctx: FunctionBuilderContext,
    /// Every defined function, with whether its code is finalized.
    funcs: Vec<(FuncId, bool)>,
    /// The machine-code listing of every kernel defined since [`Jit::keep_listings`].
    listings: Option<Vec<String>>,
    /// `f32` lanes of the vectors the sparse kernels accumulate in: 8 where [`wide::available`]
    /// (256-bit `f32x8`), else 4.
    lanes: usize,
}

impl std::fmt::Debug for Jit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Jit({} kernels)", self.funcs.len())
    }
}

/// The error for a failure of Cranelift or of the module.
fn jit_err(what: &str, e: impl std::fmt::Display) -> CodegenError {
    CodegenError::Jit(format!("{what}: {e}"))
}

impl Jit {
    /// A JIT for the host CPU, optimizing for speed, whose sparse kernels use `f32x8` vectors
    /// where [`wide::available`] says the host and the code generator support them.
    pub fn new() -> Result<Jit, CodegenError> {
        let mut jit = Jit::host()?;
        jit.lanes = if wide::available() { 8 } else { 4 };
        Ok(jit)
    }

    /// A JIT for the host CPU with 4-lane vectors (what [`wide::available`] probes with).
    pub(super) fn host() -> Result<Jit, CodegenError> {
        let mut flags = settings::builder();
        let set = |f: &mut settings::Builder, k: &str, v: &str| {
            f.set(k, v).map_err(|e| jit_err(&format!("flag {k}"), e))
        };
        set(&mut flags, "opt_level", "speed")?;
        set(&mut flags, "use_colocated_libcalls", "false")?;
        set(&mut flags, "is_pic", "false")?;
        let isa = cranelift_native::builder()
            .map_err(|e| jit_err("host ISA", e))?
            .finish(settings::Flags::new(flags))
            .map_err(|e| jit_err("host ISA", e))?;
        let module = JITModule::new(JITBuilder::with_isa(isa, default_libcall_names()));
        Ok(Jit {
            ctx: module.make_context(),
            module,
            fctx: FunctionBuilderContext::new(),
            funcs: Vec::new(),
            listings: None,
            lanes: 4,
        })
    }

    /// `f32` lanes of the sparse kernels' vectors: 8 (`f32x8`) or 4 (`f32x4`).
    pub fn vector_lanes(&self) -> usize {
        self.lanes
    }

    /// Sets the sparse kernels' vector lanes for the kernels defined from now on: 4, or 8 where
    /// [`wide::available`] (tests compare both; `SPARSEC_VECTOR_BITS=128` sets 4 for a run).
    pub fn set_vector_lanes(&mut self, lanes: usize) -> Result<(), CodegenError> {
        match lanes {
            4 => self.lanes = 4,
            8 if wide::available() => self.lanes = 8,
            _ => {
                return Err(CodegenError::Unsupported(format!(
                    "{lanes}-lane vectors on this host"
                )))
            }
        }
        Ok(())
    }

    /// Keeps the machine-code listing (Cranelift's text of the final instructions) of every
    /// kernel defined from now on, for tests that check what a kernel compiles to.
    pub fn keep_listings(&mut self) {
        self.listings.get_or_insert_with(Vec::new);
    }

    /// The listings kept since [`Jit::keep_listings`], each headed `; kernel `NAME``.
    pub fn listings(&self) -> &[String] {
        self.listings.as_deref().unwrap_or(&[])
    }

    /// The pointer type of the target (`i64` on the hosts sparsec supports).
    pub fn pointer_type(&self) -> types::Type {
        self.module.target_config().pointer_type()
    }

    /// Declares and compiles a kernel with the ABI signature. `body` receives a builder positioned
    /// in the (unsealed) entry block and the entry parameters; it must terminate every block it
    /// creates (the entry block included). Blocks are sealed here.
    pub fn define(
        &mut self,
        name: &str,
        body: impl FnOnce(&mut FunctionBuilder, KernelParams) -> Result<(), CodegenError>,
    ) -> Result<KernelId, CodegenError> {
        let ptr = self.pointer_type();
        let cfg = self.module.target_config();
        self.module.clear_context(&mut self.ctx);
        let sig = &mut self.ctx.func.signature;
        sig.params.push(AbiParam::new(ptr));
        sig.params.push(AbiParam::new(ptr));
        sig.params.push(AbiParam::new(ptr));
        let id = self
            .module
            .declare_anonymous_function(&self.ctx.func.signature)
            .map_err(|e| jit_err(&format!("declare `{name}`"), e))?;
        {
            let mut b = FunctionBuilder::new(&mut self.ctx.func, &mut self.fctx);
            let entry = b.create_block();
            b.append_block_params_for_function_params(entry);
            b.switch_to_block(entry);
            let p = b.block_params(entry);
            let params = KernelParams {
                args: p[0],
                begin: p[1],
                end: p[2],
            };
            let built = body(&mut b, params);
            b.seal_all_blocks();
            b.finalize(cfg);
            built?;
        }
        let print = std::env::var_os("SPARSEC_JIT_DISASM").is_some();
        self.ctx.set_disasm(print || self.listings.is_some());
        self.module
            .define_function(id, &mut self.ctx)
            .map_err(|e| jit_err(&format!("compile `{name}`"), format!("{e:?}")))?;
        if let Some(code) = self.ctx.compiled_code().and_then(|c| c.vcode.as_ref()) {
            let text = format!("; kernel `{name}`\n{code}");
            if print {
                eprintln!("{text}");
            }
            if let Some(l) = &mut self.listings {
                l.push(text);
            }
        }
        self.module.clear_context(&mut self.ctx);
        self.funcs.push((id, false));
        Ok(KernelId(self.funcs.len() - 1))
    }

    /// Makes every kernel defined so far executable.
    pub fn finalize(&mut self) -> Result<(), CodegenError> {
        if self.funcs.iter().all(|&(_, done)| done) {
            return Ok(());
        }
        self.module
            .finalize_definitions()
            .map_err(|e| jit_err("finalize", e))?;
        for f in &mut self.funcs {
            f.1 = true;
        }
        Ok(())
    }

    /// The entry point of a finalized kernel.
    pub fn kernel(&self, id: KernelId) -> Result<KernelFn, CodegenError> {
        match self.funcs.get(id.0) {
            Some(&(fid, true)) => {
                let p = self.module.get_finalized_function(fid);
                // SAFETY: `fid` was defined with exactly the `KernelFn` signature (three pointer-sized
                // parameters, no results, the platform's C calling convention, which is Cranelift's
                // default for the host ISA) and its code is finalized, so the address is executable code
                // of that type.
                Ok(unsafe { std::mem::transmute::<*const u8, KernelFn>(p) })
            }
            Some(_) => Err(CodegenError::Jit(format!(
                "kernel {} is not finalized",
                id.0
            ))),
            None => Err(CodegenError::Jit(format!("no kernel {}", id.0))),
        }
    }

    /// Number of kernels defined so far.
    pub fn len(&self) -> usize {
        self.funcs.len()
    }

    /// True when no kernel is defined.
    pub fn is_empty(&self) -> bool {
        self.funcs.is_empty()
    }

    /// Finalizes what is pending and returns the owner of the code, which the plan keeps alive as
    /// long as it may call any kernel of this JIT. Dropping it frees the code.
    pub fn finish(mut self) -> Result<Box<dyn std::any::Any + Send + Sync>, CodegenError> {
        self.finalize()?;
        Ok(Box::new(JitCode {
            module: Some(self.module),
        }))
    }
}

/// The finalized code of a [`Jit`]; freed on drop.
struct JitCode {
    module: Option<JITModule>,
}

// SAFETY: after `finalize_definitions` the module's code and data are immutable (read-only and
// executable pages); nothing reads or writes the module's bookkeeping again except `drop`, which
// needs `&mut self` and so cannot race with any other access.
unsafe impl Send for JitCode {}
// SAFETY: see `Send`: a shared `&JitCode` gives no access to the module at all.
unsafe impl Sync for JitCode {}

impl Drop for JitCode {
    fn drop(&mut self) {
        if let Some(m) = self.module.take() {
            // SAFETY: the plan that owns this code drops it only when it no longer calls any of
            // its kernels (the documented contract of `Jit::finish`).
            unsafe { m.free_memory() };
        }
    }
}

/// Emits `for i in begin..end step 1 { body(i) }` over `i64` counters, leaving the builder in the
/// block after the loop. `body` must leave the builder in a block without a terminator.
pub fn emit_loop(
    b: &mut FunctionBuilder,
    begin: Value,
    end: Value,
    step: i64,
    body: &mut dyn FnMut(&mut FunctionBuilder, Value) -> Result<(), CodegenError>,
) -> Result<(), CodegenError> {
    use cranelift_codegen::ir::condcodes::IntCC;
    let ty = b.func.dfg.value_type(begin);
    let head = b.create_block();
    b.append_block_param(head, ty);
    let after = b.create_block();
    let go = b.ins().icmp(IntCC::SignedLessThan, begin, end);
    b.ins().brif(go, head, &[begin.into()], after, &[]);
    b.switch_to_block(head);
    let i = b.block_params(head)[0];
    body(b, i)?;
    let next = b.ins().iadd_imm_s(i, step);
    let more = b.ins().icmp(IntCC::SignedLessThan, next, end);
    b.ins().brif(more, head, &[next.into()], after, &[]);
    b.switch_to_block(after);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cranelift_codegen::ir::MemFlagsData;

    /// A kernel that writes `i` as f32 into `out[i]` for `i` in `begin..end`.
    fn iota(jit: &mut Jit) -> KernelId {
        jit.define("iota", |b, p| {
            let out = b.ins().load(types::I64, MemFlagsData::trusted(), p.args, 0);
            emit_loop(b, p.begin, p.end, 1, &mut |b, i| {
                let x = b.ins().fcvt_from_sint(types::F32, i);
                let off = b.ins().ishl_imm_u(i, 2);
                let addr = b.ins().iadd(out, off);
                b.ins().store(MemFlagsData::new().with_notrap(), x, addr, 0);
                Ok(())
            })?;
            b.ins().return_(&[]);
            Ok(())
        })
        .unwrap()
    }

    #[test]
    fn defines_several_kernels_and_finalizes_once() {
        let mut jit = Jit::new().unwrap();
        let a = iota(&mut jit);
        let c = iota(&mut jit);
        assert!(jit.kernel(a).is_err(), "not finalized yet");
        jit.finalize().unwrap();
        let (fa, fc) = (jit.kernel(a).unwrap(), jit.kernel(c).unwrap());
        let mut out = vec![-1.0f32; 8];
        let args = [out.as_mut_ptr() as *mut u8];
        // SAFETY: `out` has 8 elements and the ranges stay below 8.
        unsafe {
            fa(args.as_ptr(), 1, 4);
            fc(args.as_ptr(), 6, 8);
        }
        assert_eq!(out, vec![-1.0, 1.0, 2.0, 3.0, -1.0, -1.0, 6.0, 7.0]);
        // More kernels after a finalize.
        let d = iota(&mut jit);
        let code = jit.finish().unwrap();
        drop(code);
        let _ = d;
    }

    #[test]
    fn body_errors_are_reported() {
        let mut jit = Jit::new().unwrap();
        let r = jit.define("bad", |b, _| {
            b.ins().return_(&[]);
            Err(CodegenError::Unsupported("test".into()))
        });
        assert!(matches!(r, Err(CodegenError::Unsupported(_))));
        // The JIT stays usable.
        let k = iota(&mut jit);
        jit.finalize().unwrap();
        assert!(jit.kernel(k).is_ok());
    }
}
