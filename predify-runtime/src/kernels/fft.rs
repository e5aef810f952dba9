//! Small power-of-two FFTs: a radix-2 complex transform and the 2-D real-tile transforms that
//! the FFT convolution ([`super::fft_conv`]) runs on N×N tiles (N = 16 or 32).
//!
//! Spectra of real N×N tiles keep the non-redundant half: `N × (N/2 + 1)` bins, bin
//! `kh·(N/2+1) + kw`.

pub use gemm::c32;

/// A radix-2 decimation-in-time plan for one length.
#[derive(Debug, Clone)]
pub struct Fft {
    n: usize,
    /// e^{−2πi·j/n}, j < n/2.
    twiddles: Vec<c32>,
    /// Their conjugates (the inverse transform's twiddles).
    inverse_twiddles: Vec<c32>,
    /// Bit-reversal permutation.
    rev: Vec<usize>,
}

impl Fft {
    /// A plan for length `n`; `None` unless `n` is a power of two ≥ 2.
    pub fn new(n: usize) -> Option<Self> {
        if n < 2 || !n.is_power_of_two() {
            return None;
        }
        let bits = n.trailing_zeros();
        let twiddles: Vec<c32> = (0..n / 2)
            .map(|j| {
                let a = -2.0 * std::f64::consts::PI * j as f64 / n as f64;
                c32::new(a.cos() as f32, a.sin() as f32)
            })
            .collect();
        let rev = (0..n).map(|i| i.reverse_bits() >> (usize::BITS - bits)).collect();
        let inverse_twiddles = twiddles.iter().map(|w: &c32| w.conj()).collect();
        Some(Self { n, twiddles, inverse_twiddles, rev })
    }

    /// The transform length.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Always false (a plan has length ≥ 2); for clippy's `len` convention.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// In-place forward transform `X[k] = Σ x[j]·e^{−2πi·jk/n}` of `data[..n]`.
    pub fn forward(&self, data: &mut [c32]) {
        self.run(data, false);
    }

    /// In-place inverse transform without the 1/n scale: `x[j] = Σ X[k]·e^{+2πi·jk/n}`.
    pub fn inverse(&self, data: &mut [c32]) {
        self.run(data, true);
    }

    fn run(&self, a: &mut [c32], inverse: bool) {
        let n = self.n;
        let tw = if inverse { &self.inverse_twiddles } else { &self.twiddles };
        let a = &mut a[..n];
        for i in 0..n {
            let j = self.rev[i];
            if i < j {
                a.swap(i, j);
            }
        }
        let mut len = 2;
        while len <= n {
            let half = len / 2;
            let step = n / len;
            for start in (0..n).step_by(len) {
                let (lo, hi) = a[start..start + len].split_at_mut(half);
                for (j, (x, y)) in lo.iter_mut().zip(hi.iter_mut()).enumerate() {
                    let v = *y * tw[j * step];
                    let u = *x;
                    *x = u + v;
                    *y = u - v;
                }
            }
            len *= 2;
        }
    }
}

/// 2-D transforms of real N×N tiles to and from their half spectra.
#[derive(Debug, Clone)]
pub struct Fft2 {
    fft: Fft,
}

/// Scratch buffers for [`Fft2`], one set per thread.
#[derive(Debug, Clone)]
pub struct Fft2Scratch {
    rows: Vec<c32>,
    line: Vec<c32>,
}

impl Fft2 {
    /// Transforms of N×N tiles; `None` unless N is a power of two ≥ 2.
    pub fn new(n: usize) -> Option<Self> {
        Some(Self { fft: Fft::new(n)? })
    }

    /// The tile side N.
    pub fn n(&self) -> usize {
        self.fft.len()
    }

    /// Bins per spectrum: N·(N/2 + 1).
    pub fn bins(&self) -> usize {
        let n = self.n();
        n * (n / 2 + 1)
    }

    /// Scratch sized for this transform.
    pub fn scratch(&self) -> Fft2Scratch {
        let n = self.n();
        Fft2Scratch { rows: vec![c32::new(0.0, 0.0); n * (n / 2 + 1)], line: vec![c32::new(0.0, 0.0); n] }
    }

    /// Half spectrum of the real tile `tile` (N×N, row-major) into `spec` (`bins()` values).
    pub fn forward_real(&self, tile: &[f32], spec: &mut [c32], sc: &mut Fft2Scratch) {
        let n = self.n();
        let h = n / 2 + 1;
        // Rows, two real rows per complex transform (z = x_r + i·x_{r+1}); pairs of all-zero
        // rows, common at tile borders, stay zero.
        for r in (0..n).step_by(2) {
            let (x0, x1) = (&tile[r * n..(r + 1) * n], &tile[(r + 1) * n..(r + 2) * n]);
            if x0.iter().chain(x1).all(|&v| v == 0.0) {
                sc.rows[r * h..(r + 2) * h].fill(c32::new(0.0, 0.0));
                continue;
            }
            for ((l, &a), &b) in sc.line.iter_mut().zip(x0).zip(x1) {
                *l = c32::new(a, b);
            }
            self.fft.forward(&mut sc.line);
            // X_r[k] = (Z[k] + conj Z[n−k]) / 2, X_{r+1}[k] = (Z[k] − conj Z[n−k]) / 2i.
            for k in 0..h {
                let (z, zc) = (sc.line[k], sc.line[(n - k) % n].conj());
                let (p, q) = (z + zc, z - zc);
                sc.rows[r * h + k] = c32::new(0.5 * p.re, 0.5 * p.im);
                sc.rows[(r + 1) * h + k] = c32::new(0.5 * q.im, -0.5 * q.re);
            }
        }
        // Columns.
        for kw in 0..h {
            for r in 0..n {
                sc.line[r] = sc.rows[r * h + kw];
            }
            self.fft.forward(&mut sc.line);
            for kh in 0..n {
                spec[kh * h + kw] = sc.line[kh];
            }
        }
    }

