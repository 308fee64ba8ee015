"""embedding_bag and nn.Embedding's options against PyTorch.

Models (models/embedding/): `bags` (sum, sum with per-sample weights, mean,
max), `bags_pad` (the same with padding_idx), `emb_opts` (embedding with
padding_idx, max_norm with the 2- and 1-norm, scale_grad_by_freq, and all
three together) and `bag_opts` (bags with max_norm, norm_type 3,
scale_grad_by_freq). Batches repeat ids within a bag and, for tables with a
padding id, hold padding ids and a bag (sample) of padding only. Checked
with rel_err = max|lib - torch| / max|torch| <= 1e-5:

* forward output, the tables after forward (max_norm renorms the rows a
  batch references in place, in forward and in train_step, as
  torch.embedding_renorm_ does in F.embedding / F.embedding_bag), loss,
  and the gradient of every table at batch sizes 1, 5, 16, against
  PyTorch's own kernels (F.embedding, F.embedding_bag) started from the
  library's parameters: the coalesced gradient equals the table's
  gradient, and the per-id rows the library reports (one per id in batch
  order; 0 for padding ids; divided by the id's count with
  scale_grad_by_freq; for max the feature goes to the first position of
  the bag holding the maximum) equal the gradients of the rows looked up
  by oracle.expanded_bag, which is itself checked against F.embedding_bag.
  Exception: torch 1.13's CPU embedding_bag backward divides by the wrong
  count with scale_grad_by_freq (pytorch/pytorch#190063, fixed upstream),
  so those tables are compared with F.embedding's (documented) scaling;
* max ties (equal rows, a row equal to another in some features,
  duplicate ids) against F.embedding_bag, which keeps the first maximum;
* bags of padding only give 0; padding rows start at 0, get zero gradient
  rows and never change, whatever the optimizer;
* max_norm: rows referenced by a forward are renormed in place to the
  PyTorch result, the others keep their bytes;
* 10 SGD steps (plain lazy; momentum + weight decay with sparse = dense
  against torch.optim.SGD; momentum + weight decay + Nesterov lazy against
  oracle.LazyRows, the documented per-row rule), then a forward;
* gradients of `bags` and `bags_pad` against float64 central finite
  differences of F.embedding_bag (max at non-tie points).

Run: /usr/bin/python3 -m unittest -v test_embedding  (from tests/e2e)
"""
import tempfile
import unittest

import numpy as np
import torch
import torch.nn.functional as F

import oracle
from oracle import check_close

MODELS = ["bags", "bags_pad", "emb_opts", "bag_opts"]
BATCHES = (1, 5, 16)
STEPS = 10
FAST = ("-O", "0")   # optimizer variants: see test_optimizers.py
SGD = {
    "plain_lazy": None,   # the model's own sgd(lr = 0.5), default -O
    "momentum_wd_dense": "sgd(lr = 0.2, momentum = 0.9, weight_decay = 0.01,"
                         " sparse = dense)",
    "nesterov_wd_lazy": "sgd(lr = 0.2, momentum = 0.9, weight_decay = 0.01, "
                        "nesterov = true)",
}
FD_EPS, FD_RTOL, FD_COORDS = 1e-6, 1e-3, 40


def path(model):
    return "embedding/" + model


def readers(spec):
    """{integer input: [embedding / embedding_bag params applied to it]}."""
    out = {}

    def walk(e):
        if e[0] == "call":
            p = spec.params.get(e[1])
            if p is not None and p.kind in ("embedding", "embedding_bag"):
                out.setdefault(e[2][0][1], []).append(p)
            for a in e[2]:
                walk(a)
        elif e[0] in ("add", "matmul"):
            walk(e[1])
            walk(e[2])

    for _, e in spec.stmts:
        walk(e)
    return out


def tables(spec):
    return [n for n, lay, _ in spec.tensors() if lay == "embedding"]


def param_of(spec, tensor):
    return spec.params[tensor.rsplit(".", 1)[0]]


