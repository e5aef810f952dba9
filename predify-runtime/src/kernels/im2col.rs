//! im2col (gather big → columns) and col2im (scatter-add columns → big), mutual adjoints.

use super::ConvGeometry;
use rayon::prelude::*;

/// Gather one channel-block of a big-grid tensor into columns.
///
/// `big`: `[channels, big_len]`; `cols`: `[channels · kernel_len, small_len]` (overwritten).
/// Row `c·K + k` of `cols` holds, for every small position, the big value under tap `k`
/// (zero where the tap falls into the padding).
pub fn im2col(big: &[f32], channels: usize, g: &ConvGeometry, cols: &mut [f32]) {
    let (kl, sl, bl) = (g.kernel_len(), g.small_len(), g.big_len());
    // Channels own disjoint row blocks of `cols`: fill them in parallel.
    cols[..channels * kl * sl]
        .par_chunks_mut(kl * sl)
        .enumerate()
        .for_each(|(c, block)| im2col_channel(&big[c * bl..(c + 1) * bl], g, block, 0..g.small[1], sl));
}

/// [`im2col`] of every sample of a batch, side by side: `big` is `[batch, all_channels,
/// big_len]` and the channels `channels` of each sample are gathered into `cols`:
/// `[channels.len() · kernel_len, batch · small_len]`, sample n in columns
/// `n·small_len..(n+1)·small_len` (one matrix whose inner dimension runs over the whole batch).
pub fn im2col_batch(big: &[f32], batch: usize, all_channels: usize, channels: std::ops::Range<usize>, g: &ConvGeometry, cols: &mut [f32]) {
    let (kl, sl, bl) = (g.kernel_len(), g.small_len(), g.big_len());
    let width = batch * sl;
    cols[..channels.len() * kl * width]
        .par_chunks_mut(kl * width)
        .zip(channels)
        .for_each(|(block, c)| {
            for n in 0..batch {
                im2col_channel(&big[(n * all_channels + c) * bl..][..bl], g, &mut block[n * sl..], 0..g.small[1], width);
            }
        });
}

/// [`im2col`] for the small-grid rows `rows` (H axis) only: `cols` is
/// `[channels · kernel_len, D · rows.len() · W]`. Lets callers bound the column buffer.
pub fn im2col_rows(big: &[f32], channels: usize, g: &ConvGeometry, rows: std::ops::Range<usize>, cols: &mut [f32]) {
    let (kl, bl) = (g.kernel_len(), g.big_len());
    let len = g.small[0] * rows.len() * g.small[2];
    cols[..channels * kl * len]
        .par_chunks_mut(kl * len)
        .enumerate()
        .for_each(|(c, block)| im2col_channel(&big[c * bl..(c + 1) * bl], g, block, rows.clone(), row_len(g, &rows)));
}

/// [`im2col`] on the calling thread (for callers that parallelise over samples instead).
pub fn im2col_serial(big: &[f32], channels: usize, g: &ConvGeometry, cols: &mut [f32]) {
    let (kl, sl, bl) = (g.kernel_len(), g.small_len(), g.big_len());
    for (c, block) in cols[..channels * kl * sl].chunks_mut(kl * sl).enumerate() {
        im2col_channel(&big[c * bl..(c + 1) * bl], g, block, 0..g.small[1], sl);
    }
}

/// Positions per column row of [`im2col_rows`]: `D · rows.len() · W`.
fn row_len(g: &ConvGeometry, rows: &std::ops::Range<usize>) -> usize {
    g.small[0] * rows.len() * g.small[2]
}

