//! Gradients through the unrolled dynamics: a recording ([`Tape`]) of `T` timesteps of any
//! [`Segmented`] network and its backward pass ([`Tape::backward`]) to the input, every
//! predictor parameter and every pcoder's β, λ, α (and Predify's logits of them), for a loss on
//! the logits of any subset of timesteps.
//!
//! # Forward
//!
//! Timestep 0 is the feedforward pass (`r_i(0) = ff_i(0)`); every later timestep applies the
//! update of [`crate::dynamics`] with [`crate::PNet::update_coeffs`], and every prediction step
//! is [`crate::PNet::predict`], the same code [`crate::PNet::fire`] runs, so the recording
//! agrees with [`crate::Predified::run`] (a test checks it). The backbone runs segment by
//! segment ([`Segmented::segment_forward`]).
//!
//! # Two semantics for the error term
//!
//! `grd_i(t) = J_Pᵀ·k·(P(r_i(t)) − y_i(t))` (`P` pcoder i's predictor, `J_P` its Jacobian at
//! `r_i(t)`, `y_i` its target: the input for the first pcoder, `r_{i−1}(t)` otherwise,
//! `k = 2/numel`) enters `r_i(t+1)` as `−s_i·grd_i(t)`.
//!
//! * [`Semantics::Predify`]: `grd` is a constant, as in the original, which computes it with
//!   `torch.autograd.grad` without `create_graph` (the unrolled-gradient fixtures of
//!   `shared/fixtures-unroll` record this). Gradients flow through `β·ff`, `λ·prd_{i+1}`, the
//!   memory term and the backbone only; a predictor whose prediction reaches the loss only
//!   through the error term (the first pcoder's) gets gradient 0.
//! * [`Semantics::Exact`]: the derivative of the dynamics as written. With `ḡ = ∂L/∂grd_i(t)`
//!   (`= −s_i·∂L/∂r_i(t+1)`), `u = J_P·ḡ` and `e = P(r) − y`, `⟨ḡ, grd⟩ = k·⟨u, e⟩`, so
//!   `∂/∂y = −k·u`, `∂/∂r = J_Pᵀ·k·u` and `∂/∂θ = ∂_θ⟨P(r; θ), k·u⟩ + ∂_θ⟨J_P(θ)·ḡ, k·e⟩`.
//!   This assumes the predictor's Jacobian is locally constant in `r`: true for convolutions,
//!   transposed convolutions and upsampling (linear in their input), and almost everywhere for
//!   ReLU (its mask is piecewise constant; its second derivative is 0 except on the kink,
//!   where PyTorch's convention, derivative 0 at exactly 0, is used throughout). The same
//!   holds for the masks' dependence on the weights, so only the convolution weights of the
//!   tangent map `J_P(θ)` contribute the second weight term (biases drop out of it).
//!
//! Backbone weights get no gradient (the [`Segmented`] contract gives input VJPs only).
//!
//! # Cost
//!
//! The recording keeps per timestep and pcoder the feedforward drive, the representation, the
//! prediction, `grd` and the predictor's layer inputs (`k·e` is recomputed when needed). The backward pass re-runs each
//! backbone segment's forward pass inside its VJP (that is what [`Segmented`] offers); the
//! predictors' backward passes reuse the recorded traces.

use crate::chain::Segmented;
use crate::dynamics::{self, UpdateAdjoint, UpdateCoeffs};
use crate::error::{usage, Error, Result};
use crate::predictor::Trace;
use candle_core::{DType, Tensor};
use std::collections::HashMap;

/// How the error term `−α·S·grd` is differentiated (see the [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Semantics {
    /// `grd` is a constant in the next update, as in the original Predify.
    #[default]
    Predify,
    /// `grd`'s dependence on the representation, the target and the predictor weights is
    /// differentiated too (second order through the predictor).
    Exact,
}

/// What [`Tape::backward`] computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackwardOptions {
    /// How the error term is differentiated.
    pub semantics: Semantics,
    /// Whether to compute the predictor parameters' gradients (an attack needs only the
    /// input's; skipping them saves the weight-gradient convolutions).
    pub params: bool,
}

