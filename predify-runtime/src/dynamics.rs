//! The update rule, written once.
//!
//! Pcoder `i` at timestep `t > 0`:
//!
//! ```text
//! r_i(t) = β·ff_i(t) + λ·prd_{i+1}(t−1) + m·r_i(t−1) − s·grd_i(t−1)
//! m = (1−β)−λ   (1−β for the top pcoder, which has no feedback)
//! s = α·S,  S = numel(prd_i)/√C with gradient scaling (PCoderN), else 1
//! grd_i = ∂ MSE(prd_i, target_i) / ∂ r_i, with d MSE / d prd = k·(prd − target), k = 2/numel
//! ```
//!
//! Everything that evaluates or differentiates this rule takes its coefficients from here:
//! [`crate::PNet::fire`] (through [`update`], which picks the CPU kernel, the CUDA kernel or
//! Candle's tensor ops), and the adjoints ([`UpdateCoeffs::partials`], [`UpdateCoeffs::adjoint`]).

use crate::hyper::Hyperparameters;
use candle_core::Tensor;

/// The coefficients of one pcoder's update `r = β·ff + λ·fb + m·r_prev − s·grd`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UpdateCoeffs {
    /// β: weight of the feedforward drive.
    pub beta: f32,
    /// λ: weight of the upper pcoder's prediction (unused for the top pcoder).
    pub lambda: f32,
    /// m: weight of the previous representation.
    pub memory: f32,
    /// s = α·S: weight of the error gradient.
    pub scale: f32,
}

impl UpdateCoeffs {
    /// The coefficients of a pcoder with hyperparameters `h`; `top` for the last pcoder (no
    /// feedback); `c_sqrt` its √C when gradient-scaled; `prd_numel` the number of values of its
    /// prediction (batch included, as Predify's `numel`).
    pub fn new(h: Hyperparameters, top: bool, c_sqrt: Option<f32>, prd_numel: usize) -> Self {
        Self { beta: h.feedforward, lambda: if top { 0.0 } else { h.feedback }, memory: memory_weight(h, top), scale: h.pc * error_scale(c_sqrt, prd_numel) }
    }

    /// The arguments of the CUDA kernel, in its order `[β, m, λ, s]`.
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    pub(crate) fn kernel_args(self) -> [f32; 4] {
        [self.beta, self.memory, self.lambda, self.scale]
    }

    /// Back through the update: given `r̄ = ∂L/∂r`, the adjoints of its operands
    /// `(∂L/∂ff, ∂L/∂r_prev, ∂L/∂fb, ∂L/∂grd) = (β·r̄, m·r̄, λ·r̄, −s·r̄)`; `None` for the
    /// feedback of the top pcoder.
    pub fn adjoint(self, rbar: &Tensor) -> candle_core::Result<UpdateAdjoint> {
        Ok(UpdateAdjoint {
            ff: rbar.affine(self.beta as f64, 0.0)?,
            rep: rbar.affine(self.memory as f64, 0.0)?,
            fb: if self.lambda == 0.0 { None } else { Some(rbar.affine(self.lambda as f64, 0.0)?) },
            grd: rbar.affine(-self.scale as f64, 0.0)?,
        })
    }

    /// `∂r/∂β`, `∂r/∂λ`, `∂r/∂α` contracted with `r̄`: `⟨r̄, ff − r_prev⟩`, `⟨r̄, fb − r_prev⟩`
    /// (0 for the top pcoder: its memory weight is 1−β) and `−S·⟨r̄, grd⟩`; `S` is
    /// [`error_scale`] of the pcoder.
    pub fn partials(top: bool, s: f32, rbar: &Tensor, ff: &Tensor, rep: &Tensor, fb: Option<&Tensor>, grd: &Tensor) -> candle_core::Result<[f64; 3]> {
        // One pass over all operands, f64 sums: ⟨r̄, ff − r⟩ = ⟨r̄, ff⟩ − ⟨r̄, r⟩ loses nothing
        // there (f32 products are exact in f64).
        let fb = fb.filter(|_| !top);
        let mut operands = vec![ff, rep, grd];
        operands.extend(fb);
        let d = crate::ops::dots(rbar, &operands)?;
        let dlambda = if fb.is_some() { d[3] - d[1] } else { 0.0 };
        Ok([d[0] - d[1], dlambda, -d[2] * s as f64])
    }
}

/// What [`UpdateCoeffs::adjoint`] returns: the gradient reaching each operand of the update.
#[derive(Debug, Clone)]
pub struct UpdateAdjoint {
    /// Into the feedforward drive.
    pub ff: Tensor,
    /// Into the previous representation.
    pub rep: Tensor,
    /// Into the upper pcoder's prediction (`None` for the top pcoder).
    pub fb: Option<Tensor>,
    /// Into the error gradient.
    pub grd: Tensor,
}

/// The memory weight: `(1−β)−λ` evaluated in f32 as Predify does; `1−β` for the top pcoder.
pub fn memory_weight(h: Hyperparameters, top: bool) -> f32 {
    if top {
        1.0 - h.feedforward
    } else {
        h.memory()
    }
}

