//! Hostile numbers reaching the runtime: a state from another network, an empty batch, a √C
//! that is not a positive finite number, absurd timestep counts, layer sizes no machine holds
//! and non-finite weights are errors, never panics or aborts.

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use predify::runtime::layers::{Conv, Linear, MaxPool};
use predify::runtime::sequential::{Op, PredifiedSequential, Sequential};
use predify::runtime::{CSqrtSource, MAX_TIMESTEPS};
use predify::spec::{AxisValues, ConvSpec, Layer, Predictor, Spec, UpsampleMode, UpsampleSpec};
use predify::Predified;
use std::collections::HashMap;
use std::time::{Duration, Instant};

fn conv(cin: usize, cout: usize, k: usize) -> ConvSpec {
    ConvSpec {
        dims: 2,
        in_channels: cin,
        out_channels: cout,
        kernel_size: vec![k, k],
        stride: vec![1, 1],
        padding: vec![k / 2, k / 2],
        output_padding: vec![0, 0],
        dilation: vec![1, 1],
        groups: 1,
        bias: true,
    }
}

/// conv 3→4, relu, pool 2, conv 4→6, relu, flatten, linear → 5.
fn backbone(vb: &VarBuilder) -> Sequential {
    let mut s = Sequential::new();
    s.push("features[0]", Op::Conv(Conv::load(&conv(3, 4, 3), false, vb.pp("f0"), "f0").unwrap()));
    s.push("features[1]", Op::Relu);
    s.push("features[2]", Op::MaxPool(MaxPool::new(2, &[2, 2], &[2, 2], &[0, 0], &[1, 1], false, "f2").unwrap()));
    s.push("features[3]", Op::Conv(Conv::load(&conv(4, 6, 3), false, vb.pp("f3"), "f3").unwrap()));
    s.push("features[4]", Op::Relu);
    s.push("flatten", Op::Flatten { start_dim: 1 });
    s.push("classifier[0]", Op::Linear(Linear::load(6 * 4 * 4, 5, true, vb.pp("c0"), "c0").unwrap()));
    s
}

const ONE: &str = "[[pcoders]]\nmodule = \"features[1]\"\n";
const TWO: &str = "[[pcoders]]\nmodule = \"features[1]\"\n[[pcoders]]\nmodule = \"features[4]\"\n";

fn spec(extra: &str, pcoders: &str) -> Spec {
    Spec::from_toml_str(&format!("name = \"PSmall\"\ninput_size = [3, 8, 8]\n{extra}\n{pcoders}")).unwrap()
}

fn model_with(spec: &Spec, vb: VarBuilder, c_sqrt: CSqrtSource) -> predify::Result<PredifiedSequential> {
    let vm = VarMap::new();
    let bb = backbone(&VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu));
    PredifiedSequential::new(bb, spec, vb, c_sqrt)
}

fn model(pcoders: &str) -> PredifiedSequential {
    let vm = VarMap::new();
    model_with(&spec("", pcoders), VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu), CSqrtSource::Exact).unwrap()
}

fn input(n: usize) -> Tensor {
    Tensor::rand(0f32, 1f32, (n, 3, 8, 8), &Device::Cpu).unwrap()
}

#[test]
fn a_state_of_another_network_is_an_error() {
    let one = model(ONE);
    let two = model(TWO);
    let mut st = one.new_state(&input(2)).unwrap();
    let e = two.step(&mut st).unwrap_err().to_string();
    assert!(e.contains("another network") && e.contains("1 pcoders"), "{e}");
    // The state is still good for its own network, also after the refused step.
    one.step(&mut st).unwrap();
    let e = two.reconstruction_grads(&st).unwrap_err().to_string();
    assert!(e.contains("another network"), "{e}");
    // Same number of pcoders, other shapes: refused as well.
    let other = model("[[pcoders]]\nmodule = \"features[4]\"\n");
    let e = other.step(&mut st).unwrap_err().to_string();
    assert!(e.contains("another network"), "{e}");
    // Driving the PNet by hand: fire and end_pass check too.
    let mut st2 = two.new_state(&input(1)).unwrap();
    two.pnet().begin_pass(&mut st2).unwrap();
    let ff = Tensor::zeros((1, 4, 8, 8), DType::F32, &Device::Cpu).unwrap();
    assert!(one.pnet().fire(0, &ff, &mut st2).unwrap_err().to_string().contains("another network"));
    assert!(one.pnet().end_pass(&mut st2).unwrap_err().to_string().contains("another network"));
}

#[test]
fn an_empty_batch_is_an_error() {
    let m = model(TWO);
    let e = m.new_state(&Tensor::zeros((0, 3, 8, 8), DType::F32, &Device::Cpu).unwrap()).unwrap_err().to_string();
    assert!(e.contains("PSmall") && e.contains("empty"), "{e}");
    assert!(m.run(&Tensor::zeros((0, 3, 8, 8), DType::F32, &Device::Cpu).unwrap(), 2).is_err());
}

