//! The logic of the `#[predify]` attribute macro, as a normal library so that it can run outside
//! a proc-macro too (the `predify expand` command, golden tests).
//!
//! Three stages, like `serde_derive`:
//! 1. parse: the attribute ([`attr`]: `spec = "path"` or the spec's keys inline) and the struct
//!    ([`model`]: its fields in forward order, which are lists of layers);
//! 2. validate: the spec through `predify_spec::validate` (the same checks as a TOML file), the
//!    attach points against the struct ([`check`]); every error is collected, each spanned at the
//!    offending token (or at the `spec = "..."` literal, with `path:line:col` of the spec file);
//! 3. expand ([`expand`]): the struct unchanged plus the predified type.
//!
//! See the `predify` crate's documentation of the macro for what the generated code does.
#![deny(missing_docs)]

mod attr;
mod check;
mod expand;
mod model;

use std::path::{Path, PathBuf};

use predify_spec::raw::RawSpec;
use predify_spec::{SpecError, SpecErrorKind, SpecErrors};
use proc_macro2::{Span, TokenStream};
use quote::quote;

use crate::attr::Attr;
use crate::check::Target;
use crate::expand::SpecText;
use crate::model::Model;

/// Settings that a proc-macro takes from its environment.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Directory that relative `spec = "..."` paths are resolved against: the annotated crate's
    /// manifest directory. `None` means `$CARGO_MANIFEST_DIR`, or the current directory when that
    /// is not set.
    pub manifest_dir: Option<PathBuf>,
}

impl Options {
    fn manifest_dir(&self) -> PathBuf {
        match &self.manifest_dir {
            Some(d) => d.clone(),
            None => match std::env::var_os("CARGO_MANIFEST_DIR") {
                Some(d) => PathBuf::from(d),
                None => PathBuf::from("."),
            },
        }
    }
}

/// Expands `#[predify(<attr>)] <item>`: the struct (with `#[predify(...)]` field options
/// removed) and the predified type, or the struct and `compile_error!`s for every problem found.
///
/// Relative spec paths are resolved against `$CARGO_MANIFEST_DIR`; see [`expand_with`].
pub fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand_with(attr, item, &Options::default())
}

/// [`expand`] with explicit [`Options`].
pub fn expand_with(attr: TokenStream, item: TokenStream, options: &Options) -> TokenStream {
    let item: syn::ItemStruct = match syn::parse2(item.clone()) {
        Ok(s) => s,
        Err(_) => {
            let e = syn::Error::new(
                Span::call_site(),
                "#[predify] applies to a struct with named fields (the backbone's layers, in forward order)",
            )
            .to_compile_error();
            return quote!(#e #item);
        }
    };
    let (model, mut errors) = model::parse(item);
    let struct_tokens = &model.item;
    let generated = match attr::parse(attr) {
        Err(e) => {
            errors.push(e);
            TokenStream::new()
        }
        Ok(Attr::Inline(raw, spans)) => inline(&model, raw, &spans, &mut errors),
        Ok(Attr::File(lit)) => file(&model, &lit, &options.manifest_dir(), &mut errors),
    };
    let errors = errors.into_iter().map(|e| e.to_compile_error());
    quote! {
        #struct_tokens
        #(#errors)*
        #generated
    }
}

/// Extra checks of a valid spec's `name`: the generated type's name must be a Rust identifier
/// other than the struct's.
fn check_name(name: &str, struct_name: &str) -> Option<String> {
    if syn::parse_str::<syn::Ident>(name).is_err() {
        return Some(format!("name: `{name}` cannot name the generated type: it is a Rust keyword or not an identifier"));
    }
    if name == struct_name {
        return Some(format!("name: the generated type needs a name of its own, but `{name}` is the annotated struct's name"));
    }
    None
}

/// The generated type's name as the spec gives it, when it can name a type: what a placeholder
/// is emitted under when the spec has other errors.
fn usable_name<L>(raw: &RawSpec<L>, struct_name: &str) -> Option<String> {
    match &raw.value.get("name")?.value.value {
        predify_spec::raw::RawValue::Str(s) if check_name(s, struct_name).is_none() => Some(s.clone()),
        _ => None,
    }
}

fn name_loc<L: Clone>(raw: &RawSpec<L>) -> L {
    raw.value.get("name").map_or_else(|| raw.loc.clone(), |e| e.value.loc.clone())
}

/// What a validation error says, for the inline form.
fn inline_message<L>(e: &SpecError<L>) -> String {
    let mut s = e.to_string();
    if e.pcoder.is_none() && matches!(e.kind, SpecErrorKind::UnknownKey { .. }) && e.key.as_deref().is_some_and(|k| !k.contains('.')) {
        s.push_str(" (or only `spec = \"path/to/spec.toml\"`)");
    }
    s
}

/// The inline form: validate the raw tree, check the attach points, generate.
fn inline(model: &Model, raw: RawSpec<usize>, spans: &attr::SpanTable, errors: &mut Vec<syn::Error>) -> TokenStream {
    let struct_name = model.item.ident.to_string();
    let refs = check::module_refs(&raw);
    let (targets, check_errors) = check::check(model, &struct_name, &refs);
    let name_at = name_loc(&raw);
    let fallback = usable_name(&raw, &struct_name);
    let root = raw.loc;
    let mut located: Vec<(usize, String)> = Vec::new();
    let spec = match predify_spec::validate(raw) {
        Ok(spec) => {
            if let Some(msg) = check_name(&spec.name, &struct_name) {
                located.push((name_at, msg));
            }
            Some(spec)
        }
        Err(errs) => {
            located.extend(errs.iter().map(|e| (e.loc.unwrap_or(root), inline_message(e))));
            None
        }
    };
    located.extend(check_errors);
    located.sort_by_key(|(loc, _)| *loc);
    errors.extend(located.iter().map(|(loc, msg)| spans.error(*loc, msg)));
    match spec {
        Some(spec) if errors.is_empty() => {
            let toml = spec.to_toml_string();
            let targets: Vec<Target> = targets.into_iter().flatten().collect();
            expand::generate(model, &spec, &targets, &SpecText::Inline(toml))
        }
        _ => fallback.map_or_else(TokenStream::new, |name| expand::placeholder(model, &name)),
    }
}

/// 1-based line and column (in characters) of byte `offset` of `text`.
#[cfg(test)]
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    predify_spec::LineIndex::new(text).line_col(offset)
}

