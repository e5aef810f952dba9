//! FFT convolution for large strided transposed convolutions (PVGG16's k10/k14, stride-2
//! predictors) and their adjoints.
//!
//! The stride phases ([`super::phase`]) turn a stride-s transposed convolution into s² stride-1
//! correlations of the small grid with T×T sub-kernels (T = k/s: 5 or 7), all reading the same
//! input. Directly that is 2·T² FLOPs per output, input channel and phase; in the frequency
//! domain, per N×N tile (N = 16, B = N − T + 1 outputs a side), one complex multiply-add per
//! bin: 8·N(N/2+1)/B² ≈ 8–12 FLOPs. Per bin the channel mixing is a complex GEMM
//! `[phases·C_out × C_in] · [C_in × tiles]`, with the kernels' spectra computed once (weights are
//! fixed at inference; [`super::transform_cache`] recomputes them when the weights change). The
//! adjoint reuses the same spectra, conjugated and transposed.
//!
//! Spectra cost `phases·C_out·C_in·N(N/2+1)` complex values (151 MB for 256×128 channels), so
//! [`FftPlan::new`] takes a memory cap and the caller falls back to GEMM above it.

use super::conv::ConvShape;
use super::fft::{c32, Fft2, LANES};
use super::gemm::transpose;
use super::phase::{self, AxisPhase};
use super::sync_ptr::SyncPtr;
use super::tile_io::{gather_row, scatter_row, RowSpan};
use super::zeroed::zeroed_complex;
use super::ConvGeometry;
use rayon::prelude::*;

const ZERO: c32 = c32 { re: 0.0, im: 0.0 };
const ONE: c32 = c32 { re: 1.0, im: 0.0 };

/// The FFT path's geometry for one layer (uniform stride phases, 2-D, no groups).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FftPlan {
    /// Tile side N (power of two).
    pub n: usize,
    /// Sub-kernel taps per axis (H, W).
    pub taps: [usize; 2],
    /// Outputs per tile and axis: N − taps + 1.
    pub block: [usize; 2],
    /// First phase-lattice coordinate q0 per axis (the adjoint's input offset).
    pub q0: [usize; 2],
    /// Phase lattice per axis (the forward's output grid per phase).
    pub len: [usize; 2],
    /// Small grid (H, W).
    pub small: [usize; 2],
    /// Number of phases (stride_h · stride_w).
    pub phases: usize,
    /// Channels on the small grid (transposed convolution's input).
    pub small_channels: usize,
    /// Channels on the big grid (transposed convolution's output).
    pub big_channels: usize,
}

impl FftPlan {
    /// The plan for `s` if the FFT path applies and is expected to pay off at this batch size,
    /// with spectra of at most `max_spectra_bytes`.
    pub fn new(s: &ConvShape, batch: usize, max_spectra_bytes: usize) -> Option<Self> {
        let plan = Self::geometry(s)?;
        let _ = batch; // the costs below are per sample
        // Cost model (per sample): direct GEMM 2·Cs·Cb·k²·small; FFT: complex GEMMs (8 FLOPs
        // per multiply-add) on the tiles of both directions' grids, plus the tile transforms.
        // The factor 3 covers the complex GEMM's strided operands and the transforms' lower
        // arithmetic rate.
        let g = &s.geom;
        let n = plan.n;
        let bins = (n * (n / 2 + 1)) as f64;
        let (cs, cb) = (s.small_channels as f64, s.big_channels as f64);
        let direct = 2.0 * cs * cb * g.kernel_len() as f64 * g.small_len() as f64;
        let tiles = plan.tiles(plan.len).max(plan.tiles(plan.small)) as f64;
        let transforms = (cs + cb * plan.phases as f64) * tiles * 10.0 * (n * n) as f64 * (n as f64).log2();
        let fft = 8.0 * bins * plan.phases as f64 * cb * cs * tiles + transforms;
        (3.0 * fft < direct && plan.spectra_bytes() <= max_spectra_bytes).then_some(plan)
    }

