//! The predified network's PCoders and their dynamics.

use crate::c_sqrt;
use crate::default_predictor::default_predictor;
use crate::dynamics::{self, UpdateCoeffs};
use crate::error::{shape_err, usage, Error, Result};
use crate::hyper::{self, HyperLogits, Hyperparameters};
use crate::predictor::{Predictor, Trace};
use crate::state::{Init, PCoderState, State};
use candle_core::{DType, Device, Tensor, Var};
use predify_spec::{ErrorScaling, Spec};

/// Where √C of gradient-scaled pcoders comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum CSqrtSource {
    /// `pcoder{i}.C_sqrt` from the weights when present (Predify checkpoints store it),
    /// otherwise [`CSqrtSource::Exact`].
    CheckpointOrExact,
    /// Computed exactly from each predictor's structure (see [`c_sqrt::exact`]).
    Exact,
    /// Given, one value per pcoder.
    Given(Vec<f32>),
}

/// One pcoder: its predictor, shapes and gradient scale.
#[derive(Debug, Clone)]
pub struct PCoder {
    number: usize,
    predictor: Predictor,
    ff_shape: Vec<usize>,
    target_shape: Vec<usize>,
    c_sqrt: Option<f32>,
}

impl PCoder {
    /// 1-based number, as Predify counts.
    pub fn number(&self) -> usize {
        self.number
    }

    /// The feedback predictor.
    pub fn predictor(&self) -> &Predictor {
        &self.predictor
    }

    /// Per-sample shape of the representation.
    pub fn ff_shape(&self) -> &[usize] {
        &self.ff_shape
    }

    /// Per-sample shape of the prediction target (the layer below, or the input).
    pub fn target_shape(&self) -> &[usize] {
        &self.target_shape
    }

    /// √C when gradient scaling is on.
    pub fn c_sqrt(&self) -> Option<f32> {
        self.c_sqrt
    }
}

/// The PCoders of a predified network: weights and hyperparameters, immutable during
/// inference and shareable across threads; per-batch values live in a [`State`].
///
/// A backbone pass drives it: [`PNet::begin_pass`], then [`PNet::fire`] for each pcoder in
/// feedforward order with the hooked layer's output (continue the pass with what it returns),
/// then [`PNet::end_pass`].
#[derive(Debug, Clone)]
pub struct PNet {
    name: String,
    input_shape: Vec<usize>,
    pcoders: Vec<PCoder>,
    hyper: Vec<Hyperparameters>,
    /// Predify's learnable logits of each pcoder, exactly as last set: `set_logits` keeps them
    /// (the values are derived from them), `set_hyperparameters` derives them from the values.
    logits: Vec<HyperLogits>,
    shared: bool,
    gradient_scaling: bool,
    error_scaling: ErrorScaling,
}

