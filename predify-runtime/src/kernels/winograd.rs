//! Winograd minimal-filtering transforms F(m, r) and their 2-D application to many tiles at
//! once, for the Winograd convolution of [`super::winograd_conv`].
//!
//! A 1-D correlation of n = m + r − 1 inputs with an r-tap kernel, giving m outputs, is
//! `y = Aᵀ[(G·g) ⊙ (Bᵀ·d)]`: the kernel and the data are evaluated at n points (0, ±1, ±2,
//! ±½, …, ∞), multiplied pointwise and interpolated back. By the transposition principle, with
//! `V_k` the n×k evaluation (Vandermonde) matrix at those points: `Aᵀ = V_mᵀ`, `G = V_r`,
//! `Bᵀ = V_nᵀ⁻¹`. Nested along both axes this needs n² products per m×m outputs instead of
//! m²r² (F(2×2, 7×7): 64 against 196; F(4×4, 3×3): 36 against 144). The matrices are built here in f64 from the points (not
//! tabulated), with each evaluation row scaled so that G and Bᵀ have comparable magnitudes
//! (measured: 1.6e-5 relative error of F(2×2, 7×7) over 512 f32 channels, against 1.4e-7 for
//! the direct sum).

use super::isa::{self, Isa};

/// Largest tile side n = m + r − 1 the point set supports (seven finite points and ∞).
pub const MAX_N: usize = 8;

/// The finite evaluation points, in the order they are taken (∞ comes last).
const POINTS: [f64; 7] = [0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5];

/// The transform matrices of F(m, r), row-major, in f32.
#[derive(Debug, Clone, PartialEq)]
pub struct Transforms {
    /// Outputs per tile and axis m.
    pub m: usize,
    /// Kernel taps r.
    pub taps: usize,
    /// Tile side n = m + r − 1.
    pub n: usize,
    /// Kernel transform G, n × r.
    pub g: Vec<f32>,
    /// Its transpose Gᵀ (the weight gradient's), r × n.
    pub gt: Vec<f32>,
    /// Data transform Bᵀ, n × n.
    pub bt: Vec<f32>,
    /// Its transpose B (the adjoint's data transform), n × n.
    pub b: Vec<f32>,
    /// Output transform Aᵀ, m × n.
    pub at: Vec<f32>,
    /// Its transpose A (the adjoint's output transform), n × m.
    pub a: Vec<f32>,
}

impl Transforms {
    /// The transforms of F(m, taps), `None` unless m ≥ 1, taps ≥ 2 and m + taps − 1 ≤ [`MAX_N`].
    pub fn new(m: usize, taps: usize) -> Option<Self> {
        if m == 0 || taps < 2 || m + taps - 1 > MAX_N {
            return None;
        }
        let n = m + taps - 1;
        let (vn, vm, vr) = (vandermonde(n, n), vandermonde(n, m), vandermonde(n, taps));
        let inv = invert(&vn, n)?;
        // Bᵀ = (V_n⁻¹)ᵀ; G = V_r; Aᵀ = V_mᵀ.
        let mut bt: Vec<f64> = (0..n * n).map(|i| inv[(i % n) * n + i / n]).collect();
        let mut g = vr;
        for j in 0..n {
            let max = |row: &[f64]| row.iter().fold(0f64, |m, v| m.max(v.abs()));
            let s = (max(&bt[j * n..][..n]) / max(&g[j * taps..][..taps])).sqrt();
            g[j * taps..][..taps].iter_mut().for_each(|v| *v *= s);
            bt[j * n..][..n].iter_mut().for_each(|v| *v /= s);
        }
        let at: Vec<f64> = (0..m * n).map(|i| vm[(i % n) * m + i / n]).collect();
        let f = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
        Some(Self {
            m,
            taps,
            n,
            gt: f(&transpose(&g, n, taps)),
            g: f(&g),
            b: f(&transpose(&bt, n, n)),
            bt: f(&bt),
            a: f(&transpose(&at, m, n)),
            at: f(&at),
        })
    }
}

/// Rows `[p⁰, p¹, …, p^{k−1}]` for the first n − 1 points, and `[0, …, 0, 1]` for ∞.
fn vandermonde(n: usize, k: usize) -> Vec<f64> {
    let mut v = vec![0f64; n * k];
    for (j, &p) in POINTS[..n - 1].iter().enumerate() {
        for i in 0..k {
            v[j * k + i] = p.powi(i as i32);
        }
    }
    v[(n - 1) * k + k - 1] = 1.0;
    v
}

