#!/usr/bin/env python3
"""masked_lstm.py - masked_lstm forward and train step vs torch nn.LSTM.

Compiles a one-layer `masked_lstm(I, H, batch_first = true, sparsity = S)`
with an mse loss and sgd, and times `<Model>_forward` and
`<Model>_train_step` through ctypes against torch's `nn.LSTM` (two threads)
doing the same work with its weights multiplied by 0/1 masks of the same
density (forward; forward + backward + SGD step + re-masking). Prints the
minimum per call over the repetitions, in ms, and sparsec / torch. A
measurement, not a test: docs/performance.md quotes it.

Usage (from the repository root, after building sparsec):
  /usr/bin/python3 benchmarks/masked_lstm.py [--build build] [--reps 5]
      [--batch 64] [--steps 32] [--size 256] [--sparsity 0.9]
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))

from sparsec_ctypes import Model  # noqa: E402

MODEL = """
model Lstm {{
  input  x : f32[B, {T}, {I}]
  target y : f32[B, {T}, {H}]
  param rnn : masked_lstm({I}, {H}, batch_first = true, sparsity = {S})
  forward {{
    h = rnn(x)
    return h
  }}
  loss = mse(h, y)
  optimizer = sgd(lr = 0.01)
}}
"""


def best_ms(f, reps):
    f()  # warm
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t0)
    return best * 1e3


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--sparsity", type=float, default=0.9)
    a = ap.parse_args()
    b, t, n, s = a.batch, a.steps, a.size, a.sparsity
    rng = np.random.default_rng(0)
    x = rng.standard_normal((b, t, n)).astype(np.float32)
    y = rng.standard_normal((b, t, n)).astype(np.float32)
    with tempfile.TemporaryDirectory(prefix="sparsec-lstm-") as tmp:
        sdl, so = os.path.join(tmp, "lstm.sdl"), os.path.join(tmp, "liblstm.so")
        with open(sdl, "w") as f:
            f.write(MODEL.format(T=t, I=n, H=n, S=s))
        subprocess.run([os.path.join(a.build, "bin", "sparsec"), sdl, "-o", so],
                       check=True)
        m = Model(so, "Lstm", 1)
        ours = (best_ms(lambda: m.forward([x], (b, t, n)), a.reps),
                best_ms(lambda: m.train_step([x, y]), a.reps))
    torch.set_num_threads(2)
    lstm = torch.nn.LSTM(n, n, batch_first=True)
    masks = [(torch.rand(4 * n, n) >= s).float() for _ in range(2)]
    opt = torch.optim.SGD(lstm.parameters(), lr=0.01)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def remask():
        with torch.no_grad():
            lstm.weight_ih_l0.mul_(masks[0])
            lstm.weight_hh_l0.mul_(masks[1])

    def forward():
        with torch.no_grad():
            lstm(xt)

    def train():
        opt.zero_grad()
        out, _ = lstm(xt)
        torch.nn.functional.mse_loss(out, yt).backward()
        opt.step()
        remask()

    remask()
    theirs = (best_ms(forward, a.reps), best_ms(train, a.reps))
    print(f"masked_lstm {n}x{n}, {s:.0%} sparse, batch {b}, {t} steps, "
          f"load {os.getloadavg()[0]:.1f}")
    for what, o, p in zip(("forward", "train step"), ours, theirs):
        print(f"  {what:10} sparsec {o:9.2f} ms  torch {p:9.2f} ms  "
              f"ratio {o / p:6.2f}")


if __name__ == "__main__":
    main()
