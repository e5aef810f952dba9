#!/usr/bin/env bash
# Side-by-side benchmark: predify-rs (src/bin/predify-bench.rs) against the ORIGINAL Predify
# (the Python package, imported and run by scripts/bench_original.py), on the same threads,
# interleaved (for every row predify-rs, then the original), each run in a fresh process.
# Rows: one timestep (PVGG16 batch 1 and 4, MNIST-scale batch 64), the feedback-training step
# (PVGG16 batch 4, MNIST-scale batch 32) and evaluation throughput (MNIST-scale, T = 10, the
# best batch of a grid per side). Optional: the PyTorch re-implementation of the dynamics
# (scripts/bench_reference.py) on the timestep rows, and the op-level table.
#
#   scripts/bench.sh                      # 2 threads; PVGG16: 3 timesteps / 3 training steps
#   THREADS=1 TIMESTEPS=5 scripts/bench.sh
#   PREDIFY_SRC=/path/to/predify scripts/bench.sh   # the original's checkout (default:
#                                         # ../shared/reference/predify-eca7a74 next to the repo)
#   CONFIGS="mnist:64" TRAIN_CONFIGS="mnist:32" EVAL=0 scripts/bench.sh
#   MNIST_TIMESTEPS=50 MNIST_TRAIN_STEPS=50 scripts/bench.sh  # MNIST-scale repetitions (20, 20)
#   TRAIN_STEPS=2 scripts/bench.sh        # PVGG16 training steps timed after the warm-up (3)
#   EVAL_T=10 EVAL_BATCHES=64,256,500 EVAL_REPS=3 scripts/bench.sh
#   REIMPL=all|mnist|none                 # re-implementation rows (default mnist: the cheap one)
#   OPS=1 scripts/bench.sh                # also the op-level table (predify-rs, Candle, PyTorch)
#
# Set-up (first run): a virtual environment in target/bench-venv with `pip install torch numpy
# toml` from PyPI, and a release build of the bench binary (without the application features,
# which it does not need). Raw results: target/bench/results.jsonl; the table is printed at the end.
set -euo pipefail

cd "$(dirname "$0")/.."
THREADS="${THREADS:-2}"
TIMESTEPS="${TIMESTEPS:-3}"
MNIST_TIMESTEPS="${MNIST_TIMESTEPS:-20}"
CONFIGS="${CONFIGS:-pvgg16:1 pvgg16:4 mnist:64}"
TRAIN_CONFIGS="${TRAIN_CONFIGS:-pvgg16:4 mnist:32}"
TRAIN_STEPS="${TRAIN_STEPS:-3}"
MNIST_TRAIN_STEPS="${MNIST_TRAIN_STEPS:-20}"
EVAL="${EVAL:-1}"
EVAL_T="${EVAL_T:-10}"
EVAL_BATCHES="${EVAL_BATCHES:-64,256,500}"
EVAL_REPS="${EVAL_REPS:-3}"
REIMPL="${REIMPL:-mnist}"
OPS="${OPS:-0}"
VENV="target/bench-venv"
OUT="target/bench"
START=$(date +%s)
LOAD_START=$(cut -d" " -f1-3 /proc/loadavg)

# ---- the original
if [ -n "${PREDIFY_SRC:-}" ]; then
    SRC="$PREDIFY_SRC"
else
    SRC="../shared/reference/predify-eca7a74"
fi
if [ ! -f "$SRC/predify/__init__.py" ]; then
    echo "bench.sh: no original Predify at $SRC (set PREDIFY_SRC to a checkout of https://github.com/miladmozafari/predify)" >&2
    exit 1
fi
export PREDIFY_SRC="$(cd "$SRC" && pwd)"

# ---- set-up
if ! "$VENV/bin/python" -c "import torch, toml" 2>/dev/null; then
    echo "== setting up $VENV (pip install torch numpy toml from PyPI; a few GB the first time)" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --upgrade pip
    "$VENV/bin/pip" install --quiet torch numpy toml
fi
PY="$VENV/bin/python"
echo "== building predify-bench (release)" >&2
cargo build --release --no-default-features --bin predify-bench >&2
BIN="target/release/predify-bench"
BUILT=$(date +%s)
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo "?")$(git diff --quiet HEAD 2>/dev/null || echo "+dirty")

export RAYON_NUM_THREADS="$THREADS" OMP_NUM_THREADS="$THREADS" MKL_NUM_THREADS="$THREADS"
mkdir -p "$OUT"
RES="$OUT/results.jsonl"
: > "$RES"

# Other processes on the machine skew both sides: record the load next to each pair.
load() {
    echo "{\"kind\": \"load\", \"workload\": \"$1\", \"model\": \"$2\", \"batch\": $3, \"load1\": $(cut -d" " -f1 /proc/loadavg)}" >> "$RES"
}

