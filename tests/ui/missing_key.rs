// `name`, `input_size` and each pcoder's `module` are required.
#![allow(dead_code)]
use predify::candle_core::Module;
use predify::predify;

#[predify(pcoders = [
    { module = "features[1]" },
    { predictor = "ConvTranspose2d(16, 8, kernel_size=3, padding=1)" },
])]
struct Net {
    features: Vec<Box<dyn Module>>,
}

fn main() {}
