//! Generates `src/onnx/proto.rs` (prost types for ONNX's messages) from `proto/onnx.proto`
//! without `protoc`: protox parses the schema into a `FileDescriptorSet`, prost-build turns it
//! into Rust.
//!
//! Usage (from anywhere; paths are relative to the repository root):
//!   scripts/onnx-proto.sh           write src/onnx/proto.rs
//!   scripts/onnx-proto.sh --check   exit 1 if the checked-in file differs from what would be written

use std::path::{Path, PathBuf};
use std::process::ExitCode;

const PROTO: &str = "proto/onnx.proto";
const OUTPUT: &str = "src/onnx/proto.rs";

const HEADER: &str = "\
// @generated from proto/onnx.proto by `scripts/onnx-proto.sh` (scripts/onnx-proto: protox +
// prost-build, no protoc). Do not edit: change proto/onnx.proto and rerun the script;
// `scripts/onnx-proto.sh --check` verifies that this file is up to date.

";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn generate(root: &Path) -> Result<String, String> {
    let fds = protox::compile([PROTO], [root]).map_err(|e| format!("{PROTO}: {e}"))?;
    let requests = fds
        .file
        .into_iter()
        .map(|file| (prost_build::Module::from_protobuf_package_name(file.package()), file))
        .collect();
    let mut modules = prost_build::Config::new().generate(requests).map_err(|e| format!("prost-build: {e}"))?;
    let onnx = prost_build::Module::from_protobuf_package_name("onnx");
    let code = modules.remove(&onnx).ok_or_else(|| format!("{PROTO}: no `onnx` package"))?;
    if !modules.is_empty() {
        return Err(format!("{PROTO}: unexpected extra packages {:?}", modules.keys().collect::<Vec<_>>()));
    }
    Ok(format!("{HEADER}{code}"))
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let check = match args.as_slice() {
        [] => false,
        [a] if a == "--check" => true,
        _ => return Err(format!("usage: scripts/onnx-proto.sh [--check] (got {args:?})")),
    };
    let root = repo_root();
    let code = generate(&root)?;
    let output = root.join(OUTPUT);
    if check {
        let current = std::fs::read_to_string(&output).map_err(|e| format!("{OUTPUT}: {e}"))?;
        if current != code {
            return Err(format!("{OUTPUT} is out of date with {PROTO}: run scripts/onnx-proto.sh and commit the result"));
        }
        println!("{OUTPUT} is up to date with {PROTO}");
    } else {
        std::fs::write(&output, code).map_err(|e| format!("{OUTPUT}: {e}"))?;
        println!("wrote {OUTPUT} from {PROTO}");
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("onnx-proto: {e}");
            ExitCode::FAILURE
        }
    }
}
