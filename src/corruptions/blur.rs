//! Blurs: glass (blur, local shuffle, blur) and motion (ImageMagick's one-sided streak).

use super::filters::{correlate1d, gaussian_kernel, Axis, Border};
use super::rng::Rng;

/// MNIST-C `glass_blur`, severity 1: `(sigma, max_delta, iterations) = (0.7, 1, 2)`.
pub(crate) const GLASS: (f64, usize, usize) = (0.7, 1, 2);
/// MNIST-C `motion_blur`, severity 1: `(radius, sigma) = (10, 3)`; the angle is drawn
/// uniformly from `[-45°, 45°)`.
pub(crate) const MOTION: (f64, f64) = (10.0, 3.0);

/// skimage `gaussian(x, sigma, multichannel=True)` on a 2-D `(H, W)` image: skimage takes the
/// last axis for channels and pads sigma with 0 there, so only axis 0 is blurred (vertically).
/// That is what MNIST-C computed on its 28×28 arrays (a quirk inherited from ImageNet-C's RGB
/// code), and what is reproduced here. Mode `'nearest'` (skimage's default).
fn vertical_gaussian(x: &[f64], h: usize, w: usize, sigma: f64) -> Vec<f64> {
    correlate1d(x, h, w, &gaussian_kernel(sigma), Axis::Rows, Border::Nearest)
}

/// Glass blur: vertical Gaussian, to 8 bits by truncation (`np.uint8(... * 255)`), then
/// `iterations` sweeps over rows `h - d ..= d + 1` and columns `w - d ..= d + 1` (descending,
/// `d = max_delta`), each pixel swapped with probability 1/2 with the pixel at
/// `(row + dy, col + dx)`, `dx, dy` drawn from `randint(-d, d)` (i.e. `-d ..= d - 1`: with
/// `d = 1` only up/left moves), then the vertical Gaussian again.
pub(crate) fn glass(x: &[f64], h: usize, w: usize, rng: &mut Rng) -> Vec<f64> {
    let (sigma, d, iterations) = GLASS;
    let blurred = vertical_gaussian(x, h, w, sigma);
    // The 1e-6 keeps an exactly representable level (a constant image) from dropping one step
    // because the blur's sum rounds a hair below it.
    let mut q: Vec<u8> = blurred.iter().map(|&v| (v * 255.0 + 1e-6).clamp(0.0, 255.0) as u8).collect();
    let di = d as i64;
    for _ in 0..iterations {
        for row in (d + 1..=h.saturating_sub(d)).rev() {
            for col in (d + 1..=w.saturating_sub(d)).rev() {
                if rng.bernoulli(0.5) {
                    let dx = rng.int_in(-di, di);
                    let dy = rng.int_in(-di, di);
                    // In range: row, col ≥ d + 1 and dx, dy ≥ −d, and row, col ≤ size − d < size.
                    let (r2, c2) = ((row as i64 + dy) as usize, (col as i64 + dx) as usize);
                    q.swap(row * w + col, r2 * w + c2);
                }
            }
        }
    }
    let shuffled: Vec<f64> = q.iter().map(|&v| v as f64 / 255.0).collect();
    vertical_gaussian(&shuffled, h, w, sigma)
}

/// ImageMagick `MotionBlurImage(radius=10, sigma=3, angle)` on the 8-bit image, as MNIST-C runs
/// it through Wand on a PNG: kernel width `2·ceil(radius) + 1 = 21`, weights
/// `exp(-i² / 2σ²)` for `i = 0..21` normalised to sum 1 (one-sided: the pixel itself has the
/// largest weight), taps at `(x + ceil(i·cos a − ½), y + ceil(i·sin a − ½))`, edge pixels
/// repeated outside the image (ImageMagick's default virtual pixels), result rounded to 8 bits
/// (the PNG round trip).
pub(crate) fn motion(x: &[f64], h: usize, w: usize, rng: &mut Rng) -> Vec<f64> {
    let (radius, sigma) = MOTION;
    let angle = rng.uniform_in(-45.0, 45.0).to_radians();
    let width = (2.0 * radius.ceil() + 1.0) as usize;
    let mut kernel: Vec<f64> = (0..width).map(|i| (-((i * i) as f64) / (2.0 * sigma * sigma)).exp()).collect();
    let norm: f64 = kernel.iter().sum();
    kernel.iter_mut().for_each(|k| *k /= norm);
    // ImageMagick's offset table, computed as it does (point scaled by the width, then divided
    // by its length).
    let (px, py) = (width as f64 * angle.sin(), width as f64 * angle.cos());
    let len = px.hypot(py);
    let offsets: Vec<(i64, i64)> = (0..width)
        .map(|i| {
            let i = i as f64;
            ((i * py / len - 0.5).ceil() as i64, (i * px / len - 0.5).ceil() as i64)
        })
        .collect();
    let pixels: Vec<f64> = x.iter().map(|&v| (v * 255.0).round()).collect(); // PIL's 8-bit image
    let mut out = vec![0.0; h * w];
    for y in 0..h {
        for xx in 0..w {
            let mut acc = 0.0;
            for (k, &(ox, oy)) in kernel.iter().zip(&offsets) {
                let sx = (xx as i64 + ox).clamp(0, w as i64 - 1) as usize;
                let sy = (y as i64 + oy).clamp(0, h as i64 - 1) as usize;
                acc += k * pixels[sy * w + sx];
            }
            out[y * w + xx] = acc.round().clamp(0.0, 255.0) / 255.0;
        }
    }
    out
}