impl BackwardOptions {
    /// Predify's semantics, all gradients.
    pub fn predify() -> Self {
        Self { semantics: Semantics::Predify, params: true }
    }

    /// The exact derivative, all gradients.
    pub fn exact() -> Self {
        Self { semantics: Semantics::Exact, params: true }
    }

    /// The same without the predictor parameters' gradients.
    pub fn without_params(self) -> Self {
        Self { params: false, ..self }
    }
}

impl Default for BackwardOptions {
    fn default() -> Self {
        Self::predify()
    }
}

/// What one timestep of a [`Tape`] records, per pcoder in feedforward order.
#[derive(Debug, Clone)]
pub struct Step {
    /// Each pcoder's feedforward drive `ff_i(t)`.
    pub ff: Vec<Tensor>,
    /// Each pcoder's representation `r_i(t)`.
    pub rep: Vec<Tensor>,
    /// Each pcoder's prediction `P_i(r_i(t))` of its target.
    pub prd: Vec<Tensor>,
    /// Each pcoder's error gradient `grd_i(t)` (unscaled; used at `t + 1`).
    pub grd: Vec<Tensor>,
    /// The logits of the timestep.
    pub logits: Tensor,
    /// Each predictor's layer inputs at `r_i(t)`.
    traces: Vec<Trace>,
}

/// A recording of `T` unrolled timesteps of a [`Segmented`] network on one input batch, with
/// what [`Tape::backward`] needs.
///
/// The recording belongs to the network it was made with; [`Tape::backward`] refuses a network
/// whose update coefficients have changed since (the backward pass uses the recorded ones).
#[derive(Debug, Clone)]
pub struct Tape {
    input: Tensor,
    steps: Vec<Step>,
    /// Each pcoder's update coefficients and error scale `S` as recorded.
    coeffs: Vec<UpdateCoeffs>,
    scales: Vec<f32>,
}

/// The gradients [`Tape::backward`] returns.
#[derive(Debug, Clone)]
pub struct UnrollGrads {
    /// `∂L/∂x`, shaped like the input.
    pub input: Tensor,
    /// `∂L/∂θ` of every predictor parameter, named and ordered as
    /// [`crate::PNet::feedback_vars`] (zeros for a parameter the loss does not reach); empty
    /// when [`BackwardOptions::params`] is off.
    pub params: Vec<(String, Tensor)>,
    /// `[∂L/∂β, ∂L/∂λ, ∂L/∂α]` of each pcoder's own hyperparameters. With shared
    /// hyperparameters the gradient of the shared value is the sum over pcoders.
    pub hyper: Vec<[f64; 3]>,
    /// The same chained to each pcoder's logits `[ff_part, fb_part, mem_part, errorm]`
    /// ([`crate::HyperLogits::chain`]); summed over pcoders for shared hyperparameters, too.
    pub hyper_logits: Vec<[f64; 4]>,
}

fn add(acc: &mut Option<Tensor>, g: Tensor) -> Result<()> {
    *acc = Some(match acc.take() {
        Some(a) => (a + g)?,
        None => g,
    });
    Ok(())
}

impl Tape {
    /// Run `steps` timesteps (timestep 0 = the feedforward pass) of `model` on the batch `x`
    /// (f32, `[N, ..input_size]`) and record them.
    pub fn record<M: Segmented + ?Sized>(model: &M, x: &Tensor, steps: usize) -> Result<Self> {
        Self::record_impl(model, x, steps, None)
    }

    /// [`Tape::record`] with every error gradient taken from `frozen` instead of computed:
    /// `grd_i(t) = frozen.steps()[t].grd[i]`. At `frozen`'s own point this is the same
    /// forward pass, and the gradient of its loss is exactly what [`Semantics::Predify`]
    /// computes, which makes it the objective to check that semantics against (and the
    /// forward pass hyperparameter tuning differentiates).
    pub fn record_frozen<M: Segmented + ?Sized>(model: &M, x: &Tensor, steps: usize, frozen: &Tape) -> Result<Self> {
        if frozen.steps.len() < steps || frozen.coeffs.len() != model.pnet().len() {
            return usage(format!(
                "frozen error gradients: {} timesteps of {} pcoders recorded, {steps} timesteps of {} needed",
                frozen.steps.len(),
                frozen.coeffs.len(),
                model.pnet().len()
            ));
        }
        Self::record_impl(model, x, steps, Some(frozen))
    }

