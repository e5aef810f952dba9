//! Golden test of one `#[predify]` expansion: `tests/golden/ptiny.input.rs` expanded by
//! `predify_codegen::expand` and formatted by prettyplease must equal
//! `tests/golden/ptiny.expanded.rs`. Regenerate it with `PREDIFY_BLESS=1 cargo test --test macro_expand`.
//! The `predify expand` command must print the same code.

use std::path::{Path, PathBuf};

/// The golden input compiles as it is (so the golden expansion is code that compiles).
#[allow(dead_code)]
mod golden_input {
    include!("golden/ptiny.input.rs");
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Expands every `#[predify]` struct of the input file, as the macro would.
fn expand_input() -> String {
    let text = std::fs::read_to_string(golden_dir().join("ptiny.input.rs")).expect("reading the golden input");
    let file = syn::parse_file(&text).expect("parsing the golden input");
    let mut out = String::new();
    for item in file.items {
        let syn::Item::Struct(mut s) = item else { continue };
        let Some(pos) = s.attrs.iter().position(|a| a.path().is_ident("predify")) else { continue };
        let attr = s.attrs.remove(pos);
        let args = attr.meta.require_list().expect("#[predify(...)]").tokens.clone();
        let options = predify_codegen::Options { manifest_dir: Some(PathBuf::from(env!("CARGO_MANIFEST_DIR"))) };
        let expanded = predify_codegen::expand_with(args, quote::ToTokens::to_token_stream(&s), &options);
        let parsed: syn::File = syn::parse2(expanded).expect("the expansion parses as Rust items");
        out.push_str(&prettyplease::unparse(&parsed));
    }
    out
}

#[test]
fn expansion_matches_golden_file() {
    let actual = expand_input();
    assert!(!actual.contains("compile_error"), "the golden input does not expand cleanly:\n{actual}");
    let path = golden_dir().join("ptiny.expanded.rs");
    if std::env::var_os("PREDIFY_BLESS").is_some() {
        std::fs::write(&path, &actual).expect("writing the golden file");
        return;
    }
    let expected = std::fs::read_to_string(&path).expect("reading the golden file (run with PREDIFY_BLESS=1 to create it)");
    if actual != expected {
        let line = actual.lines().zip(expected.lines()).position(|(a, b)| a != b).unwrap_or(actual.lines().count().min(expected.lines().count()));
        panic!(
            "the expansion differs from {} from line {}:\n  got:      {:?}\n  expected: {:?}\n(rerun with PREDIFY_BLESS=1 to accept the new expansion)",
            path.display(),
            line + 1,
            actual.lines().nth(line),
            expected.lines().nth(line)
        );
    }
}

/// `predify expand` prints the same expansion, under a header line per struct.
#[test]
fn predify_expand_command_prints_the_expansion() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_predify"))
        .arg("expand")
        .arg(golden_dir().join("ptiny.input.rs"))
        .output()
        .expect("running predify expand");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let body = stdout.split_once('\n').map(|(header, rest)| {
        assert_eq!(header, "// ---- #[predify] on `Tiny` ----");
        rest
    });
    assert_eq!(body, Some(expand_input().as_str()));
}

/// A crate outside this workspace, laid out by the test: `Cargo.toml`, `spec/net.toml` and
/// `src/model.rs` with `#[predify(spec = "spec/net.toml")]`, the spec written by `spec_text`.
fn outside_crate(tag: &str, spec_text: &str) -> PathBuf {
    let root = std::env::temp_dir().join(format!("predify-expand-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("src")).unwrap();
    std::fs::create_dir_all(root.join("spec")).unwrap();
    std::fs::write(root.join("Cargo.toml"), "[package]\nname = \"outside\"\nversion = \"0.1.0\"\n").unwrap();
    std::fs::write(root.join("spec/net.toml"), spec_text).unwrap();
    let model = "use predify::predify;\n#[predify(spec = \"spec/net.toml\")]\npub struct Net {\n    conv: predify::candle_nn::Conv2d,\n    relu: predify::candle_nn::Activation,\n}\n";
    std::fs::write(root.join("src/model.rs"), model).unwrap();
    root
}

fn expand_from_elsewhere(file: &Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_predify"))
        .arg("expand")
        .arg(file)
        .current_dir(std::env::temp_dir()) // neither the workspace nor the outside crate
        .output()
        .expect("running predify expand")
}

/// `spec = "..."` resolves against the annotated file's crate, not the current directory; an
/// expansion with errors still prints but exits 1.
#[test]
fn predify_expand_resolves_specs_in_the_files_crate_and_fails_on_errors() {
    let good = "name = \"PNet\"\ninput_size = [1, 8, 8]\n[[pcoders]]\nmodule = \"relu\"\npredictor = \"ConvTranspose2d(4, 1, kernel_size=3, padding=1)\"\n";
    let root = outside_crate("good", good);
    let out = expand_from_elsewhere(&root.join("src/model.rs"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("PNet") && !stdout.contains("compile_error"), "{stdout}");

    let bad = good.replace("module = \"relu\"", "module = \"relux\"");
    let root_bad = outside_crate("bad", &bad);
    let out = expand_from_elsewhere(&root_bad.join("src/model.rs"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "stdout:\n{stdout}");
    assert!(stdout.contains("compile_error") && stdout.contains("relux"), "{stdout}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("contain errors"));
    let _ = std::fs::remove_dir_all(root);
    let _ = std::fs::remove_dir_all(root_bad);
}
