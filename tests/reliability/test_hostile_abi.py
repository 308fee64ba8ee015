"""Hostile calls to every entry point of the generated C ABI.

For the models of models/ (CSR, dense, embedding with a padding row,
embedding_bag, SGD/Nesterov, AMSGrad with catch-up rows, max_norm):

* NULL handle to every entry point that takes one -> SPARSEC_ERR_NULL with
  a message; `<M>_destroy(NULL)` is a no-op.
* NULL for every other pointer argument (outputs, names, paths, input
  buffers, the output / loss buffer) -> SPARSEC_ERR_NULL.
* batch 0, negative, INT64_MIN, and so large that a buffer size overflows
  -> SPARSEC_ERR_INVALID_ARG; a batch smaller than the buffers reads and
  writes only its own rows.
* ids and class labels out of range (bound, bound + 1, -1, 2^31, INT64_MIN,
  INT64_MAX, ...) at the first and last sample -> SPARSEC_ERR_OUT_OF_RANGE
  naming the input and the sample.
* NaN / +-Inf (quiet, signalling, negative NaN) in float inputs and float
  targets -> SPARSEC_ERR_NONFINITE naming the input.
* set_lr with NaN, +-Inf, negative -> SPARSEC_ERR_INVALID_ARG.
* unknown, empty, over-long, non-UTF-8 parameter names; param_csr of a
  dense parameter; param_info indices -1, count, INT32_MIN/MAX.
* status_name of unknown codes; create with extreme seeds; last_error is
  per thread and cleared by a successful call.
* load / save with hostile paths ("", a directory, /dev/null, /dev/zero, a
  FIFO, a path too long, a read-only place): a status, never a hang, no
  temporary file left behind.

Every rejected call must leave the instance byte-identical: parameters,
CSR structure, step, lr, optimizer state (checkpoint bytes) and the last
gradients (reliability_util.Lib.digest). Each case runs in a forked child,
so a crash fails that case only, with its name. Calls on a destroyed handle
are undefined behaviour in C and are not made (docs/reliability.md).

Run: /usr/bin/python3 -m unittest -v test_hostile_abi  (from tests/reliability)
"""
import collections
import ctypes as C
import os
import sys
import stat
import tempfile
import threading
import unittest

import numpy as np

import reliability_util as U

MODELS = ["rel_sgd", "rel_adam", "rel_maxnorm"]
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


def f32_from_bits(bits):
    return np.array([bits], np.uint32).view(np.float32)[0]


NONFINITE = [("nan", np.float32(np.nan)), ("inf", np.float32(np.inf)),
             ("-inf", np.float32(-np.inf)),
             ("signalling nan", f32_from_bits(0x7F800001)),
             ("negative nan", f32_from_bits(0xFFC00000))]


