//! CPU kernels on plain `f32` slices, the building blocks of predictors and backbones.
//!
//! Candle 0.11 has no conv3d, no per-axis stride/padding, no grouped transposed convolution and
//! no bilinear backward; these kernels cover all of them with one N-d (N ≤ 3) formulation.
//! Every spatial tensor is handled as 3-D (`[D, H, W]`); 2-D data simply has `D = 1`.

pub mod conv;
pub mod conv_batched;
pub mod direct;
pub mod fft;
pub mod fft_conv;
pub mod gemm;
pub mod geometry;
pub mod im2col;
pub mod isa;
pub mod phase;
pub mod plan;
pub mod pool;
pub mod scratch;
mod sync_ptr;
#[cfg(test)]
mod test_data;
mod tile_io;
pub mod transform_cache;
pub mod upsample;
pub mod winograd;
pub mod winograd_conv;
pub mod zeroed;

pub use geometry::ConvGeometry;
