//! Grouped N-d convolution and transposed convolution, their input adjoints and weight gradients.
//!
//! Both layer kinds store their weight as `[small_channels, big_channels/groups, k…]`
//! (PyTorch: Conv `[out, in/g, k…]`, ConvTranspose `[in, out/g, k…]`), so two GEMM-based
//! routines serve all four directions:
//! * [`big_to_small`]: convolution forward, and the input-gradient of a transposed convolution;
//! * [`small_to_big`]: transposed-convolution forward, and the input-gradient of a convolution.

use super::gemm::{matmul, matmul_block, MatRef};
use super::im2col::{col2im, im2col, im2col_batch, im2col_rows};
use super::ConvGeometry;

/// Column-buffer size per block in [`small_to_big`].
const COLS_BLOCK_BYTES: usize = 8 << 20;

/// Channel layout of a (transposed) convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvShape {
    /// Channels on the small grid (Conv: out; ConvTranspose: in).
    pub small_channels: usize,
    /// Channels on the big grid (Conv: in; ConvTranspose: out).
    pub big_channels: usize,
    /// Number of groups; divides both channel counts.
    pub groups: usize,
    /// Spatial geometry.
    pub geom: ConvGeometry,
}

impl ConvShape {
    fn per_group(&self) -> (usize, usize) {
        (self.small_channels / self.groups, self.big_channels / self.groups)
    }

    /// Number of weight elements: `small · big/groups · K`.
    pub fn weight_len(&self) -> usize {
        self.small_channels * (self.big_channels / self.groups) * self.geom.kernel_len()
    }
}

/// Convolution forward (big → small): `out[n] = W ⋆ big[n]`. `out` is overwritten.
pub fn big_to_small(big: &[f32], batch: usize, w: &[f32], s: &ConvShape, out: &mut [f32]) {
    let g = &s.geom;
    let (scg, bcg) = s.per_group();
    let (kl, sl, bl) = (g.kernel_len(), g.small_len(), g.big_len());
    // Large column buffers (VGG's 64→64 layer at 224×224: 115 MB per sample) go by blocks of
    // output rows that stay in cache; only where the weights are small, since every block
    // re-packs them.
    let (sh, sw) = (g.small[1], g.small[2]);
    let row_bytes = bcg * kl * g.small[0] * sw * std::mem::size_of::<f32>();
    let weight_bytes = scg * bcg * kl * std::mem::size_of::<f32>();
    let rows = if weight_bytes <= COLS_BLOCK_BYTES / 2 && row_bytes * sh > 2 * COLS_BLOCK_BYTES {
        (COLS_BLOCK_BYTES / row_bytes.max(1)).clamp(1, sh)
    } else {
        sh
    };
    let mut cols = vec![0f32; bcg * kl * g.small[0] * rows * sw];
    for n in 0..batch {
        for gi in 0..s.groups {
            let src = &big[(n * s.big_channels + gi * bcg) * bl..][..bcg * bl];
            let wg = MatRef::new(&w[gi * scg * bcg * kl..][..scg * bcg * kl], scg, bcg * kl);
            let dst = &mut out[(n * s.small_channels + gi * scg) * sl..][..scg * sl];
            if rows == sh {
                im2col(src, bcg, g, &mut cols);
                matmul(dst, wg, MatRef::new(&cols, bcg * kl, sl), false);
                continue;
            }
            for h0 in (0..sh).step_by(rows) {
                let h1 = (h0 + rows).min(sh);
                let len = (h1 - h0) * sw;
                let cols = &mut cols[..bcg * kl * len];
                im2col_rows(src, bcg, g, h0..h1, cols);
                matmul_block(&mut dst[h0 * sw..], sl, wg, MatRef::new(cols, bcg * kl, len), false);
            }
        }
    }
}

/// Transposed-convolution forward (small → big): `out[n] = Wᵀ ⋆ small[n]`. `out` is overwritten.
pub fn small_to_big(small: &[f32], batch: usize, w: &[f32], s: &ConvShape, out: &mut [f32]) {
    let g = &s.geom;
    let (scg, bcg) = s.per_group();
    let (kl, sl, bl) = (g.kernel_len(), g.small_len(), g.big_len());
    // Columns for a block of big channels at a time: a few MB that stay in cache between the
    // GEMM writing them and col2im reading them (PVGG16's 28×28 k14 layer would otherwise
    // write and re-read 157 MB per sample).
    // Each block re-packs the small-grid operand, so only block where that operand is small
    // (large weights on a small grid); a large grid keeps one full-size product.
    let rhs_bytes = scg * sl * std::mem::size_of::<f32>();
    let block = if rhs_bytes <= COLS_BLOCK_BYTES {
        (COLS_BLOCK_BYTES / (kl * sl * std::mem::size_of::<f32>()).max(1)).clamp(1, bcg.max(1))
    } else {
        bcg.max(1)
    };
    let mut cols = vec![0f32; block * kl * sl];
    out[..batch * s.big_channels * bl].fill(0.0);
    for n in 0..batch {
        for gi in 0..s.groups {
            let src = &small[(n * s.small_channels + gi * scg) * sl..][..scg * sl];
            let wg = MatRef::new(&w[gi * scg * bcg * kl..][..scg * bcg * kl], scg, bcg * kl);
            for c0 in (0..bcg).step_by(block) {
                let c1 = (c0 + block).min(bcg);
                let cols = &mut cols[..(c1 - c0) * kl * sl];
                matmul(cols, wg.t().rows(c0 * kl, c1 * kl), MatRef::new(src, scg, sl), false);
                let dst = &mut out[(n * s.big_channels + gi * bcg + c0) * bl..][..(c1 - c0) * bl];
                col2im(cols, c1 - c0, g, dst);
            }
        }
    }
}

