//! Training the feedback weights, as Predify does.
//!
//! A second mode, [`through_time`], trains them on the classification loss through the
//! unrolled dynamics instead ([`ThroughTimeTrainer`]).
//!
//! One backbone pass at timestep 0 (every representation is its feedforward value), the
//! backbone frozen, and the loss `Σ_i MSE(prd_i, rep_{i−1})` with the image as the first
//! target ([`predify_runtime::PNet::reconstruction_grads`]); the optimiser holds the predictor
//! parameters only. The data are any [`Dataset`] whose items have the network's input shape.
//! Batches are drawn from a seeded shuffle of the training set (one per epoch, derived from the
//! seed and the epoch number, so a resumed run draws the same batches); an evaluation pass on
//! held-out data closes every epoch; checkpoints
//! ([`checkpoint::Checkpoint`]) are written atomically and resuming from one continues exactly
//! where it stopped (same weights, bit for bit, as a run that was never interrupted).
//!
//! Each batch is cut into [`TrainConfig::chunks`] parts computed in parallel. Timestep 0 needs
//! no dynamics: the representations are the feedforward drives
//! ([`Predified::feedforward_taps`]), and the loss and gradients come from
//! [`predify_runtime::PNet::reconstruction_grads_at`].
//!
//! ```no_run
//! use predify::train::{Trainer, TrainConfig};
//! use predify::data::split_off;
//! # fn demo(model: &predify::zoo::mnist8::PMnist8, set: &predify::data::mnist::MnistSet) -> Result<(), predify::train::Error> {
//! let (train, val) = split_off(set, 1000)?; // hold out the last 1000 items
//! let config = TrainConfig { epochs: 2, checkpoint: Some("out/checkpoint.safetensors".into()), ..TrainConfig::default() };
//! let mut trainer = Trainer::new(model, config)?;
//! for report in trainer.fit(&train, Some(&val))? {
//!     println!("epoch {}: train {:?} val {:?}", report.epoch + 1, report.train_loss, report.val_loss);
//! }
//! # Ok(()) }
//! ```

pub mod checkpoint;
mod guarded;
pub mod supervised;
pub mod through_time;

pub use checkpoint::{Checkpoint, Position};
pub use through_time::{through_time_grads, through_time_loss, ThroughTime, ThroughTimeGrads, ThroughTimeReport, ThroughTimeTrainer};
/// The error type of training, evaluation and tuning, defined in [`crate::common`] and
/// re-exported here because the trainer's signatures use it.
pub use crate::common::{Error, Result};

use crate::common::progress::progress_bar;
use crate::common::{epoch_order, Rng};
use crate::data::{gather, Dataset};
use candle_core::{Device, Tensor, Var};
use predify_runtime::Predified;
use predify_runtime::optim::{Adam, CosineWarmRestarts, Optimizer, RmsProp, Sgd};
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The optimiser over the predictor parameters (PyTorch semantics, see
/// [`predify_runtime::optim`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OptimizerConfig {
    /// SGD with L2 weight decay and momentum (Predify's PVGG16 recipe: lr 0.01, wd 5e-4, μ 0.9).
    Sgd {
        /// Learning rate.
        lr: f64,
        /// L2 weight decay.
        weight_decay: f64,
        /// Momentum.
        momentum: f64,
    },
    /// RMSprop (Predify's PEfficientNet recipe).
    RmsProp {
        /// Learning rate.
        lr: f64,
        /// Smoothing constant.
        alpha: f64,
        /// Denominator ε.
        eps: f64,
        /// L2 weight decay.
        weight_decay: f64,
        /// Momentum.
        momentum: f64,
    },
    /// Adam.
    Adam {
        /// Learning rate.
        lr: f64,
        /// L2 weight decay.
        weight_decay: f64,
    },
}

impl OptimizerConfig {
    /// The base learning rate.
    pub fn lr(&self) -> f64 {
        match *self {
            OptimizerConfig::Sgd { lr, .. } | OptimizerConfig::RmsProp { lr, .. } | OptimizerConfig::Adam { lr, .. } => lr,
        }
    }