/// The file form: read, parse, validate and check the spec file; every error is spanned at the
/// `spec = "..."` literal and names `path:line:col`.
fn file(model: &Model, lit: &syn::LitStr, manifest_dir: &Path, errors: &mut Vec<syn::Error>) -> TokenStream {
    let rel = lit.value();
    let path = if Path::new(&rel).is_absolute() { PathBuf::from(&rel) } else { manifest_dir.join(&rel) };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            errors.push(syn::Error::new(
                lit.span(),
                format!("cannot read spec file `{rel}` (relative paths start at CARGO_MANIFEST_DIR, the annotated crate's directory): {e}"),
            ));
            return TokenStream::new();
        }
    };
    // From here on the file is included, so that editing it reruns the macro even on errors.
    let include = expand::include_file(&rel);
    let keep = quote!(const _: &'static ::core::primitive::str = #include;);
    let at = |(line, col): (usize, usize), msg: &dyn std::fmt::Display| syn::Error::new(lit.span(), format!("{rel}:{line}:{col}: {msg}"));

    let raw = match predify_spec::raw_from_toml(&text) {
        Ok(raw) => raw,
        Err(e) => {
            let errs = SpecErrors::new(vec![e], text.as_str());
            let index = errs.line_index();
            for e in errs.errors() {
                errors.push(at(errs.position(e).map_or((1, 1), |p| index.line_col(p)), e));
            }
            return keep;
        }
    };
    let struct_name = model.item.ident.to_string();
    let refs = check::module_refs(&raw);
    let (targets, check_errors) = check::check(model, &struct_name, &refs);
    let name_at = name_loc(&raw);
    let fallback = usable_name(&raw, &struct_name);
    let mut located: Vec<(usize, String)> = check_errors.into_iter().map(|(span, msg)| (span.start, msg)).collect();
    let spec = match predify_spec::validate(raw) {
        Ok(spec) => {
            if let Some(msg) = check_name(&spec.name, &struct_name) {
                located.push((name_at.start, msg));
            }
            Some(spec)
        }
        Err(errs) => {
            let errs = SpecErrors::new(errs, text.as_str());
            located.extend(errs.errors().iter().map(|e| (errs.position(e).unwrap_or(0), e.to_string())));
            None
        }
    };
    located.sort_by_key(|(pos, _)| *pos);
    // One line index for all errors (linear in the spec, however many errors it has).
    let index = predify_spec::LineIndex::new(&text);
    errors.extend(located.iter().map(|(pos, msg)| at(index.line_col(*pos), msg)));
    match spec {
        Some(spec) if errors.is_empty() => {
            let targets: Vec<Target> = targets.into_iter().flatten().collect();
            expand::generate(model, &spec, &targets, &SpecText::File(rel))
        }
        _ => match fallback {
            Some(name) => {
                let placeholder = expand::placeholder(model, &name);
                quote!(#keep #placeholder)
            }
            None => keep,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand_str(attr: &str, item: &str) -> String {
        expand(attr.parse().unwrap(), item.parse().unwrap()).to_string()
    }

    #[test]
    fn inline_ok_generates_the_type() {
        let out = expand_str(
            r#"name = "PTiny", input_size = [1, 8, 8], pcoders = [{ module = "features[1]" }, { module = "fc" }]"#,
            "struct Tiny { features: Vec<Box<dyn Module>>, fc: Linear }",
        );
        assert!(!out.contains("compile_error"), "{out}");
        assert!(out.contains("struct PTiny"), "{out}");
    }

    #[test]
    fn errors_are_collected() {
        let out = expand_str(
            r#"name = "PTiny", input_size = [1, 8, 8], colour = 3, pcoders = [{ module = "featres[1]" }, { module = "fc[2]", hyperparameters = { feedforward = -1 } }]"#,
            "struct Tiny { features: Vec<Box<dyn Module>>, fc: Linear }",
        );
        assert_eq!(out.matches("compile_error").count(), 4, "{out}");
        assert!(out.contains("did you mean `features`"), "{out}");
        assert!(out.contains("not a list of layers"), "{out}");
    }

    #[test]
    fn order_and_range() {
        let out = expand_str(
            r#"name = "P", input_size = [1, 8, 8], pcoders = [{ module = "b" }, { module = "a[5]" }, { module = "b" }]"#,
            "struct T { a: [X; 3], b: Y }",
        );
        assert!(out.contains("out of range"), "{out}");
        assert!(out.contains("duplicated"), "{out}");
        let out = expand_str(
            r#"name = "P", input_size = [1, 8, 8], pcoders = [{ module = "b" }, { module = "a[1]" }]"#,
            "struct T { a: [X; 3], b: Y }",
        );
        assert!(out.contains("out of forward order"), "{out}");
    }

    #[test]
    fn positions() {
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("", 0), (1, 1));
    }
}
