//! Small helpers shared by the tiled transform paths ([`super::fft_conv`],
//! [`super::winograd_conv`]): the stretch of a grid row one tile row covers (on a zero-padded
//! plane or on a stride phase's lattice), copying it in and out of lane-interleaved tiles, and
//! how many samples one pass takes.

use super::phase::{self, AxisPhase};
use super::ConvGeometry;
use std::ops::Range;

/// The part of one grid row that one tile row covers: the grid values `data[start + k·step]`
/// belong to tile columns `cols.start + k`; the tile's other columns lie outside the grid.
/// Resolved once per tile row, so that the copies below index with a plain stride.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RowSpan {
    /// Index of the value at tile column `cols.start` (0 when `cols` is empty).
    pub start: usize,
    /// Distance between consecutive columns' values.
    pub step: usize,
    /// The tile columns inside the grid.
    pub cols: Range<usize>,
}

impl RowSpan {
    /// Tile columns `0..n` over grid columns `j0..j0 + n` of a row of `width` points, point j
    /// at index `at(j)` and consecutive points `step` apart: the columns inside the row.
    fn clipped(width: usize, j0: isize, n: usize, step: usize, at: impl Fn(usize) -> usize) -> Self {
        let lo = j0.checked_neg().map_or(n, |v| v.clamp(0, n as isize) as usize);
        let hi = (width as isize).saturating_sub(j0).clamp(lo as isize, n as isize) as usize;
        let start = if lo < hi { at((j0 + lo as isize) as usize) } else { 0 };
        Self { start, step, cols: lo..hi }
    }

    /// Row `i` of a row-major `hw` plane, columns `j0..j0 + n` (zero padding outside); `None`
    /// if the row itself is outside.
    pub(crate) fn padded(hw: [usize; 2], i: isize, j0: isize, n: usize) -> Option<Self> {
        (0..hw[0] as isize).contains(&i).then(|| Self::clipped(hw[1], j0, n, 1, |j| i as usize * hw[1] + j))
    }

    /// Row `i` (< the lattice's rows) of the 2-D stride phase `ph` of a big grid, lattice
    /// columns `j0..j0 + n` of the `len` the lattice has (outside: none).
    pub(crate) fn lattice(g: &ConvGeometry, ph: &[AxisPhase; 3], len: usize, i: usize, j0: isize, n: usize) -> Self {
        Self::clipped(len, j0, n, g.stride[2], |j| phase::big_index(g, ph, [0, i, j]))
    }
}

/// Tile row of `n` values at `dst[b·dst_step]`: the values `row` covers from `data`, zeros in
/// the other columns (all of them without a row).
pub(crate) fn gather_row(data: &[f32], row: Option<RowSpan>, n: usize, dst: &mut [f32], dst_step: usize) {
    let cols = row.as_ref().map_or(0..0, |r| r.cols.clone());
    for b in (0..cols.start).chain(cols.end..n) {
        dst[b * dst_step] = 0.0;
    }
    if let Some(r) = row {
        for (b, v) in r.cols.zip(data[r.start..].iter().step_by(r.step)) {
            dst[b * dst_step] = *v;
        }
    }
}

/// The inverse of [`gather_row`]: the tile row's values at `src[b·src_step]` for the columns
/// `row` covers, written to `data`.
pub(crate) fn scatter_row(data: &mut [f32], row: RowSpan, src: &[f32], src_step: usize) {
    for (b, v) in row.cols.zip(data[row.start..].iter_mut().step_by(row.step)) {
        *v = src[b * src_step];
    }
}

/// Samples per pass: as many as keep a transient of `bytes_per_sample` per sample under 64 MB
/// (at least one, at most `batch`), so that one GEMM serves several samples without a large
/// buffer.
pub(crate) fn samples_per_chunk(bytes_per_sample: usize, batch: usize) -> usize {
    const MAX_BYTES: usize = 64 << 20;
    (MAX_BYTES / bytes_per_sample.max(1)).clamp(1, batch.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_spans_clip_to_the_grid_and_copy_with_their_stride() {
        // A 3×5 plane; tile rows of 4 columns starting left of, inside and right of it.
        let plane: Vec<f32> = (0..15).map(|v| v as f32 + 1.0).collect();
        assert_eq!(RowSpan::padded([3, 5], 3, 0, 4), None);
        assert_eq!(RowSpan::padded([3, 5], -1, 0, 4), None);
        let cases = [(-2, vec![0.0, 0.0, 6.0, 7.0]), (1, vec![7.0, 8.0, 9.0, 10.0]), (3, vec![9.0, 10.0, 0.0, 0.0]), (6, vec![0.0; 4]), (-9, vec![0.0; 4])];
        for (j0, want) in cases {
            let mut dst = vec![f32::NAN; 8];
            gather_row(&plane, RowSpan::padded([3, 5], 1, j0, 4), 4, &mut dst, 2);
            let got: Vec<f32> = dst.iter().step_by(2).copied().collect();
            assert_eq!(got, want, "j0 = {j0}");
            assert!(dst.iter().skip(1).step_by(2).all(|v| v.is_nan()), "only every second value written");
        }
        let mut dst = vec![f32::NAN; 3];
        gather_row(&plane, None, 3, &mut dst, 1);
        assert_eq!(dst, [0.0; 3]);
        // A stride-2 phase lattice of a 7×7 big grid (k4 s2 p1 transposed convolution): its
        // points are `step` apart; scattering back writes exactly the gathered points.
        let g = ConvGeometry::for_conv_transpose([1, 3, 3], [1, 4, 4], [1, 2, 2], [0, 1, 1], [0, 1, 1], [1, 1, 1]).unwrap();
        for ph in phase::phases(&g) {
            let len = ph[2].len;
            let row = RowSpan::lattice(&g, &ph, len, 1, -1, len + 2);
            assert_eq!((row.step, row.cols.clone()), (2, 1..len + 1));
            let big: Vec<f32> = (0..g.big_len()).map(|v| v as f32).collect();
            let mut tile = vec![f32::NAN; len + 2];
            gather_row(&big, Some(row.clone()), len + 2, &mut tile, 1);
            for j in 0..len {
                assert_eq!(tile[j + 1], big[phase::big_index(&g, &ph, [0, 1, j])]);
            }
            assert_eq!((tile[0], tile[len + 1]), (0.0, 0.0));
            let mut back = vec![-1.0; g.big_len()];
            scatter_row(&mut back, row, &tile, 1);
            let written: Vec<usize> = (0..back.len()).filter(|&i| back[i] != -1.0).collect();
            let want: Vec<usize> = (0..len).map(|j| phase::big_index(&g, &ph, [0, 1, j])).collect();
            assert_eq!(written, want);
        }
    }
}
