"""K-winners (nupic.torch KWinners semantics) through the generated library.

A reference written here in numpy/torch (float32) follows nupic.torch:
boost = exp((k / n - duty) * boost_strength), the k largest of x * boost
win (ties: the lower index, a stable order), the output keeps x at the
winners and 0 elsewhere, the gradient flows through the winners only, and
after each training batch of size B

    period = min(duty_cycle_period, samples so far)
    duty   = (duty * (period - B) + #(output > 0 over the batch)) / period

Training uses k, inference (forward) k_inference = int(k * factor) with
the density k_inference / n in the boost. Checked after every one of 12
SGD steps on batches of 1..64 (larger than the period of 50): the loss,
every gradient (torch autograd through the reference mask, rel err <=
1e-5), the duty cycles and the count, the number of winners per sample;
then a forward with k_inference. The ties model checks that exactly k
units win and that they are the lower indices among equal values.

Run: /usr/bin/python3 -m unittest -v test_kwinners  (from tests/e2e)
"""
import os
import subprocess
import tempfile
import unittest

import numpy as np
import torch

import oracle
from oracle import check_close
from sparsec_ctypes import Model

KW_DIR = os.path.join(oracle.MODELS_DIR, "kwinners")


def compile_model(stem, outdir):
    so = os.path.join(outdir, f"lib{stem}.so")
    subprocess.run([oracle.sparsec_binary(), os.path.join(KW_DIR, stem + ".sdl"),
                    "-o", so], check=True)
    return so


def winners(x, duty, k, strength):
    """Reference mask [B, n]: the k largest boosted values, ties to the
    lower index."""
    n = x.shape[1]
    density = np.float32(k / n)
    boost = np.exp((density - duty[:n]) * np.float32(strength)).astype(np.float32)
    boosted = (x * boost).astype(np.float32)
    order = np.argsort(-boosted, axis=1, kind="stable")[:, :k]
    mask = np.zeros_like(x, dtype=bool)
    np.put_along_axis(mask, order, True, axis=1)
    return mask


def duty_update(duty, y, period):
    n, b = len(duty) - 1, y.shape[0]
    count = np.float32(min(period, duty[n] + b))
    active = (y > 0).sum(axis=0).astype(np.float32)
    out = np.empty_like(duty)
    out[:n] = (duty[:n] * (count - np.float32(b)) + active) / count
    out[n] = count
    return out


class KWinnersTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="sparsec-kw-")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_mlp_forward_backward_duty_against_reference(self):
        m = Model(compile_model("kw_mlp", self.tmp.name), "KwMlp", 3)
        k, k_inf, strength, period, lr = 5, 7, 1.5, 50, 0.05
        rng = np.random.default_rng(1)
        for step, b in enumerate((1, 7, 16, 40, 64, 3, 64, 9, 33, 64, 5, 20)):
            x = rng.standard_normal((b, 12)).astype(np.float32)
            y = rng.standard_normal((b, 3)).astype(np.float32)
            p = {n: torch.tensor(m.values(n)) for n in
                 ("fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias")}
            p["fc1.weight"] = p["fc1.weight"].reshape(20, 12)
            p["fc2.weight"] = p["fc2.weight"].reshape(3, 20)
            for t in p.values():
                t.requires_grad_(True)
            duty = m.values("kw.duty_cycle").copy()
            h = torch.tensor(x) @ p["fc1.weight"].T + p["fc1.bias"]
            mask = winners(h.detach().numpy(), duty, k, strength)
            self.assertTrue((mask.sum(axis=1) == k).all())
            hk = h * torch.tensor(mask, dtype=torch.float32)
            out = hk @ p["fc2.weight"].T + p["fc2.bias"]
            loss = torch.nn.functional.mse_loss(out, torch.tensor(y))
            loss.backward()
            got = m.train_step([x, y])
            what = f"step {step + 1} (batch {b})"
            check_close(self, got, loss.item(), f"{what}: loss")
            for n, t in p.items():
                check_close(self, m.grad(n), t.grad.numpy().reshape(-1),
                            f"{what}: gradient of {n}")
            want = duty_update(duty, hk.detach().numpy(), period)
            np.testing.assert_allclose(m.values("kw.duty_cycle"), want,
                                       rtol=1e-6, atol=1e-7, err_msg=what)
            # The optimizer does not touch the buffer: SGD on the others.
            check_close(self, m.values("fc2.bias"),
                        (p["fc2.bias"] - lr * p["fc2.bias"].grad).detach().numpy(),
                        f"{what}: SGD step")
        # Inference: k_inference winners, its density in the boost.
        x = rng.standard_normal((8, 12)).astype(np.float32)
        w1 = m.values("fc1.weight").reshape(20, 12)
        h = x @ w1.T + m.values("fc1.bias")
        mask = winners(h, m.values("kw.duty_cycle"), k_inf, strength)
        want = (h * mask) @ m.values("fc2.weight").reshape(3, 20).T + \
            m.values("fc2.bias")
        check_close(self, m.forward([x], (8, 3)), want, "forward (k_inference)")

    def test_ties_go_to_the_lower_index(self):
        m = Model(compile_model("kw_ties", self.tmp.name), "KwTies", 1)
        k, k_inf = 3, 6
        x = np.array([[1, 2, 2, 2, 2, 0, 0, 0, 0, 0],       # 2s at 1..4
                      [0, 0, 0, 0, 0, 0, 0, 0, 0, 0],       # all equal
                      [5, -1, 5, 5, 5, 4, 4, 4, 4, 4],
                      [-3, -2, -1, -1, -4, -5, -6, -7, -8, -1]], np.float32)
        want = np.zeros_like(x, dtype=bool)
        for i, cols in enumerate(([1, 2, 3], [0, 1, 2], [0, 2, 3], [2, 3, 9])):
            want[i, cols] = True
        self.assertTrue((winners(x, np.zeros(11, np.float32), k, 0) == want).all())
        w = m.values("fc.weight").reshape(2, 10)
        out = m.forward([x], (4, 2))
        mask_inf = winners(x, np.zeros(11, np.float32), k_inf, 0)
        check_close(self, out, (x * mask_inf) @ w.T + m.values("fc.bias"),
                    "forward with k_inference ties")
        y = np.zeros((4, 2), np.float32)
        m.train_step([x, y])
        # The duty update saw exactly the training winners (> 0 ones).
        duty = m.values("kw.duty_cycle")
        active = ((x * want) > 0).sum(axis=0) / 4.0
        np.testing.assert_allclose(duty[:10], active, rtol=1e-6)
        self.assertEqual(duty[10], 4.0)


if __name__ == "__main__":
    unittest.main()
