//! The kernels of one layer transformed for a fast algorithm (FFT spectra or Winograd
//! transforms), kept between calls and rebuilt when the weights change.
//!
//! Layers own a [`TransformCache`]; each call fingerprints the weight values (one parallel read,
//! about a millisecond per 10 MB) and reuses the transforms when the plan and fingerprint match,
//! so weights updated in place (training, `Var::set`) never meet stale transforms. The one
//! exception is the adjoint of a traced forward ([`Pin`]): it runs on the weights that forward
//! saw, so it takes the very transforms that forward used while the cache still holds them.

use super::conv::ConvShape;
use super::fft_conv::{FftPlan, Spectra};
use super::winograd_conv::{Favour, WinoPlan, WinoWeights};
use rayon::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// At most this many bytes of FFT spectra per layer; above it the layer tries Winograd.
pub const MAX_SPECTRA_BYTES: usize = 256 << 20;

/// At most this many bytes of Winograd transforms per layer; above it the layer stays on GEMM.
/// PVGG16's largest predictor (512×512 channels, k14) needs 268 MB (1.31× its weights).
pub const MAX_WINOGRAD_BYTES: usize = 288 << 20;

/// Which transform a layer uses, with its geometry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransformPlan {
    /// FFT spectra ([`super::fft_conv`]).
    Fft(FftPlan),
    /// Winograd F(2×2, r×r) transforms ([`super::winograd_conv`]).
    Winograd(WinoPlan),
}

/// A layer's transformed kernels.
#[derive(Debug, Clone)]
pub enum Transformed {
    /// FFT spectra.
    Fft(Arc<Spectra>),
    /// Winograd transforms.
    Winograd(Arc<WinoWeights>),
}

impl Transformed {
    fn build(plan: TransformPlan, w: &[f32], s: &ConvShape, favour: Favour) -> Option<Self> {
        Some(match plan {
            TransformPlan::Fft(p) => Self::Fft(Arc::new(Spectra::build(p, w, s)?)),
            TransformPlan::Winograd(p) => Self::Winograd(Arc::new(WinoWeights::build(p, w, s, favour)?)),
        })
    }

    /// Transform new weights into this storage if nothing else holds it and its layout fits;
    /// false otherwise (then build anew).
    fn refill(&mut self, w: &[f32], s: &ConvShape, favour: Favour) -> bool {
        match self {
            Self::Fft(sp) => Arc::get_mut(sp).map(|sp| sp.refill(w, s)).is_some(),
            Self::Winograd(ww) => match Arc::get_mut(ww) {
                Some(ww) if ww.favour() == favour => {
                    ww.refill(w, s);
                    true
                }
                _ => false,
            },
        }
    }

