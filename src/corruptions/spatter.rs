//! Spatter: blobs of "mud" from thresholded, blurred Gaussian noise.

use super::filters::{gaussian_2d, Border};
use super::rng::Rng;

/// MNIST-C `spatter`, severity 4: `(loc, scale, sigma, threshold, mask sigma, mud) =
/// (0.65, 0.3, 1, 0.65, 1.5, 1)`; the mud colour is 63/255.
pub(crate) const SPATTER: (f64, f64, f64, f64, f64) = (0.65, 0.3, 1.0, 0.65, 1.5);
/// The mud's grey level, `63 / 255`.
pub(crate) const MUD: f64 = 63.0 / 255.0;
/// Mask values below this are dropped (`m[m < 0.8] = 0`).
pub(crate) const MASK_FLOOR: f64 = 0.8;

/// Liquid layer `N(0.65, 0.3²)` per pixel, Gaussian-blurred (σ = 1, `'nearest'`); mask =
/// `liquid > 0.65`, blurred (σ = 1.5), values below 0.8 set to 0; then
/// `x · (1 − m) + 63/255 · m`.
pub(crate) fn spatter(x: &[f64], h: usize, w: usize, rng: &mut Rng) -> Vec<f64> {
    let (loc, scale, sigma, threshold, mask_sigma) = SPATTER;
    let liquid: Vec<f64> = (0..h * w).map(|_| loc + scale * rng.normal()).collect();
    let liquid = gaussian_2d(&liquid, h, w, sigma, Border::Nearest);
    // (The reference first zeroes liquid < 0.65; that cannot change `liquid > 0.65`.)
    let mask: Vec<f64> = liquid.iter().map(|&v| if v > threshold { 1.0 } else { 0.0 }).collect();
    let mask = gaussian_2d(&mask, h, w, mask_sigma, Border::Nearest);
    x.iter()
        .zip(&mask)
        .map(|(&v, &m)| {
            let m = if m < MASK_FLOOR { 0.0 } else { m };
            v * (1.0 - m) + MUD * m
        })
        .collect()
}
