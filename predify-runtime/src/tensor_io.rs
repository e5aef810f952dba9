//! Moving data between Candle tensors and the slice kernels.

use crate::error::{Error, Result};
use candle_core::{DType, Device, Tensor};

/// The values of an f32 tensor in row-major order.
pub fn to_vec(t: &Tensor, context: &str) -> Result<Vec<f32>> {
    if t.dtype() != DType::F32 {
        return Err(Error::DType { context: context.to_string(), got: t.dtype() });
    }
    Ok(t.flatten_all()?.to_vec1::<f32>()?)
}

/// A tensor of the given shape from row-major f32 values.
pub fn from_vec(v: Vec<f32>, shape: &[usize], device: &Device) -> Result<Tensor> {
    Ok(Tensor::from_vec(v, shape, device)?)
}

/// Whether every value is finite.
pub fn all_finite(t: &Tensor) -> Result<bool> {
    // Σ|x| is finite iff no element is NaN/inf (barring overflow of huge finite sums, which is
    // itself a divergence worth reporting).
    let s = t.abs()?.sum_all()?.to_dtype(DType::F64)?.to_scalar::<f64>()?;
    Ok(s.is_finite())
}
