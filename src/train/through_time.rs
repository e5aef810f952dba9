//! Training the feedback weights through time (DeepPNet-style): the second training mode
//! beside Predify's reconstruction procedure ([`super::Trainer`]).
//!
//! Each step unrolls the network `T` timesteps on a batch ([`Tape::record`]), takes the mean
//! cross-entropy of the logits at timestep `T` ([`LossOn::Last`]) or summed over timesteps
//! `1..=T` ([`LossOn::Sum`]), back-propagates it through the unrolled dynamics to the predictor
//! (feedback) weights ([`Tape::backward`], Predify's semantics unless
//! [`Semantics::Exact`] is chosen) and steps the optimiser of [`TrainConfig::optimizer`] (the
//! same [`OptimizerConfig::build`](super::OptimizerConfig::build) the reconstruction trainer
//! uses). The backbone and the hyperparameters are not touched: the gradient reaches the
//! predictor weights only.
//!
//! Timestep 0 is the feedforward pass and does not depend on the feedback weights, which is why
//! [`LossOn::Sum`] starts at timestep 1 here (its term would only add a constant to the loss).
//!
//! The whole batch is one recording: with Predify's batch-mean error scaling the dynamics of a
//! sample depend on the batch size, so the batch is not cut into chunks as the reconstruction
//! trainer cuts it ([`TrainConfig::chunks`] is ignored). The recording keeps every timestep, so
//! memory grows linearly with `T`.
//!
//! A step whose loss, gradients or updated weights are not finite is an
//! [`Error::Diverged`] naming the epoch and step, and leaves the weights and the optimiser's
//! state as they were before the step. Checkpoints ([`Checkpoint`], written atomically at the
//! end of each epoch and every [`TrainConfig::checkpoint_every`] steps) hold the weights, the
//! optimiser's state and the position; they load wherever a feedback checkpoint does (e.g.
//! `predify-mnist --feedback`). Resuming a through-time run from one is not offered.

use super::guarded::{step_or_restore, Snapshot};
use super::{Checkpoint, Error, Position, Result, TrainConfig};
use crate::common::epoch_order;
use crate::common::progress::progress_bar;
use crate::data::{gather, Dataset};
use crate::loss::cross_entropy;
use candle_core::{Device, Tensor, Var};
use predify_runtime::chain::Segmented;
use predify_runtime::optim::{CosineWarmRestarts, Optimizer};
use predify_runtime::unroll::{BackwardOptions, LossOn, Semantics, Tape};
use std::path::Path;
use std::time::Instant;

/// What the through-time loss reads and how it is differentiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThroughTime {
    /// The last timestep `T` (at least 1): the network is unrolled over timesteps `0..=T`.
    pub timesteps: usize,
    /// The cross-entropy of timestep `T` only ([`LossOn::Last`]) or summed over `1..=T`
    /// ([`LossOn::Sum`]).
    pub loss_on: LossOn,
    /// How the error term is differentiated ([`Semantics::Predify`]: held constant, as the
    /// original computes it).
    pub semantics: Semantics,
}

impl Default for ThroughTime {
    /// `T = 5`, the loss at timestep `T`, Predify's semantics.
    fn default() -> Self {
        Self { timesteps: 5, loss_on: LossOn::Last, semantics: Semantics::Predify }
    }
}

impl ThroughTime {
    /// The timesteps whose cross-entropy enters the loss.
    fn loss_timesteps(&self) -> std::ops::RangeInclusive<usize> {
        match self.loss_on {
            LossOn::Last => self.timesteps..=self.timesteps,
            LossOn::Sum => 1..=self.timesteps,
        }
    }

    fn check(&self) -> Result<()> {
        if self.timesteps == 0 {
            return Err(Error::Config("training through time needs at least one timestep after the feedforward pass (T ≥ 1)".into()));
        }
        Ok(())
    }
}

/// The through-time loss of one batch and its gradient.
#[derive(Debug, Clone)]
pub struct ThroughTimeGrads {
    /// The loss: the mean cross-entropy at `T`, or its sum over timesteps `1..=T`.
    pub loss: f64,
    /// `∂loss/∂θ` of every predictor parameter, named and ordered as
    /// [`predify_runtime::PNet::feedback_vars`].
    pub grads: Vec<(String, Tensor)>,
}

