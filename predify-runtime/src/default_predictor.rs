//! Predify's default predictor, inferred from the probed shapes of a pcoder and its target.

use crate::error::{usage, Result};
use predify_spec::{AxisValues, ConvSpec, Layer, Predictor, UpsampleMode, UpsampleSpec};

/// The predictor Predify builds when none is given: a bilinear upsample
/// (`scale_factor = target/source` per axis, `align_corners=False`) only where the spatial size
/// differs, then `ConvTranspose(C_src, C_tgt, 3, stride 1, padding 1)`; always a Sequential.
///
/// Shapes are per sample: `[C, H, W]` (or `[C, D, H, W]`; a 3-D size change has no default,
/// as in Predify, and is an error asking for an explicit predictor).
pub fn default_predictor(source: &[usize], target: &[usize], context: &str) -> Result<Predictor> {
    if source.len() != target.len() || !(3..=4).contains(&source.len()) {
        return usage(format!(
            "{context}: cannot infer a default predictor from {source:?} to {target:?} (need [C,H,W] or [C,D,H,W] on both sides)"
        ));
    }
    let dims = source.len() - 1;
    let mut layers = Vec::new();
    if source[1..] != target[1..] {
        if dims != 2 {
            return usage(format!(
                "{context}: no default predictor for a 3-D size change {source:?} -> {target:?}; give `predictor` explicitly"
            ));
        }
        let scale = (1..=2).map(|a| target[a] as f64 / source[a] as f64).collect();
        layers.push(Layer::Upsample(UpsampleSpec {
            size: None,
            scale_factor: Some(AxisValues::PerAxis(scale)),
            mode: UpsampleMode::Bilinear,
            align_corners: Some(false),
        }));
    }
    layers.push(Layer::ConvTranspose(ConvSpec {
        dims,
        in_channels: source[0],
        out_channels: target[0],
        kernel_size: vec![3; dims],
        stride: vec![1; dims],
        padding: vec![1; dims],
        output_padding: vec![0; dims],
        dilation: vec![1; dims],
        groups: 1,
        bias: true,
    }));
    Ok(Predictor::Sequential(layers))
}
