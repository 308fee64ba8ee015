"""Parity of every model in models/ with PyTorch (float32).

For each model the library's own initial parameters are copied into torch
tensors (CSR weights as dense tensors with zeros off the pattern) and the
model is evaluated by the DSL interpreter of oracle.py. Checked, with
rel_err = max|lib - torch| / max(1e-6, max|torch|) <= 1e-5:

* parameter introspection and initialisation (names, shapes, exact nnz,
  initialiser bounds, CSR structure, seeding);
* forward output, loss and every parameter gradient at batch sizes 1, 3, 17
  and 64 (CSR gradients at the pattern's positions; embedding gradients as
  the per-id rows of the batch, in id order, and coalesced);
* the parameters after 10 SGD steps on fresh batches of varying size for
  several optimizer configurations, against torch.optim.SGD:
  - CSR weights keep their pattern: the torch side is a Hadamard-masked
    dense weight whose gradient is multiplied by the mask before each step;
  - embeddings: with momentum = weight_decay = 0 the torch side uses
    sparse=True lookups and torch.optim.SGD, which PyTorch defines for
    sparse gradients (= dense SGD); with momentum or weight decay PyTorch
    has no lazy mode, so the runtime's documented lazy per-row rule is
    computed by oracle.LazyRowSGD (numpy), which test_lazy_reference_*
    checks against torch.optim.SGD itself (every row touched, and one
    torch parameter per row stepped only when touched).

Run: /usr/bin/python3 -m unittest -v test_parity  (from tests/e2e)
"""
import tempfile
import unittest

import numpy as np
import torch

import oracle
from oracle import check_close

BATCHES = (1, 3, 17, 64)
STEPS = 10
# name: (sgd arguments, {step: learning rate set before that step})
CONFIGS = {
    "plain": (dict(lr=0.1), {}),
    "momentum": (dict(lr=0.1, momentum=0.9), {}),
    "dampening": (dict(lr=0.1, momentum=0.9, dampening=0.1), {}),
    "nesterov": (dict(lr=0.1, momentum=0.9, nesterov=True), {}),
    "weight_decay": (dict(lr=0.1, weight_decay=0.01), {}),
    "all": (dict(lr=0.05, momentum=0.5, weight_decay=0.01, nesterov=True), {}),
    "set_lr": (dict(lr=0.1, momentum=0.9), {5: 0.03}),
}
MODELS = oracle.model_files()


def torch_sgd_kwargs(opts):
    return dict(lr=opts["lr"], momentum=opts.get("momentum", 0.0),
                dampening=opts.get("dampening", 0.0),
                weight_decay=opts.get("weight_decay", 0.0),
                nesterov=opts.get("nesterov", False))


class ParityTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="sparsec-parity-")
        cls.cache = oracle.CompileCache(cls.tmp.name)
        cls.cache.prefetch([(m, {}) for m in MODELS] +
                           [(m, c[0]) for m in MODELS for c in CONFIGS.values()])

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    # -- introspection and initialisation ---------------------------------
    def check_param_info(self, model):
        compiled = self.cache.get(model)
        spec = compiled.spec
        m = compiled.instance(seed=11)
        info = {i["name"]: i for i in m.param_info()}
        want = spec.tensors()
        self.assertEqual(sorted(info), sorted(n for n, _, _ in want))
        lp = oracle.LibParams(m, spec)
        for name, layout, shape in want:
            i = info[name]
            self.assertEqual(i["shape"], shape, name)
            numel = int(np.prod(shape))
            param = spec.params[name.split(".")[0]]
            nnz = param.nnz() if layout == "csr" else numel
            self.assertEqual(i["nnz"], nnz, name)
            self.assertAlmostEqual(i["sparsity"], 1 - nnz / numel, 12, name)
            vals = m.values(name)
            self.assertEqual(vals.shape, (nnz,), name)
            self.assertTrue(np.all(np.isfinite(vals)), name)
            zeros = param.kind == "tensor" and param.args.get("init") == "zeros"
            if zeros:
                self.assertFalse(np.any(vals), f"{name}: init = zeros")
            elif nnz >= 2:
                self.assertGreater(np.unique(vals).size, 1,
                                   f"{name}: all values are equal")
            if layout == "csr":
                pos, crd = m.csr(name, shape[0], nnz)
                self.assertEqual((pos[0], pos[-1]), (0, nnz), name)
                self.assertTrue(np.all(np.diff(pos) >= 0), name)
                self.assertTrue(np.all((crd >= 0) & (crd < shape[1])), name)
                for r in range(shape[0]):
                    self.assertTrue(np.all(np.diff(crd[pos[r]:pos[r + 1]]) > 0),
                                    f"{name}: row {r} columns not ascending")
            a = param.args
            if param.kind in ("linear", "sparse_linear"):
                fan_in = a["in"] if param.kind == "linear" else \
                    param.nnz() / a["out"]
                bound = 1 / np.sqrt(fan_in)
                self.assertLessEqual(np.max(np.abs(vals)), bound * (1 + 1e-6),
                                     f"{name}: outside U(-1/sqrt({fan_in}), ..)")
                if nnz >= 50:
                    self.assertGreater(np.max(np.abs(vals)), bound * 0.5, name)
            elif param.kind == "embedding" and numel >= 100:
                self.assertLess(abs(vals.mean()), 0.4, name)
                self.assertTrue(0.7 < vals.std() < 1.3, f"{name}: N(0,1)?")
            elif param.kind == "tensor" and not zeros:
                scale = a.get("scale", 0.01)
                if a.get("init", "normal") == "uniform":
                    self.assertLessEqual(np.max(np.abs(vals)), scale, name)
                elif numel >= 20:
                    self.assertTrue(0.5 * scale < vals.std() < 1.5 * scale,
                                    f"{name}: N(0, {scale}^2)? std {vals.std()}")
        # Seeding: same seed, same bytes; another seed, other values.
        same = oracle.LibParams(compiled.instance(seed=11), spec)
        other = oracle.LibParams(compiled.instance(seed=12), spec)
        self.assertEqual(lp.digest(), same.digest())
        for name in lp.names():
            if np.any(lp.dense(name)):  # (not for zero-initialised tensors)
                self.assertFalse(np.array_equal(lp.dense(name),
                                                other.dense(name)),
                                 f"{name}: seeds 11 and 12 give equal values")

    # -- forward, loss, gradients -----------------------------------------
    def check_grads(self, model):
        compiled = self.cache.get(model)
        spec = compiled.spec
        out_shape = oracle.value_shapes(spec)[spec.output]
        m = compiled.instance(seed=1)
        rng = np.random.default_rng(100)
        for batch in BATCHES:
            with self.subTest(batch=batch):
                lp = oracle.LibParams(m, spec)  # the params as they are now
                tp = lp.torch_params()
                data = oracle.random_batch(spec, batch, rng)
                env, lookups = oracle.torch_forward(spec, tp, data)
                loss = oracle.torch_loss(spec, env, data)
                loss.backward()

                out = m.forward(oracle.lib_inputs(spec, data, False),
                                (batch,) + out_shape)
                check_close(self, out, env[spec.output].detach(),
                            f"{model} B={batch} forward output")
                lib_loss = m.train_step(oracle.lib_inputs(spec, data))
                check_close(self, lib_loss, loss.item(),
                            f"{model} B={batch} loss")
                for name in lp.names():
                    with self.subTest(param=name):
                        self.check_grad(lp, name, m.grad(name), tp[name].grad,
                                        lookups,
                                        f"{model} B={batch} grad {name}")

    def check_grad(self, lp, name, got, want, lookups, what):
        layout = lp.layout[name]
        shape = lp.info[name]["shape"]
        if layout == "dense":
            check_close(self, got.reshape(shape), want, what)
        elif layout == "csr":
            self.assertEqual(got.shape, (lp.info[name]["nnz"],), what)
            check_close(self, got, lp.at_pattern(name, want), what)
        else:
            mine = [(ids, out) for n, ids, out in lookups if n == name]
            ids = torch.cat([i.reshape(-1) for i, _ in mine]).numpy()
            rows = torch.cat([o.grad.reshape(-1, shape[1]) for _, o in mine])
            self.assertEqual(got.size, ids.size * shape[1],
                             f"{what}: one row per id expected")
            got = got.reshape(-1, shape[1])
            check_close(self, got, rows, what + " (rows in id order)")
            check_close(self, oracle.coalesce_rows(ids, got, shape[0]), want,
                        what + " (coalesced)")

    # -- SGD trajectories -------------------------------------------------
    def check_sgd(self, model):
        for config, (opts, lr_at) in CONFIGS.items():
            with self.subTest(config=config):
                self.run_sgd(model, config, opts, lr_at)

    def run_sgd(self, model, config, opts, lr_at):
        compiled = self.cache.get(model, **opts)
        spec = compiled.spec
        m = compiled.instance(seed=2)
        lp = oracle.LibParams(m, spec)
        initial = {n: lp.dense(n) for n in lp.names()}
        tp = lp.torch_params()
        kw = torch_sgd_kwargs(opts)
        lazy = kw["momentum"] != 0 or kw["weight_decay"] != 0
        embs = [n for n in lp.names() if lp.layout[n] == "embedding"]
        refs = {n: oracle.LazyRowSGD(initial[n], **kw) for n in embs} \
            if lazy else {}
        # (A placeholder without gradient when every parameter is lazy:
        # torch.optim.SGD refuses an empty list and skips grad-less params.)
        opt = torch.optim.SGD([tp[n] for n in lp.names() if n not in refs] or
                              [torch.zeros(1, requires_grad=True)], **kw)
        masks = {n: torch.tensor(lp.mask(n)) for n in lp.pattern}
        touched = {n: np.zeros(lp.info[n]["shape"][0], bool) for n in embs}
        rng = np.random.default_rng(200)
        what = f"{model} [{config}]"
        for step in range(STEPS):
            if step in lr_at:
                m.set_lr(lr_at[step])
                for group in opt.param_groups:
                    group["lr"] = lr_at[step]
                for ref in refs.values():
                    ref.lr = np.float32(lr_at[step])
            for n, ref in refs.items():
                tp[n] = torch.tensor(ref.p, requires_grad=True)
            data = oracle.random_batch(spec, BATCHES[step % len(BATCHES)], rng)
            opt.zero_grad(set_to_none=True)
            env, lookups = oracle.torch_forward(spec, tp, data,
                                                emb_sparse=not lazy)
            loss = oracle.torch_loss(spec, env, data)
            loss.backward()
            for n, mask in masks.items():
                tp[n].grad.mul_(mask)
            opt.step()
            for n, ids, _ in lookups:
                touched[n][ids.reshape(-1).numpy()] = True
            for n, ref in refs.items():
                ids = torch.cat([i.reshape(-1) for k, i, _ in lookups
                                 if k == n]).numpy()
                ref.step(ids, tp[n].grad.numpy())
            lib_loss = m.train_step(oracle.lib_inputs(spec, data))
            check_close(self, lib_loss, loss.item(), f"{what} loss, step {step}")
        self.assertEqual(m.step_count(), STEPS, what)
        for n in lp.names():
            want = refs[n].p if n in refs else tp[n].detach().numpy()
            if n in lp.pattern:
                self.assertEqual(np.count_nonzero(want * (1 - lp.mask(n))), 0,
                                 f"{what}: torch left the pattern of {n}")
                after = oracle.LibParams(m, spec)
                for a, b in zip(after.pattern[n], lp.pattern[n]):
                    np.testing.assert_array_equal(a, b, f"{what}: {n} pattern")
                got = m.values(n)
                want = lp.at_pattern(n, want)
            else:
                got = lp.dense(n)
            check_close(self, got, want, f"{what} {n} after {STEPS} steps")
            if n in touched:
                untouched = ~touched[n]
                np.testing.assert_array_equal(
                    lp.dense(n)[untouched], initial[n][untouched],
                    f"{what}: rows of {n} outside every batch changed")

    # -- the lazy reference itself ----------------------------------------
    def test_lazy_reference_matches_torch_dense(self):
        """Every row touched at every step: LazyRowSGD == torch.optim.SGD."""
        rng = np.random.default_rng(5)
        for config, (opts, _) in CONFIGS.items():
            kw = torch_sgd_kwargs(opts)
            table = rng.standard_normal((6, 3)).astype(np.float32)
            ref = oracle.LazyRowSGD(table, **kw)
            p = torch.tensor(table, requires_grad=True)
            opt = torch.optim.SGD([p], **kw)
            for _ in range(STEPS):
                g = rng.standard_normal(table.shape).astype(np.float32)
                p.grad = torch.tensor(g)
                opt.step()
                ref.step(np.arange(6), g)
            check_close(self, ref.p, p.detach().numpy(), config, tol=1e-6)

    def test_lazy_reference_matches_per_row_torch(self):
        """Some rows per step: LazyRowSGD == one torch.optim.SGD per row,
        stepped only when its row occurs in the batch."""
        rng = np.random.default_rng(6)
        for config, (opts, _) in CONFIGS.items():
            kw = torch_sgd_kwargs(opts)
            table = rng.standard_normal((8, 2)).astype(np.float32)
            ref = oracle.LazyRowSGD(table, **kw)
            rows = [torch.tensor(r, requires_grad=True) for r in table]
            opts_r = [torch.optim.SGD([r], **kw) for r in rows]
            for _ in range(STEPS):
                ids = rng.integers(0, 8, 5)
                g = np.zeros_like(table)
                np.add.at(g, ids, rng.standard_normal((5, 2)).astype(np.float32))
                for r in np.unique(ids):
                    rows[r].grad = torch.tensor(g[r])
                    opts_r[r].step()
                ref.step(ids, g)
            want = torch.stack([r.detach() for r in rows]).numpy()
            check_close(self, ref.p, want, config, tol=1e-6)


def _add_model_tests():
    for model in MODELS:
        for kind in ("param_info", "grads", "sgd"):
            def test(self, model=model, kind=kind):
                getattr(self, "check_" + kind)(model)
            test.__doc__ = f"{kind}: models/{model}.sdl"
            setattr(ParityTest, f"test_{kind}_{model}", test)


_add_model_tests()

if __name__ == "__main__":
    unittest.main()
