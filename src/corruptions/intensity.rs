//! Pixel-wise intensity changes: brightness and stripe.

/// MNIST-C `brightness`, severity 5: `c = 0.5` added to HSV value.
pub(crate) const BRIGHTNESS: f64 = 0.5;
/// MNIST-C `stripe`: the outer 7 of 28 columns on each side are inverted.
pub(crate) const STRIPE_FRACTION: (usize, usize) = (7, 28);

/// `gray2rgb → rgb2hsv → V = clip(V + 0.5, 0, 1) → hsv2rgb → rgb2gray`. A gray pixel has
/// `R = G = B = x`, so `V = x`, `S = 0`, and back `R = G = B = V'`; `rgb2gray`'s weights
/// (0.2125, 0.7154, 0.0721) sum to 1, so the result is `min(x + 0.5, 1)` exactly.
pub(crate) fn brightness(x: &[f64]) -> Vec<f64> {
    x.iter().map(|&v| (v + BRIGHTNESS).clamp(0.0, 1.0)).collect()
}

/// `x[:, :7] = 255 − x[:, :7]; x[:, 21:] = 255 − x[:, 21:]` on 28 columns; for other widths
/// the same fraction, `k = w · 7 / 28` columns on each side.
pub(crate) fn stripe(x: &[f64], h: usize, w: usize) -> Vec<f64> {
    let k = w * STRIPE_FRACTION.0 / STRIPE_FRACTION.1;
    let mut out = x.to_vec();
    for row in 0..h {
        for col in (0..k).chain(w - k..w) {
            out[row * w + col] = 1.0 - x[row * w + col];
        }
    }
    out
}
