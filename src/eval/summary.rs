//! The corruption suite summarised over its corruptions: mean accuracy and relative corruption
//! error per timestep, each with a paired bootstrap interval over images.

use super::outcomes::Outcomes;
use super::result::{NoiseResult, BOOTSTRAP_RESAMPLES, CONFIDENCE};
use crate::common::Rng;
use crate::stats::{percentile_interval, resample_weights};
use rayon::prelude::*;

/// The corruption suite summarised over its corruptions, per timestep.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CorruptionSummary {
    /// Corruptions in the mean.
    pub corruptions: usize,
    /// Mean accuracy of the feedforward network over the corruptions.
    pub feedforward: f64,
    /// Mean accuracy of the predified network at timesteps `0..=T`.
    pub timesteps: Vec<f64>,
    /// Relative corruption error in the spirit of mCE: the mean over corruptions of
    /// `err_c(t) / err_c(ff)`, the error normalised by the plain network's (1 = no change, below
    /// 1 = fewer errors), at timesteps `0..=T`. Corruptions the plain network makes no error on
    /// are left out (the ratio is undefined).
    pub relative_error: Vec<f64>,
    /// Corruptions in [`CorruptionSummary::relative_error`]'s mean.
    pub relative_error_corruptions: usize,
    /// Per timestep, the [`CONFIDENCE`] interval of the mean accuracy's difference to the plain
    /// network (`timesteps[t] − feedforward`, fraction): a percentile bootstrap over images in
    /// which every resample weights all corruptions by the same images, as they were scored on
    /// the same images. Empty when the per-image outcomes were not available (see
    /// [`CorruptionSummary::of`]).
    #[serde(default)]
    pub diff_interval: Vec<[f64; 2]>,
    /// Per timestep, the interval of [`CorruptionSummary::relative_error`], from the same
    /// resamples (a corruption whose plain network makes no error in a resample is left out of
    /// that resample's mean).
    #[serde(default)]
    pub relative_error_interval: Vec<[f64; 2]>,
}


/// One bootstrap resample's statistics per timestep: mean accuracy difference, relative error.
type Draw = (Vec<f64>, Vec<f64>);

impl CorruptionSummary {
    /// The summary of the corruption conditions among `results`, without intervals; `None` if
    /// there are none.
    pub fn of(results: &[NoiseResult]) -> Option<Self> {
        let cs: Vec<&NoiseResult> = results.iter().filter(|r| r.noise.is_corruption()).collect();
        let steps = cs.first()?.timesteps.len();
        let k = cs.len() as f64;
        let feedforward = cs.iter().map(|r| r.feedforward).sum::<f64>() / k;
        let timesteps = (0..steps).map(|t| cs.iter().map(|r| r.timesteps[t]).sum::<f64>() / k).collect();
        let errors: Vec<(f64, Vec<f64>)> = cs.iter().map(|r| (1.0 - r.feedforward, r.timesteps.iter().map(|a| 1.0 - a).collect())).collect();
        let (relative_error, defined) = relative_errors(&errors, steps);
        Some(Self { corruptions: cs.len(), feedforward, timesteps, relative_error, relative_error_corruptions: defined, diff_interval: Vec::new(), relative_error_interval: Vec::new() })
    }

    /// [`CorruptionSummary::of`] with the intervals, from the per-image `outcomes` of the
    /// corruption conditions (in the order of `results`' corruptions, all on the same images;
    /// an image keeps all its draws in a resample); the resamples are drawn from `seed` alone,
    /// one generator per resample, so the intervals do not depend on the thread count.
    pub(crate) fn with_intervals(results: &[NoiseResult], outcomes: &[&Outcomes], seed: u64) -> Option<Self> {
        let mut s = Self::of(results)?;
        let steps = s.timesteps.len();
        // Per corruption: how many draws each image was right on, plain and per timestep.
        let counts: Vec<(Vec<u8>, Vec<Vec<u8>>, usize)> =
            outcomes.iter().map(|o| (o.counts(None), (0..steps).map(|t| o.counts(Some(t))).collect(), o.draws())).collect();
        let n = counts.first().map_or(0, |c| c.0.len());
        if counts.len() != s.corruptions || n == 0 {
            return Some(s);
        }
        let k = counts.len() as f64;
        // Per resample: the mean difference and the relative error at every timestep.
        let draws: Vec<Draw> = (0..BOOTSTRAP_RESAMPLES)
            .into_par_iter()
            .map(|r| {
                let mut rng = Rng::derive(seed, "eval-bootstrap/corruption-summary", r as u64);
                let w = resample_weights(n, || rng.uniform());
                // Branch-free (the outcomes are unpredictable): weight × count.
                let weighted = |v: &[u8], draws: usize| v.iter().zip(&w).map(|(&b, &c)| u64::from(b) * u64::from(c)).sum::<u64>() as f64 / (n * draws) as f64;
                let accs: Vec<(f64, Vec<f64>)> = counts.iter().map(|(ff, per_t, d)| (weighted(ff, *d), per_t.iter().map(|v| weighted(v, *d)).collect())).collect();
                let diff = (0..steps).map(|t| accs.iter().map(|(ff, a)| a[t] - ff).sum::<f64>() / k).collect();
                let errors: Vec<(f64, Vec<f64>)> = accs.iter().map(|(ff, a)| (1.0 - ff, a.iter().map(|x| 1.0 - x).collect())).collect();
                (diff, relative_errors(&errors, steps).0)
            })
            .collect();
        let interval = |pick: &dyn Fn(&Draw) -> f64| {
            let (lo, hi) = percentile_interval(&mut draws.iter().map(pick).collect(), CONFIDENCE);
            [lo, hi]
        };
        s.diff_interval = (0..steps).map(|t| interval(&|d| d.0[t])).collect();
        s.relative_error_interval = (0..steps).map(|t| interval(&|d| d.1[t])).collect();
        Some(s)
    }

