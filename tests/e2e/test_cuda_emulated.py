"""The CUDA target's kernels and the runtime's device path, emulated on the
host, against the CPU.

Each model is compiled with `--target=cpu,cuda --cuda-emulate` (the CUDA
functions as host loops, sparsec-gpu-emulate) and created twice from one
seed: `<Model>_create_on(seed, "cpu")` and `(seed, "cuda")`. Both train on
the same random batches; the first step's loss and gradients must agree to
1e-5 (relative to the largest value, as the GPU suite requires), every
later loss and the final
parameters and forward output to 1e-4 (the two trajectories drift apart by
rounding: the CPU kernels sum in other orders). The models cover every loss
the CUDA target lowers (cross-entropy, MSE, BCE with logits), CSR and dense
layers (a CSR layer inside the network, so its input gradient is needed),
relu/add, and the per-value optimizers with their options (momentum,
nesterov, weight decay, centered RMSprop, amsgrad, AdamW, Adagrad) and
gradient clipping.
docs/cuda.md, "The emulator".
"""
import tempfile
import unittest

import numpy as np

import oracle

NET = """
model Net {{
  input x : f32[B, 20]
  target y : {target}
  param fc1 : linear(20, 16)
  param fc2 : sparse_linear(16, 12, sparsity = 0.7)
  param fc3 : linear(12, {out})
  forward {{
    h = relu(fc1(x))
    g = fc2(h)
    s = g + relu(g)
    out = fc3(s)
    return out
  }}
  loss = {loss}(out, y)
  optimizer = {optimizer}
}}
"""

CASES = [
    # (name, loss, target, outputs, optimizer)
    ("ce_sgd", "cross_entropy", "i64[B]", 7,
     "sgd(lr = 0.05, momentum = 0.9, nesterov = true, weight_decay = 0.001)"),
    ("ce_adam", "cross_entropy", "i64[B]", 7,
     "adam(lr = 0.01, amsgrad = true, weight_decay = 0.01)"),
    ("ce_adamw_clip", "cross_entropy", "i64[B]", 7,
     "adamw(lr = 0.01, clip_grad_norm = 0.05)"),
    ("mse_rmsprop", "mse", "f32[B, 3]", 3,
     "rmsprop(lr = 0.001, centered = true, momentum = 0.5)"),
    ("bce_adagrad", "bce_with_logits", "f32[B, 3]", 3, "adagrad(lr = 0.05)"),
]

STEPS, BATCH = 8, 33


class CudaEmulatedTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="sparsec-cuda-emu-")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def batch(self, rng, target, out):
        x = rng.standard_normal((BATCH, 20)).astype(np.float32)
        if target.startswith("i64"):
            y = rng.integers(0, out, BATCH).astype(np.int64)
        elif out == 3 and "bce" in self.current:
            y = (rng.random((BATCH, out)) < 0.5).astype(np.float32)
        else:
            y = rng.standard_normal((BATCH, out)).astype(np.float32)
        return x, y

    @staticmethod
    def rel(a, b):
        """max |a - b| relative to max |b| (a scale error of 1e-4 in any
        gradient shows, however small its values)."""
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))

    def test_models_train_alike_on_both_devices(self):
        for name, loss, target, out, opt in CASES:
            self.current = name
            with self.subTest(model=name):
                text = NET.format(loss=loss, target=target, out=out,
                                  optimizer=opt)
                lib = oracle.compile_text(
                    text, f"{self.tmp.name}/{name}", name,
                    flags=("--target=cpu,cuda", "--cuda-emulate"))
                cpu = lib.instance(seed=11, device="cpu")
                dev = lib.instance(seed=11, device="cuda")
                self.assertEqual(cpu.device(), "cpu")
                self.assertEqual(dev.device(), "cuda (emulated on the host)")
                names = [p["name"] for p in cpu.param_info()]
                rng = np.random.default_rng(5)
                for step in range(STEPS):
                    x, y = self.batch(rng, target, out)
                    lc = cpu.train_step([x, y])
                    ld = dev.train_step([x, y])
                    tol = 1e-5 if step == 0 else 1e-4
                    self.assertLessEqual(self.rel(ld, lc), tol,
                                         f"loss of step {step + 1}")
                    if step == 0:
                        for p in names:
                            self.assertLessEqual(
                                self.rel(dev.grad(p), cpu.grad(p)), 1e-5,
                                f"first gradient of {p}")
                for p in names:
                    self.assertLessEqual(
                        self.rel(dev.values(p), cpu.values(p)), 1e-4, p)
                self.assertEqual(dev.step_count(), STEPS)
                x, _ = self.batch(rng, target, out)
                oc = cpu.forward([x], (BATCH, out))
                od = dev.forward([x], (BATCH, out))
                self.assertLessEqual(self.rel(od, oc), 1e-4, "forward")
                cpu.close()
                dev.close()


if __name__ == "__main__":
    unittest.main()
