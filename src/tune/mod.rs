//! Hyperparameter optimisation (the procedure of the Predify group's follow-up work): the
//! backbone and the feedback weights frozen, the logits of β, λ (and the memory weight) and α
//! itself learnt by Adam (lr 0.01 for the logits, 1e-4 for α) on the cross-entropy summed over
//! timesteps `0..=T` on noisy images, backpropagating through the unrolled timesteps with the
//! error-gradient term `grd` treated as a constant (as the original does: it is computed with
//! `torch.autograd.grad` outside the graph).
//!
//! The gradient comes from the runtime's unrolled dynamics ([`predify_runtime::unroll`]: a
//! recording of the timesteps and its backward pass, with Predify's semantics), so the update
//! rule and its adjoint exist once. A network takes part by implementing [`Segmented`]: its
//! backbone cut at the attach points into differentiable pieces. [`hyper_grads`] returns the
//! loss and its gradient; `tests/tune_grad.rs` checks it against central finite differences.
//! [`tune`] draws its batches from any [`Dataset`] and corrupts them with [`Noise`].

use crate::common::progress::progress_bar;
use crate::common::{epoch_order, Error, Result, Rng};
use crate::data::{gather, Dataset};
use crate::loss::{count_correct, cross_entropy};
use crate::noise::Noise;
use candle_core::{Device, Tensor, Var};
use predify_runtime::chain::Segmented;
use predify_runtime::optim::{Adam, Optimizer};
use predify_runtime::unroll::{BackwardOptions, Tape};
use predify_runtime::HyperLogits;
use rayon::prelude::*;

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

/// Cross-entropy summed over timesteps `0..steps` on `(x, labels)` and its gradient w.r.t.
/// every pcoder's hyperparameters and logits, backpropagated through the unrolled dynamics with
/// the error gradients held constant (Predify's semantics). With `frozen`, the forward pass
/// uses that recording's error gradients ([`Tape::record_frozen`]): the objective whose exact
/// gradient this is. Returns the gradients and the recording.
pub fn hyper_grads<M: Segmented + ?Sized>(model: &M, x: &Tensor, labels: &[u32], steps: usize, frozen: Option<&Tape>) -> Result<(HyperGrads, Tape)> {
    if steps == 0 {
        return Err(Error::Config("tuning needs at least one timestep".into()));
    }
    let tape = match frozen {
        Some(f) => Tape::record_frozen(model, x, steps, f)?,
        None => Tape::record(model, x, steps)?,
    };
    let mut per_timestep = Vec::with_capacity(steps);
    let mut dlogits = Vec::with_capacity(steps);
    for logits in tape.logits() {
        let (l, g) = cross_entropy(&logits, labels)?;
        if !l.is_finite() {
            return Err(Error::Config(format!("the cross-entropy at timestep {} is not finite", per_timestep.len())));
        }
        per_timestep.push(l);
        dlogits.push(Some(g));
    }
    let grads = tape.backward(model, &dlogits, BackwardOptions::predify().without_params())?;
    let hyper = grads.hyper;
    let logits = grads.hyper_logits;
    Ok((HyperGrads { loss: per_timestep.iter().sum(), per_timestep, hyper, logits }, tape))
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
pub fn tune<M: Segmented + Sync>(model: &mut M, set: &(impl Dataset + ?Sized), config: &TuneConfig) -> Result<Vec<TuneStep>> {
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
pub fn tape_accuracy(tape: &Tape, labels: &[u32]) -> Result<Vec<f64>> {
    tape.logits()
        .iter()
        .map(|logits| Ok(count_correct(logits, labels)? as f64 / labels.len().max(1) as f64))
        .collect()
}
