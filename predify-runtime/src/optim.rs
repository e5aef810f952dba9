//! Optimisers over named variables with explicit gradients (PyTorch semantics), a cosine
//! schedule with warm restarts, and optimiser state that can be saved and restored.
//!
//! Every optimiser takes the parameters as `(name, Var)` pairs and the gradients as
//! `(name, Tensor)` pairs (what [`crate::PNet::reconstruction_grads`] returns); a gradient
//! whose name matches no parameter, or whose shape differs from it, is an error naming it.
//! Per-parameter buffers are kept by name and are created on the first step of a parameter,
//! as `torch.optim` does.
//!
//! | optimiser | update (g = gradient + weight_decay·p, PyTorch's L2 form) |
//! |---|---|
//! | [`Sgd`] | `b = μ·b + g` (`b = g` on the first step); `p ← p − lr·b` (`b = g` when μ = 0) |
//! | [`RmsProp`] | `v = α·v + (1−α)·g²`; centred: `ḡ = α·ḡ + (1−α)·g`, `v' = v − ḡ²`; `a = √v' + ε`; `p ← p − lr·g/a`, or with momentum `b = μ·b + g/a`, `p ← p − lr·b` |
//! | [`Adam`] | `m = β₁·m + (1−β₁)·g`; `v = β₂·v + (1−β₂)·g²`; `p ← p − lr/(1−β₁ᵗ) · m / (√v/√(1−β₂ᵗ) + ε)` |
//!
//! [`OptimizerState`] holds an optimiser's buffers as named tensors (`{param}.{buffer}`, the
//! buffer names of PyTorch's state dicts: `momentum_buffer`, `square_avg`, `grad_avg`,
//! `exp_avg`, `exp_avg_sq`) and its step counter, so a training run can stop and resume exactly.

use crate::error::{shape_err, usage, Result};
use candle_core::{Tensor, Var};
use std::collections::{BTreeMap, HashMap};

/// What every optimiser here offers: one update, its learning rate, and its state.
pub trait Optimizer {
    /// Update every variable in `params` whose name has a gradient in `grads`.
    fn step(&mut self, params: &[(String, Var)], grads: &[(String, Tensor)]) -> Result<()>;
    /// The current learning rate.
    fn lr(&self) -> f64;
    /// Set the learning rate (what a schedule does before each step).
    fn set_lr(&mut self, lr: f64);
    /// The optimiser's buffers and step counter.
    fn state(&self) -> OptimizerState;
    /// Restore buffers and step counter saved by [`Optimizer::state`] of the same kind of
    /// optimiser; unknown buffer names are an error naming them.
    fn load_state(&mut self, state: &OptimizerState) -> Result<()>;
}

/// An optimiser's state: its kind, the number of steps taken, and its buffers by name
/// (`{param}.{buffer}`).
#[derive(Debug, Clone, Default)]
pub struct OptimizerState {
    /// `"sgd"`, `"rmsprop"` or `"adam"`.
    pub kind: String,
    /// Steps taken so far.
    pub steps: u64,
    /// Buffers, by `{param}.{buffer}`.
    pub buffers: BTreeMap<String, Tensor>,
}

/// Find a gradient's variable and check its shape.
fn matching<'a>(who: &str, params: &'a [(String, Var)], name: &str, g: &Tensor) -> Result<&'a Var> {
    let Some((_, var)) = params.iter().find(|(n, _)| n == name) else {
        return usage(format!("{who}: gradient for unknown parameter `{name}`"));
    };
    if var.dims() != g.dims() {
        return shape_err(format!("{who}: gradient of `{name}`"), format!("{:?}", var.dims()), g.dims());
    }
    Ok(var)
}

/// `g + wd·p` (PyTorch's L2 weight decay), skipping the product when `wd` is zero.
fn decayed(g: &Tensor, var: &Var, wd: f64) -> Result<Tensor> {
    if wd == 0.0 {
        return Ok(g.clone());
    }
    Ok((g + var.as_tensor().affine(wd, 0.0)?)?)
}

