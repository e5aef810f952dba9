// A pcoder attached to a field the struct does not have.
#![allow(dead_code)]
use predify::candle_core::Module;
use predify::predify;

#[predify(name = "PNet", input_size = [1, 8, 8], pcoders = [
    { module = "featurs[1]" },
    { module = "head" },
])]
struct Net {
    features: Vec<Box<dyn Module>>,
    classifier: Box<dyn Module>,
}

fn main() {}
