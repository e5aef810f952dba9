//! Per-batch state of a predified network, kept apart from the (shareable) weights.

use candle_core::Tensor;

/// What a pcoder holds after its latest firing.
#[derive(Debug, Clone)]
pub struct PCoderState {
    /// The representation r_i(t) (replaces the hooked layer's output).
    pub rep: Tensor,
    /// The prediction of the layer below, pmodule_i(r_i(t)).
    pub prd: Tensor,
    /// d ε_i / d r_i, unscaled.
    pub grd: Tensor,
    /// ε_i(t): mean squared error of the prediction over all elements (batch included).
    pub prediction_error: f32,
    /// The backbone pass in which this was computed.
    pub pass: usize,
}

/// How the first pass initialises the representations.
#[derive(Debug, Clone)]
pub(crate) enum Init {
    /// r_i(0) = ff_i(0).
    Feedforward,
    /// r_i(0) ~ N(0, 1), drawn from a seeded generator (Predify's `random_init`).
    Random(u64),
    /// r_i(0) given, one tensor per pcoder.
    Given(Vec<Tensor>),
}

/// The state of one batch: the input, every pcoder's latest values and the error trace.
///
/// Create it with [`crate::PNet::new_state`]; one model serves any number of states.
#[derive(Debug, Clone)]
pub struct State {
    pub(crate) input: Tensor,
    pub(crate) pcoders: Vec<Option<PCoderState>>,
    /// Passes begun so far; the current pass is `passes - 1`.
    pub(crate) passes: usize,
    pub(crate) in_pass: bool,
    pub(crate) init: Init,
    pub(crate) errors: Vec<Vec<f32>>,
    /// The per-sample shapes of the network that made the state: the input's, then each
    /// pcoder's representation (a network steps only states of its own structure).
    pub(crate) shapes: Vec<Vec<usize>>,
}

impl State {
    /// A state for `input` of a network with per-sample shapes `shapes` (the input's, then one
    /// per pcoder).
    pub(crate) fn new(input: Tensor, shapes: Vec<Vec<usize>>) -> Self {
        let n = shapes.len().saturating_sub(1);
        Self { input, pcoders: vec![None; n], passes: 0, in_pass: false, init: Init::Feedforward, errors: Vec::new(), shapes }
    }

    /// Draw the first pass's representations from N(0, 1) with this seed (Predify's
    /// `random_init`), instead of taking the feedforward values.
    pub fn with_random_init(mut self, seed: u64) -> Self {
        self.init = Init::Random(seed);
        self
    }

    /// Supply the first pass's representations (one per pcoder, each of its ff shape), e.g. a
    /// recorded random draw.
    pub fn with_initial_reps(mut self, reps: Vec<Tensor>) -> Self {
        self.init = Init::Given(reps);
        self
    }

    /// The input batch.
    pub fn input(&self) -> &Tensor {
        &self.input
    }

    /// Number of backbone passes run so far (completed or in progress).
    pub fn passes(&self) -> usize {
        self.passes
    }

    /// The latest state of pcoder `i` (0-based), if it has fired.
    pub fn pcoder(&self, i: usize) -> Option<&PCoderState> {
        self.pcoders.get(i).and_then(|p| p.as_ref())
    }

    /// The representation of pcoder `i` (0-based), if it has fired.
    pub fn rep(&self, i: usize) -> Option<&Tensor> {
        self.pcoder(i).map(|p| &p.rep)
    }

    /// The prediction of pcoder `i` (0-based), if it has fired.
    pub fn prd(&self, i: usize) -> Option<&Tensor> {
        self.pcoder(i).map(|p| &p.prd)
    }

    /// The prediction error ε of pcoder `i` (0-based), if it has fired.
    pub fn prediction_error(&self, i: usize) -> Option<f32> {
        self.pcoder(i).map(|p| p.prediction_error)
    }

    /// Prediction errors per pass: `trace()[t][i]` is ε of pcoder `i` in pass `t`.
    pub fn trace(&self) -> &[Vec<f32>] {
        &self.errors
    }
}
