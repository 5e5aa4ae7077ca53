//! The binary's global allocator: the system allocator, with every allocation of at least
//! [`LARGE`] bytes aligned to [`ALIGN`] bytes.
//!
//! Weights are decoded into ordinary `Vec`s and the plan reads them in place (no second copy),
//! but `malloc` aligns large blocks to 16 bytes only. The dense GEMM library reads weights with
//! 256-bit loads, and on 16-byte-aligned weights ResNet-50 ran about 25% slower here than on
//! 64-byte-aligned copies. Aligning large blocks at allocation keeps both: weights shared, and
//! aligned to a cache line (the runtime copies any weight that is not).

use std::alloc::{GlobalAlloc, Layout, System};

/// Allocations of at least this many bytes are cache-line aligned.
pub const LARGE: usize = 4096;

/// The alignment of large allocations (one cache line, the runtime's `SHARED_ALIGN`).
pub const ALIGN: usize = 64;

/// The system allocator with large blocks aligned to [`ALIGN`].
pub struct CacheAligned;

/// The layout actually requested from the system for `layout`.
fn adjusted(layout: Layout) -> Layout {
    if layout.size() >= LARGE && layout.align() < ALIGN {
        // `ALIGN` is a power of two and the size already fits `isize` with a smaller alignment
        // rounded up by at most `ALIGN - 1` bytes, so this cannot fail in practice; fall back to
        // the original layout if it ever does.
        layout.align_to(ALIGN).unwrap_or(layout)
    } else {
        layout
    }
}

// SAFETY: every block is allocated and freed by `System` with the same adjusted layout, which
// depends only on the block's size and requested alignment; `realloc` moves blocks whose adjusted
// alignment would change, so a block is never freed with a layout it was not allocated with.
unsafe impl GlobalAlloc for CacheAligned {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded; `adjusted` keeps the size and only raises the alignment.
        unsafe { System.alloc(adjusted(layout)) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `alloc`.
        unsafe { System.alloc_zeroed(adjusted(layout)) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `alloc` with `adjusted(layout)`.
        unsafe { System.dealloc(ptr, adjusted(layout)) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let old = adjusted(layout);
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
            return std::ptr::null_mut();
        };
        let new = adjusted(new_layout);
        if new.align() == old.align() {
            // SAFETY: same alignment on both sides: the system reallocates in place or moves.
            return unsafe { System.realloc(ptr, old, new_size) };
        }
        // SAFETY: a fresh block of the new layout; the old one holds `layout.size()` valid
        // bytes, and both are live and distinct until the old one is freed.
        unsafe {
            let p = System.alloc(new);
            if !p.is_null() {
                std::ptr::copy_nonoverlapping(ptr, p, layout.size().min(new_size));
                System.dealloc(ptr, old);
            }
            p
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_blocks_are_aligned_and_keep_their_bytes_when_grown_or_shrunk() {
        let a = CacheAligned;
        let small = Layout::from_size_align(100, 4).unwrap();
        // SAFETY: layouts are non-zero; every block is freed with the layout it now has.
        unsafe {
            let p = a.alloc(small);
            for i in 0..100 {
                *p.add(i) = i as u8;
            }
            // Growing past LARGE moves the block to an aligned one with the same bytes.
            let q = a.realloc(p, small, 3 * LARGE);
            assert_eq!(q as usize % ALIGN, 0);
            assert!((0..100).all(|i| *q.add(i) == i as u8));
            let big = Layout::from_size_align(3 * LARGE, 4).unwrap();
            // Shrinking below LARGE keeps the bytes too.
            let r = a.realloc(q, big, 50);
            assert!((0..50).all(|i| *r.add(i) == i as u8));
            a.dealloc(r, Layout::from_size_align(50, 4).unwrap());
            let z = a.alloc_zeroed(big);
            assert_eq!(z as usize % ALIGN, 0);
            assert!((0..3 * LARGE).all(|i| *z.add(i) == 0));
            a.dealloc(z, big);
        }
    }
}
