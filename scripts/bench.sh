#!/usr/bin/env bash
# Side-by-side benchmark: predify-rs (src/bin/predify-bench.rs) against a PyTorch implementation
# of the same dynamics (scripts/bench_reference.py), on the same threads, interleaved, each
# configuration in a fresh process; then the op-level table (our kernels, Candle, PyTorch).
#
#   scripts/bench.sh                    # 2 threads, 3 timesteps after the t=0 pass
#   THREADS=1 TIMESTEPS=5 scripts/bench.sh
#   CONFIGS="mnist:64" OPS=0 scripts/bench.sh
#   MNIST_TIMESTEPS=50 scripts/bench.sh   # the MNIST-scale net's timestep count (default 20:
#                                         # a ~20 ms timestep needs more than 3 for a median)
#
# Set-up (first run): a virtual environment in target/bench-venv with `pip install torch` from
# PyPI, and a release build of the bench binary (without the application features, which it
# does not need). Raw results: target/bench/results.jsonl; the tables are printed at the end.
set -euo pipefail

cd "$(dirname "$0")/.."
THREADS="${THREADS:-2}"
TIMESTEPS="${TIMESTEPS:-3}"
MNIST_TIMESTEPS="${MNIST_TIMESTEPS:-20}"
CONFIGS="${CONFIGS:-pvgg16:1 pvgg16:4 mnist:64}"
OPS="${OPS:-1}"
VENV="target/bench-venv"
OUT="target/bench"
START=$(date +%s)
LOAD_START=$(cut -d" " -f1-3 /proc/loadavg)

# ---- set-up
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
    echo "== setting up $VENV (pip install torch from PyPI; a few GB the first time)" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --upgrade pip
    "$VENV/bin/pip" install --quiet torch numpy
fi
PY="$VENV/bin/python"
echo "== building predify-bench (release)" >&2
cargo build --release --no-default-features --bin predify-bench >&2
BIN="target/release/predify-bench"
BUILT=$(date +%s)

export RAYON_NUM_THREADS="$THREADS" OMP_NUM_THREADS="$THREADS" MKL_NUM_THREADS="$THREADS"
mkdir -p "$OUT"
RES="$OUT/results.jsonl"
: > "$RES"

# ---- models, interleaved: for each configuration predify-rs then PyTorch
for cfg in $CONFIGS; do
    model="${cfg%%:*}"; batch="${cfg##*:}"
    steps="$TIMESTEPS"; [ "$model" = mnist ] && steps="$MNIST_TIMESTEPS"
    # Other processes on the machine skew both sides: record the load next to each pair.
    echo "{\"kind\": \"load\", \"model\": \"$model\", \"batch\": $batch, \"load1\": $(cut -d" " -f1 /proc/loadavg)}" >> "$RES"
    echo "== $model batch $batch: predify-rs" >&2
    "$BIN" --json --model "$model" --batch "$batch" --threads "$THREADS" --timesteps "$steps" >> "$RES"
    echo "== $model batch $batch: PyTorch" >&2
    "$PY" scripts/bench_reference.py --model "$model" --batch "$batch" --threads "$THREADS" --timesteps "$steps" >> "$RES"
