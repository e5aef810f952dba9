//! A contiguous part of a data set, as a data set of its own: held-out splits without copying.

use super::{Dataset, Error, Result};
use std::ops::Range;

/// Items `range` of `set`, renumbered from 0. Holds `set` by value: pass a reference
/// (`Subset::new(&set, ..)`) to borrow it, or a [`super::TensorDataset`] / `Box<dyn Dataset>`
/// to own it.
#[derive(Debug, Clone, Copy)]
pub struct Subset<D> {
    set: D,
    start: usize,
    len: usize,
}

impl<D: Dataset> Subset<D> {
    /// Items `range` of `set`; an error if the range does not lie within the set.
    pub fn new(set: D, range: Range<usize>) -> Result<Self> {
        if range.start > range.end || range.end > set.len() {
            return Err(Error::Invalid(format!("items {range:?} of a set of {}", set.len())));
        }
        Ok(Self { start: range.start, len: range.end - range.start, set })
    }

    /// The items of the underlying set this subset covers.
    pub fn range(&self) -> Range<usize> {
        self.start..self.start + self.len
    }

    /// The underlying set.
    pub fn inner(&self) -> &D {
        &self.set
    }
}

impl<D: Dataset> Dataset for Subset<D> {
    fn len(&self) -> usize {
        self.len
    }
    fn item_shape(&self) -> &[usize] {
        self.set.item_shape()
    }
    fn read_item(&self, index: usize, out: &mut [f32]) -> Result<()> {
        self.set.read_item(self.start + index, out)
    }
    fn label(&self, index: usize) -> u32 {
        self.set.label(self.start + index)
    }
}

/// Split `set` into its first `len − held_out` items and its last `held_out` items (at least
/// one item stays on each side: the set must have two or more).
///
/// ```
/// use predify::data::{split_off, Dataset, TensorDataset};
/// let set = TensorDataset::from_vec((0..10).map(|v| v as f32).collect(), vec![1], vec![0; 10])?;
/// let (train, held_out) = split_off(&set, 3)?;
/// assert_eq!((train.len(), held_out.len(), held_out.range()), (7, 3, 7..10));
/// # Ok::<(), predify::data::Error>(())
/// ```
pub fn split_off<D: Dataset + ?Sized>(set: &D, held_out: usize) -> Result<(Subset<&D>, Subset<&D>)> {
    let n = set.len();
    if n < 2 {
        return Err(Error::Invalid(format!("cannot hold out images from a set of {n}")));
    }
    let k = held_out.clamp(1, n - 1);
    Ok((Subset::new(set, 0..n - k)?, Subset::new(set, n - k..n)?))
}
