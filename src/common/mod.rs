//! What training ([`crate::train`]), evaluation ([`crate::eval`]) and tuning ([`crate::tune`])
//! share: their error type, the seeded random number generator and epoch shuffles, atomic file
//! writes and the progress bar.
//!
//! This module imports only [`crate::data`] (for the error's `Data` variant), so every
//! application module may import it without creating a cycle. [`Error`] and [`Result`] are also
//! re-exported as `predify::train::{Error, Result}`, the names the trainer's signatures have
//! always used.

mod atomic;
mod error;
pub(crate) mod progress;
pub mod rng;

pub use atomic::write_atomic;
pub use error::{Error, Result};
pub use rng::{epoch_order, Rng};