done
# What `import torch` alone costs in resident memory (part of every PyTorch peak above).
"$PY" -c 'import json, torch
hwm = [int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM:")][0]
print(json.dumps({"kind": "baseline", "impl": "pytorch", "peak_rss_bytes": hwm}))' >> "$RES"

# ---- op level
if [ "$OPS" != 0 ]; then
    echo "== op level: predify-rs and Candle" >&2
    "$BIN" --json --ops --threads "$THREADS" >> "$RES"
    echo "== op level: PyTorch" >&2
    "$PY" scripts/bench_reference.py --ops --threads "$THREADS" >> "$RES"
fi

END=$(date +%s)
LOAD_END=$(cut -d" " -f1-3 /proc/loadavg)
"$PY" - "$RES" "$THREADS" "$TIMESTEPS" "$((END - START))" "$LOAD_START" "$LOAD_END" "$((END - BUILT))" "$MNIST_TIMESTEPS" <<'EOF'
import json, sys
res, threads, timesteps, wall = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
load_start, load_end, runs, mnist_steps = sys.argv[5], sys.argv[6], int(sys.argv[7]), sys.argv[8]
rows = [json.loads(l) for l in open(res) if l.strip()]
mib = lambda b: b / 2**20
cpuinfo = open("/proc/cpuinfo").read().splitlines()
cpu = next((l.split(":", 1)[1].strip() for l in cpuinfo if l.startswith("model name")), "?")
flags = next((l.split(":", 1)[1].split() for l in cpuinfo if l.startswith("flags")), [])
cpu += " (AVX-512: " + ("yes" if "avx512f" in flags else "no") + ", AVX2: " + ("yes" if "avx2" in flags else "no") + ")"
tv = next((r.get("torch_version") for r in rows if r.get("torch_version")), "?")
print(f"\n{threads} threads, {timesteps} timesteps after the t=0 pass (mnist: {mnist_steps}; median of t >= 1); {cpu}; PyTorch {tv}\n")
models, loads = {}, {}
for r in rows:
    if r["kind"] == "model":
        models.setdefault((r["model"], r["batch"]), {})[r["impl"]] = r
    if r["kind"] == "load":
        loads[(r["model"], r["batch"])] = r["load1"]
print("| model | batch | predify-rs timestep (s) | PyTorch timestep (s) | predify-rs / PyTorch | target | predify-rs GFLOP/s | PyTorch GFLOP/s | predify-rs peak RSS (MiB) | PyTorch peak RSS (MiB) | load before |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for (m, b), d in models.items():
    r, p = d.get("predify-rs"), d.get("pytorch")
    if not (r and p):
        continue
    ratio = r["timestep_s"] / p["timestep_s"]
    target = 0.5 if m == "pvgg16" else 1 / 3
    ok = "met" if ratio <= target else "not met"
    print(f"| {m} | {b} | {r['timestep_s']:.4f} | {p['timestep_s']:.4f} | {ratio:.2f} | ≤ {target:.2f} ({ok}) | "
          f"{r['gflops']:.1f} | {p['gflops']:.1f} | {mib(r['peak_rss_bytes']):.0f} | {mib(p['peak_rss_bytes']):.0f} | {loads.get((m, b), '?')} |")
gf = {k: v["predify-rs"]["flop_per_timestep"] / k[1] / 1e9 for k, v in models.items() if "predify-rs" in v}
print("\nGFLOP per image and timestep (backbone convolutions + predictors + their adjoints): "
      + ", ".join(f"{m} {g:.3g}" for (m, b), g in gf.items() if b == min(bb for mm, bb in gf if mm == m)))
base = next((r for r in rows if r["kind"] == "baseline"), None)
if base:
    print(f"PyTorch process after `import torch` alone: {mib(base['peak_rss_bytes']):.0f} MiB peak RSS.")
ops = {}
for r in rows:
    if r["kind"] == "op":
        ops.setdefault(r["op"], {})[r["impl"]] = r
if ops:
    print("\n| operation | GFLOP | predify-rs (s) | GFLOP/s | Candle (s) | GFLOP/s | PyTorch (s) | GFLOP/s | predify-rs / PyTorch | max rel. diff vs Candle |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for k, d in ops.items():
        r, c, p = d.get("predify-rs"), d.get("candle"), d.get("pytorch")
        cell = lambda x: f"{x['time_s']:.3f} | {x['gflops']:.1f}" if x else "– | –"
        lab = (r or p)["label"]
        lab = ("  " + lab) if lab.startswith("its adjoint") else lab
        ratio = f"{r['time_s'] / p['time_s']:.2f}" if r and p else "–"
        diff = f"{r['max_rel_diff_vs_candle']:.1e}" if r else "–"
        print(f"| {lab} | {(r or p)['gflop']:.1f} | {cell(r)} | {cell(c)} | {cell(p)} | {ratio} | {diff} |")
print(f"\nwall time of the whole bench: {wall} s (of which the runs: {runs} s, the rest set-up and build); load average (1/5/15 min) at start {load_start}, at end {load_end}; raw results: {res}")
EOF
