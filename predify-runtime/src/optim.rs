//! Optimisers over named variables with explicit gradients (PyTorch semantics).

use crate::error::{usage, Result};
use candle_core::{Tensor, Var};
use std::collections::HashMap;

/// SGD with PyTorch-style L2 weight decay (added to the gradient) and optional momentum:
/// `d = g + wd·p; b = μ·b + d (b = d on the first step); p ← p − lr·b`.
#[derive(Debug, Clone)]
pub struct Sgd {
    /// Learning rate.
    pub lr: f64,
    /// L2 weight decay, added to the gradient.
    pub weight_decay: f64,
    /// Momentum μ (0 disables it).
    pub momentum: f64,
    buffers: HashMap<String, Tensor>,
}

impl Sgd {
    /// A new optimiser.
    pub fn new(lr: f64, weight_decay: f64, momentum: f64) -> Self {
        Self { lr, weight_decay, momentum, buffers: HashMap::new() }
    }

    /// Update every variable in `params` whose name has a gradient in `grads`; a gradient with
    /// no matching variable, or of another shape, is an error naming it.
    pub fn step(&mut self, params: &[(String, Var)], grads: &[(String, Tensor)]) -> Result<()> {
        for (name, g) in grads {
            let Some((_, var)) = params.iter().find(|(n, _)| n == name) else {
                return usage(format!("SGD: gradient for unknown parameter `{name}`"));
            };
            if var.dims() != g.dims() {
                return crate::error::shape_err(format!("SGD: gradient of `{name}`"), format!("{:?}", var.dims()), g.dims());
            }
            let mut d = (g + var.as_tensor().affine(self.weight_decay, 0.0)?)?;
            if self.momentum != 0.0 {
                let b = match self.buffers.get(name) {
                    Some(b) => (b.affine(self.momentum, 0.0)? + &d)?,
                    None => d.clone(),
                };
                self.buffers.insert(name.clone(), b.clone());
                d = b;
            }
            var.set(&(var.as_tensor() - d.affine(self.lr, 0.0)?)?)?;
        }
        Ok(())
    }
}
