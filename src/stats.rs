//! Paired statistics: is a difference in accuracy on the same images real?
//!
//! Two classifiers (the plain network and the predified one at timestep t) are scored on the
//! same images, so their outcomes are paired: only the discordant images (right for one, wrong
//! for the other) carry information about the difference. [`PairedCounts`] holds the four
//! cells; [`paired_difference`] gives the accuracy difference with a percentile bootstrap
//! confidence interval over images and the exact McNemar p-value.
//!
//! The bootstrap resamples images with replacement; it needs only the cell of each image, so a
//! resample is `n` draws over four cells. Its random draws come from the caller's uniform
//! source (seeded: the same interval on every run).

/// The four cells of a paired comparison of outcomes `a` (reference) and `b` (treatment).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PairedCounts {
    /// Images both got right.
    pub both: usize,
    /// Images only `a` got right.
    pub only_a: usize,
    /// Images only `b` got right.
    pub only_b: usize,
    /// Images both got wrong.
    pub neither: usize,
}

impl PairedCounts {
    /// Count the cells of per-image outcomes (`true` = correct); `None` if the lengths differ.
    pub fn from_outcomes(a: &[bool], b: &[bool]) -> Option<Self> {
        if a.len() != b.len() {
            return None;
        }
        let mut c = Self::default();
        for (&x, &y) in a.iter().zip(b) {
            match (x, y) {
                (true, true) => c.both += 1,
                (true, false) => c.only_a += 1,
                (false, true) => c.only_b += 1,
                (false, false) => c.neither += 1,
            }
        }
        Some(c)
    }

    /// Number of images.
    pub fn n(&self) -> usize {
        self.both + self.only_a + self.only_b + self.neither
    }

    /// Accuracy of `b` minus accuracy of `a`, as a fraction (0 for no images).
    pub fn difference(&self) -> f64 {
        if self.n() == 0 {
            return 0.0;
        }
        (self.only_b as f64 - self.only_a as f64) / self.n() as f64
    }
}

/// A paired difference in accuracy with its uncertainty.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairedDifference {
    /// Accuracy of the treatment minus the reference's (fraction).
    pub difference: f64,
    /// Lower end of the confidence interval (fraction).
    pub lo: f64,
    /// Upper end of the confidence interval (fraction).
    pub hi: f64,
    /// Two-sided exact McNemar p-value of "no difference".
    pub p_value: f64,
}

impl PairedDifference {
    /// Whether the interval excludes 0.
    pub fn significant(&self) -> bool {
        self.lo > 0.0 || self.hi < 0.0
    }
}

/// The difference of `counts` with a `level` (e.g. 0.95) percentile-bootstrap interval from
/// `resamples` resamples of the images, drawn with `uniform` (values in `[0, 1)`), and the exact
/// McNemar p-value.
pub fn paired_difference(counts: PairedCounts, level: f64, resamples: usize, mut uniform: impl FnMut() -> f64) -> PairedDifference {
    let n = counts.n();
    let difference = counts.difference();
    let p_value = mcnemar_exact(counts.only_a, counts.only_b);
    if n == 0 || resamples == 0 || counts.only_a + counts.only_b == 0 {
        // No discordant image: every resample gives the same difference.
        return PairedDifference { difference, lo: difference, hi: difference, p_value };
    }
    // Cumulative cell probabilities: only_a, then only_b; the concordant rest adds nothing.
    let pa = counts.only_a as f64 / n as f64;
    let pb = pa + counts.only_b as f64 / n as f64;
    let mut diffs: Vec<f64> = (0..resamples)
        .map(|_| {
            let (mut a, mut b) = (0i64, 0i64);
            for _ in 0..n {
                let u = uniform();
                if u < pa {
                    a += 1;
                } else if u < pb {
                    b += 1;
                }
            }
            (b - a) as f64 / n as f64
        })
        .collect();
    let (lo, hi) = percentile_interval(&mut diffs, level);
    PairedDifference { difference, lo, hi, p_value }
}

