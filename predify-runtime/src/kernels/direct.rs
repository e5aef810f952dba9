//! Direct stride-1 2-D correlation for layers with few channels: the MNIST-scale net's
//! convolutions and predictors, PVGG16's image-side predictor and VGG's first convolution.
//!
//! With 1–16 channels on one side, im2col + GEMM spends more time building columns, zeroing and
//! scattering (col2im) than multiplying, and its GEMMs are too thin for the microkernel. Here a
//! register tile of 4 output channels × 16 pixels accumulates over input channels and taps
//! straight from a zero-padded copy of the input rows, and is written once (bias included).
//! Both directions of a stride-1 layer are such a correlation: the convolution forward as is, the
//! transposed convolution forward with the kernel flipped, its channels swapped and padding
//! `k − 1 − p`.

use super::conv::ConvShape;
use super::isa::{self, Isa};
use super::scratch::with_scratch;
use super::sync_ptr::SyncPtr;
use rayon::prelude::*;

/// Output channels per register tile.
const CB: usize = 4;
/// Pixels per register tile (two 8-lane vectors).
const XT: usize = 16;

/// `out[co][y][x] = bias[co] + Σ_{ci,ky,kx} w[co][ci][ky][kx] · in[ci][y+ky−pad_h][x+kx−pad_w]`,
/// zero outside the input.
#[derive(Debug, Clone, Copy)]
struct Corr {
    cin: usize,
    cout: usize,
    input: [usize; 2],
    output: [usize; 2],
    k: [usize; 2],
    pad: [usize; 2],
}

impl Corr {
    /// Padded row length: every tile's two vector loads at any tap stay inside the row.
    fn row_len(&self) -> usize {
        self.output[1].next_multiple_of(XT) + self.k[1] - 1
    }
}

/// Whether the direct kernels compute `s` (2-D, stride and dilation 1, no groups) and are
/// expected to beat im2col + GEMM: few channels on one side, a small reduction per output, and
/// at least 3 output channels (`out_channels`: small for big → small, big for small → big) —
/// with fewer, a tile has too few independent accumulators to hide the FMA latency and GEMM
/// was measured faster (`cargo bench -p predify-runtime --bench predictors -- small`).
pub fn suits(s: &ConvShape, out_channels: usize) -> bool {
    let g = &s.geom;
    let few = s.small_channels.min(s.big_channels) <= 16 && s.small_channels.max(s.big_channels) <= 64;
    computes(s) && few && out_channels >= 3 && g.kernel[1] * g.kernel[2] <= 49
}

/// Whether `s` is a layer these kernels compute at all (2-D, stride and dilation 1, no groups,
/// padding below the kernel size), whatever it costs.
fn computes(s: &ConvShape) -> bool {
    let g = &s.geom;
    s.groups == 1
        && g.big[0] == 1
        && g.small[0] == 1
        && g.kernel[0] == 1
        && g.stride == [1, 1, 1]
        && g.dilation == [1, 1, 1]
        && g.padding[1] < g.kernel[1]
        && g.padding[2] < g.kernel[2]
}

/// Convolution forward (big → small) for a layer that [`suits`] (with `small_channels`); `out` is overwritten.
///
/// # Panics
///
/// If `s` is not 2-D with stride and dilation 1, no groups and padding below the kernel size,
/// or a buffer is too small for `batch` samples of `s`.
pub fn big_to_small(big: &[f32], batch: usize, w: &[f32], s: &ConvShape, bias: Option<&[f32]>, out: &mut [f32]) {
    big_to_small_with(isa::active(), big, batch, w, s, bias, out)
}

/// [`big_to_small`] with the vector instructions of `isa` (panics above [`isa::detected`]).
pub fn big_to_small_with(isa: Isa, big: &[f32], batch: usize, w: &[f32], s: &ConvShape, bias: Option<&[f32]>, out: &mut [f32]) {
    assert!(computes(s), "direct::big_to_small: unsupported layer {s:?}");
    let g = &s.geom;
    let c = Corr {
        cin: s.big_channels,
        cout: s.small_channels,
        input: [g.big[1], g.big[2]],
        output: [g.small[1], g.small[2]],
        k: [g.kernel[1], g.kernel[2]],
        pad: [g.padding[1], g.padding[2]],
    };
    // w is [small][big][ky][kx] = [co][ci][ky][kx] already.
    let kl = c.k[0] * c.k[1];
    let packed = pack(&c, |co, ci, t| w[(co * c.cin + ci) * kl + t]);
    correlate(isa, &c, big, batch, &packed, bias, out);
}

