"""K-winners (nupic.torch KWinners / KWinners2d semantics) through the
generated library.

A reference written here in numpy/torch (float32) follows nupic.torch:
boost = exp((k / units - duty[channel]) * boost_strength), the k largest of
x * boost win (ties: the lower index, a stable order), the output keeps x at
the winners and 0 elsewhere, the gradient flows through the winners only,
and after each training batch of size B

    period = min(duty_cycle_period, samples so far)
    duty   = (duty * (period - B) + activity) / period

with activity = #(output > 0 over the batch) per unit (KWinners) or per
channel over the batch and the locations / (H * W) (KWinners2d). Training
uses k, inference (forward) k_inference with its density in the boost.
With boost_strength_factor f and boost_decay_period p the strength of
train step t (0-based) and of a forward after t steps is
boost_strength * f^floor(t / p) (nupic's update_boost_strength every p
steps); the buffer's last value counts the steps and is checkpointed.

Models: 1-D (kw_mlp), 1-D with decay (kw_decay), global and local 2-D
(kw2d_global with decay, kw2d_local) between dense layers through
unflatten/flatten. Checked after every one of 12 SGD steps on batches of
1..64 (larger than the period): the loss, every gradient (torch autograd
through the reference mask, rel err <= 1e-5), the duty cycles, the counts,
the number of winners per sample (or location); then a forward with
k_inference. The ties model checks that exactly k units win and that they
are the lower indices among equal values.

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


def boost_strength(strength, factor, decay_period, steps):
    """nupic's boost_strength after update_boost_strength() was called once
    every decay_period train steps (float64, as nupic; float32 when used)."""
    if decay_period:
        for _ in range(steps // decay_period):
            strength *= factor
    return np.float32(strength)


def winners(x, duty, k, strength, local=False):
    """Reference mask of x ([B, n] or [B, C, H, W]): per sample (or, with
    local, per location among the channels) the k largest of x * boost with
    boost = exp((k / units - duty[channel]) * strength), ties to the lower
    (flat) index: a stable order."""
    c = x.shape[1]
    units = c if local or x.ndim == 2 else int(np.prod(x.shape[1:]))
    density = np.float32(k / units)
    boost = np.exp((density - duty[:c]) * np.float32(strength)).astype(np.float32)
    boosted = (x * boost.reshape((1, c) + (1,) * (x.ndim - 2))).astype(np.float32)
    if not local:
        flat = boosted.reshape(x.shape[0], -1)
        order = np.argsort(-flat, axis=1, kind="stable")[:, :k]
        mask = np.zeros_like(flat, dtype=bool)
        np.put_along_axis(mask, order, True, axis=1)
        return mask.reshape(x.shape)
    order = np.argsort(-boosted, axis=1, kind="stable")[:, :k]
    mask = np.zeros_like(x, dtype=bool)
    np.put_along_axis(mask, order, True, axis=1)
    return mask


def duty_update(duty, y, period, counts_steps=False):
    """nupic.torch's update_duty_cycle (KWinners2d: activity per channel
    over the batch and the locations, / (H * W)) on the buffer [C + 1]
    (+ the step count)."""
    c, b = y.shape[1], y.shape[0]
    count = np.float32(min(period, duty[c] + b))
    active = (y > 0).sum(axis=tuple(i for i in range(y.ndim) if i != 1))
    active = active.astype(np.float32)
    if y.ndim == 4:
        active = active / np.float32(y.shape[2] * y.shape[3])
    out = np.empty_like(duty)
    out[:c] = (duty[:c] * (count - np.float32(b)) + active) / count
    out[c] = count
    if counts_steps:
        out[c + 1] = duty[c + 1] + 1
    return out


class KWinnersTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="sparsec-kw-")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def check_mlp(self, stem, name, hidden, k, k_inf, strength, period,
                  factor=1.0, decay_period=0, local=False):
        """fc2(flatten(kw(fc1(x) as [B, *hidden]))) trained by SGD against
        the reference: loss, gradients, duty cycles, counts; then forward."""
        m = Model(compile_model(stem, self.tmp.name), name, 3)
        n, lr = int(np.prod(hidden)), 0.05
        rng = np.random.default_rng(1)
        batches = (1, 7, 16, 40, 64, 3, 64, 9, 33, 64, 5, 20)
        for step, b in enumerate(batches):
            x = rng.standard_normal((b, 10 if len(hidden) > 1 else 12))
            x = x.astype(np.float32)
            y = rng.standard_normal((b, 3)).astype(np.float32)
            p = {w: torch.tensor(m.values(w)) for w in
                 ("fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias")}
            p["fc1.weight"] = p["fc1.weight"].reshape(n, x.shape[1])
            p["fc2.weight"] = p["fc2.weight"].reshape(3, n)
            for t in p.values():
                t.requires_grad_(True)
            duty = m.values("kw.duty_cycle").copy()
            s = boost_strength(strength, factor, decay_period, step)
            h = (torch.tensor(x) @ p["fc1.weight"].T + p["fc1.bias"])
            h = h.reshape((b,) + hidden)
            mask = winners(h.detach().numpy(), duty, k, s, local)
            per = mask.sum(axis=1) if local else mask.reshape(b, -1).sum(1)
            self.assertTrue((per == k).all())
            hk = h * torch.tensor(mask, dtype=torch.float32)
            out = hk.reshape(b, n) @ p["fc2.weight"].T + p["fc2.bias"]
            loss = torch.nn.functional.mse_loss(out, torch.tensor(y))
            loss.backward()
            got = m.train_step([x, y])
            what = f"{stem} step {step + 1} (batch {b})"
            check_close(self, got, loss.item(), f"{what}: loss")
            for w, t in p.items():
                check_close(self, m.grad(w), t.grad.numpy().reshape(-1),
                            f"{what}: gradient of {w}")
            want = duty_update(duty, hk.detach().numpy(), period,
                               decay_period > 0)
            np.testing.assert_allclose(m.values("kw.duty_cycle"), want,
                                       rtol=1e-6, atol=1e-7, err_msg=what)
            # The optimizer does not touch the buffer: SGD on the others.
            check_close(self, m.values("fc2.bias"),
                        (p["fc2.bias"] - lr * p["fc2.bias"].grad).detach().numpy(),
                        f"{what}: SGD step")
        # Inference: k_inference winners, its density in the boost, the
        # strength after len(batches) steps.
        x = rng.standard_normal((8, x.shape[1])).astype(np.float32)
        w1 = m.values("fc1.weight").reshape(n, x.shape[1])
        h = (x @ w1.T + m.values("fc1.bias")).reshape((8,) + hidden)
        s = boost_strength(strength, factor, decay_period, len(batches))
        mask = winners(h, m.values("kw.duty_cycle"), k_inf, s, local)
        want = (h * mask).reshape(8, n) @ m.values("fc2.weight").reshape(3, n).T \
            + m.values("fc2.bias")
        check_close(self, m.forward([x], (8, 3)), want, "forward (k_inference)")
        return m

    def test_mlp_forward_backward_duty_against_reference(self):
        self.check_mlp("kw_mlp", "KwMlp", (20,), k=5, k_inf=7, strength=1.5,
                       period=50)

    def test_boost_decay(self):
        # 2.0 * 0.7^floor(step / 2); the buffer counts the 12 steps.
        m = self.check_mlp("kw_decay", "KwDecay", (20,), k=5, k_inf=7,
                           strength=2.0, period=30, factor=0.7,
                           decay_period=2)
        self.assertEqual(m.values("kw.duty_cycle")[21], 12.0)
        # The step count (so the decayed strength) is checkpointed.
        ckpt = os.path.join(self.tmp.name, "kw_decay.safetensors")
        m.save(ckpt)
        m2 = Model(compile_model("kw_decay", self.tmp.name), "KwDecay", 7)
        m2.load(ckpt)
        np.testing.assert_array_equal(m2.values("kw.duty_cycle"),
                                      m.values("kw.duty_cycle"))

    def test_boost_decay_changes_the_winners(self):
        # The reference without decay must disagree somewhere (the test can
        # fail): strength 2.0 vs 2.0 * 0.7^6 on a saturated duty cycle.
        x = np.random.default_rng(3).standard_normal((64, 20)).astype(np.float32)
        duty = np.concatenate([np.linspace(0, 0.9, 20), [30, 12]]).astype(np.float32)
        self.assertFalse((winners(x, duty, 5, boost_strength(2.0, 0.7, 2, 12)) ==
                          winners(x, duty, 5, 2.0)).all())

    def test_kwinners2d_global(self):
        # k = round(36 * 0.25) = 9, k_inference = round(36 * 0.375) = 14.
        m = self.check_mlp("kw2d_global", "Kw2dGlobal", (4, 3, 3), k=9,
                           k_inf=14, strength=1.5, period=40, factor=0.5,
                           decay_period=3)
        self.assertEqual(m.values("kw.duty_cycle")[5], 12.0)

    def test_kwinners2d_local(self):
        # k = round(6 * 0.34) = 2, k_inference = round(6 * 0.51) = 3.
        self.check_mlp("kw2d_local", "Kw2dLocal", (6, 2, 2), k=2, k_inf=3,
                       strength=2.0, period=40, local=True)

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
