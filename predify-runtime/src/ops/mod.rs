//! The kernels as Candle custom ops: a forward on the CPU (`cpu_fwd`) and a backward (`bwd`)
//! written with the adjoint kernels, so `Tensor::backward()` sees through convolutions,
//! transposed convolutions, max pooling and upsampling (Candle's own max-pool backward is wrong
//! and its bilinear upsample has none).
//!
//! With the `cuda` feature, the convolution (two-operand form; callers use the fused-bias form
//! on the CPU only), weight-gradient, max-pooling, upsampling and upsample-adjoint ops also have
//! a `cuda_fwd` that re-expresses them with Candle's CUDA ops (see `crate::cuda`); the
//! element-wise update steps route non-CPU tensors through plain tensor ops instead. On other
//! devices (Metal) the custom ops return Candle's "no metal implementation" error.

mod conv;
mod linear;
mod pool;
mod sgd;
mod update;
mod upsample;

pub(crate) use conv::{ConvDir, ConvOp, ConvWeightGradOp};
pub(crate) use linear::LinearOp;
pub(crate) use pool::MaxPoolOp;
pub(crate) use sgd::sgd_in_place;
pub(crate) use update::{all_finite, dots, relu_grad, scaled_error, update, update_on_cpu};
pub(crate) use upsample::{UpsampleAdjointOp, UpsampleOp};

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, Layout};

/// The f32 values of a contiguous CPU operand.
pub(crate) fn f32_slice<'a>(s: &'a CpuStorage, l: &Layout, op: &str) -> candle_core::Result<&'a [f32]> {
    let data = match s {
        CpuStorage::F32(v) => v.as_slice(),
        other => candle_core::bail!("{op}: only f32 is supported, got {:?}", other.dtype()),
    };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("{op}: operand must be contiguous"),
    }
}

/// The f32 values of an in-place op's contiguous destination and of its same-sized source.
pub(crate) fn f32_in_place<'a, 'b>(s1: &'a mut CpuStorage, l1: &Layout, s2: &'b CpuStorage, l2: &Layout, op: &str) -> candle_core::Result<(&'a mut [f32], &'b [f32])> {
    let src = f32_slice(s2, l2, op)?;
    let CpuStorage::F32(data) = s1 else {
        candle_core::bail!("{op}: only f32 is supported");
    };
    let Some((a, b)) = l1.contiguous_offsets() else {
        candle_core::bail!("{op}: destination must be contiguous");
    };
    let dst = &mut data[a..b];
    if dst.len() != src.len() {
        candle_core::bail!("{op}: {:?} and {:?} differ in size", l1.dims(), l2.dims());
    }
    Ok((dst, src))
}
