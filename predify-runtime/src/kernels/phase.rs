//! Stride-phase (polyphase) decomposition of strided transposed convolutions and their adjoints.
//!
//! With stride s, the big-grid points whose index o satisfies (o + padding) mod s = r are fed
//! only by the kernel taps k ≡ r (mod s). Each such phase is therefore a stride-1 convolution
//! between the small grid and a sub-lattice of the big grid, with a sub-kernel of ⌈(k−r)/s⌉ taps
//! per axis. Computing phases with im2col on contiguous rows and one GEMM each avoids the
//! scattered col2im of a k²-times larger column buffer (PVGG16's k10/k14, stride-2 predictors).

use super::conv::{big_to_small, ConvShape};
use super::ConvGeometry;

/// One phase on one axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AxisPhase {
    /// Residue r: big index o = (q0 + j)·s + r − p.
    pub r: usize,
    /// First phase-lattice coordinate q0 with o ≥ 0.
    pub q0: usize,
    /// Number of big-grid points in the phase.
    pub len: usize,
    /// Number of kernel taps k ≡ r (mod s).
    pub taps: usize,
}

pub(crate) fn axis_phases(g: &ConvGeometry, a: usize) -> Vec<AxisPhase> {
    let (s, p, k, big) = (g.stride[a], g.padding[a], g.kernel[a], g.big[a]);
    (0..s)
        .map(|r| {
            let q0 = if p >= r { (p - r).div_ceil(s) } else { 0 }; // ⌈(p − r)/s⌉, ≥ 0
            let q1 = (big + p + s - 1 - r) / s; // ⌈(big + p − r)/s⌉
            let taps = if r < k { (k - r).div_ceil(s) } else { 0 };
            AxisPhase { r, q0, len: q1.saturating_sub(q0), taps }
        })
        .collect()
}

/// Whether the phase path applies: unit dilation, some stride > 1, and every phase's stride-1
/// sub-problem expressible with non-negative padding.
pub fn applicable(g: &ConvGeometry) -> bool {
    g.dilation == [1, 1, 1]
        && g.stride.iter().any(|&s| s > 1)
        && (0..3).all(|a| axis_phases(g, a).iter().all(|ph| ph.taps == 0 || ph.q0 < ph.taps))
}

/// The stride phases of a 2-D layer (trivial depth axis, no groups, unit dilation) when they
/// all have the same shape: what the FFT and Winograd paths need. Stride 1 is one phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UniformPhases {
    /// Sub-kernel taps per axis (H, W).
    pub taps: [usize; 2],
    /// First phase-lattice coordinate q0 per axis.
    pub q0: [usize; 2],
    /// Phase lattice per axis.
    pub len: [usize; 2],
    /// Number of phases (stride_h · stride_w).
    pub count: usize,
}

/// [`UniformPhases`] of `s`, if its phases are uniform and each is a stride-1 correlation with
/// non-negative padding (q0 < taps).
pub(crate) fn uniform_2d(s: &ConvShape) -> Option<UniformPhases> {
    let g = &s.geom;
    let trivial_d = g.big[0] == 1 && g.small[0] == 1 && g.kernel[0] == 1 && g.stride[0] == 1 && g.padding[0] == 0;
    if s.groups != 1 || !trivial_d || g.dilation != [1, 1, 1] {
        return None;
    }
    let phs = phases(g);
    let first = *phs.first()?;
    let uniform = |a: usize| phs.iter().all(|p| (p[a].taps, p[a].q0, p[a].len) == (first[a].taps, first[a].q0, first[a].len));
    if phs.len() != g.stride[1] * g.stride[2] || !uniform(1) || !uniform(2) {
        return None;
    }
    let u = UniformPhases {
        taps: [first[1].taps, first[2].taps],
        q0: [first[1].q0, first[2].q0],
        len: [first[1].len, first[2].len],
        count: phs.len(),
    };
    (u.taps[0] > u.q0[0] && u.taps[1] > u.q0[1]).then_some(u)
}

/// Iterate over the 3-D phase combinations with at least one tap on every axis.
pub(crate) fn phases(g: &ConvGeometry) -> Vec<[AxisPhase; 3]> {
    let (pd, ph, pw) = (axis_phases(g, 0), axis_phases(g, 1), axis_phases(g, 2));
    let mut v = Vec::new();
    for a in &pd {
        for b in &ph {
            for c in &pw {
                if a.taps > 0 && b.taps > 0 && c.taps > 0 && a.len > 0 && b.len > 0 && c.len > 0 {
                    v.push([*a, *b, *c]);
                }
            }
        }
    }
    v
}

