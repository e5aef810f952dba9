//! Supervised training of a backbone the project trains itself: the mnist-8 architecture
//! ([`Mnist8`]) from scratch, for data sets without a published network (Fashion-MNIST).
//!
//! Cross-entropy, Adam, seeded initialisation (PyTorch's default, `U(±1/√fan_in)`) and
//! shuffles; the backward pass uses the runtime layers' adjoints (`Conv::param_grads`,
//! `Conv::input_grad`, `MaxPool::input_grad`). Weights are saved as safetensors under
//! [`Mnist8`]'s names (`conv1.weight`, …, `fc.bias`) and load with [`load_backbone`].
//!
//! The data are any [`Dataset`] of `[1, 28, 28]` items (Fashion-MNIST:
//! [`crate::data::fashion::obtain`], loaded as an [`crate::data::mnist::MnistSet`]).

use crate::common::progress::progress_bar;
use crate::common::{epoch_order, write_atomic, Error, Result, Rng};
use crate::data::{gather, Dataset};
use crate::loss::{count_correct, cross_entropy};
use crate::zoo::mnist8::Mnist8;
use candle_core::{DType, Device, Tensor, Var};
use predify_runtime::layers::Linear;
use predify_runtime::optim::Adam;
use rayon::prelude::*;
use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

/// [`Mnist8`] reads `[1, 28, 28]` images: say so up front rather than fail in a layer.
fn check_items(set: &(impl Dataset + ?Sized)) -> Result<()> {
    if set.item_shape() != crate::data::mnist::ITEM_SHAPE {
        return Err(Error::Config(format!("the mnist-8 backbone takes [1, 28, 28] images, the data set has items of shape {:?}", set.item_shape())));
    }
    Ok(())
}

/// Settings of supervised backbone training.
#[derive(Debug, Clone)]
pub struct SupervisedConfig {
    /// Epochs.
    pub epochs: usize,
    /// Images per step.
    pub batch_size: usize,
    /// Adam's learning rate.
    pub lr: f64,
    /// Seed of the initialisation and the shuffles.
    pub seed: u64,
    /// Train on the first `n` images only.
    pub train_limit: Option<usize>,
    /// Show a progress bar.
    pub progress: bool,
}

fn uniform(rng: &mut Rng, dims: &[usize], bound: f64) -> Result<Tensor> {
    let n: usize = dims.iter().product();
    let v: Vec<f32> = (0..n).map(|_| ((rng.uniform() * 2.0 - 1.0) * bound) as f32).collect();
    Ok(Tensor::from_vec(v, dims, &Device::Cpu)?)
}

/// A freshly initialised [`Mnist8`] (PyTorch's default initialisation, seeded).
pub fn init_backbone(seed: u64) -> Result<Mnist8> {
    let mut rng = Rng::derive(seed, "backbone-init", 0);
    let mut m = HashMap::new();
    for (name, dims, fan_in) in [
        ("conv1", vec![8, 1, 5, 5], 25usize),
        ("conv2", vec![16, 8, 5, 5], 200),
        ("fc", vec![10, 256], 256),
    ] {
        let b = 1.0 / (fan_in as f64).sqrt();
        m.insert(format!("{name}.weight"), uniform(&mut rng, &dims, b)?);
        m.insert(format!("{name}.bias"), uniform(&mut rng, &[dims[0]], b)?);
    }
    Ok(Mnist8::load(candle_nn::VarBuilder::from_tensors(m, DType::F32, &Device::Cpu))?)
}

/// The backbone's weights under its names.
pub fn backbone_tensors(net: &Mnist8, fc: Option<(&Tensor, &Tensor)>) -> Result<Vec<(String, Tensor)>> {
    let mut v = vec![
        ("conv1.weight".to_string(), net.conv1.weight().as_tensor().clone()),
        ("conv2.weight".to_string(), net.conv2.weight().as_tensor().clone()),
    ];
    for (name, c) in [("conv1", &net.conv1), ("conv2", &net.conv2)] {
        if let Some(b) = c.bias() {
            v.push((format!("{name}.bias"), b.as_tensor().clone()));
        }
    }
    let (w, b) = match fc {
        Some((w, b)) => (w.clone(), b.clone()),
        None => {
            // Linear keeps its weights private: recover them from its action on the identity.
            let eye = Tensor::eye(256, DType::F32, &Device::Cpu)?;
            let zero = Tensor::zeros((1, 256), DType::F32, &Device::Cpu)?;
            let b = net.fc.forward(&zero)?.reshape(10)?;
            let w = net.fc.forward(&eye)?.broadcast_sub(&b)?.t()?.contiguous()?;
            (w, b)
        }
    };
    v.push(("fc.weight".into(), w));
    v.push(("fc.bias".into(), b));
    Ok(v)
}

