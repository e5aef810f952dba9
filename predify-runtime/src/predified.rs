//! The network contract: what a predified network is, whoever built it.
//!
//! A network provides its [`PNet`] and one backbone pass with a hook at the attach points
//! ([`Predified::traverse`]); everything else — states, timesteps, plain passes, taps,
//! hyperparameters, feedback weights — is provided by the trait. `#[predify]` generates the
//! required methods for an annotated struct; [`crate::sequential::PredifiedSequential`]
//! implements them for a layer list.

use crate::hyper::{HyperLogits, Hyperparameters};
use crate::pnet::{CSqrtSource, PNet, ReconstructionGrads};
use crate::state::State;
use crate::Result;
use candle_core::{DType, Device, Tensor, Var};

/// The most timesteps one [`Predified::run`] / [`Predified::run_state`] call runs (each
/// timestep's logits are kept): 1,000,000.
pub const MAX_TIMESTEPS: usize = 1_000_000;

/// The hook of a backbone pass: called as `hook(i, ff)` with the output `ff` of pcoder `i`'s
/// attach point (0-based, in feedforward order); what it returns replaces `ff` for the rest of
/// the pass.
pub type Hook<'a> = dyn FnMut(usize, Tensor) -> Result<Tensor> + 'a;

/// A backbone with pcoders attached: the API of every predified network.
///
/// Implementors provide [`pnet`](Self::pnet), [`pnet_mut`](Self::pnet_mut) and
/// [`traverse`](Self::traverse); the other methods are provided. Bring the trait into scope
/// (`use predify::Predified;` or `use predify::prelude::*;`) to call them.
pub trait Predified {
    /// The pcoders: weights, shapes, hyperparameters.
    fn pnet(&self) -> &PNet;

    /// The pcoders, mutably (hyperparameters, weights).
    fn pnet_mut(&mut self) -> &mut PNet;

