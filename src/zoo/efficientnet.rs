//! EfficientNet-B0 as torchvision defines it (`torchvision.models.efficientnet_b0`): the
//! backbone of Predify's PEfficientNetB0.
//!
//! Numerics are torchvision's, not TensorFlow's: symmetric padding `(k−1)/2`, `BatchNorm2d`
//! with eps 1e-5, SiLU activations, squeeze-excitation with SiLU and a sigmoid gate, and
//! stochastic depth as the identity (evaluation).
//!
//! Weight names are torchvision's state-dict names:
//!
//! | field (timm's names) | torchvision module | example names |
//! |---|---|---|
//! | `conv_stem`, `bn1`, `act1` | `features.0` (Conv 3→32 k3 s2, BN, SiLU) | `features.0.0.weight`, `features.0.1.running_mean` |
//! | `blocks[s]` | `features.{s+1}` (MBConv stage `s`) | `features.1.0.block.0.0.weight`, `features.2.0.block.1.0.weight` |
//! | `conv_head`, `bn2`, `act2` | `features.8` (Conv 320→1280 k1, BN, SiLU) | `features.8.0.weight` |
//! | `classifier` | `classifier.1` (after `Dropout(0.2)`) | `classifier.1.weight` |
//!
//! Inside an MBConv block (`features.{s}.{j}.block`): `0` the 1×1 expansion (absent when the
//! expansion ratio is 1, i.e. in stage 0), then the depthwise convolution, the
//! squeeze-excitation (`fc1`, `fc2`, 1×1 convolutions with bias) and the 1×1 projection
//! without activation; each convolution block holds `.0` (Conv2d, no bias) and `.1`
//! (BatchNorm2d).
//!
//! Predify attaches PEfficientNetB0's eight pcoders at the stem's activation and after each
//! of the seven stages: `act1`, `blocks[0]` … `blocks[6]`. On 224×224 they output
//! `[32,112,112]`, `[16,112,112]`, `[24,56,56]`, `[40,28,28]`, `[80,14,14]`, `[112,14,14]`,
//! `[192,7,7]` and `[320,7,7]` per sample. [`EfficientNetB0`] is annotated with
//! `templates/pefficientnetb0.toml`, which generates [`PEfficientNetB0`].

use super::{conv2d_spec, into_array, Dropout};
use crate::{predify, Result};
use candle_core::{Module, Tensor};
use candle_nn::VarBuilder;
use predify_runtime::layers::{AdaptiveAvgPool2d, BatchNorm2d, Conv, Flatten, Linear, Sigmoid, Silu, BATCH_NORM_EPS};

/// One MBConv stage of B0: expansion ratio, kernel, stride, input and output channels, layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageConfig {
    /// Expansion ratio of the inverted bottleneck.
    pub expand_ratio: usize,
    /// Depthwise kernel size.
    pub kernel: usize,
    /// Stride of the stage's first block.
    pub stride: usize,
    /// Input channels of the stage.
    pub input_channels: usize,
    /// Output channels of the stage.
    pub out_channels: usize,
    /// Number of MBConv blocks.
    pub num_layers: usize,
}

/// torchvision's `efficientnet_b0` stages (width and depth multipliers 1.0).
pub const B0_STAGES: [StageConfig; 7] = [
    StageConfig { expand_ratio: 1, kernel: 3, stride: 1, input_channels: 32, out_channels: 16, num_layers: 1 },
    StageConfig { expand_ratio: 6, kernel: 3, stride: 2, input_channels: 16, out_channels: 24, num_layers: 2 },
    StageConfig { expand_ratio: 6, kernel: 5, stride: 2, input_channels: 24, out_channels: 40, num_layers: 2 },
    StageConfig { expand_ratio: 6, kernel: 3, stride: 2, input_channels: 40, out_channels: 80, num_layers: 3 },
    StageConfig { expand_ratio: 6, kernel: 5, stride: 1, input_channels: 80, out_channels: 112, num_layers: 3 },
    StageConfig { expand_ratio: 6, kernel: 5, stride: 2, input_channels: 112, out_channels: 192, num_layers: 4 },
    StageConfig { expand_ratio: 6, kernel: 3, stride: 1, input_channels: 192, out_channels: 320, num_layers: 1 },
];

