//! Gives calls of the expression tree their PyTorch meaning: which layer a call builds,
//! and the `Sequential` structure. Argument handling is in [`super::args`].

use super::args::{bind, boolean};
use super::conv::conv;
use super::error::{ExprError, ExprErrorKind as K};
use super::parser::{Call, Node, NodeKind};
use super::upsample::upsample;
use crate::types::{Layer, Predictor};

const RELU_PARAMS: &[&str] = &["inplace"];

/// A predictor and the byte offset of each of its layers (for later, spec-level errors).
pub(crate) struct Built {
    pub(crate) predictor: Predictor,
    pub(crate) layer_offsets: Vec<usize>,
}

enum Kind {
    Sequential,
    ConvTranspose(usize),
    Conv(usize),
    ReLU,
    Upsample,
}

fn kind_of(name: &str) -> Option<Kind> {
    let bare = name.strip_prefix("torch.nn.").or_else(|| name.strip_prefix("nn.")).unwrap_or(name);
    Some(match bare {
        "Sequential" => Kind::Sequential,
        "ConvTranspose2d" => Kind::ConvTranspose(2),
        "ConvTranspose3d" => Kind::ConvTranspose(3),
        "Conv2d" => Kind::Conv(2),
        "Conv3d" => Kind::Conv(3),
        "ReLU" => Kind::ReLU,
        "Upsample" => Kind::Upsample,
        _ => return None,
    })
}

pub(crate) fn build(root: &Node) -> Result<Built, ExprError> {
    let NodeKind::Call(call) = &root.kind else {
        return Err(ExprError::new(
            root.offset,
            K::Unexpected {
                expected: "a layer such as ConvTranspose2d(...) or Sequential(...)",
                found: root.kind.describe(),
            },
        ));
    };
    match kind_of(&call.name) {
        Some(Kind::Sequential) => {
            let mut layers = Vec::new();
            let mut layer_offsets = Vec::new();
            for arg in &call.args {
                if let Some((_, at)) = arg.keyword {
                    return Err(ExprError::new(at, K::SequentialArgument));
                }
                let NodeKind::Call(inner) = &arg.value.kind else {
                    return Err(ExprError::new(arg.value.offset, K::SequentialArgument));
                };
                if matches!(kind_of(&inner.name), Some(Kind::Sequential)) {
                    return Err(ExprError::new(arg.value.offset, K::NestedSequential));
                }
                layers.push(layer(inner, arg.value.offset)?);
                layer_offsets.push(arg.value.offset);
            }
            if layers.is_empty() {
                return Err(ExprError::new(call.close, K::EmptySequential));
            }
            Ok(Built { predictor: Predictor::Sequential(layers), layer_offsets })
        }
        _ => Ok(Built { predictor: Predictor::Single(layer(call, root.offset)?), layer_offsets: vec![root.offset] }),
    }
}

/// One non-Sequential layer.
fn layer(call: &Call, offset: usize) -> Result<Layer, ExprError> {
    match kind_of(&call.name) {
        Some(Kind::ConvTranspose(dims)) => conv(call, true, dims).map(Layer::ConvTranspose),
        Some(Kind::Conv(dims)) => conv(call, false, dims).map(Layer::Conv),
        Some(Kind::ReLU) => {
            let [inplace] = bind::<1>(call, RELU_PARAMS, 0)?;
            Ok(Layer::ReLU { inplace: inplace.map(|n| boolean(n, "inplace")).transpose()?.unwrap_or(false) })
        }
        Some(Kind::Upsample) => upsample(call).map(Layer::Upsample),
        Some(Kind::Sequential) => Err(ExprError::new(offset, K::NestedSequential)),
        None => Err(ExprError::new(offset, K::UnknownLayer(call.name.clone()))),
    }
}
