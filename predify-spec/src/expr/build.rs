//! Gives calls of the expression tree their PyTorch meaning: binds arguments by position
//! and keyword in PyTorch's order, checks them, and builds [`Layer`]s.

use super::error::{ExprError, ExprErrorKind as K};
use super::parser::{Call, Node, NodeKind};
use crate::types::{AxisValues, ConvSpec, Layer, Predictor, UpsampleMode, UpsampleSpec};

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
const CONV_PARAMS: &[&str] = &[
    "in_channels",
    "out_channels",
    "kernel_size",
    "stride",
    "padding",
    "dilation",
    "groups",
    "bias",
    "padding_mode",
];
const RELU_PARAMS: &[&str] = &["inplace"];
const UPSAMPLE_PARAMS: &[&str] =
    &["size", "scale_factor", "mode", "align_corners", "recompute_scale_factor"];

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
        return Err(ExprError::new(root.offset, K::Unexpected {
            expected: "a layer such as ConvTranspose2d(...) or Sequential(...)",
            found: root.kind.describe(),
        }));
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
        _ => Ok(Built {
            predictor: Predictor::Single(layer(call, root.offset)?),
            layer_offsets: vec![root.offset],
        }),
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

/// Assigns the call's arguments to the `N` parameters `names` (the first `required` of
/// which must be given), with Python's rules.
fn bind<'a, const N: usize>(
    call: &'a Call,
    names: &'static [&'static str],
    required: usize,
) -> Result<[Option<&'a Node>; N], ExprError> {
    let mut slots: [Option<&Node>; N] = [None; N];
    let positional = call.args.iter().filter(|a| a.keyword.is_none()).count();
    let mut next = 0;
    let mut seen_keyword = false;
    for arg in &call.args {
        let (index, at) = match &arg.keyword {
            None if seen_keyword => {
                return Err(ExprError::new(arg.value.offset, K::PositionalAfterKeyword))
            }
            None => {
                next += 1;
                (next - 1, arg.value.offset)
            }
            Some((name, at)) => {
                seen_keyword = true;
                let Some(index) = names.iter().position(|n| n == name) else {
                    return Err(ExprError::new(*at, K::UnknownKeyword {
                        layer: call.name.clone(),
                        arg: name.clone(),
                        allowed: names,
                    }));
                };
                (index, *at)
            }
        };
        let Some(slot) = slots.get_mut(index) else {
            return Err(ExprError::new(at, K::TooManyPositional {
                layer: call.name.clone(),
                max: N,
                found: positional,
            }));
        };
        if slot.is_some() {
            let arg = names.get(index).copied().unwrap_or("?").to_string();
            return Err(ExprError::new(at, K::DuplicateArgument { layer: call.name.clone(), arg }));
        }
        *slot = Some(&arg.value);
    }
    for (slot, name) in slots.iter().zip(names).take(required) {
        if slot.is_none() {
            return Err(ExprError::new(call.close, K::MissingArgument {
                layer: call.name.clone(),
                arg: *name,
            }));
        }
    }
    Ok(slots)
}

fn wrong_type(node: &Node, arg: &'static str, expected: &'static str) -> ExprError {
    ExprError::new(node.offset, K::WrongType { arg, expected, found: node.kind.describe() })
}

fn invalid(node: &Node, arg: &'static str, message: String) -> ExprError {
    ExprError::new(node.offset, K::InvalidValue { arg, message })
}

/// An integer `>= min`.
fn count(node: &Node, arg: &'static str, min: i64) -> Result<usize, ExprError> {
    let NodeKind::Int(v) = node.kind else {
        return Err(wrong_type(node, arg, "an integer"));
    };
    if v < min {
        return Err(invalid(node, arg, format!("must be >= {min}, found {v}")));
    }
    usize::try_from(v).map_err(|_| invalid(node, arg, format!("{v} is too large")))
}

