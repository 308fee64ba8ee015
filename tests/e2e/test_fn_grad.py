"""Gradient kernels of `grad fn` against torch.autograd and finite differences.

Compiles tests/e2e/fn/grad.sdl: for each `grad fn f(p1, ..., pn) -> R` the
library exports f and `f_grad_<p>(p1, ..., pn, grad_out)`, the
vector-Jacobian product of f's result with grad_out. Each is compared with
torch.autograd on a reference in which a sparse parameter is the COO tensor
of a leaf values vector (so its gradient lives on its stored entries, as
PyTorch's sparse gradients do; implicit zeros stay out of `softmax` through
torch.sparse.softmax), at densities 0, ~35 % and 100 %, for every
operation (products with sparse results, max/min with ties, narrow and cat
included), and a composite kernel against central differences in f64. The gradient of a sparse
parameter is a sparse result with exactly the parameter's pattern.

Run: /usr/bin/python3 -m unittest -v test_fn_grad  (from tests/e2e)
"""
import os
import subprocess
import unittest

import numpy as np
import torch

import oracle
from fn_harness import (DENSITIES, K, M, OK, FnCase, Lib, arrays,
                        random_sparse)


def leaf(a):
    """(values leaf, the sparse tensor a built on it): autograd reaches the
    stored values only."""
    vals = a.values().clone().requires_grad_(True)
    return vals, torch.sparse_coo_tensor(a.indices(), vals, a.shape)


