//! Winograd convolution for strided transposed convolutions whose FFT spectra would not fit in
//! memory (PVGG16's pcoders 4 and 5: k14 s2, 512 channels on 28² and 14² grids), both
//! directions, and for the stride-1 layers where it was measured to pay (one phase; VGG's
//! 3×3 layers with 256 or 512 channels on 56² and 28² grids, see [`WinoPlan::new`]).
//!
//! The stride phases ([`super::phase`]) turn the layer into s² stride-1 correlations of the
//! small grid with r×r sub-kernels (r = 7 for k14 s2; one phase, r = k, for stride 1). Each runs
//! as F(m×m, r×r) ([`super::winograd`]; m = 2 for r > 3, 4 for r ≤ 3): per m×m output tile and
//! transform element e < n² (n = m + r − 1), the channel mixing is one real GEMM
//! `M[e] = U[e]·V[e]` with `U[e]`: `[phases·C_big × C_small]` (the kernels' transforms, cached
//! like the FFT spectra: n²/r² the weights, 1.31× for F(2×2, 7×7), 4× for F(4×4, 3×3)) and
//! `V[e]`: `[C_small × tiles]`. That is 2n² FLOPs per m×m outputs and channel pair instead of
//! 2m²r² (3.06× fewer for F(2×2, 7×7), 4× for F(4×4, 3×3)). The adjoint multiplies by the
//! transposed `U[e]` and scatters the transformed tiles back (overlap-add), the exact transpose
//! of the forward; a convolution's own forward is that adjoint.

use super::conv::ConvShape;
use super::gemm::{matmul_serial, matmul_serial_transposed, MatRef};
use super::phase::{self, AxisPhase};
use super::sync_ptr::SyncPtr;
use super::tile_io::{gather_row, samples_per_chunk, scatter_row, RowSpan};
use super::winograd::{sandwich, Transforms};
use super::zeroed::zeroed;
use super::ConvGeometry;
use rayon::prelude::*;

/// Largest transformed weights of a stride-1 layer that [`WinoPlan::new`] plans (PVGG16's
/// 512-channel 3×3 layers: 37.7 MB each, 113 MB for the five it takes).
pub const MAX_STRIDE1_BYTES: usize = 40 << 20;

/// The Winograd path's geometry for one layer (uniform stride phases, 2-D, no groups, square
/// sub-kernels with m + taps − 1 ≤ [`super::winograd::MAX_N`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WinoPlan {
    /// Outputs per tile and axis.
    pub m: usize,
    /// Sub-kernel taps per axis (equal).
    pub taps: usize,
    /// First phase-lattice coordinate q0 per axis.
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

impl WinoPlan {
    /// The plan for `s` if the Winograd path applies, is expected to pay off, and its
    /// transformed weights take at most `max_bytes`.
    ///
    /// Strided layers by the cost model below. Stride-1 layers (VGG's 3×3 convolutions,
    /// F(4×4, 3×3)) only where measured faster than im2col + GEMM on PVGG16 at batch 1 and 4
    /// (BENCHMARKS.md): at least 256 channels on both sides and at least 49 tiles per sample
    /// (its 56² and 28² grids: 1.6–1.8× faster), with transformed weights (4× the weights) of
    /// at most [`MAX_STRIDE1_BYTES`]. Slower were 128 channels on 112² at batch 4 (tile
    /// buffers of ~60 MB per pass) and the 14² grids (16 tiles); [`Self::geometry`] still
    /// plans them.
    pub fn new(s: &ConvShape, max_bytes: usize) -> Option<Self> {
        if !phase::applicable(&s.geom) {
            let plan = Self::geometry(s)?;
            let pays = s.small_channels >= 256 && s.big_channels >= 256 && plan.tiles() >= 49;
            return (pays && plan.weight_bytes() <= max_bytes.min(MAX_STRIDE1_BYTES)).then_some(plan);
        }
        let plan = Self::geometry(s)?;
        let n = (plan.m + plan.taps - 1) as f64;
        let (cs, cb) = (s.small_channels as f64, s.big_channels as f64);
        let direct = 2.0 * cs * cb * s.geom.kernel_len() as f64 * s.geom.small_len() as f64;
        let tiles = plan.tiles() as f64;
        // GEMMs plus the two tile transforms (≈ 4n³ FLOPs per tile and channel on each side);
        // the factor 1.5 covers the transforms' lower arithmetic rate and the gathers.
        let gemm = 2.0 * n * n * plan.phases as f64 * cb * cs * tiles;
        let transforms = 4.0 * n * n * n * tiles * (cs + cb * plan.phases as f64);
        (1.5 * (gemm + transforms) < direct && plan.weight_bytes() <= max_bytes).then_some(plan)
    }

