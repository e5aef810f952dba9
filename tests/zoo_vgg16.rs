//! VGG16 (torchvision layout) and PVGG16 (`templates/pvgg16.toml`).
//!
//! - Weights written by the test under torchvision's state-dict names load unchanged and give
//!   the logits of the same network written layer by layer with plain Candle ops.
//! - The feedforward shapes at Predify's tap points are PVGG16's.
//! - The predified network runs two timesteps at batch 2 on 224×224 (random weights).

mod zoo_common;

use anyhow::{ensure, Context, Result};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{VarBuilder, VarMap};
use predify::zoo::vgg16::{PVgg16, Vgg16, PREDIFY_TAP_POINTS};
use predify::CSqrtSource;
use std::collections::HashMap;
use std::time::Instant;
use zoo_common::{rel_err, runs_two_timesteps_at_batch_2};

/// torchvision's vgg16 "D" configuration: conv output channels, 0 for a max pooling.
const CFG: [usize; 18] = [64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0];

/// Predify's PVGG16 feedforward shapes at `features[3, 8, 15, 22, 29]` on 224×224.
const PREDIFY_SHAPES: [[usize; 3]; 5] = [[64, 224, 224], [128, 112, 112], [256, 56, 56], [512, 28, 28], [512, 14, 14]];

/// Tensors by state-dict name.
type Weights = HashMap<String, Tensor>;

/// Random weights under torchvision's names (He-scaled so activations stay O(1)), and the
/// positions of the convolutions in `features`.
fn torchvision_weights(num_classes: usize, dev: &Device) -> Result<(Weights, Vec<(usize, usize)>)> {
    let mut w = HashMap::new();
    let mut convs = Vec::new();
    let (mut i, mut cin) = (0, 3);
    for &c in &CFG {
        if c == 0 {
            i += 1;
            continue;
        }
        let std = (2.0 / (cin * 9) as f64).sqrt();
        w.insert(format!("features.{i}.weight"), Tensor::randn(0f32, std as f32, (c, cin, 3, 3), dev)?);
        w.insert(format!("features.{i}.bias"), Tensor::randn(0f32, 0.05, c, dev)?);
        convs.push((i, c));
        cin = c;
        i += 2;
    }
    for (k, fin, fout) in [(0, 25088, 4096), (3, 4096, 4096), (6, 4096, num_classes)] {
        let std = (2.0 / fin as f64).sqrt() as f32;
        w.insert(format!("classifier.{k}.weight"), Tensor::randn(0f32, std, (fout, fin), dev)?);
        w.insert(format!("classifier.{k}.bias"), Tensor::randn(0f32, 0.05, fout, dev)?);
    }
    Ok((w, convs))
}

/// VGG16 written out with plain Candle ops on the named tensors.
fn reference_forward(w: &HashMap<String, Tensor>, x: &Tensor) -> Result<Tensor> {
    let get = |k: &str| w.get(k).cloned().with_context(|| k.to_string());
    let mut h = x.clone();
    let mut i = 0;
    for &c in &CFG {
        if c == 0 {
            h = h.max_pool2d(2)?;
            i += 1;
        } else {
            let b = get(&format!("features.{i}.bias"))?.reshape((1, c, 1, 1))?;
            h = h.conv2d(&get(&format!("features.{i}.weight"))?, 1, 1, 1, 1)?.broadcast_add(&b)?.relu()?;
            i += 2;
        }
    }
    // AdaptiveAvgPool2d((7, 7)) is the identity on the 7×7 maps of a 224×224 input.
    ensure!(h.dims()[2..] == [7, 7], "features output {:?}", h.dims());
    h = h.flatten_from(1)?;
    for k in [0, 3, 6] {
        let lw = get(&format!("classifier.{k}.weight"))?;
        h = h.matmul(&lw.t()?)?.broadcast_add(&get(&format!("classifier.{k}.bias"))?)?;
        if k != 6 {
            h = h.relu()?;
        }
    }
    Ok(h)
}

#[test]
fn torchvision_weights_load_and_match_the_layer_by_layer_network() -> Result<()> {
    let dev = Device::Cpu;
    let t = Instant::now();
    let (weights, convs) = torchvision_weights(1000, &dev)?;
    let dir = std::env::temp_dir().join(format!("predify-vgg16-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("vgg16.safetensors");
    candle_core::safetensors::save(&weights, &file)?;
    let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[&file], DType::F32, &dev)? };
    let net = Vgg16::load(vb, 1000)?;
    println!("vgg16: weights written and loaded in {:.1} s", t.elapsed().as_secs_f64());
    ensure!(convs.len() == 13);

    let x = Tensor::randn(0f32, 1f32, (2, 3, 224, 224), &dev)?;
    let t = Instant::now();
    // The feedforward pass layer by layer, checking the tap points on the way.
    let mut h = x.clone();
    let mut taps = Vec::new();
    for (i, layer) in net.features.iter().enumerate() {
        h = layer.forward(&h)?;
        if PREDIFY_TAP_POINTS.contains(&i) {
            taps.push(h.dims()[1..].to_vec());
        }
    }
    let want: Vec<Vec<usize>> = PREDIFY_SHAPES.iter().map(|s| s.to_vec()).collect();
    ensure!(taps == want, "tap shapes {taps:?}, Predify's {want:?}");
    let logits = net.forward(&x)?;
    println!("vgg16: feedforward at batch 2 in {:.1} s (twice)", t.elapsed().as_secs_f64());
    ensure!(logits.dims() == [2, 1000], "logits {:?}", logits.dims());

    let t = Instant::now();
    let reference = reference_forward(&weights, &x)?;
    println!("vgg16: reference (plain candle ops) in {:.1} s", t.elapsed().as_secs_f64());
    let e = rel_err(&logits, &reference)?;
    println!("vgg16: logits vs reference: max |Δ| / max |ref| = {e:.2e}");
    ensure!(e < 1e-4, "relative error {e}");
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

#[test]
fn pvgg16_runs_two_timesteps_at_batch_2() -> Result<()> {
    let dev = Device::Cpu;
    let t = Instant::now();
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
    let backbone = Vgg16::load(vb.pp("backbone"), 1000)?;
    // PVGG16 is gradient-scaled (PCoderN). √C of a ConvTranspose k×k (stride ≤ k) with C_out
    // output channels is √(k²·C_out): what `CSqrtSource::Exact` finds by probing each predictor
    // with a one-hot input, which costs a full predictor pass per pcoder on the CPU; given here
    // to keep the test short.
    let c_sqrt = [(5, 3), (10, 64), (14, 128), (14, 256), (14, 512)].map(|(k, c): (usize, usize)| ((k * k * c) as f32).sqrt());
    let net = PVgg16::with_c_sqrt(backbone, vb, CSqrtSource::Given(c_sqrt.to_vec()))?;
    println!("pvgg16: built (random weights) in {:.1} s", t.elapsed().as_secs_f64());

    runs_two_timesteps_at_batch_2("pvgg16", &net, &PREDIFY_SHAPES, 1)
}
