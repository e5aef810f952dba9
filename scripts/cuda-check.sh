#!/usr/bin/env bash
# Compile-check the `cuda` feature on a machine without a GPU or a CUDA installation.
#
# Candle's CUDA backend needs nvcc and the CUDA headers at build time even for `cargo check`:
# candle-kernels' build script compiles its .cu files to PTX and to a static library, and
# cudarc's asks `nvcc --version` which CUDA API to bind. This script brings nvcc and the headers
# from PyPI into a venv under the target dir (idempotent: installs only when the pinned set
# changes), compiles our own kernel (predify-runtime/src/cuda/*.cu, which the runtime compiles
# with NVRTC on first use) with nvcc as a syntax check, then runs `cargo check` on every target
# with the feature on, in its own target dir (the feature changes candle-core's features, which
# would otherwise rebuild everyone's Candle).
#
# Environment:
#   CUDA_PYPI_VERSION  CUDA release of the PyPI wheels (default 13.0; cudarc 0.19 knows up to 13.4;
#                      the cu12 wheels on PyPI have no nvcc, so 13.x it is)
#   CUDA_COMPUTE_CAP   GPU architecture the kernels are compiled for (default 80: no GPU to ask)
#   CARGO_TARGET_DIR   default target/cuda
#   CUDA_ROOT          use this CUDA toolkit instead of installing one (must have bin/nvcc)
#   CUDA_EXTRA_WHEELS  more wheels for the same venv (scripts/gpu-check.sh adds the runtime
#                      libraries needed to link)
#   CUDA_CHECK_SETUP_ONLY=1  only set the toolkit up and print `export` lines for eval
# Extra arguments go to cargo check, e.g. `scripts/cuda-check.sh -p predify-runtime`.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo >/dev/null || { echo "cargo not found: install Rust (rustup) first" >&2; exit 1; }

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target/cuda}"
mkdir -p "$CARGO_TARGET_DIR"

if [ -z "${CUDA_ROOT:-}" ]; then
    ver="${CUDA_PYPI_VERSION:-13.0}"
    venv="$CARGO_TARGET_DIR/cuda-venv"
    # From CUDA 13 on, nvcc, its front end (cicc, in nvidia-nvvm) and the crt headers are
    # separate wheels, all installed under site-packages/nvidia/cu13 as one toolkit tree.
    pkgs=("nvidia-cuda-nvcc==$ver.*" "nvidia-cuda-crt==$ver.*" "nvidia-nvvm==$ver.*"
          "nvidia-cuda-runtime==$ver.*" "nvidia-cuda-cccl==$ver.*")
    # shellcheck disable=SC2206
    pkgs+=(${CUDA_EXTRA_WHEELS:-})
    stamp="$venv/.predify-cuda-$(printf '%s\n' "${pkgs[@]}" | cksum | cut -d' ' -f1)"
    if [ ! -f "$stamp" ]; then
        command -v python3 >/dev/null || { apt-get update -qq && apt-get install -y -qq python3 python3-venv; }
        if [ ! -x "$venv/bin/pip" ]; then
            python3 -m venv "$venv" 2>/dev/null || {
                rm -rf "$venv"; apt-get update -qq && apt-get install -y -qq python3-venv && python3 -m venv "$venv"; }
        fi
        "$venv/bin/pip" install -q --disable-pip-version-check "${pkgs[@]}" >&2
        rm -f "$venv"/.predify-cuda-*
        touch "$stamp"
    fi
    CUDA_ROOT="$("$venv/bin/python" -c 'import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], "cu13"))')"
fi
test -x "$CUDA_ROOT/bin/nvcc" || { echo "no nvcc at $CUDA_ROOT/bin/nvcc" >&2; exit 1; }
# The wheels ship versioned shared libraries only; the linker's -lcublas etc. need the plain
# names (only a full build links; `cargo check` does not).
if [ -d "$CUDA_ROOT/lib" ]; then
    for so in "$CUDA_ROOT"/lib/lib*.so.*; do
        [ -e "$so" ] || continue
        plain="${so%%.so.*}.so"
        [ -e "$plain" ] || ln -s "$(basename "$so")" "$plain"
    done
fi
# cudarc looks for the toolkit through these variables, cudaforge (candle-kernels) through PATH.
export CUDA_ROOT CUDA_PATH="$CUDA_ROOT" CUDA_HOME="$CUDA_ROOT" PATH="$CUDA_ROOT/bin:$PATH"
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-80}"

if [ "${CUDA_CHECK_SETUP_ONLY:-0}" = 1 ]; then
    printf 'export CARGO_TARGET_DIR=%q CUDA_ROOT=%q CUDA_PATH=%q CUDA_HOME=%q PATH=%q CUDA_COMPUTE_CAP=%q\n' \
        "$CARGO_TARGET_DIR" "$CUDA_ROOT" "$CUDA_ROOT" "$CUDA_ROOT" "$PATH" "$CUDA_COMPUTE_CAP"
    exit 0
fi

start=$(date +%s)
nvcc --version | tail -2
# Our kernels are compiled at run time with NVRTC; compiling them here catches errors in CI.
for cu in predify-runtime/src/cuda/*.cu; do
    nvcc --ptx -arch="sm_${CUDA_COMPUTE_CAP}" -o "$CARGO_TARGET_DIR/$(basename "$cu" .cu).ptx" "$cu"
    echo "cuda-check: $cu compiles with nvcc"
done

# `--features cuda` selects the root crate's feature, which forwards to predify-runtime/cuda,
# candle-core/cuda and candle-nn/cuda; --all-targets covers the tests, examples and binaries
# (nothing is linked, so no libcuda is needed).
cargo check --workspace --all-targets --features cuda "$@"
echo "cuda-check: cargo check --features cuda passed in $(( $(date +%s) - start )) s"
