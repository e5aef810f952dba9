//! N-d max pooling (PyTorch semantics: padding counts as −∞, dilation, ceil_mode).

use super::zeroed::zeroed;
use rayon::prelude::*;

/// Parameters of a max pooling over three axes (unused leading axes: size 1, unit parameters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolGeometry {
    /// Input grid.
    pub input: [usize; 3],
    /// Output grid.
    pub output: [usize; 3],
    /// Window size.
    pub kernel: [usize; 3],
    /// Stride.
    pub stride: [usize; 3],
    /// Padding (implicit −∞).
    pub padding: [usize; 3],
    /// Dilation.
    pub dilation: [usize; 3],
}

impl PoolGeometry {
    /// Compute the output grid like PyTorch's `pooling_output_shape`; `None` if it is empty.
    pub fn new(
        input: [usize; 3],
        kernel: [usize; 3],
        stride: [usize; 3],
        padding: [usize; 3],
        dilation: [usize; 3],
        ceil_mode: bool,
    ) -> Option<Self> {
        let mut output = [0; 3];
        for a in 0..3 {
            if stride[a] == 0 || kernel[a] == 0 || 2 * padding[a] > kernel[a] {
                return None;
            }
            let span = dilation[a] * (kernel[a] - 1) + 1;
            let padded = input[a] + 2 * padding[a];
            if padded < span {
                return None;
            }
            let num = padded - span;
            let mut o = if ceil_mode { num.div_ceil(stride[a]) } else { num / stride[a] } + 1;
            // The last window must start inside the input or the left padding.
            if ceil_mode && (o - 1) * stride[a] >= input[a] + padding[a] {
                o -= 1;
            }
            output[a] = o;
        }
        Some(Self { input, output, kernel, stride, padding, dilation })
    }
}

/// Max pooling of `[planes, input…]` data; returns the pooled values and, per output element,
/// the flat in-plane index of the maximum (for the backward pass).
pub fn max_pool(x: &[f32], planes: usize, g: &PoolGeometry) -> (Vec<f32>, Vec<u32>) {
    let il: usize = g.input.iter().product();
    let ol: usize = g.output.iter().product();
    let mut out = zeroed(planes * ol);
    let mut arg = vec![0u32; planes * ol];
    for p in 0..planes {
        let src = &x[p * il..][..il];
        let mut oi = 0;
        for od in 0..g.output[0] {
            for oh in 0..g.output[1] {
                for ow in 0..g.output[2] {
                    let mut best = f32::NEG_INFINITY;
                    let mut best_i = 0usize;
                    let mut seen = false;
                    for kd in 0..g.kernel[0] {
                        let Some(d) = tap(od, kd, 0, g) else { continue };
                        for kh in 0..g.kernel[1] {
                            let Some(h) = tap(oh, kh, 1, g) else { continue };
                            for kw in 0..g.kernel[2] {
                                let Some(w) = tap(ow, kw, 2, g) else { continue };
                                let i = (d * g.input[1] + h) * g.input[2] + w;
                                let v = src[i];
                                // NaN propagates, as in PyTorch.
                                if !seen || v > best || v.is_nan() {
                                    best = v;
                                    best_i = i;
                                    seen = true;
                                }
                            }
                        }
                    }
                    out[p * ol + oi] = best;
                    arg[p * ol + oi] = best_i as u32;
                    oi += 1;
                }
            }
        }
    }
    (out, arg)
}

/// The pooled values alone (the forward pass), parallel over planes; windows that lie wholly
/// inside the input (no padding, no dilation: every layer of the zoo) take a branch-free path.
pub fn max_pool_values(x: &[f32], planes: usize, g: &PoolGeometry) -> Vec<f32> {
    let il: usize = g.input.iter().product();
    let ol: usize = g.output.iter().product();
    let mut out = zeroed(planes * ol);
    if ol == 0 {
        return out;
    }
    let inside = (0..3).all(|a| g.padding[a] == 0 && g.dilation[a] == 1 && (g.output[a] - 1) * g.stride[a] + g.kernel[a] <= g.input[a]);
    out.par_chunks_mut(ol).enumerate().for_each(|(p, dst)| {
        let src = &x[p * il..][..il];
        if inside {
            pool_plane_inside(src, g, dst);
        } else {
            let (v, _) = max_pool(src, 1, g);
            dst.copy_from_slice(&v);
        }
    });
    out
}

