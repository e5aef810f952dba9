//! The validated, typed form of a Predify spec.
//!
//! Everything here is plain data: no Candle, no I/O. The runtime builds PCoders from it and the
//! `#[predify]` macro turns it into code, so both agree on one meaning of a spec.

/// Default `feedforward` (β) of a pcoder, as in Predify.
pub const DEFAULT_FEEDFORWARD: f32 = 0.3;
/// Default `feedback` (λ) of a pcoder, as in Predify.
pub const DEFAULT_FEEDBACK: f32 = 0.3;
/// Default `pc` (α, the error-correction rate) of a pcoder, as in Predify.
pub const DEFAULT_PC: f32 = 0.01;

/// Largest value of any one size in a spec: an `input_size` entry, `in_channels`,
/// `out_channels`, `groups`, `stride`, `padding`, `output_padding`, `dilation`, an `Upsample`
/// `size` or `scale_factor`, and a convolution's dilated kernel extent
/// `dilation * (kernel_size - 1) + 1` (2^20). Larger values describe tensors no machine holds.
pub const MAX_SIZE: usize = 1 << 20;
/// Largest number of elements in one sample of `input_size` (2^31, 8 GiB of f32).
pub const MAX_SAMPLE_ELEMENTS: usize = 1 << 31;
/// Largest `kernel_size` along one axis (1024).
pub const MAX_KERNEL_SIZE: usize = 1024;
/// Largest number of weights of one convolution, `in_channels * out_channels / groups *
/// prod(kernel_size)` (2^28, 1 GiB of f32; VGG16's largest layer has 1.03e8).
pub const MAX_LAYER_WEIGHTS: usize = 1 << 28;

/// A whole predified network: Predify's TOML config, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    /// Name of the predified network (`name`), e.g. `PVgg16`.
    pub name: String,
    /// Input size without the batch: `[C, H, W]`, or `[C, D, H, W]` for 3-D networks.
    pub input_size: Vec<usize>,
    /// `gradient_scaling`: use PCoderN (error term scaled by numel/√C) instead of PCoder.
    pub gradient_scaling: bool,
    /// `shared_hyperparameters`: one set of β/λ/α for all pcoders (the first pcoder's).
    pub shared_hyperparameters: bool,
    /// `error_scaling`: how the prediction error's gradient is normalised (not a Predify key;
    /// absent means Predify's batch mean).
    pub error_scaling: ErrorScaling,
    /// `imports`: Python import lines; accepted for compatibility and otherwise ignored.
    pub imports: Vec<String>,
    /// The pcoders in feedforward execution order (pcoder 1 first).
    pub pcoders: Vec<PCoderSpec>,
}

/// How the error term's gradient `∂ MSE/∂ prd = k·(prd − target)` is normalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ErrorScaling {
    /// `batch_mean`, Predify's: the MSE is a mean over the whole batch, `k = 2/numel(batch)`, so
    /// each sample's error term shrinks as the batch grows (the dynamics depend on the batch
    /// size unless `gradient_scaling` cancels it).
    #[default]
    BatchMean,
    /// `per_sample`: the MSE is a mean over one sample's values, `k = 2/numel(sample)`, and
    /// PCoderN's `S` uses the per-sample count too: every sample evolves as it would alone.
    PerSample,
}

impl ErrorScaling {
    /// The spec's word for it.
    pub fn name(self) -> &'static str {
        match self {
            ErrorScaling::BatchMean => "batch_mean",
            ErrorScaling::PerSample => "per_sample",
        }
    }
}

/// One `[[pcoders]]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct PCoderSpec {
    /// Where the pcoder attaches (`module`), e.g. `features[3]`.
    pub module: AttachPoint,
    /// The feedback predictor, or `None` for the default inferred from probed shapes.
    pub predictor: Option<Predictor>,
    /// The hyperparameters as written (defaults filled in). See [`Spec::hyperparameters`]
    /// for the values actually used when they are shared.
    pub hyperparameters: Hyperparameters,
}

/// A module path inside the backbone, Predify-style: `features[3]`, `conv2`, `blocks.0`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AttachPoint {
    /// The path's segments in order.
    pub segments: Vec<PathSegment>,
}

/// One segment of an [`AttachPoint`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathSegment {
    /// A named field or attribute, e.g. `features`.
    Field(String),
    /// An element of a list of layers, e.g. the `3` of `features[3]` (or of `features.3`).
    Index(usize),
}

