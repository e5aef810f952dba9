#!/usr/bin/env python3
"""OpenBLAS (numpy's PyPI build) on the GEMM shapes of `cargo bench -p predify-runtime --bench
predictors -- gemm`, for comparing a system BLAS with the `gemm` crate on this machine.

    OPENBLAS_NUM_THREADS=2 target/bench-venv/bin/python scripts/gemm_reference.py
"""
import time

import numpy as np

SHAPES = [(512, 25088, 196), (256, 25088, 784), (512, 196, 25088), (64, 576, 12544), (512, 4608, 196)]

for m, k, n in SHAPES:
    a = np.random.rand(m, k).astype(np.float32)
    b = np.random.rand(k, n).astype(np.float32)
    a @ b  # warm-up
    times = []
    for _ in range(5):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    t = sorted(times)[2]
    print(f"numpy/OpenBLAS {m}x{k}x{n}: {2 * m * k * n / t / 1e9:.1f} GFLOP/s (median of 5)")
