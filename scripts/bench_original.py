#!/usr/bin/env python3
"""The ORIGINAL Predify (the Python package, run as is) timed the way `predify-bench` times predify-rs.

This script only imports and runs the original; none of its code is in this file. Where it is:
`PREDIFY_SRC` (a checkout whose `predify/` package is imported via `sys.path`), else
`../shared/reference/predify-eca7a74` next to this repository's root. It needs torch and toml
(`scripts/bench.sh` installs both into `target/bench-venv`).

Networks, built with the original's generator (`predify.predify(net, config, output)`, which
writes a Python module defining `<name>SeparateHP`; the module is generated into a temporary
directory, by a separate process so that the throw-away backbone it probes does not count in
this process's peak memory) and random weights (PyTorch's default initialisation, nothing
downloaded):

* pvgg16: a VGG16 with torchvision's layout (`features`, `avgpool`, `classifier`; configuration
  "D"), predified from the original's own `examples/PVGG16/pvgg16_config.toml` (PCoderN, i.e.
  gradient scaling, with its five predictors and hyperparameters). That file sets
  `shared_hyperparameters = true`, which would give every pcoder the first one's values; the
  copy handed to the generator sets it to false, as in the original's released PVGG16
  (`examples/PVGG16/pvgg16n_separate.py`) and in `predify-bench` (the cost is the same).
* mnist: the net of `scripts/bench_reference.py` / `predify-bench --model mnist` (the ONNX-zoo
  mnist-8 shape), predified from a small TOML written here: pcoders at `features[1]` and
  `features[4]`, no `predictor` (the generator's default: bilinear upsample where sizes differ +
  ConvTranspose2d k3 s1 p1), hyperparameters 0.3/0.3/0.01, no gradient scaling (PCoder).

Workloads (one JSON object per run on stdout, the fields of `predify-bench --json`, with
`"impl": "predify-original"`; progress on stderr):

    bench_original.py --model pvgg16|mnist --batch N --threads T --timesteps K
        `net(x)` (t = 0, which also computes PCoderN's sqrt(C) on its first call), then K calls
        `net()`; `timestep_s` = the median of those K.
    bench_original.py --workload train --model pvgg16|mnist --batch N --threads T --timesteps K
        the original's feedback-training step (what `predify.utils.training.train_pcoders` does
        per batch; that module is not imported because it needs tensorboard): the network built
        with `build_graph=True`, backbone parameters frozen, `net.train(); net.backbone.eval()`,
        then per step `net.reset(); optimizer.zero_grad(); net(x)`, the sum over pcoders of
        `MSELoss(pcoder_i.prd, pcoder_{i-1}.rep)` (the image for the first), `backward()`,
        `optimizer.step()`; SGD over the predictor parameters only, lr 0.001, weight decay 5e-4
        (the original's `examples/PVGG16/train_config.toml`). K + 1 steps, the first a warm-up;
        `step_s` = the median of the K.
    bench_original.py --workload eval --model mnist [--batches 64,256,500] --threads T [--timesteps 10]
        per batch size: one warm-up and --reps timed runs of `net(x)` + (T - 1) x `net()`;
        image-timesteps per second = batch * T / median run time; the best batch size is reported,
        with the grid.
"""

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_reference import peak_rss_bytes  # the same VmHWM reading as the re-implementation's side

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SRC = REPO.parent / "shared" / "reference" / "predify-eca7a74"
TRAIN_LR, TRAIN_WEIGHT_DECAY = 0.001, 0.0005

# The MNIST-scale net: the same spec file predify-bench compiles in.
MNIST_TOML = (REPO / "templates" / "bench-mnist.toml").read_text()


def log(msg):
    print(f"[bench_original] {msg}", file=sys.stderr, flush=True)