    #[cfg(test)]
    fn same(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Fft(a), Self::Fft(b)) => Arc::ptr_eq(a, b),
            (Self::Winograd(a), Self::Winograd(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

/// The transforms one call of a layer returned, named for a later call that may reuse them
/// without fingerprinting the weights again: the adjoint of a traced forward, which by contract
/// runs on the weights that forward saw (as PyTorch's autograd requires).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pin(u64);

/// Where a call of a layer finds its transforms: the layer's cache, and optionally the [`Pin`]
/// of the traced forward whose adjoint this call computes.
#[derive(Debug, Clone, Copy)]
pub struct CacheRef<'a> {
    /// The layer's cache.
    pub cache: &'a TransformCache,
    /// Reuse these transforms without a fingerprint if the cache still holds them.
    pub pin: Option<Pin>,
}

impl<'a> From<&'a TransformCache> for CacheRef<'a> {
    fn from(cache: &'a TransformCache) -> Self {
        Self { cache, pin: None }
    }
}

/// One cached set of transforms: its plan, the weights' fingerprint, a generation that no other
/// contents of any cache share (what a [`Pin`] names), the transforms.
#[derive(Debug)]
struct Entry {
    plan: TransformPlan,
    fp: u64,
    generation: u64,
    transforms: Transformed,
}

/// Generations of cache contents, unique in the process (0 means none).
static GENERATION: AtomicU64 = AtomicU64::new(1);

/// One layer's cached transforms (empty until a fast path first runs).
#[derive(Debug, Default)]
pub struct TransformCache {
    slot: Mutex<Option<Entry>>,
    /// Generation of what the last [`Self::get`] returned (0: none since [`Self::take_used`]).
    used: AtomicU64,
}

impl TransformCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The transforms of `w` for `plan`, built on a miss (Winograd's laid out for `favour`, the
    /// direction of this call). With `pin` naming what the cache still holds for `plan`, those
    /// are returned as they are: the caller vouches that `w` has not changed since. `None` only
    /// if `plan` cannot be built.
    pub fn get(&self, plan: TransformPlan, w: &[f32], s: &ConvShape, favour: Favour, pin: Option<Pin>) -> Option<Transformed> {
        // A poisoned lock only means another thread panicked mid-build; the slot is replaced.
        let lock = || self.slot.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(Pin(generation)) = pin {
            if let Some(e) = lock().as_ref().filter(|e| e.generation == generation && e.plan == plan) {
                return Some(self.hand_out(e));
            }
        }
        // Outside the lock: calls of other clones of the layer need not wait for it.
        let fp = fingerprint(w);
        let mut slot = lock();
        if let Some(e) = slot.as_ref().filter(|e| e.plan == plan && e.fp == fp) {
            return Some(self.hand_out(e));
        }
        // New weights for the same plan (a training step) go into the old storage when no
        // caller still holds it; otherwise the old transforms are dropped before the new ones
        // are built (peak memory).
        let mut refilled = None;
        if let Some(mut old) = slot.take() {
            if old.plan == plan && old.transforms.refill(w, s, favour) {
                refilled = Some(old.transforms);
            }
        }
        let transforms = match refilled {
            Some(t) => t,
            None => Transformed::build(plan, w, s, favour)?,
        };
        let generation = GENERATION.fetch_add(1, Ordering::Relaxed);
        let entry = slot.insert(Entry { plan, fp, generation, transforms });
        Some(self.hand_out(entry))
    }

    fn hand_out(&self, e: &Entry) -> Transformed {
        self.used.store(e.generation, Ordering::Relaxed);
        e.transforms.clone()
    }

    /// The [`Pin`] of what the last [`Self::get`] returned, if any since the last call of this
    /// (which forgets it). A traced forward takes it before and after its call.
    pub fn take_used(&self) -> Option<Pin> {
        match self.used.swap(0, Ordering::Relaxed) {
            0 => None,
            g => Some(Pin(g)),
        }
    }
}

/// A 64-bit fingerprint of the values' bit patterns (position-dependent).
///
/// It runs on every call of a transformed layer (twice per layer and timestep, over up to
/// 205 MB of weights), so it is built for memory speed: eight independent lanes of
/// xor–multiply–rotate steps per 64-bit word (no step waits for the previous one's multiply),
/// folded per chunk. Each step is a bijection of the lane's state, so changing any one value
/// always changes its lane's result.
pub fn fingerprint(w: &[f32]) -> u64 {
    const CHUNK: usize = 1 << 16;
    const LANES: usize = 8;
    const P: u64 = 0x100_0000_01b3_0001;
    w.par_chunks(CHUNK)
        .enumerate()
        .map(|(i, c)| {
            let mut h = [0u64; LANES];
            for (l, h) in h.iter_mut().enumerate() {
                *h = 0x9e37_79b9_7f4a_7c15u64 ^ ((i * LANES + l) as u64).wrapping_mul(0xff51_afd7_ed55_8ccd);
            }
            let blocks = c.chunks_exact(2 * LANES);
            let rest = blocks.remainder();
            for b in blocks {
                for (l, h) in h.iter_mut().enumerate() {
                    let x = b[2 * l].to_bits() as u64 | (b[2 * l + 1].to_bits() as u64) << 32;
                    *h = (*h ^ x).wrapping_mul(P).rotate_left(29);
                }
            }
            for (j, v) in rest.iter().enumerate() {
                let h = &mut h[j % LANES];
                *h = (*h ^ v.to_bits() as u64 ^ 1 << 63).wrapping_mul(P).rotate_left(29);
            }
            h.iter().fold(0u64, |a, &v| (a.rotate_left(23) ^ v).wrapping_mul(0xc4ce_b9fe_1a85_ec53))
        })
        .reduce(|| 0, |a, b| a.wrapping_add(b))
        ^ w.len() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::ConvGeometry;

    /// A small k14 s2 transposed convolution (both transform paths plan it), its FFT plan and
    /// weights `f(i)`.
    fn small_layer(f: fn(f32) -> f32) -> (ConvShape, TransformPlan, Vec<f32>) {
        let geom = ConvGeometry::for_conv_transpose([1, 9, 9], [1, 14, 14], [1, 2, 2], [0, 6, 6], [0, 0, 0], [1, 1, 1]).unwrap();
        let s = ConvShape { small_channels: 2, big_channels: 3, groups: 1, geom };
        let plan = TransformPlan::Fft(FftPlan::geometry(&s).unwrap());
        (s, plan, (0..s.weight_len()).map(|i| f(i as f32)).collect())
    }

    #[test]
    fn rebuilds_when_the_weights_change() {
        let (s, plan, mut w) = small_layer(f32::sin);
        let cache = TransformCache::new();
        let a = cache.get(plan, &w, &s, Favour::SmallToBig, None).unwrap();
        let b = cache.get(plan, &w, &s, Favour::SmallToBig, None).unwrap();
        assert!(a.same(&b));
        w[7] += 1.0;
        let c = cache.get(plan, &w, &s, Favour::SmallToBig, None).unwrap();
        assert!(!a.same(&c));
        // Another plan for the same weights replaces the slot.
        let wino = TransformPlan::Winograd(WinoPlan::geometry(&s).unwrap());
        let d = cache.get(wino, &w, &s, Favour::BigToSmall, None).unwrap();
        assert!(matches!(d, Transformed::Winograd(_)) && !d.same(&c));
        assert!(d.same(&cache.get(wino, &w, &s, Favour::BigToSmall, None).unwrap()));
        assert_ne!(fingerprint(&w[..8]), fingerprint(&w[1..9]));
    }

    #[test]
    fn a_pin_skips_the_fingerprint_only_while_the_cache_holds_its_transforms() {
        let (s, plan, mut w) = small_layer(f32::cos);
        let cache = TransformCache::new();
        assert_eq!(cache.take_used(), None);
        let a = cache.get(plan, &w, &s, Favour::SmallToBig, None).unwrap();
        let pin = cache.take_used().expect("a get names what it returned");
        assert_eq!(cache.take_used(), None, "taking forgets");
        // Unchanged weights keep the generation: the pin stays valid.
        let _ = cache.get(plan, &w, &s, Favour::SmallToBig, None).unwrap();
        assert_eq!(cache.take_used(), Some(pin));
        // With the pin the cached transforms come back as they are, even for other values (the
        // caller vouched that there are none).
        w[0] += 1.0;
        assert!(cache.get(plan, &w, &s, Favour::SmallToBig, Some(pin)).unwrap().same(&a));
        // Without it the new values are seen, and the old pin names nothing any more.
        let b = cache.get(plan, &w, &s, Favour::SmallToBig, None).unwrap();
        assert!(!b.same(&a));
        let fresh = cache.take_used().unwrap();
        assert_ne!(fresh, pin);
        w[1] += 1.0;
        let c = cache.get(plan, &w, &s, Favour::SmallToBig, Some(pin)).unwrap();
        assert!(!c.same(&b), "a stale pin falls back to the fingerprint");
        // A pin does not serve another plan.
        let wino = TransformPlan::Winograd(WinoPlan::geometry(&s).unwrap());
        let pin = cache.take_used();
        assert!(matches!(cache.get(wino, &w, &s, Favour::SmallToBig, pin).unwrap(), Transformed::Winograd(_)));
    }

    #[test]
    fn refills_in_place_when_no_caller_holds_the_transforms() {
        let geom = ConvGeometry::for_conv_transpose([1, 9, 9], [1, 14, 14], [1, 2, 2], [0, 6, 6], [0, 0, 0], [1, 1, 1]).unwrap();
        let s = ConvShape { small_channels: 2, big_channels: 3, groups: 1, geom };
        let x: Vec<f32> = (0..2 * geom.small_len()).map(|i| (i as f32 * 0.3).cos()).collect();
        let run = |t: &Transformed| {
            let mut out = vec![0f32; 3 * geom.big_len()];
            match t {
                Transformed::Fft(sp) => crate::kernels::fft_conv::small_to_big(&x, 1, sp, &geom, &mut out),
                Transformed::Winograd(ww) => crate::kernels::winograd_conv::small_to_big(&x, 1, ww, &geom, &mut out),
            }
            out
        };
        let address = |t: &Transformed| match t {
            Transformed::Fft(sp) => Arc::as_ptr(sp) as usize,
            Transformed::Winograd(ww) => Arc::as_ptr(ww) as usize,
        };
        for plan in [TransformPlan::Fft(FftPlan::geometry(&s).unwrap()), TransformPlan::Winograd(WinoPlan::geometry(&s).unwrap())] {
            let mut w: Vec<f32> = (0..s.weight_len()).map(|i| (i as f32).sin()).collect();
            let cache = TransformCache::new();
            let first = address(&cache.get(plan, &w, &s, Favour::SmallToBig, None).unwrap());
            w[3] -= 0.5;
            let refilled = cache.get(plan, &w, &s, Favour::SmallToBig, None).unwrap();
            assert_eq!(address(&refilled), first, "{plan:?}: same storage");
            let fresh = Transformed::build(plan, &w, &s, Favour::SmallToBig).unwrap();
            assert_eq!(run(&refilled), run(&fresh), "{plan:?}: refilled = built anew");
            // While a caller holds them, new weights get new transforms and the held ones stay.
            let before = run(&refilled);
            w[5] += 0.25;
            let next = cache.get(plan, &w, &s, Favour::SmallToBig, None).unwrap();
            assert_ne!(address(&next), address(&refilled));
            assert_eq!(run(&refilled), before);
            assert_eq!(run(&next), run(&Transformed::build(plan, &w, &s, Favour::SmallToBig).unwrap()));
        }
    }

    #[test]
    fn fingerprint_sees_every_single_change() {
        // Every position of a full block, the remainder and the second chunk; a sign flip and
        // the smallest change of one value.
        let w: Vec<f32> = (0..(1 << 16) + 37).map(|i| (i as f32 * 0.37).cos()).collect();
        let base = fingerprint(&w);
        for i in (0..40).chain((1 << 16) - 20..w.len()) {
            for v in [-w[i], f32::from_bits(w[i].to_bits() ^ 1)] {
                let mut c = w.clone();
                c[i] = v;
                assert_ne!(fingerprint(&c), base, "change at {i} unseen");
            }
        }
        let mut swapped = w.clone();
        swapped.swap(3, 4);
        assert_ne!(fingerprint(&swapped), base);
    }
}
