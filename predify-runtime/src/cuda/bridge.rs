//! Moving custom-op operands between borrowed CUDA storage and tensors.

use candle_core::backend::{BackendDevice, BackendStorage};
use candle_core::op::BackpropOp;
use candle_core::{CudaStorage, DType, Layout, Shape, Storage, Tensor};

/// A tensor holding a contiguous copy of a `cuda_fwd` operand (Candle's CUDA ops are public on
/// tensors only, and a tensor must own its storage).
pub(crate) fn tensor_of(s: &CudaStorage, l: &Layout, op: &str) -> candle_core::Result<Tensor> {
    if s.dtype() != DType::F32 {
        candle_core::bail!("{op} (CUDA): only f32 is supported, got {:?} for an operand of shape {:?}", s.dtype(), l.dims());
    }
    // SAFETY: every element is written by the copy right below.
    let mut dst = unsafe { s.device().alloc_uninit(l.shape(), DType::F32)? };
    s.copy_strided_src(&mut dst, 0, l)?;
    Ok(Tensor::from_storage(Storage::Cuda(dst), l.shape().clone(), BackpropOp::none(), false))
}

/// A contiguous copy of a CUDA tensor's values as the storage a `cuda_fwd` returns.
pub(crate) fn storage_of(t: &Tensor, op: &str) -> candle_core::Result<(CudaStorage, Shape)> {
    let (st, l) = t.storage_and_layout();
    match &*st {
        Storage::Cuda(c) => {
            // SAFETY: every element is written by the copy right below.
            let mut dst = unsafe { c.device().alloc_uninit(l.shape(), c.dtype())? };
            c.copy_strided_src(&mut dst, 0, l)?;
            Ok((dst, l.shape().clone()))
        }
        _ => candle_core::bail!("{op} (CUDA): the result of shape {:?} is not on a CUDA device", l.dims()),
    }
}