def predify_src():
    """The original's checkout: $PREDIFY_SRC, else the default path; a clear error otherwise."""
    env = os.environ.get("PREDIFY_SRC")
    src = Path(env) if env else DEFAULT_SRC
    if not (src / "predify" / "__init__.py").is_file():
        how = f"PREDIFY_SRC={env!r}" if env else f"the default {DEFAULT_SRC}"
        raise SystemExit(
            f"bench_original.py: no original Predify at {how} (expected predify/__init__.py there); "
            "set PREDIFY_SRC to a checkout of https://github.com/miladmozafari/predify")
    return src.resolve()


def import_predify(src):
    sys.path.insert(0, str(src))
    import predify  # noqa: F401  (the original package)

    return predify


# ---------------------------------------------------------------- backbones


def backbone(model):
    """A fresh backbone with random weights: an nn.Module with `features` (and `classifier`)."""
    import torch
    import torch.nn as nn

    class Net(nn.Module):
        def __init__(self, features, avgpool, classifier):
            super().__init__()
            self.features, self.avgpool, self.classifier = features, avgpool, classifier

        def forward(self, x):
            x = self.avgpool(self.features(x))
            return self.classifier(torch.flatten(x, 1))

    if model == "pvgg16":
        cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
        layers, c = [], 3
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(c, v, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
                c = v
        classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(True), nn.Dropout(),
            nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(),
            nn.Linear(4096, 1000),
        )
        return Net(nn.Sequential(*layers), nn.AdaptiveAvgPool2d((7, 7)), classifier), (3, 224, 224)
    if model == "mnist":
        features = nn.Sequential(
            nn.Conv2d(1, 8, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2, 2),
            nn.Conv2d(8, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 3),
        )
        return Net(features, nn.Identity(), nn.Sequential(nn.Linear(16 * 4 * 4, 10))), (1, 28, 28)
    raise SystemExit(f"unknown model {model!r} (pvgg16, mnist)")


# ---------------------------------------------------------------- generation


def config_for(model, src, tmp):
    """The TOML handed to the original's generator (written into `tmp`) and a note on it."""
    import toml

    if model == "pvgg16":
        orig = src / "examples" / "PVGG16" / "pvgg16_config.toml"
        cfg = toml.load(orig)
        note = f"{orig}"
        if cfg.get("shared_hyperparameters"):
            cfg["shared_hyperparameters"] = False
            note += " with shared_hyperparameters = false"
        text = toml.dumps(cfg)
    else:
        text, note = MNIST_TOML, "templates/bench-mnist.toml (default predictors)"
    path = Path(tmp) / f"{model}_config.toml"
    path.write_text(text)
    return path, note, toml.loads(text)["name"]


def generate(model, config, out):
    """Child process: run the original's generator on a throw-away backbone."""
    import torch

    predify = import_predify(predify_src())
    torch.manual_seed(1)
    net, _ = backbone(model)
    predify.predify(net, str(config), str(out))


def build(model, src, tmp, build_graph):
    """Generate, import and instantiate the predified network; (net, pcoders, input shape, info)."""
    import torch

    config, note, name = config_for(model, src, tmp)
    out = Path(tmp) / f"{name.lower()}.py"
    t = time.perf_counter()
    env = dict(os.environ, PREDIFY_SRC=str(src))
    subprocess.run([sys.executable, __file__, "--generate", model, str(config), str(out)], check=True, env=env)
    generate_s = time.perf_counter() - t
    t = time.perf_counter()
    import_predify(src)
    spec = importlib.util.spec_from_file_location(f"generated_{name.lower()}", out)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    cls = getattr(mod, f"{name}SeparateHP")
    torch.manual_seed(0)
    bb, input_shape = backbone(model)
    net = cls(bb, build_graph=build_graph, random_init=False)  # the original deep-copies the backbone
    del bb
    net.eval()
    pcoders = [getattr(net, f"pcoder{i + 1}") for i in range(net.number_of_pcoders)]
    setup_s = time.perf_counter() - t
    info = {
        "predify_src": str(src),
        "predify_version": (src / "predify" / "VERSION").read_text().strip() if (src / "predify" / "VERSION").is_file() else None,
        "config": note,
        "pcoder_class": type(pcoders[0]).__name__,
        "generate_s": generate_s,
        "setup_s": setup_s,
        "torch_version": torch.__version__,
    }
    return net, pcoders, input_shape, info


