"""Gradients of every model in models/ against central finite differences.

The library computes in float32; the reference is the loss evaluated in
float64 (the DSL interpreter of oracle.py on torch float64 tensors) at the
library's own parameters, taken just before its train_step. For each
parameter up to 50 random coordinates are checked:

* dense parameters: any element;
* CSR weights: stored positions only (the gradient lives on the pattern);
* embedding tables: elements of rows whose id occurs in the batch; the
  library's per-id rows are summed per id (coalesced) first.

d = (L(p + eps e) - L(p - eps e)) / (2 eps) with eps = 1e-6, and
|lib - d| <= 1e-3 |d| + 1e-6 + 1e-4 max|d| per coordinate (relative 1e-3,
with a floor for coordinates much smaller than the parameter's largest).
The loss itself is also compared (relative 1e-5).

Beyond models/ (every model there, including sparse_small_world's
connectivity = small_world): sparse_linear with a user connectivity file
(models/conn/user_conn.sdl), and k-winners layers (models/kwinners: 1-D,
1-D with boost decay, kwinners2d global with decay and local), whose float64
loss is evaluated here: fc2(flatten(kw(fc1(x) as [B, *hidden]))) with
test_kwinners's reference mask recomputed at every evaluation from the
library's duty cycles (after 5 warm-up train steps, so the boost and its
decay matter) and k. The batches are drawn away from ties: the gap between
the k-th and (k+1)-th boosted value is at least 1e-3 everywhere, far more
than an eps step moves it.

Run: /usr/bin/python3 -m unittest -v test_finite_diff  (from tests/e2e)
"""
import os
import re
import subprocess
import tempfile
import unittest

import numpy as np
import torch

import oracle
import test_kwinners as kwref
from sparsec_ctypes import Model

EPS = 1e-6
RTOL = 1e-3
COORDS = 50
BATCHES = (1, 7)


class FiniteDiffChecks(unittest.TestCase):
    """The checks shared by the test classes below (no tests)."""

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def check_model(self, model):
        self.check_compiled(model, self.cache.get(model))

    def check_compiled(self, model, compiled):
        spec = compiled.spec
        m = compiled.instance(seed=4)
        rng = np.random.default_rng(300)
        for batch in BATCHES:
            with self.subTest(batch=batch):
                self.check_batch(model, spec, m, batch, rng)

    def check_batch(self, model, spec, m, batch, rng):
        lp = oracle.LibParams(m, spec)
        params = lp.torch_params(torch.float64, requires_grad=False)
        data = oracle.random_batch(spec, batch, rng)

        def loss64():
            with torch.no_grad():
                env, _ = oracle.torch_forward(spec, params, data)
                return oracle.torch_loss(spec, env, data).item()

        lib_loss = m.train_step(oracle.lib_inputs(spec, data))
        oracle.check_close(self, lib_loss, loss64(),
                           f"{model} B={batch} loss vs float64")
        for name in lp.names():
            with self.subTest(param=name):
                self.check_param(f"{model} B={batch} grad {name}", lp,
                                 spec, name, params[name], data, loss64, rng)

    def check_param(self, what, lp, spec, name, p, data, loss64, rng):
        """FD of loss64() w.r.t. `p` (the float64 tensor of `name`, changed
        in place and restored) against the library's gradient."""
        got, coords = self.library_grad(lp, spec, name, lp.model.grad(name),
                                        data, rng)
        self.assert_fd(what, got, coords, p, loss64)

    def assert_fd(self, what, got, coords, p, loss64):
        """Central differences of loss64() w.r.t. `p` at `coords` against
        the library's gradient values `got`."""
        fd = np.empty(len(coords))
        for k, c in enumerate(coords):
            old = p[c].item()
            p[c] = old + EPS
            up = loss64()
            p[c] = old - EPS
            down = loss64()
            p[c] = old
            fd[k] = (up - down) / (2 * EPS)
        tol = RTOL * np.abs(fd) + 1e-6 + 1e-4 * np.max(np.abs(fd), initial=0)
        bad = np.abs(got - fd) > tol
        if np.any(bad):
            k = int(np.argmax(np.abs(got - fd) - tol))
            self.fail(f"{what}: {bad.sum()} of "
                      f"{len(coords)} coordinates differ from finite "
                      f"differences; worst at {coords[k]}: library "
                      f"{got[k]!r}, float64 central difference {fd[k]!r}")

    @staticmethod
    def library_grad(lp, spec, name, grad, data, rng):
        """(library gradient at the chosen coordinates, coordinates)."""
        layout = lp.layout[name]
        shape = lp.info[name]["shape"]
        if layout == "dense":
            flat = rng.choice(grad.size, min(COORDS, grad.size), replace=False)
            return grad[flat], [np.unravel_index(i, shape) for i in flat]
        if layout == "csr":
            rows, cols = lp.pattern[name]
            ks = rng.choice(rows.size, min(COORDS, rows.size), replace=False)
            return grad[ks], [(rows[k], cols[k]) for k in ks]
        # Embedding: rows for the ids of the input this table reads.
        ids = np.concatenate([data[i.name].reshape(-1) for i in spec.inputs
                              if _reads(spec, name, i.name)])
        table = oracle.coalesce_rows(ids, grad, shape[0])
        cells = [(r, j) for r in np.unique(ids) for j in range(shape[1])]
        pick = rng.choice(len(cells), min(COORDS, len(cells)), replace=False)
        coords = [cells[k] for k in pick]
        return np.array([table[c] for c in coords]), coords


