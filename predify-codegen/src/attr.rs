//! Parsing the attribute's arguments: either `spec = "path"` or the spec's keys inline.
//!
//! The inline form is turned into the spec crate's loosely typed tree ([`RawSpec`]) with,
//! as location, an index into a [`SpanTable`]; validation then runs exactly as for a TOML file
//! and each of its errors maps back to the tokens that caused it.

use predify_spec::raw::{Located, RawSpec, RawTable, RawValue};
use proc_macro2::{Span, TokenStream};
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::{token, Ident, Lit, LitStr, Token};

/// Where the inline attribute wrote something: the first and last token's spans, so a
/// compile error can underline the whole value (`Span::join` is nightly-only).
#[derive(Debug, Default)]
pub(crate) struct SpanTable {
    spans: Vec<(Span, Span)>,
}

impl SpanTable {
    /// Records a location spanning `start..=end`; returns its index.
    pub(crate) fn push(&mut self, start: Span, end: Span) -> usize {
        self.spans.push((start, end));
        self.spans.len() - 1
    }

    /// Records a one-token location.
    pub(crate) fn push1(&mut self, span: Span) -> usize {
        self.push(span, span)
    }

    /// The spans of location `i` (the call site if `i` is unknown).
    pub(crate) fn get(&self, i: usize) -> (Span, Span) {
        self.spans.get(i).copied().unwrap_or((Span::call_site(), Span::call_site()))
    }

    /// A syntax error at location `i`, underlining it whole.
    pub(crate) fn error(&self, i: usize, message: impl std::fmt::Display) -> syn::Error {
        let (start, end) = self.get(i);
        spanned_error(start, end, message)
    }
}

/// A `syn::Error` from `start` to `end`.
pub(crate) fn spanned_error(start: Span, end: Span, message: impl std::fmt::Display) -> syn::Error {
    // `new_spanned` takes the first token's span as start and the last one's as end.
    let tokens: TokenStream = [
        proc_macro2::TokenTree::Ident(Ident::new("a", start)),
        proc_macro2::TokenTree::Ident(Ident::new("b", end)),
    ]
    .into_iter()
    .collect();
    syn::Error::new_spanned(tokens, message)
}

/// The parsed attribute.
pub(crate) enum Attr {
    /// `spec = "path/to/spec.toml"`.
    File(LitStr),
    /// The spec's keys inline.
    Inline(RawSpec<usize>, SpanTable),
}

/// Parses the attribute's tokens. Syntax errors (not a `key = value` list, a value that is
/// none of string / number / boolean / array / table) stop parsing; everything about keys and
/// values is left to validation, which collects all problems.
pub(crate) fn parse(attr: TokenStream) -> syn::Result<Attr> {
    if attr.is_empty() {
        return Err(syn::Error::new(
            Span::call_site(),
            "#[predify] needs a spec: `#[predify(spec = \"path/to/spec.toml\")]` or the keys inline: \
             `#[predify(name = \"PNet\", input_size = [3, 32, 32], pcoders = [{ module = \"features[3]\" }])]`",
        ));
    }
    let mut spans = SpanTable::default();
    let root_loc = spans.push1(Span::call_site());
    let mut spec_path: Option<(Ident, LitStr)> = None;
    let mut others: Vec<Ident> = Vec::new();
    let table = (|input: ParseStream| {
        table_body(input, &mut spans, &mut |key: &Ident, input: ParseStream| {
            if key == "spec" {
                let lit: LitStr = input.parse().map_err(|e| {
                    syn::Error::new(e.span(), "`spec` takes the path of a TOML spec file, relative to CARGO_MANIFEST_DIR: `spec = \"templates/pvgg16.toml\"`")
                })?;
                if let Some((first, _)) = &spec_path {
                    let mut e = syn::Error::new(key.span(), "`spec` given more than once");
                    e.combine(syn::Error::new(first.span(), "first given here"));
                    return Err(e);
                }
                spec_path = Some((key.clone(), lit));
                Ok(true)
            } else {
                others.push(key.clone());
                Ok(false)
            }
        })
    })
    .parse2(attr)?;
    match spec_path {
        Some((_, lit)) if others.is_empty() => Ok(Attr::File(lit)),
        Some(_) => {
            let mut errors = others.iter().map(|k| {
                syn::Error::new(k.span(), format!("`{k}` cannot be combined with `spec = \"...\"`: give either a spec file or the keys inline"))
            });
            let mut first = errors.next().unwrap_or_else(|| syn::Error::new(Span::call_site(), "unreachable"));
            errors.for_each(|e| first.combine(e));
            Err(first)
        }
        None => Ok(Attr::Inline(Located::new(table, root_loc), spans)),
    }
}

