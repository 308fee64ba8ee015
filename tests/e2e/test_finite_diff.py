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

Run: /usr/bin/python3 -m unittest -v test_finite_diff  (from tests/e2e)
"""
import tempfile
import unittest

import numpy as np
import torch

import oracle

EPS = 1e-6
RTOL = 1e-3
COORDS = 50
BATCHES = (1, 7)


class FiniteDiffTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="sparsec-fd-")
        cls.cache = oracle.CompileCache(cls.tmp.name)
        cls.cache.prefetch([(m, {}) for m in oracle.model_files()])

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def check_model(self, model):
        compiled = self.cache.get(model)
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