class FiniteDiffTest(FiniteDiffChecks):
    """Every model of models/ (test_<model>, added below)."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="sparsec-fd-")
        cls.cache = oracle.CompileCache(cls.tmp.name)
        cls.cache.prefetch([(m, {}) for m in oracle.model_files()])


class LayerFiniteDiffTest(FiniteDiffChecks):
    """Models outside models/: a user connectivity file and k-winners."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="sparsec-fd-layers-")
        cls.cache = oracle.CompileCache(cls.tmp.name)

    def test_sparse_linear_user_connectivity(self):
        # The pattern comes from the library; the oracle reads the model
        # without the (string) connectivity argument it does not parse.
        so = os.path.join(self.tmp.name, "libuser_conn.so")
        subprocess.run([oracle.sparsec_binary(),
                        os.path.join(oracle.MODELS_DIR, "conn", "user_conn.sdl"),
                        "-o", so], check=True)
        text = re.sub(r',\s*connectivity\s*=\s*"[^"]*"', "",
                      oracle.model_text("conn/user_conn"))
        compiled = oracle.Compiled(so, so[:-3] + ".h", oracle.parse(text))
        lp = oracle.LibParams(compiled.instance(seed=4), compiled.spec)
        self.assertLess(lp.info["fc.weight"]["nnz"], 9 * 12)
        self.check_compiled("user_conn", compiled)

    def check_kwinners(self, stem, name, hidden, k, strength, factor=1.0,
                       decay_period=0, local=False):
        m = Model(kwref.compile_model(stem, self.tmp.name), name, 4)
        n, n_in, warmup = int(np.prod(hidden)), 10 if len(hidden) > 1 else 12, 5
        rng = np.random.default_rng(11)
        for _ in range(warmup):
            m.train_step([rng.standard_normal((16, n_in)).astype(np.float32),
                          rng.standard_normal((16, 3)).astype(np.float32)])
        s = kwref.boost_strength(strength, factor, decay_period, warmup)
        duty = m.values("kw.duty_cycle").copy()
        names = ("fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias")
        shapes = {"fc1.weight": (n, n_in), "fc2.weight": (3, n)}
        params = {w: torch.tensor(m.values(w), dtype=torch.float64).reshape(
            shapes.get(w, (-1,))) for w in names}

        def loss64_of(x, y):
            with torch.no_grad():
                h = torch.tensor(x, dtype=torch.float64) @ \
                    params["fc1.weight"].T + params["fc1.bias"]
                h = h.reshape((len(x),) + hidden)
                mask = kwref.winners(h.numpy(), duty, k, s, local)
                out = (h * torch.tensor(mask)).reshape(len(x), n) @ \
                    params["fc2.weight"].T + params["fc2.bias"]
                return torch.mean((out - torch.tensor(y, dtype=torch.float64))
                                  ** 2).item()

        for batch in (1, 7):
            x = self.untied_batch(params, duty, hidden, k, s, local, batch,
                                  n_in, rng)
            y = rng.standard_normal((batch, 3)).astype(np.float32)
            what = f"{stem} B={batch}"
            oracle.check_close(self, m.train_step([x, y]), loss64_of(x, y),
                               f"{what} loss vs float64")
            for w in names:
                grad = m.grad(w)
                flat = rng.choice(grad.size, min(COORDS, grad.size),
                                  replace=False)
                coords = [np.unravel_index(i, params[w].shape) for i in flat]
                self.assert_fd(f"{what} grad {w}", grad[flat], coords,
                               params[w], lambda: loss64_of(x, y))
            # The step changed the parameters and the buffer: re-read them.
            for w in names:
                params[w] = torch.tensor(m.values(w), dtype=torch.float64
                                         ).reshape(shapes.get(w, (-1,)))
            duty = m.values("kw.duty_cycle").copy()
            warmup += 1
            s = kwref.boost_strength(strength, factor, decay_period, warmup)

    @staticmethod
    def untied_batch(params, duty, hidden, k, s, local, batch, n_in, rng):
        """A float32 batch whose k-th and (k+1)-th boosted values differ by
        at least 1e-3 in every sample (or location)."""
        c = hidden[0]
        units = c if local or len(hidden) == 1 else int(np.prod(hidden))
        boost = np.exp((np.float32(k / units) - duty[:c]) * np.float32(s))
        for _ in range(1000):
            x = rng.standard_normal((batch, n_in)).astype(np.float32)
            h = (x @ params["fc1.weight"].numpy().T +
                 params["fc1.bias"].numpy()).reshape((batch,) + hidden)
            v = h * boost.reshape((1, c) + (1,) * (len(hidden) - 1))
            v = np.moveaxis(v, 1, -1) if local else v.reshape(batch, -1)
            top = -np.sort(-v, axis=-1)
            if np.min(top[..., k - 1] - top[..., k]) >= 1e-3:
                return x
        raise AssertionError("no batch away from ties")

    def test_kwinners(self):
        self.check_kwinners("kw_mlp", "KwMlp", (20,), k=5, strength=1.5)

    def test_kwinners_boost_decay(self):
        self.check_kwinners("kw_decay", "KwDecay", (20,), k=5, strength=2.0,
                            factor=0.7, decay_period=2)

    def test_kwinners2d_global(self):
        self.check_kwinners("kw2d_global", "Kw2dGlobal", (4, 3, 3), k=9,
                            strength=1.5, factor=0.5, decay_period=3)

    def test_kwinners2d_local(self):
        self.check_kwinners("kw2d_local", "Kw2dLocal", (6, 2, 2), k=2,
                            strength=2.0, local=True)


def _reads(spec, table, input_name):
    """Whether embedding `table` (a tensor name) is applied to input_name."""
    param = table.rsplit(".", 1)[0]
    found = []

    def walk(e):
        if e[0] == "call":
            if e[1] == param and e[2][0] == ("id", input_name):
                found.append(True)
            for a in e[2]:
                walk(a)
        elif e[0] in ("add", "matmul"):
            walk(e[1])
            walk(e[2])

    for _, e in spec.stmts:
        walk(e)
    return bool(found)


def _add_model_tests():
    for model in oracle.model_files():
        def test(self, model=model):
            self.check_model(model)
        test.__doc__ = f"finite differences: models/{model}.sdl"
        setattr(FiniteDiffTest, f"test_{model}", test)


_add_model_tests()

if __name__ == "__main__":
    unittest.main()