class HostileAbiTest(unittest.TestCase):
    # Rejected calls checked (status and message; with a state hash unless
    # the handle is NULL), per test: printed at the end (the figures of
    # docs/reliability.md).
    rejected = collections.Counter()

    @classmethod
    def setUpClass(cls):
        U.workdir()
        U.scratchdir()
        cls.libs = {m: U.compile_model(m).lib() for m in MODELS}

    @classmethod
    def tearDownClass(cls):
        detail = ", ".join(f"{k[5:]} {v}" for k, v in sorted(cls.rejected.items()))
        print(f"\nhostile_abi: {sum(cls.rejected.values())} rejected calls, each with "
              f"a status and a message, the state unchanged ({detail})",
              file=sys.stderr)

    # -- helpers ----------------------------------------------------------
    def trained(self, lib, seed=3):
        h = lib.create(seed)
        rng = np.random.default_rng(seed)
        for b in (5, 2, 7):
            rc, _ = lib.train_step(h, b, lib.batch(b, rng))
            self.assertEqual(rc, U.OK, lib.error())
        return h

    def reject(self, lib, what, call, status, mention=None, grads=True,
               handle=None):
        """Runs `call(h)` in a child on a trained instance (or on `handle`):
        it must return `status` with a message (containing `mention`) and
        leave the instance unchanged."""
        def child():
            h = handle if handle is not None else self.trained(lib)
            before = lib.digest(h, grads)
            rc = call(h)
            msg = lib.error()
            after = lib.digest(h, grads)
            return rc, msg, before == after

        kind, got = U.in_child(child)
        self.rejected[self._testMethodName] += 1
        self.assertEqual(kind, "ok", f"{lib.c.name}: {what}: {got}")
        rc, msg, unchanged = got
        self.assertEqual(rc, status, f"{lib.c.name}: {what}: status {rc} "
                         f"({U.STATUS_NAMES[rc] if 0 <= rc < 10 else rc}), "
                         f"message {msg!r}")
        self.assertTrue(msg, f"{lib.c.name}: {what}: empty message")
        if mention:
            self.assertIn(mention, msg, f"{lib.c.name}: {what}")
        self.assertTrue(unchanged, f"{lib.c.name}: {what}: the instance "
                        "changed (parameters, CSR, step, lr, optimizer "
                        "state or gradients)")
        return msg

    def each_lib(self):
        # (No subTest: the messages name the model.)
        return list(self.libs.values())

    # -- NULL -------------------------------------------------------------
    def test_null_handle(self):
        for lib in self.each_lib():
            f = lib.fn
            data = lib.batch(3, np.random.default_rng(0))
            name = lib.params(self.trained(lib))[0][0].encode()
            d, i32, i64 = U.DBL(), U.I32(), U.I64()
            ptr, ptr2 = C.c_void_p(), C.c_void_p()
            dims = (U.I64 * 4)()
            path = os.path.join(U.scratchdir(), "null.st").encode()
            calls = {
                "forward": lambda: lib.forward(None, 3, data)[0],
                "train_step": lambda: lib.train_step(None, 3, data)[0],
                "catch_up": lambda: f("catch_up")(None),
                "current_lr": lambda: f("current_lr")(None, C.byref(d)),
                "set_lr": lambda: f("set_lr")(None, 0.1),
                "get_lr": lambda: f("get_lr")(None, C.byref(d)),
                "step_count": lambda: f("step_count")(None, C.byref(i64)),
                "num_params": lambda: f("num_params")(None, C.byref(i32)),
                "param_info": lambda: f("param_info")(
                    None, 0, C.byref(ptr), C.byref(i32), dims, C.byref(i64),
                    C.byref(d)),
                "param_values": lambda: f("param_values")(
                    None, name, C.byref(ptr), C.byref(i64)),
                "param_csr": lambda: f("param_csr")(
                    None, name, C.byref(ptr), C.byref(ptr2)),
                "param_grad": lambda: f("param_grad")(
                    None, name, C.byref(ptr), C.byref(i64)),
                "save": lambda: f("save")(None, path),
                "load": lambda: f("load")(None, path),
            }
            for what, call in calls.items():
                kind, got = U.in_child(lambda: (call(), lib.error()))
                self.rejected[self._testMethodName] += 1
                self.assertEqual(kind, "ok", f"{lib.c.name}: {what}(NULL): {got}")
                rc, msg = got
                self.assertEqual(rc, U.ERR_NULL, f"{lib.c.name}: {what}(NULL): "
                                 f"status {rc}, {msg!r}")
                self.assertIn("NULL", msg, f"{lib.c.name}: {what}(NULL)")
            self.assertFalse(os.path.exists(path))

            def destroy_null():
                for _ in range(3):
                    f("destroy")(None)
                return True
            self.assertEqual(U.in_child(destroy_null), ("ok", True))

    def test_null_pointers(self):
        for lib in self.each_lib():
            f = lib.fn
            d, i32, i64 = U.DBL(), U.I32(), U.I64()
            ptr, ptr2 = C.c_void_p(), C.c_void_p()
            dims = (U.I64 * 4)()
            params = lib.params(self.trained(lib))
            name = params[0][0].encode()
            csr = next((p[0].encode() for p in params
                        if p[1] == 2 and p[3] != p[2][0] * p[2][1]), None)
            cases = [
                ("create(out=NULL)", lambda h: f("create")(1, None)),
                ("current_lr(NULL)", lambda h: f("current_lr")(h, None)),
                ("get_lr(NULL)", lambda h: f("get_lr")(h, None)),
                ("step_count(NULL)", lambda h: f("step_count")(h, None)),
                ("num_params(NULL)", lambda h: f("num_params")(h, None)),
                ("save(path=NULL)", lambda h: f("save")(h, None)),
                ("load(path=NULL)", lambda h: f("load")(h, None)),
            ]
            info = [C.byref(ptr), C.byref(i32), dims, C.byref(i64), C.byref(d)]
            for k, arg in enumerate(["name", "rank", "dims", "nnz", "sparsity"]):
                args = list(info)
                args[k] = None
                cases.append((f"param_info({arg}=NULL)",
                              lambda h, a=args: f("param_info")(h, 0, *a)))
            for fn, nm in (("param_values", name), ("param_grad", name),
                           ("param_csr", csr)):
                if nm is None:
                    continue
                out2 = ptr2 if fn == "param_csr" else i64
                cases += [
                    (f"{fn}(name=NULL)", lambda h, fn=fn, o=out2: f(fn)(
                        h, None, C.byref(ptr), C.byref(o))),
                    (f"{fn}(out1=NULL)", lambda h, fn=fn, nm=nm, o=out2: f(fn)(
                        h, nm, None, C.byref(o))),
                    (f"{fn}(out2=NULL)", lambda h, fn=fn, nm=nm: f(fn)(
                        h, nm, C.byref(ptr), None)),
                ]
            data = lib.batch(4, np.random.default_rng(1))
            for n in lib.input_names(True):
                bad = dict(data, **{n: None})
                cases.append((f"train_step({n}=NULL)",
                              lambda h, b=bad: lib.train_step(h, 4, b)[0]))
                if n in lib.input_names(False):
                    cases.append((f"forward({n}=NULL)",
                                  lambda h, b=bad: lib.forward(h, 4, b)[0]))
            cases.append(("forward(output=NULL)",
                          lambda h: lib.forward(h, 4, data, out=False)[0]))
            cases.append(("train_step(loss=NULL)",
                          lambda h: lib.train_step(h, 4, data, loss=False)[0]))
            for what, call in cases:
                self.reject(lib, what, call, U.ERR_NULL)

    # -- batch ------------------------------------------------------------
    def test_bad_batch(self):
        # Sizes whose byte count overflows int64 are detectable; a batch
        # larger than the buffers but without overflow is not (the C ABI
        # carries no buffer sizes): undefined behaviour, not tested.
        for lib in self.each_lib():
            data = lib.batch(2, np.random.default_rng(2))
            for b in (0, -1, -7, INT64_MIN, INT64_MAX, 1 << 62, 1 << 61):
                self.reject(lib, f"forward(batch={b})",
                            lambda h, b=b: lib.forward(h, b, data, np.zeros(
                                (2,) + lib.c.output_dims, np.float32))[0],
                            U.ERR_INVALID_ARG)
                self.reject(lib, f"train_step(batch={b})",
                            lambda h, b=b: lib.train_step(h, b, data)[0],
                            U.ERR_INVALID_ARG)
            # batch 0 with NULL buffers: still the batch error (checked first).
            nulls = {n: None for n in lib.input_names(True)}
            self.reject(lib, "train_step(batch=0, NULL inputs)",
                        lambda h: lib.train_step(h, 0, nulls)[0],
                        U.ERR_INVALID_ARG)

    def test_batch_smaller_than_buffers(self):
        """Only the first `batch` samples are read and written: garbage
        (NaN, ids out of range) after them is ignored, output rows after
        them are untouched."""
        for lib in self.each_lib():
            def child():
                h = self.trained(lib)
                rng = np.random.default_rng(5)
                data = lib.batch(10, rng)
                ref = {k: v[:3].copy() for k, v in data.items()}
                for name, dtype, dims, target, bound in lib.c.inputs:
                    data[name][3:] = bound if bound else np.nan
                out = np.full((10,) + lib.c.output_dims, 7.0, np.float32)
                rc, _ = lib.forward(h, 3, data, out)
                rc2, want = lib.forward(h, 3, ref)
                ok = (rc == U.OK and rc2 == U.OK and
                      np.array_equal(out[:3], want) and bool((out[3:] == 7).all()))
                rc3, loss = lib.train_step(h, 3, data)
                return ok, rc, rc3, lib.error()
            kind, got = U.in_child(child)
            self.assertEqual(kind, "ok", got)
            ok, rc, rc3, msg = got
            self.assertTrue(ok, f"{lib.c.name}: forward on the first 3 rows "
                            f"of 10 (status {rc})")
            self.assertEqual(rc3, U.OK, f"{lib.c.name}: train_step: {msg}")

    # -- ids ----------------------------------------------------------------
    def test_ids_out_of_range(self):
        for lib in self.each_lib():
            batch = 4
            data = lib.batch(batch, np.random.default_rng(3))
            for name, dtype, dims, target, bound in lib.c.inputs:
                if bound is None:
                    continue
                info = np.iinfo(U.NP_DTYPES[dtype])
                values = {bound, bound + 1, -1, -bound, info.min, info.max}
                if dtype == "i64":
                    values |= {1 << 31, -(1 << 31), 1 << 32}
                for v in sorted(values):
                    for index in (0, data[name].size - 1):
                        bad = dict(data)
                        bad[name] = data[name].copy()
                        bad[name].reshape(-1)[index] = v
                        sample = index // max(1, int(np.prod(dims)))
                        what = f"{name}[{index}]={v}"
                        if not target:
                            self.reject(lib, f"forward: {what}",
                                        lambda h, b=bad: lib.forward(h, batch, b)[0],
                                        U.ERR_OUT_OF_RANGE, f"'{name}'")
                        msg = self.reject(
                            lib, f"train_step: {what}",
                            lambda h, b=bad: lib.train_step(h, batch, b)[0],
                            U.ERR_OUT_OF_RANGE, f"'{name}'")
                        self.assertIn(f"sample {sample}", msg, what)
                        self.assertIn(str(v), msg, what)

    # -- non-finite ---------------------------------------------------------
    def test_nonfinite_inputs_and_targets(self):
        for lib in self.each_lib():
            batch = 3
            data = lib.batch(batch, np.random.default_rng(4))
            floats = [(n, t) for n, dt, _, t, _ in lib.c.inputs
                      if dt.startswith("f")]
            for name, target in floats:
                for label, v in NONFINITE:
                    for index in (0, data[name].size - 1):
                        bad = dict(data)
                        bad[name] = data[name].copy()
                        bad[name].reshape(-1)[index] = v
                        what = f"{name}[{index}]={label}"
                        if not target:
                            self.reject(lib, f"forward: {what}",
                                        lambda h, b=bad: lib.forward(h, batch, b)[0],
                                        U.ERR_NONFINITE, f"'{name}'")
                        self.reject(lib, f"train_step: {what}",
                                    lambda h, b=bad: lib.train_step(h, batch, b)[0],
                                    U.ERR_NONFINITE, f"'{name}'")

    def test_huge_finite_inputs(self):
        """Finite but huge values: a step either succeeds or reports a
        non-finite loss and skips the optimizer step (nothing changes)."""
        for lib in self.each_lib():
            floats = [n for n, dt, _, t, _ in lib.c.inputs if dt.startswith("f")]
            if not floats:
                continue
            data = lib.batch(3, np.random.default_rng(6))
            for n in floats:
                data[n] = np.full_like(data[n], np.finfo(np.float32).max)

            def child():
                h = self.trained(lib)
                before = lib.digest(h)
                rc, loss = lib.train_step(h, 3, data)
                return rc, loss, lib.error(), before == lib.digest(h)
            kind, got = U.in_child(child)
            self.assertEqual(kind, "ok", got)
            rc, loss, msg, unchanged = got
            self.assertIn(rc, (U.OK, U.ERR_NONFINITE), msg)
            if rc == U.ERR_NONFINITE:
                self.assertIn("loss", msg)
                self.assertTrue(unchanged, f"{lib.c.name}: a step with a "
                                "non-finite loss changed the instance")

    # -- lr -------------------------------------------------------------------
    def test_bad_learning_rates(self):
        for lib in self.each_lib():
            for v in (float("nan"), float("inf"), float("-inf"), -1.0, -1e-300):
                self.reject(lib, f"set_lr({v})",
                            lambda h, v=v: lib.fn("set_lr")(h, v),
                            U.ERR_INVALID_ARG, grads=False)

    # -- names and indices -------------------------------------------------------
    def test_bad_names_and_indices(self):
        for lib in self.each_lib():
            params = lib.params(self.trained(lib))
            dense = next(p[0] for p in params if p[3] == int(np.prod(p[2])))
            ptr, ptr2, i64 = C.c_void_p(), C.c_void_p(), U.I64()
            names = [b"", b"nope", params[0][0].encode() + b".", b"x" * 100000,
                     b"\xff\xfe\x80", params[0][0].upper().encode(),
                     params[0][0].encode()[:-1], b" " + params[0][0].encode()]
            for nm in names:
                for fn in ("param_values", "param_grad", "param_csr"):
                    out2 = ptr2 if fn == "param_csr" else i64
                    self.reject(lib, f"{fn}({nm[:20]!r})",
                                lambda h, fn=fn, nm=nm, o=out2: lib.fn(fn)(
                                    h, nm, C.byref(ptr), C.byref(o)),
                                U.ERR_INVALID_ARG)
            self.reject(lib, f"param_csr({dense!r}) of a dense parameter",
                        lambda h: lib.fn("param_csr")(
                            h, dense.encode(), C.byref(ptr), C.byref(ptr2)),
                        U.ERR_INVALID_ARG, dense)
            d, i32 = U.DBL(), U.I32()
            dims = (U.I64 * 4)()
            for index in (-1, len(params), len(params) + 1, INT32_MIN, INT32_MAX):
                self.reject(lib, f"param_info({index})",
                            lambda h, i=index: lib.fn("param_info")(
                                h, i, C.byref(ptr), C.byref(i32), dims,
                                C.byref(i64), C.byref(d)),
                            U.ERR_INVALID_ARG, str(index))

    def test_status_names_and_seeds(self):
        lib = self.libs["rel_sgd"]
        for code, name in enumerate(U.STATUS_NAMES):
            self.assertEqual(lib.fn("status_name")(code).decode(), name)
        for code in (-1, 10, 1000, INT32_MIN, INT32_MAX):
            self.assertEqual(lib.fn("status_name")(code).decode(),
                             "SPARSEC_ERR_UNKNOWN", code)

        def child():
            digests = []
            for seed in (0, 1, (1 << 64) - 1, 1 << 63):
                h = lib.create(seed)
                digests.append(lib.digest(h))
                lib.destroy(h)
            # Many create/destroy cycles (leaks: see the C harness).
            for seed in range(300):
                lib.destroy(lib.create(seed))
            return digests
        kind, got = U.in_child(child)
        self.assertEqual(kind, "ok", got)
        self.assertEqual(len(set(got)), 4, "distinct seeds gave equal parameters")

    def test_last_error_is_per_thread_and_cleared(self):
        lib = self.libs["rel_sgd"]

        def child():
            h = self.trained(lib)
            out = {}
            assert lib.fn("set_lr")(h, float("nan")) == U.ERR_INVALID_ARG
            out["main after failure"] = lib.error()

            def other():
                out["other thread"] = lib.error()
                lib.fn("set_lr")(None, 0.1)
                out["other after failure"] = lib.error()
            t = threading.Thread(target=other)
            t.start()
            t.join()
            out["main after other"] = lib.error()
            assert lib.fn("set_lr")(h, 0.5) == U.OK
            out["main after success"] = lib.error()
            return out
        kind, got = U.in_child(child)
        self.assertEqual(kind, "ok", got)
        self.assertIn("lr", got["main after failure"])
        self.assertEqual(got["other thread"], "")
        self.assertIn("NULL", got["other after failure"])
        self.assertEqual(got["main after other"], got["main after failure"])
        self.assertEqual(got["main after success"], "")

    # -- hostile paths ---------------------------------------------------------
    def test_load_hostile_paths(self):
        tmp = tempfile.mkdtemp(dir=U.scratchdir())
        fifo = os.path.join(tmp, "fifo.st")
        os.mkfifo(fifo)
        cases = [("empty path", b"", (U.ERR_IO,)),
                 ("a directory", tmp.encode(), (U.ERR_IO, U.ERR_FORMAT)),
                 ("/dev/null", b"/dev/null", (U.ERR_FORMAT, U.ERR_IO)),
                 ("/dev/zero", b"/dev/zero", (U.ERR_FORMAT, U.ERR_IO)),
                 ("/proc/self/mem", b"/proc/self/mem", (U.ERR_FORMAT, U.ERR_IO)),
                 ("a FIFO without writer", fifo.encode(), (U.ERR_FORMAT, U.ERR_IO)),
                 ("a path too long", b"/" + b"a" * 5000, (U.ERR_IO,)),
                 ("a missing file", os.path.join(tmp, "none.st").encode(), (U.ERR_IO,))]
        for lib in self.each_lib():
            for what, path, statuses in cases:
                def child(path=path):
                    h = self.trained(lib)
                    before = lib.digest(h)
                    rc = lib.fn("load")(h, path)
                    return rc, lib.error(), before == lib.digest(h)
                kind, got = U.in_child(child, timeout=20)
                self.rejected[self._testMethodName] += 1
                self.assertEqual(kind, "ok", f"{lib.c.name}: load({what}): "
                                 f"{kind} {got}")
                rc, msg, unchanged = got
                self.assertIn(rc, statuses, f"{lib.c.name}: load({what}): {msg}")
                self.assertTrue(msg)
                self.assertTrue(unchanged, f"{lib.c.name}: load({what}) "
                                "changed the instance")

    def test_save_hostile_paths(self):
        tmp = tempfile.mkdtemp(dir=U.scratchdir())
        sub = os.path.join(tmp, "adir")
        os.mkdir(sub)
        with open(os.path.join(tmp, "file"), "w") as f:
            f.write("not a directory")
        cases = [("empty path", b""),
                 ("an existing directory", sub.encode()),
                 ("a missing directory", os.path.join(tmp, "no", "x.st").encode()),
                 ("a path too long", os.path.join(tmp, "a" * 5000).encode()),
                 ("/proc (not writable)", b"/proc/sparsec-reliability.st"),
                 ("a file as directory", os.path.join(tmp, "file", "x.st").encode())]
        for lib in self.each_lib():
            for what, path in cases:
                self.reject(lib, f"save({what})",
                            lambda h, p=path: lib.fn("save")(h, p), U.ERR_IO)
                left = [f for f in os.listdir(tmp) if ".tmp" in f] + \
                       [f for f in os.listdir(sub) if ".tmp" in f]
                self.assertEqual(left, [], f"{lib.c.name}: save({what}) left "
                                 "temporary files")
            self.assertTrue(stat.S_ISDIR(os.stat(sub).st_mode))


if __name__ == "__main__":
    unittest.main()
