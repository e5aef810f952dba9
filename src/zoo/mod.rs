//! Backbones ready to predify, with the weight names and numerics of their usual sources.
//!
//! - [`vgg16::Vgg16`]: torchvision's `vgg16` (Predify's PVGG16 backbone).
//! - [`efficientnet::EfficientNetB0`]: torchvision's `efficientnet_b0` (Predify's
//!   PEfficientNetB0 backbone).
//! - [`mnist8::Mnist8`]: the ONNX Model Zoo's MNIST CNN (`mnist-8.onnx`), a real pretrained
//!   network that ships with the repository.
//! - [`feedback`]: Predify's published feedback checkpoints (`{'pcoderweights': …}` per
//!   pcoder, PyTorch pickles) and safetensors files, as `pcoder{i}.pmodule.*` tensors.
//!
//! Every backbone is a plain struct whose fields are layers run in declaration order; a field
//! that is an array is a list of layers run in order. Every layer implements
//! [`candle_core::Module`], and so does every backbone (its plain feedforward pass). That is
//! the shape `#[predify]` expects: pcoders attach to `field` or `field[j]`.
//!
//! Weights load from a [`candle_nn::VarBuilder`] positioned at the network's root, under the
//! source's own names (`features.0.weight`, `features.1.0.block.0.0.weight`, …), so a
//! converted torchvision state dict loads unchanged:
//!
//! ```no_run
//! use candle_core::{DType, Device, Module, Tensor};
//! use candle_nn::VarBuilder;
//! use predify::zoo::vgg16::Vgg16;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let vb = unsafe { VarBuilder::from_mmaped_safetensors(&["vgg16.safetensors"], DType::F32, &Device::Cpu)? };
//! let net = Vgg16::load(vb, 1000)?;
//! let logits = net.forward(&Tensor::zeros((2, 3, 224, 224), DType::F32, &Device::Cpu)?)?;
//! assert_eq!(logits.dims(), &[2, 1000]);
//! # Ok(()) }
//! ```

pub mod efficientnet;
pub mod feedback;
pub mod mnist8;
pub mod vgg16;

use candle_core::{Module, Tensor};
use predify_spec::ConvSpec;

/// `Dropout` in evaluation mode: the identity. It holds the drop probability only so that a
/// backbone reads like its PyTorch original.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dropout {
    /// The drop probability used in training (ignored here).
    pub p: f64,
}

impl Module for Dropout {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        Ok(xs.clone())
    }
}

/// A 2-D convolution's description with one value for both axes.
pub(crate) fn conv2d_spec(cin: usize, cout: usize, kernel: usize, stride: usize, padding: usize, groups: usize, bias: bool) -> ConvSpec {
    ConvSpec {
        dims: 2,
        in_channels: cin,
        out_channels: cout,
        kernel_size: vec![kernel; 2],
        stride: vec![stride; 2],
        padding: vec![padding; 2],
        output_padding: vec![0; 2],
        dilation: vec![1; 2],
        groups,
        bias,
    }
}

/// Turn a `Vec` of exactly `N` layers into an array (the lengths are fixed by construction).
pub(crate) fn into_array<T, const N: usize>(v: Vec<T>, what: &str) -> crate::Result<[T; N]> {
    let len = v.len();
    v.try_into()
        .map_err(|_| predify_runtime::Error::Usage(format!("{what}: built {len} layers, expected {N}")))
}