    /// The plan for `s` whenever the Winograd path can compute it, whatever it costs.
    pub fn geometry(s: &ConvShape) -> Option<Self> {
        let u = phase::uniform_2d(s)?;
        let taps = u.taps[0];
        // Larger tiles save more products but grow the transformed weights ((m + r − 1)²/r²)
        // and the rounding error: 4×4 only for 3×3 kernels (6 points, as usual), else 2×2.
        let m = if taps <= 3 { 4 } else { 2 };
        (u.taps[1] == taps && Transforms::new(m, taps).is_some()).then_some(Self {
            m,
            taps,
            q0: u.q0,
            len: u.len,
            small: [s.geom.small[1], s.geom.small[2]],
            phases: u.count,
            small_channels: s.small_channels,
            big_channels: s.big_channels,
        })
    }

    /// Bytes of the transformed weights.
    pub fn weight_bytes(&self) -> usize {
        let n = self.taps + self.m - 1;
        n * n * self.phases * self.big_channels * self.small_channels * std::mem::size_of::<f32>()
    }

    /// m×m tiles per axis over the phase lattice.
    fn tiles_hw(&self) -> [usize; 2] {
        [self.len[0].div_ceil(self.m), self.len[1].div_ceil(self.m)]
    }

    /// Tiles per sample.
    fn tiles(&self) -> usize {
        let [h, w] = self.tiles_hw();
        h * w
    }

    /// Where a tile's data starts on the small grid, relative to its outputs: the forward
    /// correlation reads x at j + a − (taps − 1 − q0).
    fn offset(&self) -> [usize; 2] {
        [self.taps - 1 - self.q0[0], self.taps - 1 - self.q0[1]]
    }
}

/// The product a layer's transformed weights are laid out for: the direction of the call that
/// builds them (a layer's own forward comes first). The other direction reads them transposed:
/// the same result, with slower GEMM packing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Favour {
    /// Transposed-convolution forward / convolution adjoint: `U[e]` stored `[phases·C_big][C_small]`.
    SmallToBig,
    /// Convolution forward / transposed-convolution adjoint: `U[e]` stored `[C_small][phases·C_big]`.
    BigToSmall,
}

/// One layer's transformed kernels `U[e]` (`[phases·C_big × C_small]` each, stored as
/// [`Favour`] says).
#[derive(Debug)]
pub struct WinoWeights {
    plan: WinoPlan,
    phases: Vec<[AxisPhase; 3]>,
    tr: Transforms,
    favour: Favour,
    u: Vec<f32>,
}

impl WinoWeights {
    /// Transform the weight `w` (`[C_small, C_big, k, k]`) of the layer `s` planned by `plan`,
    /// laid out for the product `favour`.
    ///
    /// # Panics
    ///
    /// If `plan` was not made for `s` (its phase count differs) or `w` is too short.
    pub fn build(plan: WinoPlan, w: &[f32], s: &ConvShape, favour: Favour) -> Option<Self> {
        let tr = Transforms::new(plan.m, plan.taps)?;
        let phases = phase::phases(&s.geom);
        assert_eq!(phases.len(), plan.phases, "WinoWeights::build: plan for a different layer");
        let u = zeroed(tr.n * tr.n * plan.phases * plan.big_channels * plan.small_channels);
        let mut ww = Self { plan, phases, tr, favour, u };
        ww.refill(w, s);
        Some(ww)
    }

