// One attribute, many problems of different kinds: every one is reported, in source order.
#![allow(dead_code)]
use predify::candle_core::Module;
use predify::predify;

#[predify(name = "PNet", input_size = [1, 0, 8], colour = "blue", pcoders = [
    { module = "features[7]", hyperparameters = { feedforward = 2 } },
    { module = "clasifier" },
    { module = "features[2]", predictor = "Upsample(scale_factor=2, mode='cubic')" },
])]
struct Net {
    features: [Box<dyn Module>; 6],
    classifier: Box<dyn Module>,
}

fn main() {}
