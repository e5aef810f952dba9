//! A PCoder's feedback predictor (`pmodule`): forward, input adjoint and parameter gradients.

use crate::error::{usage, Result};
use crate::kernels::transform_cache::Pin;
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

/// The layer inputs recorded by [`Predictor::forward_traced`], needed by the backward passes,
/// and which cached kernel transforms each layer's forward used. A trace is valid while the
/// predictor's weights stay as they were at the traced forward (the input adjoints reuse those
/// transforms).
#[derive(Debug, Clone)]
pub struct Trace {
    inputs: Vec<Tensor>,
    pins: Vec<Option<Pin>>,
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
        for (st, prefix) in self.stages.iter().zip(&self.prefixes) {
            s = match st {
                Stage::Conv(c) => c.output_shape(&s)?,
                Stage::Relu => s,
                Stage::Upsample(u) => u.output_shape(&s)?,
            };
            // Every intermediate result is allocated per batch: bound it per sample.
            crate::layers::check_sample_elements(s.get(1..).unwrap_or(&[]), &format!("predictor layer `{prefix}`"))?;
        }
        Ok(s)
    }

    /// Forward pass.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.run(x, false)?.0)
    }

    /// Forward pass that records what the backward passes need.
    pub fn forward_traced(&self, x: &Tensor) -> Result<(Tensor, Trace)> {
        self.run(x, true)
    }

    /// The stages in order, a ReLU that follows a convolution applied inside it (the
    /// predictors' `ConvTranspose2d, ReLU` pairs: one pass less over the largest tensors), and
    /// with `traced` the trace (empty without). The ReLU stage then records its output as its
    /// input: the gradient mask `y > 0` is the same.
    fn run(&self, x: &Tensor, traced: bool) -> Result<(Tensor, Trace)> {
        let n = self.stages.len();
        let (mut inputs, mut pins) = (Vec::with_capacity(n), Vec::with_capacity(n));
        let mut h = x.clone();
        let mut fused = false;
        for (j, st) in self.stages.iter().enumerate() {
            if std::mem::take(&mut fused) {
                if traced {
                    inputs.push(h.clone());
                    pins.push(None);
                }
                continue;
            }
            let (next, pin) = match st {
                Stage::Conv(c) => {
                    fused = matches!(self.stages.get(j + 1), Some(Stage::Relu));
                    if traced {
                        c.forward_pinned(&h, fused)?
                    } else {
                        (c.forward_with(&h, fused)?, None)
                    }
                }
                Stage::Relu => (h.relu()?, None),
                Stage::Upsample(u) => (u.forward(&h)?, None),
            };
            if traced {
                inputs.push(h);
                pins.push(pin);
            }
            h = next;
        }
        Ok((h, Trace { inputs, pins }))
    }

    /// Vector-Jacobian product w.r.t. the input: the gradient of `<forward(x), g>` w.r.t. `x`.
    pub fn vjp_input(&self, trace: &Trace, g: &Tensor) -> Result<Tensor> {
        self.backward_impl(trace, g, None, true)
    }

    /// Like [`Self::vjp_input`], also returning the parameter gradients as
    /// `(name relative to the pcoder, gradient)`, e.g. `("pmodule.0.weight", …)`.
    pub fn backward(&self, trace: &Trace, g: &Tensor) -> Result<(Tensor, Vec<(String, Tensor)>)> {
        let mut grads = Vec::new();
        let gx = self.backward_impl(trace, g, Some(&mut grads), true)?;
        grads.reverse();
        Ok((gx, grads))
    }

    /// The parameter gradients of [`Self::backward`] alone: the gradient w.r.t. the input is
    /// not computed (feedback training needs none, and for a transposed convolution it costs
    /// as much as the forward).
    pub fn param_grads(&self, trace: &Trace, g: &Tensor) -> Result<Vec<(String, Tensor)>> {
        let mut grads = Vec::new();
        self.backward_impl(trace, g, Some(&mut grads), false)?;
        grads.reverse();
        Ok(grads)
    }

    /// Walk the stages backwards, collecting parameter gradients into `grads`; the gradient
    /// w.r.t. the input, or without `need_input` the one where the walk stopped (the first
    /// stage's input gradient is then not computed).
    fn backward_impl(&self, trace: &Trace, g: &Tensor, mut grads: Option<&mut Vec<(String, Tensor)>>, need_input: bool) -> Result<Tensor> {
        if trace.inputs.len() != self.stages.len() {
            return usage("predictor trace does not belong to this predictor");
        }
        // Below the first layer with parameters only the input gradient is left to compute.
        let first_params = self.stages.iter().position(|st| matches!(st, Stage::Conv(_))).unwrap_or(self.stages.len());
        let mut g = g.clone();
        for (j, st) in self.stages.iter().enumerate().rev() {
            let x = &trace.inputs[j];
            let input_needed = need_input || j > first_params;
            if !input_needed && j < first_params {
                break;
            }
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
                    if !input_needed {
                        break;
                    }
                    c.input_grad_pinned(x.dims(), &g, trace.pins[j])?
                }
                // PyTorch's ReLU gradient is 0 at exactly 0.
                Stage::Relu => crate::ops::relu_grad(x, &g)?,
                Stage::Upsample(u) => u.input_grad(x.dims(), &g)?,
            };
        }
        Ok(g)
    }

    /// Jacobian–vector product at the traced input: `J·v`, and the tangent entering each
    /// layer (a [`Trace`] of tangents, for [`Self::jvp_weight_grads`]).
    ///
    /// Every layer is linear in its input except ReLU, whose derivative is its mask at the
    /// traced (primal) input, 0 at exactly 0 as PyTorch's; so the tangent map is the predictor
    /// with the biases dropped and each ReLU replaced by its mask.
    pub fn jvp(&self, trace: &Trace, v: &Tensor) -> Result<(Tensor, Trace)> {
        if trace.inputs.len() != self.stages.len() {
            return usage("predictor trace does not belong to this predictor");
        }
        let mut tangents = Vec::with_capacity(self.stages.len());
        let mut h = v.clone();
        for (st, x) in self.stages.iter().zip(&trace.inputs) {
            let next = match st {
                Stage::Conv(c) => c.forward_linear(&h)?,
                Stage::Relu => crate::ops::relu_grad(x, &h)?,
                Stage::Upsample(u) => u.forward(&h)?,
            };
            tangents.push(h);
            h = next;
        }
        let pins = vec![None; tangents.len()];
        Ok((h, Trace { inputs: tangents, pins }))
    }

    /// The gradient w.r.t. the weights of `<J(x; θ)·v, g>`: how the tangent map of
    /// [`Self::jvp`] (at the input of `trace`, along the `tangents` it returned) depends on the
    /// weights. Only convolution weights enter a tangent map (biases drop out; the ReLU masks
    /// are piecewise constant in θ, so their derivative is 0 almost everywhere); `g` is
    /// propagated back through the layers above each convolution and meets there the tangent
    /// that entered it. Names as in [`Self::backward`], weights only.
    pub fn jvp_weight_grads(&self, trace: &Trace, tangents: &Trace, g: &Tensor) -> Result<Vec<(String, Tensor)>> {
        if trace.inputs.len() != self.stages.len() || tangents.inputs.len() != self.stages.len() {
            return usage("predictor trace does not belong to this predictor");
        }
        // Below the first convolution nothing depends on weights: stop there.
        let Some(first) = self.stages.iter().position(|s| matches!(s, Stage::Conv(_))) else {
            return Ok(Vec::new());
        };
        let mut grads = Vec::new();
        let mut g = g.clone();
        for j in (first..self.stages.len()).rev() {
            let x = &trace.inputs[j];
            match &self.stages[j] {
                Stage::Conv(c) => {
                    let (dw, _) = c.param_grads(&tangents.inputs[j], &g)?;
                    grads.push((format!("{}.weight", self.prefixes[j]), dw));
                    if j > first {
                        g = c.input_grad(x.dims(), &g)?;
                    }
                }
                Stage::Relu => g = crate::ops::relu_grad(x, &g)?,
                Stage::Upsample(u) => g = u.input_grad(x.dims(), &g)?,
            }
        }
        grads.reverse();
        Ok(grads)
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

    /// How many output elements one input cell (the centre of `in_shape` = `[1, C, spatial…]`)
    /// can influence: the channels and, per axis, the positions reachable through every layer's
    /// connectivity (all layers are separable per axis; ReLU does not change connectivity).
    /// This is Predify's C for linear predictors, computed from shapes alone.
    pub(crate) fn footprint(&self, in_shape: &[usize]) -> Result<usize> {
        let dims = in_shape.len().saturating_sub(2);
        let centre = |n: usize| {
            let mut v = vec![false; n];
            if n > 0 {
                v[n / 2] = true;
            }
            v
        };
        let mut chans = centre(in_shape.get(1).copied().unwrap_or(0));
        let mut axes: Vec<Vec<bool>> = in_shape[2..].iter().map(|&n| centre(n)).collect();
        let mut shape = in_shape.to_vec();
        for st in &self.stages {
            match st {
                Stage::Conv(c) => {
                    let out = c.output_shape(&shape)?;
                    let s = c.spec();
                    let (cin_g, cout_g) = (s.in_channels / s.groups, s.out_channels / s.groups);
                    let mut next = vec![false; s.out_channels];
                    for ci in (0..chans.len()).filter(|&ci| chans[ci]) {
                        let g = ci / cin_g;
                        next[g * cout_g..(g + 1) * cout_g].iter_mut().for_each(|v| *v = true);
                    }
                    chans = next;
                    for a in 0..dims {
                        let (st_, p, k, d) = (s.stride[a], s.padding[a] as isize, s.kernel_size[a], s.dilation[a]);
                        let mut reach = vec![false; out[2 + a]];
                        for i in (0..axes[a].len()).filter(|&i| axes[a][i]) {
                            for tap in 0..k {
                                let off = (tap * d) as isize - p;
                                let o = if c.is_transposed() {
                                    Some((i * st_) as isize + off)
                                } else {
                                    let num = i as isize - off;
                                    (num >= 0 && num % st_ as isize == 0).then(|| num / st_ as isize)
                                };
                                if let Some(o) = o.filter(|&o| o >= 0 && (o as usize) < reach.len()) {
                                    reach[o as usize] = true;
                                }
                            }
                        }
                        axes[a] = reach;
                    }
                    shape = out;
                }
                Stage::Relu => {}
                Stage::Upsample(u) => {
                    let (maps, out) = u.axis_maps(&shape)?;
                    for a in 0..dims {
                        let m = &maps[3 - dims + a];
                        let set = &axes[a];
                        axes[a] = (0..m.output())
                            .map(|o| (set[m.i0[o]] && m.w0[o] != 0.0) || (set[m.i1[o]] && m.w1[o] != 0.0))
                            .collect();
                    }
                    shape = out;
                }
            }
        }
        let count = |v: &Vec<bool>| v.iter().filter(|x| **x).count();
        Ok(count(&chans) * axes.iter().map(count).product::<usize>())
    }
}
