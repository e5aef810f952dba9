//! 2-D transforms of real N×N tiles (N a power of two: 16 or 32 in [`super::fft_conv`]) to and
//! from their half spectra, [`LANES`] tiles at a time.
//!
//! The tiles of one call sit side by side (`[element][lane]`), so every butterfly is one vector
//! operation over the lanes (16 f32: one AVX-512 register, two AVX2 ones) instead of scalar
//! complex arithmetic per tile; the layout is also the one the per-bin GEMMs want (tiles
//! contiguous per bin). Radix-2 decimation in frequency: natural order in, bit-reversed order
//! out, undone by indexing on the way out, so there is no permutation pass.
//!
//! Spectra keep the non-redundant half: `N × (N/2 + 1)` bins, bin `kh·(N/2+1) + kw`, as
//! `[bins][LANES]` complex values.

use super::isa::{self, Isa};
pub use gemm::c32;

/// Tiles per transform call.
pub const LANES: usize = 16;

type V = [f32; LANES];
const ZV: V = [0.0; LANES];

/// Transforms of real N×N tiles, [`LANES`] at a time.
#[derive(Debug, Clone)]
pub struct Fft2 {
    n: usize,
    /// e^{−2πi·j/N}, j < N/2 (real and imaginary parts).
    tw: (Vec<f32>, Vec<f32>),
    /// Bit-reversal permutation of 0..N.
    rev: Vec<usize>,
}

/// Scratch buffers for [`Fft2`], one set per thread.
#[derive(Debug, Clone)]
pub struct Fft2Scratch {
    /// Row spectra, real and imaginary parts: `[N][N/2 + 1]` lane vectors each.
    rows: (Vec<V>, Vec<V>),
    /// One line being transformed: N lane vectors each.
    line: (Vec<V>, Vec<V>),
}

impl Fft2 {
    /// Transforms of N×N tiles; `None` unless N is a power of two ≥ 2.
    pub fn new(n: usize) -> Option<Self> {
        if n < 2 || !n.is_power_of_two() {
            return None;
        }
        let angle = |j: usize| -2.0 * std::f64::consts::PI * j as f64 / n as f64;
        let tw = ((0..n / 2).map(|j| angle(j).cos() as f32).collect(), (0..n / 2).map(|j| angle(j).sin() as f32).collect());
        let bits = n.trailing_zeros();
        let rev = (0..n).map(|i: usize| i.reverse_bits() >> (usize::BITS - bits)).collect();
        Some(Self { n, tw, rev })
    }

    /// The tile side N.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Bins per spectrum: N·(N/2 + 1).
    pub fn bins(&self) -> usize {
        self.n * (self.n / 2 + 1)
    }

    /// Scratch sized for this transform.
    pub fn scratch(&self) -> Fft2Scratch {
        let (n, h) = (self.n, self.n / 2 + 1);
        Fft2Scratch { rows: (vec![ZV; n * h], vec![ZV; n * h]), line: (vec![ZV; n], vec![ZV; n]) }
    }

    /// Scratch plus the two buffers a caller fills and reads: [`LANES`] tiles (`[N·N][LANES]`)
    /// and their spectra (`[bins][LANES]`), as one `for_each_init` set per thread.
    pub fn buffers(&self) -> (Fft2Scratch, Vec<f32>, Vec<c32>) {
        (self.scratch(), vec![0f32; self.n * self.n * LANES], vec![c32::new(0.0, 0.0); self.bins() * LANES])
    }

    /// Half spectra of [`LANES`] real tiles: `tiles` is `[N·N][LANES]` (element (i, j) of lane
    /// l at `(i·N + j)·LANES + l`), `spec` receives `[bins][LANES]`.
    ///
    /// # Panics
    ///
    /// If a buffer is shorter than that, or `sc` was made for another size.
    pub fn forward_real(&self, tiles: &[f32], spec: &mut [c32], sc: &mut Fft2Scratch) {
        self.forward_real_with(isa::active(), tiles, spec, sc)
    }

    /// [`Self::forward_real`] compiled for the instructions of `isa` (at most
    /// [`isa::detected`]).
    ///
    /// # Panics
    ///
    /// As [`Self::forward_real`], or if `isa` is above what this CPU supports.
    pub fn forward_real_with(&self, isa: Isa, tiles: &[f32], spec: &mut [c32], sc: &mut Fft2Scratch) {
        self.check(isa, sc);
        assert!(tiles.len() >= self.n * self.n * LANES && spec.len() >= self.bins() * LANES, "fft: buffer sizes");
        #[cfg(target_arch = "x86_64")]
        match isa {
            // SAFETY: the CPU supports the instructions of `isa` (checked above); the bodies
            // are safe code.
            Isa::Avx512 => return unsafe { self.forward_avx512(tiles, spec, sc) },
            Isa::Avx2Fma => return unsafe { self.forward_avx2(tiles, spec, sc) },
            Isa::Portable => {}
        }
        self.forward_body::<false>(tiles, spec, sc)
    }