impl PNet {
    /// Build the pcoders of `spec`. `ff_shapes[i]` is the per-sample output shape of the layer
    /// pcoder `i` attaches to (probed by running the backbone once); `vb` is positioned at the
    /// network root, predictor weights are read (or created) under `pcoder{i}.pmodule.*`.
    pub fn load(spec: &Spec, ff_shapes: &[Vec<usize>], vb: candle_nn::VarBuilder, c_sqrt: CSqrtSource) -> Result<Self> {
        let n = spec.pcoders.len();
        if ff_shapes.len() != n {
            return usage(format!("{}: {} probed shapes for {} pcoders", spec.name, ff_shapes.len(), n));
        }
        if let CSqrtSource::Given(v) = &c_sqrt {
            if v.len() != n {
                return usage(format!("{}: {} C_sqrt values for {} pcoders", spec.name, v.len(), n));
            }
        }
        let mut pcoders = Vec::with_capacity(n);
        for (i, pc) in spec.pcoders.iter().enumerate() {
            let number = i + 1;
            let ctx = format!("pcoder{number}");
            let ff_shape = ff_shapes[i].clone();
            let target_shape = if i == 0 { spec.input_size.clone() } else { ff_shapes[i - 1].clone() };
            let pspec = match &pc.predictor {
                Some(p) => p.clone(),
                None => default_predictor(&ff_shape, &target_shape, &ctx)?,
            };
            let predictor = Predictor::load(&pspec, vb.pp(&ctx), &ctx)?;
            let mut probe_in = vec![1];
            probe_in.extend_from_slice(&ff_shape);
            let out = predictor.output_shape(&probe_in)?;
            if out[1..] != target_shape[..] {
                return shape_err(
                    format!("{ctx} (at {}): the predictor maps {ff_shape:?} to {:?}, but its target", pc.module, &out[1..]),
                    format!("{target_shape:?}"),
                    &out[1..],
                );
            }
            let c = if spec.gradient_scaling {
                let (c, source) = match &c_sqrt {
                    CSqrtSource::Given(v) => (v[i], "given"),
                    CSqrtSource::Exact => (c_sqrt::exact(&predictor, &ff_shape)?, "computed"),
                    CSqrtSource::CheckpointOrExact => {
                        if vb.contains_tensor(&format!("{ctx}.C_sqrt")) {
                            (vb.pp(&ctx).get((), "C_sqrt")?.to_dtype(DType::F32)?.to_scalar::<f32>()?, "from the weights")
                        } else {
                            (c_sqrt::exact(&predictor, &ff_shape)?, "computed")
                        }
                    }
                };
                // √C divides the error term: 0, negative (Predify's "not yet estimated" −1 would
                // flip its sign), NaN or ±inf would corrupt every update.
                if !(c > 0.0 && c.is_finite()) {
                    return usage(format!(
                        "{}: {ctx}.C_sqrt ({source}) is {c}; it must be a finite number > 0 (Predify stores -1 until it is estimated: drop it to use the exact value)",
                        spec.name
                    ));
                }
                Some(c)
            } else {
                None
            };
            pcoders.push(PCoder { number, predictor, ff_shape, target_shape, c_sqrt: c });
        }
        if n == 0 {
            return usage(format!("{}: a predified network needs at least one pcoder", spec.name));
        }
        let hyper: Vec<Hyperparameters> = (0..n).map(|i| spec.hyperparameters(i)).collect();
        let logits = hyper.iter().map(|&h| HyperLogits::from_hyperparameters(h)).collect();
        Ok(Self {
            name: spec.name.clone(),
            input_shape: spec.input_size.clone(),
            pcoders,
            hyper,
            logits,
            shared: spec.shared_hyperparameters,
            gradient_scaling: spec.gradient_scaling,
            error_scaling: spec.error_scaling,
        })
    }

    /// The network's name (from the spec).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The pcoders in feedforward order.
    pub fn pcoders(&self) -> &[PCoder] {
        &self.pcoders
    }

    /// Number of pcoders.
    pub fn len(&self) -> usize {
        self.pcoders.len()
    }

    /// Always false: a network has at least one pcoder.
    pub fn is_empty(&self) -> bool {
        self.pcoders.is_empty()
    }

    /// Whether the error term is gradient-scaled (PCoderN).
    pub fn gradient_scaling(&self) -> bool {
        self.gradient_scaling
    }

    /// Whether one set of hyperparameters serves every pcoder.
    pub fn shared_hyperparameters(&self) -> bool {
        self.shared
    }

    fn check_index(&self, i: usize) -> Result<()> {
        if i >= self.pcoders.len() {
            return usage(format!("{}: no pcoder {} (the network has {})", self.name, i + 1, self.pcoders.len()));
        }
        Ok(())
    }

    /// The hyperparameters used by pcoder `i` (0-based).
    pub fn hyperparameters(&self, i: usize) -> Result<Hyperparameters> {
        self.check_index(i)?;
        Ok(self.hyper[i])
    }

    /// Set the hyperparameters of pcoder `i` (of every pcoder when they are shared); the logits
    /// become Predify's initialisation for them ([`HyperLogits::from_hyperparameters`]).
    pub fn set_hyperparameters(&mut self, i: usize, h: Hyperparameters) -> Result<()> {
        self.set(i, h, HyperLogits::from_hyperparameters(h))
    }

    /// Predify's learnable logits of pcoder `i` (`ff_part`, `fb_part`, `mem_part`, `errorm`):
    /// exactly what [`Self::set_logits`] last set, or Predify's initialisation for the
    /// hyperparameters given otherwise.
    pub fn logits(&self, i: usize) -> Result<HyperLogits> {
        self.check_index(i)?;
        Ok(self.logits[i])
    }

    /// Set pcoder `i`'s logits (of every pcoder when shared); its hyperparameters become the
    /// values they stand for ([`HyperLogits::to_hyperparameters`]).
    pub fn set_logits(&mut self, i: usize, l: HyperLogits) -> Result<()> {
        self.set(i, l.to_hyperparameters(), l)
    }

    fn set(&mut self, i: usize, h: Hyperparameters, l: HyperLogits) -> Result<()> {
        self.check_index(i)?;
        if let Err(e) = hyper::check(h) {
            return usage(format!("pcoder{}: {e}", i + 1));
        }
        let targets = if self.shared { 0..self.hyper.len() } else { i..i + 1 };
        for k in targets {
            self.hyper[k] = h;
            self.logits[k] = l;
        }
        Ok(())
    }

