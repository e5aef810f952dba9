//! Row-major single-precision matrix multiplication on top of the `gemm` crate.

use super::sync_ptr::SyncPtr;

/// A read-only row-major view `rows × cols` with an explicit row stride, optionally transposed.
#[derive(Clone, Copy)]
pub struct MatRef<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> MatRef<'a> {
    /// A contiguous row-major matrix. `data` must hold at least `rows * cols` values.
    pub fn new(data: &'a [f32], rows: usize, cols: usize) -> Self {
        debug_assert!(data.len() >= rows * cols);
        Self { data, rows, cols, row_stride: cols, col_stride: 1 }
    }

    /// Rows `r0..r1` of this view (no copy).
    pub fn rows(self, r0: usize, r1: usize) -> Self {
        debug_assert!(r0 <= r1 && r1 <= self.rows);
        let start = (r0 * self.row_stride).min(self.data.len());
        Self { data: &self.data[start..], rows: r1 - r0, ..self }
    }

    /// Columns `c0..c1` of this view (no copy).
    pub fn cols(self, c0: usize, c1: usize) -> Self {
        debug_assert!(c0 <= c1 && c1 <= self.cols);
        let start = (c0 * self.col_stride).min(self.data.len());
        Self { data: &self.data[start..], cols: c1 - c0, ..self }
    }

    /// The transpose of this view (no copy).
    pub fn t(self) -> Self {
        Self {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        }
    }
}

/// `dst (m×n, row-major contiguous) = [dst +] a (m×k) · b (k×n)`.
///
/// `accumulate` adds to the existing contents of `dst` instead of overwriting them.
pub fn matmul(dst: &mut [f32], a: MatRef<'_>, b: MatRef<'_>, accumulate: bool) {
    let threads = rayon::current_num_threads();
    let big = a.rows * a.cols * b.cols > 64 * 64 * 64;
    matmul_on(dst, a, b, accumulate, if big { threads } else { 1 });
}

/// [`matmul`] into an `m×n` block of a larger row-major matrix whose rows are `dst_row_stride`
/// apart (`dst` starts at the block's first element).
pub fn matmul_block(dst: &mut [f32], dst_row_stride: usize, a: MatRef<'_>, b: MatRef<'_>, accumulate: bool) {
    let (m, n) = (a.rows, b.cols);
    if m == 0 || n == 0 {
        return;
    }
    // The block's last row ends at (m−1)·stride + n.
    assert!(dst_row_stride >= n && dst.len() >= (m - 1) * dst_row_stride + n, "matmul_block: destination too short");
    let threads = rayon::current_num_threads();
    let big = m * a.cols * n > 64 * 64 * 64;
    gemm_raw(dst.as_mut_ptr(), dst_row_stride, a, b, accumulate, if big { threads } else { 1 });
}

/// [`matmul`] on the calling thread only: for callers that already run one product per rayon
/// task (many small products), where splitting each product again only adds overhead.
pub fn matmul_serial(dst: &mut [f32], a: MatRef<'_>, b: MatRef<'_>, accumulate: bool) {
    matmul_on(dst, a, b, accumulate, 1);
}

fn matmul_on(dst: &mut [f32], a: MatRef<'_>, b: MatRef<'_>, accumulate: bool, threads: usize) {
    let (m, n) = (a.rows, b.cols);
    debug_assert!(dst.len() >= m * n);
    gemm_raw(dst.as_mut_ptr(), n, a, b, accumulate, threads);
}

/// The `gemm` call behind every product: `dst` points at an `m×n` block with rows
/// `dst_row_stride` apart, which the callers have checked to lie inside their slice.
fn gemm_raw(dst: *mut f32, dst_row_stride: usize, a: MatRef<'_>, b: MatRef<'_>, accumulate: bool, threads: usize) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    debug_assert_eq!(b.rows, k);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                // SAFETY: row i of the block lies inside the caller's slice (see above).
                unsafe { std::slice::from_raw_parts_mut(dst.add(i * dst_row_stride), n) }.fill(0.0);
            }
        }
        return;
    }
    if threads > 1 {
        return split_across_threads(dst, dst_row_stride, a, b, accumulate, threads);
    }
    let par = gemm::Parallelism::None;
    // SAFETY: the views were built from slices whose lengths cover every (row, col) addressed
    // through their strides (checked by construction in `MatRef::new`), and `dst` covers the
    // m×n block with row stride `dst_row_stride` (checked by the callers).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            dst_row_stride as isize,
            accumulate,
            a.data.as_ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr(),
            b.col_stride as isize,
            b.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            par,
        );
    }
}