fn transpose(x: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    (0..rows * cols).map(|i| x[(i % rows) * cols + i / rows]).collect()
}

/// Gauss–Jordan inverse with partial pivoting; `None` if singular.
fn invert(x: &[f64], n: usize) -> Option<Vec<f64>> {
    let mut a = x.to_vec();
    let mut inv: Vec<f64> = (0..n * n).map(|i| if i / n == i % n { 1.0 } else { 0.0 }).collect();
    for c in 0..n {
        let p = (c..n).max_by(|&i, &j| a[i * n + c].abs().total_cmp(&a[j * n + c].abs()))?;
        if a[p * n + c].abs() < 1e-12 {
            return None;
        }
        for k in 0..n {
            a.swap(c * n + k, p * n + k);
            inv.swap(c * n + k, p * n + k);
        }
        let d = a[c * n + c];
        for k in 0..n {
            a[c * n + k] /= d;
            inv[c * n + k] /= d;
        }
        for r in (0..n).filter(|&r| r != c) {
            let f = a[r * n + c];
            for k in 0..n {
                a[r * n + k] -= f * a[c * n + k];
                inv[r * n + k] -= f * inv[c * n + k];
            }
        }
    }
    Some(inv)
}

/// `out[i][j][t] = Σ_a Σ_b L[i][a]·L[j][b]·x[a][b][t]` for every lane t < `lanes`: the
/// two-sided transform `L·X·Lᵀ` of `lanes` tiles at once (L is q × p, X p × p, out q × q).
///
/// `x[a][b]` is the lane row at `(a·p + b)·x_stride`; `out[i][j]` the one at `(i·q + j)·lanes`;
/// `tmp` holds q·p·lanes values. The lanes are the innermost loop, so the compiler vectorises
/// them (with the widest instructions [`isa::active`] allows).
///
/// # Panics
///
/// If a buffer is too short for these sizes.
#[allow(clippy::too_many_arguments)]
pub fn sandwich(l: &[f32], q: usize, p: usize, x: &[f32], x_stride: usize, lanes: usize, tmp: &mut [f32], out: &mut [f32]) {
    sandwich_with(isa::active(), l, q, p, x, x_stride, lanes, tmp, out)
}