    /// The feedback (predictor) parameters, with Predify's full names (`pcoder1.pmodule.weight`).
    pub fn feedback_vars(&self) -> Vec<(String, Var)> {
        let mut v = Vec::new();
        for pc in &self.pcoders {
            for (name, var) in pc.predictor.vars() {
                v.push((format!("pcoder{}.{name}", pc.number), var));
            }
        }
        v
    }

    /// A fresh state for a batch `input` of shape `[N, *input_size]`.
    pub fn new_state(&self, input: Tensor) -> Result<State> {
        if input.rank() != self.input_shape.len() + 1 || input.dims()[1..] != self.input_shape[..] {
            return shape_err(format!("{}: input batch", self.name), format!("[N, {:?}]", self.input_shape), input.dims());
        }
        if input.dtype() != DType::F32 {
            return Err(Error::DType { context: format!("{}: input batch", self.name), got: input.dtype() });
        }
        if input.dims()[0] == 0 {
            return usage(format!("{}: the input batch is empty (0 samples)", self.name));
        }
        Ok(State::new(input, self.shapes()))
    }

    /// The per-sample shapes a state of this network is made for: the input's, then each
    /// pcoder's representation.
    fn shapes(&self) -> Vec<Vec<usize>> {
        std::iter::once(self.input_shape.clone()).chain(self.pcoders.iter().map(|p| p.ff_shape.clone())).collect()
    }

    /// An error unless `st` was made by a network of this structure ([`Self::new_state`]): a
    /// state holds one slot per pcoder, of that pcoder's shapes.
    fn check_state(&self, st: &State) -> Result<()> {
        if st.pcoders.len() != self.pcoders.len() || st.shapes != self.shapes() {
            return usage(format!(
                "{}: the state was made for another network ({} pcoders, shapes {:?}); this one has {} pcoders, shapes {:?} (make states with this network's new_state)",
                self.name,
                st.pcoders.len(),
                st.shapes,
                self.pcoders.len(),
                self.shapes()
            ));
        }
        Ok(())
    }

    /// Start a backbone pass.
    pub fn begin_pass(&self, st: &mut State) -> Result<()> {
        self.check_state(st)?;
        if st.in_pass {
            return usage(format!("{}: begin_pass called twice without end_pass", self.name));
        }
        st.in_pass = true;
        st.passes += 1;
        st.errors.push(vec![f32::NAN; self.pcoders.len()]);
        Ok(())
    }

    /// Finish a backbone pass; every pcoder must have fired in it.
    pub fn end_pass(&self, st: &mut State) -> Result<()> {
        self.check_state(st)?;
        let pass = self.current_pass(st)?;
        for (i, p) in st.pcoders.iter().enumerate() {
            if p.as_ref().map(|p| p.pass) != Some(pass) {
                return usage(format!("{}: pcoder{} did not fire in pass {pass}", self.name, i + 1));
            }
        }
        st.in_pass = false;
        Ok(())
    }

    fn current_pass(&self, st: &State) -> Result<usize> {
        if !st.in_pass {
            return usage(format!("{}: fire/end_pass outside a pass (call begin_pass first)", self.name));
        }
        Ok(st.passes - 1)
    }

    /// Fire pcoder `i` (0-based) with the hooked layer's output `ff` in the current pass:
    /// update its representation, predict the layer below and compute the error gradient.
    /// Returns the representation, which replaces `ff` for the rest of the pass.
    pub fn fire(&self, i: usize, ff: &Tensor, st: &mut State) -> Result<Tensor> {
        self.check_index(i)?;
        self.check_state(st)?;
        let pass = self.current_pass(st)?;
        let pc = &self.pcoders[i];
        let batch = st.input.dims()[0];
        let mut want = vec![batch];
        want.extend_from_slice(&pc.ff_shape);
        if ff.dims() != want.as_slice() {
            return shape_err(format!("pcoder{}: feedforward input", pc.number), format!("{want:?}"), ff.dims());
        }
        if i > 0 && st.pcoders[i - 1].as_ref().map(|p| p.pass) != Some(pass) {
            return usage(format!("pcoder{} fired before pcoder{i} in pass {pass}; fire them in feedforward order", pc.number));
        }
        if st.pcoders[i].as_ref().map(|p| p.pass) == Some(pass) {
            return usage(format!("pcoder{} fired twice in pass {pass}", pc.number));
        }
        let rep = match &st.pcoders[i] {
            None => self.initial_rep(i, ff, st)?,
            Some(prev) => self.update(i, ff, prev, st)?,
        };
        if !crate::ops::all_finite(&rep)? {
            return Err(Error::NonFinite { pcoder: pc.number, what: "the representation", timestep: pass });
        }
        let target = if i == 0 { st.input.clone() } else { st.pcoders[i - 1].as_ref().map(|p| p.rep.clone()).ok_or_else(|| Error::Usage("unreachable: lower pcoder missing".into()))? };
        let Prediction { prd, grd, error: err, .. } = self.predict(i, &rep, &target)?;
        if !err.is_finite() {
            return Err(Error::NonFinite { pcoder: pc.number, what: "the prediction error", timestep: pass });
        }
        st.errors[pass][i] = err;
        st.pcoders[i] = Some(PCoderState { rep: rep.clone(), prd, grd, prediction_error: err, pass });
        Ok(rep)
    }

