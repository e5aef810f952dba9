// Pcoders must be listed in forward order (fields in declaration order, then element order).
#![allow(dead_code)]
use predify::candle_core::Module;
use predify::predify;

#[predify(name = "PNet", input_size = [1, 8, 8], pcoders = [
    { module = "features[3]" },
    { module = "features[1]" },
    { module = "classifier" },
    { module = "stem" },
])]
struct Net {
    stem: Box<dyn Module>,
    features: Vec<Box<dyn Module>>,
    classifier: Box<dyn Module>,
}

fn main() {}
