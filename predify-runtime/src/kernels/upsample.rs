//! Separable nearest / (bi,tri)linear interpolation with PyTorch's index arithmetic, and its
//! adjoint (Candle has no upsample backward).
//!
//! Multilinear interpolation is a product of 1-D interpolations, so it is applied one axis at a
//! time (W, then H, then D, as PyTorch nests its weights); the adjoint runs the transposed 1-D
//! maps in reverse order.

use rayon::prelude::*;

/// The 1-D interpolation map of one axis: output `o` reads `w0[o]·x[i0[o]] + w1[o]·x[i1[o]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct AxisMap {
    /// Input length.
    pub input: usize,
    /// First source index per output index.
    pub i0: Vec<usize>,
    /// Second source index per output index.
    pub i1: Vec<usize>,
    /// Weight of `i0`.
    pub w0: Vec<f32>,
    /// Weight of `i1`.
    pub w1: Vec<f32>,
}

/// PyTorch's `area_pixel_compute_scale`, in f32 like its CPU kernels.
fn source_scale(input: usize, output: usize, scale_factor: Option<f64>, align_corners: bool) -> f32 {
    if align_corners {
        if output > 1 {
            (input as f32 - 1.0) / (output as f32 - 1.0)
        } else {
            0.0
        }
    } else {
        match scale_factor {
            Some(s) if s > 0.0 => (1.0 / s) as f32,
            _ => input as f32 / output as f32,
        }
    }
}

impl AxisMap {
    /// Identity map on `len` elements.
    pub fn identity(len: usize) -> Self {
        Self {
            input: len,
            i0: (0..len).collect(),
            i1: (0..len).collect(),
            w0: vec![1.0; len],
            w1: vec![0.0; len],
        }
    }

    /// Linear interpolation from `input` to `output` elements (PyTorch `bilinear`/`trilinear`).
    pub fn linear(input: usize, output: usize, scale_factor: Option<f64>, align_corners: bool) -> Self {
        let scale = source_scale(input, output, scale_factor, align_corners);
        let mut m = Self { input, i0: vec![], i1: vec![], w0: vec![], w1: vec![] };
        for o in 0..output {
            let src = if align_corners {
                scale * o as f32
            } else {
                (scale * (o as f32 + 0.5) - 0.5).max(0.0)
            };
            let i0 = (src as usize).min(input.saturating_sub(1));
            let lambda = (src - i0 as f32).clamp(0.0, 1.0);
            let i1 = if i0 + 1 < input { i0 + 1 } else { i0 };
            m.i0.push(i0);
            m.i1.push(i1);
            m.w0.push(1.0 - lambda);
            m.w1.push(lambda);
        }
        m
    }

    /// PyTorch's legacy `nearest` from `input` to `output` elements.
    pub fn nearest(input: usize, output: usize, scale_factor: Option<f64>) -> Self {
        let scale = source_scale(input, output, scale_factor, false);
        let mut m = Self { input, i0: vec![], i1: vec![], w0: vec![], w1: vec![] };
        for o in 0..output {
            let i = if output == input {
                o
            } else if output == 2 * input {
                o >> 1
            } else {
                ((o as f32 * scale).floor() as usize).min(input.saturating_sub(1))
            };
            m.i0.push(i);
            m.i1.push(i);
            m.w0.push(1.0);
            m.w1.push(0.0);
        }
        m
    }

    /// Output length.
    pub fn output(&self) -> usize {
        self.i0.len()
    }
}

/// Interpolate `[outer, D, H, W]` data along each axis by `maps` (D, H, W order).
pub fn interpolate(x: &[f32], outer: usize, shape: [usize; 3], maps: &[AxisMap; 3]) -> Vec<f32> {
    let out_shape = [maps[0].output(), maps[1].output(), maps[2].output()];
    let planar = planar(shape, maps);
    // Decided once per call, not per plane.
    let x2 = planar && is_linear_x2(&maps[2]);
    by_plane_blocks(x, outer, shape, out_shape, |src, n, dst| {
        if planar {
            let (il, ol) = (shape[1] * shape[2], out_shape[1] * out_shape[2]);
            let mut tmp = vec![0f32; shape[1] * out_shape[2]];
            for (s, d) in src.chunks(il).zip(dst.chunks_mut(ol)) {
                plane_2d(s, shape[2], &maps[1], &maps[2], x2, &mut tmp, d);
            }
        } else {
            dst.copy_from_slice(&interpolate_serial(src, n, shape, maps));
        }
    })
}

