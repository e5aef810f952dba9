//! Shared helpers of the tests that build small predified networks by hand without the
//! training support (`unroll_grad`, `attack`, `runtime_api`): 3×3 convolution specs and
//! PyTorch-style uniform weights drawn from the caller's own generator (each test keeps its
//! generator and seed, so its weights stay exactly what they were).
//!
//! Free of feature-gated APIs (no `predify::data`, `predify::common`), so that `unroll_grad`
//! and `runtime_api` still build with `--no-default-features`.
#![allow(dead_code)]

use candle_core::{Device, Tensor};
use predify::spec::ConvSpec;

/// A 3×3 convolution `cin → cout` with padding 1 and the given stride (bias, no dilation or
/// groups): the layer shape of every hand-built test network here.
pub fn conv3x3(cin: usize, cout: usize, stride: usize) -> ConvSpec {
    ConvSpec {
        dims: 2,
        in_channels: cin,
        out_channels: cout,
        kernel_size: vec![3, 3],
        stride: vec![stride; 2],
        padding: vec![1, 1],
        output_padding: vec![0, 0],
        dilation: vec![1, 1],
        groups: 1,
        bias: true,
    }
}

/// A CPU tensor of shape `dims` with entries uniform in ±1/√`fan_in` (PyTorch's default
/// initialisation), filled in row-major order from `draw` (uniform in [0, 1)). The generator is
/// passed in rather than owned so that callers keep drawing from the same sequence afterwards.
pub fn uniform_fan_in(draw: &mut impl FnMut() -> f64, dims: &[usize], fan_in: usize) -> Tensor {
    let b = 1.0 / (fan_in as f64).sqrt();
    let v: Vec<f32> = (0..dims.iter().product::<usize>()).map(|_| ((draw() * 2.0 - 1.0) * b) as f32).collect();
    Tensor::from_vec(v, dims, &Device::Cpu).unwrap()
}
