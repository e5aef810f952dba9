//! Hyperparameters β (feedforward), λ (feedback), α (pc) and their learnable logit form.

pub use predify_spec::Hyperparameters;

/// Predify's trainable parametrisation of one pcoder's hyperparameters:
/// β = σ(ff_part)/Σ, λ = σ(fb_part)/Σ with Σ = σ(ff_part)+σ(fb_part)+σ(mem_part), α = errorm.
///
/// Predify initialises the logits as `logit(β)`, `logit(λ)`, `logit(1−β−λ)` (so Σ = 1), which is
/// what [`HyperLogits::from_hyperparameters`] returns; a zero weight becomes `−∞`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HyperLogits {
    /// Logit of the feedforward weight.
    pub ff_part: f32,
    /// Logit of the feedback weight.
    pub fb_part: f32,
    /// Logit of the memory weight.
    pub mem_part: f32,
    /// α itself (not squashed).
    pub errorm: f32,
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

fn logit(p: f32) -> f32 {
    (p / (1.0 - p)).ln()
}

impl HyperLogits {
    /// The logits Predify initialises from given hyperparameters.
    pub fn from_hyperparameters(h: Hyperparameters) -> Self {
        Self {
            ff_part: logit(h.feedforward),
            fb_part: logit(h.feedback),
            mem_part: logit(h.memory()),
            errorm: h.pc,
        }
    }

    /// The hyperparameters these logits stand for.
    pub fn to_hyperparameters(self) -> Hyperparameters {
        let (a, b, c) = (sigmoid(self.ff_part), sigmoid(self.fb_part), sigmoid(self.mem_part));
        let s = a + b + c;
        Hyperparameters { feedforward: a / s, feedback: b / s, pc: self.errorm }
    }

    /// The chain rule from `d = [∂L/∂β, ∂L/∂λ, ∂L/∂α]` to the gradient w.r.t. these logits
    /// `[ff_part, fb_part, mem_part, errorm]`.
    ///
    /// With `σ_a, σ_b, σ_c` the sigmoids of the three parts and `Σ` their sum, `β = σ_a/Σ`,
    /// `λ = σ_b/Σ`: `∂β/∂a = σ_a'·(1−β)/Σ`, `∂β/∂x = −β·σ_x'/Σ` for the other two parts, and
    /// likewise for λ; α is its own logit.
    pub fn chain(self, d: [f64; 3]) -> [f64; 4] {
        let s = |x: f32| 1.0 / (1.0 + (-(x as f64)).exp());
        let (sa, sb, sc) = (s(self.ff_part), s(self.fb_part), s(self.mem_part));
        let sum = sa + sb + sc;
        let (beta, lambda) = (sa / sum, sb / sum);
        // σ' = σ(1−σ) of each part, divided by Σ once.
        let (pa, pb, pc) = (sa * (1.0 - sa) / sum, sb * (1.0 - sb) / sum, sc * (1.0 - sc) / sum);
        [
            d[0] * (1.0 - beta) * pa - d[1] * lambda * pa,
            d[1] * (1.0 - lambda) * pb - d[0] * beta * pb,
            -(d[0] * beta + d[1] * lambda) * pc,
            d[2],
        ]
    }
}

/// Check hyperparameters like the spec does: finite, non-negative, β+λ ≤ 1 (in f32).
pub fn check(h: Hyperparameters) -> Result<(), String> {
    for (k, v) in [("feedforward", h.feedforward), ("feedback", h.feedback), ("pc", h.pc)] {
        if !v.is_finite() || v < 0.0 {
            return Err(format!("{k} must be a finite number >= 0, got {v}"));
        }
    }
    if h.memory() < 0.0 {
        return Err(format!("feedforward + feedback must be <= 1, got {} + {}", h.feedforward, h.feedback));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logits_round_trip_and_match_predify_values() {
        let h = Hyperparameters { feedforward: 0.2, feedback: 0.05, pc: 0.05 };
        let l = HyperLogits::from_hyperparameters(h);
        // values stored by Predify in tiny2d_default_pcodern_sep (ff_part1, fb_part1, mem_part1)
        assert!((l.ff_part - -1.3862943).abs() < 1e-5);
        assert!((l.fb_part - -2.944439).abs() < 1e-5);
        assert!((l.mem_part - 1.0986123).abs() < 1e-5);
        let back = l.to_hyperparameters();
        assert!((back.feedforward - 0.2).abs() < 1e-6 && (back.feedback - 0.05).abs() < 1e-6);
        let zero = HyperLogits::from_hyperparameters(Hyperparameters { feedforward: 0.6, feedback: 0.0, pc: 0.1 });
        assert_eq!(zero.fb_part, f32::NEG_INFINITY);
        assert_eq!(zero.to_hyperparameters().feedback, 0.0);
    }
}
