//! The two benchmark networks, built from layer lists with random weights, and their FLOP
//! counts per timestep.
//!
//! * `pvgg16`: torchvision's VGG16 (configuration "D") on 3×224×224 with Predify's PVGG16
//!   pcoders at `features[3, 8, 15, 22, 29]` (the spec is `templates/pvgg16.toml`, gradient
//!   scaling on). The adaptive average pool before the classifier is the identity at 224×224
//!   (7×7 → 7×7) and dropout is the identity in evaluation, so neither is in the list.
//! * `mnist`: the ONNX-zoo mnist-8 shape (conv 5×5 1→8 SAME, ReLU, max-pool 2, conv 5×5 8→16
//!   SAME, ReLU, max-pool 3, flatten, linear 256→10) with two pcoders after the ReLUs and
//!   Predify's default predictors (bilinear upsample where the sizes differ, then
//!   ConvTranspose2d k3 s1 p1).
//!
//! `scripts/bench_reference.py` builds the same two networks in PyTorch; both count FLOPs the
//! same way (see [`Model::flop_per_timestep`]).

use predify::Predified as _;
use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use predify::runtime::layers::{Conv, Linear, MaxPool};
use predify::runtime::sequential::{Op, PredifiedSequential, Sequential};
use predify::spec::{ConvSpec, Layer, Spec};
use predify::CSqrtSource;

pub type BoxResult<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// PVGG16's spec, as in `templates/pvgg16.toml` (Predify's released PVGG16).
const PVGG16_SPEC: &str = r#"
name = "PVgg16"
gradient_scaling = true
shared_hyperparameters = false
input_size = [3, 224, 224]

[[pcoders]]
module = "features[3]"
predictor = "ConvTranspose2d(64, 3, kernel_size=5, stride=1, padding=2)"
hyperparameters = {feedforward = 0.2, feedback = 0.05, pc = 0.01}

[[pcoders]]
module = "features[8]"
predictor = "Sequential(ConvTranspose2d(128, 64, kernel_size=10, stride=2, padding=4), ReLU(inplace=True))"
hyperparameters = {feedforward = 0.4, feedback = 0.1, pc = 0.01}

[[pcoders]]
module = "features[15]"
predictor = "Sequential(ConvTranspose2d(256, 128, kernel_size=14, stride=2, padding=6), ReLU(inplace=True))"
hyperparameters = {feedforward = 0.4, feedback = 0.1, pc = 0.01}

[[pcoders]]
module = "features[22]"
predictor = "Sequential(ConvTranspose2d(512, 256, kernel_size=14, stride=2, padding=6), ReLU(inplace=True))"
hyperparameters = {feedforward = 0.5, feedback = 0.1, pc = 0.01}

[[pcoders]]
module = "features[29]"
predictor = "Sequential(ConvTranspose2d(512, 512, kernel_size=14, stride=2, padding=6), ReLU(inplace=True))"
hyperparameters = {feedforward = 0.6, feedback = 0.0, pc = 0.01}
"#;

/// The MNIST-scale net: default predictors, Predify's default hyperparameters (the file the
/// original's side of the benchmark reads too).
const MNIST_SPEC: &str = include_str!("../../../templates/bench-mnist.toml");

/// Which network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Pvgg16,
    Mnist,
}

impl Which {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pvgg16" => Some(Which::Pvgg16),
            "mnist" => Some(Which::Mnist),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Which::Pvgg16 => "pvgg16",
            Which::Mnist => "mnist",
        }
    }

    /// Per-sample input shape.
    pub fn input_shape(self) -> [usize; 3] {
        match self {
            Which::Pvgg16 => [3, 224, 224],
            Which::Mnist => [1, 28, 28],
        }
    }
}

/// A built network and the FLOPs of one sample's timestep.
pub struct Model {
    pub net: PredifiedSequential,
    /// Backbone convolutions, one sample.
    pub backbone_flop: f64,
    /// Predictor forward passes (reconstructions), one sample.
    pub predictor_flop: f64,
}

impl Model {
    /// FLOPs of one timestep at this batch size: backbone convolutions + predictors + their
    /// adjoints (the error gradient costs what the reconstruction does). Linear layers,
    /// pooling, upsampling, ReLUs and the element-wise update are not counted.
    pub fn flop_per_timestep(&self, batch: usize) -> f64 {
        batch as f64 * (self.backbone_flop + 2.0 * self.predictor_flop)
    }
}

fn conv_spec(cin: usize, cout: usize, k: usize, p: usize) -> ConvSpec {
    ConvSpec {
        dims: 2,
        in_channels: cin,
        out_channels: cout,
        kernel_size: vec![k, k],
        stride: vec![1, 1],
        padding: vec![p, p],
        output_padding: vec![0, 0],
        dilation: vec![1, 1],
        groups: 1,
        bias: true,
    }
}

/// 2·Cout·Cin/g·Πk·Π(output spatial): the FLOPs of a stride-1 "same" convolution on one sample.
fn conv_flop(s: &ConvSpec, out_spatial: &[usize]) -> f64 {
    let k: usize = s.kernel_size.iter().product();
    let sp: usize = out_spatial.iter().product();
    2.0 * (s.out_channels * s.in_channels / s.groups.max(1) * k * sp) as f64
}