/// One plane, every window inside the input. Output rows are built a tap at a time (the
/// inner loop runs along the row, which vectorises), visiting each window's taps in the same
/// order as [`max_pool`], so values and NaN propagation are the same.
fn pool_plane_inside(src: &[f32], g: &PoolGeometry, dst: &mut [f32]) {
    let [_, ih, iw] = g.input;
    let [od_n, oh_n, ow_n] = g.output;
    let [sd, sh, sw] = g.stride;
    for (r, out) in dst.chunks_mut(ow_n).enumerate().take(od_n * oh_n) {
        let (d0, h0) = ((r / oh_n) * sd, (r % oh_n) * sh);
        let first = &src[(d0 * ih + h0) * iw..];
        for (o, y) in out.iter_mut().enumerate() {
            *y = first[o * sw];
        }
        for kd in 0..g.kernel[0] {
            for kh in 0..g.kernel[1] {
                let row = &src[((d0 + kd) * ih + h0 + kh) * iw..][..iw];
                if g.kernel[2] == sw {
                    // Windows side by side along the row (2×2/2, 3×3/3): each output reads one
                    // contiguous chunk, taps in the same order as below.
                    for (y, win) in out.iter_mut().zip(row.chunks_exact(sw)) {
                        for &v in win {
                            *y = pick(*y, v);
                        }
                    }
                    continue;
                }
                for kw in 0..g.kernel[2] {
                    // Window o reads row[o·sw + kw]; the last one is inside the row.
                    let taps = row[kw..].iter().step_by(sw);
                    for (y, &v) in out.iter_mut().zip(taps) {
                        *y = pick(*y, v);
                    }
                }
            }
        }
    }
}

/// The running maximum after tap `v`; NaN propagates, as in PyTorch.
#[inline(always)]
fn pick(y: f32, v: f32) -> f32 {
    if v > y || v.is_nan() {
        v
    } else {
        y
    }
}

/// The input index of window `o`, tap `k` on `axis`, if inside the input.
fn tap(o: usize, k: usize, axis: usize, g: &PoolGeometry) -> Option<usize> {
    let i = (o * g.stride[axis] + k * g.dilation[axis]).checked_sub(g.padding[axis])?;
    (i < g.input[axis]).then_some(i)
}

/// Backward of [`max_pool`]: routes each output gradient to its argmax (accumulating).
pub fn max_pool_backward(grad: &[f32], arg: &[u32], planes: usize, g: &PoolGeometry) -> Vec<f32> {
    let il: usize = g.input.iter().product();
    let ol: usize = g.output.iter().product();
    let mut dx = zeroed(planes * il);
    for p in 0..planes {
        for o in 0..ol {
            dx[p * il + arg[p * ol + o] as usize] += grad[p * ol + o];
        }
    }
    dx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_path_equals_the_generic_loop() {
        let x: Vec<f32> = (0..3 * 2 * 9 * 11).map(|i| ((i as f32) * 0.731).sin()).collect();
        for (k, st, p, d, ceil) in [([1, 2, 2], [1, 2, 2], [0, 0, 0], [1, 1, 1], false), ([1, 3, 3], [1, 3, 3], [0, 0, 0], [1, 1, 1], false), ([2, 2, 3], [1, 2, 2], [0, 0, 0], [1, 1, 1], false), ([2, 3, 2], [1, 2, 3], [0, 1, 1], [1, 1, 2], true)] {
            let g = PoolGeometry::new([2, 9, 11], k, st, p, d, ceil).unwrap();
            let (want, _) = max_pool(&x, 3, &g);
            let got = max_pool_values(&x, 3, &g);
            assert_eq!(got, want, "{g:?}");
        }
        let mut x = x;
        x[5] = f32::NAN;
        let g = PoolGeometry::new([2, 9, 11], [1, 2, 2], [1, 2, 2], [0, 0, 0], [1, 1, 1], false).unwrap();
        assert!(max_pool_values(&x, 3, &g)[2].is_nan());
    }
}
