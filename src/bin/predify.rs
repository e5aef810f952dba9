//! `predify expand <file.rs> [--manifest-dir DIR]`: prints what `#[predify]` generates for every
//! annotated struct in a Rust source file, formatted — the route to inspect the generated code
//! on stable Rust without `cargo expand`.
//!
//! Relative `spec = "..."` paths are resolved against `--manifest-dir`, by default the nearest
//! directory above the file that holds a `Cargo.toml` (as the compiler would), wherever the
//! command runs from. The expansion is printed even when it holds errors (`compile_error!`, as
//! the compiler would report them); the exit status is then 1.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use predify_codegen::Options;
use proc_macro2::TokenStream;
use quote::ToTokens as _;

const USAGE: &str = "usage: predify expand <file.rs> [--manifest-dir DIR]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok((out, 0)) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Ok((out, errors)) => {
            print!("{out}");
            eprintln!("predify: {errors} of the expansions contain errors (`compile_error!` above)");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("predify: {e}");
            ExitCode::from(2)
        }
    }
}

/// The expansions and how many of them hold errors.
fn run(args: &[String]) -> Result<(String, usize), String> {
    let mut file: Option<PathBuf> = None;
    let mut manifest_dir: Option<PathBuf> = None;
    let mut it = args.iter();
    match it.next().map(String::as_str) {
        Some("expand") => {}
        Some("-h" | "--help") | None => return Ok((format!("{USAGE}\n"), 0)),
        Some(other) => return Err(format!("unknown command `{other}`\n{USAGE}")),
    }
    while let Some(a) = it.next() {
        match a.as_str() {
            "--manifest-dir" => manifest_dir = Some(it.next().ok_or(format!("--manifest-dir needs a directory\n{USAGE}"))?.into()),
            "-h" | "--help" => return Ok((format!("{USAGE}\n"), 0)),
            f if file.is_none() && !f.starts_with('-') => file = Some(f.into()),
            other => return Err(format!("unexpected argument `{other}`\n{USAGE}")),
        }
    }
    let file = file.ok_or(format!("no file given\n{USAGE}"))?;
    let text = std::fs::read_to_string(&file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let ast = syn::parse_file(&text).map_err(|e| format!("{}: cannot parse: {e}", file.display()))?;
    let options = Options { manifest_dir: Some(manifest_dir.unwrap_or_else(|| crate_root(&file))) };
    let mut out = String::new();
    let mut count = Count::default();
    expand_items(&ast.items, &options, &mut out, &mut count);
    if count.found == 0 {
        return Err(format!("no #[predify] struct in {}", file.display()));
    }
    Ok((out, count.failed))
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

/// Structs expanded, and how many of their expansions hold `compile_error!`.
#[derive(Default)]
struct Count {
    found: usize,
    failed: usize,
}

fn expand_items(items: &[syn::Item], options: &Options, out: &mut String, count: &mut Count) {
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
                count.found += 1;
                count.failed += usize::from(has_compile_error(&expanded));
                out.push_str(&format!("// ---- #[predify] on `{}` ----\n", s.ident));
                match syn::parse2::<syn::File>(expanded.clone()) {
                    Ok(f) => out.push_str(&prettyplease::unparse(&f)),
                    Err(_) => out.push_str(&format!("{expanded}\n")),
                }
            }
            syn::Item::Mod(m) => {
                if let Some((_, inner)) = &m.content {
                    expand_items(inner, options, out, count);
                }
            }
            _ => {}
        }
    }
}

/// Whether the expansion reports an error: the macro's errors are `compile_error!` invocations.
fn has_compile_error(tokens: &TokenStream) -> bool {
    use proc_macro2::TokenTree;
    let trees: Vec<TokenTree> = tokens.clone().into_iter().collect();
    trees.iter().enumerate().any(|(k, t)| match t {
        TokenTree::Ident(i) => i == "compile_error" && matches!(trees.get(k + 1), Some(TokenTree::Punct(p)) if p.as_char() == '!'),
        TokenTree::Group(g) => has_compile_error(&g.stream()),
        _ => false,
    })
}