/// One channel of [`im2col`] for the small H rows `rows`: `src` is one big-grid plane,
/// `block` its `kernel_len` column rows of `D · rows.len() · W` positions each, `stride` apart.
fn im2col_channel(src: &[f32], g: &ConvGeometry, block: &mut [f32], rows: std::ops::Range<usize>, stride: usize) {
    let [_, _, sw] = g.small;
    let sh = rows.len();
    let sl = g.small[0] * sh * sw;
    let [_, bh, bw] = g.big;
    for kd in 0..g.kernel[0] {
        let (d0, d1, bd0) = g.valid_range(0, kd);
        for kh in 0..g.kernel[1] {
            let (h0, h1, bh0) = g.valid_range(1, kh);
            for kw in 0..g.kernel[2] {
                let (w0, w1, bw0) = g.valid_range(2, kw);
                let k = (kd * g.kernel[1] + kh) * g.kernel[2] + kw;
                let row = &mut block[k * stride..k * stride + sl];
                // Every position is written once: the tap's value or, in the padding, zero.
                for d in 0..g.small[0] {
                    for hr in 0..sh {
                        let h = rows.start + hr;
                        let dst = &mut row[(d * sh + hr) * sw..(d * sh + hr + 1) * sw];
                        if !(d0..d1).contains(&d) || !(h0..h1).contains(&h) || w0 >= w1 {
                            dst.fill(0.0);
                            continue;
                        }
                        let bd = (bd0 + ((d - d0) * g.stride[0]) as isize) as usize;
                        let bhh = (bh0 + ((h - h0) * g.stride[1]) as isize) as usize;
                        let base = (bd * bh + bhh) * bw;
                        dst[..w0].fill(0.0);
                        dst[w1..].fill(0.0);
                        if g.stride[2] == 1 {
                            let b0 = bw0 as usize;
                            dst[w0..w1].copy_from_slice(&src[base + b0..base + b0 + (w1 - w0)]);
                        } else {
                            for w in w0..w1 {
                                let bww = (bw0 + ((w - w0) * g.stride[2]) as isize) as usize;
                                dst[w] = src[base + bww];
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Scatter-add columns back onto a big-grid tensor: the adjoint of [`im2col`].
///
/// `cols`: `[channels · kernel_len, small_len]`; `big`: `[channels, big_len]` (accumulated into).
pub fn col2im(cols: &[f32], channels: usize, g: &ConvGeometry, big: &mut [f32]) {
    let (kl, sl, bl) = (g.kernel_len(), g.small_len(), g.big_len());
    // Channels own disjoint planes of `big`: accumulate them in parallel.
    big[..channels * bl]
        .par_chunks_mut(bl)
        .enumerate()
        .for_each(|(c, dst)| col2im_channel(&cols[c * kl * sl..(c + 1) * kl * sl], g, dst));
}

/// [`col2im`] on the calling thread (for callers that parallelise over samples instead).
pub fn col2im_serial(cols: &[f32], channels: usize, g: &ConvGeometry, big: &mut [f32]) {
    let (kl, sl, bl) = (g.kernel_len(), g.small_len(), g.big_len());
    for (c, dst) in big[..channels * bl].chunks_mut(bl).enumerate() {
        col2im_channel(&cols[c * kl * sl..(c + 1) * kl * sl], g, dst);
    }
}

/// One channel of [`col2im`]: `rows` are its `kernel_len` column rows, `dst` its big plane.
fn col2im_channel(rows: &[f32], g: &ConvGeometry, dst: &mut [f32]) {
    let sl = g.small_len();
    let [_, sh, sw] = g.small;
    let [_, bh, bw] = g.big;
    for kd in 0..g.kernel[0] {
        let (d0, d1, bd0) = g.valid_range(0, kd);
        for kh in 0..g.kernel[1] {
            let (h0, h1, bh0) = g.valid_range(1, kh);
            for kw in 0..g.kernel[2] {
                let (w0, w1, bw0) = g.valid_range(2, kw);
                let k = (kd * g.kernel[1] + kh) * g.kernel[2] + kw;
                let row = &rows[k * sl..(k + 1) * sl];
                for d in d0..d1 {
                    let bd = (bd0 + ((d - d0) * g.stride[0]) as isize) as usize;
                    for h in h0..h1 {
                        let bhh = (bh0 + ((h - h0) * g.stride[1]) as isize) as usize;
                        let src = &row[(d * sh + h) * sw..(d * sh + h + 1) * sw];
                        let base = (bd * bh + bhh) * bw;
                        if g.stride[2] == 1 {
                            let b0 = base + bw0 as usize;
                            for (o, v) in dst[b0..b0 + (w1 - w0)].iter_mut().zip(&src[w0..w1]) {
                                *o += v;
                            }
                        } else {
                            for w in w0..w1 {
                                let bww = (bw0 + ((w - w0) * g.stride[2]) as isize) as usize;
                                dst[base + bww] += src[w];
                            }
                        }
                    }
                }
            }
        }
    }
}
