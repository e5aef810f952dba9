//! `Upsample`.

use super::args::{bind, count, invalid, opt_boolean, some_value, string, wrong_type};
use super::error::{ExprError, ExprErrorKind as K};
use super::parser::{Call, Node, NodeKind};
use crate::types::{AxisValues, UpsampleMode, UpsampleSpec, MAX_SIZE};

const UPSAMPLE_PARAMS: &[&str] = &["size", "scale_factor", "mode", "align_corners", "recompute_scale_factor"];

pub(super) fn upsample(call: &Call) -> Result<UpsampleSpec, ExprError> {
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
            return Err(ExprError::new(
                call.close,
                K::InvalidValue { arg: "size", message: "Upsample needs one of size and scale_factor".into() },
            ))
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
                return Err(invalid(node, arg, format!("mode '{mode}' needs {want} values, found {len}")));
            }
        }
    }
    Ok(UpsampleSpec { size, scale_factor, mode, align_corners })
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
        Some(items) => items.iter().map(|n| count(n, "size", 1, MAX_SIZE)).collect::<Result<_, _>>().map(AxisValues::PerAxis),
        None => count(node, "size", 1, MAX_SIZE).map(AxisValues::Uniform),
    }
}

fn scale_values(node: &Node) -> Result<AxisValues<f64>, ExprError> {
    match axis_items(node, "scale_factor")? {
        Some(items) => items.iter().map(scale).collect::<Result<_, _>>().map(AxisValues::PerAxis),
        None => scale(node).map(AxisValues::Uniform),
    }
}

/// One scale factor: a positive int or float, at most [`MAX_SIZE`].
fn scale(node: &Node) -> Result<f64, ExprError> {
    let v = match node.kind {
        NodeKind::Int(i) => i as f64,
        NodeKind::Float(f) => f,
        _ => return Err(wrong_type(node, "scale_factor", "a number or a tuple of numbers")),
    };
    if !(v > 0.0 && v.is_finite()) {
        return Err(invalid(node, "scale_factor", format!("must be a finite number > 0, found {v}")));
    }
    if v > MAX_SIZE as f64 {
        return Err(invalid(node, "scale_factor", format!("must be <= {MAX_SIZE}, found {v}")));
    }
    Ok(v)
}
