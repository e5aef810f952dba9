//! PyTorch-style predictor expressions, e.g.
//! `Sequential(ConvTranspose2d(128, 64, kernel_size=(10, 10), stride=(2, 2), padding=(4, 4)), ReLU(inplace=True))`.
//!
//! Three stages: [`lexer`] (tokens), [`parser`] (a tiny Python expression tree), and
//! [`build`] with [`args`], [`conv`] and [`upsample`] (PyTorch argument binding and checks,
//! yielding a [`Predictor`]).

mod args;
mod build;
mod conv;
mod error;
mod lexer;
mod parser;
mod upsample;

pub use error::{ExprError, ExprErrorKind};

use crate::types::Predictor;

/// Parses a PyTorch module expression into a [`Predictor`].
///
/// Accepts `Sequential(...)` of layers, or one layer: `ConvTranspose2d`, `ConvTranspose3d`,
/// `Conv2d`, `Conv3d`, `ReLU`, `Upsample`, optionally prefixed by `nn.` or `torch.nn.`, with
/// positional and keyword arguments in PyTorch's order and names.
///
/// ```
/// use predify_spec::{parse_predictor, Layer, Predictor};
/// let p = parse_predictor("ConvTranspose2d(64, 3, kernel_size=(5, 5), padding=2)").unwrap();
/// let Predictor::Single(Layer::ConvTranspose(c)) = p else { panic!() };
/// assert_eq!((c.in_channels, c.out_channels, c.padding), (64, 3, vec![2, 2]));
/// ```
pub fn parse_predictor(expr: &str) -> Result<Predictor, ExprError> {
    parse_with_offsets(expr).map(|b| b.predictor)
}

/// [`parse_predictor`], also returning each layer's byte offset in `expr`.
pub(crate) fn parse_with_offsets(expr: &str) -> Result<build::Built, ExprError> {
    let tokens = lexer::lex(expr)?;
    let tree = parser::parse(&tokens)?;
    build::build(&tree)
}

pub(crate) use build::Built;
