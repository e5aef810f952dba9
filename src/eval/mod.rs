//! Robustness evaluation: accuracy at every timestep under noise and MNIST-C's corruptions,
//! beside the plain feedforward network, with paired statistics.
//!
//! For each condition (clean, Gaussian noise of standard deviation σ added to the network's
//! normalised input as in Predify's paper, salt-and-pepper noise replacing a fraction p of the
//! pixels by the input's minimum or maximum, or one of MNIST-C's 15 corruptions,
//! [`Noise::Corruption`]), every image of the set is corrupted once, classified by the plain
//! backbone, and run through the predified network for timesteps `0..=T`; whether it is right is
//! kept per image at each timestep.
//!
//! Every random draw comes from `(seed, condition, image index)` only
//! ([`Noise::apply_indexed`]), so the corrupted images, and with them the table, are the same for
//! any batch size and thread count. The network's dynamics are another matter: with plain
//! `PCoder`s (no gradient scaling) and Predify's batch-mean error scaling the error term is the
//! gradient of a mean over the batch, so its size depends on the batch size when α > 0; the
//! batch size is then part of the result (it is in the report). With gradient scaling,
//! `error_scaling = "per_sample"` (the main job's template uses both) or α = 0 it is not.
//!
//! Each timestep is compared with the plain network on the same images ([`Paired`]): the
//! accuracy difference with a [`CONFIDENCE`] percentile-bootstrap interval over images
//! ([`BOOTSTRAP_RESAMPLES`] resamples, seeded from `(seed, condition, timestep)`) and the exact
//! McNemar p-value ([`crate::stats`]). The corruptions are summarised by their mean accuracy and
//! a relative corruption error in the spirit of mCE ([`CorruptionSummary`]), both with a paired
//! bootstrap interval over images.
//!
//! The set is any [`Dataset`] whose items have the network's input shape. The noise models are
//! [`crate::noise::Noise`] (re-exported here, since [`EvalConfig`] lists them); set
//! [`EvalConfig::pixel_range`] to the range of the data set's values.
//!
//! Output: [`Report::table`] (stdout), [`Report::corruption_table`], [`Report::to_csv`],
//! [`Report::to_json`] and [`Report::plot`] (PNG, accuracy versus timestep, one panel per
//! condition). [`HyperPreset`] names the hyperparameter configurations compared (Predify's
//! defaults, the paper's, either with α = 0).

mod files;
mod hyper;
mod outcomes;
pub(crate) mod plot;
mod result;
mod summary;

pub use crate::noise::Noise;
pub use hyper::{current as current_hyperparameters, HyperPreset};
pub use result::{NoiseResult, Paired, BOOTSTRAP_RESAMPLES, CONFIDENCE, SIGNIFICANCE};
pub use summary::CorruptionSummary;

use crate::common::progress::progress_bar;
use crate::common::{Error, Result, Rng};
use crate::data::{gather, Dataset};
use crate::loss::correct_rows;
use outcomes::Outcomes;
use candle_core::Device;
use predify_runtime::Predified;
use rayon::prelude::*;
use std::time::Instant;

/// Settings of a robustness evaluation.
#[derive(Debug, Clone)]
pub struct EvalConfig {
    /// The last timestep T: accuracy is measured at timesteps `0..=T`.
    pub timesteps: usize,
    /// Images per batch (one state per batch).
    pub batch_size: usize,
    /// Seed of the noise (draw `k` of [`EvalConfig::draws`] uses `seed + k`).
    pub seed: u64,
    /// Noise draws per image for every random condition (1..=[`MAX_DRAWS`]; the clean
    /// condition is drawn once): draw `k` is the single-draw evaluation with seed `seed + k`, the
    /// accuracies are means over the draws, and the intervals resample images with all their
    /// draws ([`Paired`]).
    pub draws: usize,
    /// The noise conditions.
    pub noises: Vec<Noise>,
    /// Evaluate the first `n` images only.
    pub limit: Option<usize>,
    /// (min, max) pixel value of the normalised input, written by salt-and-pepper noise.
    pub pixel_range: (f32, f32),
    /// Show a progress bar on stderr (only drawn on a terminal).
    pub progress: bool,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            timesteps: 10,
            batch_size: 500,
            seed: 0,
            draws: 1,
            noises: vec![Noise::Clean, Noise::Gaussian(0.5), Noise::Gaussian(1.0), Noise::SaltPepper(0.2)],
            limit: None,
            pixel_range: (0.0, 1.0),
            progress: true,
        }
    }
}

