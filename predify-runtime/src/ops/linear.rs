//! A fully connected layer's product `x · Wᵀ` as a `CustomOp2` (input, weight) on the runtime's
//! GEMM, which splits it across the rayon threads (Candle's runs on its own pool, which the
//! binaries leave one thread: VGG16's 411 MB first classifier layer took twice as long at
//! batch 1).

use super::f32_slice;
use crate::kernels::gemm::{matmul, MatRef};
use crate::kernels::zeroed::zeroed;
use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};

/// `y = x · Wᵀ` for `x`: `[n, in]` and `W`: `[out, in]`, both contiguous f32 on the CPU.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LinearOp;

impl CustomOp2 for LinearOp {
    fn name(&self) -> &'static str {
        "predify-linear"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, w) = (f32_slice(s1, l1, self.name())?, f32_slice(s2, l2, self.name())?);
        let (&[n, inf], &[out, winf]) = (l1.dims(), l2.dims()) else {
            candle_core::bail!("predify-linear: operands {:?} and {:?} are not matrices", l1.dims(), l2.dims());
        };
        if inf != winf {
            candle_core::bail!("predify-linear: input {:?} does not match the weight {:?}", l1.dims(), l2.dims());
        }
        let mut y = zeroed(n * out);
        matmul(&mut y, MatRef::new(x, n, inf), MatRef::new(w, out, inf).t(), false);
        Ok((CpuStorage::F32(y), Shape::from((n, out))))
    }

    fn bwd(&self, x: &Tensor, w: &Tensor, _res: &Tensor, g: &Tensor) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        Ok((Some(g.matmul(w)?), Some(g.t()?.matmul(x)?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, Var};

    #[test]
    fn equals_candles_product_forward_and_backward() {
        let dev = &Device::Cpu;
        // One row (the threads split the output columns) and a few (the GEMM's general path).
        for n in [1, 3] {
            let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (n, 37), dev).unwrap()).unwrap();
            let w = Var::from_tensor(&Tensor::randn(0f32, 1.0, (130, 37), dev).unwrap()).unwrap();
            let ours = x.as_tensor().apply_op2(w.as_tensor(), LinearOp).unwrap();
            let candle = x.as_tensor().matmul(&w.as_tensor().t().unwrap()).unwrap();
            let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let close = |a: Vec<f32>, b: Vec<f32>| a.iter().zip(&b).all(|(p, q)| (p - q).abs() <= 1e-5 * (1.0 + q.abs())) && a.len() == b.len();
            assert!(close(flat(&ours), flat(&candle)), "n = {n}: forward");
            let wgt = Tensor::randn(0f32, 1.0, (n, 130), dev).unwrap();
            let grads = |y: &Tensor| {
                let g = (y * &wgt).unwrap().sum_all().unwrap().backward().unwrap();
                (flat(g.get(&x).unwrap()), flat(g.get(&w).unwrap()))
            };
            let ((gx, gw), (cx, cw)) = (grads(&ours), grads(&candle));
            assert!(close(gx, cx) && close(gw, cw), "n = {n}: gradients");
        }
        let bad = Tensor::zeros((2, 5), DType::F32, dev).unwrap().apply_op2(&Tensor::zeros((3, 4), DType::F32, dev).unwrap(), LinearOp);
        assert!(bad.is_err());
    }
}