    /// The real tiles whose half spectra are `spec` (`[bins][LANES]`), scaled by 1/N² (a true
    /// inverse), for the tile rows in `rows` only: `tiles` (`[N·N][LANES]`) gets those rows,
    /// the others are left as they are.
    ///
    /// # Panics
    ///
    /// If a buffer is too short, `rows` ends past N, or `sc` was made for another size.
    pub fn inverse_real_rows(&self, spec: &[c32], tiles: &mut [f32], sc: &mut Fft2Scratch, rows: std::ops::Range<usize>) {
        self.inverse_real_rows_with(isa::active(), spec, tiles, sc, rows)
    }

    /// [`Self::inverse_real_rows`] compiled for the instructions of `isa` (at most
    /// [`isa::detected`]).
    ///
    /// # Panics
    ///
    /// As [`Self::inverse_real_rows`], or if `isa` is above what this CPU supports.
    pub fn inverse_real_rows_with(&self, isa: Isa, spec: &[c32], tiles: &mut [f32], sc: &mut Fft2Scratch, rows: std::ops::Range<usize>) {
        self.check(isa, sc);
        assert!(tiles.len() >= self.n * self.n * LANES && spec.len() >= self.bins() * LANES && rows.end <= self.n, "fft: buffer sizes");
        #[cfg(target_arch = "x86_64")]
        match isa {
            // SAFETY: as in `forward_real_with`.
            Isa::Avx512 => return unsafe { self.inverse_avx512(spec, tiles, sc, rows) },
            Isa::Avx2Fma => return unsafe { self.inverse_avx2(spec, tiles, sc, rows) },
            Isa::Portable => {}
        }
        self.inverse_body::<false>(spec, tiles, sc, rows)
    }