# ---- one timestep: for each configuration predify-rs, then the original (then the re-implementation)
for cfg in $CONFIGS; do
    model="${cfg%%:*}"; batch="${cfg##*:}"
    steps="$TIMESTEPS"; [ "$model" = mnist ] && steps="$MNIST_TIMESTEPS"
    load timestep "$model" "$batch"
    echo "== timestep $model batch $batch: predify-rs" >&2
    "$BIN" --json --model "$model" --batch "$batch" --threads "$THREADS" --timesteps "$steps" >> "$RES"
    echo "== timestep $model batch $batch: original Predify" >&2
    "$PY" scripts/bench_original.py --model "$model" --batch "$batch" --threads "$THREADS" --timesteps "$steps" >> "$RES"
    if [ "$REIMPL" = all ] || { [ "$REIMPL" = mnist ] && [ "$model" = mnist ]; }; then
        echo "== timestep $model batch $batch: PyTorch re-implementation" >&2
        "$PY" scripts/bench_reference.py --model "$model" --batch "$batch" --threads "$THREADS" --timesteps "$steps" >> "$RES"
    fi
done

# ---- the feedback-training step
for cfg in $TRAIN_CONFIGS; do
    model="${cfg%%:*}"; batch="${cfg##*:}"
    steps="$TRAIN_STEPS"; [ "$model" = mnist ] && steps="$MNIST_TRAIN_STEPS"
    load train "$model" "$batch"
    echo "== train step $model batch $batch: predify-rs" >&2
    "$BIN" --json --workload train --model "$model" --batch "$batch" --threads "$THREADS" --timesteps "$steps" >> "$RES"
    echo "== train step $model batch $batch: original Predify" >&2
    "$PY" scripts/bench_original.py --workload train --model "$model" --batch "$batch" --threads "$THREADS" --timesteps "$steps" >> "$RES"
done

# ---- evaluation throughput (MNIST-scale)
if [ "$EVAL" != 0 ]; then
    load eval mnist 0
    echo "== eval mnist (batches $EVAL_BATCHES, T = $EVAL_T): predify-rs" >&2
    "$BIN" --json --workload eval --model mnist --batches "$EVAL_BATCHES" --threads "$THREADS" --timesteps "$EVAL_T" --reps "$EVAL_REPS" >> "$RES"
    echo "== eval mnist (batches $EVAL_BATCHES, T = $EVAL_T): original Predify" >&2
    "$PY" scripts/bench_original.py --workload eval --model mnist --batches "$EVAL_BATCHES" --threads "$THREADS" --timesteps "$EVAL_T" --reps "$EVAL_REPS" >> "$RES"
fi

# What `import torch` alone costs in resident memory (part of every Python peak above).
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
"$PY" - "$RES" "$THREADS" "$((END - START))" "$LOAD_START" "$LOAD_END" "$((END - BUILT))" "$COMMIT" <<'EOF'
import json, sys
res, threads, wall, load_start, load_end, runs, commit = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], int(sys.argv[6]), sys.argv[7]
rows = [json.loads(l) for l in open(res) if l.strip()]
mib = lambda b: b / 2**20
cpuinfo = open("/proc/cpuinfo").read().splitlines()
cpu = next((l.split(":", 1)[1].strip() for l in cpuinfo if l.startswith("model name")), "?")
flags = next((l.split(":", 1)[1].split() for l in cpuinfo if l.startswith("flags")), [])
isa = ", ".join(f"{f}: {'yes' if f in flags else 'no'}" for f in ("avx2", "fma", "avx512f"))
orig = next((r for r in rows if r.get("impl") == "predify-original"), {})
tv = next((r.get("torch_version") for r in rows if r.get("torch_version")), "?")
print(f"\npredify-rs commit {commit}; {threads} threads; CPU: {cpu} ({isa}); PyTorch {tv}")
print(f"original Predify: {orig.get('predify_src', '?')} (VERSION {orig.get('predify_version', '?')})")
print(f"load average (1/5/15 min) at start {load_start}, at end {load_end}\n")

runs_by, loads = {}, {}
for r in rows:
    w = r.get("workload", "timestep")
    if r["kind"] == "model":
        runs_by.setdefault((w, r["model"], 0 if w == "eval" else r["batch"]), {})[r["impl"]] = r
    elif r["kind"] == "load":
        loads[(w, r["model"], r["batch"])] = r["load1"]


def unit_time(r, w):
    """Seconds per unit of work: a timestep, a training step, one image-timestep (eval)."""
    return 1.0 / r["image_timesteps_per_s"] if w == "eval" else r["step_s" if w == "train" else "timestep_s"]