/// The error term's scale `S` (α·S multiplies `grd`): `numel(prd)/√C` with gradient scaling
/// (`c_sqrt` given), else 1.
pub fn error_scale(c_sqrt: Option<f32>, prd_numel: usize) -> f32 {
    match c_sqrt {
        Some(c) => prd_numel as f32 / c,
        None => 1.0,
    }
}

/// The factor `k` of the prediction error's gradient `k·(prd − target)`: `2/numel`, Predify's
/// mean squared error over the whole batch.
pub fn error_grad_factor(prd_numel: usize) -> f64 {
    2.0 / prd_numel as f64
}

/// The update `β·ff + λ·fb + m·r_prev − s·grd` (`fb` absent for the top pcoder): one fused pass
/// on the CPU, one kernel on CUDA devices, Candle's tensor ops elsewhere.
pub fn update(ff: &Tensor, r_prev: &Tensor, fb: Option<&Tensor>, grd: &Tensor, c: UpdateCoeffs) -> crate::Result<Tensor> {
    #[cfg(feature = "cuda")]
    if ff.device().is_cuda() {
        if let Some(r) = crate::cuda::fused_update(ff, r_prev, fb, grd, c.kernel_args())? {
            return Ok(r);
        }
    }
    if crate::ops::update_on_cpu(ff, r_prev, fb, grd) {
        return Ok(crate::ops::update(ff, r_prev, fb, grd, c)?);
    }
    Ok(update_tensors(ff, r_prev, fb, grd, c)?)
}

/// [`update`] with Candle's tensor ops (any device, any float dtype; records autograd).
pub fn update_tensors(ff: &Tensor, r_prev: &Tensor, fb: Option<&Tensor>, grd: &Tensor, c: UpdateCoeffs) -> candle_core::Result<Tensor> {
    let mut r = (ff.affine(c.beta as f64, 0.0)? + r_prev.affine(c.memory as f64, 0.0)?)?;
    if let Some(fb) = fb {
        r = (r + fb.affine(c.lambda as f64, 0.0)?)?;
    }
    r - grd.affine(c.scale as f64, 0.0)?
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn coefficients_follow_predify() {
        let h = Hyperparameters { feedforward: 0.3, feedback: 0.2, pc: 0.01 };
        let c = UpdateCoeffs::new(h, false, Some(4.0), 200);
        assert_eq!(c.memory, (1.0f32 - 0.3) - 0.2);
        assert_eq!(c.scale, 0.01 * (200.0 / 4.0));
        let top = UpdateCoeffs::new(h, true, None, 200);
        assert_eq!((top.memory, top.lambda, top.scale), (1.0 - 0.3, 0.0, 0.01));
        assert_eq!(top.kernel_args(), [0.3, 0.7, 0.0, 0.01]);
    }

    #[test]
    fn adjoint_and_partials_match_finite_differences() {
        let dev = &Device::Cpu;
        let mk = |s: f32| Tensor::from_vec((0..6).map(|i| ((i as f32 + 1.0) * s).sin()).collect::<Vec<f32>>(), 6, dev).unwrap();
        let (ff, r, fb, g, rbar) = (mk(0.3), mk(0.5), mk(0.7), mk(1.1), mk(1.3));
        let h = Hyperparameters { feedforward: 0.3, feedback: 0.2, pc: 0.05 };
        let loss = |h: Hyperparameters| -> f64 {
            let c = UpdateCoeffs::new(h, false, Some(2.0), 6);
            let out = update_tensors(&ff.to_dtype(candle_core::DType::F64).unwrap(), &r.to_dtype(candle_core::DType::F64).unwrap(), Some(&fb.to_dtype(candle_core::DType::F64).unwrap()), &g.to_dtype(candle_core::DType::F64).unwrap(), c).unwrap();
            (out * rbar.to_dtype(candle_core::DType::F64).unwrap()).unwrap().sum_all().unwrap().to_scalar::<f64>().unwrap()
        };
        let p = UpdateCoeffs::partials(false, error_scale(Some(2.0), 6), &rbar, &ff, &r, Some(&fb), &g).unwrap();
        let e = 1e-3f32;
        let fd = |f: &dyn Fn(f32) -> Hyperparameters| (loss(f(e)) - loss(f(-e))) / (2.0 * e as f64);
        let want = [
            fd(&|d| Hyperparameters { feedforward: h.feedforward + d, ..h }),
            fd(&|d| Hyperparameters { feedback: h.feedback + d, ..h }),
            fd(&|d| Hyperparameters { pc: h.pc + d, ..h }),
        ];
        for (k, (a, b)) in p.iter().zip(want).enumerate() {
            assert!((a - b).abs() < 1e-3 * (1.0 + b.abs()), "partial {k}: {a} vs {b}");
        }
        let c = UpdateCoeffs::new(h, false, Some(2.0), 6);
        let adj = c.adjoint(&rbar).unwrap();
        let first = |t: &Tensor| t.to_vec1::<f32>().unwrap()[0];
        assert!((first(&adj.ff) - 0.3 * first(&rbar)).abs() < 1e-7);
        assert!((first(&adj.fb.unwrap()) - 0.2 * first(&rbar)).abs() < 1e-7);
        assert!((first(&adj.grd) + c.scale * first(&rbar)).abs() < 1e-7);
    }
}