/// Transposed-convolution forward (small → big) for a layer that [`suits`] (with
/// `big_channels`); `out` is overwritten.
///
/// # Panics
///
/// As [`big_to_small`].
pub fn small_to_big(small: &[f32], batch: usize, w: &[f32], s: &ConvShape, bias: Option<&[f32]>, out: &mut [f32]) {
    small_to_big_with(isa::active(), small, batch, w, s, bias, out)
}

/// [`small_to_big`] with the vector instructions of `isa` (panics above [`isa::detected`]).
pub fn small_to_big_with(isa: Isa, small: &[f32], batch: usize, w: &[f32], s: &ConvShape, bias: Option<&[f32]>, out: &mut [f32]) {
    assert!(computes(s), "direct::small_to_big: unsupported layer {s:?}");
    let g = &s.geom;
    let c = Corr {
        cin: s.small_channels,
        cout: s.big_channels,
        input: [g.small[1], g.small[2]],
        output: [g.big[1], g.big[2]],
        k: [g.kernel[1], g.kernel[2]],
        pad: [g.kernel[1] - 1 - g.padding[1], g.kernel[2] - 1 - g.padding[2]],
    };
    // big[o] gathers small[o + p − k]: a correlation with the kernel flipped (tap K−1−t).
    let kl = c.k[0] * c.k[1];
    let packed = pack(&c, |co, ci, t| w[(ci * c.cout + co) * kl + (kl - 1 - t)]);
    correlate(isa, &c, small, batch, &packed, bias, out);
}

/// Weights as `[ci][ky][kx][co]`, so a tile's broadcasts read consecutive values.
fn pack(c: &Corr, w: impl Fn(usize, usize, usize) -> f32) -> Vec<f32> {
    let kl = c.k[0] * c.k[1];
    let mut p = Vec::with_capacity(c.cin * kl * c.cout);
    for ci in 0..c.cin {
        for t in 0..kl {
            p.extend((0..c.cout).map(|co| w(co, ci, t)));
        }
    }
    p
}

fn correlate(isa: Isa, c: &Corr, input: &[f32], batch: usize, packed: &[f32], bias: Option<&[f32]>, out: &mut [f32]) {
    assert!(isa <= isa::detected(), "direct correlation: {} is not supported by this CPU", isa.name());
    let [oh, ow] = c.output;
    // The raw writes in `tiles` rely on this check: checked products, so that no wrapped one
    // passes with a short buffer.
    let total = |dims: [usize; 4]| dims.iter().try_fold(1usize, |p, &d| p.checked_mul(d));
    assert!(
        total([batch, c.cin, c.input[0], c.input[1]]).is_some_and(|len| len <= input.len())
            && total([batch, c.cout, oh, ow]).is_some_and(|len| len <= out.len()),
        "direct correlation: buffers too small"
    );
    if batch == 0 || c.cout * oh * ow == 0 {
        return;
    }
    // Neither overflows: batch ≥ 1 and the products with batch did not.
    let in_len = c.cin * c.input[0] * c.input[1];
    let out_len = c.cout * oh * ow;
    // Enough tasks for the threads even at batch 1 (row bands), whole samples when the batch
    // alone is enough.
    let threads = rayon::current_num_threads().max(1);
    let bands = (4 * threads).div_ceil(batch).clamp(1, oh);
    let band_rows = oh.div_ceil(bands);
    let bands = oh.div_ceil(band_rows);
    // Tasks write only their own (sample, row band)'s row segments, through slices of exactly
    // those segments: bands of one sample interleave in memory, so no task may hold a slice
    // of a whole sample.
    let dst = SyncPtr::new(out);
    (0..batch * bands).into_par_iter().for_each(|item| {
        let (n, b) = (item / bands, item % bands);
        let y0 = b * band_rows;
        let y1 = (y0 + band_rows).min(oh);
        let rows = y1 - y0 + c.k[0] - 1;
        let rl = c.row_len();
        with_scratch(c.cin * rows * rl, |pad| {
            fill_padded(c, &input[n * in_len..][..in_len], y0, rows, pad);
            for co in (0..c.cout).step_by(CB) {
                // SAFETY: sample n's planes start at n·out_len, inside `out` (n < batch, asserted
                // above); co < cout; y1 ≤ oh; and only this task writes rows y0..y1 of sample n.
                unsafe { tiles(isa, c, pad, rows, packed, bias, co, y0..y1, dst, n * out_len) };
            }
        });
    });
}