/// Restore buffers from `state`, accepting only `{param}.{b}` with `b` in `allowed`.
fn load_buffers(
    who: &str,
    kind: &str,
    state: &OptimizerState,
    allowed: &[&'static str],
) -> Result<HashMap<&'static str, HashMap<String, Tensor>>> {
    if state.kind != kind {
        return usage(format!("{who}: cannot load the state of a `{}` optimiser", state.kind));
    }
    let mut out: HashMap<&'static str, HashMap<String, Tensor>> = HashMap::new();
    for (key, t) in &state.buffers {
        let Some((param, buf)) = key.rsplit_once('.') else {
            return usage(format!("{who}: optimiser state `{key}` is not `{{param}}.{{buffer}}`"));
        };
        let Some(b) = allowed.iter().find(|b| **b == buf) else {
            return usage(format!("{who}: unknown optimiser buffer `{key}` (expected one of {allowed:?})"));
        };
        out.entry(*b).or_default().insert(param.to_string(), t.clone());
    }
    Ok(out)
}

fn save_buffers(out: &mut BTreeMap<String, Tensor>, buffers: &HashMap<String, Tensor>, suffix: &str) {
    for (p, t) in buffers {
        out.insert(format!("{p}.{suffix}"), t.clone());
    }
}

/// SGD with PyTorch-style L2 weight decay (added to the gradient) and optional momentum:
/// `d = g + wd·p; b = μ·b + d (b = d on the first step); p ← p − lr·b`.
#[derive(Debug, Clone)]
pub struct Sgd {
    /// Learning rate.
    pub lr: f64,
    /// L2 weight decay, added to the gradient.
    pub weight_decay: f64,
    /// Momentum μ (0 disables it).
    pub momentum: f64,
    buffers: HashMap<String, Tensor>,
    steps: u64,
}

impl Sgd {
    /// A new optimiser.
    pub fn new(lr: f64, weight_decay: f64, momentum: f64) -> Self {
        Self { lr, weight_decay, momentum, buffers: HashMap::new(), steps: 0 }
    }

    /// Update every variable in `params` whose name has a gradient in `grads`; a gradient with
    /// no matching variable, or of another shape, is an error naming it.
    pub fn step(&mut self, params: &[(String, Var)], grads: &[(String, Tensor)]) -> Result<()> {
        for (name, g) in grads {
            matching("SGD", params, name, g)?;
        }
        for (name, g) in grads {
            let var = matching("SGD", params, name, g)?;
            if self.momentum == 0.0 && crate::ops::sgd_in_place(var.as_tensor(), g, self.lr, self.weight_decay)? {
                continue;
            }
            let mut d = (g + var.as_tensor().affine(self.weight_decay, 0.0)?)?;
            if self.momentum != 0.0 {
                let b = match self.buffers.get(name) {
                    Some(b) => (b.affine(self.momentum, 0.0)? + &d)?,
                    None => d.clone(),
                };
                self.buffers.insert(name.clone(), b.clone());
                d = b;
            }
            var.set(&(var.as_tensor() - d.affine(self.lr, 0.0)?)?)?;
        }
        self.steps += 1;
        Ok(())
    }
}

impl Optimizer for Sgd {
    fn step(&mut self, params: &[(String, Var)], grads: &[(String, Tensor)]) -> Result<()> {
        Sgd::step(self, params, grads)
    }
    fn lr(&self) -> f64 {
        self.lr
    }
    fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }
    fn state(&self) -> OptimizerState {
        let mut buffers = BTreeMap::new();
        save_buffers(&mut buffers, &self.buffers, "momentum_buffer");
        OptimizerState { kind: "sgd".into(), steps: self.steps, buffers }
    }
    fn load_state(&mut self, state: &OptimizerState) -> Result<()> {
        let mut b = load_buffers("SGD", "sgd", state, &["momentum_buffer"])?;
        self.buffers = b.remove("momentum_buffer").unwrap_or_default();
        self.steps = state.steps;
        Ok(())
    }
}

/// RMSprop as `torch.optim.RMSprop`: smoothing `alpha`, `eps` added after the square root,
/// L2 weight decay, optional momentum and centring.
#[derive(Debug, Clone)]
pub struct RmsProp {
    /// Learning rate.
    pub lr: f64,
    /// Smoothing constant α of the squared-gradient average (PyTorch default 0.99).
    pub alpha: f64,
    /// Added to the denominator after the square root (PyTorch default 1e-8).
    pub eps: f64,
    /// L2 weight decay, added to the gradient.
    pub weight_decay: f64,
    /// Momentum μ (0 disables it).
    pub momentum: f64,
    /// Normalise by the variance estimate instead of the second moment.
    pub centered: bool,
    square_avg: HashMap<String, Tensor>,
    grad_avg: HashMap<String, Tensor>,
    momentum_buffer: HashMap<String, Tensor>,
    steps: u64,
}