/// torchvision's `_make_divisible(v, 8)`: round to the nearest multiple of 8, never more than
/// 10% below `v`.
pub fn make_divisible(v: f64, divisor: usize) -> usize {
    let d = divisor as f64;
    let mut new_v = (divisor).max(((v + d / 2.0) / d).floor() as usize * divisor);
    if (new_v as f64) < 0.9 * v {
        new_v += divisor;
    }
    new_v
}

/// torchvision's `Conv2dNormActivation`: Conv2d (no bias, padding `(k−1)/2`), BatchNorm2d and
/// an optional SiLU. Names: `{prefix}.0.weight`, `{prefix}.1.{weight,bias,running_mean,running_var}`.
#[derive(Debug, Clone)]
pub struct ConvBnAct {
    /// The convolution (`.0`).
    pub conv: Conv,
    /// The batch norm (`.1`).
    pub bn: BatchNorm2d,
    /// `SiLU` (`.2`), absent in a projection.
    pub act: Option<Silu>,
}

impl ConvBnAct {
    /// Load from `vb` positioned at the block (`features.0`, `features.1.0.block.0`, …).
    #[allow(clippy::too_many_arguments)]
    pub fn load(cin: usize, cout: usize, kernel: usize, stride: usize, groups: usize, act: bool, vb: VarBuilder, name: &str) -> Result<Self> {
        let spec = conv2d_spec(cin, cout, kernel, stride, (kernel - 1) / 2, groups, false);
        let conv = Conv::load(&spec, false, vb.pp("0"), &format!("{name}.0"))?;
        let bn = BatchNorm2d::load(cout, BATCH_NORM_EPS, vb.pp("1"), &format!("{name}.1"))?;
        Ok(Self { conv, bn, act: act.then_some(Silu) })
    }
}

impl Module for ConvBnAct {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        let h = Module::forward(&self.bn, &Module::forward(&self.conv, xs)?)?;
        match &self.act {
            Some(a) => a.forward(&h),
            None => Ok(h),
        }
    }
}

/// torchvision's `SqueezeExcitation` with SiLU: `x · σ(fc2(silu(fc1(avgpool(x)))))`.
#[derive(Debug, Clone)]
pub struct SqueezeExcitation {
    /// `AdaptiveAvgPool2d(1)`.
    pub avgpool: AdaptiveAvgPool2d,
    /// 1×1 convolution to the squeeze channels, with bias (`fc1`).
    pub fc1: Conv,
    /// `SiLU`.
    pub activation: Silu,
    /// 1×1 convolution back to the input channels, with bias (`fc2`).
    pub fc2: Conv,
    /// `Sigmoid`.
    pub scale_activation: Sigmoid,
}

impl SqueezeExcitation {
    /// Load `fc1` and `fc2` from `vb` positioned at the module.
    pub fn load(channels: usize, squeeze: usize, vb: VarBuilder, name: &str) -> Result<Self> {
        let fc1 = Conv::load(&conv2d_spec(channels, squeeze, 1, 1, 0, 1, true), false, vb.pp("fc1"), &format!("{name}.fc1"))?;
        let fc2 = Conv::load(&conv2d_spec(squeeze, channels, 1, 1, 0, 1, true), false, vb.pp("fc2"), &format!("{name}.fc2"))?;
        Ok(Self { avgpool: AdaptiveAvgPool2d::new(1, 1)?, fc1, activation: Silu, fc2, scale_activation: Sigmoid })
    }
}

