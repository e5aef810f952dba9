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
        let gv = g.flatten_all()?.to_vec1::<f32>()?;
        let dx = interpolate_adjoint(&gv, self.outer, self.in_grid, &self.maps);
        Ok(Some(Tensor::from_vec(dx, x.dims(), x.device())?))
    }
}