    /// A fresh optimiser.
    pub fn build(&self) -> Box<dyn Optimizer + Send> {
        match *self {
            OptimizerConfig::Sgd { lr, weight_decay, momentum } => Box::new(Sgd::new(lr, weight_decay, momentum)),
            OptimizerConfig::RmsProp { lr, alpha, eps, weight_decay, momentum } => {
                let mut o = RmsProp::new(lr);
                o.alpha = alpha;
                o.eps = eps;
                o.weight_decay = weight_decay;
                o.momentum = momentum;
                Box::new(o)
            }
            OptimizerConfig::Adam { lr, weight_decay } => {
                let mut o = Adam::new(lr);
                o.weight_decay = weight_decay;
                Box::new(o)
            }
        }
    }
}

/// Settings of a feedback-training run.
#[derive(Debug, Clone)]
pub struct TrainConfig {
    /// Epochs over the training set.
    pub epochs: usize,
    /// Images per optimiser step.
    pub batch_size: usize,
    /// Seed of the shuffles.
    pub seed: u64,
    /// The optimiser.
    pub optimizer: OptimizerConfig,
    /// Cosine schedule with warm restarts: `(T_0, T_mult, η_min)` in epochs, stepped every batch.
    pub cosine: Option<(f64, f64, f64)>,
    /// Train on the first `n` training images only (a subset, e.g. for CI).
    pub train_limit: Option<usize>,
    /// Held-out images evaluated after each epoch (the first `n` of the validation set).
    pub val_limit: Option<usize>,
    /// Where to write checkpoints (after every epoch, and every `checkpoint_every` steps).
    pub checkpoint: Option<PathBuf>,
    /// Also checkpoint every this many steps (0: at the end of epochs only).
    pub checkpoint_every: u64,
    /// Parts each batch is cut into and computed in parallel (see [`Trainer::step_batch`]).
    pub chunks: usize,
    /// Show a progress bar on stderr (only drawn on a terminal).
    pub progress: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 1,
            batch_size: 32,
            seed: 0,
            optimizer: OptimizerConfig::Sgd { lr: 0.01, weight_decay: 5e-4, momentum: 0.9 },
            cosine: None,
            train_limit: None,
            val_limit: None,
            checkpoint: None,
            checkpoint_every: 0,
            chunks: 2,
            progress: true,
        }
    }
}

/// One finished epoch.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochReport {
    /// Epoch number (0-based).
    pub epoch: usize,
    /// Mean training loss of each pcoder over the epoch's batches.
    pub train_loss: Vec<f32>,
    /// Mean held-out loss of each pcoder (empty without held-out data).
    pub val_loss: Vec<f32>,
    /// Wall time of the epoch (training and evaluation), seconds.
    pub seconds: f64,
}

/// Initialise every predictor parameter as PyTorch does for a fresh layer,
/// `U(−1/√fan_in, 1/√fan_in)` with `fan_in = weight.dims[1] · kernel size` (the bias uses its
/// weight's bound), drawn from a generator seeded with `seed`: the same initial weights for the
/// same seed on every machine.
pub fn init_feedback(pnet: &predify_runtime::PNet, seed: u64) -> Result<()> {
    let mut rng = Rng::derive(seed, "feedback-init", 0);
    let vars = pnet.feedback_vars();
    let mut bound = 1.0f64;
    for (name, var) in &vars {
        let dims = var.dims();
        if name.ends_with(".weight") && dims.len() >= 2 {
            let fan_in: usize = dims[1] * dims[2..].iter().product::<usize>();
            bound = 1.0 / (fan_in.max(1) as f64).sqrt();
        }
        let v: Vec<f32> = (0..var.elem_count()).map(|_| ((rng.uniform() * 2.0 - 1.0) * bound) as f32).collect();
        var.set(&Tensor::from_vec(v, dims, &Device::Cpu)?)?;
    }
    Ok(())
}