/// The adjoint of [`interpolate`]: `g` has the output shape, the result the input `shape`.
pub fn interpolate_adjoint(g: &[f32], outer: usize, shape: [usize; 3], maps: &[AxisMap; 3]) -> Vec<f32> {
    let out_shape = [maps[0].output(), maps[1].output(), maps[2].output()];
    let planar = planar(shape, maps);
    let x2 = planar && is_linear_x2(&maps[2]);
    by_plane_blocks(g, outer, out_shape, shape, |src, n, dst| {
        if planar {
            let (il, ol) = (shape[1] * shape[2], out_shape[1] * out_shape[2]);
            let mut tmp = vec![0f32; shape[1] * out_shape[2]];
            for (s, d) in src.chunks(ol).zip(dst.chunks_mut(il)) {
                plane_2d_adjoint(s, out_shape[2], &maps[1], &maps[2], x2, &mut tmp, d);
            }
        } else {
            dst.copy_from_slice(&interpolate_adjoint_serial(src, n, shape, maps));
        }
    })
}

/// Whether the 2-D plane kernels apply: identity on D, real interpolation on H and W (an
/// identity axis is skipped by the separable path, so it must not go through the 2-D formula).
fn planar(shape: [usize; 3], maps: &[AxisMap; 3]) -> bool {
    is_identity(&maps[0], shape[0]) && !is_identity(&maps[1], shape[1]) && !is_identity(&maps[2], shape[2])
}

/// One `[H, W]` plane: W into the scratch `tmp` (`[H, OW]`), then H as row combinations
/// (vectorisable); the separable path's arithmetic, without its per-axis allocations. `x2`:
/// `mw` is [`is_linear_x2`].
fn plane_2d(src: &[f32], iw: usize, mh: &AxisMap, mw: &AxisMap, x2: bool, tmp: &mut [f32], dst: &mut [f32]) {
    let ow = mw.output();
    for (row, t) in src.chunks(iw).zip(tmp.chunks_mut(ow)) {
        if x2 {
            linear_x2_row(row, t);
            continue;
        }
        for (o, y) in t.iter_mut().enumerate() {
            *y = mw.w0[o] * row[mw.i0[o]] + mw.w1[o] * row[mw.i1[o]];
        }
    }
    for (oh, out) in dst.chunks_mut(ow).enumerate() {
        let (t0, t1) = (&tmp[mh.i0[oh] * ow..][..ow], &tmp[mh.i1[oh] * ow..][..ow]);
        let (a, b) = (mh.w0[oh], mh.w1[oh]);
        for ((y, &p), &q) in out.iter_mut().zip(t0).zip(t1) {
            *y = a * p + b * q;
        }
    }
}

/// The adjoint of [`plane_2d`] in the separable path's order (H, then W): `g` is `[OH, OW]`,
/// `dst` (`[H, W]`) is overwritten; `tmp` is scratch of `[H, OW]`.
fn plane_2d_adjoint(g: &[f32], ow: usize, mh: &AxisMap, mw: &AxisMap, x2: bool, tmp: &mut [f32], dst: &mut [f32]) {
    tmp.fill(0.0);
    for (oh, gr) in g.chunks(ow).enumerate() {
        let (a, b) = (mh.w0[oh], mh.w1[oh]);
        for (t, &v) in tmp[mh.i0[oh] * ow..][..ow].iter_mut().zip(gr) {
            *t += a * v;
        }
        for (t, &v) in tmp[mh.i1[oh] * ow..][..ow].iter_mut().zip(gr) {
            *t += b * v;
        }
    }
    let iw = mw.input;
    if x2 {
        for (t, out) in tmp.chunks(ow).zip(dst.chunks_mut(iw)) {
            linear_x2_row_adjoint(t, out);
        }
        return;
    }
    dst.fill(0.0);
    for (t, out) in tmp.chunks(ow).zip(dst.chunks_mut(iw)) {
        for (o, &v) in t.iter().enumerate() {
            out[mw.i0[o]] += mw.w0[o] * v;
            out[mw.i1[o]] += mw.w1[o] * v;
        }
    }
}

/// Whether `m` is bilinear ×2 with `align_corners = false` (Predify's default predictor's
/// upsample) with exactly the weights the row kernels below hard-code.
fn is_linear_x2(m: &AxisMap) -> bool {
    let n = m.input;
    n >= 2
        && m.output() == 2 * n
        && (0..2 * n).all(|o| {
            let i = o / 2;
            let want = match o {
                0 => (0, 1, 1.0, 0.0),
                _ if o == 2 * n - 1 => (n - 1, n - 1, 0.75, 0.25),
                _ if o % 2 == 0 => (i - 1, i, 0.25, 0.75),
                _ => (i, i + 1, 0.75, 0.25),
            };
            (m.i0[o], m.i1[o], m.w0[o], m.w1[o]) == want
        })
}

