//! Separable filters with `scipy.ndimage`'s conventions, which skimage's `gaussian` and
//! `canny` call: the Gaussian kernel (`truncate = 4.0`), the border modes, the Sobel operator.

/// How a filter reads outside the image (`scipy.ndimage`'s `mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Border {
    /// `'nearest'`: the edge pixel repeated (skimage `gaussian`'s default).
    Nearest,
    /// `'constant'` with `cval = 0` (canny's smoothing).
    Zero,
    /// `'reflect'`: mirrored about the edge, edge pixel included (`d c b a | a b c d`; the
    /// default of `ndimage.sobel`).
    Reflect,
}

/// The axis a 1-D filter runs along (numpy's axis numbers of an `(H, W)` array).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Axis {
    /// Axis 0: down the columns (vertical).
    Rows,
    /// Axis 1: along the rows (horizontal).
    Cols,
}

/// `scipy.ndimage._gaussian_kernel1d`: radius `int(4 * sigma + 0.5)`, weights
/// `exp(-x² / 2σ²)` normalised to sum 1.
pub(crate) fn gaussian_kernel(sigma: f64) -> Vec<f64> {
    let radius = (4.0 * sigma + 0.5) as i64;
    let mut k: Vec<f64> = (-radius..=radius).map(|x| (-0.5 * (x * x) as f64 / (sigma * sigma)).exp()).collect();
    let sum: f64 = k.iter().sum();
    k.iter_mut().for_each(|v| *v /= sum);
    k
}

/// Index `i` (possibly outside `0..n`) under a border mode; `None` reads as 0.
fn border_index(i: i64, n: usize, border: Border) -> Option<usize> {
    let n = n as i64;
    if (0..n).contains(&i) {
        return Some(i as usize);
    }
    match border {
        Border::Zero => None,
        Border::Nearest => Some(i.clamp(0, n - 1) as usize),
        Border::Reflect => {
            // Period 2n: 0..n as is, n..2n mirrored.
            let m = i.rem_euclid(2 * n);
            Some(if m < n { m } else { 2 * n - 1 - m } as usize)
        }
    }
}

/// `ndimage.correlate1d(src, weights, axis, mode)` on an `(h, w)` image; the weights are
/// centred (odd length). Each line is copied into a buffer padded by the border rule, so the
/// inner loop has no bounds logic.
pub(crate) fn correlate1d(src: &[f64], h: usize, w: usize, weights: &[f64], axis: Axis, border: Border) -> Vec<f64> {
    let r = weights.len() / 2;
    let (lines, len, stride, step) = match axis {
        Axis::Rows => (w, h, 1, w), // line x: pixels x, x + w, …
        Axis::Cols => (h, w, w, 1), // line y: pixels y·w, y·w + 1, …
    };
    let mut out = vec![0.0; h * w];
    let mut pad = vec![0.0; len + 2 * r];
    for line in 0..lines {
        let base = line * stride;
        for (t, p) in pad.iter_mut().enumerate() {
            *p = border_index(t as i64 - r as i64, len, border).map_or(0.0, |i| src[base + i * step]);
        }
        for i in 0..len {
            let window = &pad[i..i + weights.len()];
            out[base + i * step] = window.iter().zip(weights).map(|(v, k)| v * k).sum();
        }
    }
    out
}

/// `ndimage.gaussian_filter(src, sigma, mode)` on an `(h, w)` image: axis 0, then axis 1.
pub(crate) fn gaussian_2d(src: &[f64], h: usize, w: usize, sigma: f64, border: Border) -> Vec<f64> {
    let k = gaussian_kernel(sigma);
    let rows = correlate1d(src, h, w, &k, Axis::Rows, border);
    correlate1d(&rows, h, w, &k, Axis::Cols, border)
}

/// `ndimage.sobel(src, axis)`: the derivative `[-1, 0, 1]` along `axis`, the smoothing
/// `[1, 2, 1]` along the other, `'reflect'` borders.
pub(crate) fn sobel(src: &[f64], h: usize, w: usize, axis: Axis) -> Vec<f64> {
    let other = match axis {
        Axis::Rows => Axis::Cols,
        Axis::Cols => Axis::Rows,
    };
    let d = correlate1d(src, h, w, &[-1.0, 0.0, 1.0], axis, Border::Reflect);
    correlate1d(&d, h, w, &[1.0, 2.0, 1.0], other, Border::Reflect)
}