/// `pad[ci][r][x] = input[ci][y0 + r − pad_h][x − pad_w]`, zero outside the input.
fn fill_padded(c: &Corr, input: &[f32], y0: usize, rows: usize, pad: &mut [f32]) {
    let (ih, iw) = (c.input[0], c.input[1]);
    let rl = c.row_len();
    // One memset for the whole block, then the rows' input parts in 8-value moves: rows are
    // short (14–224 values), and per-row memset/memcpy calls cost more than the data.
    pad[..c.cin * rows * rl].fill(0.0);
    let x0 = c.pad[1].min(rl);
    let n = iw.min(rl - x0);
    for ci in 0..c.cin {
        let plane = &input[ci * ih * iw..][..ih * iw];
        for r in 0..rows {
            let y = (y0 + r) as isize - c.pad[0] as isize;
            if y < 0 || y >= ih as isize {
                continue;
            }
            let src = &plane[y as usize * iw..][..n];
            let dst = &mut pad[(ci * rows + r) * rl + x0..][..n];
            let mut d8 = dst.chunks_exact_mut(8);
            let mut s8 = src.chunks_exact(8);
            for (d, s) in (&mut d8).zip(&mut s8) {
                d.copy_from_slice(s);
            }
            for (d, s) in d8.into_remainder().iter_mut().zip(s8.remainder()) {
                *d = *s;
            }
        }
    }
}

/// Output channels `co..co+CB` (fewer at the end) of rows `ys`, all tiles of each row, into the
/// sample whose planes start at `out + base`.
///
/// # Safety
///
/// - `co < c.cout` and `ys.end <= c.output[0]`;
/// - `out.get().add(base)` starts `c.cout · c.output[0] · c.output[1]` values inside the buffer
///   behind `out`, valid for writes;
/// - while the call runs, nothing else accesses rows `ys` of those planes (channels
///   `co..co+CB`), as [`SyncPtr`]'s invariant requires.
#[allow(clippy::too_many_arguments)]
unsafe fn tiles(isa: Isa, c: &Corr, pad: &[f32], rows: usize, packed: &[f32], bias: Option<&[f32]>, co: usize, ys: std::ops::Range<usize>, out: SyncPtr<'_, f32>, base: usize) {
    let nc = CB.min(c.cout - co);
    let mut b = [0f32; CB];
    if let Some(bias) = bias {
        b[..nc].copy_from_slice(&bias[co..co + nc]);
    }
    let [oh, ow] = c.output;
    let y0 = ys.start;
    for y in ys {
        for x in (0..ow).step_by(XT) {
            let mut acc = [[0f32; XT]; CB];
            tile(isa, c, pad, rows, packed, co, nc, y - y0, x, &b, &mut acc);
            let n = XT.min(ow - x);
            for (j, a) in acc.iter().enumerate().take(nc) {
                // SAFETY: co + j < cout, y < oh and x + n ≤ ow, so this row segment lies in the
                // sample's planes, which are in bounds and ours alone for rows `ys` (this
                // function's contract): no other live reference overlaps it.
                let dst = unsafe { std::slice::from_raw_parts_mut(out.get().add(base + ((co + j) * oh + y) * ow + x), n) };
                if n == XT {
                    // Constant length: inlined vector moves instead of a memcpy call per row.
                    dst[..XT].copy_from_slice(a);
                } else {
                    dst[..n].copy_from_slice(&a[..n]);
                }
            }
        }
    }
}

