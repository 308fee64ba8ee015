"""masked_linear and pruning schedules through the generated library.

* Every optimizer (SGD with momentum/Nesterov/weight decay, Adagrad,
  RMSprop centered with momentum, Adam with amsgrad and L2, AdamW) on a
  two-layer masked MLP against PyTorch: nn.functional.linear(x, W * M, b)
  with the same masks and torch.optim; loss, weights and gradients after
  every one of 6 steps (rel err <= 1e-5), masked weights exactly 0 in the
  library throughout, masks unchanged.
* Gradients in float64 central finite differences (masked and unmasked
  coordinates; masked ones must be exactly 0).
* Pruning against a reference written here: gradual (Zhu-Gupta), global
  magnitude across two layers, structured L2 rows; the mask, the weights
  and the loss after each of 9 SGD-with-momentum steps; the mask sparsity
  equals round(s_t * N) / N at each pruning step; structured pruning
  zeroes whole rows.
* A mask file gives exactly its ones; a sparse mask becomes a CSR weight.
* Checkpoints keep the mask.

Run: /usr/bin/python3 -m unittest -v test_masked  (from tests/e2e)
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

DIR = os.path.join(oracle.MODELS_DIR, "masked")

# (DSL optimizer, torch.optim factory)
OPTIMIZERS = [
    ("sgd(lr = 0.1, momentum = 0.9, weight_decay = 0.05, nesterov = true)",
     lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.05,
                               nesterov=True)),
    ("adagrad(lr = 0.05, weight_decay = 0.1)",
     lambda p: torch.optim.Adagrad(p, lr=0.05, weight_decay=0.1)),
    ("rmsprop(lr = 0.01, momentum = 0.5, centered = true, weight_decay = 0.1)",
     lambda p: torch.optim.RMSprop(p, lr=0.01, momentum=0.5, centered=True,
                                   weight_decay=0.1)),
    ("adam(lr = 0.01, weight_decay = 0.1, amsgrad = true)",
     lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=0.1, amsgrad=True)),
    ("adamw(lr = 0.01, weight_decay = 0.1)",
     lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1)),
]


def compile_text(text, outdir, stem):
    sdl = os.path.join(outdir, stem + ".sdl")
    with open(sdl, "w") as f:
        f.write(text)
    so = os.path.join(outdir, f"lib{stem}.so")
    subprocess.run([oracle.sparsec_binary(), sdl, "-o", so], check=True)
    return so


def model_text(stem, optimizer):
    with open(os.path.join(DIR, stem + ".sdl")) as f:
        return f.read().replace("OPTIMIZER", optimizer)


def lib_params(m):
    """name -> float32 numpy copy of every parameter (dense shapes)."""
    return {i["name"]: m.dense_weight(i) for i in m.param_info()}


class MaskedTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="sparsec-masked-")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def mlp(self, k, optimizer):
        so = compile_text(model_text("masked_mlp", optimizer), self.tmp.name,
                          f"mlp{k}")
        return Model(so, "MaskedMlp", 7)

    @staticmethod
    def batch(rng, b):
        x = rng.standard_normal((b, 12)).astype(np.float32)
        y = rng.integers(0, 5, b).astype(np.int64)
        return x, y

    def test_layout_and_initial_masks(self):
        m = self.mlp("init", OPTIMIZERS[0][0])
        info = {i["name"]: i for i in m.param_info()}
        self.assertEqual(list(info), ["fc1.weight", "fc1.bias",
                                      "fc1.weight_mask", "fc2.weight",
                                      "fc2.weight_mask"])
        p = lib_params(m)
        for layer, ones in (("fc1", round(0.4 * 12 * 16)),
                            ("fc2", round(0.7 * 16 * 5))):
            mask, w = p[layer + ".weight_mask"], p[layer + ".weight"]
            self.assertTrue(np.all((mask == 0) | (mask == 1)))
            self.assertEqual(int(mask.sum()), ones, layer)
            self.assertTrue(np.all(w[mask == 0] == 0), layer)
            self.assertTrue(np.all(w[mask == 1] != 0), layer)
        # nn.Linear's init bound 1/sqrt(in) (the dense fan-in).
        self.assertLessEqual(np.abs(p["fc1.weight"]).max(), 1 / np.sqrt(12))

    def test_optimizers_against_torch(self):
        for k, (dsl, make_opt) in enumerate(OPTIMIZERS):
            with self.subTest(optimizer=dsl):
                self.check_against_torch(self.mlp(k, dsl), make_opt)

    def check_against_torch(self, m, make_opt):
        p0 = lib_params(m)
        tp = {n: torch.tensor(v, requires_grad="mask" not in n)
              for n, v in p0.items()}
        trained = [tp[n] for n in p0 if "mask" not in n]
        opt = make_opt(trained)
        rng = np.random.default_rng(3)
        for step, b in enumerate((4, 9, 1, 16, 7, 12)):
            x, y = self.batch(rng, b)
            loss = m.train_step([x, y])
            opt.zero_grad()
            h = F.relu(F.linear(torch.from_numpy(x),
                                tp["fc1.weight"] * tp["fc1.weight_mask"],
                                tp["fc1.bias"]))
            logits = F.linear(h, tp["fc2.weight"] * tp["fc2.weight_mask"])
            ref = F.cross_entropy(logits, torch.from_numpy(y))
            ref.backward()
            check_close(self, loss, ref.item(), f"step {step} loss")
            for n in ("fc1.weight", "fc1.bias", "fc2.weight"):
                check_close(self, m.grad(n), tp[n].grad.numpy().reshape(-1),
                            f"step {step} grad {n}")
            opt.step()
            got = lib_params(m)
            for n, t in tp.items():
                check_close(self, got[n], t.detach().numpy(),
                            f"step {step} {n}")
            for layer in ("fc1", "fc2"):
                mask = got[layer + ".weight_mask"]
                np.testing.assert_array_equal(mask, p0[layer + ".weight_mask"])
                self.assertTrue(np.all(got[layer + ".weight"][mask == 0] == 0),
                                f"step {step}: masked {layer} weights moved")

    def test_finite_differences(self):
        m = self.mlp("fd", "sgd(lr = 1e-30)")
        rng = np.random.default_rng(11)
        eps = 1e-6
        for b in (1, 6):
            x, y = self.batch(rng, b)
            p = {n: torch.tensor(v, dtype=torch.float64)
                 for n, v in lib_params(m).items()}

            def loss64():
                h = F.relu(F.linear(torch.from_numpy(x).double(),
                                    p["fc1.weight"] * p["fc1.weight_mask"],
                                    p["fc1.bias"]))
                z = F.linear(h, p["fc2.weight"] * p["fc2.weight_mask"])
                return F.cross_entropy(z, torch.from_numpy(y)).item()

            check_close(self, m.train_step([x, y]), loss64(), f"B={b} loss")
            for n in ("fc1.weight", "fc1.bias", "fc2.weight"):
                got = m.grad(n)
                flat = p[n].view(-1)
                mask = (p[n.replace("weight", "weight_mask")].view(-1)
                        if "weight" in n else torch.ones_like(flat))
                coords = rng.choice(flat.numel(), min(40, flat.numel()),
                                    replace=False)
                oracle.check_masked_fd(self, got, flat, mask, coords, loss64,
                                       f"B={b} {n}", eps)

    def test_pruning_schedules_against_reference(self):
        so = compile_text(model_text("pruned", "sgd(lr = 0.05, momentum = 0.9)"),
                          self.tmp.name, "pruned")
        m = Model(so, "Pruned", 5)
        tp = {n: torch.tensor(v) for n, v in lib_params(m).items()}
        for t in tp.values():
            t.requires_grad_(True)
        weights = [n for n in tp if "mask" not in n]
        opt = torch.optim.SGD([tp[n] for n in weights], lr=0.05, momentum=0.9)
        rng = np.random.default_rng(9)
        layers = ("fc1", "fc2", "fc3", "fc4")
        for t in range(1, 10):
            x = rng.standard_normal((8, 10)).astype(np.float32)
            y = rng.standard_normal((8, 3)).astype(np.float32)
            loss = m.train_step([x, y])
            opt.zero_grad()
            h = torch.from_numpy(x)
            for layer in layers:
                h = F.relu(F.linear(h, tp[layer + ".weight"] *
                                    tp[layer + ".weight_mask"],
                                    tp[layer + ".bias"]))
            z = F.linear(h, tp["out.weight"], tp["out.bias"])
            ref = F.mse_loss(z, torch.from_numpy(y))
            ref.backward()
            opt.step()
            check_close(self, loss, ref.item(), f"t={t} loss")
            with torch.no_grad():
                self.reference_prune(t, tp, opt)
            got = lib_params(m)
            for n, v in tp.items():
                check_close(self, got[n], v.detach().numpy(), f"t={t} {n}")
            # The schedule's sparsity at pruning steps.
            s1 = {2: 0.1, 4: 0.1 + 0.6 * (1 - (1 - 2 / 6) ** 3),
                  6: 0.1 + 0.6 * (1 - (1 - 4 / 6) ** 3), 8: 0.7}
            if t in s1:
                self.assertEqual(int((got["fc1.weight_mask"] == 0).sum()),
                                 round(s1[t] * 120), f"t={t} fc1 zeros")
            if t >= 3:
                zeros = sum(int((got[n + ".weight_mask"] == 0).sum())
                            for n in ("fc2", "fc3"))
                self.assertEqual(zeros, round(0.5 * (108 + 72)), f"t={t}")
            rows = (got["fc4.weight_mask"] == 0).all(axis=1)
            want_rows = 0 if t < 2 else (round(6 * (0.5 - 0.5 * (1 - 0) ** 3))
                                         if t < 6 else 3)
            self.assertEqual(int(rows.sum()), want_rows, f"t={t} fc4 rows")
            # Whole rows: a row is either all pruned or untouched.
            mask4 = got["fc4.weight_mask"]
            self.assertTrue(np.all((mask4 == 0).all(1) | (mask4 == 1).all(1)))
            self.assertTrue(np.all(got["fc4.weight"][rows] == 0))
            for layer in layers:
                mask = got[layer + ".weight_mask"]
                self.assertTrue(np.all(got[layer + ".weight"][mask == 0] == 0))

    def reference_prune(self, t, tp, opt):
        """The runtime's pruning rules, written plainly."""

        def target(initial, final, begin, end, every):
            if t < begin or t > end or (t - begin) % every:
                return None
            if end == begin:
                return final
            return final + (initial - final) * (1 - (t - begin) / (end - begin)) ** 3

        def zero(layer, flat_idx, row_len=1):
            w, mask = tp[layer + ".weight"], tp[layer + ".weight_mask"]
            state = opt.state[w].get("momentum_buffer")
            for e in flat_idx:
                for j in range(e * row_len, e * row_len + row_len):
                    mask.view(-1)[j] = 0
                    w.view(-1)[j] = 0
                    if state is not None:
                        state.view(-1)[j] = 0

        def prune(items, k):
            """items: (layer, index, active, score); prunes the smallest
            active ones (ties: order) until k are inactive."""
            need = k - sum(1 for it in items if not it[2])
            active = [it for it in items if it[2]]
            active.sort(key=lambda it: np.float32(it[3]))  # stable
            return active[:max(need, 0)]

        s = target(0.1, 0.7, 2, 8, 2)
        if s is not None:
            w, mask = tp["fc1.weight"], tp["fc1.weight_mask"]
            items = [("fc1", i, mask.view(-1)[i] != 0, abs(w.view(-1)[i].item()))
                     for i in range(w.numel())]
            for layer, i, _, _ in prune(items, round(s * w.numel())):
                zero(layer, [i])
        s = target(0.5, 0.5, 3, 3, 1)
        if s is not None:
            items = []
            for layer in ("fc2", "fc3"):
                w, mask = tp[layer + ".weight"], tp[layer + ".weight_mask"]
                items += [(layer, i, mask.view(-1)[i] != 0,
                           abs(w.view(-1)[i].item())) for i in range(w.numel())]
            for layer, i, _, _ in prune(items, round(s * len(items))):
                zero(layer, [i])
        s = target(0.0, 0.5, 2, 6, 4)
        if s is not None:
            w, mask = tp["fc4.weight"], tp["fc4.weight_mask"]
            norms = torch.linalg.vector_norm(w.double(), dim=1)
            items = [("fc4", r, bool((mask[r] != 0).any()), norms[r].item())
                     for r in range(w.shape[0])]
            for layer, r, _, _ in prune(items, round(s * w.shape[0])):
                zero(layer, [r], w.shape[1])

    def test_mask_file_and_csr_switch(self):
        so = os.path.join(self.tmp.name, "libmaskfile.so")
        subprocess.run([oracle.sparsec_binary(),
                        os.path.join(DIR, "mask_file.sdl"), "-o", so],
                       check=True)
        m = Model(so, "MaskFile", 1)
        info = {i["name"]: i for i in m.param_info()}
        self.assertEqual(info["fc2.weight"]["nnz"], round(0.05 * 48))
        self.assertNotIn("fc2.weight_mask", info)
        mask = m.dense_weight(info["fc1.weight_mask"])
        with open(os.path.join(oracle.MODELS_DIR, "conn", "conn_12x9.txt")) as f:
            lines = [ln for ln in f if not ln.startswith("#")]
        rows = [int(v) for v in lines[0].replace(",", " ").split()]
        cols = [int(v) for v in lines[1].replace(",", " ").split()]
        want = np.zeros((12, 9), np.float32)
        want[rows, cols] = 1
        np.testing.assert_array_equal(mask, want)
        w = m.dense_weight(info["fc1.weight"])
        self.assertTrue(np.all(w[want == 0] == 0))

    def test_checkpoint_keeps_mask(self):
        so = compile_text(model_text("pruned", "adam(lr = 0.01)"),
                          self.tmp.name, "pruned_ck")
        a, b = Model(so, "Pruned", 1), Model(so, "Pruned", 2)
        rng = np.random.default_rng(2)
        for _ in range(4):
            a.train_step([rng.standard_normal((5, 10)).astype(np.float32),
                          rng.standard_normal((5, 3)).astype(np.float32)])
        path = os.path.join(self.tmp.name, "pruned.safetensors")
        a.save(path)
        b.load(path)
        pa, pb = lib_params(a), lib_params(b)
        for n in pa:
            np.testing.assert_array_equal(pa[n], pb[n], n)
        self.assertGreater(int((pb["fc1.weight_mask"] == 0).sum()), 0)


if __name__ == "__main__":
    unittest.main()