/// Save the backbone as safetensors under [`Mnist8`]'s names, atomically.
pub fn save_backbone(net: &Mnist8, path: &Path) -> Result<()> {
    let tensors = backbone_tensors(net, None)?;
    let mut meta = HashMap::new();
    meta.insert("network".to_string(), "Mnist8".to_string());
    let bytes = safetensors::tensor::serialize(tensors.iter().map(|(k, t)| (k.as_str(), t)), Some(meta))
        .map_err(|e| Error::Config(format!("{}: serialising: {e}", path.display())))?;
    write_atomic(path, |f| std::io::Write::write_all(f, &bytes))
}

/// Load a backbone saved by [`save_backbone`] (or any safetensors file with [`Mnist8`]'s
/// names and shapes); errors name the file and the tensor.
pub fn load_backbone(path: &Path) -> Result<Mnist8> {
    let tensors = candle_core::safetensors::load(path, &Device::Cpu)
        .map_err(|e| Error::Checkpoint { path: path.to_path_buf(), message: format!("not a readable safetensors file: {e}") })?;
    for (name, dims) in [
        ("conv1.weight", &[8usize, 1, 5, 5][..]),
        ("conv1.bias", &[8]),
        ("conv2.weight", &[16, 8, 5, 5]),
        ("conv2.bias", &[16]),
        ("fc.weight", &[10, 256]),
        ("fc.bias", &[10]),
    ] {
        match tensors.get(name) {
            None => return Err(Error::Checkpoint { path: path.to_path_buf(), message: format!("tensor `{name}` is missing") }),
            Some(t) if t.dims() != dims => {
                return Err(Error::Checkpoint { path: path.to_path_buf(), message: format!("tensor `{name}`: shape {:?}, expected {dims:?}", t.dims()) })
            }
            _ => {}
        }
    }
    // The layers reject non-finite or mistyped weights; say which file they came from.
    Mnist8::load(candle_nn::VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu))
        .map_err(|e| Error::Checkpoint { path: path.to_path_buf(), message: e.to_string() })
}

/// Classification accuracy of the backbone on `set`.
pub fn accuracy(net: &Mnist8, set: &(impl Dataset + ?Sized), batch_size: usize) -> Result<f64> {
    use candle_core::Module;
    check_items(set)?;
    let mut correct = 0usize;
    for start in (0..set.len()).step_by(batch_size.max(1)) {
        let idx: Vec<usize> = (start..(start + batch_size).min(set.len())).collect();
        let (x, labels) = gather(set, &idx, &Device::Cpu)?;
        correct += count_correct(&net.forward(&x)?, &labels)?;
    }
    Ok(correct as f64 / set.len().max(1) as f64)
}

/// Mean cross-entropy of the backbone (with the classifier `fc` = (weight, bias) given as
/// tensors) on `(x, labels)` and its gradient w.r.t. every parameter, by name.
fn backbone_grads(net: &Mnist8, fc: (&Tensor, &Tensor), x: &Tensor, labels: &[u32]) -> Result<(f64, Vec<(String, Tensor)>)> {
    let (fc_w, fc_b) = fc;
    // forward, keeping what the backward pass needs
    let a1 = net.conv1.forward(x)?;
    let r1 = a1.relu()?;
    let p1 = net.pool1.forward(&r1)?;
    let a2 = net.conv2.forward(&p1)?;
    let r2 = a2.relu()?;
    let p2 = net.pool2.forward(&r2)?;
    let h = p2.flatten_from(1)?;
    let logits = h.matmul(&fc_w.t()?)?.broadcast_add(fc_b)?;
    let (loss, g) = cross_entropy(&logits, labels)?;
    // backward
    let d_fc_w = g.t()?.matmul(&h)?;
    let d_fc_b = g.sum(0)?;
    let dh = g.matmul(fc_w)?.reshape(p2.dims())?;
    let dr2 = net.pool2.input_grad(&r2, &dh)?;
    let da2 = (dr2 * a2.gt(0f32)?.to_dtype(DType::F32)?)?;
    let (d_c2w, d_c2b) = net.conv2.param_grads(&p1, &da2)?;
    let dp1 = net.conv2.input_grad(p1.dims(), &da2)?;
    let dr1 = net.pool1.input_grad(&r1, &dp1)?;
    let da1 = (dr1 * a1.gt(0f32)?.to_dtype(DType::F32)?)?;
    let (d_c1w, d_c1b) = net.conv1.param_grads(x, &da1)?;
    let mut grads = vec![
        ("conv1.weight".to_string(), d_c1w),
        ("conv2.weight".to_string(), d_c2w),
        ("fc.weight".to_string(), d_fc_w),
        ("fc.bias".to_string(), d_fc_b),
    ];
    if let Some(d) = d_c1b {
        grads.push(("conv1.bias".into(), d));
    }
    if let Some(d) = d_c2b {
        grads.push(("conv2.bias".into(), d));
    }
    Ok((loss, grads))
}

