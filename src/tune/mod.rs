//! Hyperparameter optimisation (the procedure of the Predify group's follow-up work): the
//! backbone and the feedback weights frozen, the logits of β, λ (and the memory weight) and α
//! itself learnt by Adam (lr 0.01 for the logits, 1e-4 for α) on the cross-entropy summed over
//! timesteps `0..=T` on noisy images, backpropagating through the unrolled timesteps with the
//! error-gradient term `grd` treated as a constant (as the original does: it is computed with
//! `torch.autograd.grad` outside the graph).
//!
//! The backward pass is written by hand from the layers' adjoints (`Conv::input_grad`,
//! `MaxPool::input_grad`, `Linear::input_grad`, `Predictor::vjp_input`, ReLU masks), because
//! the runtime's layers compute on slices that Candle's autograd does not see, and Candle's own
//! max-pool backward is wrong. A network takes part by implementing [`Segmented`]: its
//! backbone cut at the attach points into `n + 1` pieces, each with a forward pass and its
//! vector–Jacobian product ([`LayerRef`] and [`chain_forward`] / [`chain_backward`] do the
//! work for chains of the runtime's layers). [`hyper_grads`] returns the loss and its gradient;
//! `tests/tune_grad.rs` checks it against central finite differences.
//!
//! The dynamics are re-implemented here (recording what the backward pass needs) exactly as
//! [`predify_runtime::PNet::fire`] computes them; a test checks the logits agree.

use crate::eval::Noise;
use crate::train::{epoch_order, gather, progress_bar, Error, Predified, Result, Rng};
use candle_core::{DType, Device, Tensor, Var, D};
use predify_runtime::layers::{Conv, Linear, MaxPool};
use predify_runtime::optim::{Adam, Optimizer};
use predify_runtime::sequential::{Op, PredifiedSequential};
use predify_runtime::{HyperLogits, Hyperparameters, PNet};
use rayon::prelude::*;

/// A predified network whose backbone is cut at the attach points into `n + 1` differentiable
/// segments: segment `k < n` maps the input (`k = 0`) or pcoder `k−1`'s representation to
/// pcoder `k`'s feedforward drive; segment `n` maps the last representation to the logits.
pub trait Segmented: Predified {
    /// Segment `k`'s forward pass.
    fn segment_forward(&self, k: usize, x: &Tensor) -> predify_runtime::Result<Tensor>;
    /// Segment `k`'s vector–Jacobian product at `x`: the gradient w.r.t. `x` of `<segment(x), g>`.
    fn segment_backward(&self, k: usize, x: &Tensor, g: &Tensor) -> predify_runtime::Result<Tensor>;
}