/// An integer for every axis, or a tuple/list of exactly `dims` integers, each `>= min`.
fn axes(node: &Node, arg: &'static str, dims: usize, min: i64) -> Result<Vec<usize>, ExprError> {
    match &node.kind {
        NodeKind::Int(_) => Ok(vec![count(node, arg, min)?; dims]),
        NodeKind::Tuple(items) | NodeKind::List(items) => {
            if items.len() != dims {
                return Err(invalid(
                    node,
                    arg,
                    format!("expected {dims} values (one per spatial axis), found {}", items.len()),
                ));
            }
            items.iter().map(|n| count(n, arg, min)).collect()
        }
        _ => Err(wrong_type(node, arg, "an integer or a tuple of integers")),
    }
}

fn boolean(node: &Node, arg: &'static str) -> Result<bool, ExprError> {
    match node.kind {
        NodeKind::Bool(b) => Ok(b),
        _ => Err(wrong_type(node, arg, "True or False")),
    }
}

/// `None` or a boolean.
fn opt_boolean(node: Option<&Node>, arg: &'static str) -> Result<Option<bool>, ExprError> {
    match node {
        None | Some(Node { kind: NodeKind::None, .. }) => Ok(None),
        Some(n) => boolean(n, arg).map(Some),
    }
}

fn string<'n>(node: &'n Node, arg: &'static str) -> Result<&'n str, ExprError> {
    match &node.kind {
        NodeKind::Str(s) => Ok(s),
        _ => Err(wrong_type(node, arg, "a string")),
    }
}

fn conv(call: &Call, transposed: bool, dims: usize) -> Result<ConvSpec, ExprError> {
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
        get(name).ok_or_else(|| {
            ExprError::new(call.close, K::MissingArgument { layer: call.name.clone(), arg: name })
        })
    };
    let in_channels = count(required("in_channels")?, "in_channels", 1)?;
    let out_channels = count(required("out_channels")?, "out_channels", 1)?;
    let kernel_size = axes(required("kernel_size")?, "kernel_size", dims, 1)?;
    let per_axis = |name: &'static str, min: i64, default: usize| match get(name) {
        Some(n) => axes(n, name, dims, min),
        None => Ok(vec![default; dims]),
    };
    let stride = per_axis("stride", 1, 1)?;
    let dilation = per_axis("dilation", 1, 1)?;
    let padding = match get("padding") {
        Some(n @ Node { kind: NodeKind::Str(mode), .. }) if !transposed => {
            string_padding(n, mode, &kernel_size, &stride, &dilation)?
        }
        Some(n) => axes(n, "padding", dims, 0)?,
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
            let g = count(n, "groups", 1)?;
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
    let bias = get("bias").map(|n| boolean(n, "bias")).transpose()?.unwrap_or(true);
    if let Some(n) = get("padding_mode") {
        let mode = string(n, "padding_mode")?;
        if mode != "zeros" {
            return Err(invalid(n, "padding_mode", format!("only 'zeros' is supported, found {mode:?}")));
        }
    }
    Ok(ConvSpec { dims, in_channels, out_channels, kernel_size, stride, padding, output_padding, dilation, groups, bias })
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

fn upsample(call: &Call) -> Result<UpsampleSpec, ExprError> {
    let [size_node, scale_node, mode_node, align, recompute] = bind::<5>(call, UPSAMPLE_PARAMS, 0)?;
    let size = some_value(size_node).map(upsample_size).transpose()?;
    let scale_factor = some_value(scale_node).map(scale_values).transpose()?;
    let mode = match mode_node.map(|n| string(n, "mode").map(|s| (n, s))).transpose()? {
        None | Some((_, "nearest")) => UpsampleMode::Nearest,
        Some((_, "bilinear")) => UpsampleMode::Bilinear,
        Some((_, "trilinear")) => UpsampleMode::Trilinear,
        Some((n, other)) => {
            return Err(invalid(
                n,
                "mode",
                format!("unsupported mode {other:?} (supported: 'nearest', 'bilinear', 'trilinear')"),
            ))
        }
    };
    let align_corners = opt_boolean(align, "align_corners")?;
    if let (Some(_), UpsampleMode::Nearest, Some(n)) = (align_corners, mode, align) {
        return Err(invalid(n, "align_corners", "can only be set with mode 'bilinear' or 'trilinear'".into()));
    }
    if let (Some(true), Some(n)) = (opt_boolean(recompute, "recompute_scale_factor")?, recompute) {
        return Err(invalid(n, "recompute_scale_factor", "True is not supported".into()));
    }
    match (&size, &scale_factor, some_value(scale_node)) {
        (Some(_), Some(_), Some(n)) => {
            return Err(invalid(n, "scale_factor", "only one of size and scale_factor may be given".into()))
        }
        (None, None, _) => {
            return Err(ExprError::new(call.close, K::InvalidValue {
                arg: "size",
                message: "Upsample needs one of size and scale_factor".into(),
            }))
        }
        _ => {}
    }
    // The interpolating modes fix the number of spatial axes; a per-axis list must match.
    let mode_dims = match mode {
        UpsampleMode::Nearest => None,
        UpsampleMode::Bilinear => Some(2),
        UpsampleMode::Trilinear => Some(3),
    };
    let lengths = [
        (size.as_ref().and_then(AxisValues::per_axis_len), some_value(size_node), "size"),
        (scale_factor.as_ref().and_then(AxisValues::per_axis_len), some_value(scale_node), "scale_factor"),
    ];
    for (len, node, arg) in lengths {
        if let (Some(len), Some(want), Some(node)) = (len, mode_dims, node) {
            if len != want {
                return Err(invalid(node, arg, format!("mode {:?} needs {want} values, found {len}", mode_name(mode))));
            }
        }
    }
    Ok(UpsampleSpec { size, scale_factor, mode, align_corners })
}

fn mode_name(mode: UpsampleMode) -> &'static str {
    match mode {
        UpsampleMode::Nearest => "nearest",
        UpsampleMode::Bilinear => "bilinear",
        UpsampleMode::Trilinear => "trilinear",
    }
}

