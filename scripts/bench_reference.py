#!/usr/bin/env python3
"""PyTorch reference for `predify-bench`: the same networks and the same dynamics.

Predify's dynamics (shared/fixtures/FORMAT.md), written out with torch.nn layers instead of
Predify's forward hooks, so that nothing but the computation is timed:

    rep_i(t) = ffm_i*ff_i(t) + fbm_i*prd_{i+1}(t-1) + (1-ffm_i-fbm_i)*rep_i(t-1) - erm_i*S_i*grd_i(t-1)
    (last pcoder: no feedback term, memory 1-ffm)
    prd_i(t) = pmodule_i(rep_i(t));  e_i(t) = mse(prd_i(t), target_i(t))
    grd_i(t) = d e_i(t) / d rep_i(t)   (torch.autograd.grad w.r.t. the representation only,
                                        as Predify's PCoder does; no weight gradients are formed)

The backbone runs under torch.no_grad(); the representation replaces the hooked layer's output
for the rest of the pass. Networks (random weights, PyTorch's default initialisation):

* pvgg16: VGG16 `features` + classifier (configuration "D", 3x224x224; the adaptive average
  pool is the identity at 224x224 and dropout is off in eval, so both are left out, as in the
  Rust bench), pcoders at features[3, 8, 15, 22, 29] with Predify's PVGG16 predictors and
  hyperparameters, gradient scaling on.
* mnist: the ONNX-zoo mnist-8 shape with two pcoders after the ReLUs and Predify's default
  predictors (bilinear upsample where sizes differ + ConvTranspose2d k3 s1 p1).

Usage (one JSON object per run on stdout, progress on stderr):

    bench_reference.py --model pvgg16|mnist --batch N --threads T --timesteps K
    bench_reference.py --ops --threads T

A run is K+1 passes: t = 0 (feedforward initialisation, also the warm-up) and K timesteps
t >= 1; `timestep_s` is the median of those K. `peak_rss_bytes` is VmHWM of this process.
"""

import argparse
import json
import math
import statistics
import sys
import time


def peak_rss_bytes():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def log(msg):
    print(f"[bench_reference] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- networks


def build(model):
    import torch.nn as nn

    if model == "pvgg16":
        cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
        layers, c, hw, backbone_flop = [], 3, 224, 0
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
                hw //= 2
            else:
                layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU(inplace=False)]
                backbone_flop += 2 * v * c * 9 * hw * hw
                c = v
        features = nn.Sequential(*layers)
        classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(), nn.Dropout(),
            nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(),
            nn.Linear(4096, 1000),
        )

        def ct(cin, cout, k, s, p, relu):
            m = nn.ConvTranspose2d(cin, cout, k, stride=s, padding=p)
            return nn.Sequential(m, nn.ReLU(inplace=True)) if relu else m

        # (attach index, predictor, ffm, fbm, erm) as in Predify's PVGG16.
        pcoders = [
            (3, ct(64, 3, 5, 1, 2, False), 0.2, 0.05, 0.01),
            (8, ct(128, 64, 10, 2, 4, True), 0.4, 0.1, 0.01),
            (15, ct(256, 128, 14, 2, 6, True), 0.4, 0.1, 0.01),
            (22, ct(512, 256, 14, 2, 6, True), 0.5, 0.1, 0.01),
            (29, ct(512, 512, 14, 2, 6, True), 0.6, 0.0, 0.01),
        ]
        input_shape, gradient_scaling = (3, 224, 224), True
    elif model == "mnist":
        features = nn.Sequential(
            nn.Conv2d(1, 8, 5, padding=2), nn.ReLU(inplace=False), nn.MaxPool2d(2, 2),
            nn.Conv2d(8, 16, 5, padding=2), nn.ReLU(inplace=False), nn.MaxPool2d(3, 3),
        )
        classifier = nn.Sequential(nn.Linear(16 * 4 * 4, 10))
        backbone_flop = 2 * 8 * 1 * 25 * 28 * 28 + 2 * 16 * 8 * 25 * 14 * 14
        # Predify's default predictors: [8,28,28] -> [1,28,28]; [16,14,14] -> [8,28,28].
        p1 = nn.Sequential(nn.ConvTranspose2d(8, 1, 3, stride=1, padding=1))
        p2 = nn.Sequential(
            nn.Upsample(scale_factor=(2.0, 2.0), mode="bilinear", align_corners=False),
            nn.ConvTranspose2d(16, 8, 3, stride=1, padding=1),
        )
        pcoders = [(1, p1, 0.3, 0.3, 0.01), (4, p2, 0.3, 0.3, 0.01)]
        input_shape, gradient_scaling = (1, 28, 28), False
    else:
        raise SystemExit(f"unknown model {model!r} (pvgg16, mnist)")
    return features.eval(), classifier.eval(), pcoders, input_shape, gradient_scaling, backbone_flop


