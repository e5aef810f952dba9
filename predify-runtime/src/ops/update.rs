//! The element-wise steps of a pcoder's firing, fused into single passes.
//!
//! Written with Candle's tensor ops, the update `r = β·ff + λ·fb + m·r − s·grd` is eight passes
//! over memory and eight allocations, and the prediction error another five; each of Candle's
//! parallel element-wise ops also wakes its own thread pool next to rayon's. Here each step is
//! one pass on rayon. Other devices take the tensor-op route (see [`update`], [`scaled_error`]).

use super::{f32_in_place, f32_slice};
use crate::dynamics::UpdateCoeffs;
use crate::kernels::zeroed::zeroed;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, DType, InplaceOp2, Layout, Shape, Tensor};
use rayon::prelude::*;

/// Elements per rayon task: large enough that a task outweighs its scheduling.
const CHUNK: usize = 32 * 1024;

/// `β·ff + m·r − s·grd` over (ff, r, grd).
struct UpdateOp(UpdateCoeffs);

impl CustomOp3 for UpdateOp {
    fn name(&self) -> &'static str {
        "predify-update"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout, s3: &CpuStorage, l3: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (ff, r, g) = (f32_slice(s1, l1, self.name())?, f32_slice(s2, l2, self.name())?, f32_slice(s3, l3, self.name())?);
        if ff.len() != r.len() || ff.len() != g.len() {
            candle_core::bail!("predify-update: operands {:?}, {:?}, {:?} differ in size", l1.dims(), l2.dims(), l3.dims());
        }
        let UpdateCoeffs { beta, memory, scale, .. } = self.0;
        let mut out = zeroed(ff.len());
        out.par_chunks_mut(CHUNK).enumerate().for_each(|(c, dst)| {
            let o = c * CHUNK;
            let (ff, r, g) = (&ff[o..o + dst.len()], &r[o..o + dst.len()], &g[o..o + dst.len()]);
            for (((d, &f), &rv), &gv) in dst.iter_mut().zip(ff).zip(r).zip(g) {
                *d = beta * f + memory * rv - scale * gv;
            }
        });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// `dst += a·src`, in place.
struct AxpyOp(f32);

impl InplaceOp2 for AxpyOp {
    fn name(&self) -> &'static str {
        "predify-axpy"
    }

