// Hyperparameters must be finite numbers >= 0 with feedforward + feedback <= 1.
#![allow(dead_code)]
use predify::candle_core::Module;
use predify::predify;

#[predify(name = "PNet", input_size = [1, 8, 8], pcoders = [
    { module = "features[1]", hyperparameters = { feedforward = -0.5, pc = 0.01 } },
    { module = "features[3]", hyperparameters = { feedforward = 0.8, feedback = 0.3 } },
    { module = "features[5]", hyperparameters = { pc = "fast" } },
])]
struct Net {
    features: Vec<Box<dyn Module>>,
}

fn main() {}