/// The weight's flat kernel tap (within one kernel) at tap `u` (H, W) of phase `ph`'s
/// sub-kernel as [`sub_kernel`] lays it out with `flip` (taps reversed), for 2-D layers (trivial
/// depth axis): `(r_h + s_h·(t_h − 1 − u_h), r_w + s_w·(t_w − 1 − u_w))`.
pub(crate) fn flipped_tap(g: &ConvGeometry, ph: &[AxisPhase; 3], u: [usize; 2]) -> usize {
    let k = |a: usize, m: usize| ph[a].r + g.stride[a] * m;
    k(1, ph[1].taps - 1 - u[0]) * g.kernel[2] + k(2, ph[2].taps - 1 - u[1])
}

/// [`flipped_tap`] of every tap of phase `ph`'s `taps[0]`×`taps[1]` sub-kernel, row-major.
pub(crate) fn flipped_taps(g: &ConvGeometry, ph: &[AxisPhase; 3], taps: [usize; 2]) -> Vec<usize> {
    (0..taps[0] * taps[1]).map(|u| flipped_tap(g, ph, [u / taps[1], u % taps[1]])).collect()
}

/// Big-grid flat index of phase point `j` (per-axis coordinates).
pub(crate) fn big_index(g: &ConvGeometry, ph: &[AxisPhase; 3], j: [usize; 3]) -> usize {
    let o = |a: usize| (ph[a].q0 + j[a]) * g.stride[a] + ph[a].r - g.padding[a];
    (o(0) * g.big[1] + o(1)) * g.big[2] + o(2)
}

/// Sub-kernel of a phase, `[small, big/g, taps…]`; `flip` reverses the taps and swaps the two
/// channel roles (`[big, small/g, taps…]`), which turns the phase into a plain convolution
/// reading the small grid.
pub(crate) fn sub_kernel(w: &[f32], s: &ConvShape, ph: &[AxisPhase; 3], flip: bool) -> Vec<f32> {
    let g = &s.geom;
    let (scg, bcg) = (s.small_channels / s.groups, s.big_channels / s.groups);
    let t = [ph[0].taps, ph[1].taps, ph[2].taps];
    let tl = t[0] * t[1] * t[2];
    let kl = g.kernel_len();
    let mut out = vec![0f32; s.small_channels * bcg * tl];
    for sc in 0..s.small_channels {
        let grp = sc / scg;
        for bc in 0..bcg {
            let src = &w[(sc * bcg + bc) * kl..][..kl];
            for md in 0..t[0] {
                for mh in 0..t[1] {
                    for mw in 0..t[2] {
                        let k = |a: usize, m: usize| ph[a].r + g.stride[a] * m;
                        let v = src[(k(0, md) * g.kernel[1] + k(1, mh)) * g.kernel[2] + k(2, mw)];
                        let idx = if flip {
                            let m = ((t[0] - 1 - md) * t[1] + (t[1] - 1 - mh)) * t[2] + (t[2] - 1 - mw);
                            // [big (global), small/g, taps]
                            ((grp * bcg + bc) * scg + (sc - grp * scg)) * tl + m
                        } else {
                            (sc * bcg + bc) * tl + (md * t[1] + mh) * t[2] + mw
                        };
                        out[idx] = v;
                    }
                }
            }
        }
    }
    out
}

/// Transposed convolution forward (small → big) by phases; `out` is overwritten.
/// Requires [`applicable`].
pub fn small_to_big(x: &[f32], batch: usize, w: &[f32], s: &ConvShape, out: &mut [f32]) {
    let g = &s.geom;
    let (bl, sl) = (g.big_len(), g.small_len());
    out[..batch * s.big_channels * bl].fill(0.0);
    for ph in phases(g) {
        let taps = [ph[0].taps, ph[1].taps, ph[2].taps];
        let lens = [ph[0].len, ph[1].len, ph[2].len];
        // The phase as a stride-1 convolution: x plays the big grid, the phase lattice the small.
        let sub = ConvShape {
            small_channels: s.big_channels,
            big_channels: s.small_channels,
            groups: s.groups,
            geom: ConvGeometry {
                big: g.small,
                small: lens,
                kernel: taps,
                stride: [1; 3],
                padding: [taps[0] - 1 - ph[0].q0, taps[1] - 1 - ph[1].q0, taps[2] - 1 - ph[2].q0],
                dilation: [1; 3],
            },
        };
        let wk = sub_kernel(w, s, &ph, true);
        let pl = sub.geom.small_len();
        let mut buf = vec![0f32; batch * s.big_channels * pl];
        big_to_small(&x[..batch * s.small_channels * sl], batch, &wk, &sub, &mut buf);
        scatter(&buf, batch * s.big_channels, g, &ph, out);
    }
}

