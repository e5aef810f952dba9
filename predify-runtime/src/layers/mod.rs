//! Layers with PyTorch semantics and weight names, built on the slice kernels.
//!
//! Each layer knows its forward pass and the adjoint of it w.r.t. its input (what the error
//! gradient and hyperparameter tuning need); layers with parameters also give their gradients.

mod activation;
mod adaptive_pool;
mod batchnorm;
mod conv;
mod linear;
mod module_impls;
mod pool;
mod upsample;

pub use activation::{Sigmoid, Silu};
pub use adaptive_pool::AdaptiveAvgPool2d;
pub use batchnorm::{BatchNorm2d, BATCH_NORM_EPS};
pub use conv::Conv;
pub use linear::Linear;
pub use module_impls::{Flatten, Relu};
pub use pool::MaxPool;
pub use upsample::Upsample;

use crate::error::{shape_err, Result};

/// A runtime error as a Candle error (Candle's own errors unwrapped), for `Module` impls.
pub(crate) fn to_candle(e: crate::Error) -> candle_core::Error {
    match e {
        crate::Error::Candle(c) => c,
        other => candle_core::Error::wrap(other),
    }
}

/// An error unless one sample of shape `per_sample` has at most
/// [`predify_spec::MAX_SAMPLE_ELEMENTS`] elements (checked arithmetic): sizes from a spec or a
/// file are checked before anything of that size is allocated.
pub(crate) fn check_sample_elements(per_sample: &[usize], context: &str) -> Result<()> {
    match per_sample.iter().try_fold(1usize, |a, &d| a.checked_mul(d)) {
        Some(n) if n <= predify_spec::MAX_SAMPLE_ELEMENTS => Ok(()),
        _ => crate::error::usage(format!(
            "{context}: one sample of shape {per_sample:?} has more than {} elements",
            predify_spec::MAX_SAMPLE_ELEMENTS
        )),
    }
}

/// An error unless every value of `t` is finite: weights from a file are checked before use
/// (a NaN would silently poison every output).
pub(crate) fn check_finite(t: &candle_core::Tensor, name: &str) -> Result<()> {
    // As contiguous f32 on the CPU the check is one pass without a sum that could overflow;
    // f32 holds every finite f16/bf16 value exactly, f64 is summed in f64.
    let t = match t.dtype() {
        candle_core::DType::F64 => t.clone(),
        _ => t.to_dtype(candle_core::DType::F32)?.contiguous()?,
    };
    if crate::ops::all_finite(&t)? {
        Ok(())
    } else {
        crate::error::usage(format!("{name}: the weights contain NaN or infinite values"))
    }
}

/// Split an activation shape `[N, C, spatial…]` with `dims` spatial axes into
/// (N, C, spatial lifted to three axes).
pub(crate) fn split_nc(shape: &[usize], dims: usize, context: &str) -> Result<(usize, usize, [usize; 3])> {
    if shape.len() != dims + 2 {
        return shape_err(context, format!("[N, C, {} spatial dims]", dims), shape);
    }
    let spatial = crate::kernels::geometry::lift3(&shape[2..], 1);
    match spatial {
        Some(s) => Ok((shape[0], shape[1], s)),
        None => shape_err(context, "1 to 3 spatial dims", shape),
    }
}

/// `[N, C]` followed by the last `dims` entries of a lifted spatial grid.
pub(crate) fn join_nc(n: usize, c: usize, spatial: [usize; 3], dims: usize) -> Vec<usize> {
    let mut v = vec![n, c];
    v.extend_from_slice(&spatial[3 - dims..]);
    v
}
