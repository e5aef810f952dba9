//! Max pooling as a `CustomOp1` with a correct backward (route to the argmax).

use super::f32_slice;
use crate::kernels::pool::{max_pool, max_pool_backward, max_pool_values, PoolGeometry};
use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};

#[derive(Debug, Clone)]
pub(crate) struct MaxPoolOp {
    pub geom: PoolGeometry,
    pub planes: usize,
    pub out_shape: Vec<usize>,
}

impl CustomOp1 for MaxPoolOp {
    fn name(&self) -> &'static str {
        "predify-max-pool"
    }

    // CUDA: Candle's max_pool2d (see crate::cuda).
    #[cfg(feature = "cuda")]
    fn cuda_fwd(&self, s: &candle_core::CudaStorage, l: &Layout) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        crate::cuda::max_pool_fwd(&self.geom, self.planes, &self.out_shape, s, l)
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = f32_slice(s, l, self.name())?;
        if x.len() != self.planes * self.geom.input.iter().product::<usize>() {
            candle_core::bail!("predify-max-pool: input {:?} does not match the plan", l.dims());
        }
        let y = max_pool_values(x, self.planes, &self.geom);
        Ok((CpuStorage::F32(y), Shape::from(self.out_shape.clone())))
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, g: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let xv = x.flatten_all()?.to_vec1::<f32>()?;
        let gv = g.flatten_all()?.to_vec1::<f32>()?;
        let (_, arg) = max_pool(&xv, self.planes, &self.geom);
        let dx = max_pool_backward(&gv, &arg, self.planes, &self.geom);
        Ok(Some(Tensor::from_vec(dx, x.dims(), x.device())?))
    }
}
