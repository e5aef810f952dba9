// `features` is an array of 4 layers: `features[4]` does not exist.
#![allow(dead_code)]
use predify::candle_core::Module;
use predify::predify;

#[predify(name = "PNet", input_size = [1, 8, 8], pcoders = [
    { module = "features[1]" },
    { module = "features[4]" },
])]
struct Net {
    features: [Box<dyn Module>; 4],
    classifier: Box<dyn Module>,
}

fn main() {}