/// The node unless absent or a literal `None`.
fn some_value(node: Option<&Node>) -> Option<&Node> {
    node.filter(|n| !matches!(n.kind, NodeKind::None))
}

/// Items of a per-axis tuple/list, which must have one entry per spatial axis (2 or 3).
fn axis_items<'n>(node: &'n Node, arg: &'static str) -> Result<Option<&'n [Node]>, ExprError> {
    match &node.kind {
        NodeKind::Tuple(items) | NodeKind::List(items) => {
            if !(2..=3).contains(&items.len()) {
                return Err(invalid(
                    node,
                    arg,
                    format!("expected 2 or 3 values (one per spatial axis), found {}", items.len()),
                ));
            }
            Ok(Some(items))
        }
        _ => Ok(None),
    }
}

fn upsample_size(node: &Node) -> Result<AxisValues<usize>, ExprError> {
    match axis_items(node, "size")? {
        Some(items) => items.iter().map(|n| count(n, "size", 1)).collect::<Result<_, _>>().map(AxisValues::PerAxis),
        None => count(node, "size", 1).map(AxisValues::Uniform),
    }
}

fn scale_values(node: &Node) -> Result<AxisValues<f64>, ExprError> {
    match axis_items(node, "scale_factor")? {
        Some(items) => items.iter().map(scale).collect::<Result<_, _>>().map(AxisValues::PerAxis),
        None => scale(node).map(AxisValues::Uniform),
    }
}

/// One scale factor: a positive int or float.
fn scale(node: &Node) -> Result<f64, ExprError> {
    let v = match node.kind {
        NodeKind::Int(i) => i as f64,
        NodeKind::Float(f) => f,
        _ => return Err(wrong_type(node, "scale_factor", "a number or a tuple of numbers")),
    };
    if !(v > 0.0 && v.is_finite()) {
        return Err(invalid(node, "scale_factor", format!("must be a finite number > 0, found {v}")));
    }
    Ok(v)
}
