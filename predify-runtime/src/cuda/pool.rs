//! Max pooling on CUDA through Candle's `max_pool2d_with_stride`.

use super::bridge::{storage_of, tensor_of};
use crate::kernels::pool::PoolGeometry;
use candle_core::{CudaStorage, Layout, Shape, Tensor};

/// Pad `dim` with `left` / `right` entries of −∞ (PyTorch's implicit max-pool padding).
fn pad_neg_inf(t: &Tensor, dim: usize, left: usize, right: usize) -> candle_core::Result<Tensor> {
    if left == 0 && right == 0 {
        return Ok(t.clone());
    }
    let mut parts = Vec::with_capacity(3);
    let side = |n: usize| {
        let mut s = t.dims().to_vec();
        s[dim] = n;
        Tensor::full(f32::NEG_INFINITY, s, t.device())
    };
    if left > 0 {
        parts.push(side(left)?);
    }
    parts.push(t.clone());
    if right > 0 {
        parts.push(side(right)?);
    }
    Tensor::cat(&parts, dim)
}

/// `cuda_fwd` of the max-pool op over `[planes, input grid]`, shaped `out_shape`.
pub(crate) fn max_pool_fwd(
    geom: &PoolGeometry,
    planes: usize,
    out_shape: &[usize],
    s: &CudaStorage,
    l: &Layout,
) -> candle_core::Result<(CudaStorage, Shape)> {
    const OP: &str = "predify-max-pool";
    let g = geom;
    if g.input[0] != 1 || g.output[0] != 1 || g.kernel[0] != 1 || g.padding[0] != 0 {
        candle_core::bail!("{OP} (CUDA): 3-D pooling (input {:?}, kernel {:?}) is not available on CUDA: Candle has no max_pool3d", g.input, g.kernel);
    }
    if g.dilation[1] != 1 || g.dilation[2] != 1 {
        candle_core::bail!("{OP} (CUDA): dilated pooling (dilation {:?}, input {:?}) is not available on CUDA: Candle's max_pool2d has no dilation", &g.dilation[1..], l.dims());
    }
    let x = tensor_of(s, l, OP)?.reshape((planes, 1, g.input[1], g.input[2]))?;
    // Pad the right so that Candle's floor rule gives at least the planned output size
    // (this also covers ceil_mode), then keep exactly the planned outputs.
    let mut x = x;
    for a in 1..3 {
        let need = (g.output[a] - 1) * g.stride[a] + g.kernel[a];
        let right = need.saturating_sub(g.input[a] + g.padding[a]);
        x = pad_neg_inf(&x, a + 1, g.padding[a], right)?;
    }
    let y = x.max_pool2d_with_stride((g.kernel[1], g.kernel[2]), (g.stride[1], g.stride[2]))?;
    let y = y.narrow(2, 0, g.output[1])?.narrow(3, 0, g.output[2])?.reshape(out_shape)?;
    storage_of(&y, OP)
}
