"""index_select, nonzero and bmm in `fn` kernels, and their gradients.

Compiles tests/e2e/fn/index.sdl and compares with torch on random inputs of
0 %, ~35 % and 100 % density (nnz = 0 included):
* index_select of CSR, CSC, COO and dense matrices along rows and columns,
  with repeated and unordered indices: values and stored patterns vs
  torch.index_select; indices outside the dimension are refused (status 3)
  before anything is written, checked against every dimension an index
  vector selects from;
* nonzero of every format vs torch.nonzero of the dense matrix (row-major
  order; explicitly stored zeros are not nonzero, NaN is); the capacity
  bound;
* bmm of a rank-3 COO tensor (PyTorch's sparse bmm operand) and of dense
  tensors vs torch.bmm; uncoalesced and out-of-range COO input refused;
* gradients (`grad fn`): bmm vs torch.autograd (the sparse factor's
  gradient on its pattern), index_select vs torch.autograd of the dense
  operation (PyTorch has no backward of sparse index_select), and central
  differences in f64.

Run: /usr/bin/python3 -m unittest -v test_fn_index  (from tests/e2e)
"""
import unittest

import numpy as np
import torch

from fn_harness import (DENSITIES, DTYPES, ERR_FORMAT, ERR_INVALID_ARG,
                        ERR_OUT_OF_RANGE, K, M, FnCase, arrays, random_sparse)

ROWS = np.array([4, 0, 4, 2], np.int64)  # repeated and unordered, < M
COLS = np.array([3, 0, 3, 1], np.int64)  # < K
B, N = 3, 4


