//! `predify expand <file.rs> [--manifest-dir DIR]`: prints what `#[predify]` generates for every
//! annotated struct in a Rust source file, formatted — the route to inspect the generated code
//! on stable Rust without `cargo expand`.
//!
//! Relative `spec = "..."` paths are resolved against `--manifest-dir`, by default the nearest
//! directory above the file that holds a `Cargo.toml` (as the compiler would).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use predify_codegen::Options;
use proc_macro2::TokenStream;
use quote::ToTokens as _;

const USAGE: &str = "usage: predify expand <file.rs> [--manifest-dir DIR]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("predify: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &[String]) -> Result<String, String> {
    let mut file: Option<PathBuf> = None;
    let mut manifest_dir: Option<PathBuf> = None;
    let mut it = args.iter();
    match it.next().map(String::as_str) {
        Some("expand") => {}
        Some("-h" | "--help") | None => return Ok(format!("{USAGE}\n")),
        Some(other) => return Err(format!("unknown command `{other}`\n{USAGE}")),
    }
    while let Some(a) = it.next() {
        match a.as_str() {
            "--manifest-dir" => manifest_dir = Some(it.next().ok_or(format!("--manifest-dir needs a directory\n{USAGE}"))?.into()),
            "-h" | "--help" => return Ok(format!("{USAGE}\n")),
            f if file.is_none() && !f.starts_with('-') => file = Some(f.into()),
            other => return Err(format!("unexpected argument `{other}`\n{USAGE}")),
        }
    }
    let file = file.ok_or(format!("no file given\n{USAGE}"))?;
    let text = std::fs::read_to_string(&file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let ast = syn::parse_file(&text).map_err(|e| format!("{}: cannot parse: {e}", file.display()))?;
    let options = Options { manifest_dir: Some(manifest_dir.unwrap_or_else(|| crate_root(&file))) };
    let mut out = String::new();
    let mut found = 0;
    expand_items(&ast.items, &options, &mut out, &mut found);
    if found == 0 {
        return Err(format!("no #[predify] struct in {}", file.display()));
    }
    Ok(out)
}

/// The nearest directory at or above `file`'s that holds a `Cargo.toml`, else the current one.
fn crate_root(file: &Path) -> PathBuf {
    let abs = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
    let mut dir = abs.parent();
    while let Some(d) = dir {
        if d.join("Cargo.toml").is_file() {
            return d.to_path_buf();
        }
        dir = d.parent();
    }
    PathBuf::from(".")
}

/// Whether `attr` is `#[predify(...)]` or `#[predify::predify(...)]`.
fn is_predify(attr: &syn::Attribute) -> bool {
    let segments: Vec<String> = attr.path().segments.iter().map(|s| s.ident.to_string()).collect();
    matches!(segments.iter().map(String::as_str).collect::<Vec<_>>().as_slice(), ["predify"] | ["predify", "predify"])
}

fn expand_items(items: &[syn::Item], options: &Options, out: &mut String, found: &mut usize) {
    for item in items {
        match item {
            syn::Item::Struct(s) => {
                let Some(pos) = s.attrs.iter().position(is_predify) else { continue };
                let mut s = s.clone();
                let attr = s.attrs.remove(pos);
                let args = match &attr.meta {
                    syn::Meta::List(l) => l.tokens.clone(),
                    _ => TokenStream::new(),
                };
                let expanded = predify_codegen::expand_with(args, s.to_token_stream(), options);
                *found += 1;
                out.push_str(&format!("// ---- #[predify] on `{}` ----\n", s.ident));
                match syn::parse2::<syn::File>(expanded.clone()) {
                    Ok(f) => out.push_str(&prettyplease::unparse(&f)),
                    Err(_) => out.push_str(&format!("{expanded}\n")),
                }
            }
            syn::Item::Mod(m) => {
                if let Some((_, inner)) = &m.content {
                    expand_items(inner, options, out, found);
                }
            }
            _ => {}
        }
    }
}
