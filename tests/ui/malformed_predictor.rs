// Predictor expressions are parsed and checked at compile time.
#![allow(dead_code)]
use predify::candle_core::Module;
use predify::predify;

#[predify(name = "PNet", input_size = [1, 8, 8], pcoders = [
    { module = "features[1]", predictor = "ConvTranspose2d(8, 1, kernel_size=)" },
    { module = "features[3]", predictor = "Sequential(ConvTranspose2D(16, 8, kernel_size=3), ReLU())" },
    { module = "features[5]", predictor = "ConvTranspose3d(32, 16, kernel_size=3, padding=1)" },
])]
struct Net {
    features: Vec<Box<dyn Module>>,
}

fn main() {}