/// Transposed-convolution adjoint (big → small) by phases; `out` is overwritten.
/// Requires [`applicable`].
pub fn big_to_small_phased(gbig: &[f32], batch: usize, w: &[f32], s: &ConvShape, out: &mut [f32]) {
    let g = &s.geom;
    let sl = g.small_len();
    out[..batch * s.small_channels * sl].fill(0.0);
    for ph in phases(g) {
        let taps = [ph[0].taps, ph[1].taps, ph[2].taps];
        let lens = [ph[0].len, ph[1].len, ph[2].len];
        let sub = ConvShape {
            small_channels: s.small_channels,
            big_channels: s.big_channels,
            groups: s.groups,
            geom: ConvGeometry {
                big: lens,
                small: g.small,
                kernel: taps,
                stride: [1; 3],
                padding: [ph[0].q0, ph[1].q0, ph[2].q0],
                dilation: [1; 3],
            },
        };
        let wk = sub_kernel(w, s, &ph, false);
        let gathered = gather(gbig, batch * s.big_channels, g, &ph);
        let mut part = vec![0f32; batch * s.small_channels * sl];
        big_to_small(&gathered, batch, &wk, &sub, &mut part);
        for (o, v) in out.iter_mut().zip(&part) {
            *o += v;
        }
    }
}

fn scatter(buf: &[f32], planes: usize, g: &ConvGeometry, ph: &[AxisPhase; 3], out: &mut [f32]) {
    let (bl, pl) = (g.big_len(), ph[0].len * ph[1].len * ph[2].len);
    for p in 0..planes {
        let (src, dst) = (&buf[p * pl..][..pl], &mut out[p * bl..][..bl]);
        let mut n = 0;
        for jd in 0..ph[0].len {
            for jh in 0..ph[1].len {
                let base = big_index(g, ph, [jd, jh, 0]);
                for jw in 0..ph[2].len {
                    dst[base + jw * g.stride[2]] += src[n];
                    n += 1;
                }
            }
        }
    }
}

fn gather(big: &[f32], planes: usize, g: &ConvGeometry, ph: &[AxisPhase; 3]) -> Vec<f32> {
    let (bl, pl) = (g.big_len(), ph[0].len * ph[1].len * ph[2].len);
    let mut v = vec![0f32; planes * pl];
    for p in 0..planes {
        let (src, dst) = (&big[p * bl..][..bl], &mut v[p * pl..][..pl]);
        let mut n = 0;
        for jd in 0..ph[0].len {
            for jh in 0..ph[1].len {
                let base = big_index(g, ph, [jd, jh, 0]);
                for jw in 0..ph[2].len {
                    dst[n] = src[base + jw * g.stride[2]];
                    n += 1;
                }
            }
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::super::test_data::pseudo;
    use super::super::conv;
    use super::*;

    #[test]
    fn phases_equal_the_direct_kernels() {
        // (small grid, kernel, stride, padding, output_padding, groups)
        let cases: [([usize; 3], [usize; 3], [usize; 3], [usize; 3], [usize; 3], usize); 5] = [
            ([1, 5, 6], [1, 4, 4], [1, 2, 2], [0, 1, 1], [0, 0, 0], 1),
            ([1, 7, 7], [1, 14, 14], [1, 2, 2], [0, 6, 6], [0, 0, 0], 2),
            ([1, 6, 5], [1, 10, 3], [1, 2, 3], [0, 4, 0], [0, 1, 2], 1),
            ([3, 4, 4], [4, 4, 4], [2, 2, 2], [1, 1, 1], [0, 0, 0], 1),
            ([1, 4, 4], [1, 2, 5], [1, 3, 2], [0, 0, 2], [0, 1, 1], 1),
        ];
        for (small, k, st, p, op, groups) in cases {
            let geom = ConvGeometry::for_conv_transpose(small, k, st, p, op, [1, 1, 1]).unwrap();
            assert!(applicable(&geom), "{geom:?}");
            let s = ConvShape { small_channels: 4, big_channels: 6, groups, geom };
            let batch = 2;
            let x = pseudo(batch * 4 * geom.small_len(), 1);
            let w = pseudo(s.weight_len(), 2);
            let (mut a, mut b) = (vec![0f32; batch * 6 * geom.big_len()], vec![0f32; batch * 6 * geom.big_len()]);
            conv::small_to_big(&x, batch, &w, &s, &mut a);
            small_to_big(&x, batch, &w, &s, &mut b);
            let d = a.iter().zip(&b).fold(0f32, |m, (p, q)| m.max((p - q).abs()));
            assert!(d < 1e-4, "forward {geom:?}: {d}");
            let y = pseudo(a.len(), 3);
            let (mut c, mut e) = (vec![0f32; x.len()], vec![0f32; x.len()]);
            conv::big_to_small(&y, batch, &w, &s, &mut c);
            big_to_small_phased(&y, batch, &w, &s, &mut e);
            let d = c.iter().zip(&e).fold(0f32, |m, (p, q)| m.max((p - q).abs()));
            assert!(d < 1e-4, "adjoint {geom:?}: {d}");
        }
    }
}
