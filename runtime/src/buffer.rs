//! `AlignedBuf`: the runtime's owned byte buffer (64-byte aligned, zero-initialized), used for
//! weights, the arena and run outputs; and `WeightBuf`, a plan weight that is either such a buffer
//! or read-only bytes shared with the caller (the compiler's graph), so that weights are not
//! copied into the plan.

use crate::error::RuntimeError;
use std::alloc::{self, Layout};
use std::fmt;
use std::ptr::NonNull;
use std::sync::Arc;

/// Alignment of every buffer the runtime allocates, in bytes (one cache line, and enough for
/// any vector load the kernels emit).
pub const ALIGN: usize = 64;

/// A heap byte buffer aligned to [`ALIGN`] bytes and zero-initialized; zero-size buffers do not
/// allocate.
pub struct AlignedBuf {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: `AlignedBuf` uniquely owns its allocation (like `Vec<u8>`); shared references only give
// out `&[u8]`, and mutation needs `&mut self`.
unsafe impl Send for AlignedBuf {}
// SAFETY: see above; `&AlignedBuf` only allows reads.
unsafe impl Sync for AlignedBuf {}

impl AlignedBuf {
    /// Allocates `len` zero bytes, or returns an error when the size is too large or the
    /// allocation fails.
    pub fn try_zeroed(len: usize) -> Result<Self, RuntimeError> {
        if len == 0 {
            return Ok(AlignedBuf {
                ptr: dangling(),
                len,
            });
        }
        let layout = Layout::from_size_align(len, ALIGN).map_err(|_| RuntimeError::Alloc {
            bytes: len,
            what: "an aligned buffer (size too large)".into(),
        })?;
        // SAFETY: `layout` has a non-zero size.
        let raw = unsafe { alloc::alloc_zeroed(layout) };
        let ptr = NonNull::new(raw).ok_or_else(|| RuntimeError::Alloc {
            bytes: len,
            what: "an aligned buffer".into(),
        })?;
        Ok(AlignedBuf { ptr, len })
    }

    /// Allocates `len` zero bytes; like `Vec`, aborts when the allocator fails and panics when
    /// `len` exceeds `isize::MAX - 63` (use [`AlignedBuf::try_zeroed`] for sizes from user input).
    pub fn zeroed(len: usize) -> Self {
        match Self::try_zeroed(len) {
            Ok(b) => b,
            Err(_) => match Layout::from_size_align(len, ALIGN) {
                Ok(layout) => alloc::handle_alloc_error(layout),
                Err(_) => panic!("capacity overflow: {len} bytes"),
            },
        }
    }

    /// A buffer holding a copy of `bytes`.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        let mut b = Self::zeroed(bytes.len());
        b.as_bytes_mut().copy_from_slice(bytes);
        b
    }

