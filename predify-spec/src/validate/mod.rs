//! Validation: from the loosely typed [`RawSpec`] to the typed [`Spec`], collecting every
//! error rather than stopping at the first.

mod consistency;
mod keys;
mod pcoder;

use keys::{split, Errors, Value};

use crate::error::{SpecError, SpecErrorKind};
use crate::raw::{RawPCoder, RawSpec, RawValue};
use crate::types::{ErrorScaling, PCoderSpec, Spec, MAX_SAMPLE_ELEMENTS, MAX_SIZE};

const ROOT_KEYS: &[&str; 7] =
    &["name", "input_size", "gradient_scaling", "shared_hyperparameters", "error_scaling", "imports", "pcoders"];

/// Checks a whole spec and builds the typed [`Spec`], or returns every error found.
///
/// Besides the per-key checks, this checks the predictors against each other and the input:
/// layers must work on `input_size`'s number of spatial axes, convolutions inside a
/// Sequential must chain, and where channel counts are written the predictor of pcoder 1 must
/// output `input_size[0]` channels and that of pcoder n the `in_channels` of pcoder n−1's.
pub fn validate<L: Clone>(raw: RawSpec<L>) -> Result<Spec, Vec<SpecError<L>>> {
    let mut e = Errors::new(None);
    let [name, input_size, gradient_scaling, shared, error_scaling, imports, pcoders] = split(&mut e, &raw.value, ROOT_KEYS, "");

    let name = match name {
        None => missing(&mut e, "name", "the network's name, a string", &raw.loc),
        Some(v) => match &v.value {
            RawValue::Str(s) if is_identifier(s) => Some(s.clone()),
            RawValue::Str(s) => {
                e.push(SpecErrorKind::InvalidName(s.clone()), "name", &v.loc);
                None
            }
            _ => wrong(&mut e, "a string", "name", v),
        },
    };
    let input_size = match input_size {
        None => missing(&mut e, "input_size", "[C, H, W] or [C, D, H, W]", &raw.loc),
        Some(v) => check_input_size(&mut e, v),
    };
    let gradient_scaling = boolean(&mut e, gradient_scaling, "gradient_scaling");
    let shared_hyperparameters = boolean(&mut e, shared, "shared_hyperparameters");
    let error_scaling = match error_scaling {
        None => Some(ErrorScaling::BatchMean),
        Some(Value { value: RawValue::Str(s), .. }) if s == "batch_mean" => Some(ErrorScaling::BatchMean),
        Some(Value { value: RawValue::Str(s), .. }) if s == "per_sample" => Some(ErrorScaling::PerSample),
        Some(v) => wrong(&mut e, "\"batch_mean\" or \"per_sample\"", "error_scaling", v),
    };
    let imports = match imports {
        None => Some(Vec::new()),
        Some(v) => check_imports(&mut e, v),
    };

    let checked = match pcoders {
        None => missing(&mut e, "pcoders", "at least one [[pcoders]] table", &raw.loc),
        Some(v) => match &v.value {
            RawValue::Array(items) if items.is_empty() => {
                e.push(SpecErrorKind::EmptyPCoders, "pcoders", &v.loc);
                None
            }
            RawValue::Array(items) => Some(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| {
                        let mut pe = Errors::new(Some(i + 1));
                        let checked = match &item.value {
                            RawValue::Table(t) => pcoder::check(&mut pe, t, &item.loc),
                            _ => wrong(&mut pe, "a table", "pcoders", item),
                        };
                        e.list.append(&mut pe.list);
                        checked
                    })
                    .collect::<Vec<_>>(),
            ),
            _ => wrong(&mut e, "an array of tables ([[pcoders]])", "pcoders", v),
        },
    };
    if let Some(checked) = &checked {
        consistency::check(&mut e.list, input_size.as_deref(), checked);
    }

    let pcoders: Option<Vec<PCoderSpec>> = checked.and_then(|c| c.into_iter().map(|p| p.map(|p| p.spec)).collect());
    match (name, input_size, gradient_scaling, shared_hyperparameters, error_scaling, imports, pcoders) {
        (
            Some(name),
            Some(input_size),
            Some(gradient_scaling),
            Some(shared_hyperparameters),
            Some(error_scaling),
            Some(imports),
            Some(pcoders),
        ) if e.list.is_empty() => {
            Ok(Spec { name, input_size, gradient_scaling, shared_hyperparameters, error_scaling, imports, pcoders })
        }
        _ => Err(e.list),
    }
}