    /// Transform new values `w` of the same layer's weight into this storage (training
    /// changes the weights every step: no new allocation, whose pages would all fault again).
    ///
    /// # Panics
    ///
    /// If `w` is too short for the plan.
    pub(crate) fn refill(&mut self, w: &[f32], s: &ConvShape) {
        let Self { plan, phases, tr, favour, u } = self;
        let (n, r, favour) = (tr.n, plan.taps, *favour);
        let (cs, cb) = (plan.small_channels, plan.big_channels);
        let rows = plan.phases * cb;
        let kl = s.geom.kernel_len();
        assert!(w.len() >= cs * cb * kl, "WinoWeights::refill: weight too short");
        let taps: Vec<Vec<usize>> = phases.iter().map(|ph| phase::flipped_taps(&s.geom, ph, [r, r])).collect();
        let ptr = SyncPtr::new(u.as_mut_slice());
        // One task per GEMM row (phase, big channel), reading its sub-kernels straight from `w`.
        (0..rows).into_par_iter().for_each_init(
            || (vec![0f32; r * r * cs], vec![0f32; n * r * cs], vec![0f32; n * n * cs]),
            |(k, tmp, out), row| {
                let (taps, co) = (&taps[row / cb], row % cb);
                // The row's correlation kernels with the input channel innermost (the lanes),
                // each kernel read whole once.
                for ci in 0..cs {
                    let kernel = &w[(ci * cb + co) * kl..][..kl];
                    for (t, &tap) in taps.iter().enumerate() {
                        k[t * cs + ci] = kernel[tap];
                    }
                }
                sandwich(&tr.g, n, r, k, cs, cs, tmp, out);
                for e in 0..n * n {
                    let src = &out[e * cs..][..cs];
                    // SAFETY: row `row` of block e (element (row, ci) for every ci < cs, at
                    // e·rows·cs + row·cs + ci or e·rows·cs + ci·rows + row) lies inside `u`
                    // (n²·rows·cs values; e < n², row < rows), and only the task for this row
                    // writes it.
                    unsafe {
                        match favour {
                            Favour::SmallToBig => std::ptr::copy_nonoverlapping(src.as_ptr(), ptr.get().add((e * rows + row) * cs), cs),
                            Favour::BigToSmall => {
                                for (ci, v) in src.iter().enumerate() {
                                    *ptr.get().add(e * rows * cs + ci * rows + row) = *v;
                                }
                            }
                        }
                    }
                }
            },
        );
    }

    /// The layout these weights were built for.
    pub(crate) fn favour(&self) -> Favour {
        self.favour
    }

    /// The plan these weights were built for.
    pub fn plan(&self) -> &WinoPlan {
        &self.plan
    }

    /// `U[e]` as a `[phases·C_big × C_small]` matrix.
    fn block(&self, e: usize) -> MatRef<'_> {
        let (rows, cs) = (self.plan.phases * self.plan.big_channels, self.plan.small_channels);
        let data = &self.u[e * rows * cs..][..rows * cs];
        match self.favour {
            Favour::SmallToBig => MatRef::new(data, rows, cs),
            Favour::BigToSmall => MatRef::new(data, cs, rows).t(),
        }
    }
}

/// `dst = u · x` for `u` a view of one `U[e]` (or its transpose): as the transposed product
/// when `u` is read against its storage order (the direction the weights were not laid out
/// for), which `gemm` would otherwise repack on every call.
fn product(dst: &mut [f32], u: MatRef<'_>, x: MatRef<'_>, tmp: &mut Vec<f32>) {
    if u.is_column_major() {
        matmul_serial_transposed(dst, u, x, tmp);
    } else {
        matmul_serial(dst, u, x, false);
    }
}

/// The tiles of one layer's phase lattices and their transforms, shared by both directions
/// and the weight gradient.
struct Tiling<'a> {
    p: &'a WinoPlan,
    tr: &'a Transforms,
    phases: &'a [[AxisPhase; 3]],
    g: &'a ConvGeometry,
}

