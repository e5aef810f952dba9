//! Drawn lines: dotted line and zigzag, both built from MNIST-C's `line_from_points`.

use super::rng::Rng;

/// `line_from_points`' half-width: intensity `ln(1 − d / 2.3) + 1` at vertical distance `d`
/// from the line (1 on it, 0 from `d = 2.3 · (1 − 1/e) ≈ 1.45` on).
pub(crate) const LINE_DECAY: f64 = 2.3;
/// MNIST-C `zigzag`: zig length `a = 2` and width `b = 2`, from column 2 to column 25 (of 28).
pub(crate) const ZIGZAG: (f64, f64) = (2.0, 2.0);

/// Adds `line_from_points(c0, r0, c1, r1)` to `acc`: for every pixel in columns
/// `floor(c0) .. ceil(c1)`, `clip(ln(1 − d / 2.3) + 1, 0, 1)` with `d` the *vertical* distance
/// from the row to the infinite line through the two points (`d` clipped to `2.3 − 1e-10`);
/// nothing for a vertical line (`c1 == c0`), as in the reference.
fn add_line(acc: &mut [f64], h: usize, w: usize, (c0, r0): (f64, f64), (c1, r1): (f64, f64)) {
    if c1 == c0 {
        return;
    }
    let m = (r1 - r0) / (c1 - c0);
    // The reference zeroes `[:, :l]` and `[:, r:]`; a negative `l` (never on 28×28) is read as 0.
    let left = c0.floor().max(0.0) as usize;
    let right = (c1.ceil().max(0.0) as usize).min(w);
    for col in left..right {
        let f = m * (col as f64 - c0) + r0;
        for row in 0..h {
            let d = (row as f64 - f).abs().min(LINE_DECAY - 1e-10);
            let v = ((1.0 - d / LINE_DECAY).ln() + 1.0).clamp(0.0, 1.0);
            acc[row * w + col] += v;
        }
    }
}

/// MNIST-C `dotted_line`: a line from `(col 0, r0)` to `(col w−1, r1)`, `r0, r1` from
/// `randint(0, h−1)` (0..=26 on 28×28), with columns `c` where `c mod 4 < 2` blanked (the
/// reference's `idx = arange(0, 30, 2)` alternation, starting "off"), added and clipped.
/// As in the reference, the last column is blank too (`ceil(c1) = w−1` is excluded).
pub(crate) fn dotted_line(x: &[f64], h: usize, w: usize, rng: &mut Rng) -> Vec<f64> {
    let r0 = rng.int_in(0, h as i64 - 1) as f64;
    let r1 = rng.int_in(0, h as i64 - 1) as f64;
    let mut line = vec![0.0; h * w];
    add_line(&mut line, h, w, (0.0, r0), ((w as f64 - 1.0).max(0.0), r1));
    let mut out = x.to_vec();
    for row in 0..h {
        for col in (0..w).filter(|c| c % 4 >= 2) {
            out[row * w + col] = (out[row * w + col] + line[row * w + col]).min(1.0);
        }
    }
    out
}

/// MNIST-C `zigzag`: from column `c0 = 2` to `c1 = w − 3` (25), `r0` from `randint(0, h−1)`,
/// `r1 = r0 + randint(-5, 5)`; on the straight line of angle `θ = atan((r1 − r0)/(c1 − c0))`
/// and length `d = (c1 − c0)/cos θ`, the vertices `(0, 0)`, `((2i+1)·a, (−1)^i·b)` for
/// `i = 0 ..= floor((d − a)/2a)`, and, if `d` is not a multiple of `2a`, the reference's end
/// vertex `(d, r_last / (2(d − 2a·floor(d/2a))))`; rotated by θ, shifted by `(c0, r0)`, and
/// each segment added with `line_from_points`, clipping after each.
pub(crate) fn zigzag(x: &[f64], h: usize, w: usize, rng: &mut Rng) -> Vec<f64> {
    let (a, b) = ZIGZAG;
    let (c0, c1) = (2.0, w as f64 - 3.0);
    let r0 = rng.int_in(0, h as i64 - 1) as f64;
    let r1 = r0 + rng.int_in(-5, 5) as f64;
    let mut out = x.to_vec();
    if c1 <= c0 {
        return out; // no room for a zigzag (images narrower than 6 columns)
    }
    let theta = ((r1 - r0) / (c1 - c0)).atan();
    let d = (c1 - c0) / theta.cos();
    let mut vertices = vec![(0.0, 0.0)];
    let count = ((d - a) / (2.0 * a)).floor() as i64 + 1;
    let mut r_last = 0.0;
    for i in 0..count.max(0) {
        r_last = if i % 2 == 0 { b } else { -b };
        vertices.push(((2 * i + 1) as f64 * a, r_last));
    }
    let max_c = 2.0 * a * (d / (2.0 * a)).floor();
    if d != max_c {
        vertices.push((d, r_last / (2.0 * (d - max_c))));
    }
    let (s, c) = theta.sin_cos();
    let points: Vec<(f64, f64)> = vertices.iter().map(|&(u, v)| (c * u - s * v + c0, s * u + c * v + r0)).collect();
    let mut seg = vec![0.0; h * w];
    for pair in points.windows(2) {
        seg.iter_mut().for_each(|v| *v = 0.0);
        add_line(&mut seg, h, w, pair[0], pair[1]);
        for (o, v) in out.iter_mut().zip(&seg) {
            *o = (*o + v).min(1.0);
        }
    }
    out
}
