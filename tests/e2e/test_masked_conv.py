"""masked_conv2d through the generated library, against PyTorch.

* Forward, loss, gradients (weight, bias and, through a preceding 1x1
  masked conv, the input gradient) and several optimizer steps against
  torch.nn.functional.conv2d(x, W * M, b, stride, padding, dilation,
  groups) with the library's own weights and masks (read by name; the
  library keeps the weight as [out, in / groups * kh * kw], PyTorch's
  weight viewed row-major), for stride 2 + padding 1, dilation 2, groups 2
  without bias, and a mix of all with a non-square input; masked weights
  stay exactly 0 and the masks unchanged; also [height, width] pairs for
  kernel_size, stride, padding and dilation.
* Gradients in float64 central finite differences (masked coordinates
  must be exactly 0).
* Checkpoints hold `<name>.weight`, `<name>.weight_mask` and
  `<name>.bias` and restore the model exactly.
* 1, 2 and 3 threads give bit-identical results.
* Structured pruning removes whole output channels: those of smallest L1
  norm at the pruning step, after which the library still follows PyTorch
  with the pruned mask.

Run: /usr/bin/python3 -m unittest -v test_masked_conv  (from tests/e2e)
"""
import json
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
from test_finite_diff import FiniteDiffChecks

# name -> (masked_conv2d arguments, input [C, H, W], output channels,
# kernel [kh, kw], torch conv2d keywords)
CONFIGS = {
    "stride2_pad1": ("3, 6, 3, stride = 2, padding = 1, sparsity = 0.5",
                     (3, 9, 9), 6, (3, 3), dict(stride=2, padding=1)),
    "dilation2": ("3, 4, 3, dilation = 2, sparsity = 0.3", (3, 9, 9), 4,
                  (3, 3), dict(dilation=2)),
    "groups2_nobias": ("4, 6, 3, padding = 1, groups = 2, bias = false, "
                       "sparsity = 0.4", (4, 7, 7), 6, (3, 3),
                       dict(padding=1, groups=2)),
    "mixed": ("4, 8, 2, stride = 3, padding = 2, dilation = 2, groups = 4, "
              "density = 0.6", (4, 10, 8), 8, (2, 2),
              dict(stride=3, padding=2, dilation=2, groups=4)),
    "pairs": ("3, 4, [3, 2], stride = [2, 1], padding = [1, 0], "
              "dilation = [1, 2], sparsity = 0.3", (3, 9, 10), 4, (3, 2),
              dict(stride=(2, 1), padding=(1, 0), dilation=(1, 2))),
}

# A 1x1 masked conv first, so the configured layer's input gradient is
# needed (and checked through c0's weight gradient).
MODEL = """model Conv {{
  input x : f32[B, {c}, {h}, {w}]
  target y : f32[B, {o}, {oh}, {ow}]
  param c0 : masked_conv2d({c}, {c}, 1, sparsity = 0.25)
  param c : masked_conv2d({args})
  forward {{ out = c(relu(c0(x))) }}
  loss = mse(out, y)
  optimizer = {opt}
}}
"""


def lib_params(m):
    return {i["name"]: m.dense_weight(i) for i in m.param_info()}


# Run in a child process (the thread pool reads SPARSEC_NUM_THREADS once):
# 3 train steps of the library argv[1] (model Conv, input [C, H, W] argv[2],
# target argv[3]), then a digest of every output, loss and parameter.
CHILD = r"""
import hashlib, json, sys
import numpy as np
from sparsec_ctypes import Model
m = Model(sys.argv[1], "Conv", 5)
inp, out = json.loads(sys.argv[2]), json.loads(sys.argv[3])
rng = np.random.default_rng(2)
h = hashlib.sha256()
for b in (7, 1, 12):
    x = rng.standard_normal([b] + inp).astype(np.float32)
    y = rng.standard_normal([b] + out).astype(np.float32)
    h.update(m.forward([x], tuple([b] + out)).tobytes())
    h.update(np.float32(m.train_step([x, y])).tobytes())
    for info in m.param_info():
        h.update(m.values(info["name"]).tobytes())
print(h.hexdigest())
"""


