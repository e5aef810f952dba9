//! What one condition of an evaluation gives: its accuracies ([`NoiseResult`]) and each
//! timestep against the plain network ([`Paired`]), with the statistics' settings.

use crate::common::{Error, Result, Rng};
use crate::noise::Noise;
use crate::stats::{paired_difference, PairedCounts};

/// Confidence level of the intervals on accuracy differences.
pub const CONFIDENCE: f64 = 0.95;
/// Bootstrap resamples per interval (enough for stable 2.5 % / 97.5 % percentiles at the
/// precision the table prints).
pub const BOOTSTRAP_RESAMPLES: usize = 1000;
/// An effect counts as significant when its McNemar p-value is below this and its interval
/// excludes 0 (both: the two tests can disagree at the margin; the table marks the rest `n.s.`).
pub const SIGNIFICANCE: f64 = 0.05;

/// The predified network at one timestep against the plain feedforward network on the same
/// images: the accuracy difference, its bootstrap interval, McNemar's p-value, and the four
/// cells they come from.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Paired {
    /// Accuracy at the timestep minus the feedforward accuracy (fraction).
    pub diff: f64,
    /// Lower end of the [`CONFIDENCE`] interval (percentile bootstrap over images).
    pub ci_lo: f64,
    /// Upper end of the interval.
    pub ci_hi: f64,
    /// Two-sided exact McNemar p-value of "no difference".
    pub p: f64,
    /// Images both got right.
    pub both: usize,
    /// Images only the feedforward network got right.
    pub only_ff: usize,
    /// Images only the predified network (at this timestep) got right.
    pub only_pc: usize,
    /// Images both got wrong.
    pub neither: usize,
}

impl Paired {
    /// The statistics of per-image outcomes `ff` (plain network) and `pc` (a timestep), the
    /// bootstrap drawing from `rng`.
    pub fn from_outcomes(ff: &[bool], pc: &[bool], rng: &mut Rng) -> Result<Self> {
        let c = PairedCounts::from_outcomes(ff, pc).ok_or_else(|| Error::Config("paired outcomes of different lengths".into()))?;
        let d = paired_difference(c, CONFIDENCE, BOOTSTRAP_RESAMPLES, || rng.uniform());
        Ok(Self { diff: d.difference, ci_lo: d.lo, ci_hi: d.hi, p: d.p_value, both: c.both, only_ff: c.only_a, only_pc: c.only_b, neither: c.neither })
    }

    /// Whether the effect is significant: p below [`SIGNIFICANCE`] and the interval excludes 0.
    pub fn significant(&self) -> bool {
        self.p < SIGNIFICANCE && (self.ci_lo > 0.0 || self.ci_hi < 0.0)
    }

    /// In points (percent): `+1.71 [+1.20, +2.20]`, with ` n.s.` appended when not significant.
    pub fn display(&self) -> String {
        let ns = if self.significant() { "" } else { " n.s." };
        format!("{:+.2} [{:+.2}, {:+.2}]{ns}", 100.0 * self.diff, 100.0 * self.ci_lo, 100.0 * self.ci_hi)
    }
}

/// Accuracy under one condition (a noise or an MNIST-C corruption).
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
    /// Each timestep against the feedforward network on the same images (`0..=T`; empty in
    /// reports written before the statistics existed).
    #[serde(default)]
    pub paired: Vec<Paired>,
}

impl NoiseResult {
    /// The best accuracy over timesteps and the timestep it was reached at (the first on ties).
    /// Picked after looking, so its interval is optimistic; the last timestep's is not.
    pub fn best(&self) -> (usize, f64) {
        self.timesteps.iter().copied().enumerate().fold((0, f64::MIN), |a, (t, v)| if v > a.1 { (t, v) } else { a })
    }
}
