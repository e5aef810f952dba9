#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: build with the `cuda` feature, run the parity tests on the
# GPU, and time PVGG16 timesteps against the PyTorch reference on the same GPU.
#
#   scripts/gpu-check.sh                 # everything
#   STEPS=parity scripts/gpu-check.sh    # only the parity tests (or STEPS=bench)
#   BATCHES="1 4" TIMESTEPS=5 scripts/gpu-check.sh
#
# Toolkit: a CUDA toolkit already on the machine (nvcc in PATH, or CUDA_ROOT) is used as it is;
# otherwise nvcc, headers and the runtime libraries (nvrtc, cuBLAS, cuRAND) come from PyPI's
# CUDA 13 wheels (scripts/cuda-check.sh sets them up), which needs a driver for CUDA >= 13.0
# (R580+). With an older driver, install a matching CUDA 12 toolkit and set CUDA_ROOT: PyPI's
# cu12 wheels carry no nvcc.
#
# Results: target/cuda/gpu-check/{parity.log,bench.jsonl}; a summary at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS="${STEPS:-parity bench}"
BATCHES="${BATCHES:-1 4}"
TIMESTEPS="${TIMESTEPS:-5}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target/cuda}"
out="$CARGO_TARGET_DIR/gpu-check"
mkdir -p "$out"

command -v nvidia-smi >/dev/null || { echo "gpu-check: nvidia-smi not found: no NVIDIA driver here" >&2; exit 1; }
nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total --format=csv,noheader | tee "$out/gpu.txt"
# Kernels for the GPU at hand (e.g. 9.0 -> 90).
cap="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d ' .')"
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-$cap}"

if [ -z "${CUDA_ROOT:-}" ] && command -v nvcc >/dev/null; then
    CUDA_ROOT="$(dirname "$(dirname "$(command -v nvcc)")")"
fi
if [ -z "${CUDA_ROOT:-}" ]; then
    # The driver's CUDA version caps the toolkit (PTX from a newer nvcc does not load).
    drv="$(nvidia-smi | sed -n 's/.*CUDA Version: *\([0-9]*\)\.\([0-9]*\).*/\1 \2/p' | head -1)"
    read -r dmaj dmin <<<"${drv:-0 0}"
    if [ "$dmaj" -lt 13 ]; then
        echo "gpu-check: the driver supports CUDA $dmaj.$dmin, PyPI's nvcc is CUDA 13: install a CUDA $dmaj toolkit and set CUDA_ROOT" >&2
        exit 1
    fi
    ver="13.$(( dmaj > 13 || dmin > 4 ? 4 : dmin ))"   # cudarc 0.19 knows CUDA up to 13.4
    eval "$(CUDA_PYPI_VERSION="$ver" CUDA_EXTRA_WHEELS="nvidia-cuda-nvrtc==$ver.* nvidia-cublas==$ver.* nvidia-curand==10.4.*" \
        CUDA_CHECK_SETUP_ONLY=1 scripts/cuda-check.sh)"
else
    export CUDA_ROOT CUDA_PATH="$CUDA_ROOT" CUDA_HOME="$CUDA_ROOT" PATH="$CUDA_ROOT/bin:$PATH"
fi
# -lcuda: the driver library, often only present as libcuda.so.1.
linkdir="$CARGO_TARGET_DIR/cuda-link"
mkdir -p "$linkdir"
if ! ls "$CUDA_ROOT"/lib*/libcuda.so "$CUDA_ROOT"/lib*/stubs/libcuda.so >/dev/null 2>&1; then
    libcuda="$(ldconfig -p | awk '/libcuda\.so\.1 /{print $NF; exit}')"
    [ -n "$libcuda" ] && ln -sf "$libcuda" "$linkdir/libcuda.so"
fi
export RUSTFLAGS="${RUSTFLAGS:-} -L native=$linkdir"
export LD_LIBRARY_PATH="$CUDA_ROOT/lib:$CUDA_ROOT/lib64:${LD_LIBRARY_PATH:-}"
nvcc --version | tail -1

# No application features: nothing here reads data sets or ONNX.
features=(--release --no-default-features --features cuda)