impl RmsProp {
    /// A new optimiser with PyTorch's defaults for `alpha` (0.99) and `eps` (1e-8), no
    /// weight decay, momentum or centring; set the public fields to change them.
    pub fn new(lr: f64) -> Self {
        Self {
            lr,
            alpha: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
            momentum: 0.0,
            centered: false,
            square_avg: HashMap::new(),
            grad_avg: HashMap::new(),
            momentum_buffer: HashMap::new(),
            steps: 0,
        }
    }
}

impl Optimizer for RmsProp {
    fn step(&mut self, params: &[(String, Var)], grads: &[(String, Tensor)]) -> Result<()> {
        for (name, g) in grads {
            matching("RMSprop", params, name, g)?;
        }
        let a = self.alpha;
        for (name, g) in grads {
            let var = matching("RMSprop", params, name, g)?;
            let g = decayed(g, var, self.weight_decay)?;
            let sq = match self.square_avg.get(name) {
                Some(v) => (v.affine(a, 0.0)? + g.sqr()?.affine(1.0 - a, 0.0)?)?,
                None => g.sqr()?.affine(1.0 - a, 0.0)?,
            };
            self.square_avg.insert(name.clone(), sq.clone());
            let avg = if self.centered {
                let ga = match self.grad_avg.get(name) {
                    Some(m) => (m.affine(a, 0.0)? + g.affine(1.0 - a, 0.0)?)?,
                    None => g.affine(1.0 - a, 0.0)?,
                };
                self.grad_avg.insert(name.clone(), ga.clone());
                (sq - ga.sqr()?)?.sqrt()?.affine(1.0, self.eps)?
            } else {
                sq.sqrt()?.affine(1.0, self.eps)?
            };
            let upd = (g / avg)?;
            let upd = if self.momentum > 0.0 {
                let b = match self.momentum_buffer.get(name) {
                    Some(b) => (b.affine(self.momentum, 0.0)? + &upd)?,
                    None => upd,
                };
                self.momentum_buffer.insert(name.clone(), b.clone());
                b
            } else {
                upd
            };
            var.set(&(var.as_tensor() - upd.affine(self.lr, 0.0)?)?)?;
        }
        self.steps += 1;
        Ok(())
    }
    fn lr(&self) -> f64 {
        self.lr
    }
    fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }
    fn state(&self) -> OptimizerState {
        let mut buffers = BTreeMap::new();
        save_buffers(&mut buffers, &self.square_avg, "square_avg");
        save_buffers(&mut buffers, &self.grad_avg, "grad_avg");
        save_buffers(&mut buffers, &self.momentum_buffer, "momentum_buffer");
        OptimizerState { kind: "rmsprop".into(), steps: self.steps, buffers }
    }
    fn load_state(&mut self, state: &OptimizerState) -> Result<()> {
        let mut b = load_buffers("RMSprop", "rmsprop", state, &["square_avg", "grad_avg", "momentum_buffer"])?;
        self.square_avg = b.remove("square_avg").unwrap_or_default();
        self.grad_avg = b.remove("grad_avg").unwrap_or_default();
        self.momentum_buffer = b.remove("momentum_buffer").unwrap_or_default();
        self.steps = state.steps;
        Ok(())
    }
}

/// Adam as `torch.optim.Adam` (not AdamW: weight decay is L2, added to the gradient), with
/// bias correction; the step counter is per optimiser (all parameters step together here).
#[derive(Debug, Clone)]
pub struct Adam {
    /// Learning rate.
    pub lr: f64,
    /// β₁ (PyTorch default 0.9).
    pub beta1: f64,
    /// β₂ (PyTorch default 0.999).
    pub beta2: f64,
    /// ε (PyTorch default 1e-8).
    pub eps: f64,
    /// L2 weight decay, added to the gradient.
    pub weight_decay: f64,
    exp_avg: HashMap<String, Tensor>,
    exp_avg_sq: HashMap<String, Tensor>,
    steps: u64,
}

impl Adam {
    /// A new optimiser with PyTorch's defaults (β = (0.9, 0.999), ε = 1e-8, no weight decay).
    pub fn new(lr: f64) -> Self {
        Self { lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0, exp_avg: HashMap::new(), exp_avg_sq: HashMap::new(), steps: 0 }
    }
}