/// The through-time loss of `model` on the batch `x` (`[N, ..input_size]`) with class indices
/// `labels` (one per row of `x`), and its gradient w.r.t. every predictor parameter, under
/// `tt`. Nothing is updated; errors from the runtime (a non-finite representation, bad shapes)
/// are returned as they are.
pub fn through_time_grads<M: Segmented + ?Sized>(model: &M, x: &Tensor, labels: &[u32], tt: &ThroughTime) -> Result<ThroughTimeGrads> {
    tt.check()?;
    let tape = Tape::record(model, x, tt.timesteps + 1)?;
    let mut loss = 0.0;
    let mut dlogits = vec![None; tt.timesteps + 1];
    for t in tt.loss_timesteps() {
        let (l, g) = cross_entropy(&tape.steps()[t].logits, labels)?;
        loss += l;
        dlogits[t] = Some(g);
    }
    let opts = BackwardOptions { semantics: tt.semantics, params: true };
    let grads = tape.backward(model, &dlogits, opts)?.params;
    Ok(ThroughTimeGrads { loss, grads })
}

/// The mean through-time loss (no gradient) over the first `limit` items of `set`, in batches
/// of `batch_size`, weighted by batch size.
pub fn through_time_loss<M: Segmented + ?Sized>(model: &M, set: &(impl Dataset + ?Sized), limit: Option<usize>, batch_size: usize, tt: &ThroughTime) -> Result<f64> {
    tt.check()?;
    let n = limit.map_or(set.len(), |l| l.min(set.len()));
    let (mut sum, mut count) = (0.0, 0usize);
    for start in (0..n).step_by(batch_size.max(1)) {
        let idx: Vec<usize> = (start..(start + batch_size.max(1)).min(n)).collect();
        let (x, labels) = gather(set, &idx, &Device::Cpu)?;
        let tape = Tape::record(model, &x, tt.timesteps + 1)?;
        for t in tt.loss_timesteps() {
            sum += cross_entropy(&tape.steps()[t].logits, &labels)?.0 * idx.len() as f64;
        }
        count += idx.len();
    }
    Ok(sum / count.max(1) as f64)
}

/// One finished epoch of through-time training.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ThroughTimeReport {
    /// Epoch number (0-based).
    pub epoch: usize,
    /// Mean training loss over the epoch's batches.
    pub train_loss: f64,
    /// Held-out loss after the epoch (`None` without held-out data).
    pub val_loss: Option<f64>,
    /// Wall time of the epoch (training and evaluation), seconds.
    pub seconds: f64,
}

/// Feedback-weight training through time of one predified network (see the module docs).
pub struct ThroughTimeTrainer<'m, M: Segmented> {
    model: &'m M,
    config: TrainConfig,
    tt: ThroughTime,
    optimizer: Box<dyn Optimizer + Send>,
    vars: Vec<(String, Var)>,
    /// The weights before the step in progress (reused buffers).
    saved: Snapshot,
    position: Position,
    history: Vec<ThroughTimeReport>,
}

impl<'m, M: Segmented> ThroughTimeTrainer<'m, M> {
    /// A trainer at the start of training `model`'s feedback weights with the batches, seed,
    /// optimiser, schedule, limits, checkpoint path and progress setting of `config` and the
    /// loss of `tt`. Errors: a batch size or `T` of 0, an invalid schedule.
    pub fn new(model: &'m M, config: TrainConfig, tt: ThroughTime) -> Result<Self> {
        if config.batch_size == 0 {
            return Err(Error::Config("batch size must be at least 1".into()));
        }
        tt.check()?;
        if let Some((t0, tm, _)) = config.cosine {
            CosineWarmRestarts::new(config.optimizer.lr(), t0, tm, 0.0)?;
        }
        Ok(Self {
            model,
            optimizer: config.optimizer.build(),
            vars: model.pnet().feedback_vars(),
            saved: Snapshot::default(),
            position: Position { seed: config.seed, batch_size: config.batch_size, ..Position::default() },
            history: Vec::new(),
            config,
            tt,
        })
    }

    /// Where training stands.
    pub fn position(&self) -> Position {
        self.position
    }

    /// The reports of finished epochs.
    pub fn history(&self) -> &[ThroughTimeReport] {
        &self.history
    }

    /// The optimiser.
    pub fn optimizer(&self) -> &dyn Optimizer {
        self.optimizer.as_ref()
    }

    /// The current weights, optimiser state and position as a checkpoint; its metadata names
    /// the mode (`mode` = `through-time`) and holds the history as JSON.
    pub fn checkpoint(&self) -> Result<Checkpoint> {
        let mut ck = Checkpoint::of(self.model.pnet(), Some(self.optimizer.state()), self.position)?;
        ck.extra.insert("mode".into(), "through-time".into());
        ck.extra.insert("through_time".into(), format!("{:?}", self.tt));
        ck.extra.insert("history".into(), serde_json::to_string(&self.history).unwrap_or_default());
        ck.extra.insert("optimizer.config".into(), format!("{:?}", self.config.optimizer));
        Ok(ck)
    }

