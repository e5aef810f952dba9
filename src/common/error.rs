//! The error type of training, evaluation and tuning.

use std::path::PathBuf;

/// Errors of training, evaluation and tuning; each names the file, tensor or pcoder concerned.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// From the runtime (shapes, the dynamics).
    #[error(transparent)]
    Runtime(#[from] predify_runtime::Error),
    /// From reading a data set.
    #[error(transparent)]
    Data(#[from] crate::data::Error),
    /// From Candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A checkpoint is unreadable or does not fit the network.
    #[error("{path}: {message}")]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong (names the tensor).
        message: String,
    },
    /// A loss, a representation, a gradient or an updated weight became NaN or infinite (the
    /// weights are left as they were before the step).
    #[error("diverged at epoch {epoch}, step {step}: {message}; the weights are those from before this step (check the input for NaN/inf values, or lower the learning rate)")]
    Diverged {
        /// Epoch (1-based).
        epoch: usize,
        /// Step within the epoch (1-based).
        step: usize,
        /// What became non-finite, naming the pcoder.
        message: String,
    },
    /// An invalid setting.
    #[error("{0}")]
    Config(String),
}

/// `Result` with this module's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