impl Module for SqueezeExcitation {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        let s = Module::forward(&self.avgpool, xs)?;
        let s = self.activation.forward(&Module::forward(&self.fc1, &s)?)?;
        let s = self.scale_activation.forward(&Module::forward(&self.fc2, &s)?)?;
        xs.broadcast_mul(&s)
    }
}

/// torchvision's `MBConv` block (inverted bottleneck with squeeze-excitation) in evaluation:
/// a residual connection when the stride is 1 and the channels match, stochastic depth the
/// identity.
#[derive(Debug, Clone)]
pub struct MBConv {
    /// The 1×1 expansion (`block.0`), absent when the expansion ratio is 1.
    pub expand: Option<ConvBnAct>,
    /// The depthwise convolution.
    pub depthwise: ConvBnAct,
    /// The squeeze-excitation.
    pub se: SqueezeExcitation,
    /// The 1×1 projection (no activation).
    pub project: ConvBnAct,
    /// Whether the input is added to the output.
    pub use_residual: bool,
}

impl MBConv {
    /// Load from `vb` positioned at the block (`features.{s}.{j}`); the layers live under its
    /// `block.{k}`.
    pub fn load(expand_ratio: usize, kernel: usize, stride: usize, cin: usize, cout: usize, vb: VarBuilder, name: &str) -> Result<Self> {
        let expanded = make_divisible((cin * expand_ratio) as f64, 8);
        let squeeze = (cin / 4).max(1);
        let vb = vb.pp("block");
        let mut k = 0;
        let next = |k: &mut usize| {
            let s = k.to_string();
            *k += 1;
            s
        };
        let expand = if expanded != cin {
            let i = next(&mut k);
            Some(ConvBnAct::load(cin, expanded, 1, 1, 1, true, vb.pp(&i), &format!("{name}.block.{i}"))?)
        } else {
            None
        };
        let i = next(&mut k);
        let depthwise = ConvBnAct::load(expanded, expanded, kernel, stride, expanded, true, vb.pp(&i), &format!("{name}.block.{i}"))?;
        let i = next(&mut k);
        let se = SqueezeExcitation::load(expanded, squeeze, vb.pp(&i), &format!("{name}.block.{i}"))?;
        let i = next(&mut k);
        let project = ConvBnAct::load(expanded, cout, 1, 1, 1, false, vb.pp(&i), &format!("{name}.block.{i}"))?;
        Ok(Self { expand, depthwise, se, project, use_residual: stride == 1 && cin == cout })
    }
}

impl Module for MBConv {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        let mut h = match &self.expand {
            Some(e) => e.forward(xs)?,
            None => xs.clone(),
        };
        h = self.depthwise.forward(&h)?;
        h = self.se.forward(&h)?;
        h = self.project.forward(&h)?;
        if self.use_residual {
            h = (h + xs)?;
        }
        Ok(h)
    }
}

/// One stage of MBConv blocks (`features.{s}` in torchvision, a `Sequential`).
#[derive(Debug, Clone)]
pub struct MBStage {
    /// The blocks in order (`features.{s}.0`, `features.{s}.1`, …).
    pub layers: Vec<MBConv>,
}

impl MBStage {
    /// Load the stage from `vb` positioned at `features.{s}`.
    pub fn load(cfg: &StageConfig, vb: VarBuilder, name: &str) -> Result<Self> {
        let mut layers = Vec::with_capacity(cfg.num_layers);
        for j in 0..cfg.num_layers {
            let (cin, stride) = if j == 0 { (cfg.input_channels, cfg.stride) } else { (cfg.out_channels, 1) };
            layers.push(MBConv::load(cfg.expand_ratio, cfg.kernel, stride, cin, cfg.out_channels, vb.pp(j.to_string()), &format!("{name}.{j}"))?);
        }
        Ok(Self { layers })
    }
}

impl Module for MBStage {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        let mut h = xs.clone();
        for l in &self.layers {
            h = l.forward(&h)?;
        }
        Ok(h)
    }
}

