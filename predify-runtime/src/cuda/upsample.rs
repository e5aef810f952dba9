//! Nearest / linear upsampling on CUDA: per axis, two gathers weighted by the CPU kernel's maps.

use super::bridge::{storage_of, tensor_of};
use crate::kernels::upsample::AxisMap;
use candle_core::{CudaStorage, Layout, Shape, Tensor};

fn is_identity(m: &AxisMap, len: usize) -> bool {
    m.input == len && m.output() == len && m.i0.iter().enumerate().all(|(o, &i)| i == o) && m.w1.iter().all(|&w| w == 0.0)
}

/// One axis's map on the device: the two source indices (u32) and their weights, the weights
/// shaped to broadcast along `axis` of an `[outer, D, H, W]` tensor.
fn axis_tensors(m: &AxisMap, axis: usize, dev: &candle_core::Device, op: &str) -> candle_core::Result<[Tensor; 4]> {
    let n = m.output();
    let index = |v: &[usize]| -> candle_core::Result<Tensor> {
        let v = v.iter().map(|&i| u32::try_from(i).map_err(|_| candle_core::Error::Msg(format!("{op} (CUDA): index {i} too large")))).collect::<candle_core::Result<Vec<u32>>>()?;
        Tensor::from_vec(v, n, dev)
    };
    let mut wshape = [1usize; 4];
    wshape[axis + 1] = n;
    Ok([index(&m.i0)?, index(&m.i1)?, Tensor::from_slice(&m.w0, &wshape[..], dev)?, Tensor::from_slice(&m.w1, &wshape[..], dev)?])
}

/// `cuda_fwd` of the upsample op over `[outer, D, H, W]`, shaped `out_shape`.
///
/// `out[o] = w0[o]·x[i0[o]] + w1[o]·x[i1[o]]` along each axis, last axis first, exactly as the
/// CPU kernel does, so nearest, bilinear and trilinear (any align_corners / scale) agree with it.
pub(crate) fn upsample_fwd(
    outer: usize,
    in_grid: [usize; 3],
    maps: &[AxisMap; 3],
    out_shape: &[usize],
    s: &CudaStorage,
    l: &Layout,
) -> candle_core::Result<(CudaStorage, Shape)> {
    const OP: &str = "predify-upsample";
    if l.shape().elem_count() != outer * in_grid.iter().product::<usize>() {
        candle_core::bail!("{OP} (CUDA): input {:?} does not match the planned grid {in_grid:?}", l.dims());
    }
    let mut x = tensor_of(s, l, OP)?.reshape((outer, in_grid[0], in_grid[1], in_grid[2]))?;
    let dev = x.device().clone();
    for axis in (0..3).rev() {
        let m = &maps[axis];
        if is_identity(m, x.dim(axis + 1)?) {
            continue;
        }
        let [i0, i1, w0, w1] = axis_tensors(m, axis, &dev, OP)?;
        let a = x.index_select(&i0, axis + 1)?.broadcast_mul(&w0)?;
        let b = x.index_select(&i1, axis + 1)?.broadcast_mul(&w1)?;
        x = (a + b)?;
    }
    storage_of(&x.reshape(out_shape)?, OP)
}

/// `cuda_fwd` of the upsample adjoint: maps an output gradient (`[outer, output grid]`) back to
/// the input grid, shaped `in_shape`; per axis (first axis first, as the CPU adjoint) two
/// weighted scatter-adds with the same maps.
pub(crate) fn upsample_adjoint_fwd(
    outer: usize,
    in_grid: [usize; 3],
    maps: &[AxisMap; 3],
    in_shape: &[usize],
    s: &CudaStorage,
    l: &Layout,
) -> candle_core::Result<(CudaStorage, Shape)> {
    const OP: &str = "predify-upsample-adjoint";
    let out_grid = [maps[0].output(), maps[1].output(), maps[2].output()];
    if l.shape().elem_count() != outer * out_grid.iter().product::<usize>() {
        candle_core::bail!("{OP} (CUDA): gradient {:?} does not match the planned output grid {out_grid:?}", l.dims());
    }
    let mut g = tensor_of(s, l, OP)?.reshape((outer, out_grid[0], out_grid[1], out_grid[2]))?;
    let dev = g.device().clone();
    for axis in 0..3 {
        let m = &maps[axis];
        if is_identity(m, in_grid[axis]) {
            continue;
        }
        let [i0, i1, w0, w1] = axis_tensors(m, axis, &dev, OP)?;
        let mut zshape = g.dims().to_vec();
        zshape[axis + 1] = m.input;
        let acc = Tensor::zeros(zshape, g.dtype(), &dev)?;
        let acc = acc.index_add(&i0, &g.broadcast_mul(&w0)?, axis + 1)?;
        g = acc.index_add(&i1, &g.broadcast_mul(&w1)?, axis + 1)?;
    }
    storage_of(&g.reshape(in_shape)?, OP)
}