    fn record_impl<M: Segmented + ?Sized>(model: &M, x: &Tensor, steps: usize, frozen: Option<&Tape>) -> Result<Self> {
        let pnet = model.pnet();
        let n = pnet.len();
        if steps == 0 {
            return usage("an unrolled recording needs at least one timestep");
        }
        // The same checks of the batch as a state's.
        pnet.new_state(x.clone())?;
        let mut tape = Tape { input: x.clone(), steps: Vec::with_capacity(steps), coeffs: Vec::with_capacity(n), scales: Vec::with_capacity(n) };
        for t in 0..steps {
            let mut rec = Step { ff: Vec::with_capacity(n), rep: Vec::with_capacity(n), prd: Vec::with_capacity(n), grd: Vec::with_capacity(n), logits: x.clone(), traces: Vec::with_capacity(n) };
            for i in 0..n {
                let below = if i == 0 { x } else { &rec.rep[i - 1] };
                let ff = model.segment_forward(i, below)?;
                let rep = match tape.steps.last() {
                    None => ff.clone(),
                    // The upper pcoder has not fired yet in this timestep: its prediction is from t−1.
                    Some(prev) => dynamics::update(&ff, &prev.rep[i], prev.prd.get(i + 1), &prev.grd[i], tape.coeffs[i])?,
                };
                if !crate::ops::all_finite(&rep)? {
                    return Err(Error::NonFinite { pcoder: i + 1, what: "the representation", timestep: t });
                }
                let p = pnet.predict(i, &rep, below)?;
                let grd = match frozen {
                    Some(f) => {
                        let g = &f.steps[t].grd[i];
                        if g.dims() != p.grd.dims() {
                            return crate::error::shape_err(format!("pcoder{}: frozen error gradient at timestep {t}", i + 1), format!("{:?}", p.grd.dims()), g.dims());
                        }
                        g.clone()
                    }
                    None => p.grd,
                };
                rec.ff.push(ff);
                rec.rep.push(rep);
                rec.prd.push(p.prd);
                rec.grd.push(grd);
                rec.traces.push(p.trace);
            }
            rec.logits = model.segment_forward(n, &rec.rep[n - 1])?;
            if t == 0 {
                // The coefficients depend on the prediction's size (S of gradient scaling).
                for i in 0..n {
                    let numel = pnet.error_numel(&rec.prd[i]);
                    tape.coeffs.push(pnet.update_coeffs(i, numel)?);
                    tape.scales.push(dynamics::error_scale(pnet.pcoders()[i].c_sqrt(), numel));
                }
            }
            tape.steps.push(rec);
        }
        Ok(tape)
    }

    /// The input batch.
    pub fn input(&self) -> &Tensor {
        &self.input
    }

    /// The recorded timesteps.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// The logits of every timestep.
    pub fn logits(&self) -> Vec<Tensor> {
        self.steps.iter().map(|s| s.logits.clone()).collect()
    }