/// Column-buffer size per block in [`weight_grad`].
const GRAD_COLS_BLOCK_BYTES: usize = 64 << 20;

/// Weight gradient of either layer kind, accumulated into `dw` (`[small, big/g · K]`):
/// `dW += Σ_n small[n] · im2col(big[n])ᵀ`, where `small`/`big` are the activations or output
/// gradients living on each grid.
///
/// One GEMM per block of big channels with the whole batch in its inner dimension (the
/// samples' columns side by side), not one per sample: on PVGG16's 14×14 and 28×28 predictors
/// a sample gives an inner dimension of only 196 or 784 against 51 M outputs, so per-sample
/// products spent their time re-reading and re-writing `dw`; and the column buffer stays at
/// [`GRAD_COLS_BLOCK_BYTES`] instead of a whole sample's (642 MB for PVGG16's pcoder 2).
pub fn weight_grad(small: &[f32], big: &[f32], batch: usize, s: &ConvShape, dw: &mut [f32]) {
    weight_grad_blocked(small, big, batch, s, dw, GRAD_COLS_BLOCK_BYTES)
}

/// [`weight_grad`] with column blocks of about `block_bytes` (at least one channel).
fn weight_grad_blocked(small: &[f32], big: &[f32], batch: usize, s: &ConvShape, dw: &mut [f32], block_bytes: usize) {
    let g = &s.geom;
    let (scg, bcg) = s.per_group();
    let (kl, sl) = (g.kernel_len(), g.small_len());
    let width = batch * sl;
    let block = (block_bytes / (kl * width * std::mem::size_of::<f32>()).max(1)).clamp(1, bcg.max(1));
    let mut lhs = vec![0f32; scg * width];
    let mut cols = vec![0f32; block.min(bcg) * kl * width];
    for gi in 0..s.groups {
        // This group's small channels with the batch side by side: [scg, batch · sl].
        for (c, row) in lhs.chunks_mut(width).enumerate() {
            for n in 0..batch {
                row[n * sl..(n + 1) * sl].copy_from_slice(&small[(n * s.small_channels + gi * scg + c) * sl..][..sl]);
            }
        }
        let a = MatRef::new(&lhs, scg, width);
        for c0 in (0..bcg).step_by(block) {
            let c1 = (c0 + block).min(bcg);
            im2col_batch(big, batch, s.big_channels, gi * bcg + c0..gi * bcg + c1, g, &mut cols);
            let dst = &mut dw[(gi * scg * bcg + c0) * kl..];
            matmul_block(dst, bcg * kl, a, MatRef::new(&cols, (c1 - c0) * kl, width).t(), true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_data::pseudo;
    use super::*;

    /// Direct-loop transposed convolution (2-D, groups), straight from the definition.
    fn naive_convt(x: &[f32], w: &[f32], s: &ConvShape) -> Vec<f32> {
        let g = &s.geom;
        let (scg, bcg) = (s.small_channels / s.groups, s.big_channels / s.groups);
        let mut out = vec![0f32; s.big_channels * g.big_len()];
        for ci in 0..s.small_channels {
            let gi = ci / scg;
            for co in 0..bcg {
                for i in 0..g.small[1] {
                    for j in 0..g.small[2] {
                        for ki in 0..g.kernel[1] {
                            for kj in 0..g.kernel[2] {
                                let oi = (i * g.stride[1] + ki * g.dilation[1]) as isize - g.padding[1] as isize;
                                let oj = (j * g.stride[2] + kj * g.dilation[2]) as isize - g.padding[2] as isize;
                                if oi < 0 || oj < 0 || oi >= g.big[1] as isize || oj >= g.big[2] as isize {
                                    continue;
                                }
                                let wv = w[((ci * bcg + co) * g.kernel[1] + ki) * g.kernel[2] + kj];
                                let xv = x[(ci * g.small[1] + i) * g.small[2] + j];
                                out[((gi * bcg + co) * g.big[1] + oi as usize) * g.big[2] + oj as usize] += wv * xv;
                            }
                        }
                    }
                }
            }
        }
        out
    }

    fn shape() -> ConvShape {
        let geom = ConvGeometry::for_conv_transpose([1, 3, 4], [1, 3, 2], [1, 2, 3], [0, 1, 0], [0, 1, 0], [1, 1, 2]).unwrap();
        ConvShape { small_channels: 4, big_channels: 6, groups: 2, geom }
    }

    #[test]
    fn conv_transpose_matches_definition() {
        let s = shape();
        let x = pseudo(s.small_channels * s.geom.small_len(), 1);
        let w = pseudo(s.weight_len(), 2);
        let mut out = vec![0f32; s.big_channels * s.geom.big_len()];
        small_to_big(&x, 1, &w, &s, &mut out);
        let want = naive_convt(&x, &w, &s);
        for (a, b) in out.iter().zip(&want) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }

    #[test]
    fn row_blocked_convolution_matches_the_unblocked_one() {
        // 600×600 with 4·9 column rows: 52 MB of columns, weights tiny: blocks of rows.
        let geom = ConvGeometry::for_conv([1, 600, 600], [1, 3, 3], [1, 1, 1], [0, 1, 1], [1, 1, 1]).unwrap();
        let s = ConvShape { small_channels: 2, big_channels: 4, groups: 1, geom };
        let big = pseudo(4 * geom.big_len(), 9);
        let w = pseudo(s.weight_len(), 10);
        let mut out = vec![f32::NAN; 2 * geom.small_len()];
        big_to_small(&big, 1, &w, &s, &mut out);
        // Reference: one full im2col and one product.
        let mut cols = vec![0f32; 4 * 9 * geom.small_len()];
        im2col(&big, 4, &geom, &mut cols);
        let mut want = vec![0f32; out.len()];
        matmul(&mut want, MatRef::new(&w, 2, 36), MatRef::new(&cols, 36, geom.small_len()), false);
        let d = out.iter().zip(&want).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(d < 1e-5, "{d}");
    }

    #[test]
    fn blocked_columns_match_the_definition() {
        // kl·sl·4 = 9·(700·700)·4 B > 8 MB per channel: one channel per column block.
        let geom = ConvGeometry::for_conv_transpose([1, 700, 700], [1, 3, 3], [1, 1, 1], [0, 1, 1], [0, 0, 0], [1, 1, 1]).unwrap();
        let s = ConvShape { small_channels: 1, big_channels: 2, groups: 1, geom };
        let x = pseudo(geom.small_len(), 7);
        let w = pseudo(s.weight_len(), 8);
        let mut out = vec![0f32; 2 * geom.big_len()];
        small_to_big(&x, 1, &w, &s, &mut out);
        let want = naive_convt(&x, &w, &s);
        let d = out.iter().zip(&want).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(d < 1e-5, "{d}");
    }

    #[test]
    fn adjoint_identity_holds() {
        // <convT(x), y> == <x, conv(y)> and weight_grad is d<convT(x), y>/dW.
        let s = shape();
        let x = pseudo(s.small_channels * s.geom.small_len(), 3);
        let y = pseudo(s.big_channels * s.geom.big_len(), 4);
        let w = pseudo(s.weight_len(), 5);
        let mut tx = vec![0f32; y.len()];
        small_to_big(&x, 1, &w, &s, &mut tx);
        let mut ay = vec![0f32; x.len()];
        big_to_small(&y, 1, &w, &s, &mut ay);
        let lhs: f32 = tx.iter().zip(&y).map(|(a, b)| a * b).sum();
        let rhs: f32 = x.iter().zip(&ay).map(|(a, b)| a * b).sum();
        assert!((lhs - rhs).abs() < 1e-3 * lhs.abs().max(1.0), "{lhs} vs {rhs}");
        let mut dw = vec![0f32; w.len()];
        weight_grad(&x, &y, 1, &s, &mut dw);
        let bilinear: f32 = dw.iter().zip(&w).map(|(a, b)| a * b).sum();
        assert!((bilinear - lhs).abs() < 1e-3 * lhs.abs().max(1.0));
    }

    #[test]
    fn batched_weight_grad_is_the_sum_over_samples() {
        // Three samples, two groups, a strided geometry; channel blocks of one channel and of
        // the whole group.
        let geom = ConvGeometry::for_conv_transpose([1, 5, 4], [1, 4, 3], [1, 2, 1], [0, 1, 1], [0, 0, 0], [1, 1, 1]).unwrap();
        let s = ConvShape { small_channels: 4, big_channels: 6, groups: 2, geom };
        let batch = 3;
        let small = pseudo(batch * 4 * geom.small_len(), 5);
        let big = pseudo(batch * 6 * geom.big_len(), 6);
        let mut want = vec![0f32; s.weight_len()];
        for n in 0..batch {
            let (sm, bg) = (&small[n * 4 * geom.small_len()..][..4 * geom.small_len()], &big[n * 6 * geom.big_len()..][..6 * geom.big_len()]);
            weight_grad(sm, bg, 1, &s, &mut want);
        }
        for block_bytes in [1, 1 << 30] {
            let mut got = vec![0.5f32; s.weight_len()];
            weight_grad_blocked(&small, &big, batch, &s, &mut got, block_bytes);
            for (g, w) in got.iter().zip(&want) {
                assert!((g - 0.5 - w).abs() < 1e-4, "block {block_bytes}: {g} vs {w} + 0.5");
            }
        }
    }
}
