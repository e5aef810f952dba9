//! Nearest / multilinear upsampling as a `CustomOp1` whose backward is the exact adjoint.

use super::f32_slice;
use crate::kernels::upsample::{interpolate, interpolate_adjoint, AxisMap};
use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};

#[derive(Debug, Clone)]
pub(crate) struct UpsampleOp {
    pub outer: usize,
    pub in_grid: [usize; 3],
    pub maps: [AxisMap; 3],
    pub out_shape: Vec<usize>,
}

impl CustomOp1 for UpsampleOp {
    fn name(&self) -> &'static str {
        "predify-upsample"
    }

    // CUDA: gathers with the same interpolation maps (see crate::cuda).
    #[cfg(feature = "cuda")]
    fn cuda_fwd(&self, s: &candle_core::CudaStorage, l: &Layout) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        crate::cuda::upsample_fwd(self.outer, self.in_grid, &self.maps, &self.out_shape, s, l)
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = f32_slice(s, l, self.name())?;
        if x.len() != self.outer * self.in_grid.iter().product::<usize>() {
            candle_core::bail!("predify-upsample: input {:?} does not match the plan", l.dims());
        }
        let y = interpolate(x, self.outer, self.in_grid, &self.maps);
        Ok((CpuStorage::F32(y), Shape::from(self.out_shape.clone())))
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, g: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let op = UpsampleAdjointOp { up: self.clone(), in_shape: x.dims().to_vec() };
        Ok(Some(g.contiguous()?.apply_op1_no_bwd(&op)?))
    }
}

/// The adjoint of an [`UpsampleOp`]: maps an output gradient back to the input's shape.
#[derive(Debug, Clone)]
pub(crate) struct UpsampleAdjointOp {
    pub up: UpsampleOp,
    pub in_shape: Vec<usize>,
}

impl CustomOp1 for UpsampleAdjointOp {
    fn name(&self) -> &'static str {
        "predify-upsample-adjoint"
    }

    // CUDA: weighted scatter-adds with the same maps (see crate::cuda).
    #[cfg(feature = "cuda")]
    fn cuda_fwd(&self, s: &candle_core::CudaStorage, l: &Layout) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        crate::cuda::upsample_adjoint_fwd(self.up.outer, self.up.in_grid, &self.up.maps, &self.in_shape, s, l)
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let g = f32_slice(s, l, self.name())?;
        if g.len() != self.up.out_shape.iter().product::<usize>() {
            candle_core::bail!("predify-upsample-adjoint: gradient {:?} does not match {:?}", l.dims(), self.up.out_shape);
        }
        let dx = interpolate_adjoint(g, self.up.outer, self.up.in_grid, &self.up.maps);
        Ok((CpuStorage::F32(dx), Shape::from(self.in_shape.clone())))
    }
}