    /// Backpropagate `dlogits[t] = ∂L/∂logits(t)` (`None`: timestep `t`'s logits are not in
    /// the loss) through the recording: the gradients w.r.t. the input, the predictor
    /// parameters and the hyperparameters, under `opts.semantics`. `model` must be the network
    /// the recording was made with (same weights and hyperparameters).
    pub fn backward<M: Segmented + ?Sized>(&self, model: &M, dlogits: &[Option<Tensor>], opts: BackwardOptions) -> Result<UnrollGrads> {
        let pnet = model.pnet();
        let n = pnet.len();
        let steps = self.steps.len();
        if dlogits.len() != steps {
            return usage(format!("{} logit gradients for a recording of {steps} timesteps", dlogits.len()));
        }
        if self.coeffs.len() != n {
            return usage(format!("the recording has {} pcoders, the network {n}", self.coeffs.len()));
        }
        for (i, c) in self.coeffs.iter().enumerate() {
            if pnet.update_coeffs(i, pnet.error_numel(&self.steps[0].prd[i]))? != *c {
                return usage(format!("pcoder{}: the hyperparameters changed since the recording", i + 1));
            }
        }
        let exact = opts.semantics == Semantics::Exact;
        let mut dx: Option<Tensor> = None;
        let mut dparams: Vec<HashMap<String, Tensor>> = vec![HashMap::new(); n];
        let accumulate = |into: &mut HashMap<String, Tensor>, grads: Vec<(String, Tensor)>| -> Result<()> {
            for (name, g) in grads {
                let sum = match into.remove(&name) {
                    Some(a) => (a + g)?,
                    None => g,
                };
                into.insert(name, sum);
            }
            Ok(())
        };
        let mut dh = vec![[0f64; 3]; n];
        // The adjoint of each pcoder's update at t+1 (from ∂L/∂r_i(t+1)), from the timestep
        // processed before; None where no gradient reached r_i(t+1).
        let mut next: Vec<Option<UpdateAdjoint>> = vec![None; n];
        for t in (0..steps).rev() {
            let rec = &self.steps[t];
            // Contributions to ∂L/∂r_i(t), complete when pcoder i is reached: everything that
            // reads r_i(t) is either at t+1 (done) or a higher pcoder at t (done before i).
            let mut cur: Vec<Option<Tensor>> = vec![None; n];
            if let Some(g) = &dlogits[t] {
                if g.dims() != rec.logits.dims() {
                    return crate::error::shape_err(format!("logit gradient at timestep {t}"), format!("{:?}", rec.logits.dims()), g.dims());
                }
                cur[n - 1] = Some(model.segment_backward(n, &rec.rep[n - 1], &g.to_dtype(DType::F32)?)?);
            }
            let mut adjoints: Vec<Option<UpdateAdjoint>> = vec![None; n];
            for i in (0..n).rev() {
                let predictor = pnet.pcoders()[i].predictor();
                let trace = &rec.traces[i];
                // The gradient reaching the prediction P_i(r_i(t)).
                let mut dprd: Option<Tensor> = None;
                if let Some(a) = &next[i] {
                    // memory term of r_i(t+1)
                    add(&mut cur[i], a.rep.clone())?;
                    if exact {
                        // ⟨ḡ, grd⟩ = k·⟨u, e⟩ with u = J_P·ḡ, ḡ = ∂L/∂grd_i(t) = −s·∂L/∂r_i(t+1).
                        let (u, tangents) = predictor.jvp(trace, &a.grd)?;
                        let ku = u.affine(dynamics::error_grad_factor(pnet.error_numel(&rec.prd[i])), 0.0)?;
                        // the target (input or lower representation) enters e with sign −1
                        let dy = ku.neg()?;
                        if i == 0 {
                            add(&mut dx, dy)?;
                        } else {
                            add(&mut cur[i - 1], dy)?;
                        }
                        if opts.params {
                            // k·e, recomputed as the forward pass did rather than kept: the
                            // recording is the memory the backward pass costs.
                            let target = if i == 0 { &self.input } else { &rec.rep[i - 1] };
                            let (ke, _) = crate::ops::scaled_error(&rec.prd[i], target, dynamics::error_grad_factor(pnet.error_numel(&rec.prd[i])))?;
                            accumulate(&mut dparams[i], predictor.jvp_weight_grads(trace, &tangents, &ke)?)?;
                        }
                        // through P(r) in e: J_Pᵀ·k·u and the weights' ∂_θ⟨P, k·u⟩, below
                        add(&mut dprd, ku)?;
                    }
                }
                // feedback term of r_{i−1}(t+1) = … + λ_{i−1}·prd_i(t)
                if let Some(fb) = i.checked_sub(1).and_then(|below| next[below].as_ref()).and_then(|a| a.fb.as_ref()) {
                    add(&mut dprd, fb.clone())?;
                }
                if let Some(g) = dprd {
                    let gin = if opts.params {
                        let (gin, pg) = predictor.backward(trace, &g)?;
                        accumulate(&mut dparams[i], pg)?;
                        gin
                    } else {
                        predictor.vjp_input(trace, &g)?
                    };
                    add(&mut cur[i], gin)?;
                }
                let Some(rbar) = cur[i].take() else { continue };
                let ffbar = if t >= 1 {
                    let prev = &self.steps[t - 1];
                    let d = UpdateCoeffs::partials(i + 1 == n, self.scales[i], &rbar, &rec.ff[i], &prev.rep[i], prev.prd.get(i + 1), &prev.grd[i])?;
                    for (acc, d) in dh[i].iter_mut().zip(d) {
                        *acc += d;
                    }
                    let adjoint = self.coeffs[i].adjoint(&rbar)?;
                    let ff = adjoint.ff.clone();
                    adjoints[i] = Some(adjoint);
                    ff
                } else {
                    // r_i(0) = ff_i(0)
                    rbar
                };
                let below = if i == 0 { &self.input } else { &rec.rep[i - 1] };
                let g = model.segment_backward(i, below, &ffbar)?;
                if i == 0 {
                    add(&mut dx, g)?;
                } else {
                    add(&mut cur[i - 1], g)?;
                }
            }
            next = adjoints;
        }
        let input = match dx {
            Some(g) => g,
            None => self.input.zeros_like()?,
        };
        let mut params = Vec::new();
        if opts.params {
            for (i, pc) in pnet.pcoders().iter().enumerate() {
                for (name, var) in pc.predictor().vars() {
                    let g = match dparams[i].remove(&name) {
                        Some(g) => g,
                        None => var.as_tensor().zeros_like()?,
                    };
                    params.push((format!("pcoder{}.{name}", pc.number()), g));
                }
            }
        }
        let hyper_logits = (0..n).map(|i| Ok(pnet.logits(i)?.chain(dh[i]))).collect::<Result<Vec<_>>>()?;
        Ok(UnrollGrads { input, params, hyper: dh, hyper_logits })
    }
}

