//! The runtime's error type: every misuse names the pcoder or layer and the shapes involved.

/// Errors of the runtime. Library code never panics on user input; it returns one of these.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An error from Candle itself.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// A tensor has the wrong shape.
    #[error("{context}: expected shape {expected}, got {got:?}")]
    Shape {
        /// Which pcoder / layer / tensor.
        context: String,
        /// The shape that was expected, in words or as a list.
        expected: String,
        /// The shape that was found.
        got: Vec<usize>,
    },
    /// A representation, prediction or loss became NaN or infinite.
    #[error("pcoder {pcoder}: {what} is not finite (NaN or ±inf) at timestep {timestep}")]
    NonFinite {
        /// 1-based pcoder number.
        pcoder: usize,
        /// Which quantity.
        what: &'static str,
        /// The backbone pass in which it happened.
        timestep: usize,
    },
    /// Only float32 tensors are supported by the kernels.
    #[error("{context}: expected dtype f32, got {got:?}")]
    DType {
        /// Which tensor.
        context: String,
        /// The dtype that was found.
        got: candle_core::DType,
    },
    /// The spec is invalid.
    #[error(transparent)]
    Spec(#[from] predify_spec::SpecErrors),
    /// Calls made in an order the dynamics do not allow, or an invalid configuration.
    #[error("{0}")]
    Usage(String),
}

/// `Result` with the runtime's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn usage<T>(msg: impl Into<String>) -> Result<T> {
    Err(Error::Usage(msg.into()))
}

pub(crate) fn shape_err<T>(context: impl Into<String>, expected: impl Into<String>, got: &[usize]) -> Result<T> {
    Err(Error::Shape { context: context.into(), expected: expected.into(), got: got.to_vec() })
}
