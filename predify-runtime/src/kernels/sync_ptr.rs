//! A raw pointer that rayon tasks may share, for kernels whose tasks write disjoint elements of
//! one output buffer that no safe split (`par_chunks_mut`) can express: interleaved row bands,
//! column blocks, strided frequency bins.

/// A raw pointer shared by rayon tasks that write disjoint elements through it.
#[derive(Clone, Copy)]
pub(crate) struct SyncPtr<T>(*mut T);

// SAFETY: the pointer itself is plain data; every user writes a set of elements no other task
// touches while the buffer outlives the parallel loop (documented at each use).
unsafe impl<T> Send for SyncPtr<T> {}
unsafe impl<T> Sync for SyncPtr<T> {}

impl<T> SyncPtr<T> {
    /// Wrap the start of `buf`.
    pub(crate) fn new(buf: &mut [T]) -> Self {
        Self(buf.as_mut_ptr())
    }

    /// Wrap a raw pointer the caller already holds.
    pub(crate) fn from_raw(p: *mut T) -> Self {
        Self(p)
    }

    /// The pointer. A method, so closures capture the whole (Send) wrapper rather than its raw
    /// field.
    pub(crate) fn get(self) -> *mut T {
        self.0
    }
}
