// Two pcoders at one attach point (`features.1` is `features[1]`; after the whole array of 3
// is after its last element).
#![allow(dead_code)]
use predify::candle_core::Module;
use predify::predify;

#[predify(name = "PNet", input_size = [1, 8, 8], pcoders = [
    { module = "features[1]" },
    { module = "features.1" },
    { module = "features[2]" },
    { module = "features" },
])]
struct Net {
    features: [Box<dyn Module>; 3],
    classifier: Box<dyn Module>,
}

fn main() {}