impl Tiling<'_> {
    /// Rows of the GEMMs: phases · C_big.
    fn rows(&self) -> usize {
        self.p.phases * self.p.big_channels
    }

    /// Samples per pass for these layer sizes.
    fn chunk(&self, batch: usize) -> usize {
        samples_per_chunk(self.rows().max(self.p.small_channels) * self.tr.n * self.tr.n * self.p.tiles() * std::mem::size_of::<f32>(), batch)
    }

    /// V = Bᵀ·d·B of every tile of the small-grid samples `s0..s0+k` of `x` into `v`:
    /// `[C_small][e][k · tiles]`.
    fn input_tiles(&self, x: &[f32], s0: usize, k: usize, v: &mut [f32]) {
        let (p, tr) = (self.p, self.tr);
        let (cs, n, m, sl) = (p.small_channels, tr.n, tr.m, self.g.small_len());
        let ([_, tw], nt, off, nn) = (p.tiles_hw(), p.tiles(), p.offset(), n * n);
        let ntk = k * nt;
        v[..cs * nn * ntk].par_chunks_mut(nn * ntk).enumerate().for_each_init(
            || (vec![0f32; nn * ntk], vec![0f32; nn * ntk]),
            |(d, tmp), (ci, dst)| {
                for si in 0..k {
                    let plane = &x[((s0 + si) * cs + ci) * sl..][..sl];
                    for t in 0..nt {
                        let origin = [((t / tw) * m) as isize - off[0] as isize, ((t % tw) * m) as isize - off[1] as isize];
                        for a in 0..n {
                            let row = RowSpan::padded(p.small, origin[0] + a as isize, origin[1], n);
                            gather_row(plane, row, n, &mut d[a * n * ntk + si * nt + t..], ntk);
                        }
                    }
                }
                sandwich(&tr.bt, n, n, d, ntk, ntk, tmp, dst);
            },
        );
    }

    /// Mg = A·dY·Aᵀ of every m×m tile of the phase lattices of GEMM rows `rows` (phase,
    /// big channel) of the big-grid samples `s0..s0+k` of `gbig` into `mg`:
    /// `[rows][e][k · tiles]`.
    fn output_tiles(&self, gbig: &[f32], s0: usize, k: usize, rows: std::ops::Range<usize>, mg: &mut [f32]) {
        let (p, tr, g) = (self.p, self.tr, self.g);
        let (cb, n, m, bl) = (p.big_channels, tr.n, tr.m, g.big_len());
        let ([_, tw], nt, nn) = (p.tiles_hw(), p.tiles(), n * n);
        let ntk = k * nt;
        mg[..rows.len() * nn * ntk].par_chunks_mut(nn * ntk).enumerate().for_each_init(
            || (vec![0f32; m * m * ntk], vec![0f32; n * m * ntk]),
            |(dy, tmp), (i, dst)| {
                let row = rows.start + i;
                let (ph, co) = (&self.phases[row / cb], row % cb);
                for si in 0..k {
                    let plane = &gbig[((s0 + si) * cb + co) * bl..][..bl];
                    for t in 0..nt {
                        let (ty, tx) = (t / tw, t % tw);
                        for a in 0..m {
                            let i = ty * m + a;
                            let row = (i < p.len[0]).then(|| RowSpan::lattice(g, ph, p.len[1], i, (tx * m) as isize, m));
                            gather_row(plane, row, m, &mut dy[a * m * ntk + si * nt + t..], ntk);
                        }
                    }
                }
                sandwich(&tr.a, n, m, dy, ntk, ntk, tmp, dst);
            },
        );
    }
}

impl WinoWeights {
    fn tiling<'a>(&'a self, g: &'a ConvGeometry) -> Tiling<'a> {
        Tiling { p: &self.plan, tr: &self.tr, phases: &self.phases, g }
    }
}

/// Transposed-convolution forward / convolution adjoint (small → big) by Winograd; `out` is
/// overwritten.
pub fn small_to_big(x: &[f32], batch: usize, ww: &WinoWeights, g: &ConvGeometry, out: &mut [f32]) {
    let tiling = ww.tiling(g);
    let (p, tr) = (&ww.plan, &ww.tr);
    let (cs, cb, n, m) = (p.small_channels, p.big_channels, tr.n, tr.m);
    let (bl, nn, rows) = (g.big_len(), n * n, tiling.rows());
    let ([_, tw], nt) = (p.tiles_hw(), p.tiles());
    let chunk = tiling.chunk(batch);
    // One set of operands for every pass (fresh pages fault: see `weight_grad`).
    let (mut v, mut prod) = (zeroed(cs * nn * chunk * nt), zeroed(nn * rows * chunk * nt));
    for s0 in (0..batch).step_by(chunk) {
        let k = chunk.min(batch - s0);
        let ntk = k * nt;
        tiling.input_tiles(x, s0, k, &mut v);
        let vm = MatRef::new(&v[..cs * nn * ntk], cs, nn * ntk);
        let prod = &mut prod[..nn * rows * ntk];
        prod.par_chunks_mut(rows * ntk).enumerate().for_each_init(Vec::new, |tmp, (e, dst)| {
            product(dst, ww.block(e), vm.cols(e * ntk, (e + 1) * ntk), tmp);
        });
        let dst = &mut out[s0 * cb * bl..][..k * cb * bl];
        dst.par_chunks_mut(bl).enumerate().for_each_init(
            || (vec![0f32; m * n * nt], vec![0f32; m * m * nt]),
            |(tmp, y), (plane_index, plane)| {
                let (si, co) = (plane_index / cb, plane_index % cb);
                plane.fill(0.0);
                for (r, ph) in ww.phases.iter().enumerate() {
                    let row = r * cb + co;
                    sandwich(&tr.at, m, n, &prod[row * ntk + si * nt..], rows * ntk, nt, tmp, y);
                    for t in 0..nt {
                        let (ty, tx) = (t / tw, t % tw);
                        for a in 0..m.min(p.len[0] - ty * m) {
                            let row = RowSpan::lattice(g, ph, p.len[1], ty * m + a, (tx * m) as isize, m);
                            scatter_row(plane, row, &y[a * m * nt + t..], nt);
                        }
                    }
                }
            },
        );
    }
}