    /// Pcoder `i`'s prediction step at representation `rep` against `target` (the input for
    /// the first pcoder, the lower representation of the same pass otherwise): the prediction,
    /// the error gradient `grd` and what differentiating them needs. [`PNet::fire`] and the
    /// unrolled recording ([`crate::unroll`]) both compute it here, so the error term exists
    /// once. The error is returned as computed (the caller decides about non-finite values).
    pub fn predict(&self, i: usize, rep: &Tensor, target: &Tensor) -> Result<Prediction> {
        self.check_index(i)?;
        let pc = &self.pcoders[i];
        let (prd, trace) = pc.predictor.forward_traced(rep)?;
        if prd.dims() != target.dims() {
            return shape_err(format!("pcoder{}: prediction vs target {:?}", pc.number, target.dims()), format!("{:?}", target.dims()), prd.dims());
        }
        // d MSE / d prd = 2·(prd − target)/numel, and the squared error, in one fused pass each.
        let numel = prd.elem_count();
        let (dprd, sq) = crate::ops::scaled_error(&prd, target, dynamics::error_grad_factor(self.error_numel(&prd)))?;
        let grd = pc.predictor.vjp_input(&trace, &dprd)?;
        Ok(Prediction { prd, trace, dprd, grd, error: sq / numel as f32 })
    }

    fn initial_rep(&self, i: usize, ff: &Tensor, st: &State) -> Result<Tensor> {
        match &st.init {
            Init::Feedforward => Ok(ff.clone()),
            Init::Random(seed) => random_normal(ff.dims(), seed.wrapping_add(i as u64), ff.device()),
            Init::Given(reps) => match reps.get(i) {
                Some(r) if r.dims() == ff.dims() => Ok(r.to_dtype(DType::F32)?),
                Some(r) => shape_err(format!("pcoder{}: initial representation", i + 1), format!("{:?}", ff.dims()), r.dims()),
                None => usage(format!("pcoder{}: no initial representation given ({} supplied)", i + 1, reps.len())),
            },
        }
    }

    /// The number of values the error term of a prediction `prd` (`[N, ...]`) is normalised by:
    /// all of them with Predify's batch mean, one sample's with `error_scaling = "per_sample"`
    /// ([`predify_spec::ErrorScaling`]).
    pub fn error_numel(&self, prd: &Tensor) -> usize {
        match self.error_scaling {
            ErrorScaling::BatchMean => prd.elem_count(),
            ErrorScaling::PerSample => prd.dims().get(1..).map_or(1, |d| d.iter().product()),
        }
    }

    /// The coefficients of pcoder `i`'s update (see [`crate::dynamics`]), for an error term
    /// normalised by `prd_numel` values ([`Self::error_numel`] of the prediction).
    pub fn update_coeffs(&self, i: usize, prd_numel: usize) -> Result<UpdateCoeffs> {
        self.check_index(i)?;
        let top = i + 1 == self.pcoders.len();
        Ok(UpdateCoeffs::new(self.hyper[i], top, self.pcoders[i].c_sqrt, prd_numel))
    }

    /// r(t) = β·ff(t) + λ·prd_{i+1}(t−1) + m·r(t−1) − α·S·grd(t−1) ([`crate::dynamics`]).
    fn update(&self, i: usize, ff: &Tensor, prev: &PCoderState, st: &State) -> Result<Tensor> {
        let fb = if i + 1 == self.pcoders.len() {
            None
        } else {
            // The upper pcoder has not fired yet in this pass: its prediction is from t−1.
            Some(st.pcoders[i + 1].as_ref().map(|p| &p.prd).ok_or_else(|| {
                Error::Usage(format!("pcoder{}: no feedback from pcoder{} yet", i + 1, i + 2))
            })?)
        };
        let coeffs = self.update_coeffs(i, self.error_numel(&prev.prd))?;
        dynamics::update(ff, &prev.rep, fb, &prev.grd, coeffs)
    }