/// torchvision's EfficientNet-B0 with timm's field names (the layout
/// `templates/pefficientnetb0.toml` expects): stem (`conv_stem`, `bn1`, `act1`), seven MBConv
/// stages (`blocks`), head (`conv_head`, `bn2`, `act2`), global average pooling, `flatten`,
/// `dropout` (identity) and the linear `classifier`. Weights load under torchvision's names
/// (table in the module docs).
///
/// Takes batches `[N, 3, H, W]` (224×224 for ImageNet weights) and returns `[N, num_classes]`.
#[predify(spec = "templates/pefficientnetb0.toml")]
#[derive(Debug, Clone)]
pub struct EfficientNetB0 {
    /// `features.0.0`: Conv2d 3→32, 3×3, stride 2, padding 1, no bias.
    pub conv_stem: Conv,
    /// `features.0.1`: BatchNorm2d(32).
    pub bn1: BatchNorm2d,
    /// `features.0.2`: SiLU.
    pub act1: Silu,
    /// `features.1` … `features.7`: the MBConv stages.
    pub blocks: [MBStage; 7],
    /// `features.8.0`: Conv2d 320→1280, 1×1, no bias.
    pub conv_head: Conv,
    /// `features.8.1`: BatchNorm2d(1280).
    pub bn2: BatchNorm2d,
    /// `features.8.2`: SiLU.
    pub act2: Silu,
    /// `avgpool`: `AdaptiveAvgPool2d(1)`.
    pub global_pool: AdaptiveAvgPool2d,
    /// `torch.flatten(x, 1)`.
    pub flatten: Flatten,
    /// `classifier.0`: `Dropout(0.2)`, the identity in evaluation.
    pub dropout: Dropout,
    /// `classifier.1`: `Linear(1280, num_classes)`.
    pub classifier: Linear,
}

impl EfficientNetB0 {
    /// Load the weights from `vb`, positioned at the network's root (torchvision names).
    /// With a `VarMap`-backed builder, missing weights are created (convolutions and linear
    /// layers with PyTorch's default initialisation, batch norms as the identity).
    pub fn load(vb: VarBuilder, num_classes: usize) -> Result<Self> {
        let f = vb.pp("features");
        let stem = ConvBnAct::load(3, 32, 3, 2, 1, true, f.pp("0"), "features.0")?;
        let mut blocks = Vec::with_capacity(7);
        for (s, cfg) in B0_STAGES.iter().enumerate() {
            let i = (s + 1).to_string();
            blocks.push(MBStage::load(cfg, f.pp(&i), &format!("features.{i}"))?);
        }
        let last = B0_STAGES[6].out_channels;
        let head = ConvBnAct::load(last, 4 * last, 1, 1, 1, true, f.pp("8"), "features.8")?;
        let classifier = Linear::load(4 * last, num_classes, true, vb.pp("classifier.1"), "classifier.1")?;
        Ok(Self {
            conv_stem: stem.conv,
            bn1: stem.bn,
            act1: Silu,
            blocks: into_array(blocks, "EfficientNetB0 blocks")?,
            conv_head: head.conv,
            bn2: head.bn,
            act2: Silu,
            global_pool: AdaptiveAvgPool2d::new(1, 1)?,
            flatten: Flatten { start_dim: 1 },
            dropout: Dropout { p: 0.2 },
            classifier,
        })
    }
}

impl Module for EfficientNetB0 {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        let mut h = Module::forward(&self.conv_stem, xs)?;
        h = Module::forward(&self.bn1, &h)?;
        h = self.act1.forward(&h)?;
        for stage in &self.blocks {
            h = stage.forward(&h)?;
        }
        h = Module::forward(&self.conv_head, &h)?;
        h = Module::forward(&self.bn2, &h)?;
        h = self.act2.forward(&h)?;
        h = Module::forward(&self.global_pool, &h)?;
        h = self.flatten.forward(&h)?;
        h = self.dropout.forward(&h)?;
        Module::forward(&self.classifier, &h)
    }
}
