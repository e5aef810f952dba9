//! EfficientNet-B0 (torchvision layout and numerics) and PEfficientNetB0
//! (`templates/pefficientnetb0.toml`).
//!
//! - Weights written by the test under torchvision's state-dict names (`features.0.0.weight`,
//!   `features.1.0.block.0.0.weight`, …, with `num_batches_tracked` as torchvision has it) load
//!   unchanged and give the logits of the same network written with plain Candle ops
//!   (symmetric padding, BatchNorm eps 1e-5, SiLU, squeeze-excitation, residuals).
//! - The feedforward shapes at the eight tap points are PEfficientNetB0's.
//! - The predified network runs two timesteps at batch 2 on 224×224 (random weights).

mod zoo_common;

use anyhow::{ensure, Context, Result};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{VarBuilder, VarMap};
use predify::zoo::efficientnet::{EfficientNetB0, PEfficientNetB0};
use std::collections::HashMap;
use std::time::Instant;
use zoo_common::{rel_err, runs_two_timesteps_at_batch_2};

/// torchvision's efficientnet_b0 stages: expand ratio, kernel, stride, in, out, layers.
const STAGES: [(usize, usize, usize, usize, usize, usize); 7] = [
    (1, 3, 1, 32, 16, 1),
    (6, 3, 2, 16, 24, 2),
    (6, 5, 2, 24, 40, 2),
    (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3),
    (6, 5, 2, 112, 192, 4),
    (6, 3, 1, 192, 320, 1),
];

/// PEfficientNetB0's feedforward shapes at `act1`, `blocks[0]` … `blocks[6]` on 224×224.
const PREDIFY_SHAPES: [[usize; 3]; 8] = [
    [32, 112, 112],
    [16, 112, 112],
    [24, 56, 56],
    [40, 28, 28],
    [80, 14, 14],
    [112, 14, 14],
    [192, 7, 7],
    [320, 7, 7],
];

struct Weights {
    map: HashMap<String, Tensor>,
    dev: Device,
}

impl Weights {
    fn conv(&mut self, name: &str, cout: usize, cin_per_group: usize, k: usize, bias: bool) -> Result<()> {
        let std = (2.0 / (cin_per_group * k * k) as f64).sqrt() as f32;
        self.map.insert(format!("{name}.weight"), Tensor::randn(0f32, std, (cout, cin_per_group, k, k), &self.dev)?);
        if bias {
            self.map.insert(format!("{name}.bias"), Tensor::randn(0f32, 0.1, cout, &self.dev)?);
        }
        Ok(())
    }

    fn bn(&mut self, name: &str, c: usize) -> Result<()> {
        let d = &self.dev;
        self.map.insert(format!("{name}.weight"), Tensor::rand(0.5f32, 1.5, c, d)?);
        self.map.insert(format!("{name}.bias"), Tensor::randn(0f32, 0.1, c, d)?);
        self.map.insert(format!("{name}.running_mean"), Tensor::randn(0f32, 0.1, c, d)?);
        self.map.insert(format!("{name}.running_var"), Tensor::rand(0.5f32, 1.5, c, d)?);
        self.map.insert(format!("{name}.num_batches_tracked"), Tensor::new(1000i64, d)?);
        Ok(())
    }

    /// Every tensor of torchvision's efficientnet_b0 state dict, random.
    fn torchvision(dev: &Device) -> Result<Self> {
        let mut w = Weights { map: HashMap::new(), dev: dev.clone() };
        w.conv("features.0.0", 32, 3, 3, false)?;
        w.bn("features.0.1", 32)?;
        for (s, &(e, k, _, cin0, cout, n)) in STAGES.iter().enumerate() {
            for j in 0..n {
                let cin = if j == 0 { cin0 } else { cout };
                let exp = cin * e;
                let p = format!("features.{}.{j}.block", s + 1);
                let mut b = 0;
                if e != 1 {
                    w.conv(&format!("{p}.0.0"), exp, cin, 1, false)?;
                    w.bn(&format!("{p}.0.1"), exp)?;
                    b = 1;
                }
                w.conv(&format!("{p}.{b}.0"), exp, 1, k, false)?;
                w.bn(&format!("{p}.{b}.1"), exp)?;
                let sq = (cin / 4).max(1);
                w.conv(&format!("{p}.{}.fc1", b + 1), sq, exp, 1, true)?;
                w.conv(&format!("{p}.{}.fc2", b + 1), exp, sq, 1, true)?;
                w.conv(&format!("{p}.{}.0", b + 2), cout, exp, 1, false)?;
                w.bn(&format!("{p}.{}.1", b + 2), cout)?;
            }
        }
        w.conv("features.8.0", 1280, 320, 1, false)?;
        w.bn("features.8.1", 1280)?;
        w.map.insert("classifier.1.weight".into(), Tensor::randn(0f32, (1.0f64 / 1280.0).sqrt() as f32, (1000, 1280), dev)?);
        w.map.insert("classifier.1.bias".into(), Tensor::randn(0f32, 0.1, 1000, dev)?);
        Ok(w)
    }

    fn get(&self, k: &str) -> Result<Tensor> {
        self.map.get(k).cloned().with_context(|| k.to_string())
    }

