//! Checks of one `[[pcoders]]` entry.

use super::keys::{split, Errors, Value};
use crate::error::SpecErrorKind;
use crate::expr::{self, Built};
use crate::raw::{RawTable, RawValue};
use crate::types::{AttachPoint, Hyperparameters, PCoderSpec, DEFAULT_FEEDBACK, DEFAULT_FEEDFORWARD, DEFAULT_PC};

const PCODER_KEYS: &[&str; 3] = &["module", "predictor", "hyperparameters"];
const HYPER_KEYS: &[&str; 3] = &["feedforward", "feedback", "pc"];

/// A valid pcoder plus what the spec-level checks need to point into its predictor.
pub(crate) struct Checked<L> {
    pub(crate) spec: PCoderSpec,
    /// Byte offset of each predictor layer in the expression.
    pub(crate) layer_offsets: Vec<usize>,
    /// Where the predictor string was written.
    pub(crate) predictor_loc: Option<L>,
}

/// Checks one pcoder table (at `loc`); `None` if anything was wrong (all reported).
pub(crate) fn check<L: Clone>(errors: &mut Errors<L>, table: &RawTable<L>, loc: &L) -> Option<Checked<L>> {
    let before = errors.list.len();
    let [module_raw, predictor_raw, hyper_raw] = split(errors, table, PCODER_KEYS, "");

    let module = match module_raw {
        None => {
            let expected = "a module path such as \"features[3]\"";
            errors.push(SpecErrorKind::MissingKey { expected }, "module", loc);
            None
        }
        Some(v) => match &v.value {
            RawValue::Str(s) => {
                AttachPoint::parse(s).map_err(|e| errors.push(SpecErrorKind::InvalidModule(e), "module", &v.loc)).ok()
            }
            _ => {
                errors.wrong_type("a module path string such as \"features[3]\"", "module", v);
                None
            }
        },
    };

    let built: Option<Built> = match predictor_raw {
        None => None,
        Some(v) => match &v.value {
            RawValue::Str(s) => expr::parse_with_offsets(s)
                .map_err(|e| errors.push(SpecErrorKind::InvalidPredictor(e), "predictor", &v.loc))
                .ok(),
            _ => {
                errors.wrong_type("a PyTorch module expression string", "predictor", v);
                None
            }
        },
    };

    let hyperparameters = match hyper_raw {
        None => Some(Hyperparameters::default()),
        Some(v) => match &v.value {
            RawValue::Table(t) => hyperparameters(errors, t, &v.loc),
            _ => {
                errors.wrong_type("an inline table {feedforward, feedback, pc}", "hyperparameters", v);
                None
            }
        },
    };

    if errors.list.len() != before {
        return None;
    }
    let (predictor, layer_offsets) = match built {
        Some(b) => (Some(b.predictor), b.layer_offsets),
        None => (None, Vec::new()),
    };
    Some(Checked {
        spec: PCoderSpec { module: module?, predictor, hyperparameters: hyperparameters? },
        layer_offsets,
        predictor_loc: predictor_raw.map(|v| v.loc.clone()),
    })
}

/// `{feedforward, feedback, pc}`: each optional, a finite number >= 0 (ints accepted), and
/// feedforward + feedback <= 1 as Predify requires (its `1 - ff - fb < 0` test, in f32).
fn hyperparameters<L: Clone>(errors: &mut Errors<L>, table: &RawTable<L>, loc: &L) -> Option<Hyperparameters> {
    let [ff, fb, pc] = split(errors, table, HYPER_KEYS, "hyperparameters.");
    let ff = number(errors, ff, "hyperparameters.feedforward", DEFAULT_FEEDFORWARD);
    let fb = number(errors, fb, "hyperparameters.feedback", DEFAULT_FEEDBACK);
    let pc = number(errors, pc, "hyperparameters.pc", DEFAULT_PC);
    let (feedforward, feedback, pc) = (ff?, fb?, pc?);
    if (1.0f32 - feedforward) - feedback < 0.0 {
        errors.push(SpecErrorKind::HyperparameterSum { feedforward, feedback }, "hyperparameters", loc);
        return None;
    }
    Some(Hyperparameters { feedforward, feedback, pc })
}

/// A finite, non-negative number (after the f32 conversion), or `default` when absent.
fn number<L: Clone>(errors: &mut Errors<L>, value: Option<&Value<L>>, key: &str, default: f32) -> Option<f32> {
    let Some(v) = value else { return Some(default) };
    let x = match v.value {
        RawValue::Int(i) => i as f64,
        RawValue::Float(f) => f,
        _ => {
            errors.wrong_type("a number", key, v);
            return None;
        }
    };
    let narrow = x as f32;
    if !(x >= 0.0 && narrow.is_finite()) {
        errors.push(SpecErrorKind::InvalidHyperparameter { found: x }, key, &v.loc);
        return None;
    }
    Some(narrow)
}