    /// The plan for `s` whenever the FFT path can compute it, whatever it costs.
    pub fn geometry(s: &ConvShape) -> Option<Self> {
        if !phase::applicable(&s.geom) {
            return None;
        }
        let u = phase::uniform_2d(s)?;
        let tmax = u.taps[0].max(u.taps[1]);
        let n = if tmax <= 8 { 16 } else if tmax <= 16 { 32 } else { return None };
        Some(Self {
            n,
            taps: u.taps,
            block: [n - u.taps[0] + 1, n - u.taps[1] + 1],
            q0: u.q0,
            len: u.len,
            small: [s.geom.small[1], s.geom.small[2]],
            phases: u.count,
            small_channels: s.small_channels,
            big_channels: s.big_channels,
        })
    }

    /// Bytes of the kernels' spectra.
    pub fn spectra_bytes(&self) -> usize {
        self.bins() * self.phases * self.big_channels * self.small_channels * std::mem::size_of::<c32>()
    }

    fn bins(&self) -> usize {
        self.n * (self.n / 2 + 1)
    }

    /// Tiles covering a grid.
    fn tiles(&self, grid: [usize; 2]) -> usize {
        grid[0].div_ceil(self.block[0]) * grid[1].div_ceil(self.block[1])
    }
}

/// The kernels' spectra for one layer: `[bins][phases·C_big][C_small]`, each the conjugated
/// transform of the forward phase's (flipped) sub-kernel.
#[derive(Debug)]
pub struct Spectra {
    plan: FftPlan,
    phases: Vec<[AxisPhase; 3]>,
    fft: Fft2,
    data: Vec<c32>,
}

impl Spectra {
    /// Transform the weight `w` (`[C_small, C_big, k, k]`) of the layer `s` planned by `plan`.
    ///
    /// # Panics
    ///
    /// If `plan` does not have as many phases as `s` (`plan` must come from
    /// [`FftPlan::geometry`] or [`FftPlan::new`] for `s`), or `w` is too short.
    pub fn build(plan: FftPlan, w: &[f32], s: &ConvShape) -> Option<Self> {
        let fft = Fft2::new(plan.n)?;
        let phases = phase::phases(&s.geom);
        // The raw writes below index rows r < phases.len() of a buffer sized by plan.phases.
        assert_eq!(phases.len(), plan.phases, "Spectra::build: plan for a different layer");
        // Checked: the raw writes in `refill` rely on bins·rc·cs being the true length of `data`.
        let len = [plan.phases, plan.big_channels, plan.small_channels]
            .iter()
            .try_fold(fft.bins(), |a, &b| a.checked_mul(b))
            .expect("Spectra::build: spectra size overflows usize");
        let mut sp = Self { plan, phases, fft, data: zeroed_complex(len) };
        sp.refill(w, s);
        Some(sp)
    }

    /// Transform new values `w` of the same layer's weight into this storage (training
    /// changes the weights every step: no new allocation, whose pages would all fault again).
    ///
    /// # Panics
    ///
    /// If `w` is too short for the plan.
    pub(crate) fn refill(&mut self, w: &[f32], s: &ConvShape) {
        let Self { plan, phases, fft, data } = self;
        let (bins, n) = (fft.bins(), plan.n);
        let (cs, cb) = (plan.small_channels, plan.big_channels);
        let rc = plan.phases * cb;
        let kl = s.geom.kernel_len();
        assert!(w.len() >= cs * cb * kl, "Spectra::refill: weight too short");
        let taps: Vec<Vec<usize>> = phases.iter().map(|ph| phase::flipped_taps(&s.geom, ph, plan.taps)).collect();
        let (fft, taps_w) = (&*fft, plan.taps[1]);
        let ptr = SyncPtr::new(data.as_mut_slice());
        // One task per row (phase, big channel): its kernels read straight from `w` (the
        // phase's sub-kernel, taps reversed: the forward as a correlation of the small grid),
        // LANES input channels per transform, whose spectra are a run of `data` per bin.
        (0..rc).into_par_iter().for_each_init(
            || fft.buffers(),
            |(sc, tiles, spec), row| {
                let (taps, co) = (&taps[row / cb], row % cb);
                for c0 in (0..cs).step_by(LANES) {
                    let count = LANES.min(cs - c0);
                    tiles.fill(0.0);
                    for l in 0..count {
                        let kernel = &w[((c0 + l) * cb + co) * kl..][..kl];
                        for (u, &tap) in taps.iter().enumerate() {
                            tiles[((u / taps_w) * n + u % taps_w) * LANES + l] = kernel[tap];
                        }
                    }
                    fft.forward_real(tiles, spec, sc);
                    for b in 0..bins {
                        // SAFETY: elements (b·rc + row)·cs + c0 + l (l < count ≤ cs − c0) lie
                        // inside `data`, of bins·rc·cs values (b < bins, row < rc, the length
                        // checked in `build`), and only the task for this `row` writes them.
                        let out = unsafe { std::slice::from_raw_parts_mut(ptr.get().add((b * rc + row) * cs + c0), count) };
                        for (o, v) in out.iter_mut().zip(&spec[b * LANES..]) {
                            *o = v.conj();
                        }
                    }
                }
            },
        );
    }

