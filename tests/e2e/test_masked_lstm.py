"""masked_lstm through the generated library, against torch.nn.LSTM.

* Two models: the output sequence fed to an MSE loss (the gradient
  enters at every step), and the last hidden state fed to a linear
  classifier with cross-entropy (`output = last`); each batch-first
  ([B, T, I]) and sequence-first ([T, B, I], batch_first = false), with
  and without bias.
* Forward output, loss and every gradient (through the model API) against
  torch.nn.LSTM's kernel called with weight_ih = W_ih * M_ih and
  weight_hh = W_hh * M_hh, then several SGD (momentum) and Adam steps with
  batch sizes 1 .. 9; masked weights are exactly 0 in the library after
  every step (and re-zeroed in the reference), masks unchanged.
* Gradients in float64 central finite differences (masked coordinates must
  be exactly 0).
* A two-layer stack (the second layer's input gradient feeds the first);
  odd sizes (T = 9, I = 17, H = 33) that leave vector remainders.
* Gradual (Zhu-Gupta) pruning of each of the two masks: round(s_t * N)
  zeros at each pruning step, the smallest updated weights first;
  checkpoints keep both masks.

Run: /usr/bin/python3 -m unittest -v test_masked_lstm  (from tests/e2e)
"""
import itertools
import os
import tempfile
import unittest

import numpy as np
import torch
import torch.nn.functional as F

from oracle import check_close, check_masked_fd
from sparsec_ctypes import Model
from test_masked import compile_text, lib_params

T, I, H, C = 5, 3, 4, 3

# XDIMS / YDIMS / BATCH_FIRST: the layout (batch- or sequence-first).
SEQ_MODEL = """
model LstmSeq {
  input  x : f32[XDIMS, %(I)d]
  target y : f32[YDIMS, %(H)d]
  param rnn : masked_lstm(%(I)d, %(H)d, batch_first = BATCH_FIRST,
                          bias = BIAS, sparsity = 0.4)
  forward {
    h = rnn(x)
    return h
  }
  loss = mse(h, y)
  optimizer = OPTIMIZER
}
""" % dict(T=T, I=I, H=H)

LAST_MODEL = """
model LstmLast {
  input  x : f32[XDIMS, %(I)d]
  target y : i64[B]
  param rnn : masked_lstm(%(I)d, %(H)d, BATCH_FIRST, BIAS, 0.5, output = last)
  param fc : linear(%(H)d, %(C)d)
  forward {
    h = rnn(x)
    logits = fc(h)
  }
  loss = cross_entropy(logits, y)
  optimizer = OPTIMIZER
}
""" % dict(T=T, I=I, H=H, C=C)

PRUNED_MODEL = """
model LstmPruned {
  input  x : f32[B, %(T)d, %(I)d]
  target y : f32[B, %(H)d]
  param rnn : masked_lstm(%(I)d, %(H)d, batch_first = true, output = last,
                          prune = gradual, initial = 0.25, final = 0.75,
                          begin = 2, end = 6, every = 2)
  forward {
    h = rnn(x)
  }
  loss = mse(h, y)
  optimizer = sgd(lr = 0.1)
}
""" % dict(T=T, I=I, H=H)

# Two layers: the second one's input gradient flows into the first.
STACK_MODEL = """
model LstmStack {
  input  x : f32[B, %(T)d, %(I)d]
  target y : i64[B]
  param r1 : masked_lstm(%(I)d, %(H)d, batch_first = true, sparsity = 0.3)
  param r2 : masked_lstm(%(H)d, 3, true, false, 0.5, output = last)
  param fc : linear(3, %(C)d)
  forward {
    logits = fc(r2(r1(x)))
  }
  loss = cross_entropy(logits, y)
  optimizer = adam(lr = 0.02)
}
""" % dict(T=T, I=I, H=H, C=C)

OPTIMIZERS = [
    ("sgd(lr = 0.2, momentum = 0.9)",
     lambda p: torch.optim.SGD(p, lr=0.2, momentum=0.9)),
    ("adam(lr = 0.05)", lambda p: torch.optim.Adam(p, lr=0.05)),
]

