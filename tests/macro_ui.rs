//! Compile-time errors of `#[predify]`: one `tests/ui/*.rs` per error class, each with a
//! `.stderr` snapshot of the exact messages and spans (regenerate with `TRYBUILD=overwrite`).

use std::path::Path;

/// trybuild compiles the UI files as a crate of its own under `<target>/tests/trybuild/predify`,
/// which is then their `CARGO_MANIFEST_DIR`; the spec files they name (relative to it, as a
/// user's crate would) are copied there.
fn copy_ui_specs() {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().expect("target dir");
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui/specs");
    let to = target.join("tests/trybuild/predify/tests/ui/specs");
    std::fs::create_dir_all(&to).expect("creating the UI spec dir");
    for entry in std::fs::read_dir(&from).expect("tests/ui/specs") {
        let path = entry.expect("dir entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            let dest = to.join(path.file_name().expect("file name"));
            // Only when changed, so that cargo's fingerprints stay fresh between runs.
            let new = std::fs::read(&path).expect("reading a UI spec");
            if std::fs::read(&dest).ok().as_deref() != Some(new.as_slice()) {
                std::fs::write(&dest, new).expect("copying a UI spec");
            }
        }
    }
}

#[test]
fn ui() {
    copy_ui_specs();
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
