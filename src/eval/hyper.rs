//! Named hyperparameter configurations for evaluations: Predify's defaults (the network's own,
//! as its spec sets them) and the paper's (β = 0.8, λ = 0.1, α = 0.01 for every pcoder), each
//! optionally with α = 0 — the ablation that removes the error-correction term, so that its share
//! of an effect shows against the feedforward/feedback mixing alone.

use crate::common::{Error, Result};
use predify_runtime::{Hyperparameters, PNet};

/// A named hyperparameter configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HyperPreset {
    /// The network's own hyperparameters (Predify's defaults for the zoo's networks: β = λ = 0.3,
    /// α = 0.01 for PMnist8), unchanged.
    Predify,
    /// The paper's: β = 0.8, λ = 0.1, α = 0.01 for every pcoder.
    Paper,
}

impl HyperPreset {
    /// The paper's hyperparameters, [`HyperPreset::Paper`].
    pub const PAPER: Hyperparameters = Hyperparameters { feedforward: 0.8, feedback: 0.1, pc: 0.01 };

    /// `predify` or `paper`.
    pub fn name(self) -> &'static str {
        match self {
            HyperPreset::Predify => "predify",
            HyperPreset::Paper => "paper",
        }
    }

    /// Parse `predify` (also `default`) or `paper`.
    pub fn parse(s: &str) -> Result<Self> {
        match s.trim() {
            "predify" | "default" => Ok(HyperPreset::Predify),
            "paper" => Ok(HyperPreset::Paper),
            o => Err(Error::Config(format!("hyperparameters `{o}`: expected predify or paper"))),
        }
    }

    /// The label of this configuration in reports: `predify`, `paper`, `paper α=0`.
    pub fn label(self, alpha_zero: bool) -> String {
        if alpha_zero {
            format!("{} α=0", self.name())
        } else {
            self.name().to_string()
        }
    }

    /// Set every pcoder of `pnet` to this configuration, starting from `base` (the network's own
    /// hyperparameters, one per pcoder, as read before any change: the `predify` configuration
    /// restores them), with α = 0 if `alpha_zero`.
    pub fn apply(self, pnet: &mut PNet, base: &[Hyperparameters], alpha_zero: bool) -> Result<()> {
        if base.len() != pnet.len() {
            return Err(Error::Config(format!("{} base hyperparameters for {} pcoders", base.len(), pnet.len())));
        }
        for (i, &b) in base.iter().enumerate() {
            let mut h = match self {
                HyperPreset::Predify => b,
                HyperPreset::Paper => Self::PAPER,
            };
            if alpha_zero {
                h.pc = 0.0;
            }
            pnet.set_hyperparameters(i, h)?;
        }
        Ok(())
    }
}

/// The hyperparameters of every pcoder of `pnet`, e.g. to pass as `base` to
/// [`HyperPreset::apply`] later.
pub fn current(pnet: &PNet) -> Result<Vec<Hyperparameters>> {
    Ok((0..pnet.len()).map(|i| pnet.hyperparameters(i)).collect::<std::result::Result<Vec<_>, _>>()?)
}