    /// The plan these spectra were built for.
    pub fn plan(&self) -> &FftPlan {
        &self.plan
    }
}

/// Tiles per pass of the FFT paths over `total` tiles: as many as keep the pass's two spectra
/// operands (both sides' channels, every bin) under 32 MB, at least 2·[`LANES`] (the kernels'
/// spectra are read again every pass), at most `total`. A pass may end inside a sample
/// (PVGG16's pcoder 2 takes 42 MB of spectra per sample), which keeps the memory peak of
/// batch 4 below the original Predify's.
fn tiles_per_pass(sp: &Spectra, total: usize) -> usize {
    const PASS_BYTES: usize = 32 << 20;
    let p = &sp.plan;
    let per_tile = (p.small_channels + p.phases * p.big_channels) * sp.fft.bins() * std::mem::size_of::<c32>();
    (PASS_BYTES / per_tile.max(1)).max(2 * LANES).min(total).max(1)
}

/// The part of sample `si`'s tiles `0..nt` that the pass over global tiles `q..q + len` holds.
fn sample_tiles(si: usize, nt: usize, q: usize, len: usize) -> std::ops::Range<usize> {
    q.max(si * nt) - si * nt..(q + len).min((si + 1) * nt) - si * nt
}

/// Transposed-convolution forward (small → big) by FFT; `out` is overwritten.
pub fn small_to_big(x: &[f32], batch: usize, sp: &Spectra, g: &ConvGeometry, out: &mut [f32]) {
    let pass = tiles_per_pass(sp, batch * sp.plan.tiles(sp.plan.len));
    small_to_big_in_passes(x, batch, sp, g, pass, out)
}