/// The paired difference when every image was scored `draws` times (several noise draws):
/// `a[i]` and `b[i]` count the draws on which image `i` was right for the reference and the
/// treatment. The difference is `Σ(b − a) / (n·draws)`; its interval is a percentile bootstrap
/// over images (an image keeps all its draws: they share the image, so they are not independent);
/// the p-value is the exact two-sided sign test on the per-image differences `b[i] − a[i]`,
/// which for one draw is McNemar's test. `None` if the lengths differ or `draws` is 0.
pub fn paired_difference_draws(a: &[u8], b: &[u8], draws: u8, level: f64, resamples: usize, mut uniform: impl FnMut() -> f64) -> Option<PairedDifference> {
    if a.len() != b.len() || draws == 0 {
        return None;
    }
    let n = a.len();
    let d: Vec<i64> = a.iter().zip(b).map(|(&x, &y)| i64::from(y) - i64::from(x)).collect();
    let scale = (n * usize::from(draws)).max(1) as f64;
    let difference = d.iter().sum::<i64>() as f64 / scale;
    let (neg, pos) = (d.iter().filter(|&&v| v < 0).count(), d.iter().filter(|&&v| v > 0).count());
    let p_value = mcnemar_exact(neg, pos);
    if n == 0 || resamples == 0 || neg + pos == 0 {
        return Some(PairedDifference { difference, lo: difference, hi: difference, p_value });
    }
    let mut diffs: Vec<f64> = (0..resamples)
        .map(|_| {
            let w = resample_weights(n, &mut uniform);
            w.iter().zip(&d).map(|(&k, &v)| i64::from(k) * v).sum::<i64>() as f64 / scale
        })
        .collect();
    let (lo, hi) = percentile_interval(&mut diffs, level);
    Some(PairedDifference { difference, lo, hi, p_value })
}

/// One bootstrap resample of `n` images as weights: how often each image was drawn (the weights
/// sum to `n`), drawn with `uniform` (values in `[0, 1)`). For statistics that need more than
/// the four cells of [`PairedCounts`], e.g. a mean over several conditions scored on the same
/// images: every condition is then weighted by the same resample.
pub fn resample_weights(n: usize, mut uniform: impl FnMut() -> f64) -> Vec<u32> {
    let mut w = vec![0u32; n];
    for _ in 0..n {
        // `uniform() < 1`, so the index is below n; `min` guards a source that breaks that.
        let i = ((uniform() * n as f64) as usize).min(n.saturating_sub(1));
        w[i] += 1;
    }
    w
}

/// The `level` (e.g. 0.95) percentile interval of bootstrap statistics `values` (sorted in
/// place; NaN values, from resamples where the statistic is undefined, are left out). NaN bounds
/// if no value is finite.
pub fn percentile_interval(values: &mut Vec<f64>, level: f64) -> (f64, f64) {
    values.retain(|v| !v.is_nan());
    if values.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    values.sort_by(f64::total_cmp);
    let alpha = (1.0 - level.clamp(0.0, 1.0)) / 2.0;
    (quantile(values, alpha), quantile(values, 1.0 - alpha))
}

/// The `q`-quantile of sorted values, linearly interpolated.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (i, frac) = (pos.floor() as usize, pos.fract());
    match sorted.get(i + 1) {
        Some(next) => sorted[i] + frac * (next - sorted[i]),
        None => sorted[i],
    }
}

