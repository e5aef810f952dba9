// `name` becomes the generated type: it must be a Rust identifier, not a keyword, and not the
// struct's own name.
#![allow(dead_code)]
use predify::candle_core::Module;
use predify::predify;

#[predify(name = "3Net", input_size = [1, 8, 8], pcoders = [{ module = "features[1]" }])]
struct A {
    features: Vec<Box<dyn Module>>,
}

#[predify(name = "fn", input_size = [1, 8, 8], pcoders = [{ module = "features[1]" }])]
struct B {
    features: Vec<Box<dyn Module>>,
}

#[predify(name = "C", input_size = [1, 8, 8], pcoders = [{ module = "features[1]" }])]
struct C {
    features: Vec<Box<dyn Module>>,
}

fn main() {}
