"""Fused row updates (sdl-generate-row-updates) against the runtime's step.

With `sparse = lazy` and no clipping, an embedding table is stepped by the
compiler-generated row update (one pass: the id's gradient rows summed in
batch order, then the optimizer's lazy step), unless the optimizer says
`fused = false`. docs/optimizers.md documents the two as bit-identical.
For every optimizer and setting below, models/optim/fused_rows.sdl (a
padding row with scale_grad_by_freq, a mean bag with padding, a max bag and
a dense layer) is compiled twice, trained for 10 steps on the same batches
(sizes 1..9, ids drawn from a few rows so that ids repeat, padding ids
included), and then:

* the fused library really holds the generated kernels (one per table)
  and the `fused = false` one none;
* every loss, and the checkpoint files written after the last step
  (parameters, every optimizer state and the step count), are identical
  byte for byte.

(test_optimizers.py and test_embedding.py check the fused step, the
default, against PyTorch.)

Run: /usr/bin/python3 -m unittest -v test_fused_rows  (from tests/e2e)
"""
import os
import subprocess
import tempfile
import unittest

import numpy as np

import oracle

MODEL = "optim/fused_rows"
STEPS = 10
FAST = ("-O", "0")
KERNEL = "sparsec_kernel_FusedRows_rows_"
TABLES = 3

OPTIMIZERS = {
    "sgd_plain": "sgd(lr = 0.2)",
    "sgd_momentum_dampening_wd": "sgd(lr = 0.1, momentum = 0.8, "
                                 "dampening = 0.3, weight_decay = 0.02)",
    "sgd_nesterov": "sgd(lr = 0.05, momentum = 0.9, nesterov = true)",
    "adagrad": "adagrad(lr = 0.05, lr_decay = 0.05, weight_decay = 0.01, "
               "initial_accumulator_value = 0.1, eps = 1e-6)",
    "rowwise_adagrad": "rowwise_adagrad(lr = 0.05, weight_decay = 0.01, "
                       "initial_accumulator_value = 0.1, eps = 1e-6)",
    "rmsprop_centered_momentum": "rmsprop(lr = 0.01, alpha = 0.9, "
                                 "eps = 1e-4, weight_decay = 0.01, "
                                 "momentum = 0.5, centered = true)",
    "rmsprop_plain": "rmsprop(lr = 0.01)",
    "adam_amsgrad_wd": "adam(lr = 0.01, beta1 = 0.8, beta2 = 0.99, "
                       "eps = 1e-4, weight_decay = 0.01, amsgrad = true)",
    "adam_cosine_warmup": "adam(lr = 0.02, warmup = 3, schedule = cosine, "
                          "t_max = 5, eta_min = 0.001)",
    "adamw_amsgrad": "adamw(lr = 0.01, weight_decay = 0.1, amsgrad = true)",
}


def unfused(call):
    return call[:-1] + ", fused = false)"


def local_symbols(so):
    out = subprocess.run(["nm", so], capture_output=True, text=True,
                         check=True).stdout
    return {line.split()[-1] for line in out.splitlines() if line.strip()}


def batch(rng, step):
    """Inputs in declaration order: ids, items, more, y."""
    b = 1 + step % 9
    return [rng.integers(0, 5, b).astype(np.int64),
            rng.integers(0, 4, (b, 4)).astype(np.int64),
            rng.integers(0, 6, (b, 3)).astype(np.int64),
            rng.standard_normal((b, 2)).astype(np.float32)]


class FusedRowsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="sparsec-fused-")
        cls.cache = oracle.CompileCache(cls.tmp.name)
        cls.cache.prefetch([(MODEL, {"optimizer": s, "flags": FAST})
                            for call in OPTIMIZERS.values()
                            for s in (call, unfused(call))])

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def run_case(self, name):
        call = OPTIMIZERS[name]
        fused = self.cache.get(MODEL, optimizer=call, flags=FAST)
        plain = self.cache.get(MODEL, optimizer=unfused(call), flags=FAST)
        kernels = {KERNEL + str(k) for k in range(TABLES)}
        self.assertTrue(kernels <= local_symbols(fused.so),
                        f"{name}: the fused library lacks {sorted(kernels)}")
        self.assertFalse(kernels & local_symbols(plain.so),
                         f"{name}: fused = false still has row kernels")
        libs = [fused.instance(seed=7), plain.instance(seed=7)]
        rng = np.random.default_rng(11)
        for step in range(STEPS):
            data = batch(rng, step)
            losses = [lib.train_step(data) for lib in libs]
            self.assertEqual(losses[0], losses[1], f"{name}: loss of step "
                             f"{step + 1}")
        files = []
        for i, lib in enumerate(libs):
            path = os.path.join(self.tmp.name, f"{name}.{i}.safetensors")
            lib.save(path)
            with open(path, "rb") as f:
                files.append(f.read())
        self.assertEqual(files[0], files[1], f"{name}: the checkpoints "
                         "(parameters and optimizer state) differ")


for _name in OPTIMIZERS:
    setattr(FusedRowsTest, f"test_{_name}",
            lambda self, n=_name: self.run_case(n))

if __name__ == "__main__":
    unittest.main()