/// Feedback-weight training of one predified network (see the module docs).
pub struct Trainer<'m, M: Predified> {
    model: &'m M,
    config: TrainConfig,
    optimizer: Box<dyn Optimizer + Send>,
    vars: Vec<(String, Var)>,
    /// The weights before the step in progress (reused buffers).
    saved: guarded::Snapshot,
    position: Position,
    /// Σ of the per-pcoder losses and the number of batches in the epoch in progress.
    running: (Vec<f64>, usize),
    history: Vec<EpochReport>,
    /// The checkpoint this trainer was resumed from (named in errors about its position).
    resumed_from: Option<std::path::PathBuf>,
}

/// Headroom a resumed `global_step` must leave below `u64::MAX`.
const MAX_STEPS_AHEAD: u64 = 1 << 40;

impl<'m, M: Predified + Sync> Trainer<'m, M> {
    /// A trainer at the start of training.
    pub fn new(model: &'m M, config: TrainConfig) -> Result<Self> {
        if config.batch_size == 0 {
            return Err(Error::Config("batch size must be at least 1".into()));
        }
        if let Some((t0, tm, _)) = config.cosine {
            CosineWarmRestarts::new(config.optimizer.lr(), t0, tm, 0.0)?;
        }
        let n = model.pnet().len();
        Ok(Self {
            model,
            optimizer: config.optimizer.build(),
            vars: model.pnet().feedback_vars(),
            saved: guarded::Snapshot::default(),
            position: Position { seed: config.seed, batch_size: config.batch_size, ..Position::default() },
            running: (vec![0.0; n], 0),
            history: Vec::new(),
            resumed_from: None,
            config,
        })
    }

    /// A trainer that continues the run saved in `path`: the weights are loaded into the model,
    /// the optimiser's state and the position restored. The checkpoint must be of this network
    /// and of the same optimiser, seed and batch size as `config` (else the run would not be the
    /// same); errors name the file and the tensor or setting that differs.
    pub fn resume(model: &'m M, config: TrainConfig, path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let ck = Checkpoint::load(path)?;
        let mut t = Self::new(model, config)?;
        let bad = |message: String| Error::Checkpoint { path: path.to_path_buf(), message };
        if ck.position.seed != t.config.seed || ck.position.batch_size != t.config.batch_size {
            return Err(bad(format!(
                "saved with seed {} and batch size {}, resumed with seed {} and batch size {}: use the same to continue the run",
                ck.position.seed, ck.position.batch_size, t.config.seed, t.config.batch_size
            )));
        }
        // Everything is checked before anything is applied: a rejected checkpoint leaves the
        // model and the optimiser as they were.
        let p = ck.position;
        if p.epoch > t.config.epochs || (p.epoch == t.config.epochs && p.step_in_epoch > 0) {
            return Err(bad(format!(
                "position epoch {} step {} is past the {} configured epoch(s)",
                p.epoch, p.step_in_epoch, t.config.epochs
            )));
        }
        if p.global_step < p.step_in_epoch as u64 || p.global_step.checked_add(MAX_STEPS_AHEAD).is_none() {
            return Err(bad(format!("global_step {} is inconsistent with step_in_epoch {}", p.global_step, p.step_in_epoch)));
        }
        ck.check_finite(path)?;
        if let Some(o) = &ck.optimizer {
            if o.steps > p.global_step {
                return Err(bad(format!("optimizer.steps {} exceeds global_step {}", o.steps, p.global_step)));
            }
            for (key, buf) in &o.buffers {
                let param = key.rsplit_once('.').map(|(p, _)| p).unwrap_or(key);
                let Some((_, var)) = t.vars.iter().find(|(n, _)| n == param) else {
                    return Err(bad(format!("optimizer state `{key}` is for no parameter of {}", model.pnet().name())));
                };
                if buf.dims() != var.dims() || buf.dtype() != var.dtype() {
                    return Err(bad(format!(
                        "optimizer state `{key}`: {:?} {:?} in the file, the parameter is {:?} {:?}",
                        buf.dtype(),
                        buf.dims(),
                        var.dtype(),
                        var.dims()
                    )));
                }
            }
        }
        let history: Vec<EpochReport> = match ck.extra.get("history") {
            Some(h) => serde_json::from_str(h).map_err(|e| bad(format!("metadata `history`: {e}")))?,
            None => Vec::new(),
        };
        let mut running = None;
        if let Some(r) = ck.extra.get("running") {
            let (sums, count): (Vec<f64>, usize) = serde_json::from_str(r).map_err(|e| bad(format!("metadata `running`: {e}")))?;
            if count > p.step_in_epoch || sums.iter().any(|s| !s.is_finite()) {
                return Err(bad(format!("metadata `running`: count {count} (step_in_epoch {}) or sums {sums:?} invalid", p.step_in_epoch)));
            }
            if sums.len() == t.running.0.len() {
                running = Some((sums, count));
            }
        }
        // A copy of the optimiser loads the state first, so that its own checks cannot leave
        // the weights applied and the optimiser not.
        if let Some(o) = &ck.optimizer {
            let mut probe = t.config.optimizer.build();
            probe.load_state(o).map_err(|e| bad(e.to_string()))?;
        }
        ck.apply_to(model.pnet(), path)?;
        if let Some(o) = &ck.optimizer {
            t.optimizer.load_state(o).map_err(|e| bad(e.to_string()))?;
        }
        t.position = p;
        t.history = history;
        if let Some(r) = running {
            t.running = r;
        }
        t.resumed_from = Some(path.to_path_buf());
        Ok(t)
    }

