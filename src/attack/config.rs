//! What an attack does: its method, goal, budget and the network's unrolling.

use predify_runtime::unroll::Semantics;

/// The target shift `k` of targeted attacks on 10 classes: target = (label + 1) mod 10.
///
/// The paper's ImageNet recipe shifts by 800 of 1000 classes, a fixed, label-dependent target
/// with no semantic relation to the label. On 10 classes a shift of 1 is coprime to 10, so the
/// label→target map is a single 10-cycle: ten distinct ordered pairs, each class a source and a
/// target exactly once. A shift of 5 would be an involution (0↔5, 1↔6, …), attacking only five
/// unordered pairs, both ways.
pub const DEFAULT_TARGET_SHIFT: usize = 1;

/// How the perturbation is found.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Method {
    /// One signed-gradient step of size ε (from the random start when one is drawn).
    Fgsm,
    /// Basic iterative method / L∞ PGD: `steps` signed-gradient steps of size `step_rel · ε`,
    /// each followed by the projection. The paper uses 100 steps of 2.5/100 · ε.
    Bim {
        /// Number of steps.
        steps: usize,
        /// Step size relative to ε.
        step_rel: f32,
    },
}

impl Method {
    /// BIM with `steps` steps of `2.5/steps · ε`: the paper's ratio of total path length to ε.
    pub fn bim(steps: usize) -> Self {
        Method::Bim { steps, step_rel: 2.5 / steps.max(1) as f32 }
    }

    /// The number of gradient steps and the step size at `eps`.
    pub fn schedule(&self, eps: f32) -> (usize, f32) {
        match *self {
            Method::Fgsm => (1, eps),
            Method::Bim { steps, step_rel } => (steps, step_rel * eps),
        }
    }

    /// A short description for reports, e.g. `BIM 20×0.125ε`.
    pub fn label(&self) -> String {
        match *self {
            Method::Fgsm => "FGSM".into(),
            Method::Bim { steps, step_rel } => format!("BIM {steps}×{step_rel:.4}ε"),
        }
    }
}

/// What the attack wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Goal {
    /// Maximise the cross-entropy to the true label; succeeds when the prediction is wrong.
    Untargeted,
    /// Minimise the cross-entropy to the target `(label + shift) mod classes`; succeeds when
    /// the prediction is the target.
    Targeted {
        /// The shift `k` (see [`DEFAULT_TARGET_SHIFT`]).
        shift: usize,
    },
}

impl Goal {
    /// Targeted with [`DEFAULT_TARGET_SHIFT`].
    pub fn targeted() -> Self {
        Goal::Targeted { shift: DEFAULT_TARGET_SHIFT }
    }

    /// The class the loss is taken against: the label (untargeted) or the target.
    pub fn loss_class(&self, label: usize, classes: usize) -> usize {
        match *self {
            Goal::Untargeted => label,
            Goal::Targeted { shift } => (label + shift) % classes,
        }
    }

    /// Whether predicting `pred` for an image labelled `label` is a success of the attack.
    pub fn succeeded(&self, pred: usize, label: usize, classes: usize) -> bool {
        match *self {
            Goal::Untargeted => pred != label,
            Goal::Targeted { .. } => pred == self.loss_class(label, classes),
        }
    }

    /// `untargeted` or `targeted(+k)`.
    pub fn label(&self) -> String {
        match *self {
            Goal::Untargeted => "untargeted".into(),
            Goal::Targeted { shift } => format!("targeted(+{shift})"),
        }
    }
}

/// One attack on one batch at one ε (see [`super::perturb`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AttackConfig {
    /// The L∞ budget ε (in the input's units).
    pub eps: f32,
    /// ε's index in a sweep: with `seed` and each image's index it selects the random start.
    pub eps_index: usize,
    /// FGSM or BIM.
    pub method: Method,
    /// Targeted or untargeted.
    pub goal: Goal,
    /// Start from a uniform draw in the ε-ball (projected onto the range) instead of the image.
    pub random_start: bool,
    /// `T`: passes recorded; the loss reads timestep `T − 1` (1 = the plain network).
    pub timesteps: usize,
    /// How the error term is differentiated (Predify's semantics by default).
    pub semantics: Semantics,
    /// The image range `[lo, hi]` every adversarial stays in (MNIST: `[0, 1]`).
    pub range: (f32, f32),
    /// Seed of the random starts.
    pub seed: u64,
}

impl Default for AttackConfig {
    fn default() -> Self {
        Self {
            eps: 0.1,
            eps_index: 0,
            method: Method::bim(20),
            goal: Goal::Untargeted,
            random_start: true,
            timesteps: 1,
            semantics: Semantics::Predify,
            range: (0.0, 1.0),
            seed: 0,
        }
    }
}
