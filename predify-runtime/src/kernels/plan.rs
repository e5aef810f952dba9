//! Algorithm choice per layer shape: one entry point per direction that picks the kernel
//! (direct correlation, sample-parallel, FFT, stride phases, or im2col/col2im + GEMM) and adds the bias.
//!
//! The FFT and Winograd paths need the layer's transform cache, so they only run for callers
//! that pass one (the `Conv` layer does) and for shapes where [`FftPlan::new`]'s (then
//! [`WinoPlan::new`]'s) cost model and memory cap allow it: the FFT where its spectra fit
//! (fewest FLOPs), Winograd where they do not (PVGG16's pcoders 4 and 5) and on the large
//! stride-1 3×3 layers it was measured to speed up (VGG's 256- and 512-channel ones on 56²
//! and 28²).

use super::conv::{self, ConvShape};
use super::fft_conv::{self, FftPlan};
use super::transform_cache::{CacheRef, TransformPlan, Transformed, MAX_SPECTRA_BYTES, MAX_WINOGRAD_BYTES};
use super::winograd_conv::{self, Favour, WinoPlan};
use super::{conv_batched, direct, phase};
use rayon::prelude::*;

/// The transformed kernels to use for `s` at this batch size, if a transform path is chosen.
fn transformed(s: &ConvShape, batch: usize, w: &[f32], cache: Option<CacheRef<'_>>, favour: Favour) -> Option<Transformed> {
    let CacheRef { cache, pin } = cache?;
    let plan = match FftPlan::new(s, batch, MAX_SPECTRA_BYTES) {
        Some(p) => TransformPlan::Fft(p),
        None => TransformPlan::Winograd(WinoPlan::new(s, MAX_WINOGRAD_BYTES)?),
    };
    cache.get(plan, w, s, favour, pin)
}

/// Convolution forward / transposed-convolution adjoint (big → small), plus an optional bias
/// over the small grid's channels. `out` is overwritten.
pub fn big_to_small(big: &[f32], batch: usize, w: &[f32], s: &ConvShape, bias: Option<&[f32]>, cache: Option<CacheRef<'_>>, out: &mut [f32]) {
    if direct::suits(s, s.small_channels) {
        return direct::big_to_small(big, batch, w, s, bias, out);
    }
    if conv_batched::suits(s, batch) {
        return conv_batched::big_to_small(big, batch, w, s, bias, out);
    }
    match transformed(s, batch, w, cache, Favour::BigToSmall) {
        Some(Transformed::Fft(sp)) => fft_conv::big_to_small(big, batch, &sp, &s.geom, out),
        Some(Transformed::Winograd(ww)) => winograd_conv::big_to_small(big, batch, &ww, &s.geom, out),
        None if use_phases(s) => {
            // Strided layers go through the stride-phase decomposition (same result, far less
            // scattered memory traffic); the rest through im2col + GEMM.
            phase::big_to_small_phased(big, batch, w, s, out)
        }
        None => conv::big_to_small(big, batch, w, s, out),
    }
    if let Some(b) = bias {
        add_bias(out, batch, b, s.small_channels, s.geom.small_len());
    }
}

/// Transposed-convolution forward / convolution adjoint (small → big), plus an optional bias
/// over the big grid's channels. `out` is overwritten.
pub fn small_to_big(small: &[f32], batch: usize, w: &[f32], s: &ConvShape, bias: Option<&[f32]>, cache: Option<CacheRef<'_>>, out: &mut [f32]) {
    if direct::suits(s, s.big_channels) {
        return direct::small_to_big(small, batch, w, s, bias, out);
    }
    if conv_batched::suits(s, batch) {
        return conv_batched::small_to_big(small, batch, w, s, bias, out);
    }
    match transformed(s, batch, w, cache, Favour::SmallToBig) {
        Some(Transformed::Fft(sp)) => fft_conv::small_to_big(small, batch, &sp, &s.geom, out),
        Some(Transformed::Winograd(ww)) => winograd_conv::small_to_big(small, batch, &ww, &s.geom, out),
        None if use_phases(s) => phase::small_to_big(small, batch, w, s, out),
        None => conv::small_to_big(small, batch, w, s, out),
    }
    if let Some(b) = bias {
        add_bias(out, batch, b, s.big_channels, s.geom.big_len());
    }
}