# ---------------------------------------------------------------- FLOPs (as predify-bench counts)


def flop_per_sample(net, pcoders, input_shape):
    """Backbone convolutions + predictors + their adjoints, one sample (the count of
    predify-bench and scripts/bench_reference.py; the predictor part reuses the latter's helper)."""
    import torch
    import torch.nn as nn

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_reference import predictor_flop_and_csqrt

    # Layer by layer through `forward` (not `__call__`), so that the pcoders' hooks do not fire.
    backbone_flop = 0
    with torch.no_grad():
        h = torch.zeros(1, *input_shape)
        for m in net.backbone.features:
            h = m.forward(h)
            if isinstance(m, nn.Conv2d):
                k = m.kernel_size
                backbone_flop += 2 * m.in_channels * m.out_channels // m.groups * k[0] * k[1] * h.shape[2] * h.shape[3]
    predictor_flop = sum(predictor_flop_and_csqrt(pc.pmodule, tuple(pc.rep.shape[1:]))[0] for pc in pcoders)
    return backbone_flop + 2 * predictor_flop


# ---------------------------------------------------------------- workloads


def run_timestep(args, src, tmp):
    import torch

    net, pcoders, input_shape, info = build(args.model, src, tmp, build_graph=False)
    tag = f"{args.model} batch {args.batch}, {args.threads} threads"
    log(f"{tag}: generated in {info['generate_s']:.1f} s, built in {info['setup_s']:.1f} s ({info['pcoder_class']}, torch {torch.__version__})")
    x = torch.rand(args.batch, *input_shape)
    times = []
    for step in range(args.timesteps + 1):
        s = time.perf_counter()
        net(x) if step == 0 else net()
        dt = time.perf_counter() - s
        times.append(dt)
        log(f"{tag}: timestep {step}/{args.timesteps}{' (warm-up, feedforward init)' if step == 0 else ''} {dt:.3f} s")
    ts = statistics.median(times[1:])
    flop = args.batch * flop_per_sample(net, pcoders, input_shape)
    print(json.dumps({
        "kind": "model", "workload": "timestep", "impl": "predify-original", "model": args.model,
        "batch": args.batch, "threads": args.threads, "timesteps": args.timesteps,
        "timestep_s": ts, "t0_s": times[0], "timesteps_s": times[1:], "setup_s": info["setup_s"],
        "flop_per_timestep": flop, "gflops": flop / ts / 1e9, "peak_rss_bytes": peak_rss_bytes(),
        "prediction_errors": [float(pc.prediction_error) for pc in pcoders], **info,
    }), flush=True)


