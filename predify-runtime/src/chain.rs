//! The layer-chain contract: a predified backbone cut at its attach points into differentiable
//! segments, for what needs to backpropagate through the backbone by hand (hyperparameter
//! tuning).
//!
//! The runtime's layers compute on slices that Candle's autograd does not see, so the backward
//! pass is written from the layers' adjoints (`Conv::input_grad`, `MaxPool::input_grad`,
//! `Linear::input_grad`, ReLU masks). [`LayerRef`], [`chain_forward`] and [`chain_backward`] do
//! the work for chains of the runtime's layers.

use crate::layers::{Conv, Linear, MaxPool};
use crate::predified::Predified;
use crate::{Error, Result};
use candle_core::Tensor;

/// A predified network whose backbone is cut at the attach points into `n + 1` differentiable
/// segments: segment `k < n` maps the input (`k = 0`) or pcoder `k−1`'s representation to
/// pcoder `k`'s feedforward drive; segment `n` maps the last representation to the logits.
pub trait Segmented: Predified {
    /// Segment `k`'s forward pass.
    fn segment_forward(&self, k: usize, x: &Tensor) -> Result<Tensor>;
    /// Segment `k`'s vector–Jacobian product at `x`: the gradient w.r.t. `x` of `<segment(x), g>`.
    fn segment_backward(&self, k: usize, x: &Tensor, g: &Tensor) -> Result<Tensor>;
}

/// One layer of a segment, borrowed from a backbone.
#[derive(Debug, Clone, Copy)]
pub enum LayerRef<'a> {
    /// A (transposed) convolution.
    Conv(&'a Conv),
    /// `max(x, 0)`; its gradient is 0 at exactly 0, as PyTorch's.
    Relu,
    /// Max pooling (gradient to the first maximum of each window).
    MaxPool(&'a MaxPool),
    /// Fully connected.
    Linear(&'a Linear),
    /// Flatten from the given dimension on.
    Flatten(usize),
}

impl LayerRef<'_> {
    /// The layer's forward pass.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(match self {
            LayerRef::Conv(c) => c.forward(x)?,
            LayerRef::Relu => x.relu()?,
            LayerRef::MaxPool(p) => p.forward(x)?,
            LayerRef::Linear(l) => l.forward(x)?,
            LayerRef::Flatten(d) => x.flatten_from(*d)?,
        })
    }

    /// The layer's vector–Jacobian product at input `x` for the output gradient `g`.
    pub fn backward(&self, x: &Tensor, g: &Tensor) -> Result<Tensor> {
        Ok(match self {
            LayerRef::Conv(c) => c.input_grad(x.dims(), g)?,
            LayerRef::Relu => crate::ops::relu_grad(x, g)?,
            LayerRef::MaxPool(p) => p.input_grad(x, g)?,
            LayerRef::Linear(l) => l.input_grad(g)?,
            LayerRef::Flatten(_) => g.reshape(x.dims())?,
        })
    }
}

/// Run a chain of layers.
pub fn chain_forward(layers: &[LayerRef<'_>], x: &Tensor) -> Result<Tensor> {
    let mut h = x.clone();
    for l in layers {
        h = l.forward(&h)?;
    }
    Ok(h)
}

/// The vector–Jacobian product of a chain of layers at `x` (the forward pass is recomputed).
pub fn chain_backward(layers: &[LayerRef<'_>], x: &Tensor, g: &Tensor) -> Result<Tensor> {
    let mut inputs = Vec::with_capacity(layers.len());
    let mut h = x.clone();
    for l in layers {
        let next = l.forward(&h)?;
        inputs.push(h);
        h = next;
    }
    let mut g = g.clone();
    for (l, x) in layers.iter().zip(&inputs).rev() {
        g = l.backward(x, &g)?;
    }
    Ok(g)
}

/// The error for a segment index past the last (`n` pcoders, `n + 1` segments).
pub fn no_segment<T>(k: usize, n: usize) -> Result<T> {
    Err(Error::Usage(format!("no segment {k}: the network has {} segments", n + 1)))
}
