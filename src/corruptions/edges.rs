//! Canny edges, as skimage's `feature.canny` with its defaults.

use super::filters::{gaussian_2d, sobel, Axis, Border};

/// skimage `canny` defaults: `(sigma, low_threshold, high_threshold) = (1.0, 0.1, 0.2)` on the
/// image scaled to `[0, 1]`.
pub(crate) const CANNY: (f64, f64, f64) = (1.0, 0.1, 0.2);

/// The binary edge map (0 or 1) of skimage `canny(x)`:
///
/// 1. smoothing: Gaussian σ = 1 with zero padding, divided by the same filter applied to an
///    all-ones mask (skimage's bleed-over correction, `+ eps`);
/// 2. `isobel = sobel(axis=0)`, `jsobel = sobel(axis=1)` (`'reflect'` borders), magnitude
///    `hypot`;
/// 3. candidates: not on the 1-pixel border (the eroded mask) and magnitude > 0;
/// 4. non-maximum suppression in skimage's four sectors (0–45°, 45–90°, 90–135°, 135–180°,
///    decided by the signs and relative sizes of the two gradients, a later sector overriding
///    an earlier one for points in both), comparing with the two neighbours along the normal
///    interpolated with weight `|small| / |large|`;
/// 5. hysteresis: local maxima ≥ 0.1 that are 8-connected to a local maximum ≥ 0.2.
pub(crate) fn canny(x: &[f64], h: usize, w: usize) -> Vec<f64> {
    let (sigma, low, high) = CANNY;
    let smoothed = gaussian_2d(x, h, w, sigma, Border::Zero);
    let bleed = gaussian_2d(&vec![1.0; h * w], h, w, sigma, Border::Zero);
    let smoothed: Vec<f64> = smoothed.iter().zip(&bleed).map(|(s, b)| s / (b + f64::EPSILON)).collect();
    let isobel = sobel(&smoothed, h, w, Axis::Rows);
    let jsobel = sobel(&smoothed, h, w, Axis::Cols);
    let mag: Vec<f64> = isobel.iter().zip(&jsobel).map(|(i, j)| i.hypot(*j)).collect();
    let at = |r: usize, c: usize| mag[r * w + c];

    let mut maxima = vec![false; h * w];
    for r in 1..h.saturating_sub(1) {
        for c in 1..w.saturating_sub(1) {
            let k = r * w + c;
            let m = mag[k];
            if m <= 0.0 {
                continue;
            }
            let (gi, gj) = (isobel[k], jsobel[k]);
            let (ai, aj) = (gi.abs(), gj.abs());
            let horizontal = ai >= aj;
            let vertical = ai <= aj;
            let (up, down, right, left) = (gi >= 0.0, gi <= 0.0, gj >= 0.0, gj <= 0.0);
            // `c2 · w + c1 · (1 − w) <= m` on both sides of the normal.
            let keeps = |wt: f64, plus: (f64, f64), minus: (f64, f64)| {
                plus.1 * wt + plus.0 * (1.0 - wt) <= m && minus.1 * wt + minus.0 * (1.0 - wt) <= m
            };
            let mut result = None;
            let diagonal = (up && right) || (down && left);
            let anti = (down && right) || (up && left);
            if diagonal && horizontal {
                result = Some(keeps(aj / ai, (at(r + 1, c), at(r + 1, c + 1)), (at(r - 1, c), at(r - 1, c - 1))));
            }
            if diagonal && vertical {
                result = Some(keeps(ai / aj, (at(r, c + 1), at(r + 1, c + 1)), (at(r, c - 1), at(r - 1, c - 1))));
            }
            if anti && vertical {
                result = Some(keeps(ai / aj, (at(r, c + 1), at(r - 1, c + 1)), (at(r, c - 1), at(r + 1, c - 1))));
            }
            if anti && horizontal {
                result = Some(keeps(aj / ai, (at(r - 1, c), at(r - 1, c + 1)), (at(r + 1, c), at(r + 1, c - 1))));
            }
            maxima[k] = result.unwrap_or(false);
        }
    }

    // Hysteresis: grow from the strong maxima through the weak ones (8-connected), which keeps
    // exactly the weak components that contain a strong point (skimage's label-and-sum).
    let weak: Vec<bool> = (0..h * w).map(|k| maxima[k] && mag[k] >= low).collect();
    let mut edge = vec![false; h * w];
    let mut stack: Vec<usize> = (0..h * w).filter(|&k| maxima[k] && mag[k] >= high).collect();
    for &k in &stack {
        edge[k] = true;
    }
    while let Some(k) = stack.pop() {
        let (r, c) = ((k / w) as i64, (k % w) as i64);
        for dr in -1..=1 {
            for dc in -1..=1 {
                let (rr, cc) = (r + dr, c + dc);
                if rr < 0 || cc < 0 || rr >= h as i64 || cc >= w as i64 {
                    continue;
                }
                let n = rr as usize * w + cc as usize;
                if weak[n] && !edge[n] {
                    edge[n] = true;
                    stack.push(n);
                }
            }
        }
    }
    edge.iter().map(|&e| if e { 1.0 } else { 0.0 }).collect()
}
