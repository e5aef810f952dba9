//! A backbone given as a flat list of named layers, and its predified form.
//!
//! This is the route for networks described by data (a Predify fixture's layer list, a layer
//! list read from a file) rather than by a Rust struct annotated with `#[predify]`.

use crate::chain::{chain_backward, chain_forward, no_segment, LayerRef, Segmented};
use crate::error::{usage, Result};
use crate::layers::{Conv, Linear, MaxPool};
use crate::pnet::{CSqrtSource, PNet};
use crate::predified::{Hook, Predified};
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
    /// The operation as a layer of a differentiable chain.
    pub fn as_layer(&self) -> LayerRef<'_> {
        match self {
            Op::Conv(c) => LayerRef::Conv(c),
            Op::Relu => LayerRef::Relu,
            Op::MaxPool(p) => LayerRef::MaxPool(p),
            Op::Linear(l) => LayerRef::Linear(l),
            Op::Flatten { start_dim } => LayerRef::Flatten(*start_dim),
        }
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.as_layer().forward(x)
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
        let ff_shapes = crate::predified::probe_shapes(|x, hook| traverse(&backbone, &attach, x, hook), &spec.input_size, vb.device())?;
        let pnet = PNet::load(spec, &ff_shapes, vb, c_sqrt)?;
        Ok(Self { backbone, pnet, attach })
    }

    /// The backbone.
    pub fn backbone(&self) -> &Sequential {
        &self.backbone
    }

    /// Index in the backbone's layer list of each pcoder's attach point.
    pub fn attach_points(&self) -> &[usize] {
        &self.attach
    }

    /// The backbone layers of segment `k` (see [`Segmented`]).
    fn segment(&self, k: usize) -> Result<Vec<LayerRef<'_>>> {
        let n = self.attach.len();
        let (start, end) = match k {
            0 if n > 0 => (0, self.attach[0] + 1),
            k if k < n => (self.attach[k - 1] + 1, self.attach[k] + 1),
            k if k == n => (self.attach[n - 1] + 1, self.backbone.layers.len()),
            _ => return no_segment(k, n),
        };
        Ok(self.backbone.layers[start..end].iter().map(|(_, op)| op.as_layer()).collect())
    }
}

/// One pass of `backbone` with the hook after the layers at `attach`.
fn traverse(backbone: &Sequential, attach: &[usize], input: &Tensor, hook: &mut Hook<'_>) -> Result<Tensor> {
    let mut h = input.clone();
    let mut next = 0;
    let mut fused = false;
    for (pos, (_, op)) in backbone.layers.iter().enumerate() {
        // A ReLU right after a convolution runs inside it (one pass less over the output),
        // unless a pcoder needs the convolution's own output.
        if !std::mem::take(&mut fused) {
            h = match op {
                Op::Conv(c) if matches!(backbone.layers.get(pos + 1), Some((_, Op::Relu))) && attach.get(next) != Some(&pos) => {
                    fused = true;
                    c.forward_relu(&h)?
                }
                _ => op.forward(&h)?,
            };
        }
        if attach.get(next) == Some(&pos) {
            h = hook(next, h)?;
            next += 1;
        }
    }
    Ok(h)
}

impl Predified for PredifiedSequential {
    fn pnet(&self) -> &PNet {
        &self.pnet
    }
    fn pnet_mut(&mut self) -> &mut PNet {
        &mut self.pnet
    }
    fn traverse(&self, input: &Tensor, hook: &mut Hook<'_>) -> Result<Tensor> {
        traverse(&self.backbone, &self.attach, input, hook)
    }
}

impl Segmented for PredifiedSequential {
    fn segment_forward(&self, k: usize, x: &Tensor) -> Result<Tensor> {
        chain_forward(&self.segment(k)?, x)
    }
    fn segment_backward(&self, k: usize, x: &Tensor, g: &Tensor) -> Result<Tensor> {
        chain_backward(&self.segment(k)?, x, g)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use predify_spec::ConvSpec;

    fn conv(cin: usize, cout: usize) -> Op {
        let spec = ConvSpec { dims: 2, in_channels: cin, out_channels: cout, kernel_size: vec![3; 2], stride: vec![1; 2], padding: vec![1; 2], output_padding: vec![0; 2], dilation: vec![1; 2], groups: 1, bias: true };
        let dev = &Device::Cpu;
        let w = Tensor::randn(0f32, 0.5, (cout, cin, 3, 3), dev).unwrap();
        let b = Tensor::randn(0f32, 0.5, cout, dev).unwrap();
        Op::Conv(Conv::new(spec, false, w, Some(b), "c").unwrap())
    }

    #[test]
    fn fused_relus_leave_the_values_and_the_hooks_as_the_layer_list_says() {
        let mut net = Sequential::new();
        for (i, op) in [conv(2, 3), Op::Relu, conv(3, 3), Op::Relu, conv(3, 2), Op::Relu].into_iter().enumerate() {
            net.push(format!("f[{i}]"), op);
        }
        let x = Tensor::randn(0f32, 1.0, (2, 2, 5, 4), &Device::Cpu).unwrap();
        let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        // Attached at a convolution (its own output, negatives included, must reach the hook:
        // that pair is not fused) and at a ReLU (fused before it); the hook changes nothing.
        let mut seen = Vec::new();
        let y = traverse(&net, &[2, 5], &x, &mut |k, h| {
            seen.push((k, flat(&h)));
            Ok(h)
        })
        .unwrap();
        assert_eq!(flat(&y), flat(&net.forward(&x).unwrap()), "same values as the unfused pass");
        let mut want = x.clone();
        for (_, op) in &net.layers()[..3] {
            want = op.forward(&want).unwrap();
        }
        assert_eq!(seen[0], (0, flat(&want)));
        assert!(seen[0].1.iter().any(|&v| v < 0.0), "the hook at the convolution sees its output before the ReLU");
        assert_eq!(seen[1], (1, flat(&y)));
    }
}
