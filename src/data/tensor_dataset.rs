//! A data set held in memory: values and labels given by the caller (synthetic data, a set
//! decoded elsewhere, tests).

use super::{Dataset, Error, Result};
use candle_core::{DType, Tensor};

/// `n` items of one shape with their labels, in memory (f32, row-major).
///
/// ```
/// use predify::candle_core::{Device, Tensor};
/// use predify::data::{gather, Dataset, TensorDataset};
/// let images = Tensor::rand(0f32, 1f32, (6, 3, 8, 8), &Device::Cpu)?;
/// let set = TensorDataset::new(&images, vec![0, 1, 2, 0, 1, 2])?;
/// assert_eq!((set.len(), set.item_shape()), (6, &[3usize, 8, 8][..]));
/// let (x, y) = gather(&set, &[5, 0], &Device::Cpu)?;
/// assert_eq!((x.dims(), y), (&[2usize, 3, 8, 8][..], vec![2, 0]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct TensorDataset {
    values: Vec<f32>,
    item_shape: Vec<usize>,
    labels: Vec<u32>,
}

impl TensorDataset {
    /// The items of `items` (`[n, ..item_shape]`, any float or integer dtype; converted to f32
    /// as they are, not rescaled) with `n` labels.
    pub fn new(items: &Tensor, labels: Vec<u32>) -> Result<Self> {
        let dims = items.dims();
        let Some((_, item_shape)) = dims.split_first() else {
            return Err(Error::Invalid("a data set tensor needs a leading item axis, found a scalar".into()));
        };
        let values = items.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        Self::from_vec(values, item_shape.to_vec(), labels)
    }

    /// `labels.len()` items of shape `item_shape`, their values one after the other in `values`.
    pub fn from_vec(values: Vec<f32>, item_shape: Vec<usize>, labels: Vec<u32>) -> Result<Self> {
        let per: usize = item_shape.iter().product();
        if per == 0 {
            return Err(Error::Invalid(format!("items of shape {item_shape:?} hold no values")));
        }
        if values.len() != labels.len() * per {
            return Err(Error::Invalid(format!(
                "{} labels of items of shape {item_shape:?} need {} values, found {}",
                labels.len(),
                labels.len() * per,
                values.len()
            )));
        }
        Ok(Self { values, item_shape, labels })
    }

    /// All values, item after item.
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// The labels.
    pub fn labels(&self) -> &[u32] {
        &self.labels
    }
}

impl Dataset for TensorDataset {
    fn len(&self) -> usize {
        self.labels.len()
    }
    fn item_shape(&self) -> &[usize] {
        &self.item_shape
    }
    fn read_item(&self, index: usize, out: &mut [f32]) -> Result<()> {
        let per = out.len();
        out.copy_from_slice(&self.values[index * per..(index + 1) * per]);
        Ok(())
    }
    fn label(&self, index: usize) -> u32 {
        self.labels[index]
    }
}