    /// The real tile (N×N) whose half spectrum is `spec`, scaled by 1/N² (a true inverse).
    pub fn inverse_real(&self, spec: &[c32], tile: &mut [f32], sc: &mut Fft2Scratch) {
        self.inverse_real_rows(spec, tile, sc, 0..self.n());
    }

    /// [`Self::inverse_real`] for the tile rows in `rows` only (the others are left as they
    /// are): callers that keep part of a tile skip the rest of the row transforms.
    pub fn inverse_real_rows(&self, spec: &[c32], tile: &mut [f32], sc: &mut Fft2Scratch, rows: std::ops::Range<usize>) {
        let n = self.n();
        let h = n / 2 + 1;
        for kw in 0..h {
            for kh in 0..n {
                sc.line[kh] = spec[kh * h + kw];
            }
            self.fft.inverse(&mut sc.line);
            for r in 0..n {
                sc.rows[r * h + kw] = sc.line[r];
            }
        }
        let scale = 1.0 / (n * n) as f32;
        // Each row's spectrum is Hermitian (the row is real). Two rows per transform:
        // F = A + i·B (each completed by symmetry) transforms back to a + i·b.
        let mut r = rows.start;
        while r < rows.end {
            let pair = r + 1 < rows.end;
            let a = &sc.rows[r * h..(r + 1) * h];
            let zero = [c32::new(0.0, 0.0); 1];
            let b = if pair { &sc.rows[(r + 1) * h..(r + 2) * h] } else { &zero[..0] };
            let bk = |k: usize| if pair { b[k] } else { c32::new(0.0, 0.0) };
            for (k, (l, &x)) in sc.line[..h].iter_mut().zip(a).enumerate() {
                let y = bk(k);
                *l = c32::new(x.re - y.im, x.im + y.re);
            }
            for k in h..n {
                let (x, y) = (a[n - k].conj(), bk(n - k).conj());
                sc.line[k] = c32::new(x.re - y.im, x.im + y.re);
            }
            self.fft.inverse(&mut sc.line);
            for (t, l) in tile[r * n..(r + 1) * n].iter_mut().zip(&sc.line) {
                *t = l.re * scale;
            }
            if pair {
                for (t, l) in tile[(r + 1) * n..(r + 2) * n].iter_mut().zip(&sc.line) {
                    *t = l.im * scale;
                }
            }
            r += 2;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_naive_dft() {
        for n in [2, 8, 16, 32] {
            let f = Fft::new(n).unwrap();
            let x: Vec<c32> = (0..n).map(|i| c32::new((i as f32 * 0.7).sin(), (i as f32 * 0.3).cos())).collect();
            let mut y = x.clone();
            f.forward(&mut y);
            for (k, yk) in y.iter().enumerate() {
                let mut want = c32::new(0.0, 0.0);
                for (j, xj) in x.iter().enumerate() {
                    let a = -2.0 * std::f32::consts::PI * (j * k) as f32 / n as f32;
                    want += xj * c32::new(a.cos(), a.sin());
                }
                assert!((yk - want).norm_sqr().sqrt() < 1e-4 * n as f32, "n={n} k={k}: {yk} vs {want}");
            }
            f.inverse(&mut y);
            for (a, b) in y.iter().zip(&x) {
                assert!((a / n as f32 - b).norm_sqr().sqrt() < 1e-5);
            }
        }
        assert!(Fft::new(12).is_none());
    }

    #[test]
    fn real_tiles_round_trip_and_convolve() {
        let f = Fft2::new(16).unwrap();
        let mut sc = f.scratch();
        let a: Vec<f32> = (0..256).map(|i| if i / 16 < 10 { (i as f32 * 0.37).sin() } else { 0.0 }).collect();
        let mut spec = vec![c32::new(0.0, 0.0); f.bins()];
        f.forward_real(&a, &mut spec, &mut sc);
        let mut back = vec![0f32; 256];
        f.inverse_real(&spec, &mut back, &mut sc);
        for (x, y) in a.iter().zip(&back) {
            assert!((x - y).abs() < 1e-5);
        }
        // An odd range of rows: those rows exactly, the others untouched.
        let mut part = vec![7f32; 256];
        f.inverse_real_rows(&spec, &mut part, &mut sc, 3..8);
        for (i, (x, y)) in part.iter().zip(&back).enumerate() {
            if (3..8).contains(&(i / 16)) {
                assert!((x - y).abs() < 1e-5);
            } else {
                assert_eq!(*x, 7.0);
            }
        }
        // Product of spectra = circular convolution.
        let k: Vec<f32> = (0..256).map(|i| if i % 16 < 3 && i / 16 < 2 { 1.0 + i as f32 * 0.01 } else { 0.0 }).collect();
        let mut ks = vec![c32::new(0.0, 0.0); f.bins()];
        f.forward_real(&k, &mut ks, &mut sc);
        let prod: Vec<c32> = spec.iter().zip(&ks).map(|(p, q)| p * q).collect();
        let mut conv = vec![0f32; 256];
        f.inverse_real(&prod, &mut conv, &mut sc);
        for r in 0..16 {
            for c in 0..16 {
                let mut want = 0.0;
                for i in 0..16 {
                    for j in 0..16 {
                        want += a[i * 16 + j] * k[((r + 16 - i) % 16) * 16 + (c + 16 - j) % 16];
                    }
                }
                assert!((conv[r * 16 + c] - want).abs() < 1e-4, "({r},{c})");
            }
        }
    }
}
