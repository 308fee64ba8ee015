"""Sparse results of products and sorting transposes of `fn` kernels.

Compiles tests/e2e/fn/algebra.sdl and compares every kernel with torch.sparse
on random inputs of 0 %, ~35 % and 100 % density (nnz = 0 included), f32 and
f64: sparse @ sparse (SpGEMM) in CSR, CSC and COO, `smm`, `hspmm` and
`sspaddmm` (sparse results of sparse @ dense), the COO transpose into a
sorted, coalesced COO result, softmax / log_softmax and max / min over
stored values, narrow, cat, clone, zero (0 * A) and norm. Values and stored patterns are checked (the
pattern of a product is structural: every (i, j) some stored a(i, k) and
b(k, j) reach, as in PyTorch); so are the out_cap bound and flat memory over
many calls (the buffers the sparsifier allocates for the expanded access
pattern and the sort are freed).

Run: /usr/bin/python3 -m unittest -v test_fn_algebra  (from tests/e2e)
"""
import unittest

import numpy as np
import torch

from fn_harness import (DENSITIES, DTYPES, ERR_INVALID_ARG, K, M, OK, FnCase,
                        arrays, heap_in_use, random_sparse)

N = 4


def reach(a, b):
    """Structural pattern of the product of sparse `a` and `b` (dense `b`:
    every column)."""
    pa = (a.to_dense() != 0).double()
    pb = torch.ones(b.shape, dtype=torch.float64) if b.layout == torch.strided \
        else (b.to_dense() != 0).double()
    return (pa @ pb) > 0


