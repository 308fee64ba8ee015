#!/usr/bin/env python3
"""quant_int8.py - f32 fake-quant vs int8 forward of sparse_quantized_linear.

Compiles each workload three times, with `inference = f32` (the
fake-quantized weight in f32, the training forward's kernels), `inference =
int8` (sdl-lower-quantized-linear) and `inference = auto` (the default: the
rule picks per layer), and times `<Model>_forward` of each through ctypes,
alternating the libraries (A, B, C, A, B, C, ...) so that a change of the
machine's load hits all; each repetition times enough calls to take about
0.2 s, and the table gives the minimum per call over the repetitions, in
ms, and f32 / int8, f32 / auto.

Workloads: `mlp` = 784 -> 1024 -> 10 (both layers quantized, relu between,
90% sparse), `mid` = 2048 -> 2048 and `wide` = 4096 -> 4096 (90% sparse);
`n8` = 2048 -> 80 and `n32` = 2048 -> 320 (90% sparse: 8 and 32 stored
weights per input column, around the rule of `inference = auto`);
batches 1, 64, 256, 1024.

Usage (from the repository root, after building sparsec):
  /usr/bin/python3 benchmarks/quant_int8.py [--build build] [--reps 5]
      [--batches 1,64,256,1024] [--only mlp,mid,n8,n32,wide]
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))

from sparsec_ctypes import Model  # noqa: E402

WORKLOADS = {
    "mlp": ("""
model Mlp {
  input  x : f32[B, 784]
  target y : i64[B]
  param fc1 : sparse_quantized_linear(784, 1024, sparsity = 0.9, inference = MODE)
  param fc2 : sparse_quantized_linear(1024, 10, sparsity = 0.9, inference = MODE)
  forward {
    h = relu(fc1(x))
    logits = fc2(h)
  }
  loss = cross_entropy(logits, y)
  optimizer = sgd(lr = 0.1)
}
""", "Mlp", 784, 10),
}


def single_layer(name, fin, fout):
    """A model of one fin -> fout layer, 90% sparse."""
    return (f"""
model {name} {{
  input  x : f32[B, {fin}]
  target y : i64[B]
  param fc : sparse_quantized_linear({fin}, {fout}, sparsity = 0.9, inference = MODE)
  forward {{ logits = fc(x) }}
  loss = cross_entropy(logits, y)
  optimizer = sgd(lr = 0.1)
}}
""", name, fin, fout)


WORKLOADS.update(mid=single_layer("Mid", 2048, 2048),
                 n8=single_layer("N8", 2048, 80),
                 n32=single_layer("N32", 2048, 320),
                 wide=single_layer("Wide", 4096, 4096))


def compile_model(build, tmp, key, mode):
    text, name, _, _ = WORKLOADS[key]
    sdl = os.path.join(tmp, f"{key}_{mode}.sdl")
    with open(sdl, "w") as f:
        f.write(text.replace("MODE", mode))
    so = os.path.join(tmp, f"lib{key}_{mode}.so")
    subprocess.run([os.path.join(build, "bin", "sparsec"), sdl, "-o", so],
                   check=True)
    return Model(so, name, 1)


def per_call(m, x, out, calls):
    t0 = time.perf_counter()
    for _ in range(calls):
        m.forward([x], out)
    return (time.perf_counter() - t0) / calls


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--batches", default="1,64,256,1024")
    ap.add_argument("--only", default="mlp,mid,n8,n32,wide")
    args = ap.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    print(f"load before: {os.getloadavg()}", flush=True)
    print(f"{'workload':8} {'batch':>6} {'f32 ms':>10} {'int8 ms':>10} "
          f"{'auto ms':>10} {'f32/int8':>9} {'f32/auto':>9}", flush=True)
    with tempfile.TemporaryDirectory(prefix="sparsec-q8bench-") as tmp:
        for key in args.only.split(","):
            _, _, fin, fout = WORKLOADS[key]
            libs = {mode: compile_model(args.build, tmp, key, mode)
                    for mode in ("f32", "int8", "auto")}
            rng = np.random.default_rng(0)
            for batch in batches:
                x = rng.standard_normal((batch, fin)).astype(np.float32)
                out = (batch, fout)
                # Calibrate: calls per repetition for ~0.2 s (f32, warm).
                t = per_call(libs["f32"], x, out, 2)
                calls = max(2, int(0.2 / max(t, 1e-6)))
                best = {mode: float("inf") for mode in libs}
                for _ in range(args.reps):
                    for mode, m in libs.items():
                        best[mode] = min(best[mode],
                                         per_call(m, x, out, calls))
                f, q, a = (best[k] * 1e3 for k in ("f32", "int8", "auto"))
                print(f"{key:8} {batch:6d} {f:10.4f} {q:10.4f} {a:10.4f} "
                      f"{f / q:9.2f} {f / a:9.2f}", flush=True)
    print(f"load after: {os.getloadavg()}", flush=True)


if __name__ == "__main__":
    main()
