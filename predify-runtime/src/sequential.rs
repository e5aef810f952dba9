//! A backbone given as a flat list of named layers, and its predified form.
//!
//! This is the route for networks described by data (a Predify fixture's layer list, a layer
//! list read from a file) rather than by a Rust struct annotated with `#[predify]`.

use crate::error::{usage, Result};
use crate::layers::{Conv, Linear, MaxPool};
use crate::pnet::{CSqrtSource, PNet};
use crate::state::State;
use candle_core::Tensor;
use predify_spec::Spec;

/// One backbone operation.
#[derive(Debug, Clone)]
pub enum Op {
    /// Convolution (2-D or 3-D).
    Conv(Conv),
    /// Element-wise max(x, 0).
    Relu,
    /// Max pooling.
    MaxPool(MaxPool),
    /// Fully connected layer.
    Linear(Linear),
    /// Flatten from `start_dim` on.
    Flatten {
        /// First flattened dimension.
        start_dim: usize,
    },
}

impl Op {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Op::Conv(c) => c.forward(x)?,
            Op::Relu => x.relu()?,
            Op::MaxPool(p) => p.forward(x)?,
            Op::Linear(l) => l.forward(x)?,
            Op::Flatten { start_dim } => x.flatten_from(*start_dim)?,
        })
    }
}

/// A feedforward network as an ordered list of `(path, op)`, paths written like Predify's
/// module paths (`features[3]`).
#[derive(Debug, Clone, Default)]
pub struct Sequential {
    layers: Vec<(String, Op)>,
}

impl Sequential {
    /// An empty network.
    pub fn new() -> Self {
        Self::default()
    }

    /// Append a layer.
    pub fn push(&mut self, path: impl Into<String>, op: Op) {
        self.layers.push((path.into(), op));
    }

    /// The layers in order.
    pub fn layers(&self) -> &[(String, Op)] {
        &self.layers
    }

    /// Plain feedforward pass.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = x.clone();
        for (_, op) in &self.layers {
            h = op.forward(&h)?;
        }
        Ok(h)
    }
}

/// A [`Sequential`] backbone with pcoders attached at some of its layers.
#[derive(Debug, Clone)]
pub struct PredifiedSequential {
    backbone: Sequential,
    pnet: PNet,
    attach: Vec<usize>,
}

impl PredifiedSequential {
    /// Attach the pcoders of `spec` (by module path) and load their predictors from `vb`.
    pub fn new(backbone: Sequential, spec: &Spec, vb: candle_nn::VarBuilder, c_sqrt: CSqrtSource) -> Result<Self> {
        let mut attach = Vec::new();
        for (i, pc) in spec.pcoders.iter().enumerate() {
            let path = pc.module.to_string();
            let Some(pos) = backbone.layers.iter().position(|(p, _)| *p == path) else {
                return usage(format!("pcoder{}: module `{path}` is not a layer of the backbone", i + 1));
            };
            if attach.last().is_some_and(|&prev| pos <= prev) {
                return usage(format!("pcoder{}: module `{path}` comes before the previous pcoder's; list pcoders in feedforward order", i + 1));
            }
            attach.push(pos);
        }
        // Probe the attach points' shapes with one zero sample.
        let mut shape = vec![1];
        shape.extend_from_slice(&spec.input_size);
        let mut h = Tensor::zeros(shape, candle_core::DType::F32, vb.device())?;
        let mut ff_shapes = Vec::new();
        for (pos, (_, op)) in backbone.layers.iter().enumerate() {
            h = op.forward(&h)?;
            if attach.contains(&pos) {
                ff_shapes.push(h.dims()[1..].to_vec());
            }
        }
        let pnet = PNet::load(spec, &ff_shapes, vb, c_sqrt)?;
        Ok(Self { backbone, pnet, attach })
    }

    /// The pcoders.
    pub fn pnet(&self) -> &PNet {
        &self.pnet
    }

    /// The pcoders, mutably (hyperparameters).
    pub fn pnet_mut(&mut self) -> &mut PNet {
        &mut self.pnet
    }

    /// The backbone.
    pub fn backbone(&self) -> &Sequential {
        &self.backbone
    }

    /// Index in the backbone's layer list of each pcoder's attach point.
    pub fn attach_points(&self) -> &[usize] {
        &self.attach
    }

    /// The feedforward drive of pcoder `i`: the backbone layers after pcoder `i−1`'s attach
    /// point (from the input for `i = 0`) up to and including pcoder `i`'s, applied to `below`.
    pub fn feedforward_to(&self, i: usize, below: &Tensor) -> Result<Tensor> {
        let Some(&end) = self.attach.get(i) else {
            return usage(format!("no pcoder{} (the network has {})", i + 1, self.attach.len()));
        };
        let start = if i == 0 { 0 } else { self.attach[i - 1] + 1 };
        let mut h = below.clone();
        for (_, op) in &self.backbone.layers[start..=end] {
            h = op.forward(&h)?;
        }
        Ok(h)
    }

    /// One backbone pass (one timestep) on the state's input; returns the logits.
    pub fn pass(&self, st: &mut State) -> Result<Tensor> {
        self.pnet.begin_pass(st)?;
        let mut h = st.input().clone();
        let mut next = 0;
        for (pos, (_, op)) in self.backbone.layers.iter().enumerate() {
            h = op.forward(&h)?;
            if self.attach.get(next) == Some(&pos) {
                h = self.pnet.fire(next, &h, st)?;
                next += 1;
            }
        }
        self.pnet.end_pass(st)?;
        Ok(h)
    }

    /// Run `timesteps` passes on a fresh state for `input`; returns the logits of every pass
    /// and the final state.
    pub fn run(&self, input: &Tensor, timesteps: usize) -> Result<(Vec<Tensor>, State)> {
        let mut st = self.pnet.new_state(input.clone())?;
        let mut logits = Vec::with_capacity(timesteps);
        for _ in 0..timesteps {
            logits.push(self.pass(&mut st)?);
        }
        Ok((logits, st))
    }
}
