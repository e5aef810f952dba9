// `classifier` is one layer, not a `Vec` or an array: it cannot be indexed.
#![allow(dead_code)]
use predify::candle_core::Module;
use predify::predify;

#[predify(name = "PNet", input_size = [1, 8, 8], pcoders = [
    { module = "features[1]" },
    { module = "classifier[0]" },
])]
struct Net {
    features: Vec<Box<dyn Module>>,
    classifier: Box<dyn Module>,
}

fn main() {}
