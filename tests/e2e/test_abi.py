"""The generated libraries as binaries and as a C API.

* Linking: `ldd` lists only libc, libm, the loader and the vDSO; every
  undefined dynamic symbol is defined by one of those (the weak
  crt/TM-clone hooks excepted); the only exported symbols are `<Model>_*`,
  exactly the functions the header declares.
* The header compiles as C99 (`cc -std=c99 -Wall -Werror -fsyntax-only`),
  and a C99 program built against it and the library computes the same
  forward output as the ctypes harness, bit for bit.
* User errors (ids out of range, labels out of range, batch 0 / -1, NULL
  input pointers, NaN/Inf in float inputs and targets) return the
  documented status with a message and change nothing: the parameters'
  bytes, the CSR structures, step and lr (oracle.LibParams.digest) and the
  checkpoint bytes (which include the optimizer state) stay identical.
* Checkpoints: save + load into a fresh instance of another seed restores
  identical parameters, outputs and training; truncated files (every
  length), files with any single byte flipped, a checkpoint of another
  model and a nonexistent path are rejected with a message and leave the
  instance untouched.

Run: /usr/bin/python3 -m unittest -v test_abi  (from tests/e2e)
"""
import os
import re
import subprocess
import tempfile
import unittest

import numpy as np

import oracle
from sparsec_ctypes import SparsecError

ERR_NULL, ERR_INVALID_ARG, ERR_OUT_OF_RANGE, ERR_NONFINITE = 1, 2, 3, 4
ERR_IO, ERR_FORMAT = 5, 6
# Allowed NEEDED libraries (ldd's first column).
ALLOWED_LIBS = re.compile(r"^(linux-vdso\.so\.1|libc\.so\.6|libm\.so\.6|"
                          r"(/.*/)?ld-linux[-\w.]*\.so\.\d+)$")
# Weak undefined symbols emitted by the toolchain's crt files.
CRT_WEAK = {"__gmon_start__", "_ITM_registerTMCloneTable",
            "_ITM_deregisterTMCloneTable"}
ABI_MODEL = "embed_add"          # f32 input, ids, labels; CSR + embedding
FLOAT_TARGET_MODEL = "linear_bias"


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def dynamic_symbols(path, *flags):
    """[(type letter, name without version)] from nm -D."""
    out = run(["nm", "-D", *flags, path])
    if out.returncode != 0:
        raise AssertionError(f"nm failed on {path}: {out.stderr}")
    syms = []
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            syms.append((parts[-2], parts[-1].split("@")[0]))
    return syms


class AbiTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="sparsec-abi-")
        cls.cache = oracle.CompileCache(cls.tmp.name)
        cls.cache.prefetch([(m, {}) for m in oracle.model_files()])

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def each_model(self):
        """Yields Compiled for every model, each in its own subTest."""
        for model in oracle.model_files():
            with self.subTest(model=model):
                yield self.cache.get(model)

    # -- linking ----------------------------------------------------------
    def ldd(self, so):
        out = run(["ldd", so])
        self.assertEqual(out.returncode, 0, out.stderr)
        libs = {}
        for line in out.stdout.splitlines():
            parts = line.split()
            libs[parts[0]] = parts[2] if len(parts) > 3 and parts[1] == "=>" \
                else parts[0]
        return libs

    def test_ldd_only_libc_libm(self):
        for c in self.each_model():
            libs = self.ldd(c.so)
            bad = [n for n in libs if not ALLOWED_LIBS.match(n)]
            self.assertEqual(bad, [], f"{c.name}: unexpected dependencies")
            self.assertIn("libc.so.6", libs)

    def test_undefined_symbols_from_libc_libm(self):
        for c in self.each_model():
            provided = set()
            for name, path in self.ldd(c.so).items():
                if os.path.isabs(path):
                    provided |= {s for t, s in dynamic_symbols(
                        path, "--defined-only")}
            self.assertTrue(provided, "no symbols read from libc/libm")
            bad = [(t, s) for t, s in dynamic_symbols(c.so, "--undefined-only")
                   if s not in provided and not (t in "wv" and s in CRT_WEAK)]
            self.assertEqual(bad, [], f"{c.name}: undefined symbols that "
                             "libc, libm and the loader do not define")

    def test_exports_only_model_api(self):
        for c in self.each_model():
            exported = {s for _, s in dynamic_symbols(c.so, "--defined-only")}
            foreign = sorted(s for s in exported
                             if not s.startswith(c.name + "_"))
            self.assertEqual(foreign, [], f"{c.name}: exports other symbols")
            with open(c.header) as f:
                declared = set(re.findall(rf"\b({c.name}_\w+)\s*\(", f.read()))
            self.assertEqual(exported, declared,
                             f"{c.name}: exports differ from the header")

    # -- header and C API -------------------------------------------------
    def test_header_is_c99(self):
        for c in self.each_model():
            out = run(["cc", "-std=c99", "-Wall", "-Werror", "-fsyntax-only",
                       "-x", "c", c.header])
            self.assertEqual(out.returncode, 0, out.stderr)
            out = run(["cc", "-std=c99", "-Wall", "-Wextra", "-pedantic",
                       "-Werror", "-fsyntax-only", "-x", "c", c.header])
            self.assertEqual(out.returncode, 0, out.stderr)

    def test_c_program_matches_ctypes(self):
        for c in self.each_model():
            self.check_c_program(c)

    def check_c_program(self, c, batch=3):
        spec = c.spec
        ctype = {"f32": "float", "i32": "int32_t", "i64": "int64_t"}
        bounds = oracle.id_bounds(spec)
        arrays, decls, args = [], [], []
        for i in spec.inputs:
            if i.is_target:
                continue
            n = batch * int(np.prod(i.dims, dtype=np.int64))
            k = np.arange(n)
            if i.dtype.startswith("i"):
                a = (k * 7 + 3) % bounds[i.name]
                init = ", ".join(str(v) for v in a)
            else:
                a = ((k * 37) % 101 - 50) / 64.0   # exact in binary
                init = ", ".join(f"{v!r}f" for v in a)
            arrays.append(a.astype(oracle.NP_DTYPES[i.dtype]).reshape(
                (batch,) + i.dims))
            decls.append(f"static const {ctype[i.dtype]} in_{i.name}[{n}] = "
                         f"{{{init}}};")
            args.append(f"in_{i.name}")
        out_shape = (batch,) + oracle.value_shapes(spec)[spec.output]
        nout = int(np.prod(out_shape))
        src = f"""#include <stdio.h>
#include "{os.path.basename(c.header)}"
{chr(10).join(decls)}
static float out[{nout}];
int main(void) {{
  {c.name} *m = NULL;
  if ({c.name}_create(42, &m) != 0) return 2;
  if ({c.name}_forward(m, {batch}, {", ".join(args)}, out) != 0) {{
    fprintf(stderr, "%s\\n", {c.name}_last_error());
    return 3;
  }}
  for (int i = 0; i < {nout}; ++i) printf("%a\\n", (double)out[i]);
  {c.name}_destroy(m);
  {c.name}_destroy(NULL);
  return 0;
}}
"""
        d = os.path.dirname(c.so)
        prog = os.path.join(d, "prog")
        with open(prog + ".c", "w") as f:
            f.write(src)
        lib = os.path.basename(c.so)[3:-3]
        out = run(["cc", "-std=c99", "-Wall", "-Werror", "-pedantic",
                   prog + ".c", "-I", d, "-L", d, "-l" + lib,
                   "-Wl,-rpath," + d, "-o", prog])
        self.assertEqual(out.returncode, 0, out.stderr)
        out = run([prog])
        self.assertEqual(out.returncode, 0, out.stderr)
        got = np.array([float.fromhex(v) for v in out.stdout.split()],
                       np.float32)
        want = c.instance(seed=42).forward(arrays, out_shape)
        np.testing.assert_array_equal(got.reshape(out_shape), want,
                                      f"{c.name}: C program vs ctypes")

    # -- user errors ------------------------------------------------------
    def state(self, m, lp):
        """(params digest, checkpoint bytes) of an instance."""
        path = os.path.join(self.tmp.name, "state.st")
        m.save(path)
        with open(path, "rb") as f:
            return lp.digest(), f.read()

    def expect_error(self, call, status, m, lp, what, mention=None):
        """`call` must raise SparsecError(status) with a message (naming
        `mention`) and leave the instance unchanged. It runs in a forked
        child, so that a crash fails this case only."""
        def child():
            before = self.state(m, lp)
            try:
                call()
                return "succeeded"
            except SparsecError as e:
                return (e.status, e.message, self.state(m, lp) == before)

        kind, got = oracle.in_child(child)
        if kind != "ok":
            self.fail(f"{what}: the call {kind}: {got}")
        if got == "succeeded":
            self.fail(f"{what}: returned 0 (no error reported)")
        got_status, message, unchanged = got
        self.assertEqual(got_status, status, f"{what}: {message}")
        self.assertTrue(message, f"{what}: empty message")
        if mention:
            self.assertIn(mention, message, what)
        self.assertTrue(unchanged, f"{what}: the instance changed (parameters,"
                        " CSR structure, step, lr or optimizer state)")

    def trained(self, model, seed=7, steps=3):
        """An instance after a few steps (momentum buffers set)."""
        c = self.cache.get(model)
        m = c.instance(seed)
        rng = np.random.default_rng(seed)
        for b in (5, 2, 9)[:steps]:
            m.train_step(oracle.lib_inputs(c.spec,
                                           oracle.random_batch(c.spec, b, rng)))
        return c, m, oracle.LibParams(m, c.spec)

    def test_user_errors(self):
        c, m, lp = self.trained(ABI_MODEL)
        spec = c.spec
        batch = 4
        data = oracle.random_batch(spec, batch, np.random.default_rng(1))
        out_shape = (batch,) + oracle.value_shapes(spec)[spec.output]
        names = [i.name for i in spec.inputs]
        fwd_names = [i.name for i in spec.inputs if not i.is_target]
        bounds = oracle.id_bounds(spec)

        def calls(d, batch=None):
            """(forward, train_step) of the batch `d` ({name: array})."""
            return [("forward", lambda: m.forward(
                        [d[n] for n in fwd_names], out_shape, batch)),
                    ("train_step", lambda: m.train_step(
                        [d[n] for n in names], batch))]

        def with_value(name, index, value):
            d = dict(data)
            d[name] = data[name].copy()
            d[name].reshape(-1)[index] = value
            return d

        cases = []
        for name, bound in bounds.items():
            for v in (bound, bound + 1, 1 << 40, -1, -(1 << 40)):
                d = with_value(name, 2, v)
                for fn, call in calls(d):
                    if fn == "forward" and name not in fwd_names:
                        continue
                    cases.append((f"{fn}: {name}={v}", call, ERR_OUT_OF_RANGE,
                                  name))
        for b in (0, -1, -(1 << 62)):
            for fn, call in calls(data, b):
                cases.append((f"{fn}: batch {b}", call, ERR_INVALID_ARG, None))
        for name in names:
            d = dict(data)
            d[name] = None
            for fn, call in calls(d, batch):
                if fn == "forward" and name not in fwd_names:
                    continue
                cases.append((f"{fn}: NULL {name}", call, ERR_NULL, None))
        for v in (np.nan, np.inf, -np.inf):
            d = with_value("x", 5, v)
            for fn, call in calls(d):
                cases.append((f"{fn}: x[5]={v}", call, ERR_NONFINITE, "x"))
        for what, call, status, mention in cases:
            with self.subTest(case=what):
                self.expect_error(call, status, m, lp, what, mention)
        # Still usable, and successful calls clear the message.
        m.forward([data[n] for n in fwd_names], out_shape)
        self.assertEqual(m.last_error(), "")
        m.train_step([data[n] for n in names])
        self.assertEqual(m.step_count(), 4)

    def test_nonfinite_target(self):
        c, m, lp = self.trained(FLOAT_TARGET_MODEL)
        data = oracle.random_batch(c.spec, 3, np.random.default_rng(2))
        target = next(i.name for i in c.spec.inputs if i.is_target)
        for v in (np.nan, np.inf):
            with self.subTest(value=v):
                d = dict(data)
                d[target] = data[target].copy()
                d[target][1, 0] = v
                self.expect_error(
                    lambda: m.train_step(oracle.lib_inputs(c.spec, d)),
                    ERR_NONFINITE, m, lp, f"train_step: {target}={v}", target)

    def test_forward_changes_nothing(self):
        c, m, lp = self.trained(ABI_MODEL)
        data = oracle.random_batch(c.spec, 6, np.random.default_rng(3))
        before = self.state(m, lp)
        shape = (6,) + oracle.value_shapes(c.spec)[c.spec.output]
        a = m.forward(oracle.lib_inputs(c.spec, data, False), shape)
        b = m.forward(oracle.lib_inputs(c.spec, data, False), shape)
        np.testing.assert_array_equal(a, b)
        self.assertEqual(before, self.state(m, lp))

    # -- checkpoints ------------------------------------------------------
    def test_save_load_round_trip(self):
        c, m, lp = self.trained(ABI_MODEL)
        m.set_lr(0.0625)
        path = os.path.join(self.tmp.name, "rt.st")
        m.save(path)
        fresh = c.instance(seed=12345)
        flp = oracle.LibParams(fresh, c.spec)
        self.assertNotEqual(flp.digest(), lp.digest())
        fresh.load(path)
        flp = oracle.LibParams(fresh, c.spec)  # the CSR pattern is new
        self.assertEqual(flp.digest(), lp.digest())
        self.assertEqual((fresh.step_count(), fresh.get_lr()), (3, 0.0625))
        rng = np.random.default_rng(4)
        shape = (8,) + oracle.value_shapes(c.spec)[c.spec.output]
        for step in range(3):
            data = oracle.random_batch(c.spec, 8, rng)
            fwd = oracle.lib_inputs(c.spec, data, False)
            np.testing.assert_array_equal(m.forward(fwd, shape),
                                          fresh.forward(fwd, shape))
            # Bit-identical training: the momentum buffers were restored.
            self.assertEqual(m.train_step(oracle.lib_inputs(c.spec, data)),
                             fresh.train_step(oracle.lib_inputs(c.spec, data)))
            self.assertEqual(flp.digest(), lp.digest(), f"after step {step}")

    def corrupt_loads(self, blobs, status):
        """Loads each (what, bytes) into a trained instance; each must fail
        with `status` and change nothing."""
        c, m, lp = self.trained(ABI_MODEL, seed=8)
        before = self.state(m, lp)
        path = os.path.join(self.tmp.name, "bad.st")
        failures = []
        for what, blob in blobs:
            with open(path, "wb") as f:
                f.write(blob)
            try:
                m.load(path)
                failures.append(f"{what}: load succeeded")
                continue
            except SparsecError as e:
                if e.status != status or not e.message:
                    failures.append(f"{what}: status {e.status}, message "
                                    f"{e.message!r}")
            if lp.digest() != before[0]:  # (saving every time is slow)
                failures.append(f"{what}: the parameters changed")
                break
        self.assertEqual(failures[:10], [], f"{len(failures)} bad loads")
        self.assertTrue(self.state(m, lp) == before,
                        "the optimizer state changed")

    def checkpoint_bytes(self, seed=9):
        c, m, lp = self.trained(ABI_MODEL, seed=seed)
        path = os.path.join(self.tmp.name, f"good{seed}.st")
        m.save(path)
        with open(path, "rb") as f:
            return f.read()

    def test_load_rejects_truncated_files(self):
        blob = self.checkpoint_bytes()
        self.corrupt_loads([(f"first {n} of {len(blob)} bytes", blob[:n])
                            for n in range(len(blob))], ERR_FORMAT)

    def test_load_rejects_flipped_bytes(self):
        # Every byte inverted: the length prefix, the JSON header (ASCII
        # turned into invalid UTF-8 or invalid JSON) or the data (CRC32).
        blob = self.checkpoint_bytes()
        cases = []
        for k in range(len(blob)):
            bad = bytearray(blob)
            bad[k] ^= 0xFF
            cases.append((f"byte {k} of {len(blob)} flipped", bytes(bad)))
        self.corrupt_loads(cases, ERR_FORMAT)

    def test_load_rejects_other_model(self):
        c, m, _ = self.trained(FLOAT_TARGET_MODEL)
        path = os.path.join(self.tmp.name, "other.st")
        m.save(path)
        with open(path, "rb") as f:
            self.corrupt_loads([("checkpoint of another model", f.read())],
                               ERR_FORMAT)

    def test_load_nonexistent_and_save_to_missing_dir(self):
        c, m, lp = self.trained(ABI_MODEL)
        missing = os.path.join(self.tmp.name, "no-such-dir", "m.st")
        self.expect_error(lambda: m.load(missing), ERR_IO, m, lp,
                          "load of a nonexistent path")
        self.expect_error(lambda: m.save(missing), ERR_IO, m, lp,
                          "save into a missing directory")
        self.assertFalse(os.path.exists(os.path.dirname(missing)))


if __name__ == "__main__":
    unittest.main()