class FnAlgebraTest(FnCase, unittest.TestCase):
    SDL_NAME = "algebra"

    def pairs(self, dtype):
        tdt = DTYPES[dtype][0]
        for i, da in enumerate(DENSITIES):
            for j, db in enumerate(DENSITIES):
                yield (da, db, random_sparse(M, K, da, tdt, 100 + i),
                       random_sparse(K, N, db, tdt, 110 + j))

    def test_spgemm(self):
        for name, fmt, dt in (("spgemm_csr", "csr", "f32"),
                              ("spgemm_csc", "csc", "f64"),
                              ("spgemm_coo", "coo", "f32")):
            for da, db, a, b in self.pairs(dt):
                with self.subTest(kernel=name, da=da, db=db):
                    pat = reach(a, b)
                    cap = min(a._nnz() * N, b._nnz() * M, M * N)
                    got = self.sparse_result(name, fmt, (M, N), dt, cap,
                                             *arrays(a, fmt), *arrays(b, fmt))
                    self.check_sparse(got, torch.sparse.mm(a, b).to_dense(),
                                      pat)

    def test_spgemm_capacity_bound(self):
        # The bound is min(nnz(A) * N, nnz(B) * M, M * N): one entry less
        # than it is refused before anything is written.
        a = random_sparse(M, K, 1.0, torch.float32, 120)
        b = random_sparse(K, N, 1.0, torch.float32, 121)
        cap = M * N - 1
        pos, idx = np.zeros(M + 1, np.int64), np.zeros(cap, np.int64)
        val, nnz = np.zeros(cap, np.float32), np.zeros(1, np.int64)
        self.assertEqual(self.lib("spgemm_csr", *arrays(a, "csr"),
                                  *arrays(b, "csr"), pos, idx, val, cap, nnz),
                         ERR_INVALID_ARG)
        self.assertIn("out_cap = %d is less than the bound %d" % (cap, M * N),
                      self.lib.last_error())

    def test_transpose_coo(self):
        for dt, name, scale in (("f32", "transpose_coo", 1),
                                ("f64", "transpose_coo_scaled", 2)):
            for d, a in self.cases(dt):
                with self.subTest(kernel=name, density=d):
                    t = a.t().coalesce()
                    got = self.sparse_result(name, "coo", (K, M), dt, a._nnz(),
                                             *arrays(a, "coo"))
                    self.check_sparse(got, scale * t.to_dense(),
                                      self.pattern(t))

    def test_smm(self):
        for name, fmt, dt in (("smm_csr", "csr", "f32"),
                              ("smm_coo", "coo", "f64")):
            for d, a in self.cases(dt):
                with self.subTest(kernel=name, density=d):
                    x = self.dense((K, N), dt, 130)
                    want = torch.smm(a, x).coalesce()
                    got = self.sparse_result(name, fmt, (M, N), dt,
                                             min(a._nnz() * N, M * N),
                                             *arrays(a, fmt), x.numpy())
                    self.check_sparse(got, want.to_dense(), self.pattern(want))

    def test_hspmm(self):
        for d, a in self.cases():
            with self.subTest(density=d):
                x = self.dense((K, N), "f32", 131)
                want = torch.hspmm(a, x).coalesce()
                cap = min(a._nnz(), M)  # rows
                rows = np.full(cap, -1, np.int64)
                vals = np.full((cap, N), np.nan, np.float32)
                nnz = np.zeros(1, np.int64)
                self.call("hspmm", *arrays(a, "coo"), x.numpy(), rows, vals,
                          cap, nnz)
                n = int(nnz[0])
                np.testing.assert_array_equal(rows[:n],
                                              want.indices()[0].numpy())
                dense = np.zeros((M, N), np.float32)
                dense[rows[:n]] = vals[:n]
                self.close(dense, want.to_dense())

    def test_sspaddmm(self):
        for d, a in self.cases():
            for dc in DENSITIES:
                with self.subTest(density=d, bias_density=dc):
                    c = random_sparse(M, N, dc, torch.float32, 132)
                    x = self.dense((K, N), "f32", 133)
                    want = torch.sspaddmm(c, a, x, beta=0.5, alpha=-2)
                    want = want.coalesce()
                    cap = min(c._nnz() + min(a._nnz() * N, M * N), M * N)
                    got = self.sparse_result("sspaddmm", "coo", (M, N), "f32",
                                             cap, *arrays(c, "coo"),
                                             *arrays(a, "coo"), x.numpy())
                    self.check_sparse(got, want.to_dense(), self.pattern(want))

    def test_softmax(self):
        # torch.sparse.softmax: over the stored values of each row (dim 1)
        # or column (dim 0); the result keeps the input's pattern.
        for name, fmt, dt, dim, log in (
                ("softmax_csr", "csr", "f32", 1, False),
                ("softmax_cols_coo", "coo", "f64", 0, False),
                ("log_softmax_csc", "csc", "f32", 1, True),
                ("log_softmax_cols_csr", "csr", "f64", 0, True)):
            for d, a in self.cases(dt):
                a = a * 4  # rows with large spreads test the max shift
                with self.subTest(kernel=name, density=d):
                    f = torch.sparse.log_softmax if log else torch.sparse.softmax
                    want = f(a.coalesce(), dim).coalesce()
                    got = self.sparse_result(name, fmt, (M, K), dt, a._nnz(),
                                             *arrays(a, fmt))
                    self.check_sparse(got, want.to_dense(), self.pattern(a))
        x = self.dense((3, K), "f32", 150) * 30
        out = self.out((3, K), "f32")
        self.call("softmax_dense", 3, x.numpy(), out)
        self.close(out, torch.softmax(x, 1))

    def stored_reduce(self, a, dim, op):
        """max/min over the stored values of `a` (+/-inf where none)."""
        dense = a.to_dense()
        mask = self.pattern(a)
        fill = -np.inf if op == "max" else np.inf
        vals = torch.where(mask, dense, torch.full_like(dense, fill))
        f = torch.amax if op == "max" else torch.amin
        return f(vals) if dim is None else f(vals, dim)

    def test_max_min(self):
        for d, a in self.cases():
            # Every stored value negative: implicit zeros must not win.
            a = torch.sparse_coo_tensor(a.indices(), -a.values().abs() - 1,
                                        a.shape).coalesce()
            with self.subTest(density=d):
                out = self.out((), "f32")
                self.call("max_all", *arrays(a, "csr"), out)
                self.close(out, self.stored_reduce(a, None, "max"))
                out = self.out((M,), "f32")
                self.call("max_rows", *arrays(a, "coo"), out)
                self.close(out, self.stored_reduce(a, 1, "max"))
        for d, a in self.cases("f64"):
            a = torch.sparse_coo_tensor(a.indices(), a.values().abs() + 1,
                                        a.shape).coalesce()
            with self.subTest(density=d):
                out = self.out((K,), "f64")
                self.call("min_cols", *arrays(a, "csc"), out)
                self.close(out, self.stored_reduce(a, 0, "min"))
                # A BSR block's zeros are stored values: they take part.
                b = a.to_dense()[:, :4]
                out = self.out((), "f64")
                self.call("min_all_bsr", *arrays(b.to_sparse(), "bsr32"), out)
                blocks = b.reshape(2, 3, 2, 2).abs().sum((1, 3)) != 0
                stored = blocks.repeat_interleave(3, 0).repeat_interleave(2, 1)
                want = b[stored].min() if stored.any() else np.inf
                self.close(out, np.asarray(want, np.float64))
        x = self.dense((3, K), "f32", 151)
        out = self.out((3,), "f32")
        self.call("max_dense", 3, x.numpy(), out)
        self.close(out, x.amax(1))

    def test_narrow(self):
        # torch.narrow_copy of a sparse tensor: the stored entries inside.
        for name, fmt, dt, dim, start, length in (
                ("narrow_csr_rows", "csr", "f32", 0, 1, 4),
                ("narrow_csr_cols", "csr", "f32", 1, 2, 3),
                ("narrow_csc_rows", "csc", "f64", 0, 4, 2),
                ("narrow_coo_cols", "coo", "f32", 1, 3, 2)):
            for d, a in self.cases(dt):
                with self.subTest(kernel=name, density=d):
                    want = a.narrow_copy(dim, start, length).coalesce()
                    got = self.sparse_result(name, fmt, tuple(want.shape), dt,
                                             a._nnz(), *arrays(a, fmt))
                    self.check_sparse(got, want.to_dense(), self.pattern(want))
        for d, a in self.cases("f64"):
            out = self.out((3,), "f64")
            self.call("narrow_sum", *arrays(a, "coo"), out)
            self.close(out, a.to_dense()[2:5].sum(1))
        x = self.dense((3, K), "f32", 160)
        out = self.out((3, 2), "f32")
        self.call("narrow_dense", 3, x.numpy(), out)
        self.close(out, x[:, 1:3])

    def test_cat(self):
        for d, a in self.cases():
            for db in DENSITIES:
                with self.subTest(density=d, other=db):
                    b = random_sparse(2, K, db, torch.float32, 170)
                    want = torch.cat([a, b]).coalesce()
                    got = self.sparse_result("cat_csr_rows", "csr", (8, K),
                                             "f32", a._nnz() + b._nnz(),
                                             *arrays(a, "csr"),
                                             *arrays(b, "csr"))
                    self.check_sparse(got, want.to_dense(), self.pattern(want))
                    b = random_sparse(M, 2, db, torch.float32, 171)
                    want = torch.cat([a, b], 1).coalesce()
                    got = self.sparse_result("cat_csc_cols", "csc", (M, 7),
                                             "f32", a._nnz() + b._nnz(),
                                             *arrays(a, "csc"),
                                             *arrays(b, "csc"))
                    self.check_sparse(got, want.to_dense(), self.pattern(want))
        for d, a in self.cases("f64"):
            b = random_sparse(M, 3, 0.5, torch.float64, 172)
            c = random_sparse(M, 1, d, torch.float64, 173)
            want = torch.cat([a, b, c], 1).coalesce()
            got = self.sparse_result("cat_coo_cols", "coo", (M, 9), "f64",
                                     a._nnz() + b._nnz() + c._nnz(),
                                     *arrays(a, "coo"), *arrays(b, "coo"),
                                     *arrays(c, "coo"))
            self.check_sparse(got, want.to_dense(), self.pattern(want))
        x, y = self.dense((3, K), "f32", 174), self.dense((3, 2), "f32", 175)
        out = self.out((3, 7), "f32")
        self.call("cat_dense", 3, x.numpy(), y.numpy(), out)
        self.close(out, torch.cat([x, y], 1))

    def test_clone_zero_norm(self):
        for d, a in self.cases():
            with self.subTest(density=d):
                got = self.sparse_result("clone_coo", "coo", (M, K), "f32",
                                         a._nnz(), *arrays(a, "coo"))
                self.check_sparse(got, a.to_dense(), self.pattern(a))
                got = self.sparse_result("zero_csr", "csr", (M, K), "f32",
                                         a._nnz(), *arrays(a, "csr"))
                # zero_: the pattern stays, every value is 0.
                self.check_sparse(got, torch.zeros(M, K), self.pattern(a))
        for d, a in self.cases("f64"):
            x = self.dense((4,), "f64", 180)
            out = self.out((), "f64")
            self.call("norms", 4, *arrays(a, "csc"), x.numpy(), out)
            self.close(out, (torch.linalg.norm(a.to_dense()) +
                             2 * torch.linalg.norm(x)).numpy())

    def test_temporaries_are_freed(self):
        # SpGEMM's expanded access pattern and the transpose's unordered COO
        # and sort buffers are allocated on every call.
        a = random_sparse(M, K, 0.5, torch.float32, 140)
        b = random_sparse(K, N, 0.5, torch.float32, 141)
        cap = M * N
        calls = {
            "spgemm_csr": arrays(a, "csr") + arrays(b, "csr") + [
                np.zeros(M + 1, np.int64), np.zeros(cap, np.int64),
                np.zeros(cap, np.float32), cap, np.zeros(1, np.int64)],
            "transpose_coo": arrays(a, "coo") + [
                np.zeros((2, M * K), np.int64), np.zeros(M * K, np.float32),
                M * K, np.zeros(1, np.int64)],
        }
        for name, args in calls.items():
            with self.subTest(kernel=name):
                for _ in range(2000):  # warm up the allocator
                    self.lib(name, *args)
                before = heap_in_use()
                for _ in range(20000):
                    self.assertEqual(self.lib(name, *args), OK)
                self.assertLess(heap_in_use() - before, 1 << 20)


if __name__ == "__main__":
    unittest.main()
