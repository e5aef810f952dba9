//! Pixel noise: shot (Poisson) and impulse (salt and pepper).

use super::rng::Rng;

/// MNIST-C `shot_noise`, severity 5: `c = 3` photons per unit intensity.
pub(crate) const SHOT_PHOTONS: f64 = 3.0;
/// MNIST-C `impulse_noise`, severity 4: `amount = 0.17` of the pixels replaced.
pub(crate) const IMPULSE_AMOUNT: f64 = 0.17;
/// skimage `random_noise(mode='s&p')`'s default `salt_vs_pepper = 0.5`.
const SALT_VS_PEPPER: f64 = 0.5;

/// `clip(poisson(x · c) / c, 0, 1)` per pixel.
pub(crate) fn shot(x: &[f64], rng: &mut Rng) -> Vec<f64> {
    x.iter().map(|&v| (rng.poisson(v * SHOT_PHOTONS) as f64 / SHOT_PHOTONS).min(1.0)).collect()
}

/// skimage `random_noise(x, mode='s&p', amount=0.17)`: each pixel is flipped with probability
/// `amount`; a flipped pixel becomes 1 (salt) or 0 (pepper; `low_clip` is 0 for an image
/// without negative values) with equal probability.
pub(crate) fn impulse(x: &[f64], rng: &mut Rng) -> Vec<f64> {
    x.iter()
        .map(|&v| {
            // Both draws per pixel, as the reference draws both masks for every pixel.
            let flipped = rng.bernoulli(IMPULSE_AMOUNT);
            let salted = rng.bernoulli(SALT_VS_PEPPER);
            match (flipped, salted) {
                (true, true) => 1.0,
                (true, false) => 0.0,
                _ => v,
            }
        })
        .collect()
}
