// Input of the golden expansion test (tests/macro_expand.rs); the expected output is
// ptiny.expanded.rs beside it (regenerate with PREDIFY_BLESS=1).
use predify::candle_core::Module;
use predify::candle_nn::{BatchNorm, Linear};
use predify::predify;
use predify::runtime::layers::Flatten;

#[predify(
    name = "PTiny",
    input_size = [1, 28, 28],
    gradient_scaling = true,
    pcoders = [
        { module = "stem", predictor = "ConvTranspose2d(8, 1, kernel_size=5, padding=2)",
          hyperparameters = { feedforward = 0.3, feedback = 0.3, pc = 0.01 } },
        { module = "features[2]" },
        { module = "features[5]", hyperparameters = { feedforward = 0.4, feedback = 0.0 } },
        { module = "norm" },
    ]
)]
pub struct Tiny {
    stem: Box<dyn Module>,
    features: Vec<Box<dyn Module>>,
    #[predify(module_t)]
    norm: BatchNorm,
    flatten: Flatten,
    head: [Linear; 2],
    #[predify(skip)]
    classes: usize,
}
