// Unknown keys (typos) in the attribute, in a pcoder and in its hyperparameters.
#![allow(dead_code)]
use predify::candle_core::Module;
use predify::predify;

#[predify(name = "PNet", input_size = [1, 8, 8], gradient_scale = true, pcoders = [
    { module = "features[1]", hyperparameters = { feedfoward = 0.3 } },
    { modul = "features[3]" },
])]
struct Net {
    features: Vec<Box<dyn Module>>,
}

fn main() {}