if [[ " $STEPS " == *" parity "* ]]; then
    export PREDIFY_FIXTURES="${PREDIFY_FIXTURES:-$(cd .. && pwd)/shared/fixtures}"
    echo "== parity tests on the GPU (PREDIFY_DEVICE=cuda, tolerance 1e-4)"
    PREDIFY_DEVICE=cuda cargo test "${features[@]}" --test parity --test macro_parity -- --nocapture 2>&1 | tee "$out/parity.log"
fi

if [[ " $STEPS " == *" bench "* ]]; then
    echo "== PVGG16 timesteps on the GPU: predify-rs"
    cargo build "${features[@]}" --example gpu_bench
    : >"$out/bench.jsonl"
    for b in $BATCHES; do
        "$CARGO_TARGET_DIR/release/examples/gpu_bench" --device cuda --batch "$b" --timesteps "$TIMESTEPS" | tee -a "$out/bench.jsonl"
    done
    echo "== PVGG16 timesteps on the GPU: PyTorch reference (scripts/bench_reference.py's model and dynamics)"
    venv=target/bench-venv
    if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import torch' 2>/dev/null; then
        python3 -m venv "$venv" && "$venv/bin/pip" install -q torch numpy
    fi
    for b in $BATCHES; do
        # bench_reference.py builds and runs on the CPU; this reuses its network and PCoder
        # (device-agnostic) and moves them to the GPU, synchronising after every timestep.
        "$venv/bin/python" - "$b" "$TIMESTEPS" <<'EOF' | tee -a "$out/bench.jsonl"
import json, statistics, sys, time
sys.path.insert(0, "scripts")
import torch
import bench_reference as br

batch, timesteps = int(sys.argv[1]), int(sys.argv[2])
assert torch.cuda.is_available(), "torch sees no GPU"
dev = torch.device("cuda")
torch.manual_seed(0)
features, classifier, spec, input_shape, scaling, _ = br.build("pvgg16")
attach = [a for a, *_ in spec]
ff_shapes, h = [], torch.zeros(1, *input_shape)
with torch.no_grad():
    for j, layer in enumerate(features):
        h = layer(h)
        if j in attach:
            ff_shapes.append(tuple(h.shape[1:]))
pcoders = []
for i, (a, pm, ffm, fbm, erm) in enumerate(spec):
    _, cs = br.predictor_flop_and_csqrt(pm, ff_shapes[i])
    pcoders.append(br.PCoder(pm.to(dev), ffm, fbm, erm, cs if scaling else None, i + 1 == len(spec)))
features, classifier = features.to(dev), classifier.to(dev)
by_layer = {a: i for i, a in enumerate(attach)}
x = torch.rand(batch, *input_shape, device=dev)

def one_pass():
    with torch.no_grad():
        h = x
        for j, layer in enumerate(features):
            h = layer(h)
            i = by_layer.get(j)
            if i is not None:
                target = x if i == 0 else pcoders[i - 1].rep
                feedback = pcoders[i + 1].prd if i + 1 < len(pcoders) else None
                h = pcoders[i].fire(h, target, feedback)
        return classifier(torch.flatten(h, 1))

times = []
for step in range(timesteps + 1):
    torch.cuda.synchronize()
    s = time.perf_counter()
    one_pass()
    torch.cuda.synchronize()
    times.append(time.perf_counter() - s)
    print(f"[reference] pvgg16 batch {batch} on cuda: timestep {step}/{timesteps} {times[-1]:.4f} s", file=sys.stderr)
print(json.dumps({"kind": "model", "impl": "pytorch", "device": "cuda", "model": "pvgg16", "batch": batch,
                  "timesteps": timesteps, "timestep_s": statistics.median(times[1:]), "t0_s": times[0],
                  "timesteps_s": times[1:], "prediction_errors": [p.error for p in pcoders],
                  "torch_version": torch.__version__}), flush=True)
EOF
    done
    echo "== summary (median seconds per PVGG16 timestep on the GPU)"
    python3 - "$out/bench.jsonl" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
by = {(r["impl"], r["batch"]): r["timestep_s"] for r in rows}
print("| batch | predify-rs | PyTorch | ratio |\n|---|---|---|---|")
for b in sorted({r["batch"] for r in rows}):
    ours, ref = by.get(("predify-rs", b)), by.get(("pytorch", b))
    ratio = f"{ours / ref:.2f}x" if ours and ref else "-"
    print(f"| {b} | {ours if ours is None else f'{ours:.4f}'} | {ref if ref is None else f'{ref:.4f}'} | {ratio} |")
EOF
fi