/// Convolution forward / transposed-convolution adjoint (big → small) by Winograd; `out` is
/// overwritten.
pub fn big_to_small(gbig: &[f32], batch: usize, ww: &WinoWeights, g: &ConvGeometry, out: &mut [f32]) {
    let tiling = ww.tiling(g);
    let (p, tr) = (&ww.plan, &ww.tr);
    let (cs, n, m) = (p.small_channels, tr.n, tr.m);
    let (sl, nn, rows) = (g.small_len(), n * n, tiling.rows());
    let ([_, tw], nt, off) = (p.tiles_hw(), p.tiles(), p.offset());
    let chunk = tiling.chunk(batch);
    let (mut mg, mut vg) = (zeroed(rows * nn * chunk * nt), zeroed(nn * cs * chunk * nt));
    for s0 in (0..batch).step_by(chunk) {
        let k = chunk.min(batch - s0);
        let ntk = k * nt;
        tiling.output_tiles(gbig, s0, k, 0..rows, &mut mg);
        let mgm = MatRef::new(&mg[..rows * nn * ntk], rows, nn * ntk);
        let vg = &mut vg[..nn * cs * ntk];
        vg.par_chunks_mut(cs * ntk).enumerate().for_each_init(Vec::new, |tmp, (e, dst)| {
            product(dst, ww.block(e).t(), mgm.cols(e * ntk, (e + 1) * ntk), tmp);
        });
        let dst = &mut out[s0 * cs * sl..][..k * cs * sl];
        dst.par_chunks_mut(sl).enumerate().for_each_init(
            || (vec![0f32; nn * nt], vec![0f32; nn * nt]),
            |(tmp, dd), (plane_index, plane)| {
                let (si, ci) = (plane_index / cs, plane_index % cs);
                sandwich(&tr.b, n, n, &vg[ci * ntk + si * nt..], cs * ntk, nt, tmp, dd);
                // Overlap-add every tile's n×n data gradient; taps outside the grid read zeros
                // in the forward, so their gradient is dropped.
                plane.fill(0.0);
                for t in 0..nt {
                    let origin = [(t / tw) * m, (t % tw) * m];
                    for a in 0..n {
                        let Some(i) = (origin[0] + a).checked_sub(off[0]).filter(|&i| i < p.small[0]) else { continue };
                        for b in 0..n {
                            if let Some(j) = (origin[1] + b).checked_sub(off[1]).filter(|&j| j < p.small[1]) {
                                plane[i * p.small[1] + j] += dd[(a * n + b) * nt + t];
                            }
                        }
                    }
                }
            },
        );
    }
}