    /// Where training stands.
    pub fn position(&self) -> Position {
        self.position
    }

    /// The reports of finished epochs (restored on resume).
    pub fn history(&self) -> &[EpochReport] {
        &self.history
    }

    /// The optimiser.
    pub fn optimizer(&self) -> &dyn Optimizer {
        self.optimizer.as_ref()
    }

    /// The current state as a checkpoint.
    pub fn checkpoint(&self) -> Result<Checkpoint> {
        let mut ck = Checkpoint::of(self.model.pnet(), Some(self.optimizer.state()), self.position)?;
        ck.extra.insert("history".into(), serde_json::to_string(&self.history).unwrap_or_default());
        ck.extra.insert("running".into(), serde_json::to_string(&self.running).unwrap_or_default());
        ck.extra.insert("optimizer.config".into(), format!("{:?}", self.config.optimizer));
        Ok(ck)
    }

    /// Write the current state to `path`, atomically.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        self.checkpoint()?.save(path)
    }

    /// One optimiser step on the batch `x`: timestep 0, reconstruction loss, update. Returns
    /// each pcoder's loss.
    ///
    /// The batch is cut into [`TrainConfig::chunks`] parts whose losses and gradients are
    /// computed in parallel and combined weighted by their sizes: the loss is a mean over the
    /// batch and timestep 0 does not mix samples, so this is the whole batch's loss and gradient
    /// (up to float rounding, and the same for the same `chunks` on every run).
    pub fn step_batch(&mut self, x: &Tensor) -> Result<Vec<f32>> {
        let (epoch, step) = (self.position.epoch.saturating_add(1), self.position.step_in_epoch.saturating_add(1));
        let diverged = |message: String| Error::Diverged { epoch, step, message };
        let n = x.dims()[0];
        let chunks = self.config.chunks.clamp(1, n.max(1));
        let bounds: Vec<(usize, usize)> = (0..chunks).map(|c| (c * n / chunks, (c + 1) * n / chunks)).filter(|(a, b)| b > a).collect();
        let model = self.model;
        let parts: Vec<predify_runtime::Result<(usize, predify_runtime::ReconstructionGrads)>> = bounds
            .par_iter()
            .map(|&(a, b)| {
                let xs = x.narrow(0, a, b - a)?;
                Ok((b - a, timestep0_grads(model, &xs)?))
            })
            .collect();
        let mut per_pcoder = vec![0f32; model.pnet().len()];
        let mut grads: Vec<(String, Tensor)> = Vec::new();
        for part in parts {
            let (len, g) = match part {
                Ok(p) => p,
                Err(e @ predify_runtime::Error::NonFinite { .. }) => return Err(diverged(e.to_string())),
                Err(e) => return Err(e.into()),
            };
            let w = len as f64 / n as f64;
            for (acc, l) in per_pcoder.iter_mut().zip(&g.per_pcoder) {
                *acc += (w * *l as f64) as f32;
            }
            if grads.is_empty() {
                for (name, t) in g.grads {
                    grads.push((name, if chunks == 1 { t } else { t.affine(w, 0.0)? }));
                }
            } else {
                for ((_, acc), (_, t)) in grads.iter_mut().zip(g.grads) {
                    *acc = (&*acc + t.affine(w, 0.0)?)?;
                }
            }
        }
        for (i, l) in per_pcoder.iter().enumerate() {
            if !l.is_finite() {
                return Err(diverged(format!("pcoder{}: reconstruction loss is {l}", i + 1)));
            }
        }
        // Non-finite gradients are refused, and an update that overflows is undone.
        guarded::step_or_restore(self.optimizer.as_mut(), &self.vars, &grads, &mut self.saved, diverged)?;
        Ok(per_pcoder)
    }

    fn batches_per_epoch(&self, n: usize) -> usize {
        n.div_ceil(self.config.batch_size)
    }

    /// Train from the current position until `max_steps` more steps are done (all remaining
    /// epochs if `None`); evaluates on `val` and checkpoints at the end of each epoch.
    pub fn run(&mut self, train: &(impl Dataset + ?Sized), val: Option<&dyn Dataset>, max_steps: Option<u64>) -> Result<()> {
        let n = self.config.train_limit.map_or(train.len(), |l| l.min(train.len()));
        if n == 0 {
            return Err(Error::Config("the training set is empty".into()));
        }
        let nb = self.batches_per_epoch(n);
        let bs = self.config.batch_size;
        let schedule = match self.config.cosine {
            Some((t0, tm, eta)) => Some(CosineWarmRestarts::new(self.config.optimizer.lr(), t0, tm, eta)?),
            None => None,
        };
        if self.position.step_in_epoch >= nb && self.position.step_in_epoch > 0 {
            let message = format!("position step {} of epoch {} is past the {nb} batches of an epoch", self.position.step_in_epoch, self.position.epoch);
            return Err(match &self.resumed_from {
                Some(path) => Error::Checkpoint { path: path.clone(), message },
                None => Error::Config(message),
            });
        }
        let mut done = 0u64;
        while self.position.epoch < self.config.epochs {
            let epoch = self.position.epoch;
            let started = Instant::now();
            let order = epoch_order(n, self.position.seed, epoch);
            let bar = progress_bar(self.config.progress, nb as u64, format!("epoch {}/{}", epoch + 1, self.config.epochs));
            bar.set_position(self.position.step_in_epoch as u64);
            while self.position.step_in_epoch < nb {
                if max_steps.is_some_and(|m| done >= m) {
                    bar.abandon();
                    return Ok(());
                }
                let b = self.position.step_in_epoch;
                let idx = &order[b * bs..((b + 1) * bs).min(n)];
                let (x, _) = gather(train, idx, &Device::Cpu)?;
                if let Some(s) = &schedule {
                    self.optimizer.set_lr(s.lr_at(epoch as f64 + b as f64 / nb as f64));
                }
                let losses = self.step_batch(&x)?;
                for (s, l) in self.running.0.iter_mut().zip(&losses) {
                    *s += *l as f64;
                }
                self.running.1 += 1;
                self.position.step_in_epoch += 1;
                self.position.global_step += 1;
                done += 1;
                bar.set_position(self.position.step_in_epoch as u64);
                bar.set_message(loss_message(&self.running_mean()));
                if self.config.checkpoint_every > 0 && self.position.global_step % self.config.checkpoint_every == 0 {
                    if let Some(p) = &self.config.checkpoint {
                        self.save(p)?;
                    }
                }
            }
            bar.finish_and_clear();
            let val_loss = match val {
                Some(v) => self.evaluate(v)?,
                None => Vec::new(),
            };
            let report = EpochReport { epoch, train_loss: self.running_mean(), val_loss, seconds: started.elapsed().as_secs_f64() };
            self.history.push(report);
            self.position.epoch += 1;
            self.position.step_in_epoch = 0;
            self.running = (vec![0.0; self.running.0.len()], 0);
            if let Some(p) = &self.config.checkpoint {
                self.save(p)?;
            }
        }
        Ok(())
    }

    /// Train all remaining epochs (see [`Trainer::run`]); returns every epoch's report.
    pub fn fit(&mut self, train: &(impl Dataset + ?Sized), val: Option<&dyn Dataset>) -> Result<Vec<EpochReport>> {
        self.run(train, val, None)?;
        Ok(self.history.clone())
    }

    fn running_mean(&self) -> Vec<f32> {
        let c = self.running.1.max(1) as f64;
        self.running.0.iter().map(|s| (s / c) as f32).collect()
    }

    /// Mean reconstruction loss of each pcoder over `set` (the first `val_limit` images),
    /// weighted by batch size; batches run in parallel.
    pub fn evaluate(&self, set: &(impl Dataset + ?Sized)) -> Result<Vec<f32>> {
        reconstruction_loss(self.model, set, self.config.val_limit, self.config.batch_size)
    }
}