def predictor_flop_and_csqrt(pmodule, ff_shape):
    """FLOPs of one forward on one sample (2*Cin*Cout/g*k^2 per position of the small grid, the
    same count as the Rust bench) and sqrt(C) from the predictor's structure (output footprint
    of one interior cell; the timing does not depend on its value)."""
    import torch.nn as nn

    mods = list(pmodule) if isinstance(pmodule, nn.Sequential) else [pmodule]
    hw = list(ff_shape[1:])
    flop, c, up = 0, 1.0, 1.0
    for m in mods:
        if isinstance(m, nn.Upsample):
            sf = m.scale_factor if isinstance(m.scale_factor, tuple) else (m.scale_factor,) * 2
            hw = [int(math.floor(h * f)) for h, f in zip(hw, sf)]
            up *= sf[0] * sf[1]
        elif isinstance(m, nn.ConvTranspose2d):
            k, s, p = m.kernel_size, m.stride, m.padding
            flop += 2 * m.in_channels * m.out_channels // m.groups * k[0] * k[1] * hw[0] * hw[1]
            hw = [(h - 1) * s[a] - 2 * p[a] + (k[a] - 1) + m.output_padding[a] + 1 for a, h in enumerate(hw)]
            c = m.out_channels * k[0] * k[1] * up
    return flop, math.sqrt(c)


class PCoder:
    def __init__(self, pmodule, ffm, fbm, erm, c_sqrt, last):
        self.pmodule, self.ffm, self.fbm, self.erm = pmodule, ffm, fbm, erm
        self.c_sqrt, self.last = c_sqrt, last
        self.rep = self.prd = self.grd = None
        self.error = float("nan")

    def fire(self, ff, target, feedback):
        import torch
        import torch.nn.functional as F

        if self.rep is None:
            rep = ff
        else:
            scale = self.erm * (self.prd.numel() / self.c_sqrt if self.c_sqrt else 1.0)
            if self.last:
                rep = self.ffm * ff + (1.0 - self.ffm) * self.rep - scale * self.grd
            else:
                rep = self.ffm * ff + self.fbm * feedback + (1.0 - self.ffm - self.fbm) * self.rep - scale * self.grd
        rep = rep.detach().requires_grad_(True)
        with torch.enable_grad():
            prd = self.pmodule(rep)
            err = F.mse_loss(prd, target)
            (grd,) = torch.autograd.grad(err, rep)
        self.rep, self.prd, self.grd = rep.detach(), prd.detach(), grd
        self.error = float(err.detach())
        return self.rep


def run_model(args):
    import torch

    torch.manual_seed(0)
    t = time.perf_counter()
    features, classifier, spec, input_shape, gradient_scaling, backbone_flop = build(args.model)
    # Per-sample shapes at the attach points (one zero sample).
    attach = [a for a, *_ in spec]
    ff_shapes, h = [], torch.zeros(1, *input_shape)
    with torch.no_grad():
        for j, layer in enumerate(features):
            h = layer(h)
            if j in attach:
                ff_shapes.append(tuple(h.shape[1:]))
    pcoders, predictor_flop = [], 0
    for i, (a, pm, ffm, fbm, erm) in enumerate(spec):
        f, cs = predictor_flop_and_csqrt(pm, ff_shapes[i])
        predictor_flop += f
        pcoders.append(PCoder(pm, ffm, fbm, erm, cs if gradient_scaling else None, i + 1 == len(spec)))
    by_layer = {a: i for i, a in enumerate(attach)}
    setup_s = time.perf_counter() - t
    tag = f"{args.model} batch {args.batch}, {args.threads} threads"
    log(f"{tag}: built in {setup_s:.1f} s (torch {torch.__version__})")

    x = torch.rand(args.batch, *input_shape)

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
    for step in range(args.timesteps + 1):
        s = time.perf_counter()
        one_pass()
        dt = time.perf_counter() - s
        times.append(dt)
        log(f"{tag}: timestep {step}/{args.timesteps}{' (warm-up, feedforward init)' if step == 0 else ''} {dt:.3f} s")
    ts = statistics.median(times[1:])
    flop = args.batch * (backbone_flop + 2 * predictor_flop)
    print(json.dumps({
        "kind": "model", "impl": "pytorch", "model": args.model, "batch": args.batch,
        "threads": args.threads, "timesteps": args.timesteps, "timestep_s": ts, "t0_s": times[0],
        "timesteps_s": times[1:], "setup_s": setup_s, "flop_per_timestep": flop,
        "gflops": flop / ts / 1e9, "peak_rss_bytes": peak_rss_bytes(),
        "prediction_errors": [p.error for p in pcoders], "torch_version": torch.__version__,
    }), flush=True)