class FnGradTest(FnCase, unittest.TestCase):
    SDL_NAME = "grad"

    def grad_of(self, kernel, param, fmt, a, dtype, *args):
        """Calls `<kernel>_grad_<param>` for a sparse parameter `a` in
        format `fmt`; returns the gradient as a sparse torch tensor."""
        return self.sparse_result("%s_grad_%s" % (kernel, param), fmt,
                                  tuple(a.shape), dtype, a._nnz(), *args)

    def check_grad(self, got, vals, a):
        """`got` (sparse) has a's pattern and the autograd gradient of the
        values leaf `vals` of `a`."""
        want = torch.sparse_coo_tensor(a.indices(), vals.grad,
                                       a.shape).to_dense()
        self.check_sparse(got, want.detach(), self.pattern(a))

    def test_spmm(self):
        for name, fmt, dt in (("spmm", "csr", "f32"),
                              ("spmm_coo", "coo", "f64")):
            for d, a in self.cases(dt):
                for n in (1, 3):
                    with self.subTest(kernel=name, density=d, N=n):
                        x = self.dense((K, n), dt, 200).requires_grad_(True)
                        g = self.dense((M, n), dt, 201)
                        vals, at = leaf(a)
                        torch.sparse.mm(at, x).backward(g)
                        args = [n, *arrays(a, fmt), x.detach().numpy(),
                                g.numpy()]
                        got = self.grad_of(name, "A", fmt, a, dt, *args)
                        self.check_grad(got, vals, a)
                        out = self.out((K, n), dt)
                        self.call(name + "_grad_x", *args, out)
                        self.close(out, x.grad)

    def test_dense_times_sparse_and_vector(self):
        for d, a in self.cases("f64"):
            with self.subTest(density=d):
                x = self.dense((2, M), "f64", 202).requires_grad_(True)
                g = self.dense((2, K), "f64", 203)
                vals, at = leaf(a)
                (x @ at.to_dense()).backward(g)
                args = [2, x.detach().numpy(), *arrays(a, "csc"), g.numpy()]
                self.check_grad(self.grad_of("dense_spmm", "A", "csc", a,
                                             "f64", *args), vals, a)
                out = self.out((2, M), "f64")
                self.call("dense_spmm_grad_x", *args, out)
                self.close(out, x.grad)
                v = self.dense((K,), "f64", 204).requires_grad_(True)
                g = self.dense((M,), "f64", 205)
                vals, at = leaf(a)
                torch.mv(at.to_dense(), v).backward(g)
                args = [*arrays(a, "csr"), v.detach().numpy(), g.numpy()]
                self.check_grad(self.grad_of("spmv", "A", "csr", a, "f64",
                                             *args), vals, a)
                out = self.out((K,), "f64")
                self.call("spmv_grad_v", *args, out)
                self.close(out, v.grad)

    def test_addmm(self):
        for d, a in self.cases("f64"):
            with self.subTest(density=d):
                b = self.dense((M, 3), "f64", 206).requires_grad_(True)
                x = self.dense((K, 3), "f64", 207).requires_grad_(True)
                g = self.dense((M, 3), "f64", 208)
                vals, at = leaf(a)
                torch.sparse.addmm(b, at, x, beta=0.5, alpha=-2).backward(g)
                args = [3, b.detach().numpy(), *arrays(a, "csr"),
                        x.detach().numpy(), g.numpy()]
                self.check_grad(self.grad_of("addmm", "A", "csr", a, "f64",
                                             *args), vals, a)
                for p, t in (("b", b), ("x", x)):
                    out = self.out(tuple(t.shape), "f64")
                    self.call("addmm_grad_" + p, *args, out)
                    self.close(out, t.grad)

    def test_elementwise_and_sums(self):
        for i, da in enumerate(DENSITIES):
            a = random_sparse(M, K, da, torch.float64, 210 + i)
            b = random_sparse(M, K, 0.5, torch.float64, 220 + i)
            with self.subTest(density=da):
                D = self.dense((M, K), "f64", 230).requires_grad_(True)
                g = self.dense((M, K), "f64", 231)
                va, at = leaf(a)
                vb, bt = leaf(b)
                (at.to_dense() * D + D - 3 * (at.to_dense() - bt.to_dense())
                 / 2).backward(g)
                args = [*arrays(a, "csr"), *arrays(b, "csr"),
                        D.detach().numpy(), g.numpy()]
                self.check_grad(self.grad_of("elementwise", "A", "csr", a,
                                             "f64", *args), va, a)
                self.check_grad(self.grad_of("elementwise", "B", "csr", b,
                                             "f64", *args), vb, b)
                out = self.out((M, K), "f64")
                self.call("elementwise_grad_D", *args, out)
                self.close(out, D.grad)
                # sum(A * B): the intersection's values.
                va, at = leaf(a)
                vb, bt = leaf(b)
                torch.sparse.sum(at * bt).backward()
                args = [*arrays(a, "coo"), *arrays(b, "coo"),
                        np.ones((), np.float64)]
                self.check_grad(self.grad_of("sparse_product", "A", "coo", a,
                                             "f64", *args), va, a)
                self.check_grad(self.grad_of("sparse_product", "B", "coo", b,
                                             "f64", *args), vb, b)
                # sum over a dimension.
                va, at = leaf(a)
                D = self.dense((M, K), "f64", 232).requires_grad_(True)
                g = self.dense((K,), "f64", 233)
                (at.to_dense().sum(0) + (D * D).sum(0)).backward(g)
                args = [*arrays(a, "csr"), D.detach().numpy(), g.numpy()]
                self.check_grad(self.grad_of("sums", "A", "csr", a, "f64",
                                             *args), va, a)
                out = self.out((M, K), "f64")
                self.call("sums_grad_D", *args, out)
                self.close(out, D.grad)

    def test_transposes(self):
        for d, a in self.cases("f64"):
            c = random_sparse(M, K, 0.4, torch.float64, 240)
            with self.subTest(density=d):
                x = self.dense((M, 3), "f64", 241).requires_grad_(True)
                g = self.dense((K, 3), "f64", 242)
                va, at = leaf(a)
                vc, ct = leaf(c)
                (at.to_dense().t() @ x + ct.to_dense().t() @ x).backward(g)
                args = [*arrays(a, "coo"), *arrays(c, "csr"),
                        x.detach().numpy(), g.numpy()]
                self.check_grad(self.grad_of("transposes", "A", "coo", a,
                                             "f64", *args), va, a)
                self.check_grad(self.grad_of("transposes", "C", "csr", c,
                                             "f64", *args), vc, c)
                out = self.out((M, 3), "f64")
                self.call("transposes_grad_x", *args, out)
                self.close(out, x.grad)
                # BSR: the gradient of the stored blocks (zeros included).
                blk = a.to_dense()[:, :4]
                g = self.dense((4, M), "f64", 243)
                bsr = arrays(blk.to_sparse(), "bsr32")
                nblocks = bsr[-1]
                pos = np.zeros(M // 3 + 1, np.int64)
                crd = np.zeros(nblocks, np.int64)
                val = np.full((nblocks, 3, 2), np.nan)
                nnz = np.zeros(1, np.int64)
                self.call("dense_transpose_grad_A", *bsr, g.numpy(), pos, crd,
                          val, nblocks, nnz)
                np.testing.assert_array_equal(crd[:nnz[0]], bsr[1])
                got = torch.sparse_bsr_tensor(
                    torch.from_numpy(pos), torch.from_numpy(crd[:nnz[0]]),
                    torch.from_numpy(val[:nnz[0]]), (M, 4)).to_dense()
                stored = torch.sparse_bsr_tensor(
                    torch.from_numpy(bsr[0]), torch.from_numpy(bsr[1]),
                    torch.ones(nblocks, 3, 2, dtype=torch.float64),
                    (M, 4)).to_dense() != 0
                self.close(got, torch.where(stored, g.t(), 0))

    def test_softmax(self):
        for name, fmt, dim, log in (("softmax_rows", "csr", 1, False),
                                    ("log_softmax_cols", "coo", 0, True)):
            for d, a in self.cases("f64"):
                with self.subTest(kernel=name, density=d):
                    va, at = leaf(a * 3)
                    f = torch.sparse.log_softmax if log else \
                        torch.sparse.softmax
                    y = f(at, dim)
                    g = random_sparse(M, K, 1.0, torch.float64, 250)
                    g = torch.sparse_coo_tensor(
                        a.indices(), g.to_dense()[tuple(a.indices())],
                        a.shape).coalesce()
                    y.backward(g)
                    args = [*arrays(a * 3, fmt), *arrays(g, fmt)]
                    self.check_grad(self.grad_of(name, "A", fmt, a, "f64",
                                                 *args), va, a)

    def test_cat(self):
        for d, a in self.cases("f64"):
            b = random_sparse(2, K, 0.5, torch.float64, 280)
            with self.subTest(density=d):
                x = self.dense((K,), "f64", 281).requires_grad_(True)
                g = self.dense((8,), "f64", 282)
                va, at = leaf(a)
                vb, bt = leaf(b)
                (torch.cat([at.to_dense(), 2 * bt.to_dense()]) @ x).backward(g)
                args = [*arrays(a, "csr"), *arrays(b, "csr"),
                        x.detach().numpy(), g.numpy()]
                self.check_grad(self.grad_of("cat_rows", "A", "csr", a, "f64",
                                             *args), va, a)
                self.check_grad(self.grad_of("cat_rows", "B", "csr", b, "f64",
                                             *args), vb, b)
                out = self.out((K,), "f64")
                self.call("cat_rows_grad_x", *args, out)
                self.close(out, x.grad)

    def test_sparse_products(self):
        """SpGEMM and smm have sparse results: grad_out is given on their
        (structural) pattern; hspmm and sspaddmm feed a sum."""
        def on_pattern(dense, like):
            idx = like.coalesce().indices()
            return torch.sparse_coo_tensor(idx, dense[tuple(idx)],
                                           like.shape).coalesce()

        for d, a in self.cases("f64"):
            b = random_sparse(K, 4, 0.5, torch.float64, 290)
            with self.subTest(kernel="spgemm", density=d):
                va, at = leaf(a)
                vb, bt = leaf(b)
                pat = ((a.to_dense() != 0).double() @
                       (b.to_dense() != 0).double()) != 0
                g = on_pattern(self.dense((M, 4), "f64", 291),
                               pat.double().to_sparse())
                ((at.to_dense() @ bt.to_dense()) * g.to_dense()).sum() \
                    .backward()
                args = [*arrays(a, "csr"), *arrays(b, "csr"),
                        *arrays(g, "csr")]
                self.check_grad(self.grad_of("spgemm", "A", "csr", a, "f64",
                                             *args), va, a)
                self.check_grad(self.grad_of("spgemm", "B", "csr", b, "f64",
                                             *args), vb, b)
            with self.subTest(kernel="smm", density=d):
                va, at = leaf(a)
                x = self.dense((K, 4), "f64", 292).requires_grad_(True)
                y = torch.smm(a, x.detach()).coalesce()
                g = on_pattern(self.dense((M, 4), "f64", 293), y)
                ((at.to_dense() @ x) * g.to_dense()).sum().backward()
                args = [*arrays(a, "coo"), x.detach().numpy(),
                        *arrays(g, "coo")]
                self.check_grad(self.grad_of("smm_rows", "A", "coo", a, "f64",
                                             *args), va, a)
                out = self.out((K, 4), "f64")
                self.call("smm_rows_grad_x", *args, out)
                self.close(out, x.grad)
            with self.subTest(kernel="hspmm", density=d):
                va, at = leaf(a)
                x = self.dense((K, 4), "f64", 294).requires_grad_(True)
                (at.to_dense() @ x).sum().backward()
                args = [*arrays(a, "csr"), x.detach().numpy(),
                        np.ones((), np.float64)]
                self.check_grad(self.grad_of("hspmm_sum", "A", "csr", a,
                                             "f64", *args), va, a)
                out = self.out((K, 4), "f64")
                self.call("hspmm_sum_grad_x", *args, out)
                self.close(out, x.grad)
            with self.subTest(kernel="sspaddmm", density=d):
                c = random_sparse(M, 4, 0.4, torch.float64, 295)
                vc, ct = leaf(c)
                va, at = leaf(a)
                x = self.dense((K, 4), "f64", 296).requires_grad_(True)
                # exp over the stored entries of the union only.
                y = 0.5 * ct.to_dense() - 2 * (at.to_dense() @ x)
                stored = self.pattern(torch.sspaddmm(c, a, x.detach()))
                torch.where(stored, torch.exp(y / 8), 0).sum().backward()
                args = [*arrays(c, "coo"), *arrays(a, "coo"),
                        x.detach().numpy(), np.ones((), np.float64)]
                self.check_grad(self.grad_of("sspaddmm_sum", "C", "coo", c,
                                             "f64", *args), vc, c)
                self.check_grad(self.grad_of("sspaddmm_sum", "A", "coo", a,
                                             "f64", *args), va, a)
                out = self.out((K, 4), "f64")
                self.call("sspaddmm_sum_grad_x", *args, out)
                self.close(out, x.grad)

    def test_max_min_and_narrow(self):
        for d, a in self.cases("f64"):
            with self.subTest(density=d):
                # Ties: every value of a row stored twice, so that the
                # gradient is split (torch.amax shares it evenly).
                dense = a.to_dense()
                dense[:, 3] = torch.where(dense[:, 3] != 0, dense[:, 1],
                                          dense[:, 3])
                t = dense.to_sparse().coalesce()
                vt, tt = leaf(t)
                D = self.dense((M, K), "f64", 300).requires_grad_(True)
                D.data[2, 2] = D.data.min()  # a tie in min(D)
                stored = self.pattern(t)
                masked = torch.where(stored, tt.to_dense(),
                                     torch.tensor(-np.inf, dtype=torch.float64))
                rows = stored.any(1)
                (torch.where(rows, masked.amax(1), 0).sum() + 2 * D.amin() +
                 (masked.amax() if stored.any() else 0)).backward()
                args = [*arrays(t, "csr"), D.detach().numpy(),
                        np.ones((), np.float64)]
                if t._nnz():
                    self.check_grad(self.grad_of("extrema", "A", "csr", t,
                                                 "f64", *args), vt, t)
                out = self.out((M, K), "f64")
                self.call("extrema_grad_D", *args, out)
                self.close(out, D.grad)
                # narrow: the gradient sits at the narrowed entries only.
                b = random_sparse(M, K, 0.6, torch.float64, 301)
                va, at = leaf(a)
                vb, bt = leaf(b)
                x = self.dense((3,), "f64", 302).requires_grad_(True)
                g = self.dense((M,), "f64", 303)
                (at.to_dense()[:, 1:4] @ x + bt.to_dense()[:, 2:5] @ x) \
                    .backward(g)
                args = [*arrays(a, "coo"), *arrays(b, "csc"),
                        x.detach().numpy(), g.numpy()]
                self.check_grad(self.grad_of("narrowed", "A", "coo", a, "f64",
                                             *args), va, a)
                self.check_grad(self.grad_of("narrowed", "B", "csc", b, "f64",
                                             *args), vb, b)
                out = self.out((3,), "f64")
                self.call("narrowed_grad_x", *args, out)
                self.close(out, x.grad)

    def test_norm(self):
        for d, a in self.cases("f64"):
            if not a._nnz():
                continue  # the gradient of norm at 0 is NaN here (see docs)
            with self.subTest(density=d):
                va, at = leaf(a)
                x = self.dense((K,), "f64", 310).requires_grad_(True)
                (torch.linalg.norm(at.to_dense()) * torch.linalg.norm(x)) \
                    .backward()
                args = [*arrays(a, "csr"), x.detach().numpy(),
                        np.ones((), np.float64)]
                self.check_grad(self.grad_of("norms", "A", "csr", a, "f64",
                                             *args), va, a)
                out = self.out((K,), "f64")
                self.call("norms_grad_x", *args, out)
                self.close(out, x.grad)

    def test_pow_and_unused_parameter(self):
        for d, a in self.cases("f64"):
            with self.subTest(density=d):
                va, at = leaf(a)
                (va ** 3).sum().backward()  # pow(A, 0) has gradient 0
                one = np.ones((), np.float64)
                self.check_grad(self.grad_of("pow_sum", "A", "csr", a, "f64",
                                             *arrays(a, "csr"), one), va, a)
                x = self.dense((K,), "f64", 260)
                out = self.out((K,), "f64")
                self.call("unused_grad_x", *arrays(a, "csr"), x.numpy(), one,
                          out)
                self.close(out, np.zeros(K))

    def test_every_elementwise_derivative(self):
        names = ["neg", "abs", "sqrt", "rsqrt", "exp", "expm1", "log", "log1p",
                 "log2", "log10", "sin", "cos", "tan", "asin", "acos", "atan",
                 "sinh", "cosh", "tanh", "erf", "ceil", "floor", "round",
                 "trunc"]
        src = "".join("grad fn u_%s(A : f64[6, 5] @csr) -> f64 "
                      "{ return sum(%s(A)) }\n" % (n, n) for n in names)
        sdl = os.path.join(self.tmp.name, "deriv.sdl")
        with open(sdl, "w") as f:
            f.write(src)
        so = os.path.join(self.tmp.name, "libderiv.so")
        subprocess.run([oracle.sparsec_binary(), sdl, "-o", so], check=True)
        lib = Lib(so, "deriv")
        g = torch.Generator().manual_seed(261)
        mask = torch.rand(M, K, generator=g) < 0.6
        unit = torch.rand(M, K, generator=g, dtype=torch.float64) * 0.9 + 0.05
        a = (unit * mask).to_sparse().coalesce()
        a = torch.sparse_coo_tensor(a.indices(), a.values() * torch.where(
            torch.arange(a._nnz()) % 2 == 0, 1.0, -1.0).double(), a.shape)
        a = a.coalesce()
        for n in names:
            with self.subTest(function=n):
                t = a
                if n in ("sqrt", "rsqrt", "log", "log2", "log10"):
                    t = torch.sparse_coo_tensor(a.indices(), a.values().abs(),
                                                a.shape).coalesce()
                vals = t.values().clone().requires_grad_(True)
                fn = torch.neg if n == "neg" else getattr(torch, n)
                fn(vals).sum().backward()
                cap = t._nnz()
                pos, crd = np.zeros(M + 1, np.int64), np.zeros(cap, np.int64)
                val, nnz = np.full(cap, np.nan), np.zeros(1, np.int64)
                st = lib("u_%s_grad_A" % n, *arrays(t, "csr"),
                         np.ones((), np.float64), pos, crd, val, cap, nnz)
                self.assertEqual(st, OK, lib.last_error())
                self.assertEqual(nnz[0], cap)
                self.close(val, vals.grad)

    def test_composite_against_finite_differences(self):
        # objective = sum(exp(to_dense(tanh(A * B) + 2 A) @ x / 4)), f64.
        a = random_sparse(M, K, 0.5, torch.float64, 270)
        b = random_sparse(M, K, 0.5, torch.float64, 271)
        x = self.dense((K,), "f64", 272)

        def f(av, bv, xv):
            out = self.out((), "f64")
            self.call("objective", a.indices().numpy().copy(), av, a._nnz(),
                      b.indices().numpy().copy(), bv, b._nnz(), xv, out)
            return float(out)

        av, bv, xv = (a.values().numpy().copy(), b.values().numpy().copy(),
                      x.numpy().copy())
        args = [*arrays(a, "coo"), *arrays(b, "coo"), xv,
                np.ones((), np.float64)]
        got = {"A": self.grad_of("objective", "A", "coo", a, "f64", *args)
                    .coalesce().values().numpy(),
               "B": self.grad_of("objective", "B", "coo", b, "f64", *args)
                    .coalesce().values().numpy()}
        gx = self.out((K,), "f64")
        self.call("objective_grad_x", *args, gx)
        got["x"] = gx
        h = 1e-6
        for name, v in (("A", av), ("B", bv), ("x", xv)):
            fd = np.zeros_like(v)
            for k in range(v.size):
                up, dn = v.copy(), v.copy()
                up[k] += h
                dn[k] -= h
                ins = {"A": av, "B": bv, "x": xv}
                fd[k] = (f(*[up if n == name else ins[n] for n in "ABx"]) -
                         f(*[dn if n == name else ins[n] for n in "ABx"])) \
                    / (2 * h)
            with self.subTest(parameter=name):
                np.testing.assert_allclose(got[name], fd, rtol=1e-6,
                                           atol=1e-7)


if __name__ == "__main__":
    unittest.main()