/// Checks one pcoder on its own (`number` is 1-based), for front-ends that gather pcoders
/// separately. Unlike [`validate`], this cannot check it against other pcoders or the input.
pub fn validate_pcoder<L: Clone>(number: usize, raw: RawPCoder<L>) -> Result<PCoderSpec, Vec<SpecError<L>>> {
    let mut e = Errors::new(Some(number));
    match pcoder::check(&mut e, &raw.value, &raw.loc) {
        Some(c) if e.list.is_empty() => Ok(c.spec),
        _ => Err(e.list),
    }
}

fn missing<L: Clone, T>(e: &mut Errors<L>, key: &str, expected: &'static str, loc: &L) -> Option<T> {
    e.push(SpecErrorKind::MissingKey { expected }, key, loc);
    None
}

fn wrong<L: Clone, T>(e: &mut Errors<L>, expected: &'static str, key: &str, v: &Value<L>) -> Option<T> {
    e.wrong_type(expected, key, v);
    None
}

/// A boolean flag, false when absent.
fn boolean<L: Clone>(e: &mut Errors<L>, v: Option<&Value<L>>, key: &str) -> Option<bool> {
    match v {
        None => Some(false),
        Some(Value { value: RawValue::Bool(b), .. }) => Some(*b),
        Some(v) => wrong(e, "true or false", key, v),
    }
}

/// Predify turns `name` into a Python class name, so it must be an identifier.
fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn check_input_size<L: Clone>(e: &mut Errors<L>, v: &Value<L>) -> Option<Vec<usize>> {
    let RawValue::Array(items) = &v.value else {
        return wrong(e, "an array [C, H, W] or [C, D, H, W]", "input_size", v);
    };
    let before = e.list.len();
    let shown: Vec<String> = items
        .iter()
        .map(|item| match item.value {
            RawValue::Int(i) => i.to_string(),
            ref other => other.describe(),
        })
        .collect();
    let found = format!("[{}]", shown.join(", "));
    let length_ok = (3..=4).contains(&items.len());
    if !length_ok {
        e.push(SpecErrorKind::InvalidInputSize { found: found.clone() }, "input_size", &v.loc);
    }
    let mut sizes = Vec::new();
    for item in items {
        match item.value {
            RawValue::Int(i) if i > 0 && usize::try_from(i).is_ok_and(|s| s <= MAX_SIZE) => sizes.push(i as usize),
            RawValue::Int(i) if i > 0 => {
                let kind = SpecErrorKind::TooLarge { what: "each entry", limit: MAX_SIZE, found: i.to_string() };
                e.push(kind, "input_size", &item.loc)
            }
            // One error for a wrong length; otherwise point at each bad entry.
            RawValue::Int(_) if !length_ok => {}
            RawValue::Int(_) => {
                e.push(SpecErrorKind::InvalidInputSize { found: found.clone() }, "input_size", &item.loc)
            }
            _ => e.wrong_type("a positive integer", "input_size", item),
        }
    }
    if e.list.len() != before {
        return None;
    }
    let elements = sizes.iter().try_fold(1u128, |acc, &s| acc.checked_mul(s as u128));
    if !matches!(elements, Some(n) if n <= MAX_SAMPLE_ELEMENTS as u128) {
        let found = match elements {
            Some(n) => format!("{found} = {n} elements"),
            None => format!("{found} (more elements than u128 holds)"),
        };
        e.push(SpecErrorKind::TooLarge { what: "one sample", limit: MAX_SAMPLE_ELEMENTS, found }, "input_size", &v.loc);
        return None;
    }
    Some(sizes)
}

fn check_imports<L: Clone>(e: &mut Errors<L>, v: &Value<L>) -> Option<Vec<String>> {
    let RawValue::Array(items) = &v.value else {
        return wrong(e, "an array of strings", "imports", v);
    };
    let mut imports = Vec::new();
    for item in items {
        match &item.value {
            RawValue::Str(s) => imports.push(s.clone()),
            _ => e.wrong_type("a string", "imports", item),
        }
    }
    (imports.len() == items.len()).then_some(imports)
}
