//! `candle_core::Module` for the runtime's layers, so they can sit in a user's model struct
//! next to candle-nn layers, plus the two parameter-free layers a backbone needs.

use super::{Conv, Linear, MaxPool, Upsample};
use candle_core::{Module, Tensor};

fn wrap(e: crate::Error) -> candle_core::Error {
    match e {
        crate::Error::Candle(c) => c,
        other => candle_core::Error::wrap(other),
    }
}

impl Module for Conv {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        Conv::forward(self, xs).map_err(wrap)
    }
}

impl Module for Linear {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        Linear::forward(self, xs).map_err(wrap)
    }
}

impl Module for MaxPool {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        MaxPool::forward(self, xs).map_err(wrap)
    }
}

impl Module for Upsample {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        Upsample::forward(self, xs).map_err(wrap)
    }
}

/// `ReLU` as a module.
#[derive(Debug, Clone, Copy, Default)]
pub struct Relu;

impl Module for Relu {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        xs.relu()
    }
}

/// `flatten(start_dim)` as a module (`torch.flatten(x, 1)` in a VGG's forward).
#[derive(Debug, Clone, Copy)]
pub struct Flatten {
    /// First flattened dimension.
    pub start_dim: usize,
}

impl Default for Flatten {
    fn default() -> Self {
        Self { start_dim: 1 }
    }
}

impl Module for Flatten {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        xs.flatten_from(self.start_dim)
    }
}
