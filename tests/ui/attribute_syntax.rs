// The attribute must be `key = value` pairs (or `spec = "file"` alone), the struct must have
// named fields and no generics, and field options are `skip` or `module_t`.
#![allow(dead_code)]
use predify::candle_core::Module;
use predify::predify;

#[predify(name "PNet")]
struct A {
    features: Vec<Box<dyn Module>>,
}

#[predify(spec = "tests/ui/specs/errors.toml", name = "PNet")]
struct B {
    features: Vec<Box<dyn Module>>,
}

#[predify(name = "PNet", input_size = [1, 8, 8], pcoders = [{ module = "features[1]" }])]
struct C<M: Module> {
    features: Vec<M>,
    #[predify(skp)]
    extra: usize,
}

#[predify]
struct D(Vec<Box<dyn Module>>);

fn main() {}