def run_train(args, src, tmp):
    import torch
    import torch.nn as nn

    net, pcoders, input_shape, info = build(args.model, src, tmp, build_graph=True)
    for p in net.backbone.parameters():
        p.requires_grad_(False)
    params = [p for pc in pcoders for p in pc.pmodule.parameters()]
    optimizer = torch.optim.SGD(params, lr=TRAIN_LR, weight_decay=TRAIN_WEIGHT_DECAY)
    loss_function = nn.MSELoss()
    net.train()
    net.backbone.eval()
    tag = f"train {args.model} batch {args.batch}, {args.threads} threads"
    log(f"{tag}: generated in {info['generate_s']:.1f} s, built in {info['setup_s']:.1f} s ({info['pcoder_class']})")
    x = torch.rand(args.batch, *input_shape)
    times, losses = [], []
    for step in range(args.timesteps + 1):
        s = time.perf_counter()
        net.reset()
        optimizer.zero_grad()
        net(x)
        parts = [loss_function(pc.prd, x if i == 0 else pcoders[i - 1].rep) for i, pc in enumerate(pcoders)]
        loss = sum(parts)
        loss.backward()
        optimizer.step()
        dt = time.perf_counter() - s
        times.append(dt)
        losses = [float(a.detach()) for a in parts]
        log(f"{tag}: step {step}/{args.timesteps}{' (warm-up)' if step == 0 else ''} {dt:.3f} s (loss {float(loss.detach()):.4f})")
    print(json.dumps({
        "kind": "model", "workload": "train", "impl": "predify-original", "model": args.model,
        "batch": args.batch, "threads": args.threads, "steps": args.timesteps,
        "step_s": statistics.median(times[1:]), "first_step_s": times[0], "steps_s": times[1:],
        "optimizer": f"SGD lr {TRAIN_LR} wd {TRAIN_WEIGHT_DECAY}",
        "peak_rss_bytes": peak_rss_bytes(), "losses": losses, **info,
    }), flush=True)


def run_eval(args, src, tmp):
    import torch

    net, pcoders, input_shape, info = build(args.model, src, tmp, build_graph=False)
    T = args.timesteps
    tag = f"eval {args.model}, {args.threads} threads, T = {T}"
    log(f"{tag}: generated in {info['generate_s']:.1f} s, built in {info['setup_s']:.1f} s ({info['pcoder_class']})")
    grid = [args.batch] if args.batch else args.batches
    rows = []
    for b in grid:
        x = torch.rand(b, *input_shape)
        times = []
        for r in range(args.reps + 1):
            s = time.perf_counter()
            net(x)
            for _ in range(T - 1):
                net()
            dt = time.perf_counter() - s
            if r > 0:
                times.append(dt)
        run_s = statistics.median(times)
        rows.append({"batch": b, "run_s": run_s, "image_timesteps_per_s": b * T / run_s})
        log(f"{tag}: batch {b}: {run_s:.4f} s per run, {b * T / run_s:.0f} image-timesteps/s")
    best = max(rows, key=lambda r: r["image_timesteps_per_s"])
    print(json.dumps({
        "kind": "model", "workload": "eval", "impl": "predify-original", "model": args.model,
        "batch": best["batch"], "threads": args.threads, "timesteps": T, "reps": args.reps,
        "run_s": best["run_s"], "image_timesteps_per_s": best["image_timesteps_per_s"], "grid": rows,
        "peak_rss_bytes": peak_rss_bytes(), **info,
    }), flush=True)


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "--generate":
        generate(sys.argv[2], sys.argv[3], sys.argv[4])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=["pvgg16", "mnist"], required=True)
    ap.add_argument("--workload", choices=["timestep", "train", "eval"], default="timestep")
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--batches", default="64,256,500", help="eval: the batch sizes tried")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--timesteps", type=int, default=None, help="K timed timesteps/steps (3); eval: T (10)")
    ap.add_argument("--reps", type=int, default=3, help="eval: timed runs per batch size")
    ap.add_argument("--json", action="store_true", help="accepted for symmetry with predify-bench (output is always JSON)")
    args = ap.parse_args()
    args.batches = [int(b) for b in args.batches.split(",")]
    if args.timesteps is None:
        args.timesteps = 10 if args.workload == "eval" else 3
    if args.workload != "eval" and args.batch is None:
        ap.error("--batch is needed (except for --workload eval)")
    if min([args.threads, args.timesteps, args.reps, args.batch or 1, *args.batches]) < 1:
        ap.error("--threads, --timesteps, --reps, --batch and --batches must be at least 1")
    src = predify_src()
    import torch

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="bench_original_") as tmp:
        {"timestep": run_timestep, "train": run_train, "eval": run_eval}[args.workload](args, src, tmp)


if __name__ == "__main__":
    main()
