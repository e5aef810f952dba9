#!/usr/bin/env bash
# Regenerate src/onnx/proto.rs (ONNX's protobuf messages as prost types) from proto/onnx.proto,
# in pure Rust (protox + prost-build): no protoc needed, here or when building predify.
#
#   scripts/onnx-proto.sh           # write src/onnx/proto.rs
#   scripts/onnx-proto.sh --check   # fail if src/onnx/proto.rs differs from what would be written
#
# The generator (scripts/onnx-proto/) is its own crate outside the workspace; it builds into
# target/onnx-proto so it neither creates scripts/onnx-proto/target nor holds the main build's lock.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${ONNX_PROTO_TARGET_DIR:-$PWD/target/onnx-proto}"
exec cargo run --quiet --release --locked --manifest-path scripts/onnx-proto/Cargo.toml -- "$@"
