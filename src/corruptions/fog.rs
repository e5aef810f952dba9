//! Fog: a diamond-square plasma fractal added to the image, then rescaled.

use super::rng::Rng;

/// MNIST-C `fog`, severity 5: `(c0, wibbledecay) = (3.0, 1.4)`.
pub(crate) const FOG: (f64, f64) = (3.0, 1.4);
/// The reference's fractal side (`plasma_fractal(mapsize=256)`), cropped to the image.
const MAP_SIZE: usize = 256;

/// `plasma_fractal(mapsize, wibbledecay)` before its normalisation: diamond-square on a torus
/// (neighbours wrap, as `np.roll` does), `map[0, 0] = 0`, perturbation
/// `wibble · U(−wibble, wibble)` (the reference scales twice by `wibble`, which starts at 100
/// and is divided by `wibbledecay` per level). Fills `a` (`n × n`, every entry written) and
/// returns its `(min, max)`; the reference's map is `(a − min) / (max − min)`.
fn plasma_fractal_raw(a: &mut [f64], n: usize, decay: f64, rng: &mut Rng) -> (f64, f64) {
    debug_assert!(n.is_power_of_two() && a.len() == n * n);
    a[0] = 0.0;
    let mut step = n;
    let mut wibble = 100.0;
    while step >= 2 {
        let half = step / 2;
        let wrap = n - 1; // coordinates wrap modulo n (a power of two)
        // wibble · U(−wibble, wibble), drawn as wibble² · (2u − 1).
        let amp = wibble * wibble;
        // Squares: centre = mean of the four corners (+ wibble).
        for i0 in (0..n).step_by(step) {
            let i1 = (i0 + step) & wrap;
            for j0 in (0..n).step_by(step) {
                let j1 = (j0 + step) & wrap;
                let sum = a[i0 * n + j0] + a[i1 * n + j0] + a[i0 * n + j1] + a[i1 * n + j1];
                a[(i0 + half) * n + j0 + half] = sum / 4.0 + amp * rng.symmetric();
            }
        }
        // Diamonds: edge midpoints = mean of the two corners and the two centres beside them.
        // (The writes go to edge midpoints, which neither loop reads.)
        for i0 in (0..n).step_by(step) {
            let up = (i0 + n - half) & wrap; // centre row above the top edge
            let down = (i0 + step) & wrap;
            for j0 in (0..n).step_by(step) {
                let left = (j0 + n - half) & wrap; // centre column left of the left edge
                let right = (j0 + step) & wrap;
                let centre = a[(i0 + half) * n + j0 + half];
                let corner = a[i0 * n + j0];
                let top = centre + a[up * n + j0 + half] + corner + a[i0 * n + right];
                let side = centre + a[(i0 + half) * n + left] + corner + a[down * n + j0];
                a[i0 * n + j0 + half] = top / 4.0 + amp * rng.symmetric();
                a[(i0 + half) * n + j0] = side / 4.0 + amp * rng.symmetric();
            }
        }
        step /= 2;
        wibble /= decay;
    }
    a.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)))
}

thread_local! {
    /// The fractal's scratch map, reused per thread: 512 KiB per image would otherwise be
    /// mapped and zeroed afresh every time.
    static SCRATCH: std::cell::RefCell<Vec<f64>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `x + 3 · plasma[:h, :w]`, then `clip(· × max(x) / (max(x) + 3), 0, 1)`: the fog is rescaled
/// by the image's own maximum (an all-black image stays black). The fractal is 256×256 (the
/// next power of two for larger images).
pub(crate) fn fog(x: &[f64], h: usize, w: usize, rng: &mut Rng) -> Vec<f64> {
    let (c0, decay) = FOG;
    let n = MAP_SIZE.max(h.max(w).next_power_of_two());
    let max_val = x.iter().copied().fold(0.0, f64::max);
    let gain = max_val / (max_val + c0);
    let mut out = vec![0.0; h * w];
    SCRATCH.with(|scratch| {
        let mut map = scratch.borrow_mut();
        map.resize(n * n, 0.0);
        let (min, max) = plasma_fractal_raw(&mut map, n, decay, rng);
        let span = if max > min { max - min } else { 1.0 };
        for row in 0..h {
            for col in 0..w {
                let p = (map[row * n + col] - min) / span;
                out[row * w + col] = ((x[row * w + col] + c0 * p) * gain).clamp(0.0, 1.0);
            }
        }
    });
    out
}
