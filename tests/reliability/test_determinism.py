"""Determinism: same seed + same data -> bit-identical state.

* Two instances created with the same seed and trained on the same batches
  (varying batch sizes, repeated ids) have identical digests (parameters,
  CSR structure, optimizer state, step, lr) and bit-identical losses after
  every step; a different seed gives different parameters.
* A fresh interpreter process (another address space, another library
  load) computes the same digest after N steps.
* Save after N steps, load into an instance of another seed, train M more:
  identical to N + M uninterrupted steps (the whole optimizer state,
  including catch-up rows, round-trips).

Run: /usr/bin/python3 -m unittest -v test_determinism  (from tests/reliability)
"""
import os
import subprocess
import sys
import unittest

import numpy as np

import reliability_util as U

MODELS = ["rel_sgd", "rel_adam", "rel_maxnorm"]
SIZES = [1, 5, 3, 8, 2, 7, 4, 6, 1, 9, 3, 5]

SCRIPT = r"""
import sys
sys.path.insert(0, {here!r})
import reliability_util as U
lib = U.describe({stem!r}, {so!r}).lib()
h = lib.create({seed})
for b, data in U.batches(lib, {sizes!r}, {data_seed}):
    rc, loss = lib.train_step(h, b, data)
    assert rc == U.OK, lib.error()
print(lib.digest(h))
"""


def child_env():
    """The environment for a Python child that loads model libraries: when
    this interpreter runs with a preloaded ASan runtime (.ci/sanitize.sh),
    the child needs it too."""
    env = dict(os.environ)
    with open("/proc/self/maps") as f:
        asan = sorted({line.split()[-1] for line in f
                       if "libclang_rt.asan" in line})
    if asan:
        env["LD_PRELOAD"] = asan[0]
        env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":detect_leaks=0"
    return env


class DeterminismTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        U.workdir()
        U.scratchdir()
        cls.libs = {m: U.compile_model(m).lib() for m in MODELS}

    def train(self, lib, h, batches):
        losses, digests = [], []
        for b, data in batches:
            rc, loss = lib.train_step(h, b, data)
            self.assertEqual(rc, U.OK, lib.error())
            losses.append(np.float32(loss).tobytes())
            digests.append(lib.digest(h))
        return losses, digests

    def test_same_seed_same_data_same_bits(self):
        for name, lib in self.libs.items():
            with self.subTest(model=name):
                a, b = lib.create(2024), lib.create(2024)
                self.assertEqual(lib.digest(a), lib.digest(b))
                la, da = self.train(lib, a, U.batches(lib, SIZES, 5))
                lb, db = self.train(lib, b, U.batches(lib, SIZES, 5))
                self.assertEqual(la, lb, "losses differ")
                for step, (x, y) in enumerate(zip(da, db)):
                    self.assertEqual(x, y, f"states differ after step {step + 1}")
                c = lib.create(2025)
                self.assertNotEqual(lib.digest(c), lib.digest(lib.create(2024)))

    def test_fresh_process_same_bits(self):
        here = os.path.dirname(os.path.abspath(__file__))
        for name, lib in self.libs.items():
            with self.subTest(model=name):
                h = lib.create(77)
                self.train(lib, h, U.batches(lib, SIZES[:6], 8))
                want = lib.digest(h)
                script = SCRIPT.format(here=here, stem=name, so=lib.c.so, seed=77, data_seed=8,
                                       sizes=SIZES[:6])
                proc = subprocess.run([sys.executable, "-c", script],
                                      capture_output=True, text=True,
                                      env=child_env(), timeout=300)
                self.assertEqual(proc.returncode, 0, proc.stderr)
                self.assertEqual(proc.stdout.strip(), want)

    def test_save_load_resume_same_bits(self):
        for name, lib in self.libs.items():
            with self.subTest(model=name):
                data = U.batches(lib, SIZES, 9)
                straight = lib.create(31)
                _, want = self.train(lib, straight, data)
                first = lib.create(31)
                self.train(lib, first, data[:5])
                path = os.path.join(U.scratchdir(), f"resume-{name}.st")
                self.assertEqual(lib.fn("save")(first, path.encode()), U.OK)
                resumed = lib.create(4242)
                self.assertEqual(lib.fn("load")(resumed, path.encode()), U.OK,
                                 lib.error())
                self.assertEqual(lib.digest(resumed), want[4])
                for step, (b, batch) in enumerate(data[5:]):
                    rc, _ = lib.train_step(resumed, b, batch)
                    self.assertEqual(rc, U.OK, lib.error())
                    self.assertEqual(lib.digest(resumed), want[5 + step],
                                     f"after resumed step {step + 1}")

if __name__ == "__main__":
    unittest.main()
