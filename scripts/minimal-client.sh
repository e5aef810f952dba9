#!/usr/bin/env bash
# A library user's build (clients/minimal: `predify` with `default-features = false`): it must
# compile and run, and its lock file must hold none of the application crates.
#
# Environment: CARGO_TARGET_DIR (default: the workspace's target/, so that Candle is reused).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
client="$root/clients/minimal"
export PROTOC="${PROTOC:-/nonexistent}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
# Start from the workspace's versions (cargo drops what the client does not use).
cp "$root/Cargo.lock" "$client/Cargo.lock"
cargo run --quiet --manifest-path "$client/Cargo.toml"
bad=0
for crate in candle-onnx prost protox plotters indicatif prettyplease flate2 tar; do
    if grep -q "^name = \"$crate\"$" "$client/Cargo.lock"; then
        echo "minimal-client: $crate is in a minimal client's Cargo.lock" >&2
        bad=1
    fi
done
[ "$bad" = 0 ] || exit 1
echo "minimal-client: ok ($(grep -c '^name = ' "$client/Cargo.lock") packages in its Cargo.lock, none of the application crates)"
