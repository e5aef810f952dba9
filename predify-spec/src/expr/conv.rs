//! `ConvNd` and `ConvTransposeNd`.

use super::args::{axes, bind, boolean, count, invalid, string};
use super::error::{ExprError, ExprErrorKind as K};
use super::parser::{Call, Node, NodeKind};
use crate::types::{ConvSpec, MAX_KERNEL_SIZE, MAX_LAYER_WEIGHTS, MAX_SIZE};

/// PyTorch's parameter order of `ConvTransposeNd`.
const CONV_T_PARAMS: &[&str] = &[
    "in_channels",
    "out_channels",
    "kernel_size",
    "stride",
    "padding",
    "output_padding",
    "groups",
    "bias",
    "dilation",
    "padding_mode",
];
/// PyTorch's parameter order of `ConvNd`.
const CONV_PARAMS: &[&str] =
    &["in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups", "bias", "padding_mode"];

pub(super) fn conv(call: &Call, transposed: bool, dims: usize) -> Result<ConvSpec, ExprError> {
    // Read every parameter into a name-indexed lookup so one code path serves both orders.
    let slots: Vec<Option<&Node>> = if transposed {
        bind::<10>(call, CONV_T_PARAMS, 3)?.to_vec()
    } else {
        bind::<9>(call, CONV_PARAMS, 3)?.to_vec()
    };
    let names = if transposed { CONV_T_PARAMS } else { CONV_PARAMS };
    let get = |name: &str| -> Option<&Node> {
        names.iter().position(|n| *n == name).and_then(|i| slots.get(i).copied().flatten())
    };
    let required = |name: &'static str| {
        get(name).ok_or_else(|| ExprError::new(call.close, K::MissingArgument { layer: call.name.clone(), arg: name }))
    };
    let in_channels = count(required("in_channels")?, "in_channels", 1, MAX_SIZE)?;
    let out_channels = count(required("out_channels")?, "out_channels", 1, MAX_SIZE)?;
    let kernel_node = required("kernel_size")?;
    let kernel_size = axes(kernel_node, "kernel_size", dims, 1, MAX_KERNEL_SIZE)?;
    let per_axis = |name: &'static str, min: i64, default: usize| match get(name) {
        Some(n) => axes(n, name, dims, min, MAX_SIZE),
        None => Ok(vec![default; dims]),
    };
    let stride = per_axis("stride", 1, 1)?;
    let dilation = per_axis("dilation", 1, 1)?;
    let padding = match get("padding") {
        Some(n @ Node { kind: NodeKind::Str(mode), .. }) if !transposed => {
            string_padding(n, mode, &kernel_size, &stride, &dilation)?
        }
        Some(n) => axes(n, "padding", dims, 0, MAX_SIZE)?,
        None => vec![0; dims],
    };
    let output_padding = per_axis("output_padding", 0, 0)?;
    if let Some(node) = get("output_padding") {
        for ((&op, &s), &d) in output_padding.iter().zip(&stride).zip(&dilation) {
            if op >= s.max(d) {
                return Err(invalid(
                    node,
                    "output_padding",
                    format!("must be smaller than either stride or dilation, found {op} (stride {s}, dilation {d})"),
                ));
            }
        }
    }
    let groups = match get("groups") {
        Some(n) => {
            let g = count(n, "groups", 1, MAX_SIZE)?;
            if in_channels % g != 0 || out_channels % g != 0 {
                return Err(invalid(
                    n,
                    "groups",
                    format!("{g} must divide in_channels ({in_channels}) and out_channels ({out_channels})"),
                ));
            }
            g
        }
        None => 1,
    };
    // Sizes no machine can hold: the dilated kernel's extent and the number of weights.
    for (&k, &d) in kernel_size.iter().zip(&dilation) {
        match d.checked_mul(k - 1).and_then(|e| e.checked_add(1)) {
            Some(extent) if extent <= MAX_SIZE => {}
            _ => {
                return Err(invalid(
                    kernel_node,
                    "kernel_size",
                    format!("the dilated kernel (dilation {d} * (kernel_size {k} - 1) + 1) must span at most {MAX_SIZE}"),
                ))
            }
        }
    }
    let weights = [in_channels, out_channels / groups].into_iter().chain(kernel_size.iter().copied()).try_fold(1usize, usize::checked_mul);
    if !matches!(weights, Some(w) if w <= MAX_LAYER_WEIGHTS) {
        return Err(invalid(
            kernel_node,
            "kernel_size",
            format!(
                "{in_channels} * {out_channels} / {groups} channels with kernel {kernel_size:?} are more than {MAX_LAYER_WEIGHTS} weights"
            ),
        ));
    }
    let bias = get("bias").map(|n| boolean(n, "bias")).transpose()?.unwrap_or(true);
    if let Some(n) = get("padding_mode") {
        let mode = string(n, "padding_mode")?;
        if mode != "zeros" {
            return Err(invalid(n, "padding_mode", format!("only 'zeros' is supported, found {mode:?}")));
        }
    }
    Ok(ConvSpec {
        dims,
        in_channels,
        out_channels,
        kernel_size,
        stride,
        padding,
        output_padding,
        dilation,
        groups,
        bias,
    })
}

/// `padding='valid'` (no padding) or `padding='same'` (PyTorch requires stride 1; only the
/// symmetric case, an even `dilation * (kernel - 1)`, is representable as per-axis padding).
fn string_padding(
    node: &Node,
    mode: &str,
    kernel: &[usize],
    stride: &[usize],
    dilation: &[usize],
) -> Result<Vec<usize>, ExprError> {
    match mode {
        "valid" => Ok(vec![0; kernel.len()]),
        "same" => {
            if stride.iter().any(|&s| s != 1) {
                return Err(invalid(node, "padding", "padding='same' needs stride 1".into()));
            }
            kernel
                .iter()
                .zip(dilation)
                .map(|(&k, &d)| match d.checked_mul(k - 1) {
                    Some(total) if total % 2 == 0 => Ok(total / 2),
                    _ => Err(invalid(
                        node,
                        "padding",
                        "padding='same' with an even dilation*(kernel_size-1) pads asymmetrically, which is not supported".into(),
                    )),
                })
                .collect()
        }
        _ => Err(invalid(node, "padding", format!("expected 'valid', 'same' or integers, found {mode:?}"))),
    }
}