/// FLOPs of one predictor forward on one sample whose representation has per-sample shape
/// `ff` (`[C, H, W]`): every (transposed) convolution costs 2·Cin·Cout/g·Πk per position of
/// its small grid (the input of a transposed convolution, the output of a convolution).
pub fn predictor_flop(pred: &predify::spec::Predictor, ff: &[usize]) -> f64 {
    let mut sp: Vec<usize> = ff[1..].to_vec();
    let mut total = 0.0;
    for layer in pred.layers() {
        match layer {
            Layer::ConvTranspose(c) => {
                let k: usize = c.kernel_size.iter().product();
                let small: usize = sp.iter().product();
                total += 2.0 * (c.in_channels * c.out_channels / c.groups.max(1) * k * small) as f64;
                sp = sp
                    .iter()
                    .enumerate()
                    .map(|(a, &i)| {
                        (i - 1) * c.stride[a] + c.dilation[a] * (c.kernel_size[a] - 1) + c.output_padding[a] + 1 - 2 * c.padding[a]
                    })
                    .collect();
            }
            Layer::Conv(c) => {
                sp = sp
                    .iter()
                    .enumerate()
                    .map(|(a, &i)| (i + 2 * c.padding[a] - c.dilation[a] * (c.kernel_size[a] - 1) - 1) / c.stride[a] + 1)
                    .collect();
                let k: usize = c.kernel_size.iter().product();
                let small: usize = sp.iter().product();
                total += 2.0 * (c.in_channels * c.out_channels / c.groups.max(1) * k * small) as f64;
            }
            Layer::ReLU { .. } => {}
            Layer::Upsample(u) => {
                let dims = sp.len();
                if let Some(size) = u.size.as_ref().and_then(|s| s.for_dims(dims)) {
                    sp = size;
                } else if let Some(scale) = u.scale_factor.as_ref().and_then(|s| s.for_dims(dims)) {
                    sp = sp.iter().zip(&scale).map(|(&i, &f)| (i as f64 * f).floor() as usize).collect();
                }
            }
        }
    }
    total
}

/// Build a network with random weights (PyTorch's default initialisation, seeded by Candle's
/// generator) on the CPU.
pub fn build(which: Which) -> BoxResult<Model> {
    let dev = Device::Cpu;
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
    let f = vb.pp("backbone.features");
    let mut net = Sequential::new();
    let mut backbone_flop = 0.0;
    let spec_text = match which {
        Which::Pvgg16 => {
            const CFG_D: [usize; 18] = [64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0];
            let (mut c, mut hw, mut j) = (3usize, 224usize, 0usize);
            for &v in &CFG_D {
                if v == 0 {
                    let name = format!("features.{j}");
                    net.push(format!("features[{j}]"), Op::MaxPool(MaxPool::new(2, &[2, 2], &[2, 2], &[0, 0], &[1, 1], false, &name)?));
                    hw /= 2;
                    j += 1;
                } else {
                    let s = conv_spec(c, v, 3, 1);
                    backbone_flop += conv_flop(&s, &[hw, hw]);
                    let name = format!("features.{j}");
                    net.push(format!("features[{j}]"), Op::Conv(Conv::load(&s, false, f.pp(j.to_string()), &name)?));
                    net.push(format!("features[{}]", j + 1), Op::Relu);
                    c = v;
                    j += 2;
                }
            }
            // avgpool: AdaptiveAvgPool2d((7, 7)) on 7×7 is the identity; dropout likewise.
            net.push("flatten", Op::Flatten { start_dim: 1 });
            let cl = vb.pp("backbone.classifier");
            net.push("classifier[0]", Op::Linear(Linear::load(512 * 7 * 7, 4096, true, cl.pp("0"), "classifier.0")?));
            net.push("classifier[1]", Op::Relu);
            net.push("classifier[3]", Op::Linear(Linear::load(4096, 4096, true, cl.pp("3"), "classifier.3")?));
            net.push("classifier[4]", Op::Relu);
            net.push("classifier[6]", Op::Linear(Linear::load(4096, 1000, true, cl.pp("6"), "classifier.6")?));
            PVGG16_SPEC
        }
        Which::Mnist => {
            let s0 = conv_spec(1, 8, 5, 2);
            let s3 = conv_spec(8, 16, 5, 2);
            backbone_flop += conv_flop(&s0, &[28, 28]) + conv_flop(&s3, &[14, 14]);
            net.push("features[0]", Op::Conv(Conv::load(&s0, false, f.pp("0"), "features.0")?));
            net.push("features[1]", Op::Relu);
            net.push("features[2]", Op::MaxPool(MaxPool::new(2, &[2, 2], &[2, 2], &[0, 0], &[1, 1], false, "features.2")?));
            net.push("features[3]", Op::Conv(Conv::load(&s3, false, f.pp("3"), "features.3")?));
            net.push("features[4]", Op::Relu);
            net.push("features[5]", Op::MaxPool(MaxPool::new(2, &[3, 3], &[3, 3], &[0, 0], &[1, 1], false, "features.5")?));
            net.push("flatten", Op::Flatten { start_dim: 1 });
            net.push("classifier[0]", Op::Linear(Linear::load(16 * 4 * 4, 10, true, vb.pp("backbone.classifier.0"), "classifier.0")?));
            MNIST_SPEC
        }
    };
    let spec = Spec::from_toml_str(spec_text)?;
    let net = PredifiedSequential::new(net, &spec, vb, CSqrtSource::Exact)?;
    let predictor_flop = net.pnet().pcoders().iter().map(|pc| predictor_flop(pc.predictor().spec(), pc.ff_shape())).sum();
    Ok(Model { net, backbone_flop, predictor_flop })
}