def random_sparse3(density, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    vals = torch.randn(B, M, K, generator=g, dtype=dtype)
    mask = torch.rand(B, M, K, generator=g) < density
    return (vals * mask).to_sparse().coalesce()


def coo3(s):
    return [np.ascontiguousarray(s.indices().numpy().astype(np.int64)),
            s.values().numpy().copy(), s._nnz()]


class FnIndexTest(FnCase, unittest.TestCase):
    SDL_NAME = "index"

    def test_index_select_sparse(self):
        for fmt, dt in (("csr", "f32"), ("csc", "f64"), ("coo", "f32")):
            for dim, idx in ((0, ROWS), (1, COLS)):
                name = "sel_%s_%s" % ("rows" if dim == 0 else "cols", fmt)
                shape = (4, K) if dim == 0 else (M, 4)
                for d, a in self.cases(dt):
                    with self.subTest(kernel=name, density=d):
                        ti = torch.from_numpy(idx)
                        want = torch.index_select(a.to_dense(), dim, ti)
                        pat = torch.index_select(self.pattern(a), dim, ti)
                        other = shape[1 - dim]
                        cap = min(4 * min(other, a._nnz()), 4 * other)
                        got = self.sparse_result(name, fmt, shape, dt, cap,
                                                 *arrays(a, fmt), idx)
                        self.check_sparse(got, want, pat)

    def test_index_select_twice(self):
        # One index vector selecting rows, then columns.
        for d, a in self.cases():
            with self.subTest(density=d):
                ti = torch.from_numpy(ROWS)
                dense = a.to_dense()
                want = dense[ti][:, ti]
                pat = self.pattern(a)[ti][:, ti]
                got = self.sparse_result("sel_both", "csr", (4, 4), "f32", 16,
                                         *arrays(a, "csr"), ROWS)
                self.check_sparse(got, want, pat)
        # 4 is a row of A but not a column of its rows: refused.
        a = random_sparse(M, K, 0.5, torch.float32, 3)
        out = [np.zeros(5, np.int64), np.zeros(16, np.int64),
               np.zeros(16, np.float32), 16, np.zeros(1, np.int64)]
        bad = np.array([0, 5, 1, 2], np.int64)
        self.assertEqual(self.lib("sel_both", *arrays(a, "csr"), bad, *out),
                         ERR_OUT_OF_RANGE)
        self.assertIn("idx[1] = 5 is outside [0, 5)", self.lib.last_error())

    def test_index_select_dense(self):
        idx = np.array([5, 1, 1, 0, 3, 5, 2], np.int64)
        a = self.dense((M, K), "f32", 7)
        out = self.out((7, K), "f32")
        self.call("sel_rows_dense", M, 7, a.numpy(), idx, out)
        self.close(out, torch.index_select(a, 0, torch.from_numpy(idx)))
        b = self.dense((M, 9), "f64", 8)
        out = self.out((M, 7), "f64")
        self.call("sel_cols_dense", 9, 7, b.numpy(), idx, out)
        self.close(out, torch.index_select(b, 1, torch.from_numpy(idx)))

    def test_index_out_of_range(self):
        a = random_sparse(M, K, 0.5, torch.float32, 4)
        for bad, at in ((np.array([0, 1, 6, 2], np.int64), "idx[2] = 6"),
                        (np.array([-1, 1, 2, 3], np.int64), "idx[0] = -1")):
            with self.subTest(idx=bad.tolist()):
                pos = np.full(5, -7, np.int64)
                crd = np.full(20, -7, np.int64)
                val = np.full(20, 7, np.float32)
                nnz = np.zeros(1, np.int64)
                self.assertEqual(
                    self.lib("sel_rows_csr", *arrays(a, "csr"), bad, pos, crd,
                             val, 20, nnz), ERR_OUT_OF_RANGE)
                self.assertIn(at + " is outside [0, 6)", self.lib.last_error())
                self.assertTrue(np.all(pos == -7) and np.all(val == 7),
                                "written before the check")

    def nonzero(self, name, cap, *args):
        out = np.full((max(cap, 1), 2), -1, np.int64)
        n = np.zeros(1, np.int64)
        self.call(name, *args, out, cap, n)
        return out[:int(n[0])]

    def test_nonzero(self):
        for fmt, dt in (("csr", "f32"), ("csc", "f64"), ("coo", "f32")):
            for d, a in self.cases(dt):
                with self.subTest(format=fmt, density=d):
                    got = self.nonzero("nz_" + fmt, a._nnz(), *arrays(a, fmt))
                    want = torch.nonzero(a.to_dense()).numpy()
                    np.testing.assert_array_equal(got, want)
        a = self.dense((M, 7), "f32", 9)
        a[a.abs() < 0.7] = 0
        got = self.nonzero("nz_dense", M * 7, M, 7, a.numpy())
        np.testing.assert_array_equal(got, torch.nonzero(a).numpy())

    def test_nonzero_stored_zero_and_nan(self):
        # Stored entries (0, 1) = 0, (2, 3) = NaN, (5, 0) = 2.
        pos = np.array([0, 1, 1, 2, 2, 2, 3], np.int64)
        crd = np.array([1, 3, 0], np.int64)
        val = np.array([0.0, np.nan, 2.0], np.float32)
        got = self.nonzero("nz_csr", 3, pos, crd, val, 3)
        np.testing.assert_array_equal(got, [[2, 3], [5, 0]])
        # A - A: every stored difference is 0.
        a = random_sparse(M, K, 0.5, torch.float32, 5)
        got = self.nonzero("nz_expr", 2 * a._nnz(), *arrays(a, "csr"),
                           *arrays(a, "csr"))
        self.assertEqual(len(got), 0)

    def test_nonzero_capacity(self):
        a = random_sparse(M, K, 1.0, torch.float32, 6)
        out, n = np.zeros((M * K, 2), np.int64), np.zeros(1, np.int64)
        self.assertEqual(self.lib("nz_csr", *arrays(a, "csr"), out,
                                  M * K - 1, n), ERR_INVALID_ARG)
        self.assertIn("less than the bound %d" % (M * K), self.lib.last_error())

    def test_bmm(self):
        for i, d in enumerate(DENSITIES):
            for dt, name in (("f32", "bmm_coo"), ("f64", "bmm_coo64")):
                with self.subTest(kernel=name, density=d):
                    s = random_sparse3(d, DTYPES[dt][0], 30 + i)
                    cols = N if dt == "f32" else 7
                    x = self.dense((B, K, cols), dt, 40 + i)
                    out = self.out((B, M, cols), dt)
                    syms = [] if dt == "f32" else [cols]
                    self.call(name, *syms, *coo3(s), x.numpy(), out)
                    self.close(out, torch.bmm(s, x))
        s, x = self.dense((B, M, K), "f32", 50), self.dense((B, K, N), "f32", 51)
        out = self.out((B, M, N), "f32")
        self.call("bmm_dense", s.numpy(), x.numpy(), out)
        self.close(out, torch.bmm(s, x))

    def test_bmm_bad_coo(self):
        s = random_sparse3(0.5, torch.float32, 52)
        x = self.dense((B, K, N), "f32", 53).numpy()
        out = self.out((B, M, N), "f32")
        ind, val, nnz = coo3(s)
        swapped = ind.copy()
        swapped[:, [0, 1]] = swapped[:, [1, 0]]
        self.assertEqual(self.lib("bmm_coo", swapped, val, nnz, x, out),
                         ERR_FORMAT)
        outside = ind.copy()
        outside[0, -1] = B
        self.assertEqual(self.lib("bmm_coo", outside, val, nnz, x, out),
                         ERR_OUT_OF_RANGE)
        self.assertIn("is outside 3x6x5", self.lib.last_error())
        self.assertTrue(np.all(np.isnan(out)), "written before the check")

    def coo3_result(self, name, cap, *args):
        ind = np.full((3, cap), -1, np.int64)
        val = np.full(cap, np.nan)
        n = np.zeros(1, np.int64)
        self.call(name, *args, ind, val, cap, n)
        k = int(n[0])
        return torch.sparse_coo_tensor(torch.from_numpy(ind[:, :k].copy()),
                                       torch.from_numpy(val[:k].copy()),
                                       (B, M, K))

    def test_bmm_gradients(self):
        for i, d in enumerate(DENSITIES):
            with self.subTest(density=d):
                s = random_sparse3(d, torch.float64, 60 + i)
                x = self.dense((B, K, N), "f64", 70 + i)
                g = self.dense((B, M, N), "f64", 80 + i)
                sd = s.to_dense().requires_grad_(True)
                xd = x.clone().requires_grad_(True)
                torch.bmm(sd, xd).backward(g)
                # PyTorch's own sparse bmm gives the dense operand's gradient.
                xs = x.clone().requires_grad_(True)
                torch.bmm(s, xs).backward(g)
                self.close(xs.grad.numpy(), xd.grad)
                out = self.out((B, K, N), "f64")
                self.call("bmm_g_grad_D", *coo3(s), x.numpy(), g.numpy(), out)
                self.close(out, xd.grad)
                got = self.coo3_result("bmm_g_grad_S", max(s._nnz(), 1),
                                       *coo3(s), x.numpy(), g.numpy())
                mask = s.to_dense() != 0
                self.close(got.to_dense().numpy(), sd.grad * mask)
                self.assertTrue(torch.equal(got.coalesce().indices(),
                                            s.indices()), "pattern differs")

    def test_index_select_gradients(self):
        ti = torch.from_numpy(ROWS)
        tc = torch.from_numpy(COLS)
        for d, a in self.cases("f64"):
            with self.subTest(density=d):
                mask = self.pattern(a).double()
                ad = a.to_dense().requires_grad_(True)
                g = self.dense((4, K), "f64", 90)
                torch.index_select(ad, 0, ti).backward(g)
                # sel_g: A's gradient on A's pattern.
                pos, crd, val, nnz = arrays(a, "csr")
                gsp = (torch.index_select(a.to_dense(), 0, ti) != 0) | \
                    torch.index_select(mask != 0, 0, ti)
                gs = (g * gsp).to_sparse_csr()
                got = self.sparse_result(
                    "sel_g_grad_A", "csr", (M, K), "f64", max(nnz, 1),
                    pos, crd, val, nnz, ROWS,
                    gs.crow_indices().numpy().astype(np.int64),
                    gs.col_indices().numpy().astype(np.int64),
                    gs.values().numpy().copy(), gs.values().numel())
                self.close(got.to_dense().numpy(), ad.grad * mask)
                # tanh(index_select(dense, 1)): torch.autograd directly.
                x = self.dense((M, K), "f64", 91).requires_grad_(True)
                gx = self.dense((M, 4), "f64", 92)
                torch.tanh(torch.index_select(x, 1, tc)).backward(gx)
                out = self.out((M, K), "f64")
                self.call("sel_g_dense_grad_A", x.detach().numpy(), COLS,
                          gx.numpy(), out)
                self.close(out, x.grad)

    def test_index_select_finite_differences(self):
        # f(A) = sum(exp(index_select(A, 1, COLS))) of a COO A: the
        # gradient at each stored value vs central differences.
        a = random_sparse(M, K, 0.5, torch.float64, 93)
        ind, val, nnz = arrays(a, "coo")
        scalar = np.zeros(1)

        def f(v):
            self.call("sel_g_coo", ind, v, nnz, COLS, scalar)
            return scalar[0]

        got = self.sparse_result("sel_g_coo_grad_A", "coo", (M, K), "f64",
                                 nnz, ind, val, nnz, COLS, np.ones(1))
        grad = got.coalesce().values().numpy()
        h = 1e-6
        for k in range(nnz):
            up, down = val.copy(), val.copy()
            up[k] += h
            down[k] -= h
            fd = (f(up) - f(down)) / (2 * h)
            self.assertAlmostEqual(grad[k], fd, delta=1e-6 * max(1, abs(fd)))


if __name__ == "__main__":
    unittest.main()
