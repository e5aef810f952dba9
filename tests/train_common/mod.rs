//! Shared helpers of the train/tune/eval tests: a tiny predified network on 28×28 images with
//! deterministic weights, and synthetic MNIST-shaped data sets.
#![allow(dead_code)]

use predify::Predified;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use predify::data::idx::IdxArray;
use predify::data::mnist::MnistSet;
use predify::runtime::layers::{Conv, Linear, MaxPool};
use predify::runtime::sequential::{Op, PredifiedSequential, Sequential};
use predify::runtime::CSqrtSource;
use predify::spec::{ConvSpec, Spec};
use predify::common::Rng;
use std::collections::HashMap;
use std::path::Path;

pub fn conv_spec(cin: usize, cout: usize) -> ConvSpec {
    ConvSpec {
        dims: 2,
        in_channels: cin,
        out_channels: cout,
        kernel_size: vec![3, 3],
        stride: vec![1, 1],
        padding: vec![1, 1],
        output_padding: vec![0, 0],
        dilation: vec![1, 1],
        groups: 1,
        bias: true,
    }
}

fn uniform(rng: &mut Rng, dims: &[usize], bound: f64) -> Tensor {
    let n: usize = dims.iter().product();
    let v: Vec<f32> = (0..n).map(|_| ((rng.uniform() * 2.0 - 1.0) * bound) as f32).collect();
    Tensor::from_vec(v, dims, &Device::Cpu).unwrap()
}

/// conv 1→2 (3×3, pad 1), relu [pcoder1: 2×28×28], pool 2, conv 2→3, relu [pcoder2:
/// 3×14×14], pool 2, flatten, linear 147 → 10. Backbone weights seeded; predictors: pcoder1
/// ConvTranspose2d(2, 1, 3, padding 1), pcoder2 the default (Upsample ×2, ConvTranspose2d 3→2).
/// `seed` initialises the feedback weights; `extra` goes into the spec (e.g. `gradient_scaling = true`).
pub fn tiny_net(name: &str, extra: &str, seed: u64) -> PredifiedSequential {
    let mut rng = Rng::new(12345); // the backbone is the same for every seed
    let mut t = HashMap::new();
    t.insert("f0.weight".to_string(), uniform(&mut rng, &[2, 1, 3, 3], 0.5));
    t.insert("f0.bias".to_string(), uniform(&mut rng, &[2], 0.1));
    t.insert("f3.weight".to_string(), uniform(&mut rng, &[3, 2, 3, 3], 0.4));
    t.insert("f3.bias".to_string(), uniform(&mut rng, &[3], 0.1));
    t.insert("c0.weight".to_string(), uniform(&mut rng, &[10, 147], 0.3));
    t.insert("c0.bias".to_string(), uniform(&mut rng, &[10], 0.1));
    // Predictor weights are created by the builder and re-initialised with a seed below.
    let vb = VarBuilder::from_tensors(t.clone(), DType::F32, &Device::Cpu);
    let mut s = Sequential::new();
    s.push("features[0]", Op::Conv(Conv::load(&conv_spec(1, 2), false, vb.pp("f0"), "f0").unwrap()));
    s.push("features[1]", Op::Relu);
    s.push("features[2]", Op::MaxPool(MaxPool::new(2, &[2, 2], &[2, 2], &[0, 0], &[1, 1], false, "f2").unwrap()));
    s.push("features[3]", Op::Conv(Conv::load(&conv_spec(2, 3), false, vb.pp("f3"), "f3").unwrap()));
    s.push("features[4]", Op::Relu);
    s.push("features[5]", Op::MaxPool(MaxPool::new(2, &[2, 2], &[2, 2], &[0, 0], &[1, 1], false, "f5").unwrap()));
    s.push("flatten", Op::Flatten { start_dim: 1 });
    s.push("classifier[0]", Op::Linear(Linear::load(147, 10, true, vb.pp("c0"), "c0").unwrap()));
    let toml = format!(
        "name = \"{name}\"\ninput_size = [1, 28, 28]\n{extra}\n\
         [[pcoders]]\nmodule = \"features[1]\"\npredictor = \"ConvTranspose2d(2, 1, kernel_size=3, stride=1, padding=1)\"\n\
         hyperparameters = {{feedforward = 0.3, feedback = 0.3, pc = 0.05}}\n\
         [[pcoders]]\nmodule = \"features[4]\"\nhyperparameters = {{feedforward = 0.4, feedback = 0.0, pc = 0.05}}\n"
    );
    let spec = Spec::from_toml_str(&toml).unwrap();
    let vm = candle_nn::VarMap::new();
    let vb = VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu);
    let net = PredifiedSequential::new(s, &spec, vb, CSqrtSource::Exact).unwrap();
    predify::train::init_feedback(net.pnet(), seed).unwrap();
    net
}

/// `n` synthetic 28×28 digits: a fixed random blob pattern per class plus pixel noise.
pub fn synthetic_set(n: usize, seed: u64) -> MnistSet {
    let mut rng = Rng::new(1234);
    let templates: Vec<Vec<f64>> = (0..10)
        .map(|_| {
            let mut img = vec![0f64; 784];
            for _ in 0..4 {
                let (cy, cx) = (4.0 + rng.uniform() * 20.0, 4.0 + rng.uniform() * 20.0);
                for y in 0..28 {
                    for x in 0..28 {
                        let d2 = (y as f64 - cy).powi(2) + (x as f64 - cx).powi(2);
                        img[y * 28 + x] += (-d2 / 12.0).exp();
                    }
                }
            }
            img
        })
        .collect();
    let mut rng = Rng::new(seed);
    let mut px = Vec::with_capacity(n * 784);
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let c = i % 10;
        labels.push(c as u8);
        for v in &templates[c] {
            let p = (v * 220.0 + rng.normal() * 20.0).clamp(0.0, 255.0);
            px.push(p as u8);
        }
    }
    MnistSet::new(
        IdxArray::new(vec![n, 28, 28], px).unwrap(),
        IdxArray::new(vec![n], labels).unwrap(),
        Path::new("<synthetic>"),
    )
    .unwrap()
}

/// Every feedback weight of the network, by name.
pub fn weights(pnet: &predify::runtime::PNet) -> Vec<(String, Vec<f32>)> {
    pnet.feedback_vars().into_iter().map(|(n, v)| (n, v.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap())).collect()
}

/// A fresh temporary directory for one test.
pub fn temp_dir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("predify-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}
