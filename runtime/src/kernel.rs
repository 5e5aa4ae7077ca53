//! The kernel ABI: how the runtime calls a compiled kernel.
//!
//! Every kernel computes one node (or a fused chain of nodes) over buffers whose addresses the
//! runtime passes in an argument array: the kernel's operands first, then its results, in the order
//! the compiler fixed when it built the kernel. A kernel also receives a half-open range
//! `begin..end` of its *parallel dimension* (for example output rows, or output channels): the
//! runtime splits `0..Step::work` across threads and calls the kernel once per chunk, so a kernel
//! must compute exactly the part of its results that belongs to that range and nothing else.

/// A JIT-compiled kernel: `args` points at `n` buffer base addresses (operands, then results);
/// `begin..end` is the slice of the parallel dimension to compute.
pub type KernelFn = unsafe extern "C" fn(args: *const *mut u8, begin: usize, end: usize);

/// A kernel written in Rust (a call into a dense GEMM library, or a fallback), with the same
/// contract as [`KernelFn`].
pub type HostFn = Box<dyn Fn(&[*mut u8], usize, usize) + Send + Sync>;

/// A kernel the runtime can call.
pub enum Kernel {
    /// Native code emitted by the compiler's JIT; the code lives as long as the plan owns it.
    Jit(KernelFn),
    /// A Rust function.
    Host(HostFn),
}

impl Kernel {
    /// Calls the kernel for `begin..end`.
    ///
    /// # Safety
    /// `args` must hold valid, correctly sized and aligned buffers for this kernel, and no other
    /// thread may write the part of the results that `begin..end` covers.
    pub unsafe fn call(&self, args: &[*mut u8], begin: usize, end: usize) {
        match self {
            Kernel::Jit(f) => unsafe { f(args.as_ptr(), begin, end) },
            Kernel::Host(f) => f(args, begin, end),
        }
        clear_upper_vector_state();
    }
}

/// `vzeroupper` where the CPU has AVX: the sparse kernels may leave 256-bit values in the vector
/// registers, and SSE code running after them (the runtime's own Rust code is compiled for SSE)
/// then pays a transition or false-dependency penalty on many Intel CPUs. One instruction per
/// kernel call; nothing on other architectures.
#[inline]
fn clear_upper_vector_state() {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: the CPU has AVX, the feature `zeroupper` is compiled for.
        unsafe { zeroupper() }
    }
}

/// The `vzeroupper` instruction.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn zeroupper() {
    std::arch::x86_64::_mm256_zeroupper();
}

impl std::fmt::Debug for Kernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Kernel::Jit(p) => write!(f, "Jit({:p})", *p as *const ()),
            Kernel::Host(_) => f.write_str("Host"),
        }
    }
}
