"""sparse_quantized_linear through the generated library, against PyTorch.

The layer is a CSR sparse_linear whose forward and input gradient use the
weight fake-quantized per output row (`bits`-bit symmetric: s = max |w| of
the row's stored entries / (2^(bits-1) - 1), q = round-half-even(w / s)
clamped, W_q = q s) and whose weight gradient passes straight through
(STE) to the f32 master weights on the layer's pattern:

* forward and loss equal torch's on W_q computed from the library's own
  master weights (bit-identical quantization: the same f32 operations);
* every train step (SGD with momentum, then Adam) matches torch's STE step
  (W + (Q(W) - W).detach()) started from the library's weights of that
  step: loss, gradients on the pattern, updated weights; the pattern never
  changes and no weight off the pattern appears;
* with bits = 8 and bits = 3 (at most 2^bits - 1 levels per row); the
  output differs from the unquantized layers' (the quantization is real);
* the pattern's stored-zero rows quantize with scale 1 (no division by 0).

The layers say `inference = f32`, so that `<Model>_forward` too computes
the fake-quantized f32 forward checked here; the int8 forward (`auto`,
`int8`) is tested in test_quantized_int8.py.

Run: /usr/bin/python3 -m unittest -v test_quantized  (from tests/e2e)
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

MODEL = """
model Quant {
  input  x : f32[B, 12]
  target y : i64[B]
  param fc1 : sparse_quantized_linear(12, 16, sparsity = 0.5,
                                      inference = f32)
  param fc2 : sparse_quantized_linear(16, 5, sparsity = 0.3, bias = false,
                                      bits = BITS, inference = f32)
  forward {
    h = relu(fc1(x))
    logits = fc2(h)
  }
  loss = cross_entropy(logits, y)
  optimizer = OPTIMIZER
}
"""

OPTIMIZERS = [
    ("sgd(lr = 0.1, momentum = 0.9)",
     lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)),
    ("adam(lr = 0.01)", lambda p: torch.optim.Adam(p, lr=0.01)),
]


def quantize(w, pattern, bits):
    """Per-row symmetric fake quantization of the stored entries (f32)."""
    qmax = float(2 ** (bits - 1) - 1)
    m = torch.where(pattern, w.abs(), torch.zeros_like(w)).amax(dim=1,
                                                               keepdim=True)
    s = torch.where(m == 0, torch.ones_like(m), m / qmax)
    return torch.clamp(torch.round(w / s), -qmax, qmax) * s, s


class QuantizedTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="sparsec-quant-")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def model(self, stem, optimizer, bits):
        sdl = os.path.join(self.tmp.name, stem + ".sdl")
        with open(sdl, "w") as f:
            f.write(MODEL.replace("OPTIMIZER", optimizer)
                    .replace("BITS", str(bits)))
        so = os.path.join(self.tmp.name, f"lib{stem}.so")
        subprocess.run([oracle.sparsec_binary(), sdl, "-o", so], check=True)
        return Model(so, "Quant", 5)

    @staticmethod
    def state(m):
        """name -> (dense float32 weight, bool pattern) of every parameter."""
        out = {}
        for i in m.param_info():
            w = m.dense_weight(i)
            if i["nnz"] == int(np.prod(i["shape"])):
                pat = np.ones(i["shape"], bool)
            else:
                pos, crd = m.csr(i["name"], i["shape"][0], i["nnz"])
                pat = np.zeros(i["shape"], bool)
                for r in range(i["shape"][0]):
                    pat[r, crd[pos[r]:pos[r + 1]]] = True
            out[i["name"]] = (w, pat)
        return out

    def reference(self, st, x, y, bits2):
        """torch loss and leaf tensors (STE) from the library's weights."""
        leaves = {n: torch.tensor(w, requires_grad=True)
                  for n, (w, _) in st.items()}

        def ste(name, bits):
            w, pat = leaves[name], torch.from_numpy(st[name][1])
            q, _ = quantize(w.detach(), pat, bits)
            return w + (q - w).detach()

        h = F.relu(F.linear(torch.from_numpy(x), ste("fc1.weight", 8),
                            leaves["fc1.bias"]))
        logits = F.linear(h, ste("fc2.weight", bits2))
        return logits, F.cross_entropy(logits, torch.from_numpy(y)), leaves

    def test_forward_and_levels(self):
        for bits in (8, 3):
            m = self.model(f"fwd{bits}", OPTIMIZERS[0][0], bits)
            st = self.state(m)
            rng = np.random.default_rng(bits)
            x = rng.standard_normal((9, 12)).astype(np.float32)
            y = rng.integers(0, 5, 9).astype(np.int64)
            got = m.forward([x], (9, 5))
            want, _, _ = self.reference(st, x, y, bits)
            check_close(self, got, want.detach().numpy(), f"bits={bits}")
            # The reference's W_q has at most 2^bits - 1 levels per row.
            w, pat = (torch.from_numpy(a) for a in st["fc2.weight"])
            q, s = quantize(w, pat, bits)
            levels = torch.round(q / s)[pat]
            self.assertLessEqual(levels.abs().max().item(), 2 ** (bits - 1) - 1)
            for r in range(q.shape[0]):
                self.assertLessEqual(len(set(q[r][pat[r]].tolist())),
                                     2 ** bits - 1)
            # The quantization is visible in the output: the same layers on
            # the unquantized weights give something else.
            plain = F.linear(F.relu(F.linear(
                torch.from_numpy(x), torch.from_numpy(st["fc1.weight"][0]),
                torch.from_numpy(st["fc1.bias"][0]))),
                torch.from_numpy(st["fc2.weight"][0]))
            self.assertGreater(oracle.rel_err(got, plain.numpy()), 1e-3)

    def test_steps_against_torch(self):
        for k, (dsl, make_opt) in enumerate(OPTIMIZERS):
            with self.subTest(optimizer=dsl):
                self.check_steps(self.model(f"opt{k}", dsl, 4), make_opt)

    def check_steps(self, m, make_opt):
        rng = np.random.default_rng(7)
        st0 = self.state(m)
        # One torch optimizer over the same leaves across steps: the
        # leaves are reset to the library's weights before each step, so a
        # last-bit difference cannot flip a rounding and grow.
        leaves = {n: torch.zeros(w.shape, requires_grad=True)
                  for n, (w, _) in st0.items()}
        opt = make_opt(list(leaves.values()))
        for step, b in enumerate((4, 9, 1, 16, 7)):
            x = rng.standard_normal((b, 12)).astype(np.float32)
            y = rng.integers(0, 5, b).astype(np.int64)
            st = self.state(m)
            _, ref, ref_leaves = self.reference(st, x, y, 4)
            ref.backward()
            loss = m.train_step([x, y])
            check_close(self, loss, ref.item(), f"step {step} loss")
            for n, (w, pat) in st.items():
                g = ref_leaves[n].grad.numpy()
                if n.endswith("weight"):
                    check_close(self, m.grad(n), g[pat],
                                f"step {step} grad {n}")
                else:
                    check_close(self, m.grad(n), g.reshape(-1),
                                f"step {step} grad {n}")
                with torch.no_grad():
                    leaves[n].copy_(torch.from_numpy(w))
                    leaves[n].grad = torch.from_numpy(
                        np.where(pat, g, 0).astype(np.float32))
            opt.step()
            after = self.state(m)
            for n, (w, pat) in after.items():
                np.testing.assert_array_equal(pat, st0[n][1],
                                              f"step {step}: {n} pattern")
                self.assertTrue(np.all(w[~pat] == 0))
                check_close(self, w[pat], leaves[n].detach().numpy()[pat],
                            f"step {step} {n}")

    def test_zero_row_scale(self):
        # SGD with lr 0 and a weight file would be needed to force a zero
        # row; instead zero a row of the master weights through the API.
        m = self.model("zero", OPTIMIZERS[0][0], 8)
        st = self.state(m)
        vals = m.values("fc1.weight")
        pos, _ = m.csr("fc1.weight", 16, int(st["fc1.weight"][1].sum()))
        vals[pos[2]:pos[3]] = 0.0  # the library's own buffer (zero-copy)
        st = self.state(m)
        rng = np.random.default_rng(2)
        x = rng.standard_normal((3, 12)).astype(np.float32)
        y = rng.integers(0, 5, 3).astype(np.int64)
        got = m.forward([x], (3, 5))
        self.assertTrue(np.all(np.isfinite(got)))
        want, _, _ = self.reference(st, x, y, 8)
        check_close(self, got, want.detach().numpy(), "zero row")


if __name__ == "__main__":
    unittest.main()