def cell(r, w):
    if w == "timestep":
        return f"{r['timestep_s']:.4f} s/timestep"
    if w == "train":
        return f"{r['step_s']:.4f} s/step"
    return f"{r['image_timesteps_per_s']:.0f} img·t/s at batch {r['batch']}"


print("| workload | model | batch | K | predify-rs | original Predify | predify-rs / original (time) | speed-up | target | predify-rs peak RSS (MiB) | original peak RSS (MiB) | RSS ≤ original | load before |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for (w, m, b), d in runs_by.items():
    r, o = d.get("predify-rs"), d.get("predify-original")
    if not (r and o):
        continue
    ratio = unit_time(r, w) / unit_time(o, w)
    t = {("timestep", "pvgg16"): 0.5, ("timestep", "mnist"): 1 / 3}.get((w, m), 0.5)
    tgt = f"≤ {t:.2f}×" if w == "timestep" else "≥ 2× speed"
    ok = "met" if ratio <= t else "not met"
    rss_ok = "yes" if r["peak_rss_bytes"] <= o["peak_rss_bytes"] else "no (not met)"
    if w == "eval":
        bl, k = "best of " + "/".join(str(g["batch"]) for g in r["grid"]), f"T={r['timesteps']}, {r['reps']} runs"
    else:
        bl, k = str(b), str(r.get("timesteps", r.get("steps")))
    print(f"| {w} | {m} | {bl} | {k} | {cell(r, w)} | {cell(o, w)} | {ratio:.2f} | {1 / ratio:.2f}× | {tgt} ({ok}) | "
          f"{mib(r['peak_rss_bytes']):.0f} | {mib(o['peak_rss_bytes']):.0f} | {rss_ok} | {loads.get((w, m, b), '?')} |")
print("\nK: timed timesteps (training steps) after the warm-up pass (step); the median is reported. "
      "eval: image-timesteps per second, T timesteps per run, median of the runs, best batch size per side.")
for impl, r in runs_by.get(("eval", "mnist", 0), {}).items():
    print(f"eval grid, {impl}: " + ", ".join(f"batch {g['batch']}: {g['image_timesteps_per_s']:.0f} img·t/s" for g in r["grid"]))
seen = set()
for (w, m, b), d in runs_by.items():
    o = d.get("predify-original")
    if o and m not in seen:
        seen.add(m)
        print(f"original {m}: generated from {o['config']}; {o['pcoder_class']}")
reimpl = [(k, d) for k, d in runs_by.items() if "pytorch" in d and "predify-rs" in d]
if reimpl:
    print("\nAgainst the PyTorch re-implementation of the dynamics (scripts/bench_reference.py), for reference:\n")
    print("| model | batch | predify-rs timestep (s) | re-implementation timestep (s) | original timestep (s) | predify-rs / re-impl. | re-impl. peak RSS (MiB) |")
    print("|---|---|---|---|---|---|---|")
    for (w, m, b), d in reimpl:
        r, p, o = d["predify-rs"], d["pytorch"], d.get("predify-original")
        ot = f"{o['timestep_s']:.4f}" if o else "–"
        print(f"| {m} | {b} | {r['timestep_s']:.4f} | {p['timestep_s']:.4f} | {ot} | {r['timestep_s'] / p['timestep_s']:.2f} | {mib(p['peak_rss_bytes']):.0f} |")
base = next((r for r in rows if r["kind"] == "baseline"), None)
if base:
    print(f"\nA Python process after `import torch` alone: {mib(base['peak_rss_bytes']):.0f} MiB peak RSS (part of every original and re-implementation peak).")
ops = {}
for r in rows:
    if r["kind"] == "op":
        ops.setdefault(r["op"], {})[r["impl"]] = r
if ops:
    print("\n| operation | GFLOP | predify-rs (s) | GFLOP/s | Candle (s) | GFLOP/s | PyTorch (s) | GFLOP/s | predify-rs / PyTorch | max rel. diff vs Candle |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for k, d in ops.items():
        r, c, p = d.get("predify-rs"), d.get("candle"), d.get("pytorch")
        cellop = lambda x: f"{x['time_s']:.3f} | {x['gflops']:.1f}" if x else "– | –"
        lab = (r or p)["label"]
        lab = ("  " + lab) if lab.startswith("its adjoint") else lab
        ratio = f"{r['time_s'] / p['time_s']:.2f}" if r and p else "–"
        diff = f"{r['max_rel_diff_vs_candle']:.1e}" if r else "–"
        print(f"| {lab} | {(r or p)['gflop']:.1f} | {cellop(r)} | {cellop(c)} | {cellop(p)} | {ratio} | {diff} |")
print(f"\nwall time of the whole bench: {wall} s (of which the runs: {runs} s, the rest set-up and build); raw results: {res}")
EOF