def make_batch(spec, batch, rng):
    """Random ids with repeats within a bag (column 1 copies column 0 in
    about 40% of the samples); for inputs read by a table with a padding
    id, about 25% padding ids and sample 1 all padding."""
    data = oracle.random_batch(spec, batch, rng)
    for name, params in readers(spec).items():
        ids = data[name]
        if ids.ndim == 2 and ids.shape[1] >= 2:
            rows = rng.random(batch) < 0.4
            ids[rows, 1] = ids[rows, 0]
        pads = {p.args["padding_idx"] for p in params
                if "padding_idx" in p.args}
        if pads:
            (pad,) = pads
            ids[rng.random(ids.shape) < 0.25] = pad
            if batch >= 2:
                ids[1] = pad
    return data


def lib_ids(lp, name, data, spec):
    """The ids (flat, batch order) the table `name` was looked up with."""
    p = param_of(spec, name)
    return np.concatenate([data[i].reshape(-1)
                           for i, ps in readers(spec).items() if p in ps])


class EmbeddingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="sparsec-embedding-")
        cls.cache = oracle.CompileCache(cls.tmp.name)
        variants = [(path(m), {}) for m in MODELS]
        variants += [(path(m), {"optimizer": src, "flags": FAST})
                     for m in MODELS for src in SGD.values() if src]
        cls.cache.prefetch(variants)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def compiled(self, model, config="plain_lazy"):
        src = SGD[config]
        if src is None:
            return self.cache.get(path(model))
        return self.cache.get(path(model), optimizer=src, flags=FAST)

    # -- forward, tables after forward, loss, gradients --------------------
    def check_step(self, what, m, spec, data):
        """One forward + train_step of the library against torch, from the
        library's current parameters. Returns the torch tensors (PyTorch
        kernels) after their forward and backward."""
        lp = oracle.LibParams(m, spec)
        out_shape = oracle.value_shapes(spec)[spec.output]
        batch = len(next(iter(data.values())))
        tf, te = lp.torch_params(), lp.torch_params()
        out = m.forward(oracle.lib_inputs(spec, data, False),
                        (batch,) + out_shape)
        env_f, _ = oracle.torch_forward(spec, tf, data, bags="functional")
        check_close(self, out, env_f[spec.output].detach(),
                    f"{what}: forward output")
        for n in tables(spec):
            check_close(self, lp.dense(n), tf[n].detach(),
                        f"{what}: {n} after forward (max_norm renorm)")
        loss_f = oracle.torch_loss(spec, env_f, data)
        loss_f.backward()
        env_e, lookups = oracle.torch_forward(spec, te, data)
        loss_e = oracle.torch_loss(spec, env_e, data)
        loss_e.backward()
        # The oracle's expanded bags against PyTorch's kernels.
        check_close(self, env_e[spec.output].detach(),
                    env_f[spec.output].detach(),
                    f"{what}: oracle.expanded_bag forward vs F.embedding_bag",
                    tol=1e-6)
        lib_loss = m.train_step(oracle.lib_inputs(spec, data))
        check_close(self, lib_loss, loss_f.item(), f"{what}: loss")
        for n in tables(spec):
            p = param_of(spec, n)
            freq_bag = p.kind == "embedding_bag" and \
                p.args.get("scale_grad_by_freq", False)
            if not freq_bag:
                check_close(self, te[n].grad, tf[n].grad,
                            f"{what}: oracle.expanded_bag gradient of {n} "
                            "vs F.embedding_bag", tol=1e-6)
            want_table = (te if freq_bag else tf)[n].grad
            ids, want_rows = oracle.expected_id_rows(spec, n, lookups)
            dim = p.args["dim"]
            got = m.grad(n)
            self.assertEqual(got.size, ids.size * dim,
                             f"{what}: {n}: one gradient row per id expected")
            got = got.reshape(-1, dim)
            check_close(self, got, want_rows,
                        f"{what}: gradient rows of {n} (per id, batch order)")
            check_close(self, oracle.coalesce_rows(ids, got, p.args["num"]),
                        want_table, f"{what}: gradient of {n} (coalesced)")
            pad = p.args.get("padding_idx")
            if pad is not None:
                self.assertFalse(np.any(got[ids == pad]),
                                 f"{what}: {n}: gradient rows of padding id "
                                 f"{pad} are not 0")
        return tf

    def check_grads(self, model):
        compiled = self.compiled(model)
        spec = compiled.spec
        m = compiled.instance(seed=5)
        rng = np.random.default_rng(500)
        for batch in BATCHES:
            with self.subTest(batch=batch):
                self.check_step(f"{model} B={batch}", m, spec,
                                make_batch(spec, batch, rng))

    # -- SGD trajectories -------------------------------------------------
    def check_sgd(self, model):
        for config in SGD:
            with self.subTest(config=config):
                self.run_sgd(model, config)

    def run_sgd(self, model, config):
        compiled = self.compiled(model, config)
        spec = compiled.spec
        kind, hyper, common = oracle.optimizer_settings(spec)
        m = compiled.instance(seed=6)
        lp = oracle.LibParams(m, spec)
        initial = {n: lp.dense(n) for n in lp.names()}
        tp = lp.torch_params()
        names = tables(spec)
        lazy = common["sparse"] == "lazy" and \
            (hyper["momentum"] != 0 or hyper["weight_decay"] != 0)
        refs = {n: oracle.LazyRows(initial[n], kind, hyper,
                                   param_of(spec, n).args.get("padding_idx"))
                for n in names} if lazy else {}
        # Plain SGD: lazy = dense (an untouched row has a zero gradient).
        opt = oracle.torch_optimizer(
            kind, hyper, [tp[n] for n in lp.names() if n not in refs] or
            [torch.zeros(1, requires_grad=True)])
        touched = {n: np.zeros(lp.info[n]["shape"][0], bool) for n in names}
        rng = np.random.default_rng(600)
        what = f"{model} [{config}]"
        for step in range(STEPS):
            for n, ref in refs.items():
                tp[n] = torch.tensor(ref.p, requires_grad=True)
            data = make_batch(spec, (3, 8, 16)[step % 3], rng)
            opt.zero_grad(set_to_none=True)
            env, lookups = oracle.torch_forward(spec, tp, data)
            for n, ref in refs.items():     # max_norm renormed tp[n]
                ref.p[...] = tp[n].detach().numpy()
            loss = oracle.torch_loss(spec, env, data)
            loss.backward()
            opt.step()
            for n, ids, _ in lookups:
                touched[n][ids.reshape(-1).numpy()] = True
            for n, ref in refs.items():
                ids = torch.cat([i.reshape(-1) for k, i, _ in lookups
                                 if k == n]).numpy()
                ref.step(ids, tp[n].grad.numpy(), hyper["lr"])
            lib_loss = m.train_step(oracle.lib_inputs(spec, data))
            check_close(self, lib_loss, loss.item(), f"{what}: loss, step {step}")
        for n in names:
            want = refs[n].p if n in refs else tp[n].detach().numpy()
            check_close(self, lp.dense(n), want, f"{what}: {n} after {STEPS} "
                        "steps")
            pad = param_of(spec, n).args.get("padding_idx")
            if pad is not None:
                self.assertTrue(touched[n][pad], f"{what}: no padding id")
                self.assertFalse(np.any(lp.dense(n)[pad]),
                                 f"{what}: padding row {pad} of {n} changed")
            if refs:
                untouched = ~touched[n]
                np.testing.assert_array_equal(
                    lp.dense(n)[untouched], initial[n][untouched],
                    f"{what}: lazy rows of {n} outside every batch changed")
        # Forward and a step from the trained parameters.
        self.check_step(f"{what} after training", m, spec,
                        make_batch(spec, 5, rng))

    # -- specific semantics -----------------------------------------------
    def test_padding_rows_start_at_zero(self):
        for model in MODELS:
            compiled = self.compiled(model)
            spec = compiled.spec
            lp = oracle.LibParams(compiled.instance(seed=9), spec)
            for n in tables(spec):
                pad = param_of(spec, n).args.get("padding_idx")
                table = lp.dense(n)
                rows = [r for r in range(table.shape[0]) if r != pad]
                self.assertTrue(np.all(np.any(table[rows] != 0, axis=1)),
                                f"{model}: {n}: a non-padding row is 0")
                if pad is not None:
                    self.assertFalse(np.any(table[pad]),
                                     f"{model}: {n}: padding row {pad} "
                                     "does not start at 0")

    def test_bag_max_ties(self):
        """Equal rows, partly equal rows and repeated ids in max bags: the
        library agrees with F.embedding_bag (which keeps the first
        maximum) in output and gradient, and gives each feature's gradient
        row to the first position holding the maximum."""
        compiled = self.compiled("bags")
        spec = compiled.spec
        m = compiled.instance(seed=10)
        table = m.values("bmax.weight").reshape(9, 5)   # the library's own
        table[2] = table[1]
        table[4, :3] = table[3, :3]
        table[7] = table[6] + 1.0
        rng = np.random.default_rng(11)
        data = oracle.random_batch(spec, 7, rng)
        data["ids32"] = np.array([[1, 2, 5], [2, 1, 5], [3, 4, 4], [4, 3, 3],
                                  [6, 6, 6], [5, 2, 1], [7, 6, 7]], np.int32)
        self.check_step("bags, max ties", m, spec, data)

    def test_all_padding_bags_are_zero(self):
        compiled = self.compiled("bags_pad")
        spec = compiled.spec
        m = compiled.instance(seed=12)
        rng = np.random.default_rng(13)
        data = make_batch(spec, 4, rng)
        data["ids"][0] = 0
        data["ids32"][0] = 3
        data["ids"][2] = [0, 5, 0]
        out = m.forward(oracle.lib_inputs(spec, data, False), (4, 16))
        self.assertFalse(np.any(out[0]), f"bags of padding only: {out[0]}")
        self.check_step("bags_pad, padding-only bags", m, spec, data)

    def test_max_norm_renorms_referenced_rows_in_place(self):
        """forward renorms exactly the rows its ids reference whose norm
        exceeds max_norm (to PyTorch's values, norm <= max_norm); the other
        rows keep their bytes, even where their norm exceeds max_norm.
        (Tables scaled by 2 first, so that most rows exceed it; ids below
        6 of 8 rows.)"""
        for model in ("emb_opts", "bag_opts"):
            compiled = self.compiled(model)
            spec = compiled.spec
            rng = np.random.default_rng(14)
            for call in ("forward", "train_step"):
                m = compiled.instance(seed=15)
                for n in tables(spec):
                    m.values(n)[:] *= 2
                lp = oracle.LibParams(m, spec)
                before = {n: lp.dense(n) for n in tables(spec)}
                data = make_batch(spec, 3, rng)
                for name in readers(spec):
                    data[name] = rng.integers(0, 6, data[name].shape).astype(
                        data[name].dtype)
                tp = lp.torch_params()
                with torch.no_grad():
                    oracle.torch_forward(spec, tp, data, bags="functional")
                if call == "forward":
                    shape = (3,) + oracle.value_shapes(spec)[spec.output]
                    m.forward(oracle.lib_inputs(spec, data, False), shape)
                else:
                    # (lr 0.5: the referenced rows then also move; compare
                    # the others only, and the renorm through the loss.)
                    m.train_step(oracle.lib_inputs(spec, data))
                for n in tables(spec):
                    p = param_of(spec, n)
                    ids = np.unique(lib_ids(lp, n, data, spec))
                    other = np.setdiff1d(np.arange(p.args["num"]), ids)
                    np.testing.assert_array_equal(
                        lp.dense(n)[other], before[n][other],
                        f"{model} {call}: unreferenced rows of {n} changed")
                    max_norm = p.args.get("max_norm")
                    if max_norm is None or call != "forward":
                        continue
                    check_close(self, lp.dense(n)[ids], tp[n].detach()[ids],
                                f"{model} forward: renormed rows of {n}")
                    norms = torch.linalg.vector_norm(
                        torch.tensor(lp.dense(n)[ids], dtype=torch.float64),
                        ord=float(p.args.get("norm_type", 2.0)), dim=1)
                    self.assertTrue(bool(torch.all(norms <= max_norm * (1 + 1e-6))),
                                    f"{model}: {n} norms {norms} > {max_norm}")
                    renormed = np.any(before[n][ids] != lp.dense(n)[ids], 1)
                    self.assertTrue(renormed.any(),
                                    f"{model}: no row of {n} was renormed")

    def test_scale_grad_by_freq_many_repeats(self):
        """One id repeated across the whole batch (count 3B - 1) next to a
        single other id: the gradient rows are divided by the counts."""
        compiled = self.compiled("emb_opts")
        spec = compiled.spec
        m = compiled.instance(seed=16)
        rng = np.random.default_rng(17)
        data = make_batch(spec, 6, rng)
        data["d"][:] = 5
        data["d"][0, 0] = 1
        data["e"][:] = 4
        data["e"][2] = [0, 0, 6]
        self.check_step("emb_opts, repeated ids", m, spec, data)

    # -- finite differences ---------------------------------------------
    def check_finite_diff(self, model):
        compiled = self.compiled(model)
        spec = compiled.spec
        m = compiled.instance(seed=18)
        rng = np.random.default_rng(19)
        for batch in (1, 7):
            lp = oracle.LibParams(m, spec)
            params = lp.torch_params(torch.float64, requires_grad=False)
            data = make_batch(spec, batch, rng)

            def loss64():
                with torch.no_grad():
                    env, _ = oracle.torch_forward(spec, params, data,
                                                  bags="functional")
                    return oracle.torch_loss(spec, env, data).item()

            lib_loss = m.train_step(oracle.lib_inputs(spec, data))
            check_close(self, lib_loss, loss64(), f"{model} B={batch} loss "
                        "vs float64")
            for n in tables(spec):
                p = param_of(spec, n)
                ids = lib_ids(lp, n, data, spec)
                grad = oracle.coalesce_rows(ids, m.grad(n), p.args["num"])
                rows = [r for r in np.unique(ids)
                        if r != p.args.get("padding_idx")]
                cells = [(r, j) for r in rows for j in range(p.args["dim"])]
                pick = rng.choice(len(cells), min(FD_COORDS, len(cells)),
                                  replace=False)
                coords = [cells[k] for k in pick]
                fd = np.empty(len(coords))
                for k, c in enumerate(coords):
                    old = params[n][c].item()
                    params[n][c] = old + FD_EPS
                    up = loss64()
                    params[n][c] = old - FD_EPS
                    down = loss64()
                    params[n][c] = old
                    fd[k] = (up - down) / (2 * FD_EPS)
                got = np.array([grad[c] for c in coords])
                tol = FD_RTOL * np.abs(fd) + 1e-6 + \
                    1e-4 * np.max(np.abs(fd), initial=0)
                bad = np.abs(got - fd) > tol
                if np.any(bad):
                    k = int(np.argmax(np.abs(got - fd) - tol))
                    self.fail(f"{model} B={batch} {n}: {bad.sum()} of "
                              f"{len(coords)} coordinates differ from finite "
                              f"differences; worst at {coords[k]}: library "
                              f"{got[k]!r}, float64 central difference "
                              f"{fd[k]!r}")
                # The padding row's gradient is 0 (PyTorch: no gradient).
                pad = p.args.get("padding_idx")
                if pad is not None:
                    self.assertFalse(np.any(grad[pad]), f"{model} {n}")


def _add_tests():
    for model in MODELS:
        for kind in ("grads", "sgd"):
            def test(self, model=model, kind=kind):
                getattr(self, "check_" + kind)(model)
            test.__doc__ = f"{kind}: models/embedding/{model}.sdl"
            setattr(EmbeddingTest, f"test_{kind}_{model}", test)
    for model in ("bags", "bags_pad"):
        def test(self, model=model):
            self.check_finite_diff(model)
        test.__doc__ = f"finite differences: models/embedding/{model}.sdl"
        setattr(EmbeddingTest, f"test_finite_diff_{model}", test)


_add_tests()

if __name__ == "__main__":
    unittest.main()
