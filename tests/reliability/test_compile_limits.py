"""Absurd sizes and hostile sources are rejected by `sparsec` at compile
time with a located message (file:line:col: error: ...) and exit status 1,
never a crash, a hang or an allocation attempt.

* Parameters over the 2^31-element limit (embedding(10^12, 64), linear,
  sparse_linear counted densely, tensor, embedding_bag) and inputs over the
  per-example limit; integer literals over 2^63 - 1.
* Sizes right at the limits: compile, or fail at compile time with a
  message; a model that compiles must also be creatable (the runtime has
  the same limits).
* Huge and deeply nested sources: bounded time, errors capped at the
  --error-limit.

Run: /usr/bin/python3 -m unittest -v test_compile_limits  (from tests/reliability)
"""
import os
import re
import time
import unittest

import reliability_util as U

MODEL = """model Huge {{
  input  x : {xtype}
  input  ids : i64[B]
  target y : i64[B]
  param p : {param}
  param head : linear({feat}, 3)
  forward {{
    h = {use}
    logits = head(h)
    return logits
  }}
  loss = cross_entropy(logits, y)
  optimizer = sgd(lr = 0.1)
}}
"""


def source(param, use="p(ids)", feat=64, xtype="f32[B, 4]"):
    return MODEL.format(param=param, use=use, feat=feat, xtype=xtype)


LOCATED = re.compile(r"^(?P<file>[^:\n]+):(?P<line>\d+):(?P<col>\d+): error: (?P<msg>.*)$", re.M)


class CompileLimitsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = os.path.join(U.workdir(), "limits")
        os.makedirs(cls.dir, exist_ok=True)

    def compile(self, name, text, *args, timeout=120):
        path = os.path.join(self.dir, name + ".sdl")
        with open(path, "w" if isinstance(text, str) else "wb") as f:
            f.write(text)
        t0 = time.monotonic()
        proc = U.run_sparsec([path, *args], timeout=timeout)
        return proc, time.monotonic() - t0, path

    def rejected(self, name, text, line, fragment):
        """`text` must fail with exit status 1 and a located error at
        `line` containing `fragment`."""
        proc, secs, path = self.compile(name, text, "--emit=ast")
        self.assertEqual(proc.returncode, 1, f"{name}: exit status "
                         f"{proc.returncode} (stderr: {proc.stderr[-2000:]})")
        errors = [m.groupdict() for m in LOCATED.finditer(proc.stderr)]
        self.assertTrue(errors, f"{name}: no located error in {proc.stderr!r}")
        hits = [e for e in errors if fragment in e["msg"]]
        self.assertTrue(hits, f"{name}: no error with {fragment!r}: {proc.stderr}")
        self.assertEqual(hits[0]["file"], path)
        self.assertEqual(int(hits[0]["line"]), line, proc.stderr)
        return hits[0]["msg"]

    def test_absurd_parameters(self):
        cases = [
            ("embedding_1e12", "embedding(1000000000000, 64)", "p(ids)", 64),
            ("embedding_rows_2e31", "embedding(2147483648, 2)", "p(ids)", 2),
            ("embedding_dim_huge", "embedding(10, 4000000000)", "p(ids)", 4000000000),
            ("embedding_int64_max", "embedding(9223372036854775807, 9223372036854775807)",
             "p(ids)", 1),
            ("bag_1e12", "embedding_bag(1000000000000, 8)", "p(ids)", 8),
            ("linear_1e10", "linear(100000, 100000)", "p(x)", 100000),
            ("sparse_linear_dense_count", "sparse_linear(100000, 100000, sparsity = 0.99999)",
             "p(x)", 100000),
            ("tensor_huge", "tensor(100000, 100000)", "x @ p", 100000),
        ]
        for name, param, use, feat in cases:
            with self.subTest(case=name):
                msg = self.rejected(name, source(param, use, feat), 5, "elements")
                self.assertIn("2147483648", msg)

    def test_absurd_inputs_and_literals(self):
        self.rejected("input_per_example",
                      source("embedding(10, 4)", xtype="f32[B, 3000000000]"),
                      2, "2147483648")
        self.rejected("input_product",
                      source("embedding(10, 4)", xtype="f32[B, 100000, 100000]"),
                      2, "2147483648")
        self.rejected("int_literal_2e63", source("embedding(9223372036854775808, 4)"),
                      5, "integer literal is too large")
        self.rejected("int_literal_1e30",
                      source("embedding(1000000000000000000000000000000, 4)"),
                      5, "integer literal is too large")
        self.rejected("float_literal_1e400",
                      source("sparse_linear(4, 8, sparsity = 1e400)", "p(x)", 8),
                      5, "out of range")
        self.rejected("negative_dim", source("embedding(-5, 4)"), 5, "")

    def test_sizes_at_the_limit(self):
        """Right at the limits the compiler agrees with the runtime: a CSR
        weight may store at most 2^31 - 1 values (32-bit indices; the
        runtime refuses more at create), any parameter and any example at
        most 2^31 elements. Checked on the header (--emit=header), which
        carries what the runtime will be given: the whole library of such a
        model would take ~17 GB of RAM to compile (open finding R-6)."""
        csr = "sparse_linear(65536, 32768, sparsity = {}, bias = false)"
        accepted = [
            ("csr_nnz_2e31m1", csr.format("0.0000000004656612873077393"), "p(x)", 32768,
             "f32[B, 65536]", r"csr \[32768\]\[65536\], nnz 2147483647"),
            ("dense_2e31", "linear(65536, 32768, bias = false)", "p(x)", 32768,
             "f32[B, 65536]", r"dense \[32768\]\[65536\]"),
            ("embedding_2e31", "embedding(1073741824, 2)", "p(ids)", 2, "f32[B, 4]",
             r"embedding \[1073741824\]\[2\]"),
            ("input_2e31", "embedding(10, 4)", "p(ids)", 4, "f32[B, 2147483648]",
             r"f32\[batch\]\[2147483648\]"),
        ]
        for name, param, use, feat, xtype, want in accepted:
            with self.subTest(case=name):
                proc, secs, path = self.compile(name, source(param, use, feat, xtype),
                                                "--emit=header")
                self.assertEqual(proc.returncode, 0, proc.stderr)
                self.assertRegex(proc.stdout, want)
        rejected = [
            ("csr_nnz_2e31", csr.format("0"), "p(x)", 32768, "f32[B, 65536]", 5,
             "limit is 2147483647"),
            ("dense_2e31p1", "linear(65536, 32768)", "p(x)", 32768, "f32[B, 65536]", 5,
             "2147483648"),
            ("input_2e31p1", "embedding(10, 4)", "p(ids)", 4, "f32[B, 2147483649]", 2,
             "2147483648"),
        ]
        for name, param, use, feat, xtype, line, fragment in rejected:
            with self.subTest(case=name):
                self.rejected(name, source(param, use, feat, xtype), line, fragment)

    def test_huge_and_nested_sources(self):
        cases = [
            ("garbage_5mb", b"$%*" * (5 << 20 // 3), 1),
            ("nul_bytes", b"\0" * (1 << 20), 1),
            ("deep_parens", ("model M { input x : f32[B, 4]; target y : f32[B, 4]\n"
                             "forward { a = " + "(" * 200000 + "x" + ")" * 200000 +
                             " }\n loss = mse(a, y)\n optimizer = sgd(lr = 0.1) }\n").encode(), 1),
            ("long_ident", ("model " + "M" * (4 << 20) + " {}\n").encode(), 1),
            ("many_models", ("model M {}\n" * 200000).encode(), 1),
            ("long_number", ("model M { param p : embedding(" + "9" * 100000 +
                             ", 4) }").encode(), 1),
        ]
        for name, text, status in cases:
            with self.subTest(case=name):
                proc, secs, path = self.compile(name, text, "--emit=ast", timeout=120)
                self.assertEqual(proc.returncode, status,
                                 f"{name}: {proc.stderr[-3000:]}")
                errors = LOCATED.findall(proc.stderr)
                self.assertTrue(errors, f"{name}: no located error")
                self.assertLessEqual(len(errors), 20, f"{name}: error limit")
                self.assertLess(secs, 60, f"{name}: took {secs:.1f} s")


if __name__ == "__main__":
    unittest.main()