    /// One pass of the backbone on `input` (`[N, ..input_size]`), calling `hook(i, ff)` after
    /// each attach point in feedforward order and continuing with what it returns; the
    /// backbone's output (the logits).
    fn traverse(&self, input: &Tensor, hook: &mut Hook<'_>) -> Result<Tensor>;

    /// A fresh state for the batch `input` (f32, `[N, ..input_size]`); read `rep`, `prd`,
    /// `prediction_error` of each pcoder and the per-timestep `trace()` from it.
    fn new_state(&self, input: &Tensor) -> Result<State> {
        self.pnet().new_state(input.clone())
    }

    /// One timestep on `state`: one backbone pass in which every pcoder fires; the logits.
    fn step(&self, state: &mut State) -> Result<Tensor> {
        pass(self, state, &mut |_, _| {})
    }

    /// [`step`](Self::step), calling `on_ff(i, ff)` with each pcoder's feedforward drive before
    /// it fires.
    fn step_inspect<F: FnMut(usize, &Tensor)>(&self, state: &mut State, mut on_ff: F) -> Result<Tensor>
    where
        Self: Sized,
    {
        pass(self, state, &mut on_ff)
    }

    /// `timesteps` timesteps on a fresh state for `input`: the logits of each, and the state.
    fn run(&self, input: &Tensor, timesteps: usize) -> Result<(Vec<Tensor>, State)> {
        let mut state = self.new_state(input)?;
        let logits = self.run_state(&mut state, timesteps)?;
        Ok((logits, state))
    }

    /// `timesteps` more timesteps on `state`; the logits of each. At most [`MAX_TIMESTEPS`]
    /// (every timestep's logits are kept).
    fn run_state(&self, state: &mut State, timesteps: usize) -> Result<Vec<Tensor>> {
        if timesteps > MAX_TIMESTEPS {
            return crate::error::usage(format!(
                "{}: {timesteps} timesteps requested, at most {MAX_TIMESTEPS} are supported (run_state continues a state in chunks)",
                self.pnet().name()
            ));
        }
        // Grown as the timesteps run, never reserved from the requested count.
        let mut logits = Vec::new();
        for _ in 0..timesteps {
            logits.push(self.step(state)?);
        }
        Ok(logits)
    }

    /// The backbone alone on `input`: the plain feedforward logits.
    fn forward_plain(&self, input: &Tensor) -> Result<Tensor> {
        self.traverse(input, &mut |_, ff| Ok(ff))
    }

    /// The feedforward drive of every pcoder for `input` without the pcoders firing (the
    /// representations at timestep 0), in pcoder order.
    fn feedforward_taps(&self, input: &Tensor) -> Result<Vec<Tensor>> {
        let mut taps = Vec::with_capacity(self.pnet().len());
        self.traverse(input, &mut |_, ff| {
            taps.push(ff.clone());
            Ok(ff)
        })?;
        Ok(taps)
    }

    /// β/λ/α of pcoder `i` (0-based).
    fn hyperparameters(&self, i: usize) -> Result<Hyperparameters> {
        self.pnet().hyperparameters(i)
    }

    /// Set β/λ/α of pcoder `i` (validated; with shared hyperparameters, of every pcoder).
    fn set_hyperparameters(&mut self, i: usize, h: Hyperparameters) -> Result<()> {
        self.pnet_mut().set_hyperparameters(i, h)
    }

    /// Pcoder `i`'s hyperparameters as Predify's learnable logits.
    fn logits(&self, i: usize) -> Result<HyperLogits> {
        self.pnet().logits(i)
    }

    /// Set pcoder `i`'s hyperparameters from Predify's logits.
    fn set_logits(&mut self, i: usize, l: HyperLogits) -> Result<()> {
        self.pnet_mut().set_logits(i, l)
    }

    /// The predictor parameters as `Var`s, by Predify's names (`pcoder{i}.pmodule.…`).
    fn feedback_vars(&self) -> Vec<(String, Var)> {
        self.pnet().feedback_vars()
    }

    /// Predify's feedback-training loss at the state's current representations and its
    /// gradient w.r.t. every predictor parameter.
    fn reconstruction_grads(&self, state: &State) -> Result<ReconstructionGrads> {
        self.pnet().reconstruction_grads(state)
    }
}

/// One backbone pass in which every pcoder fires (a timestep).
fn pass<M: Predified + ?Sized>(m: &M, state: &mut State, on_ff: &mut dyn FnMut(usize, &Tensor)) -> Result<Tensor> {
    let pnet = m.pnet();
    pnet.begin_pass(state)?;
    let input = state.input().clone();
    let out = m.traverse(&input, &mut |i, ff| {
        on_ff(i, &ff);
        pnet.fire(i, &ff, state)
    })?;
    pnet.end_pass(state)?;
    Ok(out)
}

/// The per-sample shape of each attach point's output, found by one backbone pass on a zero
/// sample of `input_size` on `device`; `traverse` is the backbone pass (see
/// [`Predified::traverse`]). Constructors use it before the [`PNet`] exists.
pub fn probe_shapes(traverse: impl FnOnce(&Tensor, &mut Hook<'_>) -> Result<Tensor>, input_size: &[usize], device: &Device) -> Result<Vec<Vec<usize>>> {
    let mut dims = vec![1];
    dims.extend_from_slice(input_size);
    let x = Tensor::zeros(dims, DType::F32, device)?;
    let mut shapes = Vec::new();
    traverse(&x, &mut |_, ff| {
        shapes.push(ff.dims().get(1..).unwrap_or(&[]).to_vec());
        Ok(ff)
    })?;
    Ok(shapes)
}

/// What a generated constructor does once the backbone is checked: parse the spec (TOML), probe
/// the attach points' shapes with `traverse` ([`probe_shapes`]) on `vb`'s device, and load the
/// pcoders from `vb` ([`PNet::load`]).
pub fn load_pnet(spec_toml: &str, traverse: impl FnOnce(&Tensor, &mut Hook<'_>) -> Result<Tensor>, vb: candle_nn::VarBuilder, c_sqrt: CSqrtSource) -> Result<PNet> {
    let spec = predify_spec::Spec::from_toml_str(spec_toml)?;
    let shapes = probe_shapes(traverse, &spec.input_size, vb.device())?;
    PNet::load(&spec, &shapes, vb, c_sqrt)
}

/// The run-time check of an attach point `field[index]` on a list whose length the compiler
/// cannot see (a `Vec`): an error naming the network, the pcoder (1-based) and the field unless
/// `index < len`.
pub fn check_index(network: &str, pcoder: usize, module: &str, field: &str, index: usize, len: usize) -> Result<()> {
    if index < len {
        return Ok(());
    }
    crate::error::usage(format!("{network}: pcoder {pcoder} attaches at `{module}`, but field {field} has {len} layers"))
}
