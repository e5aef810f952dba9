//! Convolutions on CUDA through Candle's `conv2d` / `conv_transpose2d`.

use super::bridge::{storage_of, tensor_of};
use crate::kernels::conv::ConvShape;
use crate::ops::ConvDir;
use candle_core::{CudaStorage, DType, Layout, Shape, Tensor, Var};

/// The two spatial axes Candle's 2-D ops see, with one stride and one dilation for both.
struct Plan2d {
    big: [usize; 2],
    small: [usize; 2],
    kernel: [usize; 2],
    padding: [usize; 2],
    stride: usize,
    dilation: usize,
}

/// Whether axis `a` of the lifted geometry is a dummy one (size 1 everywhere, so its stride and
/// dilation do not matter).
fn trivial(shape: &ConvShape, a: usize) -> bool {
    let g = &shape.geom;
    g.big[a] == 1 && g.small[a] == 1 && g.kernel[a] == 1 && g.padding[a] == 0
}

/// Map the lifted 3-axis geometry onto Candle's 2-D ops, or say why it cannot be.
fn plan(shape: &ConvShape, op: &str) -> candle_core::Result<Plan2d> {
    let g = &shape.geom;
    if !trivial(shape, 0) {
        candle_core::bail!(
            "{op} (CUDA): 3-D convolution (big grid {:?}, kernel {:?}) is not available on CUDA: Candle has no conv3d",
            g.big, g.kernel
        );
    }
    // One stride / dilation for both axes; a dummy axis takes the other's.
    let pick = |v: [usize; 3], what: &str| -> candle_core::Result<usize> {
        match (trivial(shape, 1), trivial(shape, 2)) {
            (true, _) => Ok(v[2]),
            (_, true) => Ok(v[1]),
            _ if v[1] == v[2] => Ok(v[1]),
            _ => candle_core::bail!(
                "{op} (CUDA): different {what}s per axis ({:?}, kernel {:?}, big grid {:?}) are not available on CUDA: Candle's conv2d takes one {what}",
                &v[1..], &g.kernel[1..], &g.big[1..]
            ),
        }
    };
    Ok(Plan2d {
        big: [g.big[1], g.big[2]],
        small: [g.small[1], g.small[2]],
        kernel: [g.kernel[1], g.kernel[2]],
        padding: [g.padding[1], g.padding[2]],
        stride: pick(g.stride, "stride")?,
        dilation: pick(g.dilation, "dilation")?,
    })
}

/// Keep `len` entries of `dim` starting at `start`, zero-filling what lies past the end.
fn crop(t: &Tensor, dim: usize, start: usize, len: usize) -> candle_core::Result<Tensor> {
    let have = t.dim(dim)?;
    let start = start.min(have);
    let avail = (have - start).min(len);
    let t = t.narrow(dim, start, avail)?;
    if avail < len {
        t.pad_with_zeros(dim, 0, len - avail)
    } else {
        Ok(t)
    }
}

/// Convolution of a big-grid `x` (`[N, big_channels, …]`) with `w` (`[small, big/groups, k…]`).
fn big_to_small(p: &Plan2d, shape: &ConvShape, batch: usize, x: &Tensor, w: &Tensor) -> candle_core::Result<Tensor> {
    let groups = shape.groups;
    let w = w.reshape((shape.small_channels, shape.big_channels / groups, p.kernel[0], p.kernel[1]))?;
    let x = x.reshape((batch, shape.big_channels, p.big[0], p.big[1]))?;
    // Padding per axis by hand, so different paddings per axis work too.
    let x = x.pad_with_zeros(2, p.padding[0], p.padding[0])?.pad_with_zeros(3, p.padding[1], p.padding[1])?;
    let y = x.conv2d(&w, 0, p.stride, p.dilation, groups)?;
    crop(&crop(&y, 2, 0, p.small[0])?, 3, 0, p.small[1])
}

