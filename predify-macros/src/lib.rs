//! The `#[predify]` attribute macro. All of its logic lives in `predify-codegen` (so it can be
//! tested and run outside the compiler, e.g. by `predify expand`); this crate only hands the
//! tokens over.
//!
//! Use it through the `predify` crate (`predify::predify`), whose documentation of the macro
//! has the semantics and a complete example: the generated code refers to `::predify::...`.

use proc_macro::TokenStream;

/// Turns a Candle model struct into a predictive-coding network (Predify): compile-time PCoder
/// wiring from a spec given as a file (`#[predify(spec = "templates/pvgg16.toml")]`) or inline.
///
/// See the `predify` crate's re-export of this macro for the full documentation.
#[proc_macro_attribute]
pub fn predify(attr: TokenStream, item: TokenStream) -> TokenStream {
    predify_codegen::expand(attr.into(), item.into()).into()
}