/// Strided layers on large grids go through the stride phases; on small grids (PVGG16's
/// 28×28 and 14×14 predictors) plain im2col/col2im with the weight in its natural layout was
/// measured about 2× faster forward and no slower backward (no per-call sub-kernel reshuffle of
/// 100–200 MB of weights), as long as its column buffer stays moderate.
fn use_phases(s: &ConvShape) -> bool {
    const MAX_PLAIN_COLS_BYTES: usize = 192 << 20;
    let g = &s.geom;
    let cols = (s.big_channels / s.groups) * g.kernel_len() * g.small_len() * std::mem::size_of::<f32>();
    phase::applicable(g) && cols > MAX_PLAIN_COLS_BYTES
}

/// Weight gradient of either layer kind, accumulated into `dw` (see [`conv::weight_grad`]):
/// Winograd for the strided layers its cost model takes (it stores nothing, so its memory cap
/// does not apply: PVGG16's pcoders 2–5), im2col + GEMM otherwise.
pub fn weight_grad(small: &[f32], big: &[f32], batch: usize, s: &ConvShape, dw: &mut [f32]) {
    // Strided layers only: the stride-1 ones were measured for the forward alone.
    match WinoPlan::new(s, usize::MAX).filter(|_| phase::applicable(&s.geom)) {
        Some(plan) => winograd_conv::weight_grad(small, big, batch, &plan, s, dw),
        None => conv::weight_grad(small, big, batch, s, dw),
    }
}

fn add_bias(out: &mut [f32], batch: usize, bias: &[f32], channels: usize, len: usize) {
    out[..batch * channels * len]
        .par_chunks_mut(channels * len)
        .for_each(|sample| conv_batched::add_bias(sample, bias, len));
}

#[cfg(test)]
mod tests {
    use super::super::test_data::pseudo;
    use super::super::ConvGeometry;
    use super::*;

    #[test]
    fn fft_choice_with_bias_equals_gemm() {
        // A layer where the cost model picks the FFT path (64×64 channels, k14 s2 on 20×20).
        let geom = ConvGeometry::for_conv_transpose([1, 20, 20], [1, 14, 14], [1, 2, 2], [0, 6, 6], [0, 0, 0], [1, 1, 1]).unwrap();
        let s = ConvShape { small_channels: 64, big_channels: 64, groups: 1, geom };
        assert!(FftPlan::new(&s, 1, MAX_SPECTRA_BYTES).is_some());
        let w: Vec<f32> = pseudo(s.weight_len(), 1).iter().map(|v| v * 0.02).collect();
        let x = pseudo(64 * geom.small_len(), 2);
        let bias = pseudo(64, 3);
        let cache = super::super::transform_cache::TransformCache::new();
        let mut fast = vec![f32::NAN; 64 * geom.big_len()];
        small_to_big(&x, 1, &w, &s, Some(&bias), Some((&cache).into()), &mut fast);
        let mut want = vec![0f32; fast.len()];
        conv::small_to_big(&x, 1, &w, &s, &mut want);
        add_bias(&mut want, 1, &bias, 64, geom.big_len());
        let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
        let d = fast.iter().zip(&want).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(d < 1e-5 * scale, "forward: {d} of {scale}");
        let mut back = vec![f32::NAN; x.len()];
        big_to_small(&want, 1, &w, &s, None, Some((&cache).into()), &mut back);
        let mut want_back = vec![0f32; x.len()];
        conv::big_to_small(&want, 1, &w, &s, &mut want_back);
        let scale = want_back.iter().fold(0f32, |m, v| m.max(v.abs()));
        let d = back.iter().zip(&want_back).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(d < 1e-5 * scale, "adjoint: {d} of {scale}");
    }
}
