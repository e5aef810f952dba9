//! Sample-parallel convolutions for small layers (few channels, small grids, large batches).
//!
//! The kernels of [`super::conv`] walk the batch sample by sample and parallelise inside each
//! sample (im2col by channel, GEMM by block), which suits PVGG16's big layers. On a MNIST-scale
//! layer one sample is a few hundred kFLOP, and splitting that across threads costs more than it
//! saves; here each rayon task takes whole samples and runs im2col, GEMM, col2im and the bias on
//! one thread with its own (reused, per-thread) column buffer.

use super::conv::ConvShape;
use super::gemm::{matmul_serial, MatRef};
use super::im2col::{col2im_serial, im2col_serial};
use super::scratch::with_scratch;
use rayon::prelude::*;

/// Whether the sample-parallel kernels suit this layer: several samples per thread's worth of
/// work, and samples small enough (≤ 64 MFLOP) that splitting one buys nothing.
pub fn suits(s: &ConvShape, batch: usize) -> bool {
    let threads = rayon::current_num_threads();
    let g = &s.geom;
    let flop = 2 * s.small_channels * (s.big_channels / s.groups) * g.kernel_len() * g.small_len();
    batch >= 2 * threads.max(1) && flop <= 64 << 20
}

/// Convolution forward (big → small) with an optional per-channel bias, parallel over samples.
/// `out` is overwritten.
pub fn big_to_small(big: &[f32], batch: usize, w: &[f32], s: &ConvShape, bias: Option<&[f32]>, out: &mut [f32]) {
    let g = &s.geom;
    let (scg, bcg) = (s.small_channels / s.groups, s.big_channels / s.groups);
    let (kl, sl, bl) = (g.kernel_len(), g.small_len(), g.big_len());
    let per_out = s.small_channels * sl;
    out[..batch * per_out].par_chunks_mut(per_out).enumerate().for_each(|(n, dst)| {
        with_scratch(bcg * kl * sl, |cols| {
            for gi in 0..s.groups {
                let src = &big[(n * s.big_channels + gi * bcg) * bl..][..bcg * bl];
                im2col_serial(src, bcg, g, cols);
                let wg = MatRef::new(&w[gi * scg * bcg * kl..][..scg * bcg * kl], scg, bcg * kl);
                matmul_serial(&mut dst[gi * scg * sl..][..scg * sl], wg, MatRef::new(cols, bcg * kl, sl), false);
            }
        });
        if let Some(b) = bias {
            add_bias(dst, b, sl);
        }
    });
}

/// Transposed-convolution forward (small → big) with an optional per-channel bias, parallel
/// over samples. `out` is overwritten.
pub fn small_to_big(small: &[f32], batch: usize, w: &[f32], s: &ConvShape, bias: Option<&[f32]>, out: &mut [f32]) {
    let g = &s.geom;
    let (scg, bcg) = (s.small_channels / s.groups, s.big_channels / s.groups);
    let (kl, sl, bl) = (g.kernel_len(), g.small_len(), g.big_len());
    let per_out = s.big_channels * bl;
    out[..batch * per_out].par_chunks_mut(per_out).enumerate().for_each(|(n, dst)| {
        dst.fill(0.0);
        with_scratch(bcg * kl * sl, |cols| {
            for gi in 0..s.groups {
                let src = &small[(n * s.small_channels + gi * scg) * sl..][..scg * sl];
                let wg = MatRef::new(&w[gi * scg * bcg * kl..][..scg * bcg * kl], scg, bcg * kl);
                matmul_serial(cols, wg.t(), MatRef::new(src, scg, sl), false);
                col2im_serial(cols, bcg, g, &mut dst[gi * bcg * bl..][..bcg * bl]);
            }
        });
        if let Some(b) = bias {
            add_bias(dst, b, bl);
        }
    });
}

/// `planes[c·len + i] += bias[c]` for one sample.
pub fn add_bias(planes: &mut [f32], bias: &[f32], len: usize) {
    for (plane, &b) in planes.chunks_mut(len).zip(bias) {
        plane.iter_mut().for_each(|v| *v += b);
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_data::pseudo;
    use super::super::conv;
    use super::super::ConvGeometry;
    use super::*;

    fn max_diff(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).fold(0f32, |m, (p, q)| m.max((p - q).abs()))
    }

    #[test]
    fn equals_the_per_sample_kernels_with_bias() {
        let geom = ConvGeometry::for_conv([1, 9, 7], [1, 3, 5], [1, 1, 2], [0, 1, 2], [1, 1, 1]).unwrap();
        let s = ConvShape { small_channels: 6, big_channels: 4, groups: 2, geom };
        let batch = 5;
        let big = pseudo(batch * 4 * geom.big_len(), 1);
        let w = pseudo(s.weight_len(), 2);
        let bias = pseudo(6, 3);
        let mut want = vec![0f32; batch * 6 * geom.small_len()];
        conv::big_to_small(&big, batch, &w, &s, &mut want);
        for plane in want.chunks_mut(6 * geom.small_len()) {
            add_bias(plane, &bias, geom.small_len());
        }
        let mut got = vec![f32::NAN; want.len()];
        big_to_small(&big, batch, &w, &s, Some(&bias), &mut got);
        assert!(max_diff(&got, &want) < 1e-5, "conv forward differs");

        let small = pseudo(want.len(), 4);
        let bias4 = pseudo(4, 5);
        let mut want = vec![0f32; big.len()];
        conv::small_to_big(&small, batch, &w, &s, &mut want);
        for plane in want.chunks_mut(4 * geom.big_len()) {
            add_bias(plane, &bias4, geom.big_len());
        }
        let mut got = vec![f32::NAN; want.len()];
        small_to_big(&small, batch, &w, &s, Some(&bias4), &mut got);
        assert!(max_diff(&got, &want) < 1e-5, "transposed forward differs");
        // Without bias the two paths agree too (and the bias did change something above).
        small_to_big(&small, batch, &w, &s, None, &mut got);
        let mut plain = vec![0f32; big.len()];
        conv::small_to_big(&small, batch, &w, &s, &mut plain);
        assert!(max_diff(&got, &plain) < 1e-5);
        assert!(max_diff(&got, &want) > 1e-3);
    }
}
