//! The CUDA path (feature `cuda`): the runtime's custom ops on Candle's CUDA backend, and a
//! fused CUDA kernel for the PCoder state update.
//!
//! The CPU kernels (`crate::kernels`) have no GPU counterpart. On a CUDA device each custom op's
//! `cuda_fwd` re-expresses the operation with Candle's own CUDA ops instead:
//!
//! | op | on CUDA |
//! |---|---|
//! | convolution (big → small grid) | explicit zero padding per axis, then `conv2d` (groups included) |
//! | transposed convolution (small → big) | `conv_transpose2d` per group, then a crop/zero-fill per axis (padding, output_padding) |
//! | convolution weight gradient | Candle's autograd of the convolution above w.r.t. the kernel |
//! | max pooling | −∞ padding per axis, then `max_pool2d_with_stride` (ceil_mode through the padding) |
//! | nearest/linear upsampling | per axis, two `index_select`s weighted by the same maps as the CPU kernel |
//!
//! What Candle cannot express returns an error naming the op and the shapes: 3-D convolution
//! and pooling (a third non-trivial spatial axis), different strides or dilations per axis in a
//! convolution, dilated pooling. Backward passes of the custom ops reuse the ops themselves
//! (the adjoint of a convolution is the other direction, that of an upsample a weighted
//! `index_add` with the same maps); max pooling's backward still routes through the CPU adjoint
//! with a host round trip (correct, not fast).
//!
//! Operands reach `cuda_fwd` as borrowed storage, while Candle's CUDA ops are only public at the
//! tensor level, so [`bridge`] copies operands into tensors and the result back out (device-to-
//! device copies, small next to the convolutions they feed).
//!
//! The state update `r = β·ff + (1−β−λ)·r + λ·fb − αS·∇ε` runs as one kernel
//! ([`fused_update`], source `state_update.cu`, compiled with NVRTC on first use) instead of
//! seven elementwise tensor ops, in the CPU path's operation order so results are identical.

mod bridge;
mod conv;
mod pool;
mod update;
mod upsample;

pub(crate) use conv::{conv_fwd, conv_weight_grad_fwd};
pub(crate) use pool::max_pool_fwd;
pub(crate) use update::fused_update;
pub(crate) use upsample::upsample_fwd;
pub(crate) use upsample::upsample_adjoint_fwd;
