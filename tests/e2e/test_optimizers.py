"""Every optimizer of the DSL against PyTorch, through the generated library.

The model models/optim/opt_mix.sdl has a dense layer, a CSR layer, an
embedding and an embedding bag; each case replaces its optimizer line with
a DSL optimizer call (non-default hyper-parameters, docs/language.md
section 8), compiles it with sparsec and trains the library for 10 steps on
batches of varying size, side by side with PyTorch started from the
library's own initial parameters (oracle.py's DSL interpreter). After every
step the losses must agree; after the last, every parameter tensor, with
rel_err = max|lib - ref| / max|ref| <= 1e-5 (docs/optimizers.md gives the
math of each optimizer and embedding mode):

* CSR weights are masked dense tensors whose gradient is masked before
  each step (off-pattern entries stay 0 under every optimizer); the
  pattern itself must not change.
* `sparse = dense`: the embedding tables get dense gradients and the dense
  torch.optim optimizer (row-wise Adagrad, which PyTorch lacks:
  oracle.RowwiseAdagrad, torch ops after FBGEMM's formula).
* `sparse = lazy` (the default): where PyTorch has a sparse-gradient
  optimizer the tables use it (torch.optim.SGD and Adagrad with sparse
  gradients, Adam -> torch.optim.SparseAdam); otherwise (momentum, weight
  decay, amsgrad, RMSprop, row-wise Adagrad, AdamW) the numpy reference
  oracle.LazyRows of the documented lazy rule. Rows no batch touched must
  keep their initial bytes (ids are drawn below the table size, so that
  some rows are never touched).
* `sparse = catchup` with every row of both tables touched at every step:
  bit-identical to the same optimizer with `sparse = dense` (a second
  library trained on the same batches), and equal to torch's dense
  optimizer. Where the closed form is exact (SGD with momentum, Nesterov
  and weight decay; Adagrad and RMSprop without weight decay) also with
  partial batches: each step's loss (which reads caught-up rows) and the
  parameters after <Model>_catch_up equal torch's dense optimizer.
* `clip_grad_norm`: torch.nn.utils.clip_grad_norm_ over all gradients
  (sparse gradients scaled by hand with the coefficient it applied, as
  torch 1.13 does not scale them in place); the library's reported
  gradients are the clipped ones; the active cases clip at every step, the
  inactive one never.
* schedules (step, cosine, warm-up alone and before step/cosine) against
  torch.optim.lr_scheduler (StepLR, CosineAnnealingLR, LinearLR,
  SequentialLR), with <Model>_current_lr equal to the torch optimizer's lr
  before every step (every case) and <Model>_get_lr the base lr.

The references themselves are checked too: oracle.LazyRows against the
dense torch optimizers (every row touched) and PyTorch's sparse ones, and
oracle.RowwiseAdagrad against a float64 evaluation of the formula. The
variants are compiled with `sparsec -O 0` (see FAST below), one of them
also at the default level.

Run: /usr/bin/python3 -m unittest -v test_optimizers  (from tests/e2e)
"""
import tempfile
import unittest
import warnings
from dataclasses import dataclass

import numpy as np
import torch

import oracle
from oracle import check_close

MODEL = "optim/opt_mix"
STEPS = 10
SIZES = (1, 3, 5, 8)
# Partial batches draw ids below these bounds: the last rows of each table
# are never touched.
ID_BOUND = {"ids": 8, "items": 10}

# Optimizer calls with non-default hyper-parameters (sparse mode added per
# case). Positional arguments in adamw's, in the documented order.
MAIN = {
    "sgd": "sgd(lr = 0.05, momentum = 0.9, nesterov = true, "
           "weight_decay = 0.01)",
    "adagrad": "adagrad(lr = 0.05, lr_decay = 0.05, weight_decay = 0.01, "
               "initial_accumulator_value = 0.1, eps = 1e-6)",
    "rowwise_adagrad": "rowwise_adagrad(lr = 0.05, weight_decay = 0.01, "
                       "initial_accumulator_value = 0.1, eps = 1e-6)",
    "rmsprop": "rmsprop(lr = 0.01, alpha = 0.9, eps = 1e-4, "
               "weight_decay = 0.01, momentum = 0.5, centered = true)",
    "adam": "adam(lr = 0.01, beta1 = 0.8, beta2 = 0.99, eps = 1e-4, "
            "weight_decay = 0.01, amsgrad = true)",
    "adamw": "adamw(0.01, 0.85, 0.99, 1e-4, 0.05)",
}


