//! VGG16 as torchvision defines it (`torchvision.models.vgg16`, configuration "D", no batch
//! norm): the backbone of Predify's PVGG16.
//!
//! Weight names and layouts are torchvision's state-dict names: `features.{0,2,5,…,28}.weight`
//! `[out, in, 3, 3]` and `.bias`, `classifier.{0,3,6}.weight` `[out, in]` and `.bias`.
//!
//! Predify attaches PVGG16's pcoders at `features[3]`, `features[8]`, `features[15]`,
//! `features[22]` and `features[29]` (the last ReLU of each block, before its pooling); on a
//! 224×224 input they output `[64,224,224]`, `[128,112,112]`, `[256,56,56]`, `[512,28,28]` and
//! `[512,14,14]` per sample. [`Vgg16`] is annotated with `templates/pvgg16.toml`, which
//! generates [`PVgg16`]: `PVgg16::new(Vgg16::load(vb.pp("backbone"), 1000)?, vb)` with Predify's
//! feedback weights under `pcoder{i}.pmodule.*` (see [`super::feedback`]).

use super::{conv2d_spec, into_array, Dropout};
use crate::{predify, Result};
use candle_core::{Module, Tensor};
use predify_runtime::layers::{AdaptiveAvgPool2d, Conv, Flatten, Linear, MaxPool, Relu};

/// The indices in `features` where Predify's PVGG16 attaches its pcoders.
pub const PREDIFY_TAP_POINTS: [usize; 5] = [3, 8, 15, 22, 29];

/// Configuration "D": output channels of each 3×3 convolution, `None` for a 2×2 max pooling.
const CFG_D: [Option<usize>; 18] = [
    Some(64), Some(64), None,
    Some(128), Some(128), None,
    Some(256), Some(256), Some(256), None,
    Some(512), Some(512), Some(512), None,
    Some(512), Some(512), Some(512), None,
];

/// One element of VGG's `features` or `classifier` `Sequential`.
#[derive(Debug, Clone)]
pub enum VggLayer {
    /// `Conv2d(in, out, kernel_size=3, padding=1)`.
    Conv(Conv),
    /// `ReLU(inplace=True)`.
    Relu(Relu),
    /// `MaxPool2d(kernel_size=2, stride=2)`.
    MaxPool(MaxPool),
    /// `Linear(in, out)`.
    Linear(Linear),
    /// `Dropout(p=0.5)`: the identity in evaluation.
    Dropout(Dropout),
}

impl Module for VggLayer {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            VggLayer::Conv(l) => Module::forward(l, xs),
            VggLayer::Relu(l) => l.forward(xs),
            VggLayer::MaxPool(l) => Module::forward(l, xs),
            VggLayer::Linear(l) => Module::forward(l, xs),
            VggLayer::Dropout(l) => l.forward(xs),
        }
    }
}

/// torchvision's VGG16: `features` (13 convolutions with ReLUs, 5 poolings), `avgpool`
/// (adaptive, to 7×7), `flatten`, `classifier` (three linear layers).
///
/// Takes batches `[N, 3, H, W]` (224×224 for ImageNet weights) and returns `[N, num_classes]`.
#[predify(spec = "templates/pvgg16.toml")]
#[derive(Debug, Clone)]
pub struct Vgg16 {
    /// `features.0` … `features.30`.
    pub features: [VggLayer; 31],
    /// `AdaptiveAvgPool2d((7, 7))`.
    pub avgpool: AdaptiveAvgPool2d,
    /// `torch.flatten(x, 1)`.
    pub flatten: Flatten,
    /// `classifier.0` … `classifier.6`: Linear(25088, 4096), ReLU, Dropout, Linear(4096, 4096),
    /// ReLU, Dropout, Linear(4096, num_classes).
    pub classifier: [VggLayer; 7],
}

impl Vgg16 {
    /// Load the weights from `vb`, positioned at the network's root (torchvision names).
    /// With a `VarMap`-backed builder, missing weights are created with PyTorch's default
    /// initialisation (useful for tests and for training from scratch).
    pub fn load(vb: candle_nn::VarBuilder, num_classes: usize) -> Result<Self> {
        let mut features = Vec::with_capacity(31);
        let mut channels = 3;
        for c in CFG_D {
            let i = features.len();
            match c {
                Some(out) => {
                    let name = format!("features.{i}");
                    let conv = Conv::load(&conv2d_spec(channels, out, 3, 1, 1, 1, true), false, vb.pp(&name), &name)?;
                    features.push(VggLayer::Conv(conv));
                    features.push(VggLayer::Relu(Relu));
                    channels = out;
                }
                None => {
                    let pool = MaxPool::new(2, &[2, 2], &[2, 2], &[0, 0], &[1, 1], false, &format!("features.{i}"))?;
                    features.push(VggLayer::MaxPool(pool));
                }
            }
        }
        let linear = |i: usize, fin: usize, fout: usize| -> Result<VggLayer> {
            let name = format!("classifier.{i}");
            Ok(VggLayer::Linear(Linear::load(fin, fout, true, vb.pp(&name), &name)?))
        };
        let classifier = vec![
            linear(0, 512 * 7 * 7, 4096)?,
            VggLayer::Relu(Relu),
            VggLayer::Dropout(Dropout { p: 0.5 }),
            linear(3, 4096, 4096)?,
            VggLayer::Relu(Relu),
            VggLayer::Dropout(Dropout { p: 0.5 }),
            linear(6, 4096, num_classes)?,
        ];
        Ok(Self {
            features: into_array(features, "Vgg16 features")?,
            avgpool: AdaptiveAvgPool2d::new(7, 7)?,
            flatten: Flatten { start_dim: 1 },
            classifier: into_array(classifier, "Vgg16 classifier")?,
        })
    }
}

impl Module for Vgg16 {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        let mut h = xs.clone();
        for layer in &self.features {
            h = layer.forward(&h)?;
        }
        h = Module::forward(&self.avgpool, &h)?;
        h = self.flatten.forward(&h)?;
        for layer in &self.classifier {
            h = layer.forward(&h)?;
        }
        Ok(h)
    }
}