/// One row through [`is_linear_x2`]'s map: `t[o] = w0·x[i0] + w1·x[i1]` with the map's constant
/// weights, two outputs per input pair, without index loads (same arithmetic as the generic loop).
fn linear_x2_row(x: &[f32], t: &mut [f32]) {
    let n = x.len();
    t[0] = 1.0 * x[0] + 0.0 * x[1];
    for ((pair, a), b) in t[1..2 * n - 1].chunks_exact_mut(2).zip(&x[..n - 1]).zip(&x[1..]) {
        pair[0] = 0.75 * a + 0.25 * b;
        pair[1] = 0.25 * a + 0.75 * b;
    }
    t[2 * n - 1] = 0.75 * x[n - 1] + 0.25 * x[n - 1];
}

/// The adjoint of [`linear_x2_row`], summing each input's terms in the generic scatter's order
/// (outputs ascending, i0 before i1), so both paths give the same values. `out` is overwritten.
fn linear_x2_row_adjoint(t: &[f32], out: &mut [f32]) {
    let n = out.len();
    // Input j gathers 0.25·t[2j−1], 0.75·t[2j], 0.75·t[2j+1], 0.25·t[2j+2] (clamped at the ends).
    out[0] = 1.0 * t[0] + 0.75 * t[1] + 0.25 * t[2];
    if n > 2 {
        out[1] = 0.0 * t[0] + 0.25 * t[1] + 0.75 * t[2] + 0.75 * t[3] + 0.25 * t[4];
    }
    for (j, o) in out.iter_mut().enumerate().take(n - 1).skip(2) {
        *o = 0.25 * t[2 * j - 1] + 0.75 * t[2 * j] + 0.75 * t[2 * j + 1] + 0.25 * t[2 * j + 2];
    }
    let j = n - 1;
    let last = 0.25 * t[2 * j - 1] + 0.75 * t[2 * j] + 0.75 * t[2 * j + 1] + 0.25 * t[2 * j + 1];
    out[j] = if n == 2 { 0.0 * t[0] + last } else { last };
}

/// Run `f(planes, count, out)` on blocks of whole planes in parallel: planes are independent,
/// and a few blocks per thread balance the load without per-plane overhead.
fn by_plane_blocks(x: &[f32], outer: usize, from: [usize; 3], to: [usize; 3], f: impl Fn(&[f32], usize, &mut [f32]) + Sync) -> Vec<f32> {
    let (il, ol) = (from.iter().product::<usize>(), to.iter().product::<usize>());
    let mut y = vec![0f32; outer * ol];
    if ol == 0 || outer == 0 {
        return y;
    }
    let per = outer.div_ceil(4 * rayon::current_num_threads().max(1)).max(1);
    y.par_chunks_mut(per * ol).enumerate().for_each(|(i, dst)| {
        let n = dst.len() / ol;
        f(&x[i * per * il..][..n * il], n, dst);
    });
    y
}

fn interpolate_serial(x: &[f32], outer: usize, shape: [usize; 3], maps: &[AxisMap; 3]) -> Vec<f32> {
    let mut cur = x.to_vec();
    let mut dims = shape;
    for axis in (0..3).rev() {
        if is_identity(&maps[axis], dims[axis]) {
            continue;
        }
        cur = apply_axis(&cur, outer, dims, axis, &maps[axis]);
        dims[axis] = maps[axis].output();
    }
    cur
}

fn interpolate_adjoint_serial(g: &[f32], outer: usize, shape: [usize; 3], maps: &[AxisMap; 3]) -> Vec<f32> {
    let mut dims = [maps[0].output(), maps[1].output(), maps[2].output()];
    let mut cur = g.to_vec();
    for axis in 0..3 {
        if is_identity(&maps[axis], shape[axis]) {
            continue;
        }
        cur = apply_axis_adjoint(&cur, outer, dims, axis, &maps[axis]);
        dims[axis] = shape[axis];
    }
    cur
}

fn is_identity(m: &AxisMap, len: usize) -> bool {
    m.input == len && m.output() == len && m.i0.iter().enumerate().all(|(o, &i)| i == o) && m.w1.iter().all(|&w| w == 0.0)
}

/// Split `dims` around `axis`: (elements before the axis, elements after it).
fn around(outer: usize, dims: [usize; 3], axis: usize) -> (usize, usize) {
    let before = outer * dims[..axis].iter().product::<usize>();
    let after = dims[axis + 1..].iter().product::<usize>();
    (before, after)
}

fn apply_axis(x: &[f32], outer: usize, dims: [usize; 3], axis: usize, m: &AxisMap) -> Vec<f32> {
    let (before, after) = around(outer, dims, axis);
    let (lin, lout) = (dims[axis], m.output());
    let mut y = vec![0f32; before * lout * after];
    for b in 0..before {
        let src = &x[b * lin * after..][..lin * after];
        let dst = &mut y[b * lout * after..][..lout * after];
        for o in 0..lout {
            let (r0, r1) = (&src[m.i0[o] * after..][..after], &src[m.i1[o] * after..][..after]);
            let (w0, w1) = (m.w0[o], m.w1[o]);
            for ((d, a), c) in dst[o * after..][..after].iter_mut().zip(r0).zip(r1) {
                *d = w0 * a + w1 * c;
            }
        }
    }
    y
}

