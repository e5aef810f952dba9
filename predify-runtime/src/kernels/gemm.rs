//! Row-major single-precision matrix multiplication on top of the `gemm` crate.

use super::sync_ptr::SyncPtr;

/// A read-only row-major view `rows × cols` with an explicit row stride, optionally transposed.
///
/// Invariant (what the `unsafe` `gemm` call relies on, established by [`MatRef::new`] and kept
/// by [`MatRef::rows`], [`MatRef::cols`] and [`MatRef::t`], all of which assert their
/// arguments): every element `(i, j)` with `i < rows`, `j < cols` lies at
/// `i·row_stride + j·col_stride < data.len()`, and a view with at least one element has both
/// strides at most the length of the slice given to `MatRef::new` (so they fit in `isize`).
#[derive(Clone, Copy)]
pub struct MatRef<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> MatRef<'a> {
    /// A contiguous row-major matrix.
    ///
    /// # Panics
    ///
    /// If `data` holds fewer than `rows * cols` values.
    pub fn new(data: &'a [f32], rows: usize, cols: usize) -> Self {
        // Checked product: a wrapped one could pass with a short slice.
        assert!(
            rows.checked_mul(cols).is_some_and(|len| len <= data.len()),
            "MatRef::new: {} values cannot hold a {rows}×{cols} matrix",
            data.len()
        );
        Self { data, rows, cols, row_stride: cols, col_stride: 1 }
    }

    /// Rows `r0..r1` of this view (no copy).
    ///
    /// # Panics
    ///
    /// Unless `r0 <= r1 <= rows`.
    pub fn rows(self, r0: usize, r1: usize) -> Self {
        assert!(r0 <= r1 && r1 <= self.rows, "MatRef::rows: {r0}..{r1} out of 0..{}", self.rows);
        let start = (r0 * self.row_stride).min(self.data.len());
        Self { data: &self.data[start..], rows: r1 - r0, ..self }
    }

    /// Columns `c0..c1` of this view (no copy).
    ///
    /// # Panics
    ///
    /// Unless `c0 <= c1 <= cols`.
    pub fn cols(self, c0: usize, c1: usize) -> Self {
        assert!(c0 <= c1 && c1 <= self.cols, "MatRef::cols: {c0}..{c1} out of 0..{}", self.cols);
        let start = (c0 * self.col_stride).min(self.data.len());
        Self { data: &self.data[start..], cols: c1 - c0, ..self }
    }

    /// Whether the view walks its storage down the columns (unit row stride, more than one
    /// column): the layout in which `gemm` repacks it as a left-hand operand.
    pub fn is_column_major(&self) -> bool {
        self.row_stride == 1 && self.col_stride != 1 && self.cols > 1
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
///
/// # Panics
///
/// If `b` does not have as many rows as `a` has columns, or `dst` holds fewer than `m·n`
/// values (checked in every build profile).
pub fn matmul(dst: &mut [f32], a: MatRef<'_>, b: MatRef<'_>, accumulate: bool) {
    let threads = rayon::current_num_threads();
    matmul_on(dst, a, b, accumulate, if is_big(a, b) { threads } else { 1 });
}

/// [`matmul`] into an `m×n` block of a larger row-major matrix whose rows are `dst_row_stride`
/// apart (`dst` starts at the block's first element).
///
/// # Panics
///
/// If `b` does not have as many rows as `a` has columns, `dst_row_stride < n`, or `dst` ends
/// before the block's last element (`(m−1)·dst_row_stride + n` values are needed).
pub fn matmul_block(dst: &mut [f32], dst_row_stride: usize, a: MatRef<'_>, b: MatRef<'_>, accumulate: bool) {
    check_inner(a, b);
    let (m, n) = (a.rows, b.cols);
    if m == 0 || n == 0 {
        return;
    }
    // The block's last row ends at (m−1)·stride + n (checked arithmetic: a wrapped sum could
    // pass with a short slice); the stride must also fit gemm's isize.
    let need = (m - 1).checked_mul(dst_row_stride).and_then(|v| v.checked_add(n));
    assert!(
        dst_row_stride >= n && dst_row_stride <= isize::MAX as usize && need.is_some_and(|need| need <= dst.len()),
        "matmul_block: destination of {} values too short for a {m}×{n} block with row stride {dst_row_stride}",
        dst.len()
    );
    let threads = rayon::current_num_threads();
    // SAFETY: checked just above: rows i < m of the block (n values each, `dst_row_stride` ≥ n
    // apart) lie inside `dst`, which is borrowed mutably (so aliased by neither `a` nor `b`);
    // `b.rows == a.cols` (`check_inner`).
    unsafe { gemm_raw(dst.as_mut_ptr(), dst_row_stride, a, b, accumulate, if is_big(a, b) { threads } else { 1 }) };
}

/// [`matmul`] on the calling thread only: for callers that already run one product per rayon
/// task (many small products), where splitting each product again only adds overhead.
///
/// # Panics
///
/// As [`matmul`].
pub fn matmul_serial(dst: &mut [f32], a: MatRef<'_>, b: MatRef<'_>, accumulate: bool) {
    matmul_on(dst, a, b, accumulate, 1);
}

/// [`matmul_serial`] for a large column-major `a` (a weight stored for the other direction,
/// read transposed) and a narrow `b`: computes `bᵀ·aᵀ` into `tmp` and transposes it into
/// `dst` (overwritten). `gemm` packs whichever operand it gets in the wrong layout; for
/// PVGG16's pcoder 5 adjoint (a 512×2048 view of a row-major weight times 2048×49 tiles)
/// the transposed product was measured 1.7× faster, the copy included.
///
/// # Panics
///
/// As [`matmul`].
pub fn matmul_serial_transposed(dst: &mut [f32], a: MatRef<'_>, b: MatRef<'_>, tmp: &mut Vec<f32>) {
    let (m, n) = (a.rows, b.cols);
    check_inner(a, b);
    assert!(m.checked_mul(n).is_some_and(|len| len <= dst.len()), "matmul: destination of {} values too short for a {m}×{n} product", dst.len());
    if tmp.len() < m * n {
        tmp.resize(m * n, 0.0);
    }
    matmul_serial(&mut tmp[..m * n], b.t(), a.t(), false);
    transpose(&tmp[..m * n], n, m, &mut dst[..m * n]);
}

/// `dst` (`cols × rows`) = the transpose of `src` (`rows × cols`), both row-major, in square
/// blocks that stay in L1.
///
/// # Panics
///
/// If either buffer holds fewer than `rows·cols` values.
pub fn transpose<T: Copy>(src: &[T], rows: usize, cols: usize, dst: &mut [T]) {
    const B: usize = 16;
    let len = rows.checked_mul(cols);
    assert!(len.is_some_and(|l| l <= src.len() && l <= dst.len()), "transpose: {rows}×{cols} does not fit the buffers");
    for i0 in (0..rows).step_by(B) {
        for j0 in (0..cols).step_by(B) {
            for i in i0..(i0 + B).min(rows) {
                for j in j0..(j0 + B).min(cols) {
                    dst[j * rows + i] = src[i * cols + j];
                }
            }
        }
    }
}

/// Whether a product is worth splitting across threads.
fn is_big(a: MatRef<'_>, b: MatRef<'_>) -> bool {
    a.rows.saturating_mul(a.cols).saturating_mul(b.cols) > 64 * 64 * 64
}

/// The inner dimensions must agree: `gemm` reads `k = a.cols` rows of `b`.
fn check_inner(a: MatRef<'_>, b: MatRef<'_>) {
    assert!(a.cols == b.rows, "matmul: inner dimensions differ ({}×{} times {}×{})", a.rows, a.cols, b.rows, b.cols);
}

fn matmul_on(dst: &mut [f32], a: MatRef<'_>, b: MatRef<'_>, accumulate: bool, threads: usize) {
    check_inner(a, b);
    let (m, n) = (a.rows, b.cols);
    assert!(
        m.checked_mul(n).is_some_and(|len| len <= dst.len()),
        "matmul: destination of {} values too short for a {m}×{n} product",
        dst.len()
    );
    // SAFETY: `dst` (borrowed mutably, so aliased by neither `a` nor `b`) holds the m×n block
    // with row stride n (checked just above; n ≤ dst.len() fits isize whenever m > 0), and
    // `b.rows == a.cols` (`check_inner`).
    unsafe { gemm_raw(dst.as_mut_ptr(), n, a, b, accumulate, threads) };
}

/// The `gemm` call behind every product: `dst` points at an `m×n` block with rows
/// `dst_row_stride` apart, `m = a.rows`, `n = b.cols`.
///
/// # Safety
///
/// - `b.rows == a.cols`;
/// - if `m > 0` and `n > 0`: `dst_row_stride >= n`, `dst_row_stride <= isize::MAX`, and for
///   every `i < m`, `j < n`, `dst.add(i·dst_row_stride + j)` lies in one live allocation and
///   is valid for reads and writes;
/// - for the duration of the call no other code reads or writes those block elements (in
///   particular `a` and `b` do not overlap them).
///
/// `a` and `b` need nothing more: [`MatRef`]'s invariant bounds every element they address.
unsafe fn gemm_raw(dst: *mut f32, dst_row_stride: usize, a: MatRef<'_>, b: MatRef<'_>, accumulate: bool, threads: usize) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    debug_assert_eq!(b.rows, k);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                // SAFETY: row i < m of the block, n values, is valid for writes and not
                // accessed elsewhere (this function's contract).
                unsafe { std::slice::from_raw_parts_mut(dst.add(i * dst_row_stride), n) }.fill(0.0);
            }
        }
        return;
    }
    if threads > 1 {
        // SAFETY: the same contract, passed on unchanged.
        return unsafe { split_across_threads(dst, dst_row_stride, a, b, accumulate, threads) };
    }
    let par = gemm::Parallelism::None;
    // SAFETY: m, n, k > 0. The views address only elements inside their slices, with strides
    // that fit isize ([`MatRef`]'s invariant, asserted at construction), and b has k rows;
    // `dst` covers the m×n block with row stride `dst_row_stride` ≤ isize::MAX, exclusively
    // for this call (this function's contract), so `gemm` neither reads nor writes outside
    // them and the output aliases neither input.
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
///
/// # Safety
///
/// The contract of [`gemm_raw`]: `b.rows == a.cols`, and `dst` is an exclusively held,
/// readable and writable `a.rows × b.cols` block with rows `dst_row_stride` (≥ `b.cols`, ≤
/// `isize::MAX`) apart.
unsafe fn split_across_threads(dst: *mut f32, dst_row_stride: usize, a: MatRef<'_>, b: MatRef<'_>, accumulate: bool, threads: usize) {
    use rayon::prelude::*;
    let (m, n) = (a.rows, b.cols);
    // Split the longer side (each block packs the whole of the other operand): row blocks in
    // multiples of the microkernel's 16 rows, column blocks in multiples of 8.
    let by_rows = m >= n;
    let (len, align) = if by_rows { (m, 16) } else { (n, 8) };
    let block = len.div_ceil(threads).next_multiple_of(align).max(align);
    // The blocks are disjoint sets of destination elements (`dst_row_stride` ≥ n, so rows do
    // not overlap); `gemm` writes through the raw pointer only.
    // SAFETY: `dst` is exclusively ours for this call (contract), and each task below accesses
    // only its own block of it.
    let out = unsafe { SyncPtr::from_raw(dst) };
    (0..len.div_ceil(block)).into_par_iter().for_each(|i| {
        let (s, e) = (i * block, ((i + 1) * block).min(len));
        if by_rows {
            // SAFETY: s < e ≤ m, so rows s..e are part of the caller's exclusively held block,
            // and no other task touches them; `a.rows(s, e)` keeps a's column count.
            unsafe { gemm_raw(out.get().add(s * dst_row_stride), dst_row_stride, a.rows(s, e), b, accumulate, 1) };
        } else {
            // SAFETY: s < e ≤ n, so columns s..e of every row are part of the caller's
            // exclusively held block, and no other task touches them; `b.cols(s, e)` keeps
            // b's row count.
            unsafe { gemm_raw(out.get().add(s), dst_row_stride, a, b.cols(s, e), accumulate, 1) };
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
            // SAFETY: `split` is an exclusively held m×n row-major block; y has k rows.
            unsafe { split_across_threads(split.as_mut_ptr(), n, MatRef::new(&x, m, k), MatRef::new(&y, k, n), true, 3) };
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

    #[test]
    fn transposed_product_equals_the_direct_one() {
        // A column-major left operand (the transpose of a row-major 37×29 matrix), a narrow
        // strided right operand, odd sizes that cross the transpose's blocks.
        let (m, k, n) = (29, 37, 11);
        let w: Vec<f32> = (0..k * m).map(|v| ((v * 7) % 17) as f32 - 8.0).collect();
        let x: Vec<f32> = (0..k * 2 * n).map(|v| ((v * 5) % 13) as f32 - 6.0).collect();
        let (a, b) = (MatRef::new(&w, k, m).t(), MatRef::new(&x, k, 2 * n).cols(n, 2 * n));
        assert!(a.is_column_major() && !a.t().is_column_major());
        let mut want = vec![0.0; m * n];
        matmul_serial(&mut want, a, b, false);
        let (mut got, mut tmp) = (vec![f32::NAN; m * n], Vec::new());
        matmul_serial_transposed(&mut got, a, b, &mut tmp);
        assert_eq!(got, want);
    }

    // The safe entry points check their bounds in every profile (predify-runtime builds its
    // dev/test profile without debug assertions): too-short slices panic instead of letting
    // `gemm` write or read out of bounds.

    #[test]
    #[should_panic(expected = "matmul: destination of 7 values too short for a 2×4 product")]
    fn matmul_rejects_a_short_destination() {
        let (a, b) = (vec![1.0; 6], vec![1.0; 12]);
        let mut c = vec![0.0; 7];
        matmul(&mut c, MatRef::new(&a, 2, 3), MatRef::new(&b, 3, 4), false);
    }

    #[test]
    #[should_panic(expected = "matmul: destination of 0 values too short for a 1×1 product")]
    fn matmul_serial_rejects_a_short_destination() {
        let a = vec![1.0; 3];
        matmul_serial(&mut [], MatRef::new(&a, 1, 3), MatRef::new(&a, 3, 1), true);
    }

    #[test]
    #[should_panic(expected = "matmul_block: destination of 12 values too short for a 2×4 block with row stride 10")]
    fn matmul_block_rejects_a_short_destination() {
        let (a, b) = (vec![1.0; 6], vec![1.0; 12]);
        let mut c = vec![0.0; 12];
        matmul_block(&mut c, 10, MatRef::new(&a, 2, 3), MatRef::new(&b, 3, 4), false);
    }

    #[test]
    #[should_panic(expected = "MatRef::new: 11 values cannot hold a 3×4 matrix")]
    fn matref_rejects_a_short_input() {
        let b = vec![1.0; 11];
        let _ = MatRef::new(&b, 3, 4);
    }

    #[test]
    #[should_panic(expected = "MatRef::new: 4 values cannot hold a 2×9223372036854775809 matrix")]
    fn matref_rejects_a_wrapping_size() {
        // 2 · (2⁶³ + 1) wraps to 2: an unchecked product would accept the slice.
        let _ = MatRef::new(&[0.0; 4], 2, (1 << 63) + 1);
    }

    #[test]
    #[should_panic(expected = "matmul: inner dimensions differ (2×3 times 2×4)")]
    fn matmul_rejects_mismatched_inner_dimensions() {
        let (a, b) = (vec![1.0; 6], vec![1.0; 8]);
        let mut c = vec![0.0; 8];
        matmul(&mut c, MatRef::new(&a, 2, 3), MatRef::new(&b, 2, 4), false);
    }

    #[test]
    #[should_panic(expected = "MatRef::rows: 1..3 out of 0..2")]
    fn views_reject_rows_past_the_end() {
        let a = vec![1.0; 6];
        let _ = MatRef::new(&a, 2, 3).rows(1, 3);
    }

    #[test]
    #[should_panic(expected = "MatRef::cols: 2..4 out of 0..3")]
    fn views_reject_columns_past_the_end() {
        let a = vec![1.0; 6];
        let _ = MatRef::new(&a, 2, 3).cols(2, 4);
    }
}
