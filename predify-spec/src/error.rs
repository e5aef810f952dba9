//! Validation errors, generic over where a front-end says a value was written.

use std::fmt;
use std::path::PathBuf;

use crate::attach::AttachPointError;
use crate::expr::ExprError;

/// One problem in a spec: what is wrong, in which pcoder, under which key, and where.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecError<L> {
    /// What is wrong.
    pub kind: SpecErrorKind,
    /// The pcoder concerned, 1-based as Predify counts (`None` for spec-level keys).
    pub pcoder: Option<usize>,
    /// The key concerned, relative to the pcoder if any: `input_size`, `module`,
    /// `hyperparameters.feedforward`, ... (`None` when no key applies).
    pub key: Option<String>,
    /// Where the offending value (or key, or table) was written, if known.
    pub loc: Option<L>,
}

impl<L> SpecError<L> {
    /// An error about `key` (of pcoder `pcoder`, if any) at `loc`.
    pub fn new(kind: SpecErrorKind, pcoder: Option<usize>, key: Option<&str>, loc: Option<L>) -> Self {
        Self { kind, pcoder, key: key.map(str::to_string), loc }
    }

    /// For errors inside a string value (a module path or predictor expression): the byte
    /// offset inside the string's contents, so a front-end can point into the string.
    pub fn offset_in_value(&self) -> Option<usize> {
        match &self.kind {
            SpecErrorKind::InvalidModule(e) => Some(e.offset),
            SpecErrorKind::InvalidPredictor(e) => Some(e.offset),
            SpecErrorKind::PredictorDims { offset, .. } | SpecErrorKind::ChannelMismatch { offset, .. } => {
                Some(*offset)
            }
            _ => None,
        }
    }

    /// The same error with its location mapped by `f` (e.g. to another front-end's type).
    pub fn map_loc<M>(self, f: impl FnOnce(L) -> M) -> SpecError<M> {
        SpecError { kind: self.kind, pcoder: self.pcoder, key: self.key, loc: self.loc.map(f) }
    }
}

impl<L> fmt::Display for SpecError<L> {
    /// `pcoder 2: hyperparameters.feedforward: expected a finite number >= 0, found -0.5`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = self.pcoder {
            write!(f, "pcoder {p}: ")?;
        }
        if let Some(k) = &self.key {
            write!(f, "{k}: ")?;
        }
        write!(f, "{}", self.kind)
    }
}

impl<L: fmt::Debug> std::error::Error for SpecError<L> {}

/// What is wrong; see [`SpecError`] for where.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpecErrorKind {
    /// The spec file could not be read.
    #[error("cannot read {}: {message}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error's message.
        message: String,
    },
    /// The TOML itself is malformed.
    #[error("invalid TOML: {0}")]
    Syntax(String),
    /// A required key is absent.
    #[error("missing required key (expected {expected})")]
    MissingKey {
        /// What the key should hold.
        expected: &'static str,
    },
    /// A key that specs do not have (usually a typo).
    #[error("unknown key{} (expected one of: {})",
        suggestion.map_or(String::new(), |s| format!("; did you mean `{s}`?")), allowed.join(", "))]
    UnknownKey {
        /// The keys allowed here.
        allowed: &'static [&'static str],
        /// The allowed key closest to the one written, if any is close.
        suggestion: Option<&'static str>,
    },
    /// A key given twice in one table.
    #[error("key given more than once")]
    DuplicateKey,
    /// A value of the wrong type.
    #[error("expected {expected}, found {found}")]
    WrongType {
        /// What the key holds.
        expected: &'static str,
        /// What was written.
        found: String,
    },
    /// `pcoders` is an empty array.
    #[error("expected at least one [[pcoders]] entry, found none")]
    EmptyPCoders,
    /// `name` is not an identifier (Predify makes it a class name).
    #[error("expected an identifier (letters, digits, `_`, not starting with a digit), found {0:?}")]
    InvalidName(String),
    /// `input_size` has the wrong length or a non-positive entry.
    #[error("expected 3 or 4 positive integers ([C, H, W] or [C, D, H, W]), found {found}")]
    InvalidInputSize {
        /// What was written.
        found: String,
    },
    /// A size larger than the documented limits ([`crate::MAX_SIZE`],
    /// [`crate::MAX_SAMPLE_ELEMENTS`]): a tensor no machine could hold.
    #[error("{what} must be at most {limit}, found {found}")]
    TooLarge {
        /// What is limited.
        what: &'static str,
        /// The limit.
        limit: usize,
        /// What was written (or what it amounts to).
        found: String,
    },
    /// β, λ or α negative or not finite.
    #[error("expected a finite number >= 0, found {found:?}")]
    InvalidHyperparameter {
        /// The value written.
        found: f64,
    },
    /// β + λ > 1, so the memory term 1 − β − λ would be negative (checked in f32, as Predify).
    #[error("feedforward + feedback must not exceed 1, found {feedforward} + {feedback} (memory term 1 - β - λ = {})",
        (1.0f32 - feedforward) - feedback)]
    HyperparameterSum {
        /// β.
        feedforward: f32,
        /// λ.
        feedback: f32,
    },
    /// `module` is not a valid module path.
    #[error("invalid module path: {0}")]
    InvalidModule(AttachPointError),
    /// `predictor` is not a valid expression.
    #[error("invalid predictor: {0}")]
    InvalidPredictor(ExprError),
    /// A predictor layer made for another number of spatial axes than `input_size` has.
    #[error("invalid predictor: at byte {offset}: {layer} works on {layer_dims} spatial axes, but input_size has {spec_dims}")]
    PredictorDims {
        /// Byte offset of the layer in the expression.
        offset: usize,
        /// The layer, as written back in PyTorch syntax.
        layer: String,
        /// Spatial axes the layer works on.
        layer_dims: usize,
        /// Spatial axes of the spec's input.
        spec_dims: usize,
    },
    /// Channel counts that cannot fit together.
    #[error("invalid predictor: at byte {offset}: {reason}: expected {expected}, found {found}")]
    ChannelMismatch {
        /// Byte offset of the layer in the expression.
        offset: usize,
        /// Why the count must be `expected`.
        reason: String,
        /// The count it must be.
        expected: usize,
        /// The count written.
        found: usize,
    },
}
