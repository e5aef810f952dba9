//! The kernels of one layer transformed for a fast algorithm (FFT spectra or Winograd
//! transforms), kept between calls and rebuilt when the weights change.
//!
//! Layers own a [`TransformCache`]; each call fingerprints the weight values (one parallel read,
//! about a millisecond per 10 MB) and reuses the transforms when the plan and fingerprint match,
//! so weights updated in place (training, `Var::set`) never meet stale transforms.

use super::conv::ConvShape;
use super::fft_conv::{FftPlan, Spectra};
use super::winograd_conv::{Favour, WinoPlan, WinoWeights};
use rayon::prelude::*;
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

/// One layer's cached transforms (empty until a fast path first runs).
#[derive(Debug, Default)]
pub struct TransformCache {
    slot: Mutex<Option<(TransformPlan, u64, Transformed)>>,
}

impl TransformCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The transforms of `w` for `plan`, built on a miss (Winograd's laid out for `favour`, the
    /// direction of this call). `None` only if `plan` cannot be built.
    pub fn get(&self, plan: TransformPlan, w: &[f32], s: &ConvShape, favour: Favour) -> Option<Transformed> {
        let fp = fingerprint(w);
        // A poisoned lock only means another thread panicked mid-build; the slot is replaced.
        let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((p, f, sp)) = slot.as_ref() {
            if *p == plan && *f == fp {
                return Some(sp.clone());
            }
        }
        // New weights for the same plan (a training step) go into the old storage when no
        // caller still holds it; otherwise the old transforms are dropped before the new ones
        // are built (peak memory).
        if let Some((p, _, mut old)) = slot.take() {
            if p == plan && old.refill(w, s, favour) {
                *slot = Some((plan, fp, old.clone()));
                return Some(old);
            }
        }
        let sp = Transformed::build(plan, w, s, favour)?;
        *slot = Some((plan, fp, sp.clone()));
        Some(sp)
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

    #[test]
    fn rebuilds_when_the_weights_change() {
        let geom = ConvGeometry::for_conv_transpose([1, 9, 9], [1, 14, 14], [1, 2, 2], [0, 6, 6], [0, 0, 0], [1, 1, 1]).unwrap();
        let s = ConvShape { small_channels: 2, big_channels: 3, groups: 1, geom };
        let plan = TransformPlan::Fft(FftPlan::geometry(&s).unwrap());
        let mut w: Vec<f32> = (0..s.weight_len()).map(|i| (i as f32).sin()).collect();
        let cache = TransformCache::new();
        let a = cache.get(plan, &w, &s, Favour::SmallToBig).unwrap();
        let b = cache.get(plan, &w, &s, Favour::SmallToBig).unwrap();
        assert!(a.same(&b));
        w[7] += 1.0;
        let c = cache.get(plan, &w, &s, Favour::SmallToBig).unwrap();
        assert!(!a.same(&c));
        // Another plan for the same weights replaces the slot.
        let wino = TransformPlan::Winograd(WinoPlan::geometry(&s).unwrap());
        let d = cache.get(wino, &w, &s, Favour::BigToSmall).unwrap();
        assert!(matches!(d, Transformed::Winograd(_)) && !d.same(&c));
        assert!(d.same(&cache.get(wino, &w, &s, Favour::BigToSmall).unwrap()));
        assert_ne!(fingerprint(&w[..8]), fingerprint(&w[1..9]));
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
            let first = address(&cache.get(plan, &w, &s, Favour::SmallToBig).unwrap());
            w[3] -= 0.5;
            let refilled = cache.get(plan, &w, &s, Favour::SmallToBig).unwrap();
            assert_eq!(address(&refilled), first, "{plan:?}: same storage");
            let fresh = Transformed::build(plan, &w, &s, Favour::SmallToBig).unwrap();
            assert_eq!(run(&refilled), run(&fresh), "{plan:?}: refilled = built anew");
            // While a caller holds them, new weights get new transforms and the held ones stay.
            let before = run(&refilled);
            w[5] += 0.25;
            let next = cache.get(plan, &w, &s, Favour::SmallToBig).unwrap();
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