# The optimizer is runtime code configured by the descriptor the compiler
# emits; the kernels (checked at the default -O3 by test_parity and
# test_embedding) do not depend on it. The variants are therefore compiled
# at -O 0, ten times faster; one case is repeated at the default level.
FAST = ("-O", "0")


def with_args(call, extra):
    return call[:-1] + ", " + extra + ")"


@dataclass
class Case:
    source: str          # DSL optimizer call
    ref: str             # dense | torch_sparse | numpy (lazy tables)
    batches: str = "random"   # random (partial) | all (every row, every step)
    twin: str = None     # a source whose library must match bit for bit
    catch_up: bool = False    # call <Model>_catch_up before comparing
    flags: tuple = FAST       # sparsec flags


CASES = {}
for _name, _call in MAIN.items():
    _dense = with_args(_call, "sparse = dense")
    CASES[f"{_name}_dense"] = Case(_dense, "dense")
    CASES[f"{_name}_lazy"] = Case(with_args(_call, "sparse = lazy"), "numpy")
    CASES[f"{_name}_catchup_all_rows"] = Case(
        with_args(_call, "sparse = catchup"), "dense", "all", twin=_dense)
CASES["sgd_catchup_partial"] = Case(with_args(MAIN["sgd"], "sparse = catchup"),
                                    "dense", catch_up=True)
CASES.update({
    # PyTorch's sparse-gradient optimizers for the lazy tables.
    "sgd_lazy_vs_torch_sparse": Case("sgd(lr = 0.2)", "torch_sparse"),
    "adagrad_lazy_vs_torch_sparse": Case(
        "adagrad(lr = 0.05, lr_decay = 0.05, initial_accumulator_value = 0.1,"
        " eps = 1e-6)", "torch_sparse"),
    "adam_lazy_vs_sparse_adam": Case(
        "adam(lr = 0.01, beta1 = 0.85, beta2 = 0.995, eps = 1e-4)",
        "torch_sparse"),
    # More settings.
    "sgd_dampening_lazy": Case(
        "sgd(lr = 0.1, momentum = 0.8, dampening = 0.3, weight_decay = 0.02)",
        "numpy"),
    "adamw_amsgrad_dense": Case(
        "adamw(lr = 0.01, beta2 = 0.99, eps = 1e-4, weight_decay = 0.1, "
        "amsgrad = true, sparse = dense)", "dense"),
    # Catch-up where its closed form is exact, with partial batches.
    "adagrad_catchup_partial": Case(
        "adagrad(lr = 0.05, lr_decay = 0.05, initial_accumulator_value = 0.1,"
        " eps = 1e-6, sparse = catchup)", "dense", catch_up=True),
    "rmsprop_catchup_partial": Case(
        "rmsprop(lr = 0.01, alpha = 0.9, eps = 1e-4, momentum = 0.5, "
        "centered = true, sparse = catchup)", "dense", catch_up=True),
    # Clipping (0.05 is below every step's gradient norm, 1000 above).
    "clip_adam_dense": Case(
        "adam(lr = 0.01, eps = 1e-4, clip_grad_norm = 0.05, sparse = dense)",
        "dense"),
    "clip_sgd_inactive": Case(
        "sgd(lr = 0.1, momentum = 0.9, clip_grad_norm = 1000, "
        "sparse = dense)", "dense"),
    "clip_sgd_lazy": Case("sgd(lr = 0.2, clip_grad_norm = 0.05)",
                          "torch_sparse"),
    # The default optimization level.
    "adamw_lazy_default_opt_level": Case(
        with_args(MAIN["adamw"], "sparse = lazy"), "numpy", flags=()),
    # Schedules.
    "schedule_step_lazy_sgd": Case(
        "sgd(lr = 0.2, schedule = step, step_size = 3, gamma = 0.5)",
        "torch_sparse"),
    "schedule_cosine": Case(
        "adam(lr = 0.02, eps = 1e-4, schedule = cosine, t_max = 4, "
        "eta_min = 0.001, sparse = dense)", "dense"),
    "schedule_warmup": Case(
        "rmsprop(lr = 0.01, eps = 1e-4, warmup = 3, sparse = dense)", "dense"),
    "schedule_warmup_step": Case(
        "adagrad(lr = 0.05, lr_decay = 0.01, warmup = 2, schedule = step, "
        "step_size = 2, gamma = 0.5, sparse = dense)", "dense"),
    "schedule_warmup_cosine_lazy": Case(
        "adamw(lr = 0.01, eps = 1e-4, warmup = 3, schedule = cosine, "
        "t_max = 5, eta_min = 0.0005)", "numpy"),
})
CLIP_ACTIVE = {"clip_adam_dense": True, "clip_sgd_lazy": True,
               "clip_sgd_inactive": False}


