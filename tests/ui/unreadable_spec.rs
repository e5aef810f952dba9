// The spec file does not exist (paths are relative to CARGO_MANIFEST_DIR).
#![allow(dead_code)]
use predify::candle_core::Module;
use predify::predify;

#[predify(spec = "tests/ui/specs/no_such_spec.toml")]
struct Net {
    features: Vec<Box<dyn Module>>,
}

fn main() {}