    /// Write the current state to `path`, atomically.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        self.checkpoint()?.save(path)
    }

    /// One optimiser step on the batch `x` with class indices `labels`; returns the batch's
    /// loss before the step. On any error the weights and the optimiser's state are those from
    /// before the call; a non-finite loss, gradient or updated weight is
    /// [`Error::Diverged`] naming the epoch and step (1-based) about to be taken.
    pub fn step_batch(&mut self, x: &Tensor, labels: &[u32]) -> Result<f64> {
        let (epoch, step) = (self.position.epoch.saturating_add(1), self.position.step_in_epoch.saturating_add(1));
        let diverged = |message: String| Error::Diverged { epoch, step, message };
        let g = match through_time_grads(self.model, x, labels, &self.tt) {
            Ok(g) => g,
            Err(Error::Runtime(e @ predify_runtime::Error::NonFinite { .. })) => return Err(diverged(e.to_string())),
            Err(e) => return Err(e),
        };
        if !g.loss.is_finite() {
            return Err(diverged(format!("cross-entropy through time is {}", g.loss)));
        }
        // Non-finite gradients are refused, and an update that overflows is undone.
        step_or_restore(self.optimizer.as_mut(), &self.vars, &g.grads, &mut self.saved, diverged)?;
        Ok(g.loss)
    }

    /// Train all remaining epochs on `train` (the first [`TrainConfig::train_limit`] items, in
    /// a seeded shuffle per epoch); after each epoch, evaluate on the first
    /// [`TrainConfig::val_limit`] items of `val` and write the checkpoint if
    /// [`TrainConfig::checkpoint`] is set (also every [`TrainConfig::checkpoint_every`] steps).
    /// Returns every finished epoch's report.
    pub fn fit(&mut self, train: &(impl Dataset + ?Sized), val: Option<&dyn Dataset>) -> Result<Vec<ThroughTimeReport>> {
        let n = self.config.train_limit.map_or(train.len(), |l| l.min(train.len()));
        if n == 0 {
            return Err(Error::Config("the training set is empty".into()));
        }
        let bs = self.config.batch_size;
        let nb = n.div_ceil(bs);
        let schedule = match self.config.cosine {
            Some((t0, tm, eta)) => Some(CosineWarmRestarts::new(self.config.optimizer.lr(), t0, tm, eta)?),
            None => None,
        };
        while self.position.epoch < self.config.epochs {
            let epoch = self.position.epoch;
            let started = Instant::now();
            let order = epoch_order(n, self.position.seed, epoch);
            let bar = progress_bar(self.config.progress, nb as u64, format!("through time, epoch {}/{}", epoch + 1, self.config.epochs));
            let mut sum = 0.0;
            for b in 0..nb {
                let idx = &order[b * bs..((b + 1) * bs).min(n)];
                let (x, labels) = gather(train, idx, &Device::Cpu)?;
                if let Some(s) = &schedule {
                    self.optimizer.set_lr(s.lr_at(epoch as f64 + b as f64 / nb as f64));
                }
                sum += self.step_batch(&x, &labels)?;
                self.position.step_in_epoch += 1;
                self.position.global_step += 1;
                bar.set_position(self.position.step_in_epoch as u64);
                bar.set_message(format!("cross-entropy {:.4}", sum / (b + 1) as f64));
                // `checked_rem` is None for `checkpoint_every` 0 (off); `is_multiple_of` is newer
                // than the workspace's rust-version.
                if self.position.global_step.checked_rem(self.config.checkpoint_every) == Some(0) {
                    if let Some(p) = &self.config.checkpoint {
                        self.save(p)?;
                    }
                }
            }
            bar.finish_and_clear();
            let val_loss = match val {
                Some(v) => Some(through_time_loss(self.model, v, self.config.val_limit, bs, &self.tt)?),
                None => None,
            };
            self.history.push(ThroughTimeReport { epoch, train_loss: sum / nb as f64, val_loss, seconds: started.elapsed().as_secs_f64() });
            self.position.epoch += 1;
            self.position.step_in_epoch = 0;
            if let Some(p) = &self.config.checkpoint {
                self.save(p)?;
            }
        }
        Ok(self.history.clone())
    }
}