/// Two-sided exact McNemar test: `P(X ≤ min(b, c)) · 2` (at most 1) for `X ~ Binomial(b + c, ½)`,
/// summed in log space so that large counts do not underflow.
pub fn mcnemar_exact(b: usize, c: usize) -> f64 {
    let n = b + c;
    if n == 0 {
        return 1.0;
    }
    let k = b.min(c);
    // ln C(n, j) − n ln 2, by the recurrence C(n, j+1) = C(n, j)·(n−j)/(j+1).
    let mut log_term = -(n as f64) * std::f64::consts::LN_2;
    let mut log_sum = log_term;
    for j in 0..k {
        log_term += ((n - j) as f64).ln() - ((j + 1) as f64).ln();
        let (hi, lo) = if log_sum > log_term { (log_sum, log_term) } else { (log_term, log_sum) };
        log_sum = hi + (lo - hi).exp().ln_1p();
    }
    (2.0 * log_sum.exp()).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny deterministic uniform source for the tests (SplitMix64).
    fn uniform(seed: u64) -> impl FnMut() -> f64 {
        let mut x = seed;
        move || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    #[test]
    fn counts_and_difference() {
        let a = [true, true, false, false, true];
        let b = [true, false, true, true, false];
        let c = PairedCounts::from_outcomes(&a, &b).unwrap();
        assert_eq!(c, PairedCounts { both: 1, only_a: 2, only_b: 2, neither: 0 });
        assert_eq!(c.difference(), 0.0);
        assert!(PairedCounts::from_outcomes(&a, &b[..4]).is_none());
    }

    #[test]
    fn mcnemar_matches_hand_values() {
        // b = 0, c = 5: 2 · (1/2)^5 = 0.0625.
        assert!((mcnemar_exact(0, 5) - 0.0625).abs() < 1e-12);
        // b = 1, c = 4: 2 · (1 + 5)/32 = 0.375.
        assert!((mcnemar_exact(1, 4) - 0.375).abs() < 1e-12);
        assert_eq!(mcnemar_exact(3, 3), 1.0);
        assert_eq!(mcnemar_exact(0, 0), 1.0);
        // Large counts stay finite: 400 vs 600 discordant pairs is overwhelming evidence.
        let p = mcnemar_exact(400, 600);
        assert!(p > 0.0 && p < 1e-9, "{p}");
    }

    #[test]
    fn bootstrap_interval_covers_the_difference_and_reflects_its_size() {
        // 10000 images, 170 more right for b than for a among 700 discordant ones.
        let c = PairedCounts { both: 8000, only_a: 265, only_b: 435, neither: 1300 };
        let d = paired_difference(c, 0.95, 400, uniform(7));
        assert!((d.difference - 0.017).abs() < 1e-12);
        assert!(d.lo < d.difference && d.difference < d.hi, "{d:?}");
        // Normal approximation of the paired difference's standard error: √(b + c − (c − b)²/n)/n.
        let se = (700.0 - 170.0f64.powi(2) / 10000.0).sqrt() / 10000.0;
        assert!(((d.hi - d.lo) / (2.0 * 1.96 * se) - 1.0).abs() < 0.2, "{d:?} vs se {se}");
        assert!(d.significant() && d.p_value < 1e-6);
        // Same seed, same interval; a small effect is not significant.
        assert_eq!(d, paired_difference(c, 0.95, 400, uniform(7)));
        let small = PairedCounts { both: 8000, only_a: 340, only_b: 360, neither: 1300 };
        let s = paired_difference(small, 0.95, 400, uniform(7));
        assert!(!s.significant() && s.p_value > 0.4, "{s:?}");
    }

    #[test]
    fn draws_generalise_the_paired_difference() {
        // Three draws on 6 images: differences +2, +1, 0, 0, −1, +3 → 5/18; 3 positive, 1 negative.
        let a = [0u8, 1, 2, 3, 2, 0];
        let b = [2u8, 2, 2, 3, 1, 3];
        let d = paired_difference_draws(&a, &b, 3, 0.95, 300, uniform(2)).unwrap();
        assert!((d.difference - 5.0 / 18.0).abs() < 1e-12 && d.lo <= d.difference && d.difference <= d.hi, "{d:?}");
        assert!((d.p_value - mcnemar_exact(1, 3)).abs() < 1e-12);
        // One draw: the same difference and p-value as the four-cell version.
        let (x, y) = ([true, true, false, false, true, false], [true, false, true, true, true, true]);
        let c = PairedCounts::from_outcomes(&x, &y).unwrap();
        let one = paired_difference_draws(&x.map(u8::from), &y.map(u8::from), 1, 0.95, 300, uniform(2)).unwrap();
        let cells = paired_difference(c, 0.95, 300, uniform(2));
        assert_eq!((one.difference, one.p_value), (cells.difference, cells.p_value));
        assert!(paired_difference_draws(&a, &b[..5], 3, 0.95, 10, uniform(2)).is_none());
        assert!(paired_difference_draws(&a, &b, 0, 0.95, 10, uniform(2)).is_none());
    }

    #[test]
    fn resample_weights_draw_every_image_equally_often() {
        let w = resample_weights(1000, uniform(3));
        assert_eq!(w.iter().sum::<u32>(), 1000);
        // About 1/e of the images are left out of a resample of the same size.
        let left_out = w.iter().filter(|&&k| k == 0).count();
        assert!((330..=410).contains(&left_out), "{left_out}");
        assert!(resample_weights(0, uniform(3)).is_empty());
    }

    #[test]
    fn percentile_interval_skips_undefined_resamples() {
        let mut v: Vec<f64> = (0..=100).map(f64::from).collect();
        v.push(f64::NAN);
        let (lo, hi) = percentile_interval(&mut v, 0.9);
        assert!((lo - 5.0).abs() < 1e-9 && (hi - 95.0).abs() < 1e-9, "{lo} {hi}");
        let (lo, hi) = percentile_interval(&mut vec![f64::NAN], 0.95);
        assert!(lo.is_nan() && hi.is_nan());
    }
}
