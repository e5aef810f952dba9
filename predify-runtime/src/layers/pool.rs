//! `MaxPool2d` / `MaxPool3d`.

use super::{join_nc, split_nc};
use crate::error::{shape_err, usage, Result};
use crate::kernels::geometry::lift3;
use crate::kernels::pool::{max_pool, max_pool_backward, PoolGeometry};
use crate::ops::MaxPoolOp;
use crate::tensor_io::{from_vec, to_vec};
use candle_core::Tensor;

/// Max pooling over 2 or 3 spatial axes, PyTorch semantics.
#[derive(Debug, Clone)]
pub struct MaxPool {
    dims: usize,
    kernel: [usize; 3],
    stride: [usize; 3],
    padding: [usize; 3],
    dilation: [usize; 3],
    ceil_mode: bool,
    name: String,
}

impl MaxPool {
    /// A pooling layer over `dims` axes; per-axis lists have `dims` entries.
    pub fn new(dims: usize, kernel: &[usize], stride: &[usize], padding: &[usize], dilation: &[usize], ceil_mode: bool, name: &str) -> Result<Self> {
        let ok = |v: &[usize]| v.len() == dims;
        if !(2..=3).contains(&dims) || !ok(kernel) || !ok(stride) || !ok(padding) || !ok(dilation) {
            return usage(format!("{name}: MaxPool{dims}d needs {dims} values per parameter"));
        }
        let l = |v: &[usize], f| lift3(v, f).unwrap_or([f; 3]);
        Ok(Self {
            dims,
            kernel: l(kernel, 1),
            stride: l(stride, 1),
            padding: l(padding, 0),
            dilation: l(dilation, 1),
            ceil_mode,
            name: name.to_string(),
        })
    }

    fn plan(&self, shape: &[usize]) -> Result<(usize, usize, PoolGeometry)> {
        let (n, c, sp) = split_nc(shape, self.dims, &format!("{} input", self.name))?;
        match PoolGeometry::new(sp, self.kernel, self.stride, self.padding, self.dilation, self.ceil_mode) {
            Some(g) => Ok((n, c, g)),
            None => shape_err(format!("{}: input too small or bad padding", self.name), "a valid pooling input", shape),
        }
    }

    /// Output shape for an input shape.
    pub fn output_shape(&self, shape: &[usize]) -> Result<Vec<usize>> {
        let (n, c, g) = self.plan(shape)?;
        Ok(join_nc(n, c, g.output, self.dims))
    }

    /// Forward pass.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (n, c, geom) = self.plan(x.dims())?;
        let op = MaxPoolOp { geom, planes: n * c, out_shape: join_nc(n, c, geom.output, self.dims) };
        Ok(x.contiguous()?.apply_op1(op)?)
    }

    /// Gradient w.r.t. the input `x` for the output gradient `g` (routes to each window's max,
    /// ties to the first maximum as PyTorch does).
    pub fn input_grad(&self, x: &Tensor, g: &Tensor) -> Result<Tensor> {
        let (n, c, geo) = self.plan(x.dims())?;
        let (_, arg) = max_pool(&to_vec(x, &self.name)?, n * c, &geo);
        let dx = max_pool_backward(&to_vec(g, &self.name)?, &arg, n * c, &geo);
        from_vec(dx, x.dims(), x.device())
    }
}