/// Predify's feedback-training loss and gradients at timestep 0 for the batch `x`: the
/// network's feedforward taps are the representations at timestep 0, so no dynamics run
/// ([`predify_runtime::PNet::reconstruction_grads_at`]).
pub fn timestep0_grads<M: Predified + ?Sized>(model: &M, x: &Tensor) -> predify_runtime::Result<predify_runtime::ReconstructionGrads> {
    model.pnet().reconstruction_grads_at(x, &model.feedforward_taps(x)?)
}

/// Mean reconstruction loss of each pcoder at timestep 0 over the first `limit` images of
/// `set`, in batches of `batch_size` run in parallel.
pub fn reconstruction_loss<M: Predified + Sync>(model: &M, set: &(impl Dataset + ?Sized), limit: Option<usize>, batch_size: usize) -> Result<Vec<f32>> {
    let n = limit.map_or(set.len(), |l| l.min(set.len()));
    let k = model.pnet().len();
    let starts: Vec<usize> = (0..n).step_by(batch_size.max(1)).collect();
    let parts: Vec<Result<(Vec<f64>, usize)>> = starts
        .par_iter()
        .map(|&s| {
            let idx: Vec<usize> = (s..(s + batch_size).min(n)).collect();
            let (x, _) = gather(set, &idx, &Device::Cpu)?;
            let reps = model.feedforward_taps(&x)?;
            let losses: Vec<f32> = (0..k)
                .map(|i| {
                    let target = if i == 0 { &x } else { &reps[i - 1] };
                    let prd = model.pnet().pcoders()[i].predictor().forward(&reps[i])?;
                    Ok((prd - target)?.sqr()?.mean_all()?.to_scalar::<f32>()?)
                })
                .collect::<Result<_>>()?;
            Ok((losses.iter().map(|&l| l as f64 * idx.len() as f64).collect(), idx.len()))
        })
        .collect();
    let mut sums = vec![0f64; k];
    let mut count = 0;
    for p in parts {
        let (s, c) = p?;
        for (a, b) in sums.iter_mut().zip(s) {
            *a += b;
        }
        count += c;
    }
    Ok(sums.iter().map(|s| (s / count.max(1) as f64) as f32).collect())
}

/// `pc1 0.01234  pc2 0.04567`.
pub fn loss_message(losses: &[f32]) -> String {
    losses.iter().enumerate().map(|(i, l)| format!("pc{} {l:.5}", i + 1)).collect::<Vec<_>>().join("  ")
}
