//! The smallest user of `predify`: a two-layer CNN predified by the macro, run for a few
//! timesteps on random weights. Built by `scripts/minimal-client.sh` with the library's
//! default features off.
use predify::candle_core::{DType, Device, Tensor};
use predify::candle_nn::{self as nn, VarBuilder, VarMap};
use predify::predify;
use predify::runtime::layers::Flatten;
use predify::Predified; // the generated type's run-time API

#[predify(
    name = "PSmall",
    input_size = [1, 12, 12],
    pcoders = [{ module = "relu", predictor = "ConvTranspose2d(4, 1, kernel_size=3, padding=1)" }],
)]
struct Small {
    conv: nn::Conv2d,
    relu: nn::Activation,
    flatten: Flatten,
    head: nn::Linear,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let conv = nn::conv2d(1, 4, 3, nn::Conv2dConfig { padding: 1, ..Default::default() }, vb.pp("backbone.conv"))?;
    let head = nn::linear(4 * 12 * 12, 3, vb.pp("backbone.head"))?;
    let backbone = Small { conv, relu: nn::Activation::Relu, flatten: Flatten::default(), head };
    let model = PSmall::new(backbone, vb)?;
    let images = Tensor::rand(0f32, 1f32, (2, 1, 12, 12), &Device::Cpu)?;
    let (logits, _state) = model.run(&images, 3)?;
    println!("minimal client: {} timesteps, logits {:?}", logits.len(), logits[2].dims());
    Ok(())
}