/// [`sandwich`] compiled for the instructions of `isa` (at most [`isa::detected`]).
///
/// # Panics
///
/// As [`sandwich`], or if `isa` is above what this CPU supports.
#[allow(clippy::too_many_arguments)]
pub fn sandwich_with(isa: Isa, l: &[f32], q: usize, p: usize, x: &[f32], x_stride: usize, lanes: usize, tmp: &mut [f32], out: &mut [f32]) {
    assert!(isa <= isa::detected(), "winograd: {} is not supported by this CPU", isa.name());
    assert!(l.len() >= q * p && tmp.len() >= q * p * lanes && out.len() >= q * q * lanes, "winograd: buffer sizes");
    assert!(p == 0 || lanes == 0 || x.len() >= (p * p - 1) * x_stride + lanes, "winograd: input size");
    #[cfg(target_arch = "x86_64")]
    match isa {
        // SAFETY: the CPU supports the instructions of `isa` (asserted above); the bodies are
        // safe code.
        Isa::Avx512 => return unsafe { sandwich_avx512(l, q, p, x, x_stride, lanes, tmp, out) },
        Isa::Avx2Fma => return unsafe { sandwich_avx2(l, q, p, x, x_stride, lanes, tmp, out) },
        Isa::Portable => {}
    }
    sandwich_body::<false>(l, q, p, x, x_stride, lanes, tmp, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn sandwich_avx512(l: &[f32], q: usize, p: usize, x: &[f32], xs: usize, lanes: usize, tmp: &mut [f32], out: &mut [f32]) {
    sandwich_body::<true>(l, q, p, x, xs, lanes, tmp, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn sandwich_avx2(l: &[f32], q: usize, p: usize, x: &[f32], xs: usize, lanes: usize, tmp: &mut [f32], out: &mut [f32]) {
    sandwich_body::<true>(l, q, p, x, xs, lanes, tmp, out)
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn sandwich_body<const FUSED: bool>(l: &[f32], q: usize, p: usize, x: &[f32], xs: usize, lanes: usize, tmp: &mut [f32], out: &mut [f32]) {
    // tmp[i][b] = Σ_a L[i][a]·x[a][b]; out[i][j] = Σ_b L[j][b]·tmp[i][b].
    for i in 0..q {
        for b in 0..p {
            let t = &mut tmp[(i * p + b) * lanes..][..lanes];
            t.fill(0.0);
            for a in 0..p {
                let c = l[i * p + a];
                axpy::<FUSED>(t, c, &x[(a * p + b) * xs..][..lanes]);
            }
        }
    }
    for i in 0..q {
        for j in 0..q {
            let o = &mut out[(i * q + j) * lanes..][..lanes];
            o.fill(0.0);
            for b in 0..p {
                let c = l[j * p + b];
                axpy::<FUSED>(o, c, &tmp[(i * p + b) * lanes..][..lanes]);
            }
        }
    }
}

/// `y += c·x`, fused where the instructions have FMA (`mul_add` without them is a slow library
/// call), skipping zero coefficients (a third of Bᵀ's).
#[inline(always)]
fn axpy<const FUSED: bool>(y: &mut [f32], c: f32, x: &[f32]) {
    if c != 0.0 {
        for (y, x) in y.iter_mut().zip(x) {
            *y = if FUSED { c.mul_add(*x, *y) } else { *y + c * *x };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_data::pseudo;
    use super::*;

    #[test]
    fn one_dimensional_transforms_are_exact() {
        for (m, taps) in (1..MAX_N).flat_map(|m| (2..=MAX_N + 1 - m).map(move |r| (m, r))) {
            let t = Transforms::new(m, taps).unwrap();
            let n = t.n;
            let (d, g) = (pseudo(n, 1), pseudo(taps, 2));
            let gg: Vec<f64> = (0..n).map(|j| (0..taps).map(|k| t.g[j * taps + k] as f64 * g[k] as f64).sum()).collect();
            let dd: Vec<f64> = (0..n).map(|j| (0..n).map(|u| t.bt[j * n + u] as f64 * d[u] as f64).sum()).collect();
            for i in 0..m {
                let y: f64 = (0..n).map(|j| t.at[i * n + j] as f64 * gg[j] * dd[j]).sum();
                let want: f64 = (0..taps).map(|k| d[i + k] as f64 * g[k] as f64).sum();
                assert!((y - want).abs() < 1e-4, "F({m}, {taps}), output {i}: {y} vs {want}");
            }
            assert_eq!(t.b, (0..n * n).map(|i| t.bt[(i % n) * n + i / n]).collect::<Vec<_>>());
            assert_eq!(t.a, (0..n * m).map(|i| t.at[(i % m) * n + i / m]).collect::<Vec<_>>());
            assert_eq!(t.gt, (0..taps * n).map(|i| t.g[(i % n) * taps + i / n]).collect::<Vec<_>>());
        }
        assert!(Transforms::new(2, 1).is_none() && Transforms::new(0, 3).is_none() && Transforms::new(2, 8).is_none());
    }

    #[test]
    fn sandwich_matches_the_matrix_product_at_every_level() {
        let (q, p, lanes, xs) = (3, 5, 19, 23);
        let l = pseudo(q * p, 3);
        let x = pseudo((p * p - 1) * xs + lanes, 4);
        for level in isa::available() {
            let (mut tmp, mut out) = (vec![f32::NAN; q * p * lanes], vec![f32::NAN; q * q * lanes]);
            sandwich_with(level, &l, q, p, &x, xs, lanes, &mut tmp, &mut out);
            for i in 0..q {
                for j in 0..q {
                    for t in 0..lanes {
                        let want: f32 = (0..p).flat_map(|a| (0..p).map(move |b| (a, b))).map(|(a, b)| l[i * p + a] * l[j * p + b] * x[(a * p + b) * xs + t]).sum();
                        let got = out[(i * q + j) * lanes + t];
                        assert!((got - want).abs() < 1e-4, "{}: ({i},{j},{t}) {got} vs {want}", level.name());
                    }
                }
            }
        }
    }
}
