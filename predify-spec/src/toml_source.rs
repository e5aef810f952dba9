//! The TOML front-end: Predify's config files, read with `toml_edit` to keep a byte span on
//! every key and value, then checked by [`crate::validate`].

use std::ops::Range;
use std::path::Path;

use toml_edit::{ImDocument, Item, Table, Value};

use crate::error::{SpecError, SpecErrorKind};
use crate::raw::{Located, RawSpec, RawTable, RawValue};
use crate::spec_errors::SpecErrors;
use crate::types::Spec;
use crate::validate::validate;

/// A location in a TOML spec: a byte span of its text.
pub type Span = Range<usize>;

impl Spec {
    /// Reads and validates a Predify TOML config.
    ///
    /// ```
    /// let spec = predify_spec::Spec::from_toml_str(r#"
    ///     name = "PNet"
    ///     input_size = [3, 32, 32]
    ///     [[pcoders]]
    ///     module = "conv1"
    /// "#).unwrap();
    /// assert_eq!(spec.pcoders[0].module.to_string(), "conv1");
    /// ```
    pub fn from_toml_str(text: &str) -> Result<Spec, SpecErrors> {
        let raw = raw_from_toml(text).map_err(|e| SpecErrors::new(vec![e], text))?;
        validate(raw).map_err(|errors| SpecErrors::new(errors, text))
    }

    /// Reads and validates a Predify TOML config file; errors name the file.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Spec, SpecErrors> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            let kind = SpecErrorKind::Io { path: path.to_path_buf(), message: e.to_string() };
            SpecErrors::new(vec![SpecError::new(kind, None, None, None)], "").with_path(path)
        })?;
        Spec::from_toml_str(&text).map_err(|e| e.with_path(path))
    }
}

/// Parses TOML text into the raw, located form (only TOML syntax is checked here).
// The error is the crate's one error type; boxing it here alone would make it odd to use.
#[allow(clippy::result_large_err)]
pub fn raw_from_toml(text: &str) -> Result<RawSpec<Span>, SpecError<Span>> {
    let doc = ImDocument::parse(text).map_err(|e| {
        // toml_edit's message may span lines ("invalid table header\nduplicate key ...").
        let mut message = e.message().trim().lines().map(str::trim).collect::<Vec<_>>().join(": ");
        if message.is_empty() {
            message = "unexpected input".to_string();
        }
        SpecError::new(SpecErrorKind::Syntax(message), None, None, Some(e.span().unwrap_or(0..0)))
    })?;
    Ok(Located::new(table(doc.as_table(), &(0..0)), 0..0))
}

/// A table's entries; a key without its own span (part of a dotted key) gets `fallback`.
fn table(t: &Table, fallback: &Span) -> RawTable<Span> {
    let mut out = RawTable::new();
    for (key, item) in t.iter() {
        let key_loc = t.key(key).and_then(|k| k.span()).unwrap_or_else(|| fallback.clone());
        if let Some(value) = from_item(item, &key_loc) {
            out.push(Located::new(key.to_string(), key_loc), value);
        }
    }
    out
}

fn from_item(item: &Item, fallback: &Span) -> Option<Located<RawValue<Span>, Span>> {
    Some(match item {
        Item::None => return None,
        Item::Value(v) => from_value(v, fallback),
        Item::Table(t) => {
            let loc = t.span().unwrap_or_else(|| fallback.clone());
            Located::new(RawValue::Table(table(t, &loc)), loc)
        }
        Item::ArrayOfTables(tables) => {
            let loc = tables.span().unwrap_or_else(|| fallback.clone());
            let items = tables
                .iter()
                .map(|t| {
                    let tloc = t.span().unwrap_or_else(|| loc.clone());
                    Located::new(RawValue::Table(table(t, &tloc)), tloc)
                })
                .collect();
            Located::new(RawValue::Array(items), loc)
        }
    })
}

fn from_value(v: &Value, fallback: &Span) -> Located<RawValue<Span>, Span> {
    let loc = v.span().unwrap_or_else(|| fallback.clone());
    let value = match v {
        Value::String(s) => RawValue::Str(s.value().clone()),
        Value::Integer(i) => RawValue::Int(*i.value()),
        Value::Float(f) => RawValue::Float(*f.value()),
        Value::Boolean(b) => RawValue::Bool(*b.value()),
        Value::Datetime(_) => RawValue::Other("a datetime".to_string()),
        Value::Array(a) => RawValue::Array(a.iter().map(|x| from_value(x, &loc)).collect()),
        Value::InlineTable(t) => {
            let mut out = RawTable::new();
            for (key, x) in t.iter() {
                let key_loc = t.key(key).and_then(|k| k.span()).unwrap_or_else(|| loc.clone());
                out.push(Located::new(key.to_string(), key_loc.clone()), from_value(x, &key_loc));
            }
            RawValue::Table(out)
        }
    };
    Located::new(value, loc)
}
