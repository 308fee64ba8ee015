"""Free-standing sparse `fn` kernels against torch.sparse.

Compiles tests/e2e/fn/kernels.sdl (one kernel per row of the op table in
docs/sparse-ops.md), calls every exported C function through ctypes on random
CSR / CSC / coalesced COO / hybrid COO(1) / BSR / n:m structured inputs in f32 and f64, with
0 %, ~35 % and 100 % density (nnz = 0 included), and compares with
torch.sparse: mm / mv, addmm, sum, to_dense, elementwise +, -, * (dense and
sparse results: values *and* patterns — union for + and -, intersection for
*), every elementwise function on stored values only (implicit zeros do not
take part), transpose; a model and kernels in one library; flat memory over
20000 calls building sparse results. Bad inputs (inconsistent positions,
coordinates out of range or out of order, uncoalesced COO, a negative
run-time size, a too small output capacity, NULL) must return the documented
status code and a message, never crash.

Run: /usr/bin/python3 -m unittest -v test_fn_kernels  (from tests/e2e)
"""
import ctypes
import os
import subprocess
import unittest

import numpy as np
import torch

import oracle

from fn_harness import (DENSITIES, DTYPES, ERR_FORMAT, ERR_INVALID_ARG,
                        ERR_NULL, ERR_OUT_OF_RANGE, FN_DIR, K, M, OK, FnCase,
                        Lib, arrays, heap_in_use, random_sparse)


