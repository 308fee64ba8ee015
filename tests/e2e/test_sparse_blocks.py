"""The register-tiled CSR kernels (sdl-lower-sparse-linear) at batch sizes
around their 64-wide batch blocks, and their threading.

* forward output, loss and every gradient of the CSR models of models/
  against PyTorch at batch sizes 1, 63, 64, 65 and 257 (a padded last block,
  exact blocks, one lane over), with the same tolerance as test_parity;
* threads: the kernels give every output element to one iteration in a fixed
  order, so forward outputs, losses and gradients are bit-identical with
  SPARSEC_NUM_THREADS=1 and =2 (and from run to run).

Run: /usr/bin/python3 -m unittest -v test_sparse_blocks  (from tests/e2e)
"""
import json
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np

import oracle
from oracle import check_close
import test_parity

BATCHES = (1, 63, 64, 65, 257)
MODELS = ("sparse_half", "sparse_mix", "sparse_99", "deep")

# Run in a child process (the thread pool reads SPARSEC_NUM_THREADS once):
# prints a JSON list of hex digests of every forward output, loss and
# gradient of `model` at BATCHES.
CHILD = r"""
import hashlib, json, sys
import numpy as np
import oracle
compiled = oracle.CompileCache(sys.argv[1]).get(sys.argv[2])
spec = compiled.spec
out_shape = oracle.value_shapes(spec)[spec.output]
m = compiled.instance(seed=5)
rng = np.random.default_rng(7)
lp = oracle.LibParams(m, spec)
digests = []
for batch in %s:
    data = oracle.random_batch(spec, batch, rng)
    out = m.forward(oracle.lib_inputs(spec, data, False), (batch,) + out_shape)
    digests.append(hashlib.sha256(np.ascontiguousarray(out).tobytes()).hexdigest())
    loss = m.train_step(oracle.lib_inputs(spec, data))
    digests.append(np.float32(loss).tobytes().hex())
    for name in lp.names():
        digests.append(hashlib.sha256(m.grad(name).tobytes()).hexdigest())
print(json.dumps(digests))
""" % (BATCHES,)


class SparseBlocksTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="sparsec-blocks-")
        cls.cache = oracle.CompileCache(cls.tmp.name)
        cls.cache.prefetch([(m, {}) for m in MODELS])

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_batches_around_the_block_width(self):
        for model in MODELS:
            compiled = self.cache.get(model)
            spec = compiled.spec
            out_shape = oracle.value_shapes(spec)[spec.output]
            m = compiled.instance(seed=1)
            rng = np.random.default_rng(200)
            for batch in BATCHES:
                with self.subTest(model=model, batch=batch):
                    lp = oracle.LibParams(m, spec)
                    tp = lp.torch_params()
                    data = oracle.random_batch(spec, batch, rng)
                    env, lookups = oracle.torch_forward(spec, tp, data)
                    loss = oracle.torch_loss(spec, env, data)
                    loss.backward()
                    out = m.forward(oracle.lib_inputs(spec, data, False),
                                    (batch,) + out_shape)
                    what = f"{model} B={batch}"
                    check_close(self, out, env[spec.output].detach(),
                                what + " forward output")
                    lib_loss = m.train_step(oracle.lib_inputs(spec, data))
                    check_close(self, lib_loss, loss.item(), what + " loss")
                    for name in lp.names():
                        # (test_parity's comparison, CSR gradients at the
                        # pattern's positions)
                        test_parity.ParityTest.check_grad(
                            self, lp, name, m.grad(name), tp[name].grad,
                            lookups, f"{what} grad {name}")

    def digests(self, model, threads):
        env = dict(os.environ, SPARSEC_NUM_THREADS=str(threads))
        here = os.path.dirname(os.path.abspath(__file__))
        proc = subprocess.run(
            [oracle.python_executable(), "-c", CHILD, self.tmp.name, model], env=env,
            cwd=here, capture_output=True, text=True, check=False)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        return json.loads(proc.stdout.strip().splitlines()[-1])

    def test_one_and_two_threads_are_bit_identical(self):
        for model in ("sparse_half", "sparse_mix"):
            with self.subTest(model=model):
                one = self.digests(model, 1)
                self.assertEqual(one, self.digests(model, 1), "1 thread, rerun")
                self.assertEqual(one, self.digests(model, 2), "2 threads")


if __name__ == "__main__":
    unittest.main()
