//! A PCoder's feedback predictor (`pmodule`): forward, input adjoint and parameter gradients.

use crate::error::{usage, Result};
use crate::layers::{Conv, Upsample};
use candle_core::{Tensor, Var};
use predify_spec::{Layer, Predictor as PredictorSpec};

/// One built layer of a predictor.
#[derive(Debug, Clone)]
enum Stage {
    Conv(Conv),
    Relu,
    Upsample(Upsample),
}

/// A feedback predictor with its weights, under Predify's names (`pmodule.weight` for a single
/// module, `pmodule.{j}.weight` for a Sequential).
#[derive(Debug, Clone)]
pub struct Predictor {
    spec: PredictorSpec,
    stages: Vec<Stage>,
    /// Parameter name prefix of each stage relative to the pcoder (`pmodule` / `pmodule.{j}`).
    prefixes: Vec<String>,
}

/// The layer inputs recorded by [`Predictor::forward_traced`], needed by the backward passes.
#[derive(Debug, Clone)]
pub struct Trace {
    inputs: Vec<Tensor>,
}

impl Predictor {
    /// Build a predictor from its description; `vb` is positioned at the pcoder (`pcoder{i}`),
    /// `context` names it in errors (e.g. `pcoder2`).
    pub fn load(spec: &PredictorSpec, vb: candle_nn::VarBuilder, context: &str) -> Result<Self> {
        let mut stages = Vec::new();
        let mut prefixes = Vec::new();
        for (j, layer) in spec.layers().iter().enumerate() {
            let prefix = spec.param_prefix(j);
            let name = format!("{context}.{prefix}");
            let stage = match layer {
                Layer::ConvTranspose(c) => Stage::Conv(Conv::load(c, true, vb.pp(&prefix), &name)?),
                Layer::Conv(c) => Stage::Conv(Conv::load(c, false, vb.pp(&prefix), &name)?),
                Layer::ReLU { .. } => Stage::Relu,
                Layer::Upsample(u) => Stage::Upsample(Upsample::new(u.clone(), &name)),
            };
            stages.push(stage);
            prefixes.push(prefix);
        }
        if stages.is_empty() {
            return usage(format!("{context}: the predictor has no layers"));
        }
        Ok(Self { spec: spec.clone(), stages, prefixes })
    }

    /// The predictor's description.
    pub fn spec(&self) -> &PredictorSpec {
        &self.spec
    }

    /// The output shape for an input shape (`[N, C, spatial…]`).
    pub fn output_shape(&self, in_shape: &[usize]) -> Result<Vec<usize>> {
        let mut s = in_shape.to_vec();
        for st in &self.stages {
            s = match st {
                Stage::Conv(c) => c.output_shape(&s)?,
                Stage::Relu => s,
                Stage::Upsample(u) => u.output_shape(&s)?,
            };
        }
        Ok(s)
    }

    /// Forward pass.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = x.clone();
        for st in &self.stages {
            h = Self::apply(st, &h)?;
        }
        Ok(h)
    }

    /// Forward pass that records what the backward passes need.
    pub fn forward_traced(&self, x: &Tensor) -> Result<(Tensor, Trace)> {
        let mut inputs = Vec::with_capacity(self.stages.len());
        let mut h = x.clone();
        for st in &self.stages {
            let next = Self::apply(st, &h)?;
            inputs.push(h);
            h = next;
        }
        Ok((h, Trace { inputs }))
    }

    fn apply(st: &Stage, h: &Tensor) -> Result<Tensor> {
        Ok(match st {
            Stage::Conv(c) => c.forward(h)?,
            Stage::Relu => h.relu()?,
            Stage::Upsample(u) => u.forward(h)?,
        })
    }

    /// Vector-Jacobian product w.r.t. the input: the gradient of `<forward(x), g>` w.r.t. `x`.
    pub fn vjp_input(&self, trace: &Trace, g: &Tensor) -> Result<Tensor> {
        Ok(self.backward_impl(trace, g, None)?)
    }

    /// Like [`Self::vjp_input`], also returning the parameter gradients as
    /// `(name relative to the pcoder, gradient)`, e.g. `("pmodule.0.weight", …)`.
    pub fn backward(&self, trace: &Trace, g: &Tensor) -> Result<(Tensor, Vec<(String, Tensor)>)> {
        let mut grads = Vec::new();
        let gx = self.backward_impl(trace, g, Some(&mut grads))?;
        grads.reverse();
        Ok((gx, grads))
    }

    fn backward_impl(&self, trace: &Trace, g: &Tensor, mut grads: Option<&mut Vec<(String, Tensor)>>) -> Result<Tensor> {
        if trace.inputs.len() != self.stages.len() {
            return usage("predictor trace does not belong to this predictor");
        }
        let mut g = g.clone();
        for (j, st) in self.stages.iter().enumerate().rev() {
            let x = &trace.inputs[j];
            g = match st {
                Stage::Conv(c) => {
                    if let Some(gr) = grads.as_deref_mut() {
                        let (dw, db) = c.param_grads(x, &g)?;
                        // pushed in reverse; `backward` flips the list back to layer order
                        if let Some(db) = db {
                            gr.push((format!("{}.bias", self.prefixes[j]), db));
                        }
                        gr.push((format!("{}.weight", self.prefixes[j]), dw));
                    }
                    c.input_grad(x.dims(), &g)?
                }
                // PyTorch's ReLU gradient is 0 at exactly 0.
                Stage::Relu => (g * x.gt(0f32)?.to_dtype(x.dtype())?)?,
                Stage::Upsample(u) => u.input_grad(x.dims(), &g)?,
            };
        }
        Ok(g)
    }

    /// The trainable parameters as `(name relative to the pcoder, variable)`, in layer order
    /// (weight before bias), e.g. `("pmodule.0.weight", var)`.
    pub fn vars(&self) -> Vec<(String, Var)> {
        let mut v = Vec::new();
        for (st, p) in self.stages.iter().zip(&self.prefixes) {
            if let Stage::Conv(c) = st {
                v.push((format!("{p}.weight"), c.weight().clone()));
                if let Some(b) = c.bias() {
                    v.push((format!("{p}.bias"), b.clone()));
                }
            }
        }
        v
    }

    /// A copy of this predictor whose weights are |w| and biases zero, with ReLUs dropped: used
    /// to count an input cell's output footprint exactly (no cancellation can hide an element).
    pub(crate) fn footprint_probe(&self) -> Result<Predictor> {
        let mut stages = Vec::new();
        for st in &self.stages {
            match st {
                Stage::Conv(c) => {
                    let w = c.weight().as_tensor().abs()?.ones_like()?;
                    stages.push(Stage::Conv(Conv::new(c.spec().clone(), c.is_transposed(), w, None, "footprint")?.without_bias()));
                }
                Stage::Relu => {}
                Stage::Upsample(u) => stages.push(Stage::Upsample(u.clone())),
            }
        }
        Ok(Predictor { spec: self.spec.clone(), stages, prefixes: self.prefixes.clone() })
    }
}