/// [`small_to_big`] in passes of `pass` tiles.
fn small_to_big_in_passes(x: &[f32], batch: usize, sp: &Spectra, g: &ConvGeometry, pass: usize, out: &mut [f32]) {
    let p = &sp.plan;
    let (cs, cb, n, bins) = (p.small_channels, p.big_channels, p.n, sp.fft.bins());
    let (sl, bl) = (g.small_len(), g.big_len());
    let rc = p.phases * cb;
    let tiles_hw = [p.len[0].div_ceil(p.block[0]), p.len[1].div_ceil(p.block[1])];
    let nt = tiles_hw[0] * tiles_hw[1];
    let total = batch * nt;
    // Input offset of a tile: the forward correlation reads x at j + t − (taps − 1 − q0).
    let off = [p.taps[0] - 1 - p.q0[0], p.taps[1] - 1 - p.q0[1]];
    // One pair of operands for every pass: fresh pages fault on first touch.
    let (mut xspec, mut yspec) = (zeroed_complex(cs * pass * bins), zeroed_complex(rc * pass * bins));
    for q in (0..total).step_by(pass) {
        let ntk = pass.min(total - q);
        // The pass's tiles side by side, bins-major (`[bins][C_small][tiles]`): one GEMM per
        // bin on contiguous operands for all of them.
        let (xspec, yspec) = (&mut xspec[..cs * ntk * bins], &mut yspec[..rc * ntk * bins]);
        let xs = SyncPtr::new(&mut *xspec);
        (0..cs).into_par_iter().for_each_init(
            || sp.fft.buffers(),
            |(sc, tiles, spec), ci| {
                for q0 in (0..ntk).step_by(LANES) {
                    let count = LANES.min(ntk - q0);
                    load_lanes(tiles, n, count, |l| {
                        let (si, t) = ((q + q0 + l) / nt, (q + q0 + l) % nt);
                        let plane = &x[(si * cs + ci) * sl..][..sl];
                        let origin = [((t / tiles_hw[1]) * p.block[0]) as isize - off[0] as isize, ((t % tiles_hw[1]) * p.block[1]) as isize - off[1] as isize];
                        (plane, move |a: usize| RowSpan::padded(p.small, origin[0] + a as isize, origin[1], n))
                    });
                    sp.fft.forward_real(tiles, spec, sc);
                    // SAFETY: row `ci` of every bin block of `xspec` ([bins][cs][ntk]), tiles
                    // q0..q0 + count ≤ ntk; only the task for this `ci` writes it.
                    unsafe { store_lanes(spec, bins, count, xs, cs, ntk, ci, q0) };
                }
            },
        );
        per_bin_gemm(&sp.data, false, rc, cs, xspec, ntk, bins, yspec);
        let first = q / nt;
        let dst = &mut out[first * cb * bl..(q + ntk).div_ceil(nt) * cb * bl];
        dst.par_chunks_mut(bl).enumerate().for_each_init(
            || sp.fft.buffers(),
            |(sc, tiles, spec), (plane_index, plane)| {
                let (si, co) = (first + plane_index / cb, plane_index % cb);
                let mine = sample_tiles(si, nt, q, ntk);
                // The pass holding a plane's first tile clears it (points on no lattice stay 0).
                if mine.start == 0 {
                    plane.fill(0.0);
                }
                for (r, ph) in sp.phases.iter().enumerate() {
                    for t0 in mine.clone().step_by(LANES) {
                        let count = LANES.min(mine.end - t0);
                        load_spectra(yspec, rc, ntk, r * cb + co, si * nt + t0 - q, count, bins, spec);
                        sp.fft.inverse_real_rows(spec, tiles, sc, 0..p.block[0]);
                        for l in 0..count {
                            let (ty, tx) = ((t0 + l) / tiles_hw[1], (t0 + l) % tiles_hw[1]);
                            for a in 0..p.block[0].min(p.len[0] - ty * p.block[0]) {
                                let row = RowSpan::lattice(g, ph, p.len[1], ty * p.block[0] + a, (tx * p.block[1]) as isize, p.block[1]);
                                scatter_row(plane, row, &tiles[a * n * LANES + l..], LANES);
                            }
                        }
                    }
                }
            },
        );
    }
}

/// Convolution forward / transposed-convolution adjoint (big → small) by FFT; `out` is overwritten.
pub fn big_to_small(gbig: &[f32], batch: usize, sp: &Spectra, g: &ConvGeometry, out: &mut [f32]) {
    let pass = tiles_per_pass(sp, batch * sp.plan.tiles(sp.plan.small));
    big_to_small_in_passes(gbig, batch, sp, g, pass, out)
}

