//! # predify
//!
//! Predictive-coding dynamics (Predify, Choksi et al. 2021) for feedforward CNNs written with
//! Candle. This crate is the one to depend on: it re-exports the runtime, the spec and the
//! `#[predify]` attribute macro.
#![deny(missing_docs)]

extern crate self as predify;

pub use predify_runtime as runtime;
pub use predify_spec as spec;

pub use predify_runtime::{CSqrtSource, Error, HyperLogits, Hyperparameters, PNet, Result, State};
