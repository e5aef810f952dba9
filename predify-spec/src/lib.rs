//! Predify network specs for Rust: the TOML config format of
//! [Predify](https://github.com/miladmozafari/predify) (Choksi, Mozafari et al., NeurIPS 2021),
//! its PyTorch-style predictor expressions, and their validation.
//!
//! - [`Spec::from_toml_str`] / [`Spec::from_path`] read a config; every problem is reported
//!   (not just the first) in [`SpecErrors`], each with its `line:col`.
//! - [`parse_predictor`] reads one expression such as
//!   `Sequential(ConvTranspose2d(128, 64, kernel_size=(10, 10), stride=(2, 2), padding=(4, 4)), ReLU(inplace=True))`.
//! - [`raw`] and [`validate()`] let other front-ends (the `#[predify]` macro's inline form)
//!   reuse the same checks with their own kind of location.
//!
//! ```
//! use predify_spec::{Layer, Predictor, Spec};
//! let spec = Spec::from_toml_str(r#"
//! name = "PVGG16"
//! input_size = [3, 224, 224]
//! [[pcoders]]
//! module = "features[3]"
//! predictor = "ConvTranspose2d(64, 3, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2))"
//! hyperparameters = {feedforward=0.2, feedback=0.05, pc=0.01}
//! "#).unwrap();
//! assert_eq!(spec.hyperparameters(0).feedforward, 0.2);
//! assert!(matches!(spec.pcoders[0].predictor, Some(Predictor::Single(Layer::ConvTranspose(_)))));
//!
//! let err = Spec::from_toml_str("name = \"P\"\ninput_size = [3, 0, 4]\n").unwrap_err();
//! assert_eq!(err.to_string().lines().count(), 2); // bad input_size, missing pcoders
//! ```
#![deny(missing_docs)]

mod attach;
mod error;
mod expr;
mod methods;
mod positions;
pub mod raw;
mod render;
mod spec_errors;
mod toml_source;
pub mod types;
mod validate;

pub use attach::{AttachPointError, AttachPointErrorKind};
pub use error::{SpecError, SpecErrorKind};
pub use expr::{parse_predictor, ExprError, ExprErrorKind};
pub use positions::LineIndex;
pub use spec_errors::SpecErrors;
pub use toml_source::{raw_from_toml, Span};
pub use types::*;
pub use validate::{validate, validate_pcoder};
