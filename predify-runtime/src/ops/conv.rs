//! Convolution / transposed convolution as a `CustomOp2` (input, weight).

use super::f32_slice;
use crate::kernels::conv::ConvShape;
use crate::kernels::transform_cache::{CacheRef, Pin, TransformCache};
use crate::kernels::plan;
use crate::kernels::zeroed::zeroed;
use std::sync::Arc;
use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Shape, Tensor};
use rayon::prelude::*;

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
    /// The layer's FFT / Winograd transform cache (large strided layers; `None`: never those paths).
    pub transforms: Option<Arc<TransformCache>>,
    /// What the traced forward of this adjoint used, reused without a fingerprint while the
    /// cache still holds it.
    pub pin: Option<Pin>,
    /// Clamp the output at 0: a ReLU that follows the layer, as one parallel pass over the
    /// op's own output instead of a separate op with a fresh tensor (CPU only; the layer
    /// falls back to a separate ReLU elsewhere).
    pub relu: bool,
}

impl ConvOp {
    /// The CPU forward: `x`, `w` and the optional bias as slices, the output as a new buffer.
    fn cpu_run(&self, x: &[f32], xl: &Layout, w: &[f32], bias: Option<&[f32]>) -> candle_core::Result<(CpuStorage, Shape)> {
        if xl.dims() != self.in_shape.as_slice() || w.len() != self.shape.weight_len() {
            candle_core::bail!("predify-conv: operands {:?} / {} weights do not match the planned {:?}", xl.dims(), w.len(), self.in_shape);
        }
        let mut out = zeroed(self.out_shape.iter().product());
        match self.dir {
            ConvDir::BigToSmall => plan::big_to_small(x, self.batch, w, &self.shape, bias, self.cache(), &mut out),
            ConvDir::SmallToBig => plan::small_to_big(x, self.batch, w, &self.shape, bias, self.cache(), &mut out),
        }
        if self.relu {
            // Candle's `relu` (`max(v, 0)`; NaN becomes 0), in parallel blocks.
            out.par_chunks_mut(1 << 16).for_each(|c| c.iter_mut().for_each(|v| *v = v.max(0.0)));
        }
        Ok((CpuStorage::F32(out), Shape::from(self.out_shape.clone())))
    }

    fn cache(&self) -> Option<CacheRef<'_>> {
        self.transforms.as_deref().map(|cache| CacheRef { cache, pin: self.pin })
    }

    fn backward(&self, x: &Tensor, w: &Tensor, res: &Tensor, g: &Tensor) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        // Through the fused ReLU first: its mask is the same from the clamped output
        // (`y > 0` exactly where the pre-activation was).
        let g = if self.relu { crate::ops::relu_grad(res, g)? } else { g.contiguous()? };
        let back = ConvOp {
            shape: self.shape,
            dir: self.dir.flip(),
            batch: self.batch,
            in_shape: self.out_shape.clone(),
            out_shape: self.in_shape.clone(),
            transforms: self.transforms.clone(),
            pin: None,
            relu: false,
        };
        // Input gradients only where the input itself tracks gradients (a detached input, such
        // as a representation fed to a predictor being trained, needs none; the product costs
        // as much as the forward).
        let dx = if x.track_op() { Some(g.apply_op2_no_bwd(&w.contiguous()?, &back)?) } else { None };
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
        Ok((dx, dw))
    }
}

impl CustomOp2 for ConvOp {
    fn name(&self) -> &'static str {
        "predify-conv"
    }

    // CUDA: Candle's own conv2d / conv_transpose2d (see crate::cuda).
    #[cfg(feature = "cuda")]
    fn cuda_fwd(&self, s1: &candle_core::CudaStorage, l1: &Layout, s2: &candle_core::CudaStorage, l2: &Layout) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        if self.relu {
            candle_core::bail!("predify-conv: the fused ReLU is CPU-only");
        }
        crate::cuda::conv_fwd(&self.shape, self.dir, self.batch, &self.out_shape, s1, l1, s2, l2)
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        self.cpu_run(f32_slice(s1, l1, "predify-conv")?, l1, f32_slice(s2, l2, "predify-conv")?, None)
    }

    fn bwd(&self, x: &Tensor, w: &Tensor, res: &Tensor, g: &Tensor) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        self.backward(x, w, res, g)
    }
}

/// The same op with the bias as a third operand, added inside the kernel while the output is
/// still in cache (the bias is a constant: no gradient flows to it through this op).
impl CustomOp3 for ConvOp {
    fn name(&self) -> &'static str {
        "predify-conv-bias"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout, s3: &CpuStorage, l3: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let bias = f32_slice(s3, l3, "predify-conv-bias")?;
        let channels = self.out_shape.get(1).copied().unwrap_or(0);
        if bias.len() != channels {
            candle_core::bail!("predify-conv-bias: bias of {} values for {channels} output channels", bias.len());
        }
        self.cpu_run(f32_slice(s1, l1, "predify-conv")?, l1, f32_slice(s2, l2, "predify-conv")?, Some(bias))
    }

    fn bwd(&self, x: &Tensor, w: &Tensor, _b: &Tensor, res: &Tensor, g: &Tensor) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (dx, dw) = self.backward(x, w, res, g)?;
        Ok((dx, dw, None))
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
        let mut dw = zeroed(self.shape.weight_len());
        plan::weight_grad(small, big, self.batch, &self.shape, &mut dw);
        Ok((CpuStorage::F32(dw), Shape::from(self.weight_shape.clone())))
    }
}
