//! Per-thread scratch buffers, so that kernels called many times per timestep (the small
//! layers' per-sample column buffers) do not allocate and page-fault fresh memory each call.

use std::cell::RefCell;

thread_local! {
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Run `f` on a scratch slice of `len` values (contents unspecified) owned by this thread.
/// A nested call on the same thread gets a fresh allocation instead.
pub fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut v) => {
            if v.len() < len {
                v.resize(len, 0.0);
            }
            f(&mut v[..len])
        }
        Err(_) => f(&mut vec![0f32; len]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_calls_get_separate_buffers() {
        with_scratch(4, |a| {
            a.fill(1.0);
            with_scratch(3, |b| {
                b.fill(2.0);
                assert_eq!(b.len(), 3);
            });
            assert_eq!(a, &[1.0; 4]);
        });
        assert_eq!(with_scratch(10, |a| a.len()), 10);
    }
}