type Value = Located<RawValue<usize>, usize>;

/// `key = value, ...` (trailing comma allowed) up to the end of `input`. `special` may consume
/// a value itself (returning true), for `spec = "..."` at the root.
fn table_body(
    input: ParseStream,
    spans: &mut SpanTable,
    special: &mut dyn FnMut(&Ident, ParseStream) -> syn::Result<bool>,
) -> syn::Result<RawTable<usize>> {
    let mut table = RawTable::new();
    while !input.is_empty() {
        let (key, key_span) = if input.peek(LitStr) {
            // TOML allows quoted keys; so do we.
            let lit: LitStr = input.parse()?;
            input.parse::<Token![=]>()?;
            (lit.value(), Some(lit.span()))
        } else {
            let ident = input.call(Ident::parse_any).map_err(|e| {
                syn::Error::new(e.span(), "expected a key (`name`, `input_size`, `pcoders`, `module`, ...) followed by `=`")
            })?;
            input.parse::<Token![=]>()?;
            if special(&ident, input)? {
                (String::new(), None)
            } else {
                (ident.unraw().to_string(), Some(ident.span()))
            }
        };
        if let Some(key_span) = key_span {
            // Locations are numbered in source order: the key before its value.
            let key_loc = spans.push1(key_span);
            let value = value(input, spans)?;
            table.push(Located::new(key, key_loc), value);
        }
        if input.is_empty() {
            break;
        }
        input.parse::<Token![,]>()?;
    }
    Ok(table)
}

/// One value: a string, integer, float, boolean (each optionally negated where numeric), an
/// array `[...]` or a table `{ key = value, ... }`.
fn value(input: ParseStream, spans: &mut SpanTable) -> syn::Result<Value> {
    if input.peek(token::Bracket) {
        let content;
        let bracket = syn::bracketed!(content in input);
        let loc = spans.push1(bracket.span.join());
        let mut items = Vec::new();
        while !content.is_empty() {
            items.push(value(&content, spans)?);
            if content.is_empty() {
                break;
            }
            content.parse::<Token![,]>()?;
        }
        return Ok(Located::new(RawValue::Array(items), loc));
    }
    if input.peek(token::Brace) {
        let content;
        let brace = syn::braced!(content in input);
        let loc = spans.push1(brace.span.join());
        let table = table_body(&content, spans, &mut |_, _| Ok(false))?;
        return Ok(Located::new(RawValue::Table(table), loc));
    }
    if input.peek(Token![-]) {
        let minus: Token![-] = input.parse()?;
        let lit: Lit = input.parse()?;
        let loc = spans.push(minus.span, lit.span());
        return match lit {
            Lit::Int(i) => {
                let v: i64 = format!("-{}", i.base10_digits()).parse().map_err(|_| syn::Error::new(i.span(), "integer out of range"))?;
                Ok(Located::new(RawValue::Int(v), loc))
            }
            Lit::Float(f) => Ok(Located::new(RawValue::Float(-f.base10_parse::<f64>()?), loc)),
            other => Err(syn::Error::new(other.span(), "expected a number after `-`")),
        };
    }
    if input.peek(Lit) {
        let lit: Lit = input.parse()?;
        let loc = spans.push1(lit.span());
        let v = match &lit {
            Lit::Str(s) => RawValue::Str(s.value()),
            Lit::Int(i) => RawValue::Int(i.base10_parse::<i64>()?),
            Lit::Float(f) => RawValue::Float(f.base10_parse::<f64>()?),
            Lit::Bool(b) => RawValue::Bool(b.value),
            Lit::ByteStr(_) | Lit::CStr(_) => RawValue::Other("a byte string".to_string()),
            Lit::Byte(_) => RawValue::Other("a byte literal".to_string()),
            Lit::Char(_) => RawValue::Other("a character literal".to_string()),
            _ => RawValue::Other("an unsupported literal".to_string()),
        };
        return Ok(Located::new(v, loc));
    }
    Err(input.error("expected a value: a string, a number, `true`/`false`, an array `[...]` or a table `{ key = value, ... }`"))
}
