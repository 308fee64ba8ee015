"""RigL dynamic sparsity (`sparse_linear(..., dynamic = rigl)`) end to end.

One update is compared against a straightforward f64 reference written
here: a RigL model and the same layer without dynamic sparsity start equal
(same seed), take the same steps, and after the update step t = delta_t

* the weights dropped are the k = floor(f nnz) of smallest |w| after the
  optimizer step (f the cosine-annealed drop fraction, ties: the earlier
  position), taken from the static twin's values;
* the connections grown are the k positions outside the old pattern with
  the largest |dL/dW| of that step's batch, dW = dyᵀx computed here in f64
  from the pre-step weights (ties: the earlier position);
* kept weights and their Adam moments equal the twin's, grown weights and
  their moments are 0, the bias equals the twin's (it is stepped on update
  steps too), nnz is constant and dropped and grown sets are disjoint.

The score kernel walks the weight a chunk of rows at a time (max_size):
one row, two rows or all rows at once give identical training runs. The
pattern changes exactly on the schedule's steps and the loss falls. A
20000 x 20000 RigL layer is in test_connectivity (memory follows nnz).

`masked_linear(..., dynamic = set | rigl)` is compiled as the sparse_linear
with the mask's pattern: with a random mask (density 0.3, above csr_below,
so a static mask would stay dense) and with an inline mask list, it trains
bit for bit like the equivalent sparse_linear declaration (same seed,
pattern and data): losses, patterns, values, bias and optimizer state
after every step; the pattern changes on the schedule's steps and nnz is
constant. A full mask (no free position) keeps its pattern.

Run: /usr/bin/python3 -m unittest -v test_rigl  (from tests/e2e)
"""
import os
import sys
import tempfile
import unittest

import numpy as np

import oracle
from sparsec_ctypes import Model
from test_connectivity import CONN_DIR, compile_file

sys.path.insert(0, os.path.join(oracle.REPO_DIR, "python"))
from sparsec import checkpoint  # noqa: E402

IN, OUT, NNZ, BATCH = 12, 10, 36, 16
DELTA_T, T_END, DROP = 3, 12, 0.5


def variant(tmp, name, old, new):
    """dyn_rigl.sdl with `old` replaced by `new`, compiled as lib<name>.so."""
    with open(os.path.join(CONN_DIR, "dyn_rigl.sdl")) as f:
        src = f.read()
    assert old in src
    path = os.path.join(tmp, name + ".sdl")
    with open(path, "w") as f:
        f.write(src.replace(old, new))
    return compile_file(path, tmp)


SCHEDULES = {
    "set": "dynamic = set, delta_t = 3, t_end = 12, drop_fraction = 0.5",
    "rigl": "dynamic = rigl, delta_t = 3, t_end = 12, drop_fraction = 0.5, "
            "max_size = 24",
}
LAYER = ("sparse_linear(12, 10, sparsity = 0.7, " + SCHEDULES["rigl"] + ")")


def layer_variant(tmp, name, layer):
    """dyn_rigl.sdl with its `fc` declared as `layer`."""
    return variant(tmp, name, LAYER, layer)


def positions(m):
    pos, crd = m.csr("fc.weight", OUT, NNZ)
    rows = np.repeat(np.arange(OUT), np.diff(pos))
    return rows * IN + crd


def drop_count(t):
    f = DROP * (1 + np.cos(np.pi * t / T_END)) / 2
    return int(np.floor(f * NNZ))


def batches(seed, n):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((BATCH, IN)).astype(np.float32),
             rng.standard_normal((BATCH, OUT)).astype(np.float32)) for _ in range(n)]


class RiglTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="sparsec-rigl-")
        cls.rigl = compile_file(os.path.join(CONN_DIR, "dyn_rigl.sdl"), cls.tmp.name)
        cls.static = variant(cls.tmp.name, "static",
                             ", dynamic = rigl, delta_t = 3, t_end = 12, "
                             "drop_fraction = 0.5, max_size = 24", "")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def state(self, m, tag):
        path = os.path.join(self.tmp.name, tag + ".ckpt")
        m.save(path)
        tensors, _ = checkpoint.read(path)
        return tensors

    def test_update_matches_f64_reference(self):
        a, b = Model(self.rigl, "DynRigl", 7), Model(self.static, "DynRigl", 7)
        data = batches(11, DELTA_T)
        for t, (x, y) in enumerate(data, start=1):
            old = positions(a)
            np.testing.assert_array_equal(old, positions(b))
            w_old = a.values("fc.weight").astype(np.float64).copy()
            bias_old = a.values("fc.bias").astype(np.float64).copy()
            a.train_step([x, y])
            b.train_step([x, y])
            if t < DELTA_T:
                np.testing.assert_array_equal(positions(a), old)
                np.testing.assert_array_equal(a.values("fc.weight"), b.values("fc.weight"))
        k = drop_count(DELTA_T)
        self.assertGreater(k, 0)
        # Reference growth scores: |dyᵀx| in f64 from the pre-step weights.
        dense = np.zeros(OUT * IN)
        dense[old] = w_old
        out = x.astype(np.float64) @ dense.reshape(OUT, IN).T + bias_old
        dy = 2.0 * (out - y) / (BATCH * OUT)
        score = np.abs(dy.T @ x.astype(np.float64)).ravel()
        free = np.setdiff1d(np.arange(OUT * IN), old)
        order = free[np.lexsort((free, -score[free]))]
        grown = np.sort(order[:k])
        # The reference must not hinge on a near-tie at the k-th candidate.
        s = np.sort(score[free])[::-1]
        self.assertGreater(s[k - 1] - s[k], 1e-4 * s[k - 1])
        # Dropped: the k smallest |w| after the step (stable: earlier first).
        w_new = b.values("fc.weight")
        dropped = old[np.argsort(np.abs(w_new), kind="stable")[:k]]
        expect = np.sort(np.concatenate([np.setdiff1d(old, dropped), grown]))
        got = positions(a)
        self.assertEqual(len(got), NNZ)
        np.testing.assert_array_equal(got, expect)
        self.assertEqual(len(np.intersect1d(dropped, grown)), 0)
        # Values and Adam moments: kept = twin's, grown = 0; bias = twin's.
        sa, sb = self.state(a, "a"), self.state(b, "b")
        kept = np.isin(got, old)
        twin = {p: i for i, p in enumerate(old)}
        src = np.array([twin.get(p, -1) for p in got])
        for name in ("fc.weight.values", "optimizer.fc.weight.exp_avg",
                     "optimizer.fc.weight.exp_avg_sq"):
            va, vb = sa[name], sb[name]
            np.testing.assert_array_equal(va[kept], vb[src[kept]], name)
            np.testing.assert_array_equal(va[~kept], 0, name)
        np.testing.assert_array_equal(a.values("fc.bias"), b.values("fc.bias"))
        np.testing.assert_array_equal(sa["optimizer.fc.bias.exp_avg"],
                                      sb["optimizer.fc.bias.exp_avg"])

    def run_schedule(self, so, steps=16):
        m = Model(so, "DynRigl", 3)
        losses, patterns = [], [positions(m)]
        for x, y in batches(5, steps):
            losses.append(m.train_step([x, y]))
            patterns.append(positions(m))
        return losses, patterns, m.values("fc.weight").copy()

    def test_schedule_and_chunking(self):
        losses, patterns, w = self.run_schedule(self.rigl)
        for t in range(1, len(patterns)):
            changed = not np.array_equal(patterns[t - 1], patterns[t])
            update = t % DELTA_T == 0 and t <= T_END and drop_count(t) > 0
            self.assertEqual(changed, update, f"step {t}")
            self.assertEqual(len(patterns[t]), NNZ)
            if update:
                self.assertEqual(len(np.setdiff1d(patterns[t], patterns[t - 1])),
                                 drop_count(t), f"step {t}")
        self.assertLess(losses[-1], losses[0])
        # One row or every row per score chunk: the same run, bit for bit.
        for size in ("1", "1000000"):
            so = variant(self.tmp.name, "size" + size, "max_size = 24",
                         "max_size = " + size)
            l2, p2, w2 = self.run_schedule(so)
            self.assertEqual(losses, l2, size)
            for t, (p, q) in enumerate(zip(patterns, p2)):
                np.testing.assert_array_equal(p, q, f"max_size {size}, step {t}")
            np.testing.assert_array_equal(w, w2)

    def test_dynamic_masked_linear_is_the_sparse_linear(self):
        # The same pattern as a mask and as a connectivity list.
        rng = np.random.default_rng(4)
        lin = np.sort(rng.choice(OUT * IN, NNZ, replace=False))
        pairs = f"[{list(lin // IN)}, {list(lin % IN)}]"
        forms = [("random", "sparsity = 0.7", "density = 0.3"),
                 ("list", "connectivity = " + pairs, "mask = " + pairs)]
        for mode, sched in SCHEDULES.items():
            for form, sparse_args, mask_args in forms:
                tag = f"{mode}_{form}"
                sparse = layer_variant(self.tmp.name, "sl_" + tag,
                                       f"sparse_linear(12, 10, {sparse_args}, {sched})")
                masked = layer_variant(self.tmp.name, "ml_" + tag,
                                       f"masked_linear(12, 10, {mask_args}, {sched})")
                with self.subTest(mode=mode, form=form):
                    self.check_twins(Model(masked, "DynRigl", 9),
                                     Model(sparse, "DynRigl", 9), tag)

    def check_twins(self, a, b, tag):
        info = {i["name"]: i for i in a.param_info()}
        self.assertNotIn("fc.weight_mask", info)  # the CSR form
        self.assertEqual(info["fc.weight"]["nnz"], NNZ)
        changes = 0
        for t, (x, y) in enumerate(batches(13, 13), start=1):
            old = positions(a)
            self.assertEqual(a.train_step([x, y]), b.train_step([x, y]), t)
            got = positions(a)
            self.assertEqual(len(got), NNZ)
            np.testing.assert_array_equal(got, positions(b), f"step {t}")
            update = t % DELTA_T == 0 and t <= T_END and drop_count(t) > 0
            self.assertEqual(not np.array_equal(old, got), update, f"step {t}")
            changes += update
            for n in ("fc.weight", "fc.bias"):
                np.testing.assert_array_equal(a.values(n), b.values(n), n)
        self.assertEqual(changes, 3)  # t = 3, 6, 9 (f = 0 at t_end = 12)
        sa, sb = self.state(a, tag + "_a"), self.state(b, tag + "_b")
        self.assertEqual(sorted(sa), sorted(sb))
        for n in sa:
            np.testing.assert_array_equal(sa[n], sb[n], n)

    def test_dynamic_full_mask_keeps_its_pattern(self):
        so = layer_variant(self.tmp.name, "full",
                           "masked_linear(12, 10, " + SCHEDULES["set"] + ")")
        m = Model(so, "DynRigl", 1)
        pos, crd = m.csr("fc.weight", OUT, OUT * IN)
        full = np.repeat(np.arange(OUT), np.diff(pos)) * IN + crd
        np.testing.assert_array_equal(full, np.arange(OUT * IN))
        for x, y in batches(3, 2 * DELTA_T):
            m.train_step([x, y])
        pos, crd = m.csr("fc.weight", OUT, OUT * IN)
        np.testing.assert_array_equal(
            np.repeat(np.arange(OUT), np.diff(pos)) * IN + crd, full)

    def test_differs_from_random_growth(self):
        # SET grows at random; on the same data RigL's gradient choice makes
        # a different pattern (it is the gradient, not the draw, that picks).
        set_so = variant(self.tmp.name, "set", "dynamic = rigl, delta_t = 3, t_end = 12, "
                         "drop_fraction = 0.5, max_size = 24",
                         "dynamic = set, delta_t = 3, t_end = 12, drop_fraction = 0.5")
        _, p_rigl, _ = self.run_schedule(self.rigl, DELTA_T)
        _, p_set, _ = self.run_schedule(set_so, DELTA_T)
        self.assertFalse(np.array_equal(p_rigl[-1], p_set[-1]))


if __name__ == "__main__":
    unittest.main()