impl Optimizer for Adam {
    fn step(&mut self, params: &[(String, Var)], grads: &[(String, Tensor)]) -> Result<()> {
        for (name, g) in grads {
            matching("Adam", params, name, g)?;
        }
        let t = (self.steps + 1) as i32;
        let (b1, b2) = (self.beta1, self.beta2);
        let bc1 = 1.0 - b1.powi(t);
        let bc2 = 1.0 - b2.powi(t);
        for (name, g) in grads {
            let var = matching("Adam", params, name, g)?;
            let g = decayed(g, var, self.weight_decay)?;
            let m = match self.exp_avg.get(name) {
                Some(m) => (m.affine(b1, 0.0)? + g.affine(1.0 - b1, 0.0)?)?,
                None => g.affine(1.0 - b1, 0.0)?,
            };
            let v = match self.exp_avg_sq.get(name) {
                Some(v) => (v.affine(b2, 0.0)? + g.sqr()?.affine(1.0 - b2, 0.0)?)?,
                None => g.sqr()?.affine(1.0 - b2, 0.0)?,
            };
            self.exp_avg.insert(name.clone(), m.clone());
            self.exp_avg_sq.insert(name.clone(), v.clone());
            let denom = v.sqrt()?.affine(1.0 / bc2.sqrt(), self.eps)?;
            let upd = (m / denom)?.affine(self.lr / bc1, 0.0)?;
            var.set(&(var.as_tensor() - upd)?)?;
        }
        self.steps += 1;
        Ok(())
    }
    fn lr(&self) -> f64 {
        self.lr
    }
    fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }
    fn state(&self) -> OptimizerState {
        let mut buffers = BTreeMap::new();
        save_buffers(&mut buffers, &self.exp_avg, "exp_avg");
        save_buffers(&mut buffers, &self.exp_avg_sq, "exp_avg_sq");
        OptimizerState { kind: "adam".into(), steps: self.steps, buffers }
    }
    fn load_state(&mut self, state: &OptimizerState) -> Result<()> {
        let mut b = load_buffers("Adam", "adam", state, &["exp_avg", "exp_avg_sq"])?;
        self.exp_avg = b.remove("exp_avg").unwrap_or_default();
        self.exp_avg_sq = b.remove("exp_avg_sq").unwrap_or_default();
        self.steps = state.steps;
        Ok(())
    }
}

/// `torch.optim.lr_scheduler.CosineAnnealingWarmRestarts`, as a pure function of the
/// (fractional) epoch, so that a resumed run gets exactly the same rates:
/// `lr = η_min + (lr₀ − η_min)·(1 + cos(π·T_cur/T_i))/2`, where the i-th cycle lasts
/// `T_i = T_0·T_multⁱ` epochs and `T_cur` is the time since the cycle began.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CosineWarmRestarts {
    /// Initial learning rate lr₀.
    pub base_lr: f64,
    /// Length of the first cycle in epochs (T_0 > 0).
    pub t_0: f64,
    /// Growth factor of the cycle length (≥ 1).
    pub t_mult: f64,
    /// Minimum learning rate η_min.
    pub eta_min: f64,
}

impl CosineWarmRestarts {
    /// A schedule; `t_0` must be positive and `t_mult` at least 1.
    pub fn new(base_lr: f64, t_0: f64, t_mult: f64, eta_min: f64) -> Result<Self> {
        if !(t_0 > 0.0 && t_0.is_finite()) || !(t_mult >= 1.0 && t_mult.is_finite()) {
            return usage(format!("cosine schedule: T_0 must be > 0 and T_mult >= 1, got T_0 = {t_0}, T_mult = {t_mult}"));
        }
        Ok(Self { base_lr, t_0, t_mult, eta_min })
    }

    /// The learning rate at `epoch` (fractional epochs: `epoch + batch / batches`, as
    /// PyTorch's `scheduler.step(epoch + i / iters)`).
    pub fn lr_at(&self, epoch: f64) -> f64 {
        let epoch = epoch.max(0.0);
        let (t_cur, t_i) = if self.t_mult == 1.0 {
            (epoch % self.t_0, self.t_0)
        } else {
            let n = ((epoch / self.t_0 * (self.t_mult - 1.0) + 1.0).ln() / self.t_mult.ln()).floor();
            let start = self.t_0 * (self.t_mult.powf(n) - 1.0) / (self.t_mult - 1.0);
            (epoch - start, self.t_0 * self.t_mult.powf(n))
        };
        self.eta_min + (self.base_lr - self.eta_min) * (1.0 + (std::f64::consts::PI * t_cur / t_i).cos()) / 2.0
    }
}