/// The most noise draws per image ([`EvalConfig::draws`]).
pub const MAX_DRAWS: usize = 100;


/// The result of [`evaluate`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Report {
    /// The predified network's name.
    pub network: String,
    /// The hyperparameter configuration's name (`predify`, `paper`, `paper α=0`; empty when the
    /// caller did not name it): the rows of different configurations stay apart in files.
    #[serde(default)]
    pub label: String,
    /// Images per condition.
    pub images: usize,
    /// T.
    pub timesteps: usize,
    /// Batch size used.
    pub batch_size: usize,
    /// Noise seed.
    pub seed: u64,
    /// Noise draws per image ([`EvalConfig::draws`]; 1 in reports written before it existed).
    #[serde(default = "one")]
    pub draws: usize,
    /// β, λ, α of each pcoder during the evaluation.
    pub hyperparameters: Vec<[f32; 3]>,
    /// One entry per condition, in the configured order.
    pub results: Vec<NoiseResult>,
    /// The corruption conditions summarised (present when there are any).
    #[serde(default)]
    pub corruption_summary: Option<CorruptionSummary>,
    /// Wall time, seconds.
    pub seconds: f64,
}

/// One batch's outcomes: (condition, draw, first image, feedforward correct per image, correct
/// per timestep and image).
type BatchOutcome = (usize, usize, usize, Vec<bool>, Vec<Vec<bool>>);

/// Evaluate `model` on `set` under every condition of `config` (see the module docs).
pub fn evaluate<M: Predified + Sync>(model: &M, set: &(impl Dataset + ?Sized), config: &EvalConfig) -> Result<Report> {
    let started = Instant::now();
    let n = config.limit.map_or(set.len(), |l| l.min(set.len()));
    if n == 0 {
        return Err(Error::Config("nothing to evaluate: the test set is empty".into()));
    }
    if config.batch_size == 0 {
        return Err(Error::Config("batch size must be at least 1".into()));
    }
    if config.draws == 0 || config.draws > MAX_DRAWS {
        return Err(Error::Config(format!("noise draws: {} (expected 1..={MAX_DRAWS})", config.draws)));
    }
    let steps = config.timesteps + 1;
    // The clean images are the same on every draw: one draw is enough.
    let draws = |c: usize| if config.noises[c] == Noise::Clean { 1 } else { config.draws };
    let mut jobs: Vec<(usize, usize, usize)> = Vec::new();
    for c in 0..config.noises.len() {
        for k in 0..draws(c) {
            jobs.extend((0..n).step_by(config.batch_size).map(|b| (c, k, b)));
        }
    }
    let bar = progress_bar(config.progress, jobs.len() as u64, "robustness".into());
    // Per image, condition and draw: feedforward correct, correct at each timestep. Kept image
    // by image (not counted) for the paired statistics.
    let batch_outcomes: Vec<Result<BatchOutcome>> = jobs
        .par_iter()
        .map(|&(c, k, start)| {
            let idx: Vec<usize> = (start..(start + config.batch_size).min(n)).collect();
            let (x, labels) = gather(set, &idx, &Device::Cpu)?;
            // Drawn per image from (seed, condition, image index): the same noisy image for any
            // batch layout or thread count.
            let x = config.noises[c].apply_indexed(&x, config.seed.wrapping_add(k as u64), start as u64, config.pixel_range)?;
            let ff = correct_rows(&model.forward_plain(&x)?, &labels)?;
            let mut st = model.new_state(&x)?;
            let mut per_t = Vec::with_capacity(steps);
            for _ in 0..steps {
                let logits = model.step(&mut st)?;
                per_t.push(correct_rows(&logits, &labels)?);
            }
            bar.inc(1);
            Ok((c, k, start, ff, per_t))
        })
        .collect();
    bar.finish_and_clear();
    let mut cells: Vec<Outcomes> = (0..config.noises.len()).map(|c| Outcomes::new(n, steps, draws(c))).collect();
    for o in batch_outcomes {
        let (c, k, start, ff, per_t) = o?;
        cells[c].put(k, start, &ff, &per_t);
    }
    // Each (condition, timestep) bootstraps from its own generator: the intervals do not depend
    // on which thread computes them or on which other conditions are evaluated.
    let stats: Vec<(usize, usize)> = (0..config.noises.len()).flat_map(|c| (0..steps).map(move |t| (c, t))).collect();
    let paired: Vec<Result<Paired>> = stats
        .par_iter()
        .map(|&(c, t)| {
            let mut rng = Rng::derive(config.seed, &format!("eval-bootstrap/{}", config.noises[c].stream_key()), t as u64);
            cells[c].paired(t, &mut rng)
        })
        .collect();
    let mut paired = paired.into_iter();
    let mut results = Vec::with_capacity(config.noises.len());
    for (c, &noise) in config.noises.iter().enumerate() {
        let o = &cells[c];
        let paired = paired.by_ref().take(steps).collect::<Result<Vec<_>>>()?;
        results.push(NoiseResult { noise, images: n, feedforward: o.accuracy(None), timesteps: (0..steps).map(|t| o.accuracy(Some(t))).collect(), paired });
    }
    let corrupted: Vec<&Outcomes> = config.noises.iter().zip(&cells).filter(|(noise, _)| noise.is_corruption()).map(|(_, o)| o).collect();
    let pnet = model.pnet();
    let hyperparameters = (0..pnet.len())
        .map(|i| pnet.hyperparameters(i).map(|h| [h.feedforward, h.feedback, h.pc]))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(Report {
        network: pnet.name().to_string(),
        label: String::new(),
        images: n,
        timesteps: config.timesteps,
        batch_size: config.batch_size,
        seed: config.seed,
        draws: config.draws,
        hyperparameters,
        corruption_summary: CorruptionSummary::with_intervals(&results, &corrupted, config.seed),
        results,
        seconds: started.elapsed().as_secs_f64(),
    })
}