def make_batch(spec, rng, step, batches):
    """A batch for `step`: partial (sizes 1..8, ids below ID_BOUND) or
    covering every row of both tables (12 samples)."""
    if batches == "random":
        b = SIZES[step % len(SIZES)]
        ids = rng.integers(0, ID_BOUND["ids"], b)
        items = rng.integers(0, ID_BOUND["items"], (b, 3))
    else:
        b = 12
        ids = rng.permutation(np.concatenate([np.arange(10),
                                              rng.integers(0, 10, 2)]))
        items = rng.integers(0, 12, (b, 3))
        items[:, rng.integers(0, 3)] = rng.permutation(12)
    return {"ids": ids.astype(np.int64), "items": items.astype(np.int64),
            "x": rng.standard_normal((b, 5)).astype(np.float32),
            "y": rng.standard_normal((b, 3)).astype(np.float32)}


class OptimizerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="sparsec-optim-")
        cls.cache = oracle.CompileCache(cls.tmp.name)
        variants = {(c.source, c.flags) for c in CASES.values()} | \
            {(c.twin, c.flags) for c in CASES.values() if c.twin}
        cls.cache.prefetch([(MODEL, {"optimizer": s, "flags": f})
                            for s, f in sorted(variants)])

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def compiled(self, source, flags):
        return self.cache.get(MODEL, optimizer=source, flags=flags)

    def run_case(self, name):
        case = CASES[name]
        compiled = self.compiled(case.source, case.flags)
        spec = compiled.spec
        kind, hyper, common = oracle.optimizer_settings(spec)
        m = compiled.instance(seed=3)
        twin = self.compiled(case.twin, case.flags).instance(seed=3) \
            if case.twin else None
        lp = oracle.LibParams(m, spec)
        initial = {n: lp.dense(n) for n in lp.names()}
        tables = [n for n in lp.names() if lp.layout[n] == "embedding"]
        tp = lp.torch_params()
        masks = {n: torch.tensor(lp.mask(n)) for n in lp.pattern}
        split = case.ref != "dense"   # tables apart from the dense optimizer
        dense_names = [n for n in lp.names() if not (split and n in tables)]
        opts = [oracle.torch_optimizer(kind, hyper,
                                       [tp[n] for n in dense_names],
                                       masks={tp[n]: masks[n] for n in masks})]
        refs = {}
        if case.ref == "torch_sparse":
            opts.append(oracle.torch_optimizer(kind, hyper,
                                               [tp[n] for n in tables],
                                               sparse=True))
        elif case.ref == "numpy":
            refs = {n: oracle.LazyRows(initial[n], kind, hyper)
                    for n in tables}
        scheds = [s for s in (oracle.torch_scheduler(o, common) for o in opts)
                  if s is not None]
        touched = {n: np.zeros(lp.info[n]["shape"][0], bool) for n in tables}
        clipped = []
        rng = np.random.default_rng(400)
        what = f"[{name}] optimizer = {case.source}"
        for step in range(STEPS):
            lr = opts[0].param_groups[0]["lr"]
            self.assertAlmostEqual(m.current_lr() / lr, 1.0, delta=1e-9,
                                   msg=f"{what}: current_lr before step "
                                       f"{step}: {m.current_lr()!r} vs "
                                       f"torch {lr!r}")
            for n, ref in refs.items():
                tp[n] = torch.tensor(ref.p, requires_grad=True)
            data = make_batch(spec, rng, step, case.batches)
            for o in opts:
                o.zero_grad(set_to_none=True)
            env, lookups = oracle.torch_forward(
                spec, tp, data, emb_sparse=case.ref == "torch_sparse")
            loss = oracle.torch_loss(spec, env, data)
            loss.backward()
            for n, mask in masks.items():
                tp[n].grad.mul_(mask)
            if common["clip_grad_norm"] > 0:
                clipped.append(self.clip(tp, common["clip_grad_norm"]))
            for o in opts:
                o.step()
            for n, ids, _ in lookups:
                touched[n][ids.reshape(-1).numpy()] = True
            for n, ref in refs.items():
                ids = torch.cat([i.reshape(-1) for k, i, _ in lookups
                                 if k == n]).numpy()
                ref.step(ids, tp[n].grad.numpy(), lr)
            with warnings.catch_warnings():
                # (SequentialLR's own scheduler.step(0) calls warn.)
                warnings.simplefilter("ignore", UserWarning)
                for s in scheds:
                    s.step()
            inputs = oracle.lib_inputs(spec, data)
            lib_loss = m.train_step(inputs)
            check_close(self, lib_loss, loss.item(), f"{what}: loss, step {step}")
            if twin is not None:
                twin.train_step(inputs)
            if common["clip_grad_norm"] > 0:
                self.check_clipped_grads(what, step, lp, tp, lookups)
        self.assertEqual(m.step_count(), STEPS, what)
        self.assertEqual(m.get_lr(), hyper["lr"], f"{what}: base lr")
        if name in CLIP_ACTIVE:
            want = [CLIP_ACTIVE[name]] * STEPS
            self.assertEqual(clipped, want, f"{what}: steps where torch "
                             "clipped (the case expects all or none)")
        if case.catch_up:
            m.catch_up()
        after = oracle.LibParams(m, spec)
        for n in lp.names():
            want = refs[n].p if n in refs else tp[n].detach().numpy()
            if n in lp.pattern:
                for a, b in zip(after.pattern[n], lp.pattern[n]):
                    np.testing.assert_array_equal(a, b, f"{what}: {n} pattern")
                got, want = m.values(n), lp.at_pattern(n, want)
            else:
                got = lp.dense(n)
            check_close(self, got, want, f"{what}: {n} after {STEPS} steps")
            if n in touched and case.ref != "dense":
                untouched = ~touched[n]
                self.assertTrue(untouched.any(), f"{what}: no untouched row")
                np.testing.assert_array_equal(
                    lp.dense(n)[untouched], initial[n][untouched],
                    f"{what}: lazy rows of {n} outside every batch changed")
        if case.batches == "all":
            for n in touched:
                self.assertTrue(touched[n].all(), f"{what}: {n} not covered")
        if twin is not None:
            for n in lp.names():
                np.testing.assert_array_equal(
                    m.values(n), twin.values(n),
                    f"{what}: {n} differs from the same optimizer with "
                    "sparse = dense (every row touched at every step: "
                    "documented bit-identical)")
        if case.catch_up:
            # forward of a catch-up model reads current rows.
            data = make_batch(spec, rng, 0, "random")
            with torch.no_grad():
                env, _ = oracle.torch_forward(spec, tp, data)
            out = m.forward(oracle.lib_inputs(spec, data, False),
                            env[spec.output].shape)
            check_close(self, out, env[spec.output], f"{what}: forward after "
                        "training")

    @staticmethod
    def clip(tp, max_norm):
        """torch.nn.utils.clip_grad_norm_ over every gradient; sparse ones
        scaled by hand. Returns whether it clipped."""
        params = [p for p in tp.values() if p.grad is not None]
        total = torch.nn.utils.clip_grad_norm_(params, max_norm)
        coef = max_norm / (total + 1e-6)
        for p in params:
            if p.grad.is_sparse and coef < 1:
                p.grad = p.grad * coef
        return bool(coef < 1)

    def check_clipped_grads(self, what, step, lp, tp, lookups):
        """The library reports the clipped gradients."""
        for n in lp.names():
            want = tp[n].grad
            want = (want.to_dense() if want.is_sparse else want).numpy()
            got = lp.model.grad(n)
            if lp.layout[n] == "csr":
                want = lp.at_pattern(n, want)
            elif lp.layout[n] == "embedding":
                ids = torch.cat([i.reshape(-1) for k, i, _ in lookups
                                 if k == n]).numpy()
                got = oracle.coalesce_rows(ids, got, want.shape[0])
            else:
                got = got.reshape(want.shape)
            check_close(self, got, want,
                        f"{what}: clipped gradient of {n}, step {step}")

    # -- the references themselves ----------------------------------------
    def test_lazy_rows_reference_every_row_is_dense_torch(self):
        """oracle.LazyRows with every row touched at every step equals the
        dense torch optimizer (for SparseAdam's form: up to where eps is
        added, made negligible by eps = 1e-12)."""
        rng = np.random.default_rng(7)
        calls = dict(MAIN)
        calls["adam"] = "adam(lr = 0.01, beta1 = 0.8, beta2 = 0.99, " \
                        "eps = 1e-12, weight_decay = 0.01, amsgrad = true)"
        calls["adamw"] = "adamw(lr = 0.01, beta1 = 0.8, beta2 = 0.99, " \
                         "eps = 1e-12, weight_decay = 0.05)"
        for name, call in calls.items():
            with self.subTest(optimizer=name):
                spec = oracle.parse("model M { optimizer = " + call + " }")
                kind, hyper, _ = oracle.optimizer_settings(spec)
                table = rng.standard_normal((6, 3)).astype(np.float32)
                ref = oracle.LazyRows(table, kind, hyper)
                p = torch.tensor(table, requires_grad=True)
                opt = oracle.torch_optimizer(kind, hyper, [p])
                for _ in range(STEPS):
                    g = rng.standard_normal(table.shape).astype(np.float32)
                    p.grad = torch.tensor(g)
                    opt.step()
                    ref.step(np.arange(6), g, hyper["lr"])
                check_close(self, ref.p, p.detach().numpy(), call, tol=1e-5)

    def test_lazy_rows_reference_is_torch_sparse(self):
        """oracle.LazyRows on partial batches equals PyTorch's sparse
        optimizers where they exist (SGD, Adagrad, SparseAdam)."""
        rng = np.random.default_rng(8)
        for call in ("sgd(lr = 0.2)", CASES["adagrad_lazy_vs_torch_sparse"].source,
                     CASES["adam_lazy_vs_sparse_adam"].source):
            with self.subTest(optimizer=call):
                spec = oracle.parse("model M { optimizer = " + call + " }")
                kind, hyper, _ = oracle.optimizer_settings(spec)
                table = rng.standard_normal((8, 3)).astype(np.float32)
                ref = oracle.LazyRows(table, kind, hyper)
                p = torch.tensor(table, requires_grad=True)
                opt = oracle.torch_optimizer(kind, hyper, [p], sparse=True)
                for _ in range(STEPS):
                    ids = rng.integers(0, 6, 4)
                    vals = rng.standard_normal((4, 3)).astype(np.float32)
                    p.grad = torch.sparse_coo_tensor(
                        torch.tensor(ids)[None], torch.tensor(vals), (8, 3))
                    opt.step()
                    ref.step(ids, oracle.coalesce_rows(ids, vals, 8),
                             hyper["lr"])
                check_close(self, ref.p, p.detach().numpy(), call, tol=1e-6)
                np.testing.assert_array_equal(ref.p[6:], table[6:])

    def test_rowwise_reference_by_hand(self):
        """oracle.RowwiseAdagrad against a direct float64 evaluation of the
        documented formula (rank-2 rows, rank-1 as one row, masked rows)."""
        rng = np.random.default_rng(9)
        lr, wd, acc, eps = 0.05, 0.01, 0.1, 1e-6
        w = rng.standard_normal((4, 5)).astype(np.float32)
        b = rng.standard_normal(5).astype(np.float32)
        mask = (rng.random((4, 5)) < 0.5).astype(np.float32)
        mask[2] = 0
        w *= mask
        tw, tb = torch.tensor(w), torch.tensor(b)
        opt = oracle.RowwiseAdagrad([tw, tb], lr=lr, weight_decay=wd,
                                    initial_accumulator_value=acc, eps=eps,
                                    masks={tw: torch.tensor(mask)})
        ref = [(w.astype(np.float64), mask.astype(np.float64), np.full(4, acc)),
               (b.astype(np.float64)[None], np.ones((1, 5)), np.full(1, acc))]
        for _ in range(3):
            gw = rng.standard_normal(w.shape).astype(np.float32) * mask
            gb = rng.standard_normal(b.shape).astype(np.float32)
            tw.grad, tb.grad = torch.tensor(gw), torch.tensor(gb)
            opt.step()
            for (p, m, s), g in zip(ref, (gw, gb[None])):
                g = (g + wd * p) * m
                n = m.sum(1)
                live = n > 0
                s[live] += (g ** 2).sum(1)[live] / n[live]
                p -= m * lr * g / (np.sqrt(s) + eps)[:, None]
        check_close(self, tw.numpy(), ref[0][0], "rank 2, masked", tol=1e-6)
        check_close(self, tb.numpy(), ref[1][0][0], "rank 1", tol=1e-6)


def _add_cases():
    for name in CASES:
        def test(self, name=name):
            self.run_case(name)
        test.__doc__ = f"{name}: optimizer = {CASES[name].source}"
        setattr(OptimizerTest, f"test_{name}", test)


_add_cases()

if __name__ == "__main__":
    unittest.main()
