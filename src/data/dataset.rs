//! The data-set contract of training, evaluation and tuning: labelled items of one shape, and
//! [`gather`], which turns a list of item indices into a batch.

use super::{Error, Result};
use candle_core::{Device, Tensor};

/// A labelled data set: `len()` items, each a block of f32 values of one shape with a class
/// index. Training, evaluation and tuning (`predify::{train, eval, tune}`, feature `train`)
/// read their data through this trait only, so any shape works: MNIST's
/// `[1, 28, 28]` ([`super::mnist::MnistSet`]), RGB images `[3, H, W]`, volumes, feature
/// vectors.
///
/// Values are returned already scaled as the network expects (MNIST: pixels / 255 in
/// `[0, 1]`); the noise of a robustness evaluation is added to them as they are. `Sync`
/// because batches are gathered on several threads at once.
///
/// Implement it for a data set of your own (or hold the data in a [`super::TensorDataset`]):
///
/// ```
/// use predify::data::{gather, Dataset};
///
/// /// `n` constant 2×4×4 images: item `i` is all `i / n`, of class `i % 3`.
/// struct Ramp(usize);
///
/// impl Dataset for Ramp {
///     fn len(&self) -> usize { self.0 }
///     fn item_shape(&self) -> &[usize] { &[2, 4, 4] }
///     fn read_item(&self, index: usize, out: &mut [f32]) -> predify::data::Result<()> {
///         out.fill(index as f32 / self.0 as f32);
///         Ok(())
///     }
///     fn label(&self, index: usize) -> u32 { (index % 3) as u32 }
/// }
///
/// let (x, labels) = gather(&Ramp(10), &[4, 7], &predify::candle_core::Device::Cpu)?;
/// assert_eq!(x.dims(), [2, 2, 4, 4]);
/// assert_eq!(labels, [1, 1]);
/// # Ok::<(), predify::data::Error>(())
/// ```
pub trait Dataset: Sync {
    /// Number of items.
    fn len(&self) -> usize;

    /// Whether the set has no items.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The shape of every item, without the batch axis (`[C, H, W]` for images; any rank).
    fn item_shape(&self) -> &[usize];

    /// Write item `index`'s values (row-major, `item_shape` order) into `out`, whose length is
    /// the product of [`Dataset::item_shape`]. Callers pass `index < len()`; fallible so that
    /// sets read from disk can report a bad file.
    fn read_item(&self, index: usize, out: &mut [f32]) -> Result<()>;

    /// Item `index`'s class (`index < len()`).
    fn label(&self, index: usize) -> u32;
}

impl<D: Dataset + ?Sized> Dataset for &D {
    fn len(&self) -> usize {
        (**self).len()
    }
    fn item_shape(&self) -> &[usize] {
        (**self).item_shape()
    }
    fn read_item(&self, index: usize, out: &mut [f32]) -> Result<()> {
        (**self).read_item(index, out)
    }
    fn label(&self, index: usize) -> u32 {
        (**self).label(index)
    }
}

impl<D: Dataset + ?Sized> Dataset for Box<D> {
    fn len(&self) -> usize {
        (**self).len()
    }
    fn item_shape(&self) -> &[usize] {
        (**self).item_shape()
    }
    fn read_item(&self, index: usize, out: &mut [f32]) -> Result<()> {
        (**self).read_item(index, out)
    }
    fn label(&self, index: usize) -> u32 {
        (**self).label(index)
    }
}

/// Items `indices` of `set` (in that order, repeats allowed) as one f32 batch
/// `[indices.len(), ..item_shape]` on `device`, and their labels. An index out of range is an
/// error naming it.
pub fn gather<D: Dataset + ?Sized>(set: &D, indices: &[usize], device: &Device) -> Result<(Tensor, Vec<u32>)> {
    let shape = set.item_shape();
    let per: usize = shape.iter().product();
    if per == 0 {
        return Err(Error::Invalid(format!("items of shape {shape:?} hold no values")));
    }
    let mut values = vec![0f32; indices.len() * per];
    let mut labels = Vec::with_capacity(indices.len());
    for (out, &i) in values.chunks_exact_mut(per).zip(indices) {
        if i >= set.len() {
            return Err(Error::Invalid(format!("item index {i} out of range (the set has {})", set.len())));
        }
        set.read_item(i, out)?;
        labels.push(set.label(i));
    }
    let dims: Vec<usize> = std::iter::once(indices.len()).chain(shape.iter().copied()).collect();
    Ok((Tensor::from_vec(values, dims, device)?, labels))
}