# ---------------------------------------------------------------- op level

# (key, label, cin, cout, k, stride, pad, transposed, adjoint, input [N, C, H, W]): the rows of
# the Rust bench's op table (src/bin/predify_bench/ops.rs).
OPS = [
    ("conv2d_k3", "conv2d 64→64 3×3 p1, [4,64,112,112]", 64, 64, 3, 1, 1, False, False, (4, 64, 112, 112)),
    ("convT_k10s2", "conv_transpose2d 128→64 k10 s2 p4, [4,128,112,112]→[4,64,224,224]", 128, 64, 10, 2, 4, True, False, (4, 128, 112, 112)),
    ("convT_k10s2_adjoint", "its adjoint (grad w.r.t. the input)", 128, 64, 10, 2, 4, True, True, (4, 128, 112, 112)),
    ("convT_k3", "conv_transpose2d 128→64 k3 s1 p1, [4,128,224,224]", 128, 64, 3, 1, 1, True, False, (4, 128, 224, 224)),
    ("convT_k3_adjoint", "its adjoint (grad w.r.t. the input)", 128, 64, 3, 1, 1, True, True, (4, 128, 224, 224)),
]


def time_op(f):
    """One call; under 5 s it was a warm-up and 5 (under 1 s) or 3 more are timed (median)."""
    s = time.perf_counter()
    f()
    first = time.perf_counter() - s
    if first >= 5.0:
        return first, 1
    reps = 5 if first < 1.0 else 3
    ts = []
    for _ in range(reps):
        s = time.perf_counter()
        f()
        ts.append(time.perf_counter() - s)
    return statistics.median(ts), reps


def run_ops(args):
    import torch
    import torch.nn.functional as F

    torch.manual_seed(0)
    with torch.no_grad():
        for key, label, cin, cout, k, s, p, transposed, adjoint, (n, _, h, w) in OPS:
            log(f"op {key} ...")
            wshape = (cin, cout, k, k) if transposed else (cout, cin, k, k)
            wt = torch.rand(wshape) * 0.1 - 0.05
            if transposed:
                ho, wo = (h - 1) * s + k - 2 * p, (w - 1) * s + k - 2 * p
                small = h * w
            else:
                ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
                small = ho * wo
            if adjoint:
                g = torch.rand(n, cout, ho, wo)
                f = lambda: F.conv2d(g, wt, stride=s, padding=p)
            else:
                x = torch.rand(n, cin, h, w)
                f = (lambda: F.conv_transpose2d(x, wt, stride=s, padding=p)) if transposed else (lambda: F.conv2d(x, wt, stride=s, padding=p))
            sec, reps = time_op(f)
            gflop = 2 * n * cin * cout * k * k * small / 1e9
            print(json.dumps({
                "kind": "op", "op": key, "label": label, "impl": "pytorch", "threads": args.threads,
                "time_s": sec, "reps": reps, "gflop": gflop, "gflops": gflop / sec,
                "torch_version": torch.__version__,
            }, ensure_ascii=False), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=["pvgg16", "mnist"])
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--timesteps", type=int, default=3)
    ap.add_argument("--ops", action="store_true", help="time the op-level table instead of a model")
    ap.add_argument("--json", action="store_true", help="accepted for symmetry with predify-bench (output is always JSON)")
    args = ap.parse_args()
    if args.threads < 1 or args.timesteps < 1 or args.batch < 1:
        ap.error("--threads, --timesteps and --batch must be at least 1")
    import torch

    torch.set_num_threads(args.threads)
    if args.ops:
        run_ops(args)
    elif args.model:
        run_model(args)
    else:
        ap.error("give --model or --ops")


if __name__ == "__main__":
    main()