/// One register tile: `acc[j][i] = b[j] + Σ w[ci][ky][kx][co+j] · pad[ci][r+ky][x+kx+i]`, with
/// the vector instructions of `isa` (at most [`isa::detected`]; lower levels for tests).
#[allow(clippy::too_many_arguments)]
#[inline]
fn tile(isa: Isa, c: &Corr, pad: &[f32], rows: usize, packed: &[f32], co: usize, nc: usize, r: usize, x: usize, b: &[f32; CB], acc: &mut [[f32; XT]; CB]) {
    assert!(isa <= isa::detected(), "direct tile: {} is not supported by this CPU", isa.name());
    #[cfg(target_arch = "x86_64")]
    match isa {
        // SAFETY: the CPU has AVX-512 F (asserted above), `tile_avx512`'s only precondition: it
        // asserts the bounds of every access itself (`tile_fits`).
        Isa::Avx512 => return unsafe { x86::tile_avx512(c, pad, rows, packed, co, nc, r, x, b, acc) },
        // SAFETY: as above, with AVX2 and FMA.
        Isa::Avx2Fma => return unsafe { x86::tile_avx2(c, pad, rows, packed, co, nc, r, x, b, acc) },
        Isa::Portable => {}
    }
    tile_portable(c, pad, rows, packed, co, nc, r, x, b, acc);
}

#[allow(clippy::too_many_arguments)]
fn tile_portable(c: &Corr, pad: &[f32], rows: usize, packed: &[f32], co: usize, nc: usize, r: usize, x: usize, b: &[f32; CB], acc: &mut [[f32; XT]; CB]) {
    let rl = c.row_len();
    for (j, a) in acc.iter_mut().enumerate() {
        a.fill(b[j]);
    }
    for ci in 0..c.cin {
        for ky in 0..c.k[0] {
            let row = &pad[(ci * rows + r + ky) * rl + x..];
            for kx in 0..c.k[1] {
                let v = &row[kx..kx + XT];
                let wv = &packed[((ci * c.k[0] + ky) * c.k[1] + kx) * c.cout + co..][..nc];
                for (a, &wj) in acc.iter_mut().zip(wv) {
                    for (ai, &vi) in a.iter_mut().zip(v) {
                        *ai += wj * vi;
                    }
                }
            }
        }
    }
}