    fn cpu_fwd(&self, s1: &mut CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> candle_core::Result<()> {
        let (dst, src) = f32_in_place(s1, l1, s2, l2, self.name())?;
        let k = self.0;
        dst.par_chunks_mut(CHUNK).zip(src.par_chunks(CHUNK)).for_each(|(d, s)| {
            d.iter_mut().zip(s).for_each(|(d, &s)| *d += k * s);
        });
        Ok(())
    }
}

/// `(prd − target)·k` over (prd, target).
struct ScaledDiffOp(f32);

impl CustomOp2 for ScaledDiffOp {
    fn name(&self) -> &'static str {
        "predify-scaled-diff"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (p, t) = (f32_slice(s1, l1, self.name())?, f32_slice(s2, l2, self.name())?);
        if p.len() != t.len() {
            candle_core::bail!("predify-scaled-diff: {:?} and {:?} differ in size", l1.dims(), l2.dims());
        }
        let k = self.0;
        let mut out = zeroed(p.len());
        out.par_chunks_mut(CHUNK).zip(p.par_chunks(CHUNK).zip(t.par_chunks(CHUNK))).for_each(|(d, (p, t))| {
            for ((d, &a), &b) in d.iter_mut().zip(p).zip(t) {
                *d = (a - b) * k;
            }
        });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// ReLU's backward over (x, g): `g` where `x > 0`, else 0 (PyTorch's derivative, 0 at 0).
struct ReluGradOp;

impl CustomOp2 for ReluGradOp {
    fn name(&self) -> &'static str {
        "predify-relu-grad"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, g) = (f32_slice(s1, l1, self.name())?, f32_slice(s2, l2, self.name())?);
        if x.len() != g.len() {
            candle_core::bail!("predify-relu-grad: {:?} and {:?} differ in size", l1.dims(), l2.dims());
        }
        let mut out = zeroed(x.len());
        out.par_chunks_mut(CHUNK).zip(x.par_chunks(CHUNK).zip(g.par_chunks(CHUNK))).for_each(|(d, (x, g))| {
            for ((d, &x), &g) in d.iter_mut().zip(x).zip(g) {
                *d = if x > 0.0 { g } else { 0.0 };
            }
        });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// The vector–Jacobian product of ReLU at `x` for the output gradient `g`: `g·[x > 0]`
/// (derivative 0 at exactly 0, as PyTorch's); one fused pass on the CPU (the tensor-op form is
/// a comparison, a conversion and a product, each a single-threaded pass with an allocation),
/// Candle's ops elsewhere. Also the Jacobian–vector product, ReLU's Jacobian being diagonal.
pub(crate) fn relu_grad(x: &Tensor, g: &Tensor) -> candle_core::Result<Tensor> {
    if x.dims() != g.dims() {
        candle_core::bail!("relu_grad: {:?} and {:?} differ in shape", x.dims(), g.dims());
    }
    if x.device().is_cpu() && g.device().is_cpu() && x.dtype() == DType::F32 && g.dtype() == DType::F32 {
        return x.contiguous()?.apply_op2_no_bwd(&g.contiguous()?, &ReluGradOp);
    }
    g * x.gt(0f32)?.to_dtype(g.dtype())?
}

/// `Σ x²` as a 0-dim tensor, accumulated in f64 per chunk.
struct SumSquaresOp;

impl CustomOp1 for SumSquaresOp {
    fn name(&self) -> &'static str {
        "predify-sum-squares"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = f32_slice(s, l, self.name())?;
        let total: f64 = x.par_chunks(CHUNK).map(sum_squares).sum();
        Ok((CpuStorage::F32(vec![total as f32]), Shape::from(())))
    }
}

/// Σ v² in f64 over 8 independent lanes: a single running f64 sum is one dependent add per
/// value (its latency, not the data, bounds it), which the compiler may not reorder.
fn sum_squares(c: &[f32]) -> f64 {
    let mut lanes = [0f64; 8];
    let mut it = c.chunks_exact(8);
    for v in &mut it {
        for (l, &x) in lanes.iter_mut().zip(v) {
            *l += x as f64 * x as f64;
        }
    }
    let tail: f64 = it.remainder().iter().map(|&x| x as f64 * x as f64).sum();
    lanes.iter().sum::<f64>() + tail
}

/// `⟨a, b_j⟩` for each `b_j`, accumulated in f64 (products of f32 values are exact in f64): on
/// the CPU one parallel pass over all operands, elsewhere Candle's ops. The hyperparameter
/// partials of the backward pass need three such products per pcoder and timestep, which as
/// tensor ops (a temporary per product, a single-threaded f32 sum) cost more than the rest of
/// the pcoder's update adjoint.
pub(crate) fn dots(a: &Tensor, bs: &[&Tensor]) -> candle_core::Result<Vec<f64>> {
    for b in bs {
        if b.dims() != a.dims() {
            candle_core::bail!("dots: {:?} and {:?} differ in shape", a.dims(), b.dims());
        }
    }
    let cpu = |t: &Tensor| t.device().is_cpu() && t.dtype() == DType::F32;
    if !(cpu(a) && bs.iter().all(|b| cpu(b))) {
        return bs.iter().map(|b| (a * *b)?.sum_all()?.to_dtype(DType::F64)?.to_scalar::<f64>()).collect();
    }
    let tensors: Vec<Tensor> = std::iter::once(a).chain(bs.iter().copied()).map(|t| t.contiguous()).collect::<candle_core::Result<_>>()?;
    let guards: Vec<_> = tensors.iter().map(|t| t.storage_and_layout()).collect();
    let mut slices = Vec::with_capacity(guards.len());
    for (storage, layout) in &guards {
        let candle_core::Storage::Cpu(s) = &**storage else {
            candle_core::bail!("dots: operand not on the CPU");
        };
        slices.push(f32_slice(s, layout, "dots")?);
    }
    let (x, ys) = (slices[0], &slices[1..]);
    let k = ys.len();
    let sums = (0..x.len().div_ceil(CHUNK))
        .into_par_iter()
        .map(|c| {
            let (lo, hi) = (c * CHUNK, ((c + 1) * CHUNK).min(x.len()));
            ys.iter().map(|y| dot_chunk(&x[lo..hi], &y[lo..hi])).collect::<Vec<f64>>()
        })
        .reduce(|| vec![0.0; k], |a, b| a.iter().zip(&b).map(|(a, b)| a + b).collect());
    Ok(sums)
}

/// Σ x·y in f64 over 8 independent lanes (see [`sum_squares`]).
fn dot_chunk(x: &[f32], y: &[f32]) -> f64 {
    let mut lanes = [0f64; 8];
    let (mut xs, mut ys) = (x.chunks_exact(8), y.chunks_exact(8));
    for (a, b) in (&mut xs).zip(&mut ys) {
        for ((l, &a), &b) in lanes.iter_mut().zip(a).zip(b) {
            *l += a as f64 * b as f64;
        }
    }
    let tail: f64 = xs.remainder().iter().zip(ys.remainder()).map(|(&a, &b)| a as f64 * b as f64).sum();
    lanes.iter().sum::<f64>() + tail
}

/// Whether no value is NaN or ±∞ (exponent bits all set), as an OR over integer lanes, which
/// vectorises (a float fold would be one dependent add per value).
fn chunk_finite(c: &[f32]) -> bool {
    c.iter().fold(0u32, |m, &v| m | u32::from(v.to_bits() & 0x7f80_0000 == 0x7f80_0000)) == 0
}

/// Whether [`update`] can run these operands: f32 on the CPU.
pub(crate) fn update_on_cpu(ff: &Tensor, r_prev: &Tensor, fb: Option<&Tensor>, grd: &Tensor) -> bool {
    [Some(ff), Some(r_prev), fb, Some(grd)].iter().flatten().all(|t| t.device().is_cpu() && t.dtype() == DType::F32)
}

/// The representation update (see [`crate::dynamics`]) in one fused pass over f32 CPU
/// operands ([`update_on_cpu`]); `fb` absent for the top pcoder.
pub(crate) fn update(ff: &Tensor, r_prev: &Tensor, fb: Option<&Tensor>, grd: &Tensor, c: UpdateCoeffs) -> candle_core::Result<Tensor> {
    let r = ff.contiguous()?.apply_op3_no_bwd(&r_prev.contiguous()?, &grd.contiguous()?, &UpdateOp(c))?;
    if let Some(fb) = fb {
        // `r` is fresh: nobody else sees it change.
        r.inplace_op2(&fb.contiguous()?, &AxpyOp(c.lambda))?;
    }
    Ok(r)
}

/// `(prd − target)·k` and `Σ (prd − target)²`: the error term's gradient scale and the squared
/// error, in two passes instead of Candle's five.
pub(crate) fn scaled_error(prd: &Tensor, target: &Tensor, k: f64) -> candle_core::Result<(Tensor, f32)> {
    let on_cpu = prd.device().is_cpu() && target.device().is_cpu() && prd.dtype() == DType::F32 && target.dtype() == DType::F32;
    if !on_cpu {
        let diff = (prd - target)?;
        let sq = diff.sqr()?.sum_all()?.to_dtype(DType::F32)?.to_scalar::<f32>()?;
        return Ok((diff.affine(k, 0.0)?, sq));
    }
    let d = prd.contiguous()?.apply_op2_no_bwd(&target.contiguous()?, &ScaledDiffOp(k as f32))?;
    // Σ(k·diff)² / k² = Σ diff².
    let sq = d.apply_op1_no_bwd(&SumSquaresOp)?.to_scalar::<f32>()? as f64 / (k * k);
    Ok((d, sq as f32))
}

/// Whether every value is finite; on the CPU one vectorisable pass without temporaries.
pub(crate) fn all_finite(t: &Tensor) -> candle_core::Result<bool> {
    if t.device().is_cpu() && t.dtype() == DType::F32 && t.is_contiguous() {
        let (storage, layout) = t.storage_and_layout();
        if let candle_core::Storage::Cpu(cpu) = &*storage {
            let x = f32_slice(cpu, layout, "all_finite")?;
            // x·0 is NaN exactly for NaN and ±inf.
            return Ok(x.par_chunks(CHUNK).all(chunk_finite));
        }
    }
    let s = t.abs()?.sum_all()?.to_dtype(DType::F64)?.to_scalar::<f64>()?;
    Ok(s.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn t(v: &[f32]) -> Tensor {
        Tensor::from_slice(v, v.len(), &Device::Cpu).unwrap()
    }

    #[test]
    fn fused_update_matches_tensor_ops() {
        let n = 70_000; // more than one chunk
        let mk = |s: f32| t(&(0..n).map(|i| ((i as f32) * s).sin()).collect::<Vec<_>>());
        let (ff, r, fb, g) = (mk(0.1), mk(0.2), mk(0.3), mk(0.4));
        let c = UpdateCoeffs { beta: 0.3, lambda: 0.2, memory: 0.5, scale: 0.07 };
        let got = update(&ff, &r, Some(&fb), &g, c).unwrap().to_vec1::<f32>().unwrap();
        let want = (((ff.affine(0.3, 0.0).unwrap() + r.affine(0.5, 0.0).unwrap()).unwrap() + fb.affine(0.2, 0.0).unwrap()).unwrap() - g.affine(0.07, 0.0).unwrap()).unwrap();
        let want = want.to_vec1::<f32>().unwrap();
        let d = got.iter().zip(&want).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(d < 1e-6, "{d}");
        // The inputs are untouched (the feedback term is added in place on the fresh output).
        assert_eq!(fb.to_vec1::<f32>().unwrap()[1], (0.3f32).sin());
        let top = update(&ff, &r, None, &g, c).unwrap().to_vec1::<f32>().unwrap();
        assert!((top[5] - (0.3 * ff.to_vec1::<f32>().unwrap()[5] + 0.5 * (1.0f32).sin() - 0.07 * (2.0f32).sin())).abs() < 1e-6);
    }

    #[test]
    fn relu_grad_is_the_masked_gradient() {
        let d = &candle_core::Device::Cpu;
        let x = Tensor::new(&[-1.0f32, 0.0, 2.0, f32::NAN, 3.0], d).unwrap();
        let g = Tensor::new(&[1.0f32, 2.0, 3.0, 4.0, -5.0], d).unwrap();
        assert_eq!(relu_grad(&x, &g).unwrap().to_vec1::<f32>().unwrap(), [0.0, 0.0, 3.0, 0.0, -5.0]);
        let want = (&g * x.gt(0f32).unwrap().to_dtype(DType::F32).unwrap()).unwrap();
        assert_eq!(relu_grad(&x, &g).unwrap().to_vec1::<f32>().unwrap(), want.to_vec1::<f32>().unwrap());
    }

    #[test]
    fn dots_match_tensor_ops() {
        let d = &candle_core::Device::Cpu;
        let n = 3 * CHUNK + 13;
        let mk = |s: f32| Tensor::from_vec((0..n).map(|i| ((i as f32) * s).sin()).collect::<Vec<f32>>(), n, d).unwrap();
        let (a, b, c) = (mk(0.1), mk(0.37), mk(1.3));
        let got = dots(&a, &[&b, &c]).unwrap();
        let want = |y: &Tensor| (a.to_dtype(DType::F64).unwrap() * y.to_dtype(DType::F64).unwrap()).unwrap().sum_all().unwrap().to_scalar::<f64>().unwrap();
        assert!((got[0] - want(&b)).abs() < 1e-9 && (got[1] - want(&c)).abs() < 1e-9, "{got:?}");
        assert!(dots(&a, &[&mk(0.2).narrow(0, 0, 5).unwrap()]).is_err());
    }

    #[test]
    fn scaled_error_and_finiteness() {
        let (p, q) = (t(&[1.0, 2.0, 4.0]), t(&[0.5, 2.0, 1.0]));
        let (d, sq) = scaled_error(&p, &q, 2.0 / 3.0).unwrap();
        assert_eq!(d.to_vec1::<f32>().unwrap(), vec![0.5 * 2.0 / 3.0, 0.0, 3.0 * 2.0 / 3.0]);
        assert!((sq - 9.25).abs() < 1e-5, "{sq}");
        assert!(all_finite(&p).unwrap());
        assert!(!all_finite(&t(&[1.0, f32::NAN])).unwrap());
        assert!(!all_finite(&t(&[f32::NEG_INFINITY, 0.0])).unwrap());
    }

    #[test]
    fn lane_reductions_cover_every_value() {
        // 8-lane bodies plus a tail: a value in either part must count.
        let v: Vec<f32> = (1..=13).map(|i| i as f32).collect();
        assert_eq!(sum_squares(&v), (1..=13).map(|i| (i * i) as f64).sum::<f64>());
        for bad in [3usize, 11] {
            let mut w = v.clone();
            w[bad] = f32::INFINITY;
            assert!(!chunk_finite(&w));
            w[bad] = f32::NAN;
            assert!(!chunk_finite(&w));
        }
        assert!(chunk_finite(&v) && chunk_finite(&[f32::MAX, -f32::MIN_POSITIVE]));
    }
}