/// Which timesteps' logits a cross-entropy loss reads (see [`cross_entropy_grads`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossOn {
    /// The last timestep only.
    Last,
    /// The sum over all timesteps.
    Sum,
}

/// Mean cross-entropy over the batch of `logits` `[N, K]` against class indices `labels`, and
/// its gradient w.r.t. the logits, `(softmax − onehot)/N` (f32, on the logits' device).
/// Computed in f64 with the log-sum-exp shifted by each row's maximum.
pub fn cross_entropy(logits: &Tensor, labels: &[usize]) -> Result<(f64, Tensor)> {
    let (n, k) = logits.dims2()?;
    if labels.len() != n {
        return usage(format!("{} labels for {n} rows of logits", labels.len()));
    }
    let rows = logits.to_dtype(DType::F64)?.to_vec2::<f64>()?;
    let mut loss = 0.0;
    let mut grad = Vec::with_capacity(n * k);
    for (row, &y) in rows.iter().zip(labels) {
        if y >= k {
            return usage(format!("label {y} out of range for {k} classes"));
        }
        let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let z: f64 = row.iter().map(|v| (v - max).exp()).sum();
        loss += z.ln() + max - row[y];
        grad.extend(row.iter().enumerate().map(|(c, v)| (((v - max).exp() / z - if c == y { 1.0 } else { 0.0 }) / n as f64) as f32));
    }
    Ok((loss / n as f64, Tensor::from_vec(grad, (n, k), logits.device())?))
}

/// The cross-entropy of a recording's logits on `on` and the logit gradients for
/// [`Tape::backward`]: the loss (summed over the timesteps read) and one entry per timestep.
pub fn cross_entropy_grads(tape: &Tape, labels: &[usize], on: LossOn) -> Result<(f64, Vec<Option<Tensor>>)> {
    let steps = tape.steps().len();
    let mut loss = 0.0;
    let mut grads = vec![None; steps];
    for (t, g) in grads.iter_mut().enumerate() {
        if on == LossOn::Last && t + 1 != steps {
            continue;
        }
        let (l, d) = cross_entropy(&tape.steps()[t].logits, labels)?;
        loss += l;
        *g = Some(d);
    }
    Ok((loss, grads))
}