    /// torchvision's Conv2dNormActivation, written out: conv (padding (k−1)/2), BN eval, SiLU.
    fn cba(&self, x: &Tensor, p: &str, stride: usize, groups: usize, act: bool) -> Result<Tensor> {
        let w = self.get(&format!("{p}.0.weight"))?;
        let k = w.dims()[2];
        let h = x.conv2d(&w, (k - 1) / 2, stride, 1, groups)?;
        let c = w.dims()[0];
        let r = |n: &str| -> Result<Tensor> { Ok(self.get(&format!("{p}.1.{n}"))?.reshape((1, c, 1, 1))?) };
        let h = h.broadcast_sub(&r("running_mean")?)?.broadcast_div(&(r("running_var")? + 1e-5)?.sqrt()?)?;
        let h = h.broadcast_mul(&r("weight")?)?.broadcast_add(&r("bias")?)?;
        Ok(if act { h.silu()? } else { h })
    }

    fn conv_bias(&self, x: &Tensor, p: &str) -> Result<Tensor> {
        let b = self.get(&format!("{p}.bias"))?;
        let c = b.dims()[0];
        Ok(x.conv2d(&self.get(&format!("{p}.weight"))?, 0, 1, 1, 1)?.broadcast_add(&b.reshape((1, c, 1, 1))?)?)
    }

    /// The whole network with plain Candle ops; also returns the outputs at the tap points.
    fn forward(&self, x: &Tensor) -> Result<(Tensor, Vec<Vec<usize>>)> {
        let mut taps = Vec::new();
        let mut h = self.cba(x, "features.0", 2, 1, true)?;
        taps.push(h.dims()[1..].to_vec());
        for (s, &(e, _, stride, cin0, cout, n)) in STAGES.iter().enumerate() {
            for j in 0..n {
                let cin = if j == 0 { cin0 } else { cout };
                let st = if j == 0 { stride } else { 1 };
                let p = format!("features.{}.{j}.block", s + 1);
                let input = h.clone();
                let mut b = 0;
                if e != 1 {
                    h = self.cba(&h, &format!("{p}.0"), 1, 1, true)?;
                    b = 1;
                }
                h = self.cba(&h, &format!("{p}.{b}"), st, cin * e, true)?;
                let scale = h.mean_keepdim(3)?.mean_keepdim(2)?;
                let scale = self.conv_bias(&scale, &format!("{p}.{}.fc1", b + 1))?.silu()?;
                let scale = candle_nn::ops::sigmoid(&self.conv_bias(&scale, &format!("{p}.{}.fc2", b + 1))?)?;
                h = h.broadcast_mul(&scale)?;
                h = self.cba(&h, &format!("{p}.{}", b + 2), 1, 1, false)?;
                if st == 1 && cin == cout {
                    h = (h + input)?;
                }
            }
            taps.push(h.dims()[1..].to_vec());
        }
        h = self.cba(&h, "features.8", 1, 1, true)?;
        h = h.mean(3)?.mean(2)?;
        let logits = h.matmul(&self.get("classifier.1.weight")?.t()?)?.broadcast_add(&self.get("classifier.1.bias")?)?;
        Ok((logits, taps))
    }
}

#[test]
fn torchvision_weights_load_and_match_the_layer_by_layer_network() -> Result<()> {
    let dev = Device::Cpu;
    let w = Weights::torchvision(&dev)?;
    let dir = std::env::temp_dir().join(format!("predify-effnet-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("efficientnet_b0.safetensors");
    candle_core::safetensors::save(&w.map, &file)?;
    let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[&file], DType::F32, &dev)? };
    let net = EfficientNetB0::load(vb, 1000)?;

    let x = Tensor::randn(0f32, 1f32, (2, 3, 224, 224), &dev)?;
    let t = Instant::now();
    let logits = net.forward(&x)?;
    println!("efficientnet_b0: feedforward at batch 2 in {:.2} s", t.elapsed().as_secs_f64());
    ensure!(logits.dims() == [2, 1000], "logits {:?}", logits.dims());

    // Tap points, through the struct's fields.
    let mut h = net.act1.forward(&net.bn1.forward(&net.conv_stem.forward(&x)?)?)?;
    let mut taps = vec![h.dims()[1..].to_vec()];
    for stage in &net.blocks {
        h = stage.forward(&h)?;
        taps.push(h.dims()[1..].to_vec());
    }
    let want: Vec<Vec<usize>> = PREDIFY_SHAPES.iter().map(|s| s.to_vec()).collect();
    ensure!(taps == want, "tap shapes {taps:?}, Predify's {want:?}");

    let t = Instant::now();
    let (reference, ref_taps) = w.forward(&x)?;
    println!("efficientnet_b0: reference (plain candle ops) in {:.2} s", t.elapsed().as_secs_f64());
    ensure!(ref_taps == want, "reference tap shapes {ref_taps:?}");
    let e = rel_err(&logits, &reference)?;
    println!("efficientnet_b0: logits vs reference: max |Δ| / max |ref| = {e:.2e}");
    ensure!(e < 1e-4, "relative error {e}");
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

#[test]
fn pefficientnetb0_runs_two_timesteps_at_batch_2() -> Result<()> {
    let dev = Device::Cpu;
    let t = Instant::now();
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
    let backbone = EfficientNetB0::load(vb.pp("backbone"), 1000)?;
    let net = PEfficientNetB0::new(backbone, vb)?;
    println!("pefficientnetb0: built in {:.2} s", t.elapsed().as_secs_f64());

    runs_two_timesteps_at_batch_2("pefficientnetb0", &net, &PREDIFY_SHAPES, 2)
}