/// Train a fresh [`Mnist8`] on `set` with cross-entropy and Adam; `on_epoch(epoch, mean loss,
/// seconds)` is called after each epoch.
pub fn train_backbone(set: &(impl Dataset + ?Sized), config: &SupervisedConfig, mut on_epoch: impl FnMut(usize, f64, f64)) -> Result<Mnist8> {
    check_items(set)?;
    let mut net = init_backbone(config.seed)?;
    let n = config.train_limit.map_or(set.len(), |l| l.min(set.len()));
    if n == 0 || config.batch_size == 0 {
        return Err(Error::Config("supervised training needs images and a batch size of at least 1".into()));
    }
    let init = backbone_tensors(&net, None)?;
    let get = |k: &str| init.iter().find(|(n, _)| n == k).map(|(_, t)| t.clone()).ok_or_else(|| Error::Config(format!("no {k}")));
    let fc_w = Var::from_tensor(&get("fc.weight")?)?;
    let fc_b = Var::from_tensor(&get("fc.bias")?)?;
    let mut params: Vec<(String, Var)> = vec![
        ("conv1.weight".into(), net.conv1.weight().clone()),
        ("conv2.weight".into(), net.conv2.weight().clone()),
        ("fc.weight".into(), fc_w.clone()),
        ("fc.bias".into(), fc_b.clone()),
    ];
    if let Some(b) = net.conv1.bias() {
        params.push(("conv1.bias".into(), b.clone()));
    }
    if let Some(b) = net.conv2.bias() {
        params.push(("conv2.bias".into(), b.clone()));
    }
    let mut adam = Adam::new(config.lr);
    let mut saved = super::guarded::Snapshot::default();
    let nb = n.div_ceil(config.batch_size);
    for epoch in 0..config.epochs {
        let t = Instant::now();
        let order = epoch_order(n, config.seed, epoch);
        let bar = progress_bar(config.progress, nb as u64, format!("backbone epoch {}/{}", epoch + 1, config.epochs));
        let mut sum = 0.0;
        for b in 0..nb {
            let idx = &order[b * config.batch_size..((b + 1) * config.batch_size).min(n)];
            let (x, labels) = gather(set, idx, &Device::Cpu)?;
            // Two halves in parallel; the batch-mean loss and gradient are their size-weighted sums.
            let m = idx.len();
            let halves: Vec<(usize, usize)> = [(0, m / 2), (m / 2, m)].into_iter().filter(|(a, b)| b > a).collect();
            let fc = (fc_w.as_tensor(), fc_b.as_tensor());
            let parts: Vec<Result<(f64, Vec<(String, Tensor)>)>> = halves
                .par_iter()
                .map(|&(a, b)| {
                    let (loss, grads) = backbone_grads(&net, fc, &x.narrow(0, a, b - a)?, &labels[a..b])?;
                    let w = (b - a) as f64 / m as f64;
                    Ok((loss * w, grads.into_iter().map(|(k, g)| Ok((k, g.affine(w, 0.0)?))).collect::<Result<Vec<_>>>()?))
                })
                .collect();
            let mut loss = 0.0;
            let mut grads: Vec<(String, Tensor)> = Vec::new();
            for p in parts {
                let (l, g) = p?;
                loss += l;
                if grads.is_empty() {
                    grads = g;
                } else {
                    for ((_, acc), (_, t)) in grads.iter_mut().zip(g) {
                        *acc = (&*acc + t)?;
                    }
                }
            }
            if !loss.is_finite() {
                return Err(Error::Diverged { epoch: epoch + 1, step: b + 1, message: format!("cross-entropy is {loss}") });
            }
            sum += loss;
            super::guarded::step_or_restore(&mut adam, &params, &grads, &mut saved, |message| Error::Diverged { epoch: epoch + 1, step: b + 1, message })?;
            bar.inc(1);
            bar.set_message(format!("loss {:.4}", sum / (b + 1) as f64));
        }
        bar.finish_and_clear();
        on_epoch(epoch, sum / nb as f64, t.elapsed().as_secs_f64());
    }
    net.fc = Linear::new(fc_w.as_tensor().copy()?, Some(fc_b.as_tensor().copy()?), "fc")?;
    Ok(net)
}
