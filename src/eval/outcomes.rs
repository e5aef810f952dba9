//! Per-image outcomes of one condition, draw by draw, and what the report derives from them:
//! accuracies and the paired statistics against the plain network.

use super::result::{Paired, BOOTSTRAP_RESAMPLES, CONFIDENCE};
use crate::common::{Error, Result, Rng};
use crate::stats::PairedCounts;

/// Whether each image was classified correctly, by the plain network and at every timestep,
/// for each noise draw of one condition.
#[derive(Debug, Clone)]
pub(crate) struct Outcomes {
    /// `[draw] -> (plain network [image], [timestep][image])`.
    draws: Vec<(Vec<bool>, Vec<Vec<bool>>)>,
    images: usize,
}

impl Outcomes {
    /// All wrong, for `images` images, `steps` timesteps and `draws` draws (filled by
    /// [`Outcomes::put`]).
    pub(crate) fn new(images: usize, steps: usize, draws: usize) -> Self {
        Self { draws: vec![(vec![false; images], vec![vec![false; images]; steps]); draws], images }
    }

    /// Record one batch of draw `k` starting at image `start`.
    pub(crate) fn put(&mut self, k: usize, start: usize, ff: &[bool], per_t: &[Vec<bool>]) {
        let (dff, dt) = &mut self.draws[k];
        dff[start..start + ff.len()].copy_from_slice(ff);
        for (dst, src) in dt.iter_mut().zip(per_t) {
            dst[start..start + src.len()].copy_from_slice(src);
        }
    }

    /// The number of draws.
    pub(crate) fn draws(&self) -> usize {
        self.draws.len()
    }

    /// Accuracy of the plain network (`None`) or at timestep `t`, over images and draws.
    pub(crate) fn accuracy(&self, t: Option<usize>) -> f64 {
        let right: usize = self.draws.iter().map(|d| pick(d, t).iter().filter(|&&b| b).count()).sum();
        right as f64 / (self.images * self.draws.len()).max(1) as f64
    }

    /// Per image, on how many draws the plain network (`None`) or timestep `t` was right.
    pub(crate) fn counts(&self, t: Option<usize>) -> Vec<u8> {
        let mut c = vec![0u8; self.images];
        for d in &self.draws {
            for (n, &b) in c.iter_mut().zip(pick(d, t)) {
                *n += u8::from(b);
            }
        }
        c
    }

    /// Timestep `t` against the plain network on the same images and draws; the bootstrap
    /// draws from `rng`. One draw: the four-cell statistics ([`Paired::from_outcomes`]);
    /// several: a bootstrap over images that keeps each image's draws together and the sign
    /// test on per-image differences ([`crate::stats::paired_difference_draws`]), with the
    /// four cells counted over (draw, image) pairs.
    pub(crate) fn paired(&self, t: usize, rng: &mut Rng) -> Result<Paired> {
        if let [(ff, per_t)] = self.draws.as_slice() {
            return Paired::from_outcomes(ff, &per_t[t], rng);
        }
        let mut p = Paired { diff: 0.0, ci_lo: 0.0, ci_hi: 0.0, p: 1.0, both: 0, only_ff: 0, only_pc: 0, neither: 0 };
        for (ff, per_t) in &self.draws {
            let c = PairedCounts::from_outcomes(ff, &per_t[t]).ok_or_else(|| Error::Config("paired outcomes of different lengths".into()))?;
            (p.both, p.only_ff, p.only_pc, p.neither) = (p.both + c.both, p.only_ff + c.only_a, p.only_pc + c.only_b, p.neither + c.neither);
        }
        let k = u8::try_from(self.draws.len()).map_err(|_| Error::Config(format!("{} noise draws: at most 255", self.draws.len())))?;
        let d = crate::stats::paired_difference_draws(&self.counts(None), &self.counts(Some(t)), k, CONFIDENCE, BOOTSTRAP_RESAMPLES, || rng.uniform())
            .ok_or_else(|| Error::Config("paired outcomes of different lengths".into()))?;
        (p.diff, p.ci_lo, p.ci_hi, p.p) = (d.difference, d.lo, d.hi, d.p_value);
        Ok(p)
    }
}

fn pick(d: &(Vec<bool>, Vec<Vec<bool>>), t: Option<usize>) -> &[bool] {
    match t {
        None => &d.0,
        Some(t) => &d.1[t],
    }
}