class FnKernelsTest(FnCase, unittest.TestCase):
    SDL_NAME = "kernels"

    # -- sparse x dense ---------------------------------------------------
    def test_mm(self):
        for name, fmt, dt in (("spmm", "csr", "f32"), ("spmm_csc", "csc", "f32"),
                              ("spmm_coo", "coo", "f64")):
            for d, a in self.cases(dt):
                for n in (0, 1, 3):
                    with self.subTest(kernel=name, density=d, N=n):
                        x = self.dense((K, n), dt, 5)
                        out = self.out((M, n), dt)
                        self.call(name, n, *arrays(a, fmt), x.numpy(), out)
                        self.close(out, torch.sparse.mm(a, x))

    def test_mv_and_dense_times_sparse(self):
        for d, a in self.cases("f64"):
            x = self.dense((K,), "f64", 6)
            out = self.out((M,), "f64")
            self.call("spmv", *arrays(a, "csr"), x.numpy(), out)
            self.close(out, torch.mv(a, x))
        for d, a in self.cases():
            x = self.dense((4, M), "f32", 7)
            out = self.out((4, K), "f32")
            self.call("dense_spmm", 4, x.numpy(), *arrays(a, "csr"), out)
            self.close(out, x @ a.to_dense())

    def test_addmm(self):
        for d, a in self.cases():
            bias, x = self.dense((M, 3), "f32", 8), self.dense((K, 3), "f32", 9)
            out = self.out((M, 3), "f32")
            self.call("addmm", 3, bias.numpy(), *arrays(a, "csr"), x.numpy(), out)
            self.close(out, torch.sparse.addmm(bias, a, x, beta=0.5, alpha=-2))

    # -- elementwise ------------------------------------------------------
    def test_sparse_dense_elementwise(self):
        for d, a in self.cases():
            dense = self.dense((M, K), "f32", 10)
            out = self.out((M, K), "f32")
            self.call("add_dense", *arrays(a, "csr"), dense.numpy(), out)
            self.close(out, a.to_dense() + dense)
            self.call("mul_dense", *arrays(a, "csc"), dense.numpy(), out)
            self.close(out, (a * dense).to_dense())
        for d, a in self.cases("f64"):
            dense = self.dense((M, K), "f64", 11)
            out = self.out((M, K), "f64")
            self.call("sub_dense", dense.numpy(), *arrays(a, "coo"), out)
            self.close(out, dense - a)

    def test_sparse_sparse_elementwise(self):
        for dt, name, fmt, op in (("f32", "add_csr", "csr", "+"),
                                  ("f64", "sub_csr", "csr", "-"),
                                  ("f32", "mul_csr", "csr", "*"),
                                  ("f32", "add_coo", "coo", "+"),
                                  ("f32", "mul_csc", "csc", "*")):
            tdt = DTYPES[dt][0]
            for i, da in enumerate(DENSITIES):
                for j, db in enumerate(DENSITIES):
                    a = random_sparse(M, K, da, tdt, 30 + i)
                    b = random_sparse(M, K, db, tdt, 40 + j)
                    with self.subTest(kernel=name, da=da, db=db):
                        pa, pb = self.pattern(a), self.pattern(b)
                        if op == "*":
                            cap = min(a._nnz(), b._nnz())
                            want, pat = a.to_dense() * b.to_dense(), pa & pb
                        else:
                            cap = min(a._nnz() + b._nnz(), M * K)
                            want = (a + b if op == "+" else a - b).to_dense()
                            pat = pa | pb
                        got = self.sparse_result(
                            name, fmt, (M, K), dt, cap,
                            *arrays(a, fmt), *arrays(b, fmt))
                        self.check_sparse(got, want, pat)

    # -- ops on stored values ---------------------------------------------
    def test_values_ops(self):
        for d, a in self.cases():
            v = a.values()
            f = (2 * (torch.sin(torch.sqrt(v.abs())) +
                      torch.tanh(torch.exp(v) - torch.log1p(v.abs())))
                 - v ** 3 / 4 - v)
            want = torch.sparse_coo_tensor(a.indices(), f, a.shape).to_dense()
            got = self.sparse_result("values_ops", "csr", (M, K), "f32",
                                     a._nnz(), *arrays(a, "csr"))
            # exp(0) = 1 and log1p would not be 0 if implicit zeros took part.
            self.check_sparse(got, want, self.pattern(a))
        for d, a in self.cases("f64"):
            want = torch.sparse_coo_tensor(a.indices(), torch.exp(-a.values()),
                                           a.shape).to_dense()
            got = self.sparse_result("exp_coo", "coo", (M, K), "f64",
                                     a._nnz(), *arrays(a, "coo"))
            self.check_sparse(got, want, self.pattern(a))

    def rows_result(self, name, cap, dtype, *args):
        """Calls kernel `name` with an @coo(1) [M, K] result; returns it dense
        and its stored rows."""
        idx = np.full((cap,), -1, np.int64)
        val = np.full((cap, K), np.nan, DTYPES[dtype][1])
        nnz = np.zeros(1, np.int64)
        self.call(name, *args, idx, val, cap, nnz)
        n = int(nnz[0])
        self.assertTrue(np.all(np.diff(idx[:n]) > 0), "rows not coalesced")
        dense = np.zeros((M, K), DTYPES[dtype][1])
        dense[idx[:n]] = val[:n]
        return dense, set(idx[:n].tolist())

    @staticmethod
    def nm_tensor(rows, cols, n, m, dtype, seed, density):
        """(crd, val, dense) of a random n:m structured matrix: n columns of
        every group of m, of which a `density` share nonzero."""
        g = torch.Generator().manual_seed(seed)
        crd = np.zeros((rows, cols // m, n), np.int64)
        val = torch.randn(rows, cols // m, n, generator=g, dtype=dtype)
        val = val * (torch.rand(rows, cols // m, n, generator=g) < density)
        dense = torch.zeros(rows, cols, dtype=dtype)
        for r in range(rows):
            for q in range(cols // m):
                crd[r, q] = sorted(torch.randperm(m, generator=g)[:n].tolist())
                dense[r, q * m + crd[r, q]] = val[r, q]
        return crd, np.ascontiguousarray(val.numpy()), dense

    def test_structured_nm(self):
        for i, d in enumerate(DENSITIES):
            with self.subTest(density=d):
                crd, val, a = self.nm_tensor(M, 8, 2, 4, torch.float32, 90 + i,
                                             d)
                x = self.dense((8, 3), "f32", 91)
                out = self.out((M, 3), "f32")
                self.call("nm_mm", 3, crd, val, x.numpy(), out)
                self.close(out, a @ x)
                out = self.out((M, 8), "f32")
                self.call("nm_dense", crd, val, out)
                self.close(out, a)
                out = self.out((M,), "f32")
                self.call("nm_sum", crd, val, out)
                self.close(out, a.sum(1))
                crd, val, a = self.nm_tensor(M, 8, 2, 4, torch.float64, 92 + i,
                                             d)
                b = self.dense((M, 3), "f64", 93)
                x = self.dense((8, 3), "f64", 94)
                out = self.out((M, 3), "f64")
                self.call("nm_addmm", b.numpy(), crd, val, x.numpy(), out)
                self.close(out, 2 * b + a @ x)
                crd, val, a = self.nm_tensor(4, 12, 1, 3, torch.float32, 95 + i,
                                             d)
                v = self.dense((12,), "f32", 96)
                out = self.out((4,), "f32")
                self.call("nm_mv", crd, val, v.numpy(), out)
                self.close(out, a @ v)
        # Bad coordinates: outside the group, not increasing, NULL.
        crd, val, _ = self.nm_tensor(M, 8, 2, 4, torch.float32, 97, 1.0)
        out = self.out((M,), "f32")
        for bad, status in ((4, ERR_OUT_OF_RANGE), (-1, ERR_OUT_OF_RANGE)):
            c = crd.copy()
            c[1, 1, 0] = bad
            self.assertEqual(self.lib("nm_sum", c, val, out), status)
            self.assertIn("A_crd[6] = %d is outside [0, 4)" % bad,
                          self.lib.last_error())
        c = crd.copy()
        c[2, 0] = [3, 1]
        self.assertEqual(self.lib("nm_sum", c, val, out), ERR_FORMAT)
        self.assertIn("not strictly increasing in group 4",
                      self.lib.last_error())
        self.assertEqual(self.lib("nm_sum", None, val, out), ERR_NULL)

    def test_hybrid_coo_rows(self):
        def rows(t):
            return set(torch.nonzero(t.to_dense().abs().sum(1)).flatten().tolist())
        for i, da in enumerate(DENSITIES):
            a = random_sparse(M, K, da, torch.float32, 80 + i)
            b = random_sparse(M, K, 0.2, torch.float32, 90 + i)
            with self.subTest(density=da):
                x = self.dense((K, 3), "f32", 26)
                out = self.out((M, 3), "f32")
                self.call("rows_mm", 3, *arrays(a, "coo1"), x.numpy(), out)
                self.close(out, a.to_dense() @ x)
                got, stored = self.rows_result(
                    "rows_mul", min(len(rows(a)), len(rows(b))), "f32",
                    *arrays(a, "coo1"), *arrays(b, "coo1"))
                self.close(got, a.to_dense() * b.to_dense())
                self.assertEqual(stored, rows(a) & rows(b))
                got, stored = self.rows_result("rows_map", len(rows(a)), "f32",
                                               *arrays(a, "coo1"))
                # cos of the stored rows (their zeros included: they are
                # stored values), nothing elsewhere.
                want = torch.zeros(M, K)
                for r in rows(a):
                    want[r] = torch.cos(a.to_dense()[r]) / 2
                self.close(got, want)
                self.assertEqual(stored, rows(a))
                d = self.dense((M, K), "f32", 27)
                out = self.out((M, K), "f32")
                self.call("rows_dense", *arrays(a, "coo1"), d.numpy(), out)
                self.close(out, d - a.to_dense())
                out = self.out((K, M), "f32")
                self.call("rows_t", *arrays(a, "coo1"), out)
                self.close(out, a.to_dense().t())
                a64, b64 = a.double(), b.double()
                got, stored = self.rows_result(
                    "rows_add", min(len(rows(a)) + len(rows(b)), M), "f64",
                    *arrays(a64, "coo1"), *arrays(b64, "coo1"))
                self.close(got, (a64 + b64).to_dense())
                self.assertEqual(stored, rows(a) | rows(b))
                out = self.out((K,), "f64")
                self.call("rows_sum", *arrays(a64, "coo1"), out)
                self.close(out, torch.sparse.sum(a64, 0).to_dense())
        ind, val, nnz = arrays(random_sparse(M, K, 0.9, torch.float32, 5),
                               "coo1")
        bad = ind[::-1].copy()
        self.expect_error(ERR_FORMAT, "not coalesced", "rows_mm", 1, bad, val,
                          nnz, np.zeros((K, 1), np.float32),
                          np.zeros((M, 1), np.float32))
        bad = ind.copy()
        bad[-1] = M
        self.expect_error(ERR_OUT_OF_RANGE, "row 6", "rows_mm", 1, bad, val,
                          nnz, np.zeros((K, 1), np.float32),
                          np.zeros((M, 1), np.float32))

    def test_block_sparse(self):
        rows, cols = 6, 4

        def blocks(t, r, c):
            d = t.to_dense().abs().reshape(rows // r, r, cols // c, c)
            return set(map(tuple, torch.nonzero(d.sum((1, 3))).tolist()))

        def bsr_result(name, r, c, cap, dtype, *args):
            nb = rows // r
            pos = np.full(nb + 1, -1, np.int64)
            crd = np.full(cap, -1, np.int64)
            val = np.full((cap, r, c), np.nan, DTYPES[dtype][1])
            nnz = np.zeros(1, np.int64)
            self.call(name, *args, pos, crd, val, cap, nnz)
            n = int(nnz[0])
            self.assertEqual(pos[-1], n)
            dense = np.zeros((rows, cols), DTYPES[dtype][1])
            stored = set()
            for br in range(nb):
                for k in range(pos[br], pos[br + 1]):
                    if k > pos[br]:
                        self.assertGreater(crd[k], crd[k - 1])
                    bc = int(crd[k])
                    stored.add((br, bc))
                    dense[br * r:(br + 1) * r, bc * c:(bc + 1) * c] = val[k]
            return dense, stored

        for i, d in enumerate(DENSITIES):
            with self.subTest(density=d):
                a = random_sparse(rows, cols, d * 0.4, torch.float32, 100 + i)
                b = random_sparse(rows, cols, 0.3, torch.float32, 110 + i)
                x = self.dense((cols, 3), "f32", 28)
                out = self.out((rows, 3), "f32")
                self.call("bsr_mm", 3, *arrays(a, "bsr32"), x.numpy(), out)
                self.close(out, a.to_dense() @ x)
                na, nb = len(blocks(a, 2, 2)), len(blocks(b, 2, 2))
                got, stored = bsr_result("bsr_mul", 2, 2, min(na, nb), "f32",
                                         *arrays(a, "bsr22"),
                                         *arrays(b, "bsr22"))
                self.close(got, a.to_dense() * b.to_dense())
                self.assertEqual(stored, blocks(a, 2, 2) & blocks(b, 2, 2))
                got, stored = bsr_result("bsr_map", 3, 2, len(blocks(a, 3, 2)),
                                         "f32", *arrays(a, "bsr32"))
                want = torch.zeros(rows, cols)
                for br, bc in blocks(a, 3, 2):  # whole stored blocks
                    sl = (slice(3 * br, 3 * br + 3), slice(2 * bc, 2 * bc + 2))
                    want[sl] = 2 * torch.exp(a.to_dense()[sl])
                self.close(got, want)
                self.assertEqual(stored, blocks(a, 3, 2))
                out = self.out((cols, rows), "f32")
                self.call("bsr_t", *arrays(a, "bsr32"), out)
                self.close(out, a.to_dense().t())
                a64, b64 = a.double(), b.double()
                got, stored = bsr_result(
                    "bsr_add", 2, 2, min(na + nb, 6), "f64",
                    *arrays(a64, "bsr22"), *arrays(b64, "bsr22"))
                self.close(got, (a64 + b64).to_dense())
                self.assertEqual(stored, blocks(a, 2, 2) | blocks(b, 2, 2))
                out = self.out((rows,), "f64")
                self.call("bsr_sum", *arrays(a64, "bsr22"), out)
                self.close(out, a64.to_dense().sum(1))

    def test_every_elementwise_function(self):
        # One kernel per function of the seed's pointwise list; values in
        # (0, 1) suit every domain, the real line those defined everywhere.
        names = ["neg", "abs", "sqrt", "rsqrt", "exp", "expm1", "log", "log1p",
                 "log2", "log10", "sin", "cos", "tan", "asin", "acos", "atan",
                 "sinh", "cosh", "tanh", "erf", "ceil", "floor", "round",
                 "trunc"]
        whole_line = {"neg", "abs", "exp", "expm1", "sin", "cos", "tan", "atan",
                      "sinh", "cosh", "tanh", "erf", "ceil", "floor", "round",
                      "trunc"}
        src = "".join(
            "fn u_%s(A : f64[6, 5] @csr) -> f64[6, 5] @csr { return %s(A) }\n"
            "fn d_%s(x : f64[N, 5]) -> f64[N, 5] { return %s(x) }\n"
            % (n, n, n, n) for n in names)
        sdl = os.path.join(self.tmp.name, "unary.sdl")
        with open(sdl, "w") as f:
            f.write(src)
        so = os.path.join(self.tmp.name, "libunary.so")
        subprocess.run([oracle.sparsec_binary(), sdl, "-o", so], check=True)
        lib = Lib(so, "unary")
        g = torch.Generator().manual_seed(70)
        mask = torch.rand(M, K, generator=g) < 0.5
        unit = torch.rand(M, K, generator=g, dtype=torch.float64) * 0.9 + 0.05
        line = torch.randn(M, K, generator=g, dtype=torch.float64) * 2
        line[0, :4] = torch.tensor([0.5, 2.5, -1.5, -0.5], dtype=torch.float64)
        mask[0, :4] = True
        for name in names:
            for vals in [unit] + ([line] if name in whole_line else []):
                with self.subTest(function=name):
                    a = (vals * mask).to_sparse().coalesce()
                    fn = getattr(torch, name)
                    want = torch.sparse_coo_tensor(a.indices(), fn(a.values()),
                                                   a.shape).to_dense()
                    pos, crd, val, nnz = arrays(a, "csr")
                    opos, ocrd = np.zeros(M + 1, np.int64), np.zeros(nnz, np.int64)
                    oval, onnz = np.zeros(nnz), np.zeros(1, np.int64)
                    self.assertEqual(lib("u_" + name, pos, crd, val, nnz, opos,
                                         ocrd, oval, nnz, onnz), OK)
                    got = torch.sparse_csr_tensor(
                        torch.from_numpy(opos), torch.from_numpy(ocrd),
                        torch.from_numpy(oval), (M, K))
                    self.check_sparse(got, want, self.pattern(a))
                    x = vals.numpy().copy()
                    out = self.out((M, K), "f64")
                    self.assertEqual(lib("d_" + name, M, x, out), OK)
                    self.close(out, fn(vals), tol=1e-10)

    # -- reductions, transpose, to_dense ----------------------------------
    def test_sum(self):
        for d, a in self.cases():
            out = self.out((), "f32")
            self.call("sum_all", *arrays(a, "csr"), out)
            self.close(out, torch.sparse.sum(a))
            out = self.out((M,), "f32")
            self.call("sum_cols", *arrays(a, "coo"), out)
            self.close(out, torch.sparse.sum(a, -1).to_dense())
        for d, a in self.cases("f64"):
            out = self.out((K,), "f64")
            self.call("sum_rows", *arrays(a, "csc"), out)
            self.close(out, torch.sparse.sum(a, 0).to_dense())

    def test_transpose_and_to_dense(self):
        for d, a in self.cases():
            t = a.t().coalesce()
            got = self.sparse_result("transpose_csr", "csc", (K, M), "f32",
                                     a._nnz(), *arrays(a, "csr"))
            self.check_sparse(got, t.to_dense(), self.pattern(t))
            out = self.out((K, M), "f32")
            self.call("transpose_dense", *arrays(a, "coo"), out)
            self.close(out, t.to_dense())
        for d, a in self.cases("f64"):
            t = a.t().coalesce()
            got = self.sparse_result("transpose_csc", "csr", (K, M), "f64",
                                     a._nnz(), *arrays(a, "csc"))
            self.check_sparse(got, 3 * t.to_dense(), self.pattern(t))
            out = self.out((M, K), "f64")
            self.call("densify", *arrays(a, "csc"), out)
            self.close(out, a.to_dense())

    def test_sparse_result_frees_temporaries(self):
        # Building a sparse result allocates (insertion buffers); the kernel
        # must free them: resident memory stays flat over many calls.
        a = random_sparse(M, K, 0.5, torch.float32, 1)
        b = random_sparse(M, K, 0.5, torch.float32, 2)
        args = arrays(a, "csr") + arrays(b, "csr")
        cap = M * K
        outs = [np.zeros(M + 1, np.int64), np.zeros(cap, np.int64),
                np.zeros(cap, np.float32), cap, np.zeros(1, np.int64)]

        for _ in range(2000):  # warm up the allocator
            self.lib("add_csr", *args, *outs)
        before = heap_in_use()
        for _ in range(20000):
            self.assertEqual(self.lib("add_csr", *args, *outs), OK)
        self.assertLess(heap_in_use() - before, 1 << 20)

    def test_compositions(self):
        x, y = self.dense((3, K), "f32", 20), self.dense((3, K), "f32", 21)
        out = self.out((3,), "f32")
        self.call("dense_ops", 3, x.numpy(), y.numpy(), out)
        self.close(out, (torch.tanh(x) * y - y / 2).sum(1))
        for i, d in enumerate(DENSITIES):
            a = random_sparse(M, K, d, torch.float64, 50 + i)
            b = random_sparse(M, K, 0.5, torch.float64, 60 + i)
            x = self.dense((K, 2), "f64", 22)
            out = self.out((M, 2), "f64")
            self.call("chain", 2, *arrays(a, "csr"), *arrays(b, "csr"),
                      x.numpy(), out)
            c = a.to_dense().abs() * b.to_dense() + a.to_dense()
            self.close(out, -(c @ x))
            a32 = a.float()
            dense = self.dense((M, K), "f32", 23)
            out = self.out((), "f32")
            self.call("sparse_plus_sum", *arrays(a32, "csc"), dense.numpy(),
                      out)
            self.close(out, (dense + 2 * a32.to_dense()).sum(), tol=1e-5)
        x, y = self.dense((4, K), "f64", 24), self.dense((K, 3), "f64", 25)
        out = self.out((4, 3), "f64")
        self.call("dense_mm", 4, x.numpy(), y.numpy(), out)
        self.close(out, x @ y)

    # -- bad inputs -------------------------------------------------------
    def expect_error(self, status, text, name, *args):
        got = self.lib(name, *args)
        self.assertEqual(got, status, self.lib.last_error())
        self.assertIn(text, self.lib.last_error())

    def test_bad_inputs(self):
        a = random_sparse(M, K, 0.5, torch.float32, 3)
        pos, crd, val, nnz = arrays(a, "csr")
        x = self.dense((K, 2), "f32", 1).numpy()
        out = self.out((M, 2), "f32")
        self.expect_error(ERR_INVALID_ARG, "A_pos[6]", "spmm", 2, pos, crd,
                          val, nnz - 1, x, out)  # wrong nnz
        # A result overlapping an input (in place, or the input's values).
        d = self.dense((M, K), "f32", 2).numpy()
        self.expect_error(ERR_INVALID_ARG, "result array 'out' overlaps input "
                          "array 'D'", "add_dense", pos, crd, val, nnz, d, d)
        self.expect_error(ERR_INVALID_ARG, "overlaps input array 'A_val'",
                          "add_dense", pos, crd, val, nnz, d, val[:1])
        self.expect_error(ERR_INVALID_ARG, "A_nnz", "spmm", 2, pos, crd, val,
                          M * K + 1, x, out)
        self.expect_error(ERR_INVALID_ARG, "dimension N", "spmm", -1, pos, crd,
                          val, nnz, x, out)
        bad = crd.copy()
        bad[0] = K
        self.expect_error(ERR_OUT_OF_RANGE, "A_crd[0]", "spmm", 2, pos, bad,
                          val, nnz, x, out)
        bad = pos.copy()
        bad[1] = nnz + 1
        self.expect_error(ERR_FORMAT, "A_pos[1]", "spmm", 2, bad, crd, val, nnz,
                          x, out)
        row = int(np.argmax(np.diff(pos) >= 2))
        bad = crd.copy()
        bad[pos[row]], bad[pos[row] + 1] = bad[pos[row] + 1], bad[pos[row]]
        self.expect_error(ERR_FORMAT, "strictly increasing", "spmm", 2, pos,
                          bad, val, nnz, x, out)
        self.expect_error(ERR_NULL, "'x'", "spmm", 2, pos, crd, val, nnz,
                          None, out)
        self.expect_error(ERR_NULL, "", "spmm", 2, None, crd, val, nnz, x, out)
        ind, cval, cnnz = arrays(a, "coo")
        bad = np.ascontiguousarray(ind[:, ::-1])
        out64 = self.out((M, 2), "f64")
        self.expect_error(ERR_FORMAT, "coalesced", "spmm_coo", 2, bad,
                          cval.astype(np.float64), cnnz,
                          x.astype(np.float64), out64)
        # A too small capacity for a sparse result.
        b = random_sparse(M, K, 0.5, torch.float32, 4)
        opos = np.zeros(M + 1, np.int64)
        ocrd = np.zeros(1, np.int64)
        oval = np.zeros(1, np.float32)
        onnz = np.zeros(1, np.int64)
        self.expect_error(ERR_INVALID_ARG, "out_cap", "add_csr",
                          *arrays(a, "csr"), *arrays(b, "csr"), opos, ocrd,
                          oval, 1, onnz)
        # The outputs were left alone by the failed calls.
        self.assertTrue(np.isnan(out).all())

    def test_model_and_kernels_in_one_file(self):
        so = os.path.join(self.tmp.name, "libmixed.so")
        subprocess.run([oracle.sparsec_binary(),
                        os.path.join(FN_DIR, "mixed.sdl"),
                        "-o", so], check=True)
        lib = Lib(so, "mixed")
        a = random_sparse(4, 8, 0.4, torch.float32, 12)
        pos, crd, val, nnz = arrays(a, "csr")
        opos, ocrd = np.zeros(5, np.int64), np.zeros(nnz, np.int64)
        oval, onnz = np.zeros(nnz, np.float32), np.zeros(1, np.int64)
        self.assertEqual(lib("scale", pos, crd, val, nnz, opos, ocrd, oval,
                             nnz, onnz), OK, lib.last_error())
        self.assertEqual(int(onnz[0]), nnz)
        np.testing.assert_array_equal(opos, pos)
        np.testing.assert_array_equal(ocrd, crd)
        self.close(oval, 3 * val)
        handle = ctypes.c_void_p()
        self.assertEqual(lib.lib.Tiny_create(ctypes.c_uint64(1),
                                             ctypes.byref(handle)), OK)
        lib.lib.Tiny_destroy(handle)
        header = open(os.path.join(self.tmp.name, "libmixed.h")).read()
        self.assertIn("Tiny_create", header)
        self.assertIn("int mixed_scale(", header)

    def test_header(self):
        self.assertIn("int kernels_spmm(int64_t N, const int64_t *A_pos, "
                      "const int64_t *A_crd, const float *A_val, "
                      "int64_t A_nnz, const float *x, float *out);",
                      self.header)
        self.assertIn("const char *kernels_last_error(void);", self.header)


if __name__ == "__main__":
    unittest.main()