    /// One step of Predify's feedback training at the state's current representations:
    /// Σ_i MSE(prd_i, target_i) and its gradient w.r.t. every predictor parameter (the
    /// representations and targets are constants, as at timestep 0).
    pub fn reconstruction_grads(&self, st: &State) -> Result<ReconstructionGrads> {
        self.check_state(st)?;
        let reps = (0..self.pcoders.len())
            .map(|i| st.rep(i).cloned().ok_or_else(|| Error::Usage(format!("pcoder{}: run a pass before computing reconstruction gradients", i + 1))))
            .collect::<Result<Vec<_>>>()?;
        self.reconstruction_grads_at(&st.input, &reps)
    }

    /// [`Self::reconstruction_grads`] for given representations `reps[i]` and input `x` (the
    /// first pcoder's target): `Σ_i MSE(P_i(reps[i]), reps[i−1])` and its gradient w.r.t. every
    /// predictor parameter. With the feedforward drives as `reps`
    /// ([`crate::Predified::feedforward_taps`]) this is Predify's feedback-training step without
    /// running the dynamics. A non-finite representation or loss is [`Error::NonFinite`].
    pub fn reconstruction_grads_at(&self, x: &Tensor, reps: &[Tensor]) -> Result<ReconstructionGrads> {
        if reps.len() != self.pcoders.len() {
            return usage(format!("{}: {} representations for {} pcoders", self.name, reps.len(), self.pcoders.len()));
        }
        let mut per_pcoder = Vec::with_capacity(reps.len());
        let mut grads = Vec::new();
        for (i, pc) in self.pcoders.iter().enumerate() {
            let rep = &reps[i];
            if !crate::ops::all_finite(rep)? {
                return Err(Error::NonFinite { pcoder: pc.number, what: "the representation", timestep: 0 });
            }
            let target = if i == 0 { x } else { &reps[i - 1] };
            let (prd, trace) = pc.predictor.forward_traced(rep)?;
            // One fused pass for the loss and its gradient: Candle's difference, square, sum
            // and scale each allocated a prediction-sized tensor (51 MB for PVGG16's pcoder 2
            // at batch 4, most of its cost in fresh pages).
            let numel = prd.elem_count();
            let (dprd, sq) = crate::ops::scaled_error(&prd, target, dynamics::error_grad_factor(numel))?;
            let loss = sq / numel as f32;
            if !loss.is_finite() {
                return Err(Error::NonFinite { pcoder: pc.number, what: "the reconstruction loss", timestep: 0 });
            }
            per_pcoder.push(loss);
            let g = pc.predictor.param_grads(&trace, &dprd)?;
            grads.extend(g.into_iter().map(|(n, t)| (format!("pcoder{}.{n}", pc.number), t)));
        }
        let loss = per_pcoder.iter().sum();
        Ok(ReconstructionGrads { loss, per_pcoder, grads })
    }
}

fn random_normal(shape: &[usize], seed: u64, device: &Device) -> Result<Tensor> {
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| StandardNormal.sample(&mut rng)).collect();
    Ok(Tensor::from_vec(v, shape, device)?)
}

/// One pcoder's prediction step (see [`PNet::predict`]).
#[derive(Debug, Clone)]
pub struct Prediction {
    /// `pmodule(rep)`, shaped like the target.
    pub prd: Tensor,
    /// The predictor's layer inputs, for its backward passes.
    pub trace: Trace,
    /// `k·(prd − target)`, `k = 2/numel`: the prediction error's gradient w.r.t. `prd`.
    pub dprd: Tensor,
    /// The error gradient w.r.t. the representation, `J_Pᵀ·dprd` (unscaled).
    pub grd: Tensor,
    /// The mean squared prediction error over all elements (batch included).
    pub error: f32,
}

/// The reconstruction loss and its gradients (see [`PNet::reconstruction_grads`]).
#[derive(Debug, Clone)]
pub struct ReconstructionGrads {
    /// Σ of the per-pcoder losses.
    pub loss: f32,
    /// MSE of each pcoder's prediction.
    pub per_pcoder: Vec<f32>,
    /// Gradient of `loss` w.r.t. each predictor parameter, by full name.
    pub grads: Vec<(String, Tensor)>,
}