    fn check(&self, isa: Isa, sc: &Fft2Scratch) {
        assert!(isa <= isa::detected(), "fft: {} is not supported by this CPU", isa.name());
        assert!(sc.line.0.len() == self.n && sc.rows.0.len() == self.n * (self.n / 2 + 1), "fft: scratch for another size");
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn forward_avx512(&self, tiles: &[f32], spec: &mut [c32], sc: &mut Fft2Scratch) {
        self.forward_body::<true>(tiles, spec, sc)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn forward_avx2(&self, tiles: &[f32], spec: &mut [c32], sc: &mut Fft2Scratch) {
        self.forward_body::<true>(tiles, spec, sc)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn inverse_avx512(&self, spec: &[c32], tiles: &mut [f32], sc: &mut Fft2Scratch, rows: std::ops::Range<usize>) {
        self.inverse_body::<true>(spec, tiles, sc, rows)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn inverse_avx2(&self, spec: &[c32], tiles: &mut [f32], sc: &mut Fft2Scratch, rows: std::ops::Range<usize>) {
        self.inverse_body::<true>(spec, tiles, sc, rows)
    }

    #[inline(always)]
    fn forward_body<const FUSED: bool>(&self, tiles: &[f32], spec: &mut [c32], sc: &mut Fft2Scratch) {
        let (n, h, rev) = (self.n, self.n / 2 + 1, &self.rev);
        let (rr, ri) = (&mut sc.rows.0, &mut sc.rows.1);
        let (lr, li) = (&mut sc.line.0, &mut sc.line.1);
        // Rows, two real rows per complex transform: z = x_r + i·x_{r+1}, then
        // X_r[k] = (Z[k] + conj Z[N−k]) / 2 and X_{r+1}[k] = (Z[k] − conj Z[N−k]) / 2i.
        for r in (0..n).step_by(2) {
            for j in 0..n {
                lr[j] = lane(tiles, r * n + j);
                li[j] = lane(tiles, (r + 1) * n + j);
            }
            self.dif::<FUSED>(lr, li, false);
            for k in 0..h {
                let (a, b) = (rev[k], rev[(n - k) % n]);
                for l in 0..LANES {
                    let (zr, zi, yr, yi) = (lr[a][l], li[a][l], lr[b][l], li[b][l]);
                    rr[r * h + k][l] = 0.5 * (zr + yr);
                    ri[r * h + k][l] = 0.5 * (zi - yi);
                    rr[(r + 1) * h + k][l] = 0.5 * (zi + yi);
                    ri[(r + 1) * h + k][l] = 0.5 * (yr - zr);
                }
            }
        }
        // Columns.
        for kw in 0..h {
            for kh in 0..n {
                lr[kh] = rr[kh * h + kw];
                li[kh] = ri[kh * h + kw];
            }
            self.dif::<FUSED>(lr, li, false);
            for kh in 0..n {
                let out = &mut spec[(kh * h + kw) * LANES..][..LANES];
                let (re, im) = (&lr[rev[kh]], &li[rev[kh]]);
                for (l, o) in out.iter_mut().enumerate() {
                    *o = c32::new(re[l], im[l]);
                }
            }
        }
    }

    #[inline(always)]
    fn inverse_body<const FUSED: bool>(&self, spec: &[c32], tiles: &mut [f32], sc: &mut Fft2Scratch, rows: std::ops::Range<usize>) {
        let (n, h, rev) = (self.n, self.n / 2 + 1, &self.rev);
        let (rr, ri) = (&mut sc.rows.0, &mut sc.rows.1);
        let (lr, li) = (&mut sc.line.0, &mut sc.line.1);
        // Columns: back to the rows' half spectra, only for the rows asked for.
        for kw in 0..h {
            for kh in 0..n {
                let src = &spec[(kh * h + kw) * LANES..][..LANES];
                for (l, v) in src.iter().enumerate() {
                    lr[kh][l] = v.re;
                    li[kh][l] = v.im;
                }
            }
            self.dif::<FUSED>(lr, li, true);
            for r in rows.clone() {
                rr[r * h + kw] = lr[rev[r]];
                ri[r * h + kw] = li[rev[r]];
            }
        }
        // Rows, two per transform: each row's spectrum is Hermitian (the row is real), so
        // F = A + i·B (each completed by symmetry) transforms back to a + i·b.
        let scale = 1.0 / (n * n) as f32;
        let mut r = rows.start;
        while r < rows.end {
            let pair = r + 1 < rows.end;
            let b_row = if pair { r + 1 } else { r };
            let keep = if pair { 1.0 } else { 0.0 };
            for k in 0..n {
                // Bins k ≥ N/2 + 1 are the conjugates of bins N − k.
                let (src, conj) = if k < h { (k, 1.0) } else { (n - k, -1.0) };
                let (a, b) = (r * h + src, b_row * h + src);
                for l in 0..LANES {
                    let (ar, ai) = (rr[a][l], conj * ri[a][l]);
                    let (br, bi) = (keep * rr[b][l], keep * conj * ri[b][l]);
                    lr[k][l] = ar - bi;
                    li[k][l] = ai + br;
                }
            }
            self.dif::<FUSED>(lr, li, true);
            for j in 0..n {
                let (re, im) = (&lr[rev[j]], &li[rev[j]]);
                for l in 0..LANES {
                    tiles[(r * n + j) * LANES + l] = re[l] * scale;
                }
                if pair {
                    for l in 0..LANES {
                        tiles[((r + 1) * n + j) * LANES + l] = im[l] * scale;
                    }
                }
            }
            r += 2;
        }
    }

    /// In-place complex transform of N lane vectors (`X[k] = Σ x[j]·e^{∓2πi·jk/N}`, the
    /// inverse without its 1/N), natural order in, bit-reversed order out.
    #[inline(always)]
    fn dif<const FUSED: bool>(&self, re: &mut [V], im: &mut [V], inverse: bool) {
        let n = self.n;
        let sign = if inverse { -1.0 } else { 1.0 };
        let (mut half, mut step) = (n / 2, 1);
        while half >= 1 {
            for start in (0..n).step_by(2 * half) {
                for j in 0..half {
                    let (a, b) = (start + j, start + j + half);
                    let (wr, wi) = (self.tw.0[j * step], sign * self.tw.1[j * step]);
                    let (ar, ai, br, bi) = (re[a], im[a], re[b], im[b]);
                    for l in 0..LANES {
                        let (dr, di) = (ar[l] - br[l], ai[l] - bi[l]);
                        re[a][l] = ar[l] + br[l];
                        im[a][l] = ai[l] + bi[l];
                        // (a − b)·w; the first twiddle of every block is 1.
                        if j == 0 {
                            re[b][l] = dr;
                            im[b][l] = di;
                        } else if FUSED {
                            re[b][l] = dr.mul_add(wr, -(di * wi));
                            im[b][l] = dr.mul_add(wi, di * wr);
                        } else {
                            re[b][l] = dr * wr - di * wi;
                            im[b][l] = dr * wi + di * wr;
                        }
                    }
                }
            }
            half /= 2;
            step *= 2;
        }
    }
}

/// Lane vector `e` of a `[elements][LANES]` buffer.
#[inline(always)]
fn lane(buf: &[f32], e: usize) -> V {
    buf[e * LANES..][..LANES].try_into().expect("a lane vector")
}

#[cfg(test)]
mod tests {
    use super::super::test_data::pseudo;
    use super::*;

    /// Half spectrum of lane `l` of `tiles` by the definition, in f64.
    fn naive(tiles: &[f32], n: usize, l: usize) -> Vec<(f64, f64)> {
        let h = n / 2 + 1;
        let mut out = vec![(0.0, 0.0); n * h];
        for kh in 0..n {
            for kw in 0..h {
                let (mut re, mut im) = (0.0, 0.0);
                for i in 0..n {
                    for j in 0..n {
                        let a = -2.0 * std::f64::consts::PI * ((i * kh + j * kw) % n) as f64 / n as f64;
                        let x = tiles[(i * n + j) * LANES + l] as f64;
                        re += x * a.cos();
                        im += x * a.sin();
                    }
                }
                out[kh * h + kw] = (re, im);
            }
        }
        out
    }

    #[test]
    fn matches_the_definition_and_round_trips_at_every_level() {
        for n in [2, 4, 16, 32] {
            let f = Fft2::new(n).unwrap();
            let mut sc = f.scratch();
            // Each lane its own tile; lane 3 all zero, lane 5 zero below row n/2.
            let mut tiles = pseudo(n * n * LANES, n as u32);
            for e in 0..n * n {
                tiles[e * LANES + 3] = 0.0;
                if e / n >= n / 2 {
                    tiles[e * LANES + 5] = 0.0;
                }
            }
            let want: Vec<_> = (0..LANES).map(|l| naive(&tiles, n, l)).collect();
            for level in isa::available() {
                let mut spec = vec![c32::new(f32::NAN, f32::NAN); f.bins() * LANES];
                f.forward_real_with(level, &tiles, &mut spec, &mut sc);
                for (l, want) in want.iter().enumerate() {
                    for (b, &(re, im)) in want.iter().enumerate() {
                        let got = spec[b * LANES + l];
                        let err = ((got.re as f64 - re).powi(2) + (got.im as f64 - im).powi(2)).sqrt();
                        assert!(err < 1e-5 * (n * n) as f64, "{} n={n} lane {l} bin {b}: {got} vs ({re}, {im})", level.name());
                    }
                }
                // Back again, whole tiles and an odd range of rows (the rest untouched).
                let mut back = vec![f32::NAN; tiles.len()];
                f.inverse_real_rows_with(level, &spec, &mut back, &mut sc, 0..n);
                for (x, y) in back.iter().zip(&tiles) {
                    assert!((x - y).abs() < 1e-5, "{} n={n}: round trip {x} vs {y}", level.name());
                }
                let (lo, hi) = (1.min(n - 1), (n / 2 + 1).min(n));
                let mut part = vec![7f32; tiles.len()];
                f.inverse_real_rows_with(level, &spec, &mut part, &mut sc, lo..hi);
                for (e, (x, y)) in part.chunks(LANES).zip(back.chunks(LANES)).enumerate() {
                    if (lo..hi).contains(&(e / n)) {
                        assert!(x.iter().zip(y).all(|(p, q)| (p - q).abs() < 1e-5), "{} n={n}: rows {lo}..{hi}", level.name());
                    } else {
                        assert!(x.iter().all(|&p| p == 7.0));
                    }
                }
            }
        }
        assert!(Fft2::new(12).is_none() && Fft2::new(1).is_none());
    }

    #[test]
    fn product_of_spectra_is_the_circular_convolution() {
        let n = 16;
        let f = Fft2::new(n).unwrap();
        let mut sc = f.scratch();
        let a = pseudo(n * n * LANES, 7);
        // One small kernel per lane.
        let mut k = vec![0f32; n * n * LANES];
        for (e, v) in pseudo(3 * 2 * LANES, 8).chunks(LANES).enumerate() {
            k[((e / 3) * n + e % 3) * LANES..][..LANES].copy_from_slice(v);
        }
        let (mut sa, mut sk) = (vec![c32::new(0.0, 0.0); f.bins() * LANES], vec![c32::new(0.0, 0.0); f.bins() * LANES]);
        f.forward_real(&a, &mut sa, &mut sc);
        f.forward_real(&k, &mut sk, &mut sc);
        let prod: Vec<c32> = sa.iter().zip(&sk).map(|(p, q)| p * q).collect();
        let mut conv = vec![0f32; n * n * LANES];
        f.inverse_real_rows(&prod, &mut conv, &mut sc, 0..n);
        for l in 0..LANES {
            for r in 0..n {
                for c in 0..n {
                    let mut want = 0.0;
                    for i in 0..n {
                        for j in 0..n {
                            want += a[(i * n + j) * LANES + l] * k[(((r + n - i) % n) * n + (c + n - j) % n) * LANES + l];
                        }
                    }
                    assert!((conv[(r * n + c) * LANES + l] - want).abs() < 1e-4, "lane {l} ({r},{c})");
                }
            }
        }
    }
}
