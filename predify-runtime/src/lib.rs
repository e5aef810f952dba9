//! Runtime of predify-rs: PCoder state and dynamics, predictors, and the kernels under them.
//!
//! Most users reach this through the `predify` crate and its `#[predify]` macro; the types here
//! also work on their own: build a [`PNet`] from a [`predify_spec::Spec`] and the probed shapes
//! of the attach points, then drive it from a backbone pass with [`PNet::begin_pass`],
//! [`PNet::fire`] and [`PNet::end_pass`].
#![deny(missing_docs)]

pub mod c_sqrt;
pub mod chain;
#[cfg(feature = "cuda")]
mod cuda;
pub mod default_predictor;
pub mod dynamics;
pub mod error;
pub mod hyper;
pub mod kernels;
pub mod layers;
mod ops;
pub mod optim;
pub mod pnet;
pub mod predictor;
pub mod predified;
pub mod sequential;
pub mod state;
pub mod tensor_io;
pub mod unroll;

pub use error::{Error, Result};
pub use hyper::{HyperLogits, Hyperparameters};
pub use pnet::{CSqrtSource, PCoder, PNet, Prediction, ReconstructionGrads};
pub use predictor::Predictor;
pub use predified::{probe_shapes, Predified, MAX_TIMESTEPS};
pub use state::{PCoderState, State};
