//! Errors of predictor expressions.

/// An error in a predictor expression, at a byte offset inside the expression string.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("at byte {offset}: {kind}")]
pub struct ExprError {
    /// Byte offset of the offending token or argument inside the expression.
    pub offset: usize,
    /// What went wrong.
    pub kind: ExprErrorKind,
}

impl ExprError {
    pub(crate) fn new(offset: usize, kind: ExprErrorKind) -> Self {
        Self { offset, kind }
    }
}

/// What went wrong in a predictor expression.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExprErrorKind {
    /// A character that cannot start any token.
    #[error("unexpected character {0:?}")]
    UnexpectedChar(char),
    /// A string literal without its closing quote.
    #[error("unterminated string literal")]
    UnterminatedString,
    /// A backslash escape that is not supported in string literals.
    #[error("unsupported escape sequence `\\{0}`")]
    BadEscape(char),
    /// A number that cannot be read (malformed, or too large).
    #[error("invalid number `{0}`")]
    InvalidNumber(String),
    /// A token where another was expected.
    #[error("expected {expected}, found {found}")]
    Unexpected {
        /// What the grammar allows here.
        expected: &'static str,
        /// What was found (a description of the token).
        found: String,
    },
    /// Brackets nested too deeply (a guard against stack exhaustion).
    #[error("expression nested more than {0} levels deep")]
    TooDeep(usize),
    /// A call of a module type this crate does not know.
    #[error(
        "unknown layer type `{0}` (supported: Sequential, ConvTranspose2d, ConvTranspose3d, \
         Conv2d, Conv3d, ReLU, Upsample)"
    )]
    UnknownLayer(String),
    /// `Sequential(Sequential(...))`.
    #[error("a Sequential cannot contain another Sequential")]
    NestedSequential,
    /// `Sequential()`.
    #[error("a Sequential needs at least one layer")]
    EmptySequential,
    /// An argument of `Sequential` that is not a layer (e.g. a keyword or a number).
    #[error("Sequential takes layers as positional arguments only")]
    SequentialArgument,
    /// `f(a=1, 2)`, a syntax error in Python.
    #[error("positional argument follows keyword argument")]
    PositionalAfterKeyword,
    /// More positional arguments than the layer has parameters.
    #[error("{layer} takes at most {max} positional arguments, found {found}")]
    TooManyPositional {
        /// The layer type, e.g. `Conv2d`.
        layer: String,
        /// How many it takes.
        max: usize,
        /// How many were given.
        found: usize,
    },
    /// A required argument was not given.
    #[error("{layer} is missing required argument `{arg}`")]
    MissingArgument {
        /// The layer type.
        layer: String,
        /// The parameter's name.
        arg: &'static str,
    },
    /// An argument given twice (twice by keyword, or by position and by keyword).
    #[error("{layer} got multiple values for argument `{arg}`")]
    DuplicateArgument {
        /// The layer type.
        layer: String,
        /// The parameter's name.
        arg: String,
    },
    /// A keyword that is not a parameter of the layer.
    #[error("{layer} has no argument `{arg}` (expected one of: {})", allowed.join(", "))]
    UnknownKeyword {
        /// The layer type.
        layer: String,
        /// The keyword as written.
        arg: String,
        /// The layer's parameters.
        allowed: &'static [&'static str],
    },
    /// An argument of the wrong type.
    #[error("`{arg}`: expected {expected}, found {found}")]
    WrongType {
        /// The parameter's name.
        arg: &'static str,
        /// What the parameter accepts.
        expected: &'static str,
        /// What was given.
        found: String,
    },
    /// An argument of the right type but an invalid or unsupported value.
    #[error("`{arg}`: {message}")]
    InvalidValue {
        /// The parameter's name.
        arg: &'static str,
        /// Why the value is rejected.
        message: String,
    },
}