/// Weight gradient by Winograd, accumulated into `dw` (`[C_small, C_big, k, k]`): `small` on
/// the small grid, `big` (the gradient) on the big grid. With `M[e] = U[e]·V[e]` in the
/// forward, `dU[e] = Mg[e]·V[e]ᵀ` (the tiles of both sides, transformed as in the two
/// directions) and each sub-kernel's gradient is `Gᵀ·dU·G`; 2n² FLOPs per m×m outputs and
/// channel pair, like the forward, instead of 2m²r².
///
/// # Panics
///
/// If `plan` was not made for `s` or a buffer is shorter than `s` and `batch` say.
pub fn weight_grad(small: &[f32], big: &[f32], batch: usize, plan: &WinoPlan, s: &ConvShape, dw: &mut [f32]) {
    let tr = Transforms::new(plan.m, plan.taps).expect("WinoPlan::geometry checked the transforms");
    let phases = phase::phases(&s.geom);
    assert_eq!(phases.len(), plan.phases, "winograd weight_grad: plan for a different layer");
    assert!(dw.len() >= s.weight_len(), "winograd weight_grad: dw too short");
    let tiling = Tiling { p: plan, tr: &tr, phases: &phases, g: &s.geom };
    let (cs, nn, rows) = (plan.small_channels, tr.n * tr.n, tiling.rows());
    // dU in blocks of GEMM rows (all e of a row are needed for its Gᵀ·dU·G), ≤ 64 MB each,
    // summed over the whole batch before the one Gᵀ·dU·G per row (the input tiles are
    // recomputed per block: far cheaper than a transform per sample), stored transposed
    // (`[e][C_small][row]`) so that one task per input channel transforms its rows (lanes) and
    // writes only its own block of `dw`.
    let row_block = ((64usize << 20) / (nn * cs * std::mem::size_of::<f32>()).max(1)).clamp(1, rows.max(1));
    weight_grad_blocked(small, big, batch, &tiling, s, row_block, tiling.chunk(batch), dw);
}