#[test]
fn c_sqrt_must_be_a_positive_finite_number() {
    let s = spec("gradient_scaling = true", TWO);
    let dev = Device::Cpu;
    let weights: HashMap<String, Tensor> = model(TWO).feedback_vars().into_iter().map(|(k, v)| (k, v.as_tensor().clone())).collect();
    for bad in [-1.0f32, 0.0, f32::NAN, f32::INFINITY, -0.0] {
        // From the weights (Predify's checkpoints store -1 until estimated).
        let mut t = weights.clone();
        t.insert("pcoder2.C_sqrt".to_string(), Tensor::new(bad, &dev).unwrap());
        let e = model_with(&s, VarBuilder::from_tensors(t, DType::F32, &dev), CSqrtSource::CheckpointOrExact).unwrap_err().to_string();
        assert!(e.contains("pcoder2.C_sqrt") && e.contains("> 0"), "{bad}: {e}");
        // Given.
        let vm = VarMap::new();
        let e = model_with(&s, VarBuilder::from_varmap(&vm, DType::F32, &dev), CSqrtSource::Given(vec![3.0, bad])).unwrap_err().to_string();
        assert!(e.contains("pcoder2.C_sqrt") && e.contains("given"), "{bad}: {e}");
    }
    // A positive value is used.
    let vm = VarMap::new();
    let m = model_with(&s, VarBuilder::from_varmap(&vm, DType::F32, &dev), CSqrtSource::Given(vec![3.0, 5.0])).unwrap();
    assert_eq!(m.pnet().pcoders()[1].c_sqrt(), Some(5.0));
}

#[test]
fn absurd_timestep_counts_are_errors() {
    let m = model(TWO);
    let start = Instant::now();
    let e = m.run(&input(1), usize::MAX).unwrap_err().to_string();
    assert!(e.contains("timesteps") && e.contains(&MAX_TIMESTEPS.to_string()), "{e}");
    let mut st = m.new_state(&input(1)).unwrap();
    assert!(m.run_state(&mut st, MAX_TIMESTEPS + 1).is_err());
    assert!(start.elapsed() < Duration::from_secs(1));
    assert_eq!(st.passes(), 0, "nothing ran");
    assert_eq!(m.run_state(&mut st, 2).unwrap().len(), 2);
}

#[test]
fn layer_sizes_from_a_spec_built_in_code_are_checked_before_allocating() {
    // The spec's validation limits kernel sizes; a spec built in code skips it.
    let mut s = spec("", ONE);
    s.pcoders[0].predictor = Some(Predictor::Single(Layer::ConvTranspose(conv(4, 3, 100_001))));
    let vm = VarMap::new();
    let e = model_with(&s, VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu), CSqrtSource::Exact).unwrap_err().to_string();
    assert!(e.contains("pcoder1.pmodule") && e.contains("elements"), "{e}");
    // A channel count whose weight product overflows.
    let mut c = conv(4, 3, 3);
    c.in_channels = usize::MAX / 2;
    s.pcoders[0].predictor = Some(Predictor::Single(Layer::ConvTranspose(c)));
    assert!(model_with(&s, VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu), CSqrtSource::Exact).is_err());
    // An upsampling whose intermediate result no machine holds, even if a later layer would
    // bring it back to the target's size.
    let up = UpsampleSpec { size: None, scale_factor: Some(AxisValues::Uniform(1e15)), mode: UpsampleMode::Nearest, align_corners: None };
    let mut shrink = conv(4, 3, 1);
    shrink.stride = vec![1 << 40, 1 << 40];
    shrink.padding = vec![0, 0];
    s.pcoders[0].predictor = Some(Predictor::Sequential(vec![Layer::Upsample(up), Layer::Conv(shrink)]));
    let e = model_with(&s, VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu), CSqrtSource::Exact).unwrap_err().to_string();
    assert!(e.contains("more than") && e.contains("elements"), "{e}");
}

#[test]
fn non_finite_weights_are_rejected_with_their_name() {
    let dev = Device::Cpu;
    let s = spec("", ONE);
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let mut w = vec![0.1f32; 4 * 3 * 3 * 3];
        w[17] = bad;
        let mut t = HashMap::new();
        t.insert("pcoder1.pmodule.0.weight".to_string(), Tensor::from_vec(w, (4, 3, 3, 3), &dev).unwrap());
        t.insert("pcoder1.pmodule.0.bias".to_string(), Tensor::zeros(3, DType::F32, &dev).unwrap());
        let e = model_with(&s, VarBuilder::from_tensors(t, DType::F32, &dev), CSqrtSource::Exact).unwrap_err().to_string();
        assert!(e.contains("pcoder1.pmodule.0.weight") && e.contains("NaN or infinite"), "{bad}: {e}");
    }
    // Backbone layers built from tensors: the same check.
    let w = Tensor::from_vec(vec![f32::NAN; 5 * 3], (5, 3), &dev).unwrap();
    let e = Linear::new(w, None, "fc").unwrap_err().to_string();
    assert!(e.contains("fc.weight"), "{e}");
    let w = Tensor::zeros((4, 3, 3, 3), DType::F32, &dev).unwrap();
    let b = Tensor::from_vec(vec![0.0, f32::INFINITY, 0.0, 0.0], 4, &dev).unwrap();
    let e = Conv::new(conv(3, 4, 3), false, w, Some(b), "conv1").unwrap_err().to_string();
    assert!(e.contains("conv1.bias"), "{e}");
}
