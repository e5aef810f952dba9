//! The corruptions' random numbers: one small generator per (seed, corruption, image index).
//!
//! SplitMix64 (Steele, Lea & Flood 2014): a 64-bit counter advanced by the golden-ratio
//! increment and passed through a bijective mixer. It is tiny, fast, passes BigCrush for a single
//! stream, and is written out here so that a corrupted data set is the same on every platform,
//! crate version and thread count: the generator of an image is derived from
//! `(seed, corruption, index)` alone, never from a batch layout.

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output mixer (a bijection on `u64`).
#[inline(always)]
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// SplitMix64 with the draws the corruptions need (the numpy calls they stand for are named).
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    /// The generator of one image: the three keys are mixed in turn, so neighbouring indices (or
    /// corruptions) start from unrelated states.
    pub(crate) fn for_image(seed: u64, stream: u64, index: u64) -> Self {
        let s = mix(seed ^ 0x5EED_C0DE_D15E_A5E5);
        let s = mix(s ^ stream.wrapping_mul(GOLDEN));
        Rng(mix(s.wrapping_add(index.wrapping_mul(0xD6E8_FEB8_6659_FD93))))
    }

    #[inline(always)]
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN);
        mix(self.0)
    }

    /// Uniform in `[0, 1)` with 53 random bits (`np.random.uniform()`).
    #[inline(always)]
    pub(crate) fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `[-1, 1)` (`np.random.uniform(-1, 1)`), for the fog's millions of draws.
    #[inline(always)]
    pub(crate) fn symmetric(&mut self) -> f64 {
        2.0 * self.uniform() - 1.0
    }

    /// Uniform in `[lo, hi)` (`np.random.uniform(lo, hi)`).
    pub(crate) fn uniform_in(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    /// Uniform integer in `0..n`, 0 when `n == 0` (multiply-shift; the bias, below `n / 2^64`,
    /// is irrelevant for the tiny ranges used here).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Uniform integer in `lo..hi` (`np.random.randint(lo, hi)`: `hi` excluded).
    pub(crate) fn int_in(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below(hi.saturating_sub(lo).max(0) as u64) as i64
    }

    /// True with probability `p` (`np.random.choice([True, False], p=[p, 1 - p])`).
    pub(crate) fn bernoulli(&mut self, p: f64) -> bool {
        self.uniform() < p
    }

    /// −1 or +1 with equal probability (`np.random.choice([-1, 1])`).
    pub(crate) fn sign(&mut self) -> f64 {
        if self.next_u64() >> 63 == 0 {
            -1.0
        } else {
            1.0
        }
    }

    /// A standard normal draw (Box–Muller, one value per pair of uniforms).
    pub(crate) fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform(); // (0, 1]: ln is finite
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// A Poisson draw with mean `lambda` (`np.random.poisson`). Knuth's product of uniforms:
    /// exact, and cheap for the small means used here (shot noise: λ ≤ 3).
    pub(crate) fn poisson(&mut self, lambda: f64) -> u32 {
        if lambda <= 0.0 {
            return 0;
        }
        let limit = (-lambda).exp();
        let mut k = 0;
        let mut p = self.uniform();
        while p > limit {
            k += 1;
            p *= self.uniform();
        }
        k
    }
}
