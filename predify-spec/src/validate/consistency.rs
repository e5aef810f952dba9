//! Checks across layers and pcoders: spatial axes and channel counts that cannot work.
//!
//! A pcoder's predictor maps its own representation to the representation below it:
//! pcoder 1 predicts the input image, pcoder n predicts pcoder n−1's representation, which
//! is also what pcoder n−1's predictor takes. So, where the counts are written down:
//! out(pred 1) = C of input_size, and out(pred n) = in(pred n−1).

use super::keys::Errors;
use super::pcoder::Checked;
use crate::error::{SpecError, SpecErrorKind};
use crate::types::{Layer, Predictor};

/// Reports every inconsistency between the valid pcoders `checked` (index = pcoder − 1,
/// `None` where the pcoder had errors) and the input size, when that is valid.
pub(crate) fn check<L: Clone>(
    errors: &mut Vec<SpecError<L>>,
    input_size: Option<&[usize]>,
    checked: &[Option<Checked<L>>],
) {
    for (i, pcoder) in checked.iter().enumerate() {
        let Some(Checked { spec, layer_offsets, predictor_loc: Some(loc) }) = pcoder else { continue };
        let Some(predictor) = &spec.predictor else { continue };
        let mut e = Errors::new(Some(i + 1));
        if let Some(size) = input_size {
            dims(&mut e, predictor, layer_offsets, size.len().saturating_sub(1), loc);
        }
        chain(&mut e, predictor, layer_offsets, loc);
        let target = match i {
            0 => input_size.and_then(|s| s.first().copied()).map(|c| {
                (c, "pcoder 1 predicts the input image, so the predictor's out_channels must equal input_size[0]".to_string())
            }),
            _ => checked
                .get(i - 1)
                .and_then(|below| below.as_ref()?.spec.predictor.as_ref()?.in_channels())
                .map(|c| {
                    (c, format!(
                        "pcoder {} predicts pcoder {i}'s representation, so the predictor's out_channels must equal the in_channels of pcoder {i}'s predictor",
                        i + 1
                    ))
                }),
        };
        if let (Some((expected, reason)), Some((j, found))) = (target, last_out(predictor)) {
            if found != expected {
                let offset = layer_offsets.get(j).copied().unwrap_or(0);
                e.push(SpecErrorKind::ChannelMismatch { offset, reason, expected, found }, "predictor", loc);
            }
        }
        errors.append(&mut e.list);
    }
}

/// Every layer that fixes its spatial axes must have the input's.
fn dims<L: Clone>(e: &mut Errors<L>, predictor: &Predictor, offsets: &[usize], spec_dims: usize, loc: &L) {
    for (j, layer) in predictor.layers().iter().enumerate() {
        match layer.spatial_dims() {
            Some(layer_dims) if layer_dims != spec_dims => {
                let offset = offsets.get(j).copied().unwrap_or(0);
                let layer = describe(layer);
                e.push(SpecErrorKind::PredictorDims { offset, layer, layer_dims, spec_dims }, "predictor", loc);
            }
            _ => {}
        }
    }
}

/// Inside a Sequential each convolution takes what the one before it produced.
fn chain<L: Clone>(e: &mut Errors<L>, predictor: &Predictor, offsets: &[usize], loc: &L) {
    let mut current: Option<usize> = None;
    for (j, layer) in predictor.layers().iter().enumerate() {
        let Some((input, output)) = layer.channels() else { continue };
        if let Some(expected) = current.filter(|&c| c != input) {
            let offset = offsets.get(j).copied().unwrap_or(0);
            let reason = format!("in_channels of layer {j} must equal the out_channels of the convolution before it");
            e.push(SpecErrorKind::ChannelMismatch { offset, reason, expected, found: input }, "predictor", loc);
        }
        current = Some(output);
    }
}

/// Index and out_channels of the last convolution.
fn last_out(predictor: &Predictor) -> Option<(usize, usize)> {
    predictor.layers().iter().enumerate().rev().find_map(|(j, l)| l.channels().map(|(_, o)| (j, o)))
}

/// The layer's type, with the mode for `Upsample` (what fixes its axes).
fn describe(layer: &Layer) -> String {
    match layer {
        Layer::Upsample(u) if u.mode == crate::types::UpsampleMode::Nearest => {
            "Upsample with per-axis values".to_string()
        }
        Layer::Upsample(u) => format!("Upsample(mode='{}')", u.mode),
        other => other.type_name(),
    }
}
