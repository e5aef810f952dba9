//! `Upsample` (nearest, bilinear, trilinear) with PyTorch's index arithmetic, and its adjoint.

use super::{join_nc, split_nc};
use crate::error::{shape_err, usage, Result};
use crate::kernels::upsample::AxisMap;
use crate::ops::{UpsampleAdjointOp, UpsampleOp};
use candle_core::Tensor;
use predify_spec::{UpsampleMode, UpsampleSpec};

/// An upsampling layer; parameter-free.
#[derive(Debug, Clone)]
pub struct Upsample {
    spec: UpsampleSpec,
    name: String,
}

impl Upsample {
    /// Build from its description.
    pub fn new(spec: UpsampleSpec, name: &str) -> Self {
        Self { spec, name: name.to_string() }
    }

    /// The layer's description.
    pub fn spec(&self) -> &UpsampleSpec {
        &self.spec
    }

    fn dims_for(&self, rank: usize) -> Result<usize> {
        let dims = rank.saturating_sub(2);
        match (self.spec.mode, dims) {
            (UpsampleMode::Bilinear, 2) | (UpsampleMode::Trilinear, 3) | (UpsampleMode::Nearest, 1..=3) => Ok(dims),
            (mode, _) => usage(format!("{}: mode {mode:?} does not apply to a {rank}-D input", self.name)),
        }
    }

    /// The per-axis maps and the output shape for an input shape.
    fn plan(&self, shape: &[usize]) -> Result<(usize, [usize; 3], [AxisMap; 3], Vec<usize>)> {
        let dims = self.dims_for(shape.len())?;
        let (n, c, sp) = split_nc(shape, dims, &format!("{} input", self.name))?;
        let off = 3 - dims;
        let mut out = sp;
        let sizes = self.spec.size.as_ref().map(|s| s.for_dims(dims));
        let scales = self.spec.scale_factor.as_ref().map(|s| s.for_dims(dims));
        let mut axis_scales = [None; 3];
        for a in 0..dims {
            let input = sp[off + a];
            let (output, scale) = match (&sizes, &scales) {
                (Some(Some(sz)), _) => (sz[a], None),
                (None, Some(Some(sc))) => {
                    let o = (input as f64) * sc[a];
                    if !(o.is_finite() && o < usize::MAX as f64) {
                        return usage(format!("{}: scale factor {} of axis {a} overflows for input {shape:?}", self.name, sc[a]));
                    }
                    (o.floor() as usize, Some(sc[a]))
                }
                _ => return usage(format!("{}: size/scale_factor does not match {dims} spatial dims", self.name)),
            };
            if output == 0 {
                return usage(format!("{}: output size 0 on axis {a} for input {shape:?}", self.name));
            }
            out[off + a] = output;
            axis_scales[off + a] = scale;
        }
        // The maps below hold one entry per output index: check the output's size first.
        super::check_sample_elements(&[&[c][..], &out[..]].concat(), &format!("{} output", self.name))?;
        let mut maps = [AxisMap::identity(sp[0]), AxisMap::identity(sp[1]), AxisMap::identity(sp[2])];
        let align = self.spec.align_corners.unwrap_or(false);
        for a in off..3 {
            maps[a] = match self.spec.mode {
                UpsampleMode::Nearest => AxisMap::nearest(sp[a], out[a], axis_scales[a]),
                _ => AxisMap::linear(sp[a], out[a], axis_scales[a], align),
            };
        }
        Ok((n * c, sp, maps, join_nc(n, c, out, dims)))
    }

    /// The per-axis interpolation maps (over three lifted axes) and the output shape.
    pub(crate) fn axis_maps(&self, shape: &[usize]) -> Result<([AxisMap; 3], Vec<usize>)> {
        let (_, _, maps, out) = self.plan(shape)?;
        Ok((maps, out))
    }

    /// Output shape for an input shape.
    pub fn output_shape(&self, shape: &[usize]) -> Result<Vec<usize>> {
        Ok(self.plan(shape)?.3)
    }

    /// Forward pass.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (outer, in_grid, maps, out_shape) = self.plan(x.dims())?;
        Ok(x.contiguous()?.apply_op1(UpsampleOp { outer, in_grid, maps, out_shape })?)
    }

    /// The adjoint w.r.t. the input (shape `in_shape`) of an output gradient `g`.
    pub fn input_grad(&self, in_shape: &[usize], g: &Tensor) -> Result<Tensor> {
        let (outer, in_grid, maps, out_shape) = self.plan(in_shape)?;
        if g.dims() != out_shape.as_slice() {
            return shape_err(format!("{} output gradient", self.name), format!("{out_shape:?}"), g.dims());
        }
        let op = UpsampleAdjointOp { up: UpsampleOp { outer, in_grid, maps, out_shape }, in_shape: in_shape.to_vec() };
        Ok(g.contiguous()?.apply_op1_no_bwd(&op)?)
    }
}
