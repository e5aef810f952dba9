// Errors in a spec file (validation and attach points): all reported, each at the `spec`
// literal with the file's path:line:col.
#![allow(dead_code)]
use predify::candle_core::Module;
use predify::predify;

#[predify(spec = "tests/ui/specs/errors.toml")]
struct Net {
    features: [Box<dyn Module>; 6],
    classifier: Box<dyn Module>,
}

fn main() {}
