//! The kernels as Candle custom ops: a forward on the CPU (`cpu_fwd`) and a backward (`bwd`)
//! written with the adjoint kernels, so `Tensor::backward()` sees through convolutions,
//! transposed convolutions, max pooling and upsampling (Candle's own max-pool backward is wrong
//! and its bilinear upsample has none).
//!
//! Other devices get Candle's "no cuda implementation" error from these ops for now.

mod conv;
mod pool;
mod update;
mod upsample;

pub(crate) use conv::{ConvDir, ConvOp, ConvWeightGradOp};
pub(crate) use pool::MaxPoolOp;
pub(crate) use update::{all_finite, scaled_error, update, UpdateCoeffs};
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
