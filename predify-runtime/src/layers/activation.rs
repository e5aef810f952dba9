//! Parameter-free activations used by EfficientNet: `SiLU` and `Sigmoid`.

use candle_core::{Module, Tensor};

/// `SiLU` (swish): `x · σ(x)`, as `torch.nn.SiLU`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silu;

impl Module for Silu {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        xs.silu()
    }
}

/// The logistic sigmoid `1 / (1 + e^(−x))`, as `torch.nn.Sigmoid`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sigmoid;

impl Module for Sigmoid {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        candle_nn::ops::sigmoid(xs)
    }
}