/// Transposed convolution of a small-grid `x` (`[N, small_channels, …]`) with `w`
/// (`[small, big/groups, k…]`) onto the big grid.
fn small_to_big(p: &Plan2d, shape: &ConvShape, batch: usize, x: &Tensor, w: &Tensor) -> candle_core::Result<Tensor> {
    let groups = shape.groups;
    let w = w.reshape((shape.small_channels, shape.big_channels / groups, p.kernel[0], p.kernel[1]))?;
    let x = x.reshape((batch, shape.small_channels, p.small[0], p.small[1]))?;
    // Candle's conv_transpose2d has no groups: one call per group, concatenated.
    let per = shape.small_channels / groups;
    let full = if groups == 1 {
        x.conv_transpose2d(&w, 0, 0, p.stride, p.dilation)?
    } else {
        let parts = (0..groups)
            .map(|g| {
                let xg = x.narrow(1, g * per, per)?.contiguous()?;
                let wg = w.narrow(0, g * per, per)?.contiguous()?;
                xg.conv_transpose2d(&wg, 0, 0, p.stride, p.dilation)
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        Tensor::cat(&parts, 1)?
    };
    // Unpadded output; padding crops both ends, output_padding appends zeros (only the bias,
    // added by the layer, reaches those positions).
    crop(&crop(&full, 2, p.padding[0], p.big[0])?, 3, p.padding[1], p.big[1])
}

fn run(shape: &ConvShape, dir: ConvDir, batch: usize, x: &Tensor, w: &Tensor, op: &str) -> candle_core::Result<Tensor> {
    let p = plan(shape, op)?;
    match dir {
        ConvDir::BigToSmall => big_to_small(&p, shape, batch, x, w),
        ConvDir::SmallToBig => small_to_big(&p, shape, batch, x, w),
    }
}

/// `cuda_fwd` of the convolution op: `out = op(x, w)` in direction `dir`, shaped `out_shape`.
pub(crate) fn conv_fwd(
    shape: &ConvShape,
    dir: ConvDir,
    batch: usize,
    out_shape: &[usize],
    s1: &CudaStorage,
    l1: &Layout,
    s2: &CudaStorage,
    l2: &Layout,
) -> candle_core::Result<(CudaStorage, Shape)> {
    const OP: &str = "predify-conv";
    if l2.shape().elem_count() != shape.weight_len() {
        candle_core::bail!("{OP} (CUDA): weight {:?} does not match the planned layer (input {:?})", l2.dims(), l1.dims());
    }
    let x = tensor_of(s1, l1, OP)?;
    let w = tensor_of(s2, l2, OP)?;
    let y = run(shape, dir, batch, &x, &w, OP)?.reshape(out_shape)?;
    storage_of(&y, OP)
}

/// `cuda_fwd` of the weight-gradient op: `dW = ∂⟨conv(big, W), small⟩/∂W` over (small, big),
/// through Candle's autograd (the convolution is linear in W, so W = 0 serves).
pub(crate) fn conv_weight_grad_fwd(
    shape: &ConvShape,
    batch: usize,
    weight_shape: &[usize],
    s1: &CudaStorage,
    l1: &Layout,
    s2: &CudaStorage,
    l2: &Layout,
) -> candle_core::Result<(CudaStorage, Shape)> {
    const OP: &str = "predify-conv-weight-grad";
    let small = tensor_of(s1, l1, OP)?;
    let big = tensor_of(s2, l2, OP)?;
    let w = Var::zeros(weight_shape, DType::F32, big.device())?;
    let y = run(shape, ConvDir::BigToSmall, batch, &big, w.as_tensor(), OP)?;
    if y.elem_count() != small.elem_count() {
        candle_core::bail!("{OP} (CUDA): output gradient {:?} does not match the layer's output {:?}", l1.dims(), y.dims());
    }
    let grads = (&y * small.reshape(y.dims())?)?.sum_all()?.backward()?;
    let Some(dw) = grads.get(w.as_tensor()) else {
        candle_core::bail!("{OP} (CUDA): Candle returned no kernel gradient for weight {weight_shape:?}, big grid {:?}", l2.dims());
    };
    storage_of(&dw.reshape(weight_shape)?, OP)
}
