//! Binding a call's arguments to parameters (Python's rules) and reading typed values.

use super::error::{ExprError, ExprErrorKind as K};
use super::parser::{Call, Node, NodeKind};

/// Assigns the call's arguments to the `N` parameters `names` (the first `required` of
/// which must be given), with Python's rules.
pub(super) fn bind<'a, const N: usize>(
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
            None if seen_keyword => return Err(ExprError::new(arg.value.offset, K::PositionalAfterKeyword)),
            None => {
                next += 1;
                (next - 1, arg.value.offset)
            }
            Some((name, at)) => {
                seen_keyword = true;
                let Some(index) = names.iter().position(|n| n == name) else {
                    return Err(ExprError::new(
                        *at,
                        K::UnknownKeyword { layer: call.name.clone(), arg: name.clone(), allowed: names },
                    ));
                };
                (index, *at)
            }
        };
        let Some(slot) = slots.get_mut(index) else {
            return Err(ExprError::new(
                at,
                K::TooManyPositional { layer: call.name.clone(), max: N, found: positional },
            ));
        };
        if slot.is_some() {
            let arg = names.get(index).copied().unwrap_or("?").to_string();
            return Err(ExprError::new(at, K::DuplicateArgument { layer: call.name.clone(), arg }));
        }
        *slot = Some(&arg.value);
    }
    for (slot, name) in slots.iter().zip(names).take(required) {
        if slot.is_none() {
            return Err(ExprError::new(call.close, K::MissingArgument { layer: call.name.clone(), arg: name }));
        }
    }
    Ok(slots)
}

pub(super) fn wrong_type(node: &Node, arg: &'static str, expected: &'static str) -> ExprError {
    ExprError::new(node.offset, K::WrongType { arg, expected, found: node.kind.describe() })
}

pub(super) fn invalid(node: &Node, arg: &'static str, message: String) -> ExprError {
    ExprError::new(node.offset, K::InvalidValue { arg, message })
}

/// An integer `>= min` and `<= max`.
pub(super) fn count(node: &Node, arg: &'static str, min: i64, max: usize) -> Result<usize, ExprError> {
    let NodeKind::Int(v) = node.kind else {
        return Err(wrong_type(node, arg, "an integer"));
    };
    if v < min {
        return Err(invalid(node, arg, format!("must be >= {min}, found {v}")));
    }
    match usize::try_from(v) {
        Ok(u) if u <= max => Ok(u),
        _ => Err(invalid(node, arg, format!("must be <= {max}, found {v}"))),
    }
}

/// An integer for every axis, or a tuple/list of exactly `dims` integers, each in `min..=max`.
pub(super) fn axes(node: &Node, arg: &'static str, dims: usize, min: i64, max: usize) -> Result<Vec<usize>, ExprError> {
    match &node.kind {
        NodeKind::Int(_) => Ok(vec![count(node, arg, min, max)?; dims]),
        NodeKind::Tuple(items) | NodeKind::List(items) => {
            if items.len() != dims {
                return Err(invalid(
                    node,
                    arg,
                    format!("expected {dims} values (one per spatial axis), found {}", items.len()),
                ));
            }
            items.iter().map(|n| count(n, arg, min, max)).collect()
        }
        _ => Err(wrong_type(node, arg, "an integer or a tuple of integers")),
    }
}

pub(super) fn boolean(node: &Node, arg: &'static str) -> Result<bool, ExprError> {
    match node.kind {
        NodeKind::Bool(b) => Ok(b),
        _ => Err(wrong_type(node, arg, "True or False")),
    }
}

/// `None` or a boolean.
pub(super) fn opt_boolean(node: Option<&Node>, arg: &'static str) -> Result<Option<bool>, ExprError> {
    match node {
        None | Some(Node { kind: NodeKind::None, .. }) => Ok(None),
        Some(n) => boolean(n, arg).map(Some),
    }
}

pub(super) fn string<'n>(node: &'n Node, arg: &'static str) -> Result<&'n str, ExprError> {
    match &node.kind {
        NodeKind::Str(s) => Ok(s),
        _ => Err(wrong_type(node, arg, "a string")),
    }
}

/// The node unless absent or a literal `None`.
pub(super) fn some_value(node: Option<&Node>) -> Option<&Node> {
    node.filter(|n| !matches!(n.kind, NodeKind::None))
}
