//! Convolution / transposed convolution as a `CustomOp2` (input, weight).

use super::f32_slice;
use crate::kernels::conv::{big_to_small, small_to_big, weight_grad, ConvShape};
use crate::kernels::phase;
use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};

/// Which way the op maps between the big and small grids (see [`crate::kernels::conv`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConvDir {
    /// Convolution forward / transposed-convolution adjoint.
    BigToSmall,
    /// Transposed-convolution forward / convolution adjoint.
    SmallToBig,
}

impl ConvDir {
    fn flip(self) -> Self {
        match self {
            ConvDir::BigToSmall => ConvDir::SmallToBig,
            ConvDir::SmallToBig => ConvDir::BigToSmall,
        }
    }
}

/// `out = op(x, w)` without bias; `out_shape` is fixed by the caller (it disambiguates
/// output_padding for adjoints).
#[derive(Debug, Clone)]
pub(crate) struct ConvOp {
    pub shape: ConvShape,
    pub dir: ConvDir,
    pub batch: usize,
    pub in_shape: Vec<usize>,
    pub out_shape: Vec<usize>,
}

impl CustomOp2 for ConvOp {
    fn name(&self) -> &'static str {
        "predify-conv"
    }

    // CUDA: Candle's own conv2d / conv_transpose2d (see crate::cuda).
    #[cfg(feature = "cuda")]
    fn cuda_fwd(&self, s1: &candle_core::CudaStorage, l1: &Layout, s2: &candle_core::CudaStorage, l2: &Layout) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        crate::cuda::conv_fwd(&self.shape, self.dir, self.batch, &self.out_shape, s1, l1, s2, l2)
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = f32_slice(s1, l1, self.name())?;
        let w = f32_slice(s2, l2, self.name())?;
        if l1.dims() != self.in_shape.as_slice() || w.len() != self.shape.weight_len() {
            candle_core::bail!("predify-conv: operands {:?} / {:?} do not match the planned {:?}", l1.dims(), l2.dims(), self.in_shape);
        }
        let mut out = vec![0f32; self.out_shape.iter().product()];
        // Strided layers go through the stride-phase decomposition (same result, far less
        // scattered memory traffic); the rest through im2col/col2im + GEMM.
        let phased = phase::applicable(&self.shape.geom);
        match (self.dir, phased) {
            (ConvDir::BigToSmall, true) => phase::big_to_small_phased(x, self.batch, w, &self.shape, &mut out),
            (ConvDir::BigToSmall, false) => big_to_small(x, self.batch, w, &self.shape, &mut out),
            (ConvDir::SmallToBig, true) => phase::small_to_big(x, self.batch, w, &self.shape, &mut out),
            (ConvDir::SmallToBig, false) => small_to_big(x, self.batch, w, &self.shape, &mut out),
        }
        Ok((CpuStorage::F32(out), Shape::from(self.out_shape.clone())))
    }

    fn bwd(&self, x: &Tensor, w: &Tensor, _res: &Tensor, g: &Tensor) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let g = g.contiguous()?;
        let back = ConvOp {
            shape: self.shape,
            dir: self.dir.flip(),
            batch: self.batch,
            in_shape: self.out_shape.clone(),
            out_shape: self.in_shape.clone(),
        };
        let dx = g.apply_op2_no_bwd(&w.contiguous()?, &back)?;
        // Weight gradients only where someone asked for them (trainable weights).
        let dw = if w.track_op() {
            let (small, big) = match self.dir {
                ConvDir::BigToSmall => (g.clone(), x.contiguous()?),
                ConvDir::SmallToBig => (x.contiguous()?, g.clone()),
            };
            let op = ConvWeightGradOp { shape: self.shape, batch: self.batch, weight_shape: w.dims().to_vec() };
            Some(small.apply_op2_no_bwd(&big, &op)?)
        } else {
            None
        };
        Ok((Some(dx), dw))
    }
}

/// `dW = Σ_n small[n] · im2col(big[n])ᵀ` as an op over (small, big).
#[derive(Debug, Clone)]
pub(crate) struct ConvWeightGradOp {
    pub shape: ConvShape,
    pub batch: usize,
    pub weight_shape: Vec<usize>,
}

impl CustomOp2 for ConvWeightGradOp {
    fn name(&self) -> &'static str {
        "predify-conv-weight-grad"
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(&self, s1: &candle_core::CudaStorage, l1: &Layout, s2: &candle_core::CudaStorage, l2: &Layout) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        crate::cuda::conv_weight_grad_fwd(&self.shape, self.batch, &self.weight_shape, s1, l1, s2, l2)
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let small = f32_slice(s1, l1, self.name())?;
        let big = f32_slice(s2, l2, self.name())?;
        let g = &self.shape.geom;
        if small.len() != self.batch * self.shape.small_channels * g.small_len() || big.len() != self.batch * self.shape.big_channels * g.big_len() {
            candle_core::bail!("predify-conv-weight-grad: operands {:?} / {:?} do not match the plan", l1.dims(), l2.dims());
        }
        let mut dw = vec![0f32; self.shape.weight_len()];
        weight_grad(small, big, self.batch, &self.shape, &mut dw);
        Ok((CpuStorage::F32(dw), Shape::from(self.weight_shape.clone())))
    }
}
