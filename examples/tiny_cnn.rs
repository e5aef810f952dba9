//! Predify a small CNN and print each pcoder's prediction error at every timestep.
//!
//! `cargo run --release --example tiny_cnn`
//!
//! The backbone and predictor weights are random (seeded draws through a `VarMap`); the point is
//! to show the wiring and the dynamics end to end on CPU in a second.

use predify::Predified;
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use predify::runtime::layers::{Conv, Linear, MaxPool};
use predify::runtime::sequential::{Op, PredifiedSequential, Sequential};
use predify::spec::{ConvSpec, Spec};
use predify::CSqrtSource;

const SPEC: &str = r#"
name = "PTinyCnn"
input_size = [1, 28, 28]
gradient_scaling = true

[[pcoders]]
module = "features[1]"
predictor = "ConvTranspose2d(8, 1, kernel_size=5, padding=2)"
hyperparameters = {feedforward = 0.3, feedback = 0.3, pc = 0.01}

[[pcoders]]
module = "features[4]"
hyperparameters = {feedforward = 0.4, feedback = 0.0, pc = 0.01}
"#;

fn conv(cin: usize, cout: usize, k: usize, p: usize) -> ConvSpec {
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

fn main() -> anyhow::Result<()> {
    let dev = Device::Cpu;
    let spec = Spec::from_toml_str(SPEC)?;
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);

    let mut net = Sequential::new();
    let f = vb.pp("backbone.features");
    net.push("features[0]", Op::Conv(Conv::load(&conv(1, 8, 5, 2), false, f.pp("0"), "features.0")?));
    net.push("features[1]", Op::Relu);
    net.push("features[2]", Op::MaxPool(MaxPool::new(2, &[2, 2], &[2, 2], &[0, 0], &[1, 1], false, "features.2")?));
    net.push("features[3]", Op::Conv(Conv::load(&conv(8, 16, 5, 2), false, f.pp("3"), "features.3")?));
    net.push("features[4]", Op::Relu);
    net.push("features[5]", Op::MaxPool(MaxPool::new(2, &[3, 3], &[3, 3], &[0, 0], &[1, 1], false, "features.5")?));
    net.push("flatten", Op::Flatten { start_dim: 1 });
    net.push("classifier[0]", Op::Linear(Linear::load(256, 10, true, vb.pp("backbone.classifier.0"), "classifier.0")?));

    let model = PredifiedSequential::new(net, &spec, vb, CSqrtSource::Exact)?;
    let input = Tensor::rand(0f32, 1f32, (4, 1, 28, 28), &dev)?;
    let timesteps = 8;
    let (_, state) = model.run(&input, timesteps)?;

    println!("{}: prediction error per pcoder and timestep (batch of 4 random images)", model.pnet().name());
    print!("{:>4}", "t");
    for pc in model.pnet().pcoders() {
        print!("  {:>12}", format!("pcoder{}", pc.number()));
    }
    println!();
    for (t, errs) in state.trace().iter().enumerate() {
        print!("{t:>4}");
        for e in errs {
            print!("  {e:>12.6}");
        }
        println!();
    }
    Ok(())
}