/// [`big_to_small`] in passes of `pass` tiles.
fn big_to_small_in_passes(gbig: &[f32], batch: usize, sp: &Spectra, g: &ConvGeometry, pass: usize, out: &mut [f32]) {
    let p = &sp.plan;
    let (cs, cb, n, bins) = (p.small_channels, p.big_channels, p.n, sp.fft.bins());
    let (sl, bl) = (g.small_len(), g.big_len());
    let rc = p.phases * cb;
    let tiles_hw = [p.small[0].div_ceil(p.block[0]), p.small[1].div_ceil(p.block[1])];
    let nt = tiles_hw[0] * tiles_hw[1];
    let total = batch * nt;
    let (mut gspec, mut ospec) = (zeroed_complex(rc * pass * bins), zeroed_complex(cs * pass * bins));
    for q in (0..total).step_by(pass) {
        let ntk = pass.min(total - q);
        // Spectra of every phase's lattice of every big channel, tiles over the small grid,
        // bins-major (`[bins][phases·C_big][tiles]`).
        let (gspec, ospec) = (&mut gspec[..rc * ntk * bins], &mut ospec[..cs * ntk * bins]);
        let gs = SyncPtr::new(&mut *gspec);
        (0..rc).into_par_iter().for_each_init(
            || sp.fft.buffers(),
            |(sc, tiles, spec), rco| {
                let ph = &sp.phases[rco / cb];
                for q0 in (0..ntk).step_by(LANES) {
                    let count = LANES.min(ntk - q0);
                    load_lanes(tiles, n, count, |l| {
                        let (si, t) = ((q + q0 + l) / nt, (q + q0 + l) % nt);
                        let plane = &gbig[(si * cb + rco % cb) * bl..][..bl];
                        let origin = [(t / tiles_hw[1]) * p.block[0], (t % tiles_hw[1]) * p.block[1]];
                        let j0 = origin[1] as isize - p.q0[1] as isize;
                        // Lattice points before the first (the row index wraps) or past the last
                        // read zeros.
                        (plane, move |a: usize| {
                            let i = (origin[0] + a).wrapping_sub(p.q0[0]);
                            (i < p.len[0]).then(|| RowSpan::lattice(g, ph, p.len[1], i, j0, n))
                        })
                    });
                    sp.fft.forward_real(tiles, spec, sc);
                    // SAFETY: row `rco` of every bin block of `gspec` ([bins][rc][ntk]), tiles
                    // q0..q0 + count ≤ ntk; only the task for this `rco` writes it.
                    unsafe { store_lanes(spec, bins, count, gs, rc, ntk, rco, q0) };
                }
            },
        );
        per_bin_gemm(&sp.data, true, cs, rc, gspec, ntk, bins, ospec);
        let first = q / nt;
        let dst = &mut out[first * cs * sl..(q + ntk).div_ceil(nt) * cs * sl];
        // The correlation with the adjoint kernel is the convolution with the forward one,
        // read `taps − 1` further on. The tiles' blocks cover the small grid exactly.
        let shift = [p.taps[0] - 1, p.taps[1] - 1];
        dst.par_chunks_mut(sl).enumerate().for_each_init(
            || sp.fft.buffers(),
            |(sc, tiles, spec), (plane_index, plane)| {
                let (si, ci) = (first + plane_index / cs, plane_index % cs);
                let mine = sample_tiles(si, nt, q, ntk);
                for t0 in mine.clone().step_by(LANES) {
                    let count = LANES.min(mine.end - t0);
                    load_spectra(ospec, cs, ntk, ci, si * nt + t0 - q, count, bins, spec);
                    sp.fft.inverse_real_rows(spec, tiles, sc, shift[0]..n);
                    for l in 0..count {
                        let (ty, tx) = ((t0 + l) / tiles_hw[1], (t0 + l) % tiles_hw[1]);
                        let w = p.block[1].min(p.small[1] - tx * p.block[1]);
                        for a in 0..p.block[0].min(p.small[0] - ty * p.block[0]) {
                            let row = &mut plane[(ty * p.block[0] + a) * p.small[1] + tx * p.block[1]..][..w];
                            for (b, v) in row.iter_mut().enumerate() {
                                *v = tiles[((a + shift[0]) * n + shift[1] + b) * LANES + l];
                            }
                        }
                    }
                }
            },
        );
    }
}

/// Fill the lane tiles `tiles` (`[N·N][LANES]`): lane `l < count` from the plane `lane(l)`
/// names, row a over the span its function gives (zeros elsewhere), the other lanes with zeros.
fn load_lanes<'a, R: Fn(usize) -> Option<RowSpan>>(tiles: &mut [f32], n: usize, count: usize, lane: impl Fn(usize) -> (&'a [f32], R)) {
    if count < LANES {
        tiles.fill(0.0);
    }
    for l in 0..count {
        let (plane, row) = lane(l);
        for a in 0..n {
            gather_row(plane, row(a), n, &mut tiles[a * n * LANES + l..], LANES);
        }
    }
}

/// Write the first `count` lanes of `spec` (`[bins][LANES]`) as tiles `q0..q0 + count` of row
/// `row` of every bin block of a bins-major buffer `[bins][rows][ntk]`.
///
/// # Safety
///
/// `dst` must address a buffer of at least `bins·rows·ntk` values with `row < rows` and
/// `q0 + count ≤ ntk`, and no other task may access those elements while this runs.
#[allow(clippy::too_many_arguments)]
unsafe fn store_lanes(spec: &[c32], bins: usize, count: usize, dst: SyncPtr<'_, c32>, rows: usize, ntk: usize, row: usize, q0: usize) {
    for b in 0..bins {
        // SAFETY: elements (b·rows + row)·ntk + q0 + l for l < count lie inside the buffer and
        // belong to this task (the caller's contract).
        let out = unsafe { std::slice::from_raw_parts_mut(dst.get().add((b * rows + row) * ntk + q0), count) };
        out.copy_from_slice(&spec[b * LANES..][..count]);
    }
}