impl Report {
    /// The table printed on stdout: two header lines, then one row per condition: accuracy in
    /// percent for the feedforward network and every timestep, then the last and the best
    /// timestep against the feedforward network with their [`CONFIDENCE`] intervals, in points
    /// (`+1.71 [+1.20, +2.20]`), marked `n.s.` where not significant (see [`Paired`]).
    pub fn table(&self) -> String {
        let mut s = String::new();
        let h = self.hyperparameters.iter().enumerate().map(|(i, h)| format!("pc{} β={:.3} λ={:.3} α={:.4}", i + 1, h[0], h[1], h[2])).collect::<Vec<_>>().join(", ");
        let label = if self.label.is_empty() { String::new() } else { format!(" [{}]", self.label) };
        let seeds = match self.draws {
            0 | 1 => format!("noise seed {}", self.seed),
            k => format!("noise seeds {}..={}, {k} draws per image", self.seed, self.seed.wrapping_add(k as u64 - 1)),
        };
        s.push_str(&format!(
            "{}{label}: accuracy (%) on {} images, timesteps 0..={} (batch {}, {seeds}; {h}); Δ = t − ff in points, {:.0}% CI, n.s. = not significant\n",
            self.network,
            self.images,
            self.timesteps,
            self.batch_size,
            100.0 * CONFIDENCE
        ));
        let mut head = format!("{:<14} {:>6}", "condition", "ff");
        for t in 0..=self.timesteps {
            head.push_str(&format!(" {:>6}", format!("t{t}")));
        }
        head.push_str(&format!("  {:<27} {}", "Δlast", "Δbest (t)"));
        s.push_str(&head);
        s.push('\n');
        for r in &self.results {
            let mut row = format!("{:<14} {:>6.2}", r.noise.label(), 100.0 * r.feedforward);
            for v in &r.timesteps {
                row.push_str(&format!(" {:>6.2}", 100.0 * v));
            }
            let last = r.paired.last().map(Paired::display).unwrap_or_default();
            let (bt, _) = r.best();
            let best = r.paired.get(bt).map(|p| format!("{} ({bt})", p.display())).unwrap_or_default();
            row.push_str(&format!("  {last:<27} {best}"));
            s.push_str(row.trim_end());
            s.push('\n');
        }
        s
    }

