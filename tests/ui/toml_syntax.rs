// A TOML syntax error in the spec file: reported at the `spec` literal with path:line:col.
#![allow(dead_code)]
use predify::candle_core::Module;
use predify::predify;

#[predify(spec = "tests/ui/specs/syntax_error.toml")]
struct Net {
    features: Vec<Box<dyn Module>>,
}

fn main() {}
