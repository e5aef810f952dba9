//! A raw pointer that rayon tasks may share, for kernels whose tasks write disjoint elements of
//! one output buffer that no safe split (`par_chunks_mut`) can express: interleaved row bands,
//! column blocks, strided frequency bins.

use std::marker::PhantomData;

/// A raw pointer to a buffer of `T`, shared by rayon tasks that access disjoint elements
/// through it.
///
/// The wrapper only makes the pointer `Send`/`Sync`; every access through [`SyncPtr::get`] is
/// an `unsafe` raw-pointer operation whose `// SAFETY:` comment must show the invariant its
/// users uphold together:
///
/// - **in bounds**: every element accessed lies inside the buffer the pointer was made from;
/// - **disjoint**: while the tasks run, each element is accessed (read or written) by at most
///   one task, and by nothing else (no live `&`/`&mut` to it elsewhere);
/// - **alive**: the buffer outlives every access. For [`SyncPtr::new`] the lifetime `'a`
///   enforces this and also keeps the buffer mutably borrowed (so unusable otherwise) for as
///   long as the `SyncPtr` is in use; for [`SyncPtr::from_raw`] the caller promises it.
///
/// Under these rules the tasks together act like holders of disjoint `&mut T`s, moving values
/// of `T` into the buffer from other threads, which is what `T: Send` permits (the same bound
/// as `&mut [T]: Send` and `par_chunks_mut`); no `&T` is ever shared between threads, so `T:
/// Sync` is not needed.
pub(crate) struct SyncPtr<'a, T> {
    ptr: *mut T,
    _buf: PhantomData<&'a mut [T]>,
}

// Not derived: the derives would require `T: Clone`/`T: Copy`, while copying the pointer never
// copies a `T`.
impl<T> Clone for SyncPtr<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for SyncPtr<'_, T> {}

// SAFETY: sending the wrapper sends a pointer through which the receiving task accesses
// elements no other task accesses (the type's invariant, upheld by every user): that is
// sending exclusive access to values of `T` across threads, sound exactly when `T: Send`.
unsafe impl<T: Send> Send for SyncPtr<'_, T> {}
// SAFETY: a shared `&SyncPtr` yields nothing but copies of the pointer, so sharing it is
// sending the pointer to each task (as above): again only disjoint, exclusive element access,
// which needs `T: Send`, not `T: Sync` (no `&T` is shared between threads).
unsafe impl<T: Send> Sync for SyncPtr<'_, T> {}

impl<'a, T> SyncPtr<'a, T> {
    /// Wrap the start of `buf`, which stays mutably borrowed while the wrapper is in use.
    pub(crate) fn new(buf: &'a mut [T]) -> Self {
        Self { ptr: buf.as_mut_ptr(), _buf: PhantomData }
    }

    /// Wrap a raw pointer the caller already holds.
    ///
    /// # Safety
    ///
    /// For the lifetime `'a`, `p` must point into a live allocation that nothing but the users
    /// of this `SyncPtr` (following the type's invariant) accesses.
    pub(crate) unsafe fn from_raw(p: *mut T) -> Self {
        Self { ptr: p, _buf: PhantomData }
    }

    /// The pointer. A method, so closures capture the whole (Send) wrapper rather than its raw
    /// field.
    pub(crate) fn get(self) -> *mut T {
        self.ptr
    }
}