/// One layer of a segment, borrowed from a backbone.
#[derive(Debug, Clone, Copy)]
pub enum LayerRef<'a> {
    /// A (transposed) convolution.
    Conv(&'a Conv),
    /// `max(x, 0)`; its gradient is 0 at exactly 0, as PyTorch's.
    Relu,
    /// Max pooling (gradient to the first maximum of each window).
    MaxPool(&'a MaxPool),
    /// Fully connected.
    Linear(&'a Linear),
    /// Flatten from dimension 1.
    Flatten,
}

impl LayerRef<'_> {
    fn forward(&self, x: &Tensor) -> predify_runtime::Result<Tensor> {
        Ok(match self {
            LayerRef::Conv(c) => c.forward(x)?,
            LayerRef::Relu => x.relu()?,
            LayerRef::MaxPool(p) => p.forward(x)?,
            LayerRef::Linear(l) => l.forward(x)?,
            LayerRef::Flatten => x.flatten_from(1)?,
        })
    }

    fn backward(&self, x: &Tensor, g: &Tensor) -> predify_runtime::Result<Tensor> {
        Ok(match self {
            LayerRef::Conv(c) => c.input_grad(x.dims(), g)?,
            LayerRef::Relu => (g * x.gt(0f32)?.to_dtype(x.dtype())?)?,
            LayerRef::MaxPool(p) => p.input_grad(x, g)?,
            LayerRef::Linear(l) => l.input_grad(g)?,
            LayerRef::Flatten => g.reshape(x.dims())?,
        })
    }
}

/// Run a chain of layers.
pub fn chain_forward(layers: &[LayerRef<'_>], x: &Tensor) -> predify_runtime::Result<Tensor> {
    let mut h = x.clone();
    for l in layers {
        h = l.forward(&h)?;
    }
    Ok(h)
}

/// The vector–Jacobian product of a chain of layers at `x` (the forward pass is recomputed).
pub fn chain_backward(layers: &[LayerRef<'_>], x: &Tensor, g: &Tensor) -> predify_runtime::Result<Tensor> {
    let mut inputs = Vec::with_capacity(layers.len());
    let mut h = x.clone();
    for l in layers {
        let next = l.forward(&h)?;
        inputs.push(h);
        h = next;
    }
    let mut g = g.clone();
    for (l, x) in layers.iter().zip(&inputs).rev() {
        g = l.backward(x, &g)?;
    }
    Ok(g)
}

fn no_segment<T>(k: usize, n: usize) -> predify_runtime::Result<T> {
    Err(predify_runtime::Error::Usage(format!("no segment {k}: the network has {} segments", n + 1)))
}

impl crate::zoo::mnist8::PMnist8 {
    fn segment_layers(&self, k: usize) -> predify_runtime::Result<Vec<LayerRef<'_>>> {
        let b = self.backbone();
        Ok(match k {
            0 => vec![LayerRef::Conv(&b.conv1), LayerRef::Relu],
            1 => vec![LayerRef::MaxPool(&b.pool1), LayerRef::Conv(&b.conv2), LayerRef::Relu],
            2 => vec![LayerRef::MaxPool(&b.pool2), LayerRef::Flatten, LayerRef::Linear(&b.fc)],
            _ => return no_segment(k, 2),
        })
    }
}

impl Segmented for crate::zoo::mnist8::PMnist8 {
    fn segment_forward(&self, k: usize, x: &Tensor) -> predify_runtime::Result<Tensor> {
        chain_forward(&self.segment_layers(k)?, x)
    }
    fn segment_backward(&self, k: usize, x: &Tensor, g: &Tensor) -> predify_runtime::Result<Tensor> {
        chain_backward(&self.segment_layers(k)?, x, g)
    }
}

fn sequential_segment(net: &PredifiedSequential, k: usize) -> predify_runtime::Result<Vec<LayerRef<'_>>> {
    let attach = net.attach_points();
    let layers = net.backbone().layers();
    let n = attach.len();
    let (start, end) = match k {
        0 if n > 0 => (0, attach[0] + 1),
        k if k < n => (attach[k - 1] + 1, attach[k] + 1),
        k if k == n => (attach[n - 1] + 1, layers.len()),
        _ => return no_segment(k, n),
    };
    layers[start..end]
        .iter()
        .map(|(path, op)| match op {
            Op::Conv(c) => Ok(LayerRef::Conv(c)),
            Op::Relu => Ok(LayerRef::Relu),
            Op::MaxPool(p) => Ok(LayerRef::MaxPool(p)),
            Op::Linear(l) => Ok(LayerRef::Linear(l)),
            Op::Flatten { start_dim: 1 } => Ok(LayerRef::Flatten),
            Op::Flatten { start_dim } => Err(predify_runtime::Error::Usage(format!("{path}: flatten from dim {start_dim} is not supported (only 1)"))),
        })
        .collect()
}

impl Segmented for PredifiedSequential {
    fn segment_forward(&self, k: usize, x: &Tensor) -> predify_runtime::Result<Tensor> {
        chain_forward(&sequential_segment(self, k)?, x)
    }
    fn segment_backward(&self, k: usize, x: &Tensor, g: &Tensor) -> predify_runtime::Result<Tensor> {
        chain_backward(&sequential_segment(self, k)?, x, g)
    }
}

/// What one timestep of [`unroll`] records.
#[derive(Debug, Clone)]
pub struct StepRecord {
    /// Each pcoder's feedforward drive.
    pub ff: Vec<Tensor>,
    /// Each pcoder's representation.
    pub rep: Vec<Tensor>,
    /// Each pcoder's prediction of the layer below.
    pub prd: Vec<Tensor>,
    /// Each pcoder's error gradient (used, scaled, at the next timestep).
    pub grd: Vec<Tensor>,
    /// The logits.
    pub logits: Tensor,
}

fn mem_weight(h: Hyperparameters, last: bool) -> f32 {
    if last {
        1.0 - h.feedforward
    } else {
        h.memory()
    }
}

/// The error term's scale S_i (α·S_i multiplies `grd`): `numel(prd)/√C` with gradient scaling,
/// else 1.
fn error_scale(pnet: &PNet, i: usize, prd: &Tensor) -> f32 {
    match pnet.pcoders()[i].c_sqrt() {
        Some(c) => prd.elem_count() as f32 / c,
        None => 1.0,
    }
}

/// Run `steps` timesteps (timestep 0 is the feedforward pass) on `x` with the network's current
/// hyperparameters, recording every pcoder's values. With `frozen_grd`, the error gradients
/// are taken from that recording instead of being computed (`frozen_grd[t][i]`): the objective
/// whose exact gradient [`hyper_grads`] returns.
pub fn unroll<M: Segmented + ?Sized>(model: &M, x: &Tensor, steps: usize, frozen_grd: Option<&[StepRecord]>) -> Result<Vec<StepRecord>> {
    let pnet = model.pnet();
    let n = pnet.len();
    let hyper: Vec<Hyperparameters> = (0..n).map(|i| pnet.hyperparameters(i)).collect::<std::result::Result<_, _>>()?;
    let mut tape: Vec<StepRecord> = Vec::with_capacity(steps);
    for t in 0..steps {
        let mut rec = StepRecord { ff: Vec::new(), rep: Vec::new(), prd: Vec::new(), grd: Vec::new(), logits: x.clone() };
        for i in 0..n {
            let below = if i == 0 { x.clone() } else { rec.rep[i - 1].clone() };
            let ff = model.segment_forward(i, &below)?;
            let rep = if t == 0 {
                ff.clone()
            } else {
                let prev = &tape[t - 1];
                let h = hyper[i];
                let last = i + 1 == n;
                let mut r = (ff.affine(h.feedforward as f64, 0.0)? + prev.rep[i].affine(mem_weight(h, last) as f64, 0.0)?)?;
                if !last {
                    r = (r + prev.prd[i + 1].affine(h.feedback as f64, 0.0)?)?;
                }
                let scale = h.pc * error_scale(pnet, i, &prev.prd[i]);
                (r - prev.grd[i].affine(scale as f64, 0.0)?)?
            };
            if !predify_runtime::tensor_io::all_finite(&rep)? {
                return Err(predify_runtime::Error::NonFinite { pcoder: i + 1, what: "the representation", timestep: t }.into());
            }
            let predictor = pnet.pcoders()[i].predictor();
            let (prd, trace) = predictor.forward_traced(&rep)?;
            let grd = match frozen_grd {
                Some(f) => f[t].grd[i].clone(),
                None => {
                    let diff = (&prd - &below)?;
                    let numel = diff.elem_count() as f64;
                    predictor.vjp_input(&trace, &diff.affine(2.0 / numel, 0.0)?)?
                }
            };
            rec.ff.push(ff);
            rec.rep.push(rep);
            rec.prd.push(prd);
            rec.grd.push(grd);
        }
        rec.logits = model.segment_forward(n, &rec.rep[n - 1])?;
        tape.push(rec);
    }
    Ok(tape)
}

/// Mean cross-entropy of `logits` `[N, K]` against `labels`, and its gradient w.r.t. the logits
/// (`(softmax − onehot)/N`).
pub fn cross_entropy(logits: &Tensor, labels: &[u8]) -> Result<(f64, Tensor)> {
    let (n, k) = logits.dims2()?;
    if labels.len() != n {
        return Err(Error::Config(format!("{} labels for {n} logits", labels.len())));
    }
    let v = logits.to_dtype(DType::F64)?.to_vec2::<f64>()?;
    let mut loss = 0.0;
    let mut g = vec![0f32; n * k];
    for (r, (row, &y)) in v.iter().zip(labels).enumerate() {
        let y = y as usize;
        if y >= k {
            return Err(Error::Config(format!("label {y} out of range for {k} classes")));
        }
        let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let z: f64 = row.iter().map(|a| (a - m).exp()).sum();
        loss += z.ln() + m - row[y];
        for c in 0..k {
            let p = (row[c] - m).exp() / z;
            g[r * k + c] = ((p - if c == y { 1.0 } else { 0.0 }) / n as f64) as f32;
        }
    }
    Ok((loss / n as f64, Tensor::from_vec(g, (n, k), logits.device())?))
}

/// The tuning loss and its gradients.
#[derive(Debug, Clone, PartialEq)]
pub struct HyperGrads {
    /// Σ over timesteps of the mean cross-entropy.
    pub loss: f64,
    /// The mean cross-entropy at each timestep.
    pub per_timestep: Vec<f64>,
    /// `[dβ, dλ, dα]` of each pcoder (its own hyperparameters, shared or not).
    pub hyper: Vec<[f64; 3]>,
    /// Gradient w.r.t. each pcoder's logits `[ff_part, fb_part, mem_part, errorm]`.
    pub logits: Vec<[f64; 4]>,
}

fn dot(a: &Tensor, b: &Tensor) -> Result<f64> {
    Ok((a * b)?.sum_all()?.to_dtype(DType::F64)?.to_scalar::<f64>()?)
}

fn add(acc: &mut Option<Tensor>, g: Tensor) -> Result<()> {
    *acc = Some(match acc.take() {
        Some(a) => (a + g)?,
        None => g,
    });
    Ok(())
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Chain `[dβ, dλ, dα]` to the logits `l`: β = σ(a)/s, λ = σ(b)/s, s = σ(a)+σ(b)+σ(c).
pub fn logit_grads(l: HyperLogits, d: [f64; 3]) -> [f64; 4] {
    let (sa, sb, sc) = (sigmoid(l.ff_part as f64), sigmoid(l.fb_part as f64), sigmoid(l.mem_part as f64));
    let s = sa + sb + sc;
    let (da, db, dc) = (sa * (1.0 - sa), sb * (1.0 - sb), sc * (1.0 - sc));
    let (beta, lambda) = (sa / s, sb / s);
    // ∂β/∂a = σ'(a)(1 − β)/s, ∂β/∂b = −β σ'(b)/s, ∂β/∂c = −β σ'(c)/s; likewise for λ.
    let ga = d[0] * da * (1.0 - beta) / s - d[1] * lambda * da / s;
    let gb = -d[0] * beta * db / s + d[1] * db * (1.0 - lambda) / s;
    let gc = -(d[0] * beta + d[1] * lambda) * dc / s;
    [ga, gb, gc, d[2]]
}

/// Cross-entropy summed over timesteps `0..steps` on `(x, labels)` and its gradient w.r.t.
/// every pcoder's hyperparameters and logits, backpropagated through the unrolled dynamics with
/// the error gradients held constant. With `frozen_grd`, the forward pass uses those recorded
/// error gradients (see [`unroll`]). Returns the gradients and the forward recording.
pub fn hyper_grads<M: Segmented + ?Sized>(
    model: &M,
    x: &Tensor,
    labels: &[u8],
    steps: usize,
    frozen_grd: Option<&[StepRecord]>,
) -> Result<(HyperGrads, Vec<StepRecord>)> {
    if steps == 0 {
        return Err(Error::Config("tuning needs at least one timestep".into()));
    }
    let pnet = model.pnet();
    let n = pnet.len();
    let hyper: Vec<Hyperparameters> = (0..n).map(|i| pnet.hyperparameters(i)).collect::<std::result::Result<_, _>>()?;
    let tape = unroll(model, x, steps, frozen_grd)?;
    let mut per_timestep = Vec::with_capacity(steps);
    let mut dlogits = Vec::with_capacity(steps);
    for rec in &tape {
        let (l, g) = cross_entropy(&rec.logits, labels)?;
        if !l.is_finite() {
            return Err(Error::Config(format!("the cross-entropy at timestep {} is not finite", per_timestep.len())));
        }
        per_timestep.push(l);
        dlogits.push(g);
    }
    let mut dh = vec![[0f64; 3]; n];
    // r̄_i(t+1), from the timestep processed before.
    let mut next: Vec<Option<Tensor>> = vec![None; n];
    for t in (0..steps).rev() {
        let rec = &tape[t];
        let mut cur: Vec<Option<Tensor>> = vec![None; n];
        cur[n - 1] = Some(model.segment_backward(n, &rec.rep[n - 1], &dlogits[t])?);
        for i in (0..n).rev() {
            let mut acc = cur[i].take();
            if let Some(nx) = &next[i] {
                // memory term of r_i(t+1)
                let last = i + 1 == n;
                add(&mut acc, nx.affine(mem_weight(hyper[i], last) as f64, 0.0)?)?;
            }
            if i >= 1 {
                if let Some(nb) = &next[i - 1] {
                    // feedback term of r_{i−1}(t+1) = … + λ_{i−1}·prd_i(t)
                    let (_, trace) = pnet.pcoders()[i].predictor().forward_traced(&rec.rep[i])?;
                    let g = pnet.pcoders()[i].predictor().vjp_input(&trace, &nb.affine(hyper[i - 1].feedback as f64, 0.0)?)?;
                    add(&mut acc, g)?;
                }
            }
            let Some(rbar) = acc else { continue };
            let ffbar = if t >= 1 {
                let prev = &tape[t - 1];
                dh[i][0] += dot(&rbar, &(&rec.ff[i] - &prev.rep[i])?)?;
                if i + 1 < n {
                    dh[i][1] += dot(&rbar, &(&prev.prd[i + 1] - &prev.rep[i])?)?;
                }
                dh[i][2] -= dot(&rbar, &prev.grd[i])? * error_scale(pnet, i, &prev.prd[i]) as f64;
                rbar.affine(hyper[i].feedforward as f64, 0.0)?
            } else {
                rbar.clone()
            };
            if i >= 1 {
                let g = model.segment_backward(i, &rec.rep[i - 1], &ffbar)?;
                add(&mut cur[i - 1], g)?;
            }
            cur[i] = Some(rbar);
        }
        next = cur;
    }
    let logits = (0..n).map(|i| Ok(logit_grads(pnet.logits(i)?, dh[i]))).collect::<Result<Vec<_>>>()?;
    Ok((HyperGrads { loss: per_timestep.iter().sum(), per_timestep, hyper: dh, logits }, tape))
}

/// Settings of a tuning run.
#[derive(Debug, Clone)]
pub struct TuneConfig {
    /// Optimiser steps.
    pub steps: usize,
    /// Images per batch (the dynamics run per batch).
    pub batch_size: usize,
    /// Batches per step, computed in parallel; their gradients are averaged.
    pub batches_per_step: usize,
    /// The last timestep T: the loss sums timesteps `0..=T`.
    pub timesteps: usize,
    /// Noise applied to the training images, one condition per batch in turn.
    pub noises: Vec<Noise>,
    /// Adam's learning rate for the logits of β, λ and the memory weight.
    pub lr_logits: f64,
    /// Adam's learning rate for α.
    pub lr_alpha: f64,
    /// Seed of the shuffle and the noise.
    pub seed: u64,
    /// Use the first `n` images only.
    pub limit: Option<usize>,
    /// (min, max) pixel value for salt-and-pepper noise.
    pub pixel_range: (f32, f32),
    /// Show a progress bar.
    pub progress: bool,
}

impl Default for TuneConfig {
    fn default() -> Self {
        Self {
            steps: 50,
            batch_size: 100,
            batches_per_step: 2,
            timesteps: 10,
            noises: vec![Noise::Gaussian(0.5), Noise::Gaussian(1.0)],
            lr_logits: 0.01,
            lr_alpha: 1e-4,
            seed: 0,
            limit: None,
            pixel_range: (0.0, 1.0),
            progress: true,
        }
    }
}

/// One tuning step's record.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TuneStep {
    /// The mean loss (Σ over timesteps of the cross-entropy) of the step's batches.
    pub loss: f64,
    /// β, λ, α of each pcoder after the step.
    pub hyperparameters: Vec<[f32; 3]>,
}

/// Tune the hyperparameters of `model` on `set` (see the module docs); the model's
/// hyperparameters are updated in place. Returns the loss and hyperparameters after each step.
pub fn tune<M: Segmented + Sync>(model: &mut M, set: &crate::data::mnist::MnistSet, config: &TuneConfig) -> Result<Vec<TuneStep>> {
    let n_img = config.limit.map_or(set.len(), |l| l.min(set.len()));
    if n_img == 0 || config.batch_size == 0 || config.batches_per_step == 0 {
        return Err(Error::Config("tuning needs images, a batch size and batches per step of at least 1".into()));
    }
    if config.noises.is_empty() {
        return Err(Error::Config("tuning needs at least one noise condition".into()));
    }
    let shared = model.pnet().shared_hyperparameters();
    let n = model.pnet().len();
    let groups = if shared { 1 } else { n };
    let init: Vec<HyperLogits> = (0..groups).map(|g| model.pnet().logits(g)).collect::<std::result::Result<_, _>>()?;
    let dev = Device::Cpu;
    let logits_var = Var::from_vec(init.iter().flat_map(|l| [l.ff_part, l.fb_part, l.mem_part]).collect::<Vec<f32>>(), (groups, 3), &dev)?;
    let alpha_var = Var::from_vec(init.iter().map(|l| l.errorm).collect::<Vec<f32>>(), groups, &dev)?;
    let lp = [("logits".to_string(), logits_var.clone())];
    let ap = [("errorm".to_string(), alpha_var.clone())];
    let mut adam_l = Adam::new(config.lr_logits);
    let mut adam_a = Adam::new(config.lr_alpha);
    let bar = progress_bar(config.progress, config.steps as u64, "tuning".into());
    let mut history = Vec::with_capacity(config.steps);
    let per_epoch = n_img.div_ceil(config.batch_size);
    let mut batch_no = 0usize;
    for _ in 0..config.steps {
        let jobs: Vec<usize> = (0..config.batches_per_step).map(|k| batch_no + k).collect();
        batch_no += config.batches_per_step;
        let m: &M = model;
        let results: Vec<Result<HyperGrads>> = jobs
            .par_iter()
            .map(|&b| {
                let epoch = b / per_epoch;
                let within = b % per_epoch;
                let order = epoch_order(n_img, config.seed ^ 0x7475_6e65, epoch);
                let idx = &order[within * config.batch_size..((within + 1) * config.batch_size).min(n_img)];
                let (x, labels) = gather(set, idx, &dev)?;
                let noise = config.noises[b % config.noises.len()];
                let mut rng = Rng::derive(config.seed, "tune-noise", b as u64);
                let x = noise.apply(&x, &mut rng, config.pixel_range)?;
                Ok(hyper_grads(m, &x, &labels, config.timesteps + 1, None)?.0)
            })
            .collect();
        let mut gl = vec![0f64; groups * 3];
        let mut ga = vec![0f64; groups];
        let mut loss = 0.0;
        let k = results.len() as f64;
        for r in results {
            let r = r?;
            loss += r.loss / k;
            for (i, g) in r.logits.iter().enumerate() {
                let gi = if shared { 0 } else { i };
                for j in 0..3 {
                    gl[gi * 3 + j] += g[j] / k;
                }
                ga[gi] += g[3] / k;
            }
        }
        if gl.iter().chain(&ga).any(|v| !v.is_finite()) {
            return Err(Error::Config(format!("tuning diverged: non-finite gradient at step {}", history.len() + 1)));
        }
        adam_l.step(&lp, &[("logits".into(), Tensor::from_vec(gl.iter().map(|&v| v as f32).collect::<Vec<_>>(), (groups, 3), &dev)?)])?;
        adam_a.step(&ap, &[("errorm".into(), Tensor::from_vec(ga.iter().map(|&v| v as f32).collect::<Vec<_>>(), groups, &dev)?)])?;
        // α stays non-negative (the runtime rejects a negative one).
        alpha_var.set(&alpha_var.as_tensor().relu()?)?;
        let lv = logits_var.as_tensor().to_vec2::<f32>()?;
        let av = alpha_var.as_tensor().to_vec1::<f32>()?;
        for g in 0..groups {
            let l = HyperLogits { ff_part: lv[g][0], fb_part: lv[g][1], mem_part: lv[g][2], errorm: av[g] };
            model.pnet_mut().set_logits(g, l)?;
        }
        let hp = (0..n)
            .map(|i| model.pnet().hyperparameters(i).map(|h| [h.feedforward, h.feedback, h.pc]))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        bar.inc(1);
        bar.set_message(format!("loss {loss:.4}"));
        history.push(TuneStep { loss, hyperparameters: hp });
    }
    bar.finish_and_clear();
    Ok(history)
}

/// Accuracy at each timestep `0..steps` of the recording (argmax of the logits).
pub fn tape_accuracy(tape: &[StepRecord], labels: &[u8]) -> Result<Vec<f64>> {
    tape.iter()
        .map(|r| {
            let p = r.logits.argmax(D::Minus1)?.to_vec1::<u32>()?;
            Ok(p.iter().zip(labels).filter(|(a, b)| **a == **b as u32).count() as f64 / labels.len().max(1) as f64)
        })
        .collect()
}