    /// A buffer holding a copy of `values` in native byte order.
    pub fn from_f32(values: &[f32]) -> Self {
        let mut b = Self::zeroed(std::mem::size_of_val(values));
        b.as_f32_mut().copy_from_slice(values);
        b
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Base address (aligned to [`ALIGN`], also when empty).
    pub fn as_ptr(&self) -> *const u8 {
        self.ptr.as_ptr()
    }

    /// Mutable base address (aligned to [`ALIGN`], also when empty).
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        // SAFETY: `ptr` is valid for `len` initialized bytes (or dangling and aligned when `len == 0`).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The bytes, mutably.
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_bytes`, and `&mut self` makes the access unique.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }

    /// The buffer as `f32`s; a trailing partial element (when `len` is not a multiple of 4) is
    /// left out.
    pub fn as_f32(&self) -> &[f32] {
        // SAFETY: the pointer is 64-byte aligned, every bit pattern is a valid `f32`, and
        // `len / 4` elements fit in the allocation.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().cast::<f32>(), self.len / 4) }
    }

    /// The buffer as mutable `f32`s (see [`AlignedBuf::as_f32`]).
    pub fn as_f32_mut(&mut self) -> &mut [f32] {
        // SAFETY: as in `as_f32`, and `&mut self` makes the access unique.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr().cast::<f32>(), self.len / 4) }
    }

    /// The buffer as `i64`s; a trailing partial element is left out.
    pub fn as_i64(&self) -> &[i64] {
        // SAFETY: the pointer is 64-byte aligned, every bit pattern is a valid `i64`, and
        // `len / 8` elements fit in the allocation.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().cast::<i64>(), self.len / 8) }
    }
}

/// The alignment a shared weight's bytes must have to be used in place: a cache line. Dense GEMM
/// on less aligned weights measured about 25% slower on ResNet-50, so less aligned bytes are
/// copied into an [`AlignedBuf`] (the `sparsec` binary's allocator aligns large blocks to 64).
pub const SHARED_ALIGN: usize = 64;

/// Read-only bytes owned elsewhere that a plan may use as a weight without copying them.
///
/// The bytes must stay the same for as long as the value lives (kernels read them from several
/// threads, and nobody may write them).
pub trait WeightBytes: Send + Sync {
    /// The bytes, in the layout the kernels read (little-endian elements, row-major).
    fn bytes(&self) -> &[u8];
}

/// A plan weight: an owned aligned buffer, or bytes shared with their owner.
#[derive(Clone)]
pub enum WeightBuf {
    /// A buffer the plan owns (packed weights, or copies), aligned to [`ALIGN`].
    Owned(AlignedBuf),
    /// Bytes the plan shares with their owner, aligned to at least [`SHARED_ALIGN`].
    Shared(Arc<dyn WeightBytes>),
}

impl WeightBuf {
    /// A weight using `data`'s bytes in place when they are non-empty and aligned to
    /// [`SHARED_ALIGN`], else an owned, aligned copy of them.
    pub fn shared(data: Arc<dyn WeightBytes>) -> WeightBuf {
        let bytes = data.bytes();
        if bytes.is_empty() || !(bytes.as_ptr() as usize).is_multiple_of(SHARED_ALIGN) {
            return WeightBuf::Owned(AlignedBuf::from_bytes(bytes));
        }
        WeightBuf::Shared(data)
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            WeightBuf::Owned(b) => b.as_bytes(),
            WeightBuf::Shared(s) => s.bytes(),
        }
    }

    /// Base address.
    pub fn as_ptr(&self) -> *const u8 {
        self.as_bytes().as_ptr()
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// Whether the weight holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the bytes are shared with their owner rather than owned by the plan.
    pub fn is_shared(&self) -> bool {
        matches!(self, WeightBuf::Shared(_))
    }
}

impl From<AlignedBuf> for WeightBuf {
    fn from(b: AlignedBuf) -> WeightBuf {
        WeightBuf::Owned(b)
    }
}

impl fmt::Debug for WeightBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WeightBuf::Owned(b) => write!(f, "Owned({} bytes)", b.len()),
            WeightBuf::Shared(s) => write!(f, "Shared({} bytes)", s.bytes().len()),
        }
    }
}

/// A non-null pointer aligned to [`ALIGN`] that owns nothing, for empty buffers.
fn dangling() -> NonNull<u8> {
    NonNull::new(std::ptr::without_provenance_mut(ALIGN)).unwrap_or(NonNull::dangling())
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        if self.len == 0 {
            return;
        }
        if let Ok(layout) = Layout::from_size_align(self.len, ALIGN) {
            // SAFETY: the buffer was allocated in `try_zeroed` with this very layout.
            unsafe { alloc::dealloc(self.ptr.as_ptr(), layout) };
        }
    }
}

impl Clone for AlignedBuf {
    fn clone(&self) -> Self {
        Self::from_bytes(self.as_bytes())
    }
}

impl fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AlignedBuf({} bytes)", self.len)
    }
}

impl PartialEq for AlignedBuf {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeroed_and_aligned() {
        for len in [0, 1, 3, 64, 100, 4096, 100_003] {
            let b = AlignedBuf::zeroed(len);
            assert_eq!(b.len(), len);
            assert_eq!(b.as_ptr() as usize % ALIGN, 0, "len {len}");
            assert!(b.as_bytes().iter().all(|&x| x == 0));
        }
        assert!(AlignedBuf::zeroed(0).is_empty());
    }

    #[test]
    fn typed_views_and_copies() {
        let b = AlignedBuf::from_f32(&[1.0, -2.5, 3.0]);
        assert_eq!(b.len(), 12);
        assert_eq!(b.as_f32(), &[1.0, -2.5, 3.0]);
        let c = b.clone();
        assert_eq!(c, b);
        assert_ne!(c.as_ptr(), b.as_ptr());
        let mut d = AlignedBuf::from_bytes(&[1, 2, 3, 4, 5]);
        assert_eq!(d.as_f32().len(), 1);
        d.as_bytes_mut()[4] = 9;
        assert_eq!(d.as_bytes(), &[1, 2, 3, 4, 9]);
        let e = AlignedBuf::from_bytes(&7i64.to_ne_bytes());
        assert_eq!(e.as_i64(), &[7]);
    }

    #[test]
    fn absurd_size_is_an_error() {
        assert!(AlignedBuf::try_zeroed(usize::MAX - 8).is_err());
    }

    #[test]
    fn send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<AlignedBuf>();
        check::<WeightBuf>();
    }

    /// Bytes at a chosen offset of an aligned buffer, as a shared weight would hold them.
    struct Window(AlignedBuf, usize);

    impl WeightBytes for Window {
        fn bytes(&self) -> &[u8] {
            &self.0.as_bytes()[self.1..]
        }
    }

    #[test]
    fn shared_weights_are_used_in_place_when_aligned() {
        let mut b = AlignedBuf::zeroed(2 * SHARED_ALIGN);
        for (i, x) in b.as_bytes_mut().iter_mut().enumerate() {
            *x = i as u8;
        }
        let aligned: Arc<dyn WeightBytes> = Arc::new(Window(b.clone(), SHARED_ALIGN));
        let w = WeightBuf::shared(aligned.clone());
        assert!(w.is_shared());
        assert_eq!(w.as_ptr(), aligned.bytes().as_ptr());
        assert_eq!(w.as_bytes(), &b.as_bytes()[SHARED_ALIGN..]);
        assert_eq!(w.len(), SHARED_ALIGN);

        // Misaligned bytes are copied into an aligned buffer with the same contents.
        let w = WeightBuf::shared(Arc::new(Window(b.clone(), 4)));
        assert!(!w.is_shared());
        assert_eq!(w.as_ptr() as usize % ALIGN, 0);
        assert_eq!(w.as_bytes(), &b.as_bytes()[4..]);

        // Empty bytes are an owned empty buffer.
        let w = WeightBuf::shared(Arc::new(Window(b, 2 * SHARED_ALIGN)));
        assert!(!w.is_shared() && w.is_empty());
        assert_eq!(
            WeightBuf::from(AlignedBuf::from_bytes(&[1, 2])).as_bytes(),
            &[1, 2]
        );
    }
}
