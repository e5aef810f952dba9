//! Robustness evaluation: accuracy at every timestep under noise, beside the plain
//! feedforward network.
//!
//! For each noise condition (clean, Gaussian noise of standard deviation σ added to the
//! network's normalised input as in Predify's paper, salt-and-pepper noise replacing a
//! fraction p of the pixels by the input's minimum or maximum), every image of the set is
//! corrupted once (seeded: the same images for every timestep and for the feedforward
//! network), classified by the plain backbone, and run through the predified network for
//! timesteps `0..=T`; accuracy is counted at each timestep. Batches run in parallel; note
//! that with plain `PCoder`s (no gradient scaling) the error term depends on the batch size,
//! as in Predify, so the batch size is part of the result.
//!
//! The set is any [`Dataset`] whose items have the network's input shape. The noise models are
//! [`crate::noise::Noise`] (re-exported here, since [`EvalConfig`] lists them); set
//! [`EvalConfig::pixel_range`] to the range of the data set's values.
//!
//! Output: [`Report::table`] (stdout), [`Report::to_csv`], [`Report::to_json`] and
//! [`Report::plot`] (PNG, accuracy versus timestep, one panel per noise level).

mod plot;

pub use crate::noise::Noise;

use crate::common::progress::progress_bar;
use crate::common::{write_atomic, Error, Result, Rng};
use crate::data::{gather, Dataset};
use candle_core::{Device, Tensor, D};
use predify_runtime::Predified;
use rayon::prelude::*;
use std::path::Path;
use std::time::Instant;

/// Settings of a robustness evaluation.
#[derive(Debug, Clone)]
pub struct EvalConfig {
    /// The last timestep T: accuracy is measured at timesteps `0..=T`.
    pub timesteps: usize,
    /// Images per batch (one state per batch).
    pub batch_size: usize,
    /// Seed of the noise.
    pub seed: u64,
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
            noises: vec![Noise::Clean, Noise::Gaussian(0.5), Noise::Gaussian(1.0), Noise::SaltPepper(0.2)],
            limit: None,
            pixel_range: (0.0, 1.0),
            progress: true,
        }
    }
}

/// Accuracy under one noise condition.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NoiseResult {
    /// The condition.
    pub noise: Noise,
    /// Images evaluated.
    pub images: usize,
    /// Accuracy of the plain feedforward backbone.
    pub feedforward: f64,
    /// Accuracy of the predified network at timesteps `0..=T`.
    pub timesteps: Vec<f64>,
}

impl NoiseResult {
    /// The best accuracy over timesteps and the timestep it was reached at.
    pub fn best(&self) -> (usize, f64) {
        self.timesteps.iter().copied().enumerate().fold((0, f64::MIN), |a, (t, v)| if v > a.1 { (t, v) } else { a })
    }
}