class Conv:
    """One configuration: its library and PyTorch's view of the model."""

    def __init__(self, tmp, name, opt, seed=5):
        args, (c, h, w), o, self.k, self.kw = CONFIGS[name]
        self.in_shape = (c, h, w)
        g = self.kw.get("groups", 1)
        self.out_shape = tuple(F.conv2d(
            torch.zeros((1, c, h, w)), torch.zeros((o, c // g) + self.k),
            **self.kw).shape[1:])
        text = MODEL.format(c=c, h=h, w=w, o=o, oh=self.out_shape[1],
                            ow=self.out_shape[2], args=args, opt=opt)
        sdl = os.path.join(tmp, f"{name}.sdl")
        with open(sdl, "w") as f:
            f.write(text)
        so = os.path.join(tmp, f"lib{name}_{abs(hash(opt))}_{seed}.so")
        subprocess.run([oracle.sparsec_binary(), sdl, "-o", so], check=True)
        self.so = so
        self.m = Model(so, "Conv", seed)

    def torch_params(self, dtype=torch.float32):
        return {n: torch.tensor(v, dtype=dtype,
                                requires_grad="mask" not in n)
                for n, v in lib_params(self.m).items()}

    def loss(self, p, x, y):
        """PyTorch's loss with parameters `p` (library shapes)."""
        c = self.in_shape[0]
        dt = p["c.weight"].dtype
        w0 = (p["c0.weight"] * p["c0.weight_mask"]).view(c, c, 1, 1)
        h = F.relu(F.conv2d(torch.from_numpy(x).to(dt), w0, p["c0.bias"]))
        o = self.out_shape[0]
        w = (p["c.weight"] * p["c.weight_mask"]).view(
            (o, c // self.kw.get("groups", 1)) + self.k)
        out = F.conv2d(h, w, p.get("c.bias"), **self.kw)
        return F.mse_loss(out, torch.from_numpy(y).to(dt))

    def batch(self, rng, b):
        return (rng.standard_normal((b,) + self.in_shape).astype(np.float32),
                rng.standard_normal((b,) + self.out_shape).astype(np.float32))


class MaskedConvTest(FiniteDiffChecks):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="sparsec-conv-")

    def test_layout(self):
        conv = Conv(self.tmp.name, "groups2_nobias", "sgd(lr = 0.1)")
        info = {i["name"]: i["shape"] for i in conv.m.param_info()}
        self.assertEqual(info, {"c0.weight": (4, 4), "c0.bias": (4,),
                                "c0.weight_mask": (4, 4),
                                "c.weight": (6, 2 * 3 * 3),
                                "c.weight_mask": (6, 18)})
        p = lib_params(conv.m)
        mask = p["c.weight_mask"]
        self.assertEqual(int(mask.sum()), round(0.6 * 6 * 18))
        self.assertTrue(np.all(p["c.weight"][mask == 0] == 0))
        # nn.Conv2d's init bound 1/sqrt(in / groups * kh * kw).
        self.assertLessEqual(np.abs(p["c.weight"]).max(), 1 / np.sqrt(18))

    def test_against_torch(self):
        opts = [("sgd(lr = 0.1, momentum = 0.9)",
                 lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9)),
                ("adam(lr = 0.01, weight_decay = 0.1)",
                 lambda ps: torch.optim.Adam(ps, lr=0.01, weight_decay=0.1))]
        for k, name in enumerate(CONFIGS):
            dsl, make = opts[k % 2]
            with self.subTest(config=name, optimizer=dsl):
                self.check_steps(Conv(self.tmp.name, name, dsl), make)

    def check_steps(self, conv, make_opt, steps=(3, 1, 8, 5)):
        m = conv.m
        p0 = lib_params(m)
        tp = conv.torch_params()
        trained = [v for n, v in tp.items() if "mask" not in n]
        opt = make_opt(trained)
        rng = np.random.default_rng(7)
        for step, b in enumerate(steps):
            x, y = conv.batch(rng, b)
            out = m.forward([x], (b,) + conv.out_shape)
            with torch.no_grad():
                ref_out = F.conv2d(
                    F.relu(F.conv2d(torch.from_numpy(x),
                                    (tp["c0.weight"] * tp["c0.weight_mask"])
                                    .view(x.shape[1], x.shape[1], 1, 1),
                                    tp["c0.bias"])),
                    (tp["c.weight"] * tp["c.weight_mask"]).view(
                        (conv.out_shape[0], -1) + conv.k),
                    tp.get("c.bias"), **conv.kw)
            check_close(self, out, ref_out.numpy(), f"step {step} forward")
            loss = m.train_step([x, y])
            opt.zero_grad()
            ref = conv.loss(tp, x, y)
            ref.backward()
            check_close(self, loss, ref.item(), f"step {step} loss")
            for n in trained_names(tp):
                check_close(self, m.grad(n), tp[n].grad.numpy().reshape(-1),
                            f"step {step} grad {n}")
            opt.step()
            got = lib_params(m)
            for n, t in tp.items():
                check_close(self, got[n], t.detach().numpy(),
                            f"step {step} {n}")
            for layer in ("c0", "c"):
                mask = got[layer + ".weight_mask"]
                np.testing.assert_array_equal(mask, p0[layer + ".weight_mask"])
                self.assertTrue(np.all(got[layer + ".weight"][mask == 0] == 0),
                                f"step {step}: masked {layer} weights moved")

    def test_finite_differences(self):
        for name in ("mixed", "stride2_pad1", "pairs"):
            conv = Conv(self.tmp.name, name, "sgd(lr = 1e-30)")
            rng = np.random.default_rng(13)
            for b in (1, 4):
                x, y = conv.batch(rng, b)
                p = conv.torch_params(torch.float64)
                for t in p.values():
                    t.requires_grad_(False)

                def loss64():
                    return conv.loss(p, x, y).item()

                what = f"{name} B={b}"
                check_close(self, conv.m.train_step([x, y]), loss64(),
                            f"{what} loss")
                for n in trained_names(p):
                    got = conv.m.grad(n)
                    flat = p[n].view(-1)
                    coords = rng.choice(flat.numel(), min(40, flat.numel()),
                                        replace=False)
                    if n.endswith("weight"):
                        mask = p[n + "_mask"].view(-1)
                        for c in coords:
                            if mask[c] == 0:
                                self.assertEqual(got[c], 0.0,
                                                 f"{what} {n}[{c}] is masked")
                    self.assert_fd(f"{what} grad {n}", got[coords],
                                   [int(c) for c in coords], flat, loss64)

    def test_structured_pruning_removes_output_channels(self):
        # 8 output channels; at step 3 half of them (smallest L1 norm of
        # the weight after that step's update) are removed.
        CONFIGS["structured"] = (
            "4, 8, 3, padding = 1, prune = structured, final = 0.5, "
            "begin = 3, norm = l1", (4, 6, 6), 8, (3, 3), dict(padding=1))
        try:
            conv = Conv(self.tmp.name, "structured", "sgd(lr = 0.05)")
        finally:
            del CONFIGS["structured"]
        m = conv.m
        tp = conv.torch_params()
        trained = trained_names(tp)
        opt = torch.optim.SGD([tp[n] for n in trained], lr=0.05)
        rng = np.random.default_rng(3)
        for t in range(1, 6):
            x, y = conv.batch(rng, 6)
            loss = m.train_step([x, y])
            opt.zero_grad()
            ref = conv.loss(tp, x, y)
            ref.backward()
            opt.step()
            check_close(self, loss, ref.item(), f"t={t} loss")
            got = lib_params(m)
            mask = got["c.weight_mask"]
            rows = (mask == 0).all(axis=1)
            self.assertTrue(np.all(rows | (mask == 1).all(axis=1)),
                            f"t={t}: a channel is partly pruned")
            if t < 3:
                self.assertEqual(int(rows.sum()), 0, f"t={t}")
                continue
            if t == 3:
                with torch.no_grad():
                    norms = tp["c.weight"].abs().sum(1).numpy()
                    want = np.argsort(norms, kind="stable")[:4]
                    self.assertEqual(sorted(np.nonzero(rows)[0].tolist()),
                                     sorted(want.tolist()))
                    tp["c.weight_mask"][torch.from_numpy(rows)] = 0
                    tp["c.weight"][torch.from_numpy(rows)] = 0
            self.assertEqual(int(rows.sum()), 4, f"t={t}")
            self.assertTrue(np.all(got["c.weight"][rows] == 0))
            for n, v in tp.items():
                check_close(self, got[n], v.detach().numpy(), f"t={t} {n}")

    def test_checkpoint_round_trip(self):
        conv = Conv(self.tmp.name, "groups2_nobias", "adam(lr = 0.01)")
        rng = np.random.default_rng(5)
        for _ in range(3):
            conv.m.train_step(list(conv.batch(rng, 4)))
        path = os.path.join(self.tmp.name, "conv.safetensors")
        conv.m.save(path)
        with open(path, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(n))
        self.assertEqual(header["c.weight"]["shape"], [6, 18])
        self.assertEqual(header["c.weight_mask"]["shape"], [6, 18])
        self.assertNotIn("c.bias", header)
        self.assertEqual(header["c0.bias"]["shape"], [4])
        other = Conv(self.tmp.name, "groups2_nobias", "adam(lr = 0.01)",
                     seed=99)
        other.m.load(path)
        want, got = lib_params(conv.m), lib_params(other.m)
        for n, v in want.items():
            np.testing.assert_array_equal(got[n], v, n)
        x, y = conv.batch(rng, 5)
        self.assertEqual(conv.m.train_step([x, y]),
                         other.m.train_step([x, y]))

    def test_one_and_two_threads_are_bit_identical(self):
        # The batch (and the weight gradient's output channels) run on the
        # thread pool; each output element belongs to one iteration.
        conv = Conv(self.tmp.name, "mixed", "adam(lr = 0.01)")
        here = os.path.dirname(os.path.abspath(__file__))

        def digest(threads):
            proc = subprocess.run(
                [oracle.python_executable(), "-c", CHILD, conv.so,
                 json.dumps(list(conv.in_shape)),
                 json.dumps(list(conv.out_shape))],
                env=dict(os.environ, SPARSEC_NUM_THREADS=str(threads)),
                cwd=here, capture_output=True, text=True, check=False)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            return proc.stdout.split()[-1]

        one = digest(1)
        self.assertEqual(one, digest(2), "2 threads")
        self.assertEqual(one, digest(3), "3 threads")


def trained_names(p):
    return [n for n in p if "mask" not in n]


if __name__ == "__main__":
    unittest.main()