    /// The mean accuracy's difference to the plain network at timestep `t` (fraction).
    pub fn diff(&self, t: usize) -> Option<f64> {
        self.timesteps.get(t).map(|a| a - self.feedforward)
    }

    /// At timestep `t`, `(mean accuracy difference, relative error)` in the table's words:
    /// `-1.27 [-1.60, -0.93] pts` and `1.108 [1.071, 1.146]`, each marked ` n.s.` when its
    /// interval contains no change (0, resp. 1). Without intervals only the values.
    pub fn display(&self, t: usize) -> Option<(String, String)> {
        let d = 100.0 * self.diff(t)?;
        let re = *self.relative_error.get(t)?;
        let ns = |lo: f64, hi: f64, none: f64| if lo <= none && none <= hi || lo.is_nan() { " n.s." } else { "" };
        Some(match (self.diff_interval.get(t), self.relative_error_interval.get(t)) {
            (Some(&[dl, dh]), Some(&[rl, rh])) => (
                format!("{d:+.2} [{:+.2}, {:+.2}]{}", 100.0 * dl, 100.0 * dh, ns(dl, dh, 0.0)),
                format!("{re:.3} [{rl:.3}, {rh:.3}]{}", ns(rl, rh, 1.0)),
            ),
            _ => (format!("{d:+.2}"), format!("{re:.3}")),
        })
    }
}

/// Mean over corruptions of `err(t) / err(ff)` per timestep, over the corruptions whose plain
/// error is above 0, and their number (NaN where there are none).
fn relative_errors(errors: &[(f64, Vec<f64>)], steps: usize) -> (Vec<f64>, usize) {
    let defined: Vec<&(f64, Vec<f64>)> = errors.iter().filter(|(ff, _)| *ff > 0.0).collect();
    let mean = (0..steps)
        .map(|t| if defined.is_empty() { f64::NAN } else { defined.iter().map(|(ff, e)| e[t] / ff).sum::<f64>() / defined.len() as f64 })
        .collect();
    (mean, defined.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corruptions::Corruption;
    use crate::noise::Noise;

    fn result(noise: Noise, ff: &[bool], per_t: &[Vec<bool>]) -> NoiseResult {
        let acc = |v: &[bool]| v.iter().filter(|&&b| b).count() as f64 / v.len() as f64;
        NoiseResult { noise, images: ff.len(), feedforward: acc(ff), timesteps: per_t.iter().map(|v| acc(v)).collect(), paired: Vec::new() }
    }

    /// Two corruptions on 400 images: at t1 the network gets 40 (resp. 20) more images right
    /// than the plain one and none fewer, a clear effect; at t0 it is the plain network.
    #[test]
    fn intervals_cover_the_estimate_and_separate_a_real_effect() {
        let n = 400;
        let ff_a: Vec<bool> = (0..n).map(|i| i % 4 != 0).collect();
        let ff_b: Vec<bool> = (0..n).map(|i| i % 2 == 0).collect();
        let t1_a: Vec<bool> = (0..n).map(|i| ff_a[i] || i % 40 == 0 || i % 40 == 4 || i % 40 == 8 || i % 40 == 12).collect();
        let t1_b: Vec<bool> = (0..n).map(|i| ff_b[i] || i % 20 == 1).collect();
        let (ta, tb) = (vec![ff_a.clone(), t1_a], vec![ff_b.clone(), t1_b]);
        let results =
            vec![result(Noise::Clean, &ff_a, &ta), result(Noise::Corruption(Corruption::Fog), &ff_a, &ta), result(Noise::Corruption(Corruption::Stripe), &ff_b, &tb)];
        let outcomes = |ff: &[bool], per_t: &[Vec<bool>]| {
            let mut o = Outcomes::new(n, 2, 1);
            o.put(0, 0, ff, per_t);
            o
        };
        let (oa, ob) = (outcomes(&ff_a, &ta), outcomes(&ff_b, &tb));
        let s = CorruptionSummary::with_intervals(&results, &[&oa, &ob], 5).unwrap();
        assert_eq!(s.corruptions, 2);
        // +40/400 and +20/400: mean +0.075; errors 100 → 60 and 200 → 180: mean ratio 0.75.
        assert!((s.diff(1).unwrap() - 0.075).abs() < 1e-12 && (s.relative_error[1] - 0.75).abs() < 1e-12, "{s:?}");
        assert_eq!((s.diff_interval[0], s.relative_error_interval[0]), ([0.0, 0.0], [1.0, 1.0]));
        let [lo, hi] = s.diff_interval[1];
        assert!(0.0 < lo && lo < 0.075 && 0.075 < hi, "{lo} {hi}");
        let [rl, rh] = s.relative_error_interval[1];
        assert!(rl < 0.75 && 0.75 < rh && rh < 1.0, "{rl} {rh}");
        let (d, re) = s.display(1).unwrap();
        assert!(d.starts_with("+7.50 [") && !d.contains("n.s.") && !re.contains("n.s."), "{d} / {re}");
        assert!(s.display(0).unwrap().0.ends_with("n.s."));
        // Seeded: the same intervals again; without outcomes, none.
        assert_eq!(CorruptionSummary::with_intervals(&results, &[&oa, &ob], 5).unwrap(), s);
        assert!(CorruptionSummary::of(&results).unwrap().diff_interval.is_empty());
    }
}
