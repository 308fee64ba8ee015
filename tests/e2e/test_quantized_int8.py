"""The int8 inference forward of sparse_quantized_linear, against numpy.

`<Model>_forward` computes a sparse_quantized_linear layer in int8
(`inference = int8`, and `auto`): the weight quantized per output row as in
training (s(r) = max |w(r, :)| / qmax, levels clamp(roundeven(w / s)),
qmax = 2^(bits-1) - 1), the activation per sample (sx(b) = max |x(b, :)| /
127, 1 for an all-zero row; levels clamp(roundeven(x * (1 / sx)), +-127),
the reciprocal computed once per sample as fbgemm does), the
product summed exactly in integers, then y = f32(acc) * s(r) * sx(b) +
bias(r). Checked here:

* the forward equals a numpy model of exactly that arithmetic (f32 scales,
  exact integer sums) to the f32 rounding of the final scaling, at batch
  sizes 1, odd, and more than one 64-sample block, with all-zero rows of x
  and of W, for bits = 8 and bits = 4, with and without bias (batches of
  1, 37, 130 and 300 samples: the kernel takes 4 blocks of 64 at a time,
  then the others one by one);
* it is really int8: it differs from the f32 fake-quantized forward (which
  `inference = f32` still computes, checked against torch), by no more than
  the activation quantization's bound sum_k |W_q(r, k)| sx(b) / 2;
* two int8 layers with a relu between them (the blocks passed on), and an
  f32 sparse_linear followed by an int8 layer;
* train_step is the f32 fake-quant STE step whatever `inference` says: the
  libraries built with int8, auto and f32 give bit-identical losses,
  gradients and weights over several steps.

Run: /usr/bin/python3 -m unittest -v test_quantized_int8  (from tests/e2e)
"""
import os
import subprocess
import tempfile
import unittest

import numpy as np
import torch
import torch.nn.functional as F

import oracle
from oracle import check_close
from sparsec_ctypes import Model

ONE_LAYER = """
model Q1 {
  input  x : f32[B, 300]
  target y : i64[B]
  param fc : sparse_quantized_linear(300, 70, sparsity = 0.8, bias = BIAS,
                                     bits = BITS INFER)
  forward { logits = fc(x) }
  loss = cross_entropy(logits, y)
  optimizer = sgd(lr = 0.1, momentum = 0.9)
}
"""

TWO_LAYERS = """
model Q2 {
  input  x : f32[B, 40]
  target y : i64[B]
  param fc1 : sparse_quantized_linear(40, 96, sparsity = 0.6 INFER)
  param fc2 : sparse_quantized_linear(96, 7, sparsity = 0.3 INFER)
  forward {
    h = relu(fc1(x))
    logits = fc2(h)
  }
  loss = cross_entropy(logits, y)
  optimizer = adam(lr = 0.01)
}
"""


def f32(v):
    return np.float32(v)


def quant_weight(w, pat, bits):
    """Per-row levels (int64) and f32 scales, as the library computes them."""
    qmax = f32(2 ** (bits - 1) - 1)
    m = np.where(pat, np.abs(w), f32(0)).max(axis=1)
    s = np.where(m == 0, f32(1), m / qmax).astype(np.float32)
    q = np.clip(np.round(w / s[:, None]), -qmax, qmax)
    return np.where(pat, q, 0).astype(np.int64), s


def quant_input(x):
    """Per-sample levels (int64) and f32 scales; x times 1 / sx in f32."""
    m = np.abs(x).max(axis=1)
    sx = np.where(m == 0, f32(1), m / f32(127)).astype(np.float32)
    inv = (f32(1) / sx).astype(np.float32)
    q = np.clip(np.round(x * inv[:, None]), -127, 127)
    return q.astype(np.int64), sx


def int8_forward(x, w, pat, bias, bits):
    """y = f32(acc) * s(r) * sx(b) + bias(r) in f32, acc exact."""
    wq, s = quant_weight(w, pat, bits)
    xq, sx = quant_input(x)
    acc = (xq @ wq.T).astype(np.float32)
    y = (acc * s[None, :]) * sx[:, None]
    if bias is not None:
        y = y + bias[None, :]
    return y.astype(np.float32), wq, s, sx


