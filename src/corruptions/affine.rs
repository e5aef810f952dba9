//! Affine warps: shear, scale, rotate, translate (skimage `transform.warp` with an
//! `AffineTransform` as the inverse map).

use super::rng::Rng;

/// MNIST-C `shear`, severity 2: shear angle 0.4 rad, sign drawn at random.
pub(crate) const SHEAR: f64 = 0.4;
/// MNIST-C `scale`, severity 3: inverse-map scale `1 / 0.7` (the digit shrinks to 0.7×).
pub(crate) const SCALE: f64 = 1.0 / 0.7;
/// MNIST-C `rotate`, severity 2: 0.4 rad (≈ 22.9°), sign drawn at random.
pub(crate) const ROTATE: f64 = 0.4;
/// MNIST-C `translate`, severity 3: 3 pixels along each axis, each sign drawn at random.
pub(crate) const TRANSLATE: f64 = 3.0;

/// The 2×2 part `[[a1, a2], [b1, b2]]` of an inverse map acting on `(col, row)` = skimage's
/// `(x, y)`; the translation is chosen so that the image centre stays fixed (the reference's
/// `a3 = 13.5 · (1 − a1 − a2)` on 28×28, here for any size).
fn warp_about_centre(x: &[f64], h: usize, w: usize, m: [[f64; 2]; 2]) -> Vec<f64> {
    let (cx, cy) = ((w as f64 - 1.0) / 2.0, (h as f64 - 1.0) / 2.0);
    let a3 = cx - m[0][0] * cx - m[0][1] * cy;
    let b3 = cy - m[1][0] * cx - m[1][1] * cy;
    warp(x, h, w, [[m[0][0], m[0][1], a3], [m[1][0], m[1][1], b3]])
}

/// `transform.warp(x, inverse_map=M)` with skimage's defaults (`order=1`, `mode='constant'`,
/// `cval=0`): output pixel `(row, col)` takes the bilinear sample of the input at
/// `(x, y) = M · (col, row, 1)`, reading 0 outside the image.
fn warp(x: &[f64], h: usize, w: usize, m: [[f64; 3]; 2]) -> Vec<f64> {
    let mut out = vec![0.0; h * w];
    for row in 0..h {
        for col in 0..w {
            let (c, r) = (col as f64, row as f64);
            let sx = m[0][0] * c + m[0][1] * r + m[0][2];
            let sy = m[1][0] * c + m[1][1] * r + m[1][2];
            out[row * w + col] = bilinear(x, h, w, sy, sx);
        }
    }
    out
}

/// skimage's `bilinear_interpolation` with constant 0 outside: floor/ceil neighbours, so an
/// integral coordinate reads exactly one pixel.
fn bilinear(x: &[f64], h: usize, w: usize, r: f64, c: f64) -> f64 {
    let get = |rr: f64, cc: f64| -> f64 {
        if rr < 0.0 || cc < 0.0 || rr >= h as f64 || cc >= w as f64 {
            0.0
        } else {
            x[rr as usize * w + cc as usize]
        }
    };
    let (r0, c0, r1, c1) = (r.floor(), c.floor(), r.ceil(), c.ceil());
    let (dr, dc) = (r - r0, c - c0);
    let top = (1.0 - dc) * get(r0, c0) + dc * get(r0, c1);
    let bottom = (1.0 - dc) * get(r1, c0) + dc * get(r1, c1);
    (1.0 - dr) * top + dr * bottom
}

/// `AffineTransform(shear=±0.4)` of skimage ≤ 0.19: matrix `[[1, −sin s], [0, cos s]]`.
pub(crate) fn shear(x: &[f64], h: usize, w: usize, rng: &mut Rng) -> Vec<f64> {
    let s = SHEAR * rng.sign();
    warp_about_centre(x, h, w, [[1.0, -s.sin()], [0.0, s.cos()]])
}

/// `AffineTransform(scale=(1/0.7, 1/0.7))`: matrix `[[1/0.7, 0], [0, 1/0.7]]`.
pub(crate) fn scale(x: &[f64], h: usize, w: usize) -> Vec<f64> {
    warp_about_centre(x, h, w, [[SCALE, 0.0], [0.0, SCALE]])
}

/// `AffineTransform(rotation=±0.4)`: matrix `[[cos θ, −sin θ], [sin θ, cos θ]]`.
pub(crate) fn rotate(x: &[f64], h: usize, w: usize, rng: &mut Rng) -> Vec<f64> {
    let t = ROTATE * rng.sign();
    warp_about_centre(x, h, w, [[t.cos(), -t.sin()], [t.sin(), t.cos()]])
}

/// `AffineTransform(translation=(dx, dy))`, `dx, dy = ±3`: output `(row, col)` reads input
/// `(row + dy, col + dx)`, so the digit moves by `(−dx, −dy)`.
pub(crate) fn translate(x: &[f64], h: usize, w: usize, rng: &mut Rng) -> Vec<f64> {
    // The reference draws both signs in one call: choice([-1, 1], 2) = (x sign, y sign).
    let dx = TRANSLATE * rng.sign();
    let dy = TRANSLATE * rng.sign();
    warp(x, h, w, [[1.0, 0.0, dx], [0.0, 1.0, dy]])
}
