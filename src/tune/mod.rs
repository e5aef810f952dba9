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
//! vector–Jacobian product (the runtime's `chain::{LayerRef, chain_forward, chain_backward}`
//! do the work for chains of its layers). [`hyper_grads`] returns the loss and its gradient;
//! `tests/tune_grad.rs` checks it against central finite differences. [`tune`] draws its
//! batches from any [`Dataset`] and corrupts them with [`Noise`]; the loss is
//! [`crate::loss::cross_entropy`].
//!
//! The dynamics are re-implemented here (recording what the backward pass needs) exactly as
//! [`predify_runtime::PNet::fire`] computes them; a test checks the logits agree.

use crate::common::progress::progress_bar;
use crate::common::{epoch_order, Error, Result, Rng};
use crate::data::{gather, Dataset};
use crate::loss::cross_entropy;
use crate::noise::Noise;
use candle_core::{Device, Tensor, Var, D};
use predify_runtime::chain::Segmented;
use predify_runtime::dynamics::{self, UpdateCoeffs};
use predify_runtime::optim::{Adam, Optimizer};
use predify_runtime::HyperLogits;
use rayon::prelude::*;

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

/// Run `steps` timesteps (timestep 0 is the feedforward pass) on `x` with the network's current
/// hyperparameters, recording every pcoder's values. With `frozen_grd`, the error gradients
/// are taken from that recording instead of being computed (`frozen_grd[t][i]`): the objective
/// whose exact gradient [`hyper_grads`] returns.
pub fn unroll<M: Segmented + ?Sized>(model: &M, x: &Tensor, steps: usize, frozen_grd: Option<&[StepRecord]>) -> Result<Vec<StepRecord>> {
    let pnet = model.pnet();
    let n = pnet.len();
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
                let fb = prev.prd.get(i + 1);
                dynamics::update(&ff, &prev.rep[i], fb, &prev.grd[i], pnet.update_coeffs(i, prev.prd[i].elem_count())?)?
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
                    predictor.vjp_input(&trace, &diff.affine(dynamics::error_grad_factor(diff.elem_count()), 0.0)?)?
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
    labels: &[u32],
    steps: usize,
    frozen_grd: Option<&[StepRecord]>,
) -> Result<(HyperGrads, Vec<StepRecord>)> {
    if steps == 0 {
        return Err(Error::Config("tuning needs at least one timestep".into()));
    }
    let pnet = model.pnet();
    let n = pnet.len();
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
    // The update's coefficients and error scales (constant over timesteps), from the one
    // definition of the rule (predify_runtime::dynamics).
    let numel: Vec<usize> = tape[0].prd.iter().map(Tensor::elem_count).collect();
    let coeffs = (0..n).map(|i| pnet.update_coeffs(i, numel[i])).collect::<std::result::Result<Vec<UpdateCoeffs>, _>>()?;
    let scales: Vec<f32> = (0..n).map(|i| dynamics::error_scale(pnet.pcoders()[i].c_sqrt(), numel[i])).collect();
    let mut dh = vec![[0f64; 3]; n];
    // The adjoint of each pcoder's update at t+1, from the timestep processed before.
    let mut next: Vec<Option<dynamics::UpdateAdjoint>> = vec![None; n];
    for t in (0..steps).rev() {
        let rec = &tape[t];
        let mut cur: Vec<Option<Tensor>> = vec![None; n];
        let mut adjoints: Vec<Option<dynamics::UpdateAdjoint>> = vec![None; n];
        cur[n - 1] = Some(model.segment_backward(n, &rec.rep[n - 1], &dlogits[t])?);
        for i in (0..n).rev() {
            let mut acc = cur[i].take();
            if let Some(a) = &next[i] {
                // memory term of r_i(t+1)
                add(&mut acc, a.rep.clone())?;
            }
            if let Some(fb) = i.checked_sub(1).and_then(|below| next[below].as_ref()).and_then(|a| a.fb.as_ref()) {
                // feedback term of r_{i−1}(t+1) = … + λ_{i−1}·prd_i(t)
                let (_, trace) = pnet.pcoders()[i].predictor().forward_traced(&rec.rep[i])?;
                add(&mut acc, pnet.pcoders()[i].predictor().vjp_input(&trace, fb)?)?;
            }
            let Some(rbar) = acc else { continue };
            let adjoint = coeffs[i].adjoint(&rbar)?;
            let ffbar = if t >= 1 {
                let prev = &tape[t - 1];
                let d = UpdateCoeffs::partials(i + 1 == n, scales[i], &rbar, &rec.ff[i], &prev.rep[i], prev.prd.get(i + 1), &prev.grd[i])?;
                for (acc, d) in dh[i].iter_mut().zip(d) {
                    *acc += d;
                }
                adjoint.ff.clone()
            } else {
                rbar
            };
            if i >= 1 {
                let g = model.segment_backward(i, &rec.rep[i - 1], &ffbar)?;
                add(&mut cur[i - 1], g)?;
            }
            adjoints[i] = Some(adjoint);
        }
        next = adjoints;
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
pub fn tape_accuracy(tape: &[StepRecord], labels: &[u32]) -> Result<Vec<f64>> {
    tape.iter()
        .map(|r| {
            let p = r.logits.argmax(D::Minus1)?.to_vec1::<u32>()?;
            Ok(p.iter().zip(labels).filter(|(a, b)| a == b).count() as f64 / labels.len().max(1) as f64)
        })
        .collect()
}