/// Whether every access of the vector tile (`x86::run`, `n` channels) lies inside `pad` and
/// `packed`: row reads `pad[(ci·rows + r + ky)·rl + x + kx + 0..XT]` and weight reads
/// `packed[((ci·kh + ky)·kw + kx)·cout + co + j]` for `ci < cin`, `ky < kh`, `kx < kw`, `j < n`.
/// Checked arithmetic, so that no wrapped product passes; once per tile, not per access.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
#[inline]
fn tile_fits(c: &Corr, rl: usize, pad_len: usize, rows: usize, packed_len: usize, co: usize, n: usize, r: usize, x: usize) -> bool {
    let (kh, kw) = (c.k[0], c.k[1]);
    let fits = || {
        Some(
            x.checked_add(kw)?.checked_add(XT - 1)? <= rl
                && r.checked_add(kh)? <= rows
                && c.cin.checked_mul(rows)?.checked_mul(rl)? <= pad_len
                && co.checked_add(n)? <= c.cout
                && c.cin.checked_mul(kh)?.checked_mul(kw)?.checked_mul(c.cout)? <= packed_len,
        )
    };
    fits().unwrap_or(false)
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{tile_fits, Corr, CB, XT};
    use std::arch::x86_64::*;

    /// [`super::tile_portable`] with 2 × 8-lane FMAs per channel; the channel count is a const
    /// so the accumulators stay in registers.
    ///
    /// # Safety
    ///
    /// The CPU must support AVX2 and FMA (as `is_x86_feature_detected!` reports; executing
    /// these instructions elsewhere is undefined behaviour). Nothing else: the bounds of every
    /// memory access are asserted (panicking) before the loop.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn tile_avx2(c: &Corr, pad: &[f32], rows: usize, packed: &[f32], co: usize, nc: usize, r: usize, x: usize, b: &[f32; CB], acc: &mut [[f32; XT]; CB]) {
        match nc {
            4 => run::<4>(c, pad, rows, packed, co, r, x, b, acc),
            3 => run::<3>(c, pad, rows, packed, co, r, x, b, acc),
            2 => run::<2>(c, pad, rows, packed, co, r, x, b, acc),
            _ => run::<1>(c, pad, rows, packed, co, r, x, b, acc),
        }
    }

    /// [`super::tile_portable`] with one 16-lane FMA per channel.
    ///
    /// # Safety
    ///
    /// The CPU must support AVX-512 F (as `is_x86_feature_detected!` reports). Nothing else:
    /// the bounds of every memory access are asserted (panicking) before the loop.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn tile_avx512(c: &Corr, pad: &[f32], rows: usize, packed: &[f32], co: usize, nc: usize, r: usize, x: usize, b: &[f32; CB], acc: &mut [[f32; XT]; CB]) {
        match nc {
            4 => run512::<4>(c, pad, rows, packed, co, r, x, b, acc),
            3 => run512::<3>(c, pad, rows, packed, co, r, x, b, acc),
            2 => run512::<2>(c, pad, rows, packed, co, r, x, b, acc),
            _ => run512::<1>(c, pad, rows, packed, co, r, x, b, acc),
        }
    }

    /// [`tile_avx512`] for exactly `N` channels.
    ///
    /// # Safety
    ///
    /// As [`tile_avx512`]: the CPU must support AVX-512 F; bounds are asserted.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn run512<const N: usize>(c: &Corr, pad: &[f32], rows: usize, packed: &[f32], co: usize, r: usize, x: usize, b: &[f32; CB], acc: &mut [[f32; XT]; CB]) {
        let rl = c.row_len();
        let (kh, kw, cout) = (c.k[0], c.k[1], c.cout);
        assert!(tile_fits(c, rl, pad.len(), rows, packed.len(), co, N, r, x), "direct tile: access out of bounds");
        let mut a = [_mm512_setzero_ps(); N];
        for j in 0..N {
            a[j] = _mm512_set1_ps(b[j]);
        }
        let pp = pad.as_ptr();
        let wp = packed.as_ptr();
        for ci in 0..c.cin {
            for ky in 0..kh {
                // In bounds as in `run` (asserted above): XT = 16 values per row read.
                let row = pp.add((ci * rows + r + ky) * rl + x);
                let wrow = wp.add((ci * kh + ky) * kw * cout + co);
                for kx in 0..kw {
                    let v = _mm512_loadu_ps(row.add(kx));
                    let wk = wrow.add(kx * cout);
                    for j in 0..N {
                        a[j] = _mm512_fmadd_ps(_mm512_set1_ps(*wk.add(j)), v, a[j]);
                    }
                }
            }
        }
        for j in 0..N {
            _mm512_storeu_ps(acc[j].as_mut_ptr(), a[j]);
        }
    }

    /// [`tile_avx2`] for exactly `N` channels.
    ///
    /// # Safety
    ///
    /// As [`tile_avx2`]: the CPU must support AVX2 and FMA; bounds are asserted.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn run<const N: usize>(c: &Corr, pad: &[f32], rows: usize, packed: &[f32], co: usize, r: usize, x: usize, b: &[f32; CB], acc: &mut [[f32; XT]; CB]) {
        let rl = c.row_len();
        let (kh, kw, cout) = (c.k[0], c.k[1], c.cout);
        // Bounds the pointer arithmetic below relies on (checked once per tile, not per FMA).
        assert!(tile_fits(c, rl, pad.len(), rows, packed.len(), co, N, r, x), "direct tile: access out of bounds");
        let mut a0 = [_mm256_setzero_ps(); N];
        let mut a1 = [_mm256_setzero_ps(); N];
        for j in 0..N {
            a0[j] = _mm256_set1_ps(b[j]);
            a1[j] = a0[j];
        }
        let pp = pad.as_ptr();
        let wp = packed.as_ptr();
        for ci in 0..c.cin {
            for ky in 0..kh {
                // In bounds (asserted above): the largest row read, (ci·rows + r + ky)·rl + x +
                // kx + XT − 1, is below cin·rows·rl ≤ pad.len(); the largest weight read,
                // ((ci·kh + ky)·kw + kx)·cout + co + j, is below cin·kh·kw·cout ≤ packed.len().
                let row = pp.add((ci * rows + r + ky) * rl + x);
                let wrow = wp.add((ci * kh + ky) * kw * cout + co);
                for kx in 0..kw {
                    let v0 = _mm256_loadu_ps(row.add(kx));
                    let v1 = _mm256_loadu_ps(row.add(kx + 8));
                    let wk = wrow.add(kx * cout);
                    for j in 0..N {
                        let w = _mm256_broadcast_ss(&*wk.add(j));
                        a0[j] = _mm256_fmadd_ps(w, v0, a0[j]);
                        a1[j] = _mm256_fmadd_ps(w, v1, a1[j]);
                    }
                }
            }
        }
        // acc[j] (j < N ≤ CB) holds XT = 16 values: two 8-lane stores.
        for j in 0..N {
            _mm256_storeu_ps(acc[j].as_mut_ptr(), a0[j]);
            _mm256_storeu_ps(acc[j].as_mut_ptr().add(8), a1[j]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_data::{pseudo, rel_diff};
    use super::super::conv;
    use super::super::ConvGeometry;
    use super::*;

    /// Both directions against the GEMM kernels, with and without bias, at every instruction
    /// level this CPU has (`isa::available`): odd widths (partial tiles), channel counts that leave partial channel
    /// tiles, padding 0..k−1, batch 1 (row bands) and 5.
    #[test]
    fn equals_the_gemm_kernels() {
        let cases = [
            // (small ch, big ch, big h, big w, k, pad, batch)
            (8, 1, 28, 28, 5, 2, 5),
            (16, 8, 14, 14, 5, 2, 2),
            (1, 8, 28, 28, 3, 1, 3),
            (8, 16, 28, 28, 3, 1, 1),
            (3, 64, 17, 23, 5, 2, 1),
            (5, 3, 9, 31, 3, 0, 2),
            (7, 2, 6, 5, 3, 2, 4),
        ];
        for (cs, cb, h, w, k, p, batch) in cases {
            let geom = ConvGeometry::for_conv([1, h, w], [1, k, k], [1, 1, 1], [0, p, p], [1, 1, 1]).unwrap();
            let s = ConvShape { small_channels: cs, big_channels: cb, groups: 1, geom };
            assert!(suits(&s, cs.max(cb)), "{s:?}");
            let wt = pseudo(s.weight_len(), 1);
            let big = pseudo(batch * cb * geom.big_len(), 2);
            let small = pseudo(batch * cs * geom.small_len(), 3);
            let (bs, bb) = (pseudo(cs, 4), pseudo(cb, 5));

            for level in isa::available() {
                let mut want = vec![0f32; small.len()];
                conv::big_to_small(&big, batch, &wt, &s, &mut want);
                let mut got = vec![f32::NAN; want.len()];
                big_to_small_with(level, &big, batch, &wt, &s, None, &mut got);
                assert!(rel_diff(&got, &want) < 1e-5, "{}: forward {s:?}", level.name());
                big_to_small_with(level, &big, batch, &wt, &s, Some(&bs), &mut got);
                for (plane, &b) in want.chunks_mut(geom.small_len()).zip(bs.iter().cycle()) {
                    plane.iter_mut().for_each(|v| *v += b);
                }
                assert!(rel_diff(&got, &want) < 1e-5, "{}: forward with bias {s:?}", level.name());

                let mut want = vec![0f32; big.len()];
                conv::small_to_big(&small, batch, &wt, &s, &mut want);
                let mut got = vec![f32::NAN; want.len()];
                small_to_big_with(level, &small, batch, &wt, &s, None, &mut got);
                assert!(rel_diff(&got, &want) < 1e-5, "{}: transposed {s:?}", level.name());
                small_to_big_with(level, &small, batch, &wt, &s, Some(&bb), &mut got);
                for (plane, &b) in want.chunks_mut(geom.big_len()).zip(bb.iter().cycle()) {
                    plane.iter_mut().for_each(|v| *v += b);
                }
                assert!(rel_diff(&got, &want) < 1e-5, "{}: transposed with bias {s:?}", level.name());
            }
        }
        eprintln!("direct kernels checked at {:?}", isa::available());
    }

    #[test]
    fn every_level_of_the_tile_equals_the_portable_one() {
        let c = Corr { cin: 3, cout: 6, input: [5, 9], output: [5, 9], k: [3, 3], pad: [1, 1] };
        let rows = 7;
        let pad = pseudo(c.cin * rows * c.row_len(), 7);
        let packed = pseudo(c.cin * 9 * c.cout, 8);
        let b = [0.5, -1.0, 2.0, 0.25];
        for level in isa::available() {
            for (co, nc) in [(0, 4), (4, 2)] {
                let mut want = [[0f32; XT]; CB];
                tile_portable(&c, &pad, rows, &packed, co, nc, 2, 0, &b, &mut want);
                let mut got = [[0f32; XT]; CB];
                tile(level, &c, &pad, rows, &packed, co, nc, 2, 0, &b, &mut got);
                for j in 0..nc {
                    assert!(rel_diff(&got[j], &want[j]) < 1e-6, "{}: channel {j}", level.name());
                }
            }
        }
    }

    #[test]
    fn declines_what_it_cannot_compute() {
        let strided = ConvGeometry::for_conv([1, 9, 9], [1, 3, 3], [1, 2, 2], [0, 1, 1], [1, 1, 1]).unwrap();
        assert!(!suits(&ConvShape { small_channels: 4, big_channels: 4, groups: 1, geom: strided }, 4));
        let plain = ConvGeometry::for_conv([1, 9, 9], [1, 3, 3], [1, 1, 1], [0, 1, 1], [1, 1, 1]).unwrap();
        assert!(suits(&ConvShape { small_channels: 4, big_channels: 4, groups: 1, geom: plain }, 4));
        assert!(!suits(&ConvShape { small_channels: 4, big_channels: 1, groups: 1, geom: plain }, 1));
        assert!(!suits(&ConvShape { small_channels: 4, big_channels: 4, groups: 2, geom: plain }, 4));
        assert!(!suits(&ConvShape { small_channels: 64, big_channels: 64, groups: 1, geom: plain }, 64));
        let wide_pad = ConvGeometry::for_conv([1, 9, 9], [1, 3, 3], [1, 1, 1], [0, 3, 3], [1, 1, 1]).unwrap();
        assert!(!suits(&ConvShape { small_channels: 4, big_channels: 4, groups: 1, geom: wide_pad }, 4));
    }

    /// Too-short buffers panic (in every profile) instead of reaching the raw writes.
    #[test]
    #[should_panic(expected = "direct correlation: buffers too small")]
    fn rejects_a_short_output() {
        let geom = ConvGeometry::for_conv([1, 9, 9], [1, 3, 3], [1, 1, 1], [0, 1, 1], [1, 1, 1]).unwrap();
        let s = ConvShape { small_channels: 4, big_channels: 2, groups: 1, geom };
        let (big, w) = (vec![0.0; 2 * 2 * 81], vec![0.0; s.weight_len()]);
        let mut out = vec![0.0; 2 * 4 * 81 - 1];
        big_to_small(&big, 2, &w, &s, None, &mut out);
    }

    /// A tile whose rows reach past the padded block panics on both paths.
    #[test]
    #[should_panic]
    fn tile_rejects_rows_past_the_block() {
        let c = Corr { cin: 2, cout: 4, input: [5, 9], output: [5, 9], k: [3, 3], pad: [1, 1] };
        let rows = 4;
        let (pad, packed) = (vec![0.0; c.cin * rows * c.row_len()], vec![0.0; c.cin * 9 * c.cout]);
        tile(isa::detected(), &c, &pad, rows, &packed, 0, 4, 2, 0, &[0.0; CB], &mut [[0.0; XT]; CB]);
    }
}