/// β (feedforward), λ (feedback) and α (pc) of one pcoder.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hyperparameters {
    /// β: weight of the feedforward drive.
    pub feedforward: f32,
    /// λ: weight of the upper pcoder's prediction (ignored for the last pcoder).
    pub feedback: f32,
    /// α: rate of the error-gradient correction.
    pub pc: f32,
}

impl Default for Hyperparameters {
    fn default() -> Self {
        Self { feedforward: DEFAULT_FEEDFORWARD, feedback: DEFAULT_FEEDBACK, pc: DEFAULT_PC }
    }
}

/// A feedback predictor: Predify's `pmodule`.
///
/// The distinction between a single module and a `Sequential` matters for weight names:
/// a single module's parameters are `pcoder{i}.pmodule.weight`, a Sequential's
/// `pcoder{i}.pmodule.{j}.weight` with `j` the position in the Sequential.
#[derive(Debug, Clone, PartialEq)]
pub enum Predictor {
    /// One module, e.g. `ConvTranspose2d(128, 64, kernel_size=3, padding=1)`.
    Single(Layer),
    /// `Sequential(...)` of modules, in order.
    Sequential(Vec<Layer>),
}

/// One module of a predictor.
#[derive(Debug, Clone, PartialEq)]
pub enum Layer {
    /// `ConvTranspose2d` / `ConvTranspose3d`.
    ConvTranspose(ConvSpec),
    /// `Conv2d` / `Conv3d`.
    Conv(ConvSpec),
    /// `ReLU(inplace=...)`; `inplace` has no effect on the result here.
    ReLU {
        /// The `inplace` flag as written.
        inplace: bool,
    },
    /// `Upsample(size=..., scale_factor=..., mode=..., align_corners=...)`.
    Upsample(UpsampleSpec),
}

/// A convolution or transposed convolution, PyTorch semantics. Every per-axis vector has
/// exactly `dims` entries (an int in the expression is repeated over the axes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvSpec {
    /// Number of spatial dimensions: 2 or 3.
    pub dims: usize,
    /// `in_channels`.
    pub in_channels: usize,
    /// `out_channels`.
    pub out_channels: usize,
    /// `kernel_size` per axis.
    pub kernel_size: Vec<usize>,
    /// `stride` per axis (default 1).
    pub stride: Vec<usize>,
    /// `padding` per axis (default 0).
    pub padding: Vec<usize>,
    /// `output_padding` per axis (default 0; transposed convolutions only, always 0 for Conv).
    pub output_padding: Vec<usize>,
    /// `dilation` per axis (default 1).
    pub dilation: Vec<usize>,
    /// `groups` (default 1).
    pub groups: usize,
    /// `bias` (default true).
    pub bias: bool,
}

/// Interpolation mode of an `Upsample`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpsampleMode {
    /// `'nearest'` (PyTorch's legacy nearest: `src = floor(dst * in/out)` or `floor(dst / scale)`).
    Nearest,
    /// `'bilinear'` (4-D input).
    Bilinear,
    /// `'trilinear'` (5-D input).
    Trilinear,
}

/// An `Upsample` module. Exactly one of `size` and `scale_factor` is set.
#[derive(Debug, Clone, PartialEq)]
pub struct UpsampleSpec {
    /// `size`: the output's spatial size.
    pub size: Option<AxisValues<usize>>,
    /// `scale_factor`: output = floor(input × scale), per axis.
    pub scale_factor: Option<AxisValues<f64>>,
    /// `mode` (default `'nearest'`, as in PyTorch).
    pub mode: UpsampleMode,
    /// `align_corners` (None when not given; PyTorch treats None as false).
    pub align_corners: Option<bool>,
}

/// A value given either once for every spatial axis or per axis (as PyTorch accepts).
#[derive(Debug, Clone, PartialEq)]
pub enum AxisValues<T> {
    /// One value for all spatial axes.
    Uniform(T),
    /// One value per spatial axis.
    PerAxis(Vec<T>),
}

impl<T: Clone> AxisValues<T> {
    /// The values for `dims` spatial axes, or `None` if a per-axis list has another length.
    pub fn for_dims(&self, dims: usize) -> Option<Vec<T>> {
        match self {
            AxisValues::Uniform(v) => Some(vec![v.clone(); dims]),
            AxisValues::PerAxis(vs) if vs.len() == dims => Some(vs.clone()),
            AxisValues::PerAxis(_) => None,
        }
    }
}