/// The result of [`evaluate`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Report {
    /// The predified network's name.
    pub network: String,
    /// Images per condition.
    pub images: usize,
    /// T.
    pub timesteps: usize,
    /// Batch size used.
    pub batch_size: usize,
    /// Noise seed.
    pub seed: u64,
    /// β, λ, α of each pcoder during the evaluation.
    pub hyperparameters: Vec<[f32; 3]>,
    /// One entry per condition, in the configured order.
    pub results: Vec<NoiseResult>,
    /// Wall time, seconds.
    pub seconds: f64,
}

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
    let steps = config.timesteps + 1;
    let batches: Vec<usize> = (0..n).step_by(config.batch_size).collect();
    let jobs: Vec<(usize, usize)> = (0..config.noises.len()).flat_map(|c| batches.iter().map(move |&b| (c, b))).collect();
    let bar = progress_bar(config.progress, jobs.len() as u64, "robustness".into());
    // (condition, feedforward correct, correct per timestep)
    let counts: Vec<Result<(usize, usize, Vec<usize>)>> = jobs
        .par_iter()
        .map(|&(c, start)| {
            let idx: Vec<usize> = (start..(start + config.batch_size).min(n)).collect();
            let (x, labels) = gather(set, &idx, &Device::Cpu)?;
            let mut rng = Rng::derive(config.seed, "eval-noise", ((c as u64) << 32) | (start as u64));
            let x = config.noises[c].apply(&x, &mut rng, config.pixel_range)?;
            let ff = correct(&model.forward_plain(&x)?, &labels)?;
            let mut st = model.new_state(&x)?;
            let mut per_t = Vec::with_capacity(steps);
            for _ in 0..steps {
                let logits = model.step(&mut st)?;
                per_t.push(correct(&logits, &labels)?);
            }
            bar.inc(1);
            Ok((c, ff, per_t))
        })
        .collect();
    bar.finish_and_clear();
    let mut results: Vec<NoiseResult> = config
        .noises
        .iter()
        .map(|&noise| NoiseResult { noise, images: n, feedforward: 0.0, timesteps: vec![0.0; steps] })
        .collect();
    for r in counts {
        let (c, ff, per_t) = r?;
        results[c].feedforward += ff as f64;
        for (a, b) in results[c].timesteps.iter_mut().zip(per_t) {
            *a += b as f64;
        }
    }
    for r in &mut results {
        r.feedforward /= n as f64;
        r.timesteps.iter_mut().for_each(|v| *v /= n as f64);
    }
    let pnet = model.pnet();
    let hyperparameters = (0..pnet.len())
        .map(|i| pnet.hyperparameters(i).map(|h| [h.feedforward, h.feedback, h.pc]))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(Report {
        network: pnet.name().to_string(),
        images: n,
        timesteps: config.timesteps,
        batch_size: config.batch_size,
        seed: config.seed,
        hyperparameters,
        results,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Number of rows of `logits` whose argmax equals the label.
fn correct(logits: &Tensor, labels: &[u32]) -> Result<usize> {
    let pred = logits.argmax(D::Minus1)?.to_vec1::<u32>()?;
    Ok(pred.iter().zip(labels).filter(|(p, l)| p == l).count())
}

impl Report {
    /// The table printed on stdout: one row per condition, accuracy in percent for the
    /// feedforward network and every timestep, then the change from timestep 0 to the last and
    /// to the best timestep.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let h = self.hyperparameters.iter().enumerate().map(|(i, h)| format!("pc{} β={:.3} λ={:.3} α={:.4}", i + 1, h[0], h[1], h[2])).collect::<Vec<_>>().join(", ");
        s.push_str(&format!(
            "{}: accuracy (%) on {} images, timesteps 0..={} (batch {}, noise seed {}; {h})\n",
            self.network, self.images, self.timesteps, self.batch_size, self.seed
        ));
        let mut head = format!("{:<12} {:>6}", "noise", "ff");
        for t in 0..=self.timesteps {
            head.push_str(&format!(" {:>6}", format!("t{t}")));
        }
        head.push_str(&format!(" {:>8} {:>12}", "Δlast", "Δbest (t)"));
        s.push_str(&head);
        s.push('\n');
        for r in &self.results {
            let mut row = format!("{:<12} {:>6.2}", r.noise.label(), 100.0 * r.feedforward);
            for v in &r.timesteps {
                row.push_str(&format!(" {:>6.2}", 100.0 * v));
            }
            let t0 = r.timesteps[0];
            let last = *r.timesteps.last().unwrap_or(&t0);
            let (bt, bv) = r.best();
            row.push_str(&format!(" {:>+8.2} {:>+8.2} ({bt})", 100.0 * (last - t0), 100.0 * (bv - t0)));
            s.push_str(&row);
            s.push('\n');
        }
        s
    }

    /// CSV: `noise,level,images,feedforward,t0,…,tT` (accuracies as fractions).
    pub fn to_csv(&self) -> String {
        let mut s = String::from("noise,level,images,feedforward");
        for t in 0..=self.timesteps {
            s.push_str(&format!(",t{t}"));
        }
        s.push('\n');
        for r in &self.results {
            let (k, l) = r.noise.kind_level();
            s.push_str(&format!("{k},{l},{},{:.6}", r.images, r.feedforward));
            for v in &r.timesteps {
                s.push_str(&format!(",{v:.6}"));
            }
            s.push('\n');
        }
        s
    }

    /// The whole report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Write `{stem}.csv`, `{stem}.json` and `{stem}.png` into `dir` (atomically each).
    pub fn write_files(&self, dir: &Path, stem: &str) -> Result<Vec<std::path::PathBuf>> {
        use std::io::Write;
        std::fs::create_dir_all(dir).map_err(|source| Error::Io { path: dir.to_path_buf(), source })?;
        let csv = dir.join(format!("{stem}.csv"));
        write_atomic(&csv, |f| f.write_all(self.to_csv().as_bytes()))?;
        let json = dir.join(format!("{stem}.json"));
        write_atomic(&json, |f| f.write_all(self.to_json().as_bytes()))?;
        let png = dir.join(format!("{stem}.png"));
        self.plot(&png)?;
        Ok(vec![csv, json, png])
    }

    /// Plot accuracy versus timestep: one panel per condition (its own accuracy scale), the
    /// plain feedforward network's accuracy as a dashed line; PNG at `path`.
    pub fn plot(&self, path: &Path) -> Result<()> {
        plot::accuracy_vs_timestep(self, path)
    }
}