WEIGHTS = ("rnn.weight_ih", "rnn.weight_hh")


def masked(p, bias, name="rnn"):
    """nn.LSTM's flat weights (weight_ih_l0, weight_hh_l0[, bias_ih_l0,
    bias_hh_l0]) of layer `name` with the masks applied."""
    w = [p[name + ".weight_ih"] * p[name + ".weight_ih_mask"],
         p[name + ".weight_hh"] * p[name + ".weight_hh_mask"]]
    return w + ([p[name + ".bias_ih"], p[name + ".bias_hh"]] if bias else [])


def lstm_ref(p, x, bias, last, name="rnn", batch_first=True):
    """The output sequence or the last hidden state of nn.LSTM's kernel
    (torch._VF.lstm, what nn.LSTM.forward calls; differentiable in the
    unmasked weights) with the masked weights of layer `name`."""
    weights = masked(p, bias, name)
    x = torch.as_tensor(x, dtype=weights[0].dtype)
    batch = x.shape[0 if batch_first else 1]
    h0 = torch.zeros(1, batch, weights[1].shape[1], dtype=x.dtype)
    out, hn, _ = torch._VF.lstm(x, (h0, h0), weights, bias, 1, 0.0, False,
                                False, batch_first)
    return hn[0] if last else out


def loss_ref(p, x, y, bias, last, batch_first=True):
    h = lstm_ref(p, x, bias, last, batch_first=batch_first)
    if not last:
        return F.mse_loss(h, torch.as_tensor(y, dtype=h.dtype)), h
    logits = F.linear(h, p["fc.weight"], p["fc.bias"])
    return F.cross_entropy(logits, torch.from_numpy(y)), logits


def seq_shape(b, n, batch_first):
    """An activation's shape in the layout: [B, T, n] or [T, B, n]."""
    return (b, T, n) if batch_first else (T, b, n)


class MaskedLstmTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="sparsec-lstm-")
        cls.count = 0

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def model(self, last, bias, optimizer, seed=7, batch_first=True):
        text = (LAST_MODEL if last else SEQ_MODEL).replace(
            "BIAS", "true" if bias else "false").replace(
            "OPTIMIZER", optimizer).replace(
            "BATCH_FIRST", "true" if batch_first else "false").replace(
            "XDIMS", f"B, {T}" if batch_first else f"{T}, B").replace(
            "YDIMS", f"B, {T}" if batch_first else f"{T}, B")
        MaskedLstmTest.count += 1
        so = compile_text(text, self.tmp.name, f"lstm{self.count}")
        return Model(so, "LstmLast" if last else "LstmSeq", seed)

    @staticmethod
    def batch(rng, b, last, batch_first=True):
        x = rng.standard_normal(seq_shape(b, I, batch_first)).astype(
            np.float32)
        y = (rng.integers(0, C, b).astype(np.int64) if last else
             rng.standard_normal(seq_shape(b, H, batch_first)).astype(
                 np.float32))
        return x, y

    def test_layout_and_masks(self):
        m = self.model(True, True, "sgd(lr = 0.1)")
        info = {i["name"]: i for i in m.param_info()}
        self.assertEqual(list(info), [
            "rnn.weight_ih", "rnn.weight_hh", "rnn.bias_ih", "rnn.bias_hh",
            "rnn.weight_ih_mask", "rnn.weight_hh_mask", "fc.weight",
            "fc.bias"])
        self.assertEqual(info["rnn.weight_ih"]["shape"], (4 * H, I))
        self.assertEqual(info["rnn.weight_hh"]["shape"], (4 * H, H))
        p = lib_params(m)
        for w, n in (("rnn.weight_ih", 4 * H * I), ("rnn.weight_hh", 4 * H * H)):
            mask = p[w + "_mask"]
            self.assertTrue(np.all((mask == 0) | (mask == 1)))
            self.assertEqual(int(mask.sum()), round(0.5 * n), w)
            self.assertTrue(np.all(p[w][mask == 0] == 0), w)
            self.assertTrue(np.all(p[w][mask == 1] != 0), w)
        # nn.LSTM's init: every parameter uniform in +-1/sqrt(H).
        for n in ("rnn.weight_ih", "rnn.weight_hh", "rnn.bias_ih"):
            self.assertLessEqual(np.abs(p[n]).max(), 1 / np.sqrt(H))

    def test_forward_matches_nn_lstm(self):
        for bias, bf in ((True, True), (False, True), (True, False)):
            m = self.model(False, bias, "sgd(lr = 0.1)", batch_first=bf)
            p = {n: torch.tensor(v) for n, v in lib_params(m).items()}
            lstm = torch.nn.LSTM(I, H, batch_first=bf, bias=bias)
            names = ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0",
                     "bias_hh_l0"]
            lstm.load_state_dict(dict(zip(names, masked(p, bias))))
            x = np.random.default_rng(1).standard_normal(
                seq_shape(6, I, bf)).astype(np.float32)
            with torch.no_grad():
                out, (hn, cn) = lstm(torch.from_numpy(x))
            what = f"bias={bias} batch_first={bf}"
            check_close(self, m.forward([x], seq_shape(6, H, bf), batch=6),
                        out.numpy(), f"{what} output")
            check_close(self, lstm_ref(p, x, bias, True,
                                       batch_first=bf).numpy(),
                        hn[0].numpy(), f"{what} reference")

    def test_against_torch(self):
        for bf, last, bias in itertools.product((True, False), repeat=3):
            for dsl, make_opt in OPTIMIZERS:
                with self.subTest(batch_first=bf, last=last, bias=bias,
                                  optimizer=dsl):
                    self.check_against_torch(
                        self.model(last, bias, dsl, batch_first=bf), last,
                        bias, make_opt, bf)

    def check_against_torch(self, m, last, bias, make_opt, bf):
        p0 = lib_params(m)
        tp = {n: torch.tensor(v, requires_grad="mask" not in n)
              for n, v in p0.items()}
        trained = [n for n in p0 if "mask" not in n]
        opt = make_opt([tp[n] for n in trained])
        rng = np.random.default_rng(3)
        for step, b in enumerate((4, 9, 1, 6)):
            x, y = self.batch(rng, b, last, bf)
            out = m.forward([x], (b, C) if last else seq_shape(b, H, bf),
                            batch=b)
            opt.zero_grad()
            ref, ref_out = loss_ref(tp, x, y, bias, last, bf)
            check_close(self, out, ref_out.detach().numpy(),
                        f"step {step} forward")
            loss = m.train_step([x, y], batch=b)
            ref.backward()
            check_close(self, loss, ref.item(), f"step {step} loss")
            for n in trained:
                check_close(self, m.grad(n), tp[n].grad.numpy().reshape(-1),
                            f"step {step} grad {n}")
            opt.step()
            with torch.no_grad():  # masked entries re-zeroed in the reference
                for w in WEIGHTS:
                    tp[w].mul_(tp[w + "_mask"])
            got = lib_params(m)
            for n, t in tp.items():
                check_close(self, got[n], t.detach().numpy(),
                            f"step {step} {n}")
            for w in WEIGHTS:
                mask = got[w + "_mask"]
                np.testing.assert_array_equal(mask, p0[w + "_mask"])
                self.assertTrue(np.all(got[w][mask == 0] == 0),
                                f"step {step}: masked {w} entries moved")

    def test_stacked_against_torch(self):
        so = compile_text(STACK_MODEL, self.tmp.name, "lstm_stack")
        m = Model(so, "LstmStack", 3)
        p0 = lib_params(m)
        tp = {n: torch.tensor(v, requires_grad="mask" not in n)
              for n, v in p0.items()}
        trained = [n for n in p0 if "mask" not in n]
        opt = torch.optim.Adam([tp[n] for n in trained], lr=0.02)
        rng = np.random.default_rng(5)
        for step, b in enumerate((3, 8, 1)):
            x, y = self.batch(rng, b, True)
            opt.zero_grad()
            h = lstm_ref(tp, lstm_ref(tp, x, True, False, "r1"), False, True,
                         "r2")
            logits = F.linear(h, tp["fc.weight"], tp["fc.bias"])
            ref = F.cross_entropy(logits, torch.from_numpy(y))
            ref.backward()
            check_close(self, m.forward([x], (b, C)), logits.detach().numpy(),
                        f"step {step} forward")
            check_close(self, m.train_step([x, y]), ref.item(),
                        f"step {step} loss")
            for n in trained:
                check_close(self, m.grad(n), tp[n].grad.numpy().reshape(-1),
                            f"step {step} grad {n}")
            opt.step()
            got = lib_params(m)
            for n in trained:
                check_close(self, got[n], tp[n].detach().numpy(),
                            f"step {step} {n}")

    def test_odd_sizes_against_torch(self):
        """Sizes that leave vector remainders: T = 9, I = 17, H = 33."""
        t, i, h = 9, 17, 33
        text = SEQ_MODEL.replace("XDIMS", f"B, {t}").replace(
            "YDIMS", f"B, {t}").replace(f"{I}]", f"{i}]").replace(
            f"{H}]", f"{h}]").replace(
            f"masked_lstm({I}, {H},", f"masked_lstm({i}, {h},").replace(
            "BIAS", "true").replace("BATCH_FIRST", "true").replace(
            "OPTIMIZER", "sgd(lr = 0.1)")
        m = Model(compile_text(text, self.tmp.name, "lstm_odd"), "LstmSeq", 2)
        p = {n: torch.tensor(v, requires_grad="mask" not in n)
             for n, v in lib_params(m).items()}
        rng = np.random.default_rng(6)
        for b in (1, 11):
            x = rng.standard_normal((b, t, i)).astype(np.float32)
            y = rng.standard_normal((b, t, h)).astype(np.float32)
            for q in p.values():
                q.grad = None
            out = lstm_ref(p, x, True, False)
            ref = F.mse_loss(out, torch.from_numpy(y))
            ref.backward()
            check_close(self, m.forward([x], (b, t, h)),
                        out.detach().numpy(), f"B={b} forward")
            check_close(self, m.train_step([x, y]), ref.item(), f"B={b} loss")
            for n in ("rnn.weight_ih", "rnn.weight_hh", "rnn.bias_ih",
                      "rnn.bias_hh"):
                check_close(self, m.grad(n), p[n].grad.numpy().reshape(-1),
                            f"B={b} grad {n}")
            with torch.no_grad():
                for n, v in lib_params(m).items():
                    p[n].copy_(torch.from_numpy(v))

    def test_sequence_first_bce(self):
        """A sequence-first value read by bce_with_logits against a
        sequence-first target (the batch dimension second in both)."""
        text = """
model Bce {
  input x : f32[%(T)d, B, %(I)d]
  target y : f32[%(T)d, B, %(H)d]
  param rnn : masked_lstm(%(I)d, %(H)d, sparsity = 0.25)
  forward { h = rnn(x) }
  loss = bce_with_logits(h, y)
  optimizer = sgd(lr = 0.1)
}""" % dict(T=T, I=I, H=H)
        m = Model(compile_text(text, self.tmp.name, "lstm_bce"), "Bce", 1)
        p = {n: torch.tensor(v, requires_grad="mask" not in n)
             for n, v in lib_params(m).items()}
        rng = np.random.default_rng(8)
        x = rng.standard_normal((T, 5, I)).astype(np.float32)
        y = rng.random((T, 5, H)).astype(np.float32)
        h = lstm_ref(p, x, True, False, batch_first=False)
        ref = F.binary_cross_entropy_with_logits(h, torch.from_numpy(y))
        ref.backward()
        check_close(self, m.train_step([x, y], batch=5), ref.item(), "loss")
        for n in ("rnn.weight_ih", "rnn.weight_hh", "rnn.bias_ih"):
            check_close(self, m.grad(n), p[n].grad.numpy().reshape(-1), n)

    def test_finite_differences(self):
        eps = 1e-6
        for last, bf in ((False, True), (True, True), (False, False)):
            m = self.model(last, True, "sgd(lr = 1e-30)", batch_first=bf)
            rng = np.random.default_rng(11)
            for b in (1, 5):
                x, y = self.batch(rng, b, last, bf)
                p = {n: torch.tensor(v, dtype=torch.float64)
                     for n, v in lib_params(m).items()}

                def loss64():
                    with torch.no_grad():
                        return loss_ref(p, x, y, True, last, bf)[0].item()

                what = f"last={last} batch_first={bf} B={b}"
                check_close(self, m.train_step([x, y], batch=b), loss64(),
                            f"{what} loss")
                for n in ("rnn.weight_ih", "rnn.weight_hh", "rnn.bias_ih",
                          "rnn.bias_hh"):
                    got = m.grad(n)
                    flat = p[n].view(-1)
                    mask = (p[n + "_mask"].view(-1) if "weight" in n
                            else torch.ones_like(flat))
                    coords = rng.choice(flat.numel(), min(30, flat.numel()),
                                        replace=False)
                    check_masked_fd(self, got, flat, mask, coords, loss64,
                                    f"{what} {n}", eps)

    def test_gradual_pruning(self):
        """Zhu-Gupta sparsity s_t = final + (initial - final) (1 - (t -
        begin) / (end - begin))^3 at t = 2, 4, 6 in each mask on its own,
        taking the smallest |w| of the weights after the step's update."""
        so = compile_text(PRUNED_MODEL, self.tmp.name, "lstm_pruned")
        m = Model(so, "LstmPruned", 5)
        rng = np.random.default_rng(2)
        zeros = {w: 0 for w in WEIGHTS}
        for t in range(1, 8):
            x = rng.standard_normal((6, T, I)).astype(np.float32)
            y = rng.standard_normal((6, H)).astype(np.float32)
            before = lib_params(m)
            m.train_step([x, y])
            got = lib_params(m)
            s_t = (0.75 - 0.5 * (1 - (t - 2) / 4) ** 3
                   if t in (2, 4, 6) else None)
            for w in WEIGHTS:
                mask, n = got[w + "_mask"], got[w].size
                if s_t is not None:
                    zeros[w] = round(s_t * n)
                self.assertEqual(int(n - mask.sum()), zeros[w], f"t={t} {w}")
                self.assertTrue(np.all(got[w][mask == 0] == 0))
                # SGD without momentum: the updated weights before pruning.
                updated = np.abs(before[w] - np.float32(0.1) *
                                 m.grad(w).reshape(before[w].shape))
                pruned = (mask == 0) & (before[w + "_mask"] == 1)
                if s_t is not None and pruned.any():
                    self.assertLessEqual(updated[pruned].max(),
                                         updated[mask == 1].min(),
                                         f"t={t} {w}: not the smallest")

    def test_checkpoint_keeps_masks(self):
        so = compile_text(PRUNED_MODEL, self.tmp.name, "lstm_ck")
        a, b = Model(so, "LstmPruned", 1), Model(so, "LstmPruned", 2)
        rng = np.random.default_rng(4)
        for _ in range(3):
            a.train_step([rng.standard_normal((5, T, I)).astype(np.float32),
                          rng.standard_normal((5, H)).astype(np.float32)])
        path = os.path.join(self.tmp.name, "lstm.safetensors")
        a.save(path)
        b.load(path)
        pa, pb = lib_params(a), lib_params(b)
        for n in pa:
            np.testing.assert_array_equal(pa[n], pb[n], n)
        self.assertGreater(int((pb["rnn.weight_hh_mask"] == 0).sum()), 0)


if __name__ == "__main__":
    unittest.main()
