//! Adversarial robustness across timesteps: L∞ attacks on the network unrolled to `T`
//! timesteps, with gradients through the predictive-coding dynamics
//! ([`predify_runtime::unroll`]).
//!
//! * [`perturb`]: one batch, one ε — FGSM or BIM/PGD ([`Method`]), targeted or untargeted
//!   ([`Goal`]), optionally from a random start in the ε-ball, every iterate projected onto the
//!   ε-ball around the clean image intersected with the image range.
//! * [`run_suite`]: a sweep over ε, `T` and goals on a data set, plus the transfer case
//!   (adversarials made on the plain network, evaluated at every timestep of the predified
//!   one), summarised in an [`AttackReport`] (table, CSV, JSON, PNG plot).
//!
//! # Timesteps
//!
//! An attack "at `T`" records `T` passes (timestep 0, the feedforward pass, then `T − 1`
//! feedback timesteps: `net(x)` then `net()` `T − 1` times) and attacks the cross-entropy of
//! the logits of the last one, timestep `T − 1`. `T = 1` is the plain feedforward network.
//!
//! # Reproducibility
//!
//! A random start is drawn per image from [`crate::common::Rng::derive`] with the seed, the ε's
//! index in the sweep and the image's index in the data set, never from the batch layout, and
//! the signed-gradient steps do not depend on the batch-mean scaling of the loss. The network
//! itself may still couple the images of a batch: without gradient scaling Predify's error term
//! is the gradient of a mean squared error over the whole batch, so its size (and every
//! timestep after 0) depends on the batch size (as in the original; PMnist8 is such a network).
//! With gradient scaling (PCoderN) the batch size cancels and results are independent of it.

mod config;
mod files;
mod perturb;
mod plot;
mod report;
mod suite;

pub use config::{AttackConfig, Goal, Method, DEFAULT_TARGET_SHIFT};
pub use perturb::{perturb, predictions};
pub use report::{AttackReport, AttackRow, TransferRow};
pub use suite::{run_suite, SuiteConfig};