    /// The corruption suite's summary ([`CorruptionSummary`]) as a small table: mean accuracy
    /// and relative corruption error per timestep; empty if the report has no corruptions.
    pub fn corruption_table(&self) -> String {
        let Some(c) = &self.corruption_summary else { return String::new() };
        let label = if self.label.is_empty() { String::new() } else { format!(" [{}]", self.label) };
        let mut s = format!(
            "{}{label}: mean over {} corruptions; relative error = mean of err_c(t) / err_c(ff) over {} corruptions (ff = 1.000)\n",
            self.network, c.corruptions, c.relative_error_corruptions
        );
        let mut head = format!("{:<16} {:>6}", "", "ff");
        for t in 0..c.timesteps.len() {
            head.push_str(&format!(" {:>6}", format!("t{t}")));
        }
        s.push_str(&head);
        s.push('\n');
        let mut acc = format!("{:<16} {:>6.2}", "accuracy (%)", 100.0 * c.feedforward);
        c.timesteps.iter().for_each(|v| acc.push_str(&format!(" {:>6.2}", 100.0 * v)));
        let mut ce = format!("{:<16} {:>6.3}", "relative error", 1.0);
        c.relative_error.iter().for_each(|v| ce.push_str(&format!(" {v:>6.3}")));
        s.push_str(&acc);
        s.push('\n');
        s.push_str(&ce);
        s.push('\n');
        let last = c.timesteps.len().saturating_sub(1);
        if let Some((d, re)) = c.display(last) {
            s.push_str(&format!("t{last} against ff, {:.0}% CI: mean accuracy {d} points; relative error {re}\n", 100.0 * CONFIDENCE));
        }
        s
    }

    /// CSV, one row per condition and timestep:
    /// `config,noise,level,images,timestep,feedforward,accuracy,diff,ci_lo,ci_hi,p`
    /// (fractions; `diff` = accuracy − feedforward with its interval `ci_lo..ci_hi` and McNemar's
    /// `p`; `level` is empty for corruptions, which have one severity).
    pub fn to_csv(&self) -> String {
        let mut s = String::from("config,noise,level,images,timestep,feedforward,accuracy,diff,ci_lo,ci_hi,p\n");
        for r in &self.results {
            let (k, l) = r.noise.kind_level();
            let level = if r.noise.is_corruption() { String::new() } else { l.to_string() };
            for (t, v) in r.timesteps.iter().enumerate() {
                s.push_str(&format!("{},{k},{level},{},{t},{:.6},{v:.6}", self.label, r.images, r.feedforward));
                match r.paired.get(t) {
                    Some(p) => s.push_str(&format!(",{:.6},{:.6},{:.6},{:.6e}\n", p.diff, p.ci_lo, p.ci_hi, p.p)),
                    None => s.push_str(",,,,\n"),
                }
            }
        }
        s
    }

    /// The corruption summary as CSV, one row per timestep (empty without corruptions):
    /// `config,timestep,corruptions,feedforward,mean_accuracy,diff,diff_lo,diff_hi,relative_error,relative_error_lo,relative_error_hi`
    /// (fractions; the intervals as in [`CorruptionSummary`], empty where not computed).
    pub fn summary_csv(&self) -> String {
        let Some(c) = &self.corruption_summary else { return String::new() };
        let mut s = String::from("config,timestep,corruptions,feedforward,mean_accuracy,diff,diff_lo,diff_hi,relative_error,relative_error_lo,relative_error_hi\n");
        let pair = |v: Option<&[f64; 2]>| v.map_or(String::from(","), |[lo, hi]| format!("{lo:.6},{hi:.6}"));
        for (t, a) in c.timesteps.iter().enumerate() {
            let re = c.relative_error.get(t).copied().unwrap_or(f64::NAN);
            s.push_str(&format!(
                "{},{t},{},{:.6},{a:.6},{:.6},{},{re:.6},{}\n",
                self.label,
                c.corruptions,
                c.feedforward,
                a - c.feedforward,
                pair(c.diff_interval.get(t)),
                pair(c.relative_error_interval.get(t))
            ));
        }
        s
    }

    /// The whole report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// The serde default of [`Report::draws`].
fn one() -> usize {
    1
}