/// [`weight_grad`] in blocks of `row_block` GEMM rows and passes of `chunk` samples.
#[allow(clippy::too_many_arguments)]
fn weight_grad_blocked(small: &[f32], big: &[f32], batch: usize, tiling: &Tiling<'_>, s: &ConvShape, row_block: usize, chunk: usize, dw: &mut [f32]) {
    let (plan, tr, phases) = (tiling.p, tiling.tr, tiling.phases);
    let (cs, cb, n, r) = (plan.small_channels, plan.big_channels, tr.n, plan.taps);
    let (nn, rows, nt) = (n * n, tiling.rows(), plan.tiles());
    let kl = s.geom.kernel_len();
    // Where tap (u1, u2) of each phase's sub-kernel sits in a `[k, k]` kernel.
    let taps: Vec<Vec<usize>> = phases.iter().map(|ph| phase::flipped_taps(&s.geom, ph, [r, r])).collect();
    // One set of operands for every block and pass: each of these buffers is tens of MB, and
    // fresh pages fault on first touch (at batch 4 that was most of the time these passes
    // took on the 2-core machine measured).
    let (mut v, mut mg) = (zeroed(cs * nn * chunk * nt), zeroed(row_block * nn * chunk * nt));
    let mut dut = zeroed(nn * cs * row_block);
    for r0 in (0..rows).step_by(row_block) {
        let (r1, width) = ((r0 + row_block).min(rows), row_block.min(rows - r0));
        let dut = &mut dut[..nn * cs * width];
        for s0 in (0..batch).step_by(chunk) {
            let k = chunk.min(batch - s0);
            let ntk = k * nt;
            tiling.input_tiles(small, s0, k, &mut v);
            tiling.output_tiles(big, s0, k, r0..r1, &mut mg);
            let (vm, mgm) = (MatRef::new(&v[..cs * nn * ntk], cs, nn * ntk), MatRef::new(&mg[..width * nn * ntk], width, nn * ntk));
            dut.par_chunks_mut(cs * width).enumerate().for_each(|(e, dst)| {
                let (c0, c1) = (e * ntk, (e + 1) * ntk);
                matmul_serial(dst, vm.cols(c0, c1), mgm.cols(c0, c1).t(), s0 > 0);
            });
        }
        // Rows (lanes) LANE_BLOCK at a time, so that the transform's operands stay in L1.
        const LANE_BLOCK: usize = 64;
        dw[..cs * cb * kl].par_chunks_mut(cb * kl).enumerate().for_each_init(
            || (vec![0f32; r * n * LANE_BLOCK], vec![0f32; r * r * LANE_BLOCK]),
            |(tmp, dk), (ci, dst)| {
                for l0 in (0..width).step_by(LANE_BLOCK) {
                    let lanes = LANE_BLOCK.min(width - l0);
                    sandwich(&tr.gt, r, n, &dut[ci * width + l0..], cs * width, lanes, tmp, dk);
                    for (lane, row) in (r0 + l0..r0 + l0 + lanes).enumerate() {
                        let (taps, co) = (&taps[row / cb], row % cb);
                        let dst = &mut dst[co * kl..][..kl];
                        for (u, &tap) in taps.iter().enumerate() {
                            dst[tap] += dk[u * lanes + lane];
                        }
                    }
                }
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_data::{check_against_gemm, pseudo, rel_diff};
    use super::super::conv;
    use super::*;

    #[test]
    fn equals_the_gemm_kernels() {
        // Transposed convolutions (small grid, kernel, stride, padding, output padding):
        // PVGG16's k14 s2 p6 on an odd grid and on a grid of whole tiles, k10 (5 taps), stride 3
        // without padding, 2 taps.
        let transposed: [([usize; 2], usize, usize, usize, usize); 5] =
            [([9, 7], 14, 2, 6, 0), ([6, 6], 14, 2, 6, 0), ([13, 11], 10, 2, 4, 0), ([6, 8], 6, 3, 0, 0), ([7, 5], 4, 2, 2, 0)];
        let mut geoms: Vec<ConvGeometry> = transposed
            .iter()
            .map(|&(hw, k, st, p, op)| ConvGeometry::for_conv_transpose([1, hw[0], hw[1]], [1, k, k], [1, st, st], [0, p, p], [0, op, op], [1, 1, 1]).unwrap())
            .collect();
        // Stride-1 convolutions (input grid, kernel, padding): VGG's 3×3 "same" on grids that
        // are and are not multiples of the 4×4 tile, a 5×5 one, no padding.
        for (hw, k, p) in [([12, 12], 3, 1), ([9, 14], 3, 1), ([11, 10], 5, 2), ([7, 9], 3, 0)] {
            geoms.push(ConvGeometry::for_conv([1, hw[0], hw[1]], [1, k, k], [1, 1, 1], [0, p, p], [1, 1, 1]).unwrap());
        }
        for geom in geoms {
            let s = ConvShape { small_channels: 6, big_channels: 5, groups: 1, geom };
            let Some(plan) = WinoPlan::geometry(&s) else {
                panic!("no Winograd plan for {geom:?}");
            };
            assert_eq!(plan.m, if plan.taps <= 3 { 4 } else { 2 });
            let w = pseudo(s.weight_len(), 2);
            for favour in [Favour::SmallToBig, Favour::BigToSmall] {
                let ww = WinoWeights::build(plan, &w, &s, favour).unwrap();
                for batch in [1, 3] {
                    let what = format!("{geom:?} {favour:?} batch {batch}");
                    let forward = |x: &[f32], out: &mut [f32]| small_to_big(x, batch, &ww, &geom, out);
                    check_against_gemm(&s, &w, batch, 2e-5, &what, forward, |y, out| big_to_small(y, batch, &ww, &geom, out));
                }
            }
        }
    }

    #[test]
    fn weight_gradient_equals_the_gemm_kernels() {
        // PVGG16's k14 s2 p6 and k10 s2 p4 shapes on odd grids, stride 3, and a stride-1 3×3.
        let mut geoms: Vec<ConvGeometry> = [([9, 7], 14, 2, 6), ([13, 11], 10, 2, 4), ([6, 8], 6, 3, 0)]
            .iter()
            .map(|&(hw, k, st, p)| ConvGeometry::for_conv_transpose([1, hw[0], hw[1]], [1, k, k], [1, st, st], [0, p, p], [0, 0, 0], [1, 1, 1]).unwrap())
            .collect();
        geoms.push(ConvGeometry::for_conv([1, 9, 14], [1, 3, 3], [1, 1, 1], [0, 1, 1], [1, 1, 1]).unwrap());
        // 5 big channels, and 40 (over 64 GEMM rows: more than one lane block of the
        // transform back to kernels).
        let shapes = geoms.iter().map(|&g| (g, 6, 5)).chain([(geoms[0], 3, 40)]);
        for (geom, cs, cb) in shapes {
            let s = ConvShape { small_channels: cs, big_channels: cb, groups: 1, geom };
            let plan = WinoPlan::geometry(&s).unwrap();
            for batch in [1, 3] {
                let small = pseudo(batch * cs * geom.small_len(), 4);
                let big = pseudo(batch * cb * geom.big_len(), 5);
                let mut want = vec![0.25f32; s.weight_len()];
                conv::weight_grad(&small, &big, batch, &s, &mut want);
                let mut got = vec![0.25f32; s.weight_len()];
                weight_grad(&small, &big, batch, &plan, &s, &mut got);
                // F(2×2, 7×7) in f32: 1e-5 on 5 channels, 3e-5 summed over 40 and 3 samples.
                assert!(rel_diff(&got, &want) < 4e-5, "{geom:?}, batch {batch}: {}", rel_diff(&got, &want));
                // Several row blocks (one of them partial) and one sample per pass.
                let (tr, phases) = (Transforms::new(plan.m, plan.taps).unwrap(), phase::phases(&geom));
                let tiling = Tiling { p: &plan, tr: &tr, phases: &phases, g: &geom };
                let mut blocked = vec![0.25f32; s.weight_len()];
                weight_grad_blocked(&small, &big, batch, &tiling, &s, 3, 1, &mut blocked);
                assert!(rel_diff(&blocked, &want) < 4e-5, "{geom:?}, batch {batch}, blocked: {}", rel_diff(&blocked, &want));
            }
        }
    }

    #[test]
    fn cost_model_and_memory_cap() {
        // PVGG16's pcoder 5 (512→512, k14 s2 p6 on 14×14): 268 MB of transformed weights,
        // 1.31× its own; tiny layers do not pay off; 8 × 8 taps are beyond the point set.
        let geom = ConvGeometry::for_conv_transpose([1, 14, 14], [1, 14, 14], [1, 2, 2], [0, 6, 6], [0, 0, 0], [1, 1, 1]).unwrap();
        let s = ConvShape { small_channels: 512, big_channels: 512, groups: 1, geom };
        let plan = WinoPlan::new(&s, usize::MAX).unwrap();
        assert_eq!(plan.weight_bytes(), 64 * 4 * 512 * 512 * 4);
        assert!(WinoPlan::new(&s, plan.weight_bytes() - 1).is_none());
        assert!(WinoPlan::new(&ConvShape { small_channels: 2, big_channels: 2, ..s }, usize::MAX).is_none());
        let geom = ConvGeometry::for_conv_transpose([1, 14, 14], [1, 16, 16], [1, 2, 2], [0, 7, 7], [0, 0, 0], [1, 1, 1]).unwrap();
        assert!(WinoPlan::geometry(&ConvShape { geom, ..s }).is_none());
        // VGG's 3×3 convolutions: F(4×4, 3×3), 4× the weights, chosen with 256 and 512
        // channels on 56² and 28² grids within the stride-1 cap, not with 128 channels, on
        // 14² grids or past the caps; 1×1 kernels never.
        let vgg_layer = |c_out: usize, c_in: usize, hw: usize| {
            let geom = ConvGeometry::for_conv([1, hw, hw], [1, 3, 3], [1, 1, 1], [0, 1, 1], [1, 1, 1]).unwrap();
            ConvShape { small_channels: c_out, big_channels: c_in, groups: 1, geom }
        };
        let vgg = vgg_layer(256, 256, 56);
        let plan = WinoPlan::geometry(&vgg).unwrap();
        assert_eq!((plan.m, plan.phases, plan.weight_bytes()), (4, 1, 4 * vgg.weight_len() * 4));
        assert_eq!(WinoPlan::new(&vgg, usize::MAX), Some(plan));
        assert!(WinoPlan::new(&vgg, plan.weight_bytes() - 1).is_none());
        assert!(WinoPlan::new(&vgg_layer(512, 512, 28), usize::MAX).is_some_and(|p| p.weight_bytes() <= MAX_STRIDE1_BYTES));
        for other in [vgg_layer(128, 128, 112), vgg_layer(256, 128, 56), vgg_layer(512, 512, 14), vgg_layer(1024, 1024, 28)] {
            assert!(WinoPlan::geometry(&other).is_some() && WinoPlan::new(&other, usize::MAX).is_none(), "{other:?}");
        }
        let geom = ConvGeometry::for_conv([1, 56, 56], [1, 1, 1], [1, 1, 1], [0, 0, 0], [1, 1, 1]).unwrap();
        assert!(WinoPlan::geometry(&ConvShape { geom, ..vgg }).is_none());
    }
}