def fake_quant_forward(x, w, pat, bias, bits):
    """The f32 forward on W_q = levels * s (torch, as training computes)."""
    wq, s = quant_weight(w, pat, bits)
    wf = torch.from_numpy((wq.astype(np.float32) * s[:, None]))
    b = None if bias is None else torch.from_numpy(bias)
    return F.linear(torch.from_numpy(x), wf, b).numpy()


class QuantizedInt8Test(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="sparsec-quant8-")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def model(self, text, name, stem, mode, seed=0, **subst):
        """Library of `text` with `inference = mode` (None: not given)."""
        subst["INFER"] = f", inference = {mode}" if mode else ""
        for k, v in subst.items():
            text = text.replace(k, str(v))
        sdl = os.path.join(self.tmp.name, stem + ".sdl")
        with open(sdl, "w") as f:
            f.write(text)
        so = os.path.join(self.tmp.name, f"lib{stem}.so")
        subprocess.run([oracle.sparsec_binary(), sdl, "-o", so], check=True)
        return Model(so, name, seed)

    @staticmethod
    def layer(m, name, rows, cols):
        """Dense f32 weight, bool pattern, and the CSR arrays of a layer."""
        nnz = next(i["nnz"] for i in m.param_info()
                   if i["name"] == name + ".weight")
        pos, crd = m.csr(name + ".weight", rows, nnz)
        vals = m.values(name + ".weight")
        w = np.zeros((rows, cols), np.float32)
        pat = np.zeros((rows, cols), bool)
        for r in range(rows):
            w[r, crd[pos[r]:pos[r + 1]]] = vals[pos[r]:pos[r + 1]]
            pat[r, crd[pos[r]:pos[r + 1]]] = True
        return w, pat, pos, vals

    def check_exact(self, got, want, what):
        """Equal up to the f32 rounding of the final scaling."""
        scale = max(1.0, float(np.abs(want).max()))
        np.testing.assert_allclose(got, want, rtol=2e-6, atol=2e-6 * scale,
                                   err_msg=what)

    def test_one_layer(self):
        for bits, bias in ((8, "true"), (4, "false")):
            with self.subTest(bits=bits, bias=bias):
                self.check_one_layer(bits, bias == "true")

    def check_one_layer(self, bits, has_bias):
        subst = dict(BITS=bits, BIAS="true" if has_bias else "false")
        m8 = self.model(ONE_LAYER, "Q1", f"one{bits}_int8", "int8", **subst)
        mf = self.model(ONE_LAYER, "Q1", f"one{bits}_f32", "f32", **subst)
        ma = self.model(ONE_LAYER, "Q1", f"one{bits}_auto", None, **subst)
        # An all-zero row of W: zero it in each library's own weights.
        for m in (m8, mf, ma):
            w, pat, pos, vals = self.layer(m, "fc", 70, 300)
            vals[pos[5]:pos[6]] = 0.0
        w, pat, _, _ = self.layer(m8, "fc", 70, 300)
        bias = m8.values("fc.bias").copy() if has_bias else None
        rng = np.random.default_rng(bits)
        for batch in (1, 37, 130, 300):
            x = (rng.standard_normal((batch, 300)) *
                 rng.uniform(0.1, 3.0, (batch, 1))).astype(np.float32)
            x[batch // 2] = 0.0  # an all-zero sample: scale 1, y = bias
            got = m8.forward([x], (batch, 70))
            want, wq, s, sx = int8_forward(x, w, pat, bias, bits)
            self.check_exact(got, want, f"int8 batch {batch}")
            self.assertTrue(np.all(np.isfinite(got)))
            zero_y = bias if has_bias else np.zeros(70, np.float32)
            np.testing.assert_array_equal(got[batch // 2], zero_y)
            np.testing.assert_array_equal(got[:, 5], np.broadcast_to(
                zero_y[5], (batch,)))
            # auto is int8 here (docs/language.md: the rule).
            np.testing.assert_array_equal(ma.forward([x], (batch, 70)), got,
                                          f"auto batch {batch}")
            # f32 keeps the fake-quantized forward ...
            ref = fake_quant_forward(x, w, pat, bias, bits)
            check_close(self, mf.forward([x], (batch, 70)), ref,
                        f"f32 batch {batch}")
            # ... which int8 differs from by the activation quantization:
            # |x - xq sx| <= sx / 2 per entry, so at most
            # sum_k |W_q(r, k)| sx(b) / 2 (plus f32 rounding).
            bound = (np.abs(wq).astype(np.float32) @ np.ones(300, np.float32)
                     )[None, :] * s[None, :] * sx[:, None] / 2
            err = np.abs(got - ref)
            slack = 1e-5 * (np.abs(ref) + 1)
            self.assertTrue(np.all(err <= bound + slack),
                            f"batch {batch}: int8 error above the bound")
            if batch > 1:
                self.assertGreater(err.max(), 0, "int8 equals f32: not int8?")

    def check_second_layer(self, m, first, seed, batches, close):
        """m's forward (x: [B, 40] -> 96 -> relu -> int8 fc2 -> 7) against
        the int8 reference of fc2 on relu(first(x))."""
        w2, p2, _, _ = self.layer(m, "fc2", 7, 96)
        b2 = m.values("fc2.bias").copy()
        rng = np.random.default_rng(seed)
        for batch in batches:
            x = rng.standard_normal((batch, 40)).astype(np.float32)
            h = np.maximum(first(x), 0).astype(np.float32)
            close(m.forward([x], (batch, 7)),
                  int8_forward(h, w2, p2, b2, 8)[0], f"batch {batch}")

    def test_two_layers(self):
        m = self.model(TWO_LAYERS, "Q2", "two_int8", "int8")
        w1, p1, _, _ = self.layer(m, "fc1", 96, 40)
        b1 = m.values("fc1.bias").copy()
        # A last-bit difference in h may move one activation level.
        self.check_second_layer(
            m, lambda x: int8_forward(x, w1, p1, b1, 8)[0], 3,
            (1, 65, 200, 520),
            lambda got, want, what: check_close(self, got, want, what))

    def test_after_f32_layer(self):
        """An f32 sparse_linear feeding an int8 layer (its blocks reused)."""
        text = TWO_LAYERS.replace(
            "fc1 : sparse_quantized_linear(40, 96, sparsity = 0.6 INFER)",
            "fc1 : sparse_linear(40, 96, sparsity = 0.6)")
        m = self.model(text, "Q2", "after_f32", "int8")
        w1 = m.dense_weight(next(i for i in m.param_info()
                                 if i["name"] == "fc1.weight"))
        b1 = m.values("fc1.bias").copy()
        # h's last bits (another summation order) may move a level.
        self.check_second_layer(
            m, lambda x: x @ w1.T + b1, 4, (1, 64, 129),
            lambda got, want, what: np.testing.assert_allclose(
                got, want, rtol=0, atol=2e-3 * np.abs(want).max(),
                err_msg=what))

    def test_train_step_unchanged(self):
        """int8, auto and f32 libraries train bit-identically (f32 STE)."""
        libs = [self.model(TWO_LAYERS, "Q2", f"train_{mode}", mode, seed=5)
                for mode in ("int8", "f32", None)]
        rng = np.random.default_rng(11)
        for step, batch in enumerate((3, 64, 70, 1)):
            x = rng.standard_normal((batch, 40)).astype(np.float32)
            y = rng.integers(0, 7, batch).astype(np.int64)
            losses = [m.train_step([x, y]) for m in libs]
            self.assertEqual(len(set(losses)), 1, f"step {step}: {losses}")
            for name in ("fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"):
                for m in libs[1:]:
                    np.testing.assert_array_equal(
                        m.grad(name), libs[0].grad(name), f"{step} {name}")
                    np.testing.assert_array_equal(
                        m.values(name), libs[0].values(name),
                        f"{step} {name}")


if __name__ == "__main__":
    unittest.main()
