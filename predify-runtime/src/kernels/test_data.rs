//! Deterministic test inputs and comparisons shared by the kernels' unit tests.

use super::conv::{self, ConvShape};

/// `n` values in [−1, 1), a fixed hash of the index and `seed`.
pub(crate) fn pseudo(n: usize, seed: u32) -> Vec<f32> {
    (0..n).map(|i| (((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 8) % 1000) as f32 / 500.0 - 1.0).collect()
}

/// The largest difference between `a` and `b`, relative to the largest magnitude in `b`.
/// Infinite where `a` holds a non-finite value (a value never written, left NaN).
pub(crate) fn rel_diff(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() || a.iter().any(|v| !v.is_finite()) {
        return f32::INFINITY;
    }
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
    a.iter().zip(b).fold(0f32, |m, (p, q)| m.max((p - q).abs())) / scale
}

/// Compare a fast path's two directions with im2col + GEMM on pseudo-random data of `batch`
/// samples: `forward` computes small → big, `adjoint` big → small, each overwriting its
/// output; both must agree to `tol` relative to the largest reference value.
pub(crate) fn check_against_gemm(s: &ConvShape, w: &[f32], batch: usize, tol: f32, what: &str, forward: impl Fn(&[f32], &mut [f32]), adjoint: impl Fn(&[f32], &mut [f32])) {
    let g = &s.geom;
    let x = pseudo(batch * s.small_channels * g.small_len(), 1);
    let (mut want, mut got) = (vec![0f32; batch * s.big_channels * g.big_len()], vec![f32::NAN; batch * s.big_channels * g.big_len()]);
    conv::small_to_big(&x, batch, w, s, &mut want);
    forward(&x, &mut got);
    assert!(rel_diff(&got, &want) < tol, "small→big {what}: {}", rel_diff(&got, &want));
    let y = pseudo(want.len(), 3);
    let (mut want, mut got) = (vec![0f32; x.len()], vec![f32::NAN; x.len()]);
    conv::big_to_small(&y, batch, w, s, &mut want);
    adjoint(&y, &mut got);
    assert!(rel_diff(&got, &want) < tol, "big→small {what}: {}", rel_diff(&got, &want));
}