fn apply_axis_adjoint(g: &[f32], outer: usize, dims: [usize; 3], axis: usize, m: &AxisMap) -> Vec<f32> {
    let (before, after) = around(outer, dims, axis);
    let (lout, lin) = (dims[axis], m.input);
    let mut y = vec![0f32; before * lin * after];
    for b in 0..before {
        let src = &g[b * lout * after..][..lout * after];
        let dst = &mut y[b * lin * after..][..lin * after];
        for o in 0..lout {
            let row = &src[o * after..][..after];
            for (k, v) in row.iter().enumerate() {
                dst[m.i0[o] * after + k] += m.w0[o] * v;
                dst[m.i1[o] * after + k] += m.w1[o] * v;
            }
        }
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bilinear_x2_matches_pytorch_values() {
        // torch: F.interpolate(arange(4).view(1,1,1,4).float(), scale_factor=(1,2), mode='bilinear')
        // = [0, .25, .75, 1.25, 1.75, 2.25, 2.75, 3]
        let maps = [AxisMap::identity(1), AxisMap::identity(1), AxisMap::linear(4, 8, Some(2.0), false)];
        let y = interpolate(&[0.0, 1.0, 2.0, 3.0], 1, [1, 1, 4], &maps);
        let want = [0.0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3.0];
        for (a, b) in y.iter().zip(want) {
            assert!((a - b).abs() < 1e-6);
        }
    }

    #[test]
    fn parallel_blocks_equal_one_serial_pass() {
        let maps = [AxisMap::identity(1), AxisMap::linear(5, 10, Some(2.0), false), AxisMap::linear(6, 12, Some(2.0), false)];
        let outer = 37;
        let x: Vec<f32> = (0..outer * 30).map(|i| (i as f32 * 0.37).sin()).collect();
        let y = interpolate(&x, outer, [1, 5, 6], &maps);
        assert_eq!(y, interpolate_serial(&x, outer, [1, 5, 6], &maps));
        let a = interpolate_adjoint(&y, outer, [1, 5, 6], &maps);
        assert_eq!(a, interpolate_adjoint_serial(&y, outer, [1, 5, 6], &maps));
        assert_eq!(a.len(), x.len());
        // The ×2 row kernels at their smallest widths (2 and 3), against the separable path.
        for (h, w) in [(2, 3), (3, 2), (2, 2)] {
            let maps = [AxisMap::identity(1), AxisMap::linear(h, 2 * h, Some(2.0), false), AxisMap::linear(w, 2 * w, None, false)];
            assert!(is_linear_x2(&maps[1]) && is_linear_x2(&maps[2]));
            let x: Vec<f32> = (0..3 * h * w).map(|i| (i as f32 * 0.53).sin()).collect();
            let y = interpolate(&x, 3, [1, h, w], &maps);
            assert_eq!(y, interpolate_serial(&x, 3, [1, h, w], &maps));
            assert_eq!(interpolate_adjoint(&y, 3, [1, h, w], &maps), interpolate_adjoint_serial(&y, 3, [1, h, w], &maps));
        }
        assert!(!is_linear_x2(&AxisMap::linear(4, 8, None, true)) && !is_linear_x2(&AxisMap::nearest(4, 8, None)));
        // A 3-D map (not planar) goes through the separable path in blocks.
        let maps = [AxisMap::linear(2, 4, None, false), AxisMap::identity(3), AxisMap::linear(4, 8, None, true)];
        let x: Vec<f32> = (0..9 * 24).map(|i| (i as f32 * 0.21).cos()).collect();
        assert_eq!(interpolate(&x, 9, [2, 3, 4], &maps), interpolate_serial(&x, 9, [2, 3, 4], &maps));
    }

    #[test]
    fn adjoint_identity() {
        let maps = [AxisMap::identity(2), AxisMap::linear(3, 7, None, true), AxisMap::nearest(5, 3, None)];
        let x: Vec<f32> = (0..2 * 3 * 5).map(|i| (i as f32 * 0.37).sin()).collect();
        let y = interpolate(&x, 1, [2, 3, 5], &maps);
        let g: Vec<f32> = (0..y.len()).map(|i| (i as f32 * 0.71).cos()).collect();
        let ag = interpolate_adjoint(&g, 1, [2, 3, 5], &maps);
        let lhs: f32 = y.iter().zip(&g).map(|(a, b)| a * b).sum();
        let rhs: f32 = x.iter().zip(&ag).map(|(a, b)| a * b).sum();
        assert!((lhs - rhs).abs() < 1e-4);
    }
}