/// Read tiles `t0..t0 + count` of row `row` of a bins-major buffer `[bins][rows][ntk]` into
/// the first `count` lanes of `spec` (`[bins][LANES]`), zeros in the others.
#[allow(clippy::too_many_arguments)]
fn load_spectra(src: &[c32], rows: usize, ntk: usize, row: usize, t0: usize, count: usize, bins: usize, spec: &mut [c32]) {
    for b in 0..bins {
        let dst = &mut spec[b * LANES..][..LANES];
        dst[..count].copy_from_slice(&src[(b * rows + row) * ntk + t0..][..count]);
        dst[count..].fill(ZERO);
    }
}

/// For every bin b: `dst[b] = K[b] · src[b]` (or `K[b]ᴴ · src[b]` with `adjoint`), where
/// `K[b]` is the `[rows_k × cols_k]` block of `spectra` and `src`/`dst` are bins-major
/// `[bins][channels][nt]` arrays. One bin per task, each GEMM on one thread.
#[allow(clippy::too_many_arguments)]
fn per_bin_gemm(spectra: &[c32], adjoint: bool, m: usize, k: usize, src: &[c32], nt: usize, bins: usize, dst: &mut [c32]) {
    // K[b] is stored [rows = phases·C_big][cols = C_small]; the forward multiplies by it
    // (m = rows, k = cols), the adjoint by its conjugate transpose (m = cols, k = rows).
    // Guards the unchecked accesses below (an invariant of the callers, cheap to keep); checked
    // products, so that no wrapped one passes with a short buffer. They also bound the strides
    // (nt, m, k) by a slice length, so they fit isize whenever gemm uses them.
    let total = |a: usize, b: usize, c: usize| a.checked_mul(b).and_then(|v| v.checked_mul(c));
    assert!(
        total(k, nt, bins).is_some_and(|l| l <= src.len())
            && total(m, nt, bins).is_some_and(|l| l <= dst.len())
            && total(bins, m, k).is_some_and(|l| l <= spectra.len()),
        "per_bin_gemm: operand sizes"
    );
    // Nothing to compute, or nothing to read (`gemm` would only zero `dst`): no pointer below
    // may be offset past the end of an empty operand.
    if m == 0 || nt == 0 || bins == 0 {
        return;
    }
    if k == 0 {
        dst[..m * nt * bins].fill(ZERO);
        return;
    }
    // The adjoint reads K[b] against its storage order, which `gemm` would repack for every
    // bin: it computes the transposed product `src[b]ᵀ · conj(K[b])` (K read in order) into a
    // per-thread buffer and transposes that (PVGG16 pcoder 3's shapes: ~1.5× faster, still
    // ~1.5× the forward's time, which only spectra stored the other way round would match).
    dst[..m * nt * bins].par_chunks_mut(m * nt).enumerate().for_each_init(Vec::new, |tmp: &mut Vec<c32>, (b, out)| {
        if adjoint && tmp.len() < m * nt {
            tmp.resize(m * nt, ZERO);
        }
        let (kb, sb) = (spectra[b * m * k..].as_ptr(), src[b * k * nt..].as_ptr());
        // SAFETY: m, nt, k ≥ 1. `kb` is the b-th [rows × cols] block of `spectra`, `sb` the b-th
        // [k×nt] block of `src`, `out` the b-th [m×nt] block of `dst`, all in bounds (asserted
        // above, as are the strides' isize range), and with `adjoint` `tmp` holds m·nt values
        // (resized just above); `out` and `tmp` are unique borrows, so no input aliases them.
        unsafe {
            if adjoint {
                // tmp [nt × m] = src[b]ᵀ (nt × k) · conj(K[b]) (k × m, row-major).
                gemm::gemm(nt, m, k, tmp.as_mut_ptr(), 1, m as isize, false, sb, nt as isize, 1, kb, 1, m as isize, ZERO, ONE, false, false, true, gemm::Parallelism::None);
            } else {
                gemm::gemm(m, nt, k, out.as_mut_ptr(), 1, nt as isize, false, kb, 1, k as isize, sb, 1, nt as isize, ZERO, ONE, false, false, false, gemm::Parallelism::None);
            }
        }
        if adjoint {
            transpose(&tmp[..m * nt], nt, m, out);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::super::test_data::{check_against_gemm, pseudo};
    use super::*;

    #[test]
    fn equals_the_direct_kernels() {
        // (small grid, kernel, stride, padding): PVGG16's k10 and k14 shapes on small grids,
        // a grid that is not a multiple of the tile, and an odd kernel with output padding.
        let cases: [([usize; 2], usize, usize, usize, usize); 4] =
            [([13, 11], 10, 2, 4, 0), ([9, 9], 14, 2, 6, 0), ([23, 7], 14, 2, 6, 0), ([6, 8], 6, 3, 0, 0)];
        for (hw, k, st, p, op) in cases {
            let geom = ConvGeometry::for_conv_transpose([1, hw[0], hw[1]], [1, k, k], [1, st, st], [0, p, p], [0, op, op], [1, 1, 1]).unwrap();
            let s = ConvShape { small_channels: 5, big_channels: 3, groups: 1, geom };
            let Some(plan) = FftPlan::geometry(&s) else {
                panic!("no FFT plan for {geom:?}");
            };
            let w = pseudo(s.weight_len(), 2);
            let sp = Spectra::build(plan, &w, &s).unwrap();
            let batch = 2;
            let forward = |x: &[f32], out: &mut [f32]| small_to_big(x, batch, &sp, &geom, out);
            check_against_gemm(&s, &w, batch, 1e-5, &format!("{geom:?}"), forward, |y, out| big_to_small(y, batch, &sp, &geom, out));
            // Passes of 3 tiles: they end inside samples and inside lane groups.
            let forward = |x: &[f32], out: &mut [f32]| small_to_big_in_passes(x, batch, &sp, &geom, 3, out);
            let adjoint = |y: &[f32], out: &mut [f32]| big_to_small_in_passes(y, batch, &sp, &geom, 3, out);
            check_against_gemm(&s, &w, batch, 1e-5, &format!("{geom:?} in passes"), forward, adjoint);
        }
    }

    #[test]
    fn cost_model_and_memory_cap() {
        // PVGG16's pcoder3 predictor (256→128, k14 s2 p6 on 56×56) takes the FFT path; its
        // spectra are 151 MB, so a 100 MB cap refuses it; stride-1 layers never apply.
        let geom = ConvGeometry::for_conv_transpose([1, 56, 56], [1, 14, 14], [1, 2, 2], [0, 6, 6], [0, 0, 0], [1, 1, 1]).unwrap();
        let s = ConvShape { small_channels: 256, big_channels: 128, groups: 1, geom };
        let plan = FftPlan::new(&s, 1, 256 << 20).unwrap();
        assert_eq!(plan.spectra_bytes(), 4 * 128 * 256 * 16 * 9 * 8);
        assert!(FftPlan::new(&s, 1, 100 << 20).is_none());
        // Tiny grids do not pay off even where the geometry fits.
        let geom = ConvGeometry::for_conv_transpose([1, 6, 8], [1, 6, 6], [1, 3, 3], [0, 0, 0], [0, 0, 0], [1, 1, 1]).unwrap();
        assert!(FftPlan::geometry(&ConvShape { geom, ..s }).is_some());
        assert!(FftPlan::new(&ConvShape { geom, ..s }, 1, usize::MAX).is_none());
        let geom = ConvGeometry::for_conv_transpose([1, 56, 56], [1, 3, 3], [1, 1, 1], [0, 1, 1], [0, 0, 0], [1, 1, 1]).unwrap();
        assert!(FftPlan::new(&ConvShape { geom, ..s }, 1, usize::MAX).is_none());
    }

    #[test]
    #[should_panic(expected = "per_bin_gemm: operand sizes")]
    fn per_bin_gemm_rejects_a_short_destination() {
        let (spectra, src) = (vec![ZERO; 3 * 2 * 4], vec![ZERO; 4 * 5 * 3]);
        let mut dst = vec![ZERO; 2 * 5 * 3 - 1];
        per_bin_gemm(&spectra, false, 2, 4, &src, 5, 3, &mut dst);
    }
}