/// One single-threaded `gemm` per thread on a block of the output, split along its longer side
/// (rows or columns). `gemm`'s own parallel split was measured to leave up to half of the second
/// core idle on this project's shapes (e.g. 64×576×12544 at 50 GFLOP/s on 2 threads against
/// 58 on one; BENCHMARKS.md), where one serial product per core reaches ~2× the one-thread rate.
fn split_across_threads(dst: *mut f32, dst_row_stride: usize, a: MatRef<'_>, b: MatRef<'_>, accumulate: bool, threads: usize) {
    use rayon::prelude::*;
    let (m, n) = (a.rows, b.cols);
    // Split the longer side (each block packs the whole of the other operand): row blocks in
    // multiples of the microkernel's 16 rows, column blocks in multiples of 8.
    let by_rows = m >= n;
    let (len, align) = if by_rows { (m, 16) } else { (n, 8) };
    let block = len.div_ceil(threads).next_multiple_of(align).max(align);
    // The blocks are disjoint sets of destination elements; `gemm` writes through the raw
    // pointer only.
    let out = SyncPtr::from_raw(dst);
    (0..len.div_ceil(block)).into_par_iter().for_each(|i| {
        let (s, e) = (i * block, ((i + 1) * block).min(len));
        if by_rows {
            // SAFETY: rows s..e of the block lie inside the caller's destination.
            let d = unsafe { out.get().add(s * dst_row_stride) };
            gemm_raw(d, dst_row_stride, a.rows(s, e), b, accumulate, 1);
        } else {
            // SAFETY: columns s..e of every row lie inside the caller's destination.
            let d = unsafe { out.get().add(s) };
            gemm_raw(d, dst_row_stride, a, b.cols(s, e), accumulate, 1);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_naive_product_with_transposes() {
        let a: Vec<f32> = (0..6).map(|v| v as f32).collect(); // 2x3
        let b: Vec<f32> = (0..12).map(|v| (v as f32) * 0.5).collect(); // 3x4
        let mut c = vec![1.0; 8];
        matmul(&mut c, MatRef::new(&a, 2, 3), MatRef::new(&b, 3, 4), true);
        for i in 0..2 {
            for j in 0..4 {
                let want: f32 = 1.0 + (0..3).map(|k| a[i * 3 + k] * b[k * 4 + j]).sum::<f32>();
                assert!((c[i * 4 + j] - want).abs() < 1e-5);
            }
        }
        // Rows 1..2 of aᵀ (a 1x2 view with strides) times a.
        let mut e = vec![0.0; 3];
        matmul(&mut e, MatRef::new(&a, 2, 3).t().rows(1, 2), MatRef::new(&a, 2, 3), false);
        for j in 0..3 {
            let want: f32 = (0..2).map(|k| a[k * 3 + 1] * a[k * 3 + j]).sum();
            assert!((e[j] - want).abs() < 1e-5);
        }
        // Products large enough to be split across threads (by rows, by columns), against
        // the serial product.
        for (m, k, n) in [(90, 40, 70), (9, 30, 300)] {
            let x: Vec<f32> = (0..m * k).map(|v| ((v * 7) % 11) as f32 - 5.0).collect();
            let y: Vec<f32> = (0..k * n).map(|v| ((v * 3) % 13) as f32 - 6.0).collect();
            let mut serial = vec![0.5; m * n];
            matmul_serial(&mut serial, MatRef::new(&x, m, k), MatRef::new(&y, k, n), true);
            let mut split = vec![0.5; m * n];
            split_across_threads(split.as_mut_ptr(), n, MatRef::new(&x, m, k), MatRef::new(&y, k, n), true, 3);
            assert_eq!(split, serial, "{m}x{k}x{n}");
        }
        // aᵀ (3x2) · a (2x3)
        let mut d = vec![0.0; 9];
        matmul(&mut d, MatRef::new(&a, 2, 3).t(), MatRef::new(&a, 2, 3), false);
        for i in 0..3 {
            for j in 0..3 {
                let want: f32 = (0..2).map(|k| a[k * 3 + i] * a[k * 3 + j]).sum();
                assert!((d[i * 3 + j] - want).abs() < 1e-5);
            }
        }
    }
}
