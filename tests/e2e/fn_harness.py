"""Shared harness of the `fn` kernel tests (test_fn_kernels, test_fn_algebra).

Compiles a file of tests/e2e/fn/ into a library, calls its exported C
functions through ctypes with the arrays of torch sparse tensors, and
compares results (values and stored patterns) with torch.
"""
import ctypes
import os
import subprocess
import tempfile

import numpy as np
import torch

import oracle

FN_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fn")
M, K = 6, 5
DENSITIES = (0.0, 0.35, 1.0)
OK, ERR_NULL, ERR_INVALID_ARG, ERR_OUT_OF_RANGE, ERR_FORMAT = 0, 1, 2, 3, 6
DTYPES = {"f32": (torch.float32, np.float32), "f64": (torch.float64, np.float64)}


def random_sparse(rows, cols, density, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    vals = torch.randn(rows, cols, generator=g, dtype=dtype)
    mask = torch.rand(rows, cols, generator=g) < density
    return (vals * mask).to_sparse().coalesce()


def arrays(a, fmt):
    """The C arrays of sparse torch tensor `a` in format `fmt`."""
    if fmt == "csr":
        c = a.to_sparse_csr()
        return [c.crow_indices().numpy().astype(np.int64),
                c.col_indices().numpy().astype(np.int64),
                c.values().numpy().copy(), c.values().numel()]
    if fmt == "csc":
        c = a.to_sparse_csc()
        return [c.ccol_indices().numpy().astype(np.int64),
                c.row_indices().numpy().astype(np.int64),
                c.values().numpy().copy(), c.values().numel()]
    if fmt.startswith("bsr"):  # "bsr32": 3x2 blocks
        b = a.to_dense().to_sparse_bsr((int(fmt[3]), int(fmt[4])))
        return [b.crow_indices().numpy().astype(np.int64),
                b.col_indices().numpy().astype(np.int64),
                np.ascontiguousarray(b.values().numpy()), b._nnz()]
    if fmt == "coo1":  # hybrid: sparse rows with dense values
        h = a.to_dense().to_sparse(1).coalesce()
        return [np.ascontiguousarray(h.indices()[0].numpy().astype(np.int64)),
                np.ascontiguousarray(h.values().numpy()), h._nnz()]
    a = a.coalesce()
    return [np.ascontiguousarray(a.indices().numpy().astype(np.int64)),
            a.values().numpy().copy(), a.values().numel()]


class Lib:
    def __init__(self, path, prefix):
        self.lib = ctypes.CDLL(path)
        self.prefix = prefix
        getattr(self.lib, prefix + "_last_error").restype = ctypes.c_char_p

    def __call__(self, name, *args):
        f = getattr(self.lib, self.prefix + "_" + name)
        f.restype = ctypes.c_int
        cargs = []
        for a in args:
            if a is None:
                cargs.append(ctypes.c_void_p(None))
            elif isinstance(a, np.ndarray):
                assert a.flags["C_CONTIGUOUS"]
                cargs.append(ctypes.c_void_p(a.ctypes.data))
            else:
                cargs.append(ctypes.c_int64(int(a)))
        return f(*cargs)

    def last_error(self):
        return getattr(self.lib, self.prefix + "_last_error")().decode()


def heap_in_use():
    """Bytes of heap the process holds: the sanitizer allocator's count of
    live bytes when running under AddressSanitizer (its quarantine keeps
    freed blocks resident, so resident memory would grow without a leak),
    else resident memory."""
    live = getattr(ctypes.CDLL(None), "__sanitizer_get_current_allocated_bytes",
                   None)
    if live is not None:
        live.restype = ctypes.c_size_t
        return live()
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class FnCase:
    """Mixin for unittest.TestCase: compiles fn/<SDL_NAME>.sdl once per
    class (exports prefixed <SDL_NAME>) and provides the checks."""
    SDL_NAME = None

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        name = cls.SDL_NAME
        so = os.path.join(cls.tmp.name, "lib%s.so" % name)
        subprocess.run([oracle.sparsec_binary(),
                        os.path.join(FN_DIR, name + ".sdl"), "-o", so],
                       check=True)
        with open(os.path.join(cls.tmp.name, "lib%s.h" % name)) as f:
            cls.header = f.read()
        cls.lib = Lib(so, name)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def call(self, name, *args):
        status = self.lib(name, *args)
        self.assertEqual(status, OK, "%s: %s" % (name, self.lib.last_error()))

    def close(self, got, want, tol=None):
        want = want.numpy() if isinstance(want, torch.Tensor) else want
        tol = tol or (1e-5 if want.dtype == np.float32 else 1e-12)
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)

    def cases(self, dtype="f32"):
        tdt, _ = DTYPES[dtype]
        for i, d in enumerate(DENSITIES):
            yield d, random_sparse(M, K, d, tdt, seed=17 + i)

    def dense(self, shape, dtype, seed):
        g = torch.Generator().manual_seed(seed)
        return torch.randn(*shape, generator=g, dtype=DTYPES[dtype][0])

    def out(self, shape, dtype):
        return np.full(shape, np.nan, dtype=DTYPES[dtype][1])

    def sparse_result(self, name, fmt, shape, dtype, cap, *args):
        """Calls kernel `name` with a sparse result; returns it as torch."""
        npdt = DTYPES[dtype][1]
        idx = np.full((2, cap) if fmt == "coo" else (cap,), -1, np.int64)
        val = np.full((cap,), np.nan, npdt)
        nnz = np.zeros(1, np.int64)
        if fmt == "coo":
            self.call(name, *args, idx, val, cap, nnz)
            n = int(nnz[0])
            key = idx[0, :n] * shape[1] + idx[1, :n]
            self.assertTrue(np.all(np.diff(key) > 0), "COO not coalesced")
            ind = torch.from_numpy(np.stack([idx[0, :n], idx[1, :n]]))
            # Checked coalesced above: coalesce() keeps it as it is.
            return torch.sparse_coo_tensor(ind, torch.from_numpy(val[:n]),
                                           shape).coalesce()
        outer = shape[0] if fmt == "csr" else shape[1]
        pos = np.full((outer + 1,), -1, np.int64)
        self.call(name, *args, pos, idx, val, cap, nnz)
        n = int(nnz[0])
        self.assertEqual(pos[-1], n)
        self.assertTrue(np.all(np.diff(pos) >= 0))
        make = (torch.sparse_csr_tensor if fmt == "csr"
                else torch.sparse_csc_tensor)
        return make(torch.from_numpy(pos), torch.from_numpy(idx[:n].copy()),
                    torch.from_numpy(val[:n].copy()), shape)

    def pattern(self, t):
        """Boolean dense mask of the stored entries of sparse `t`."""
        if t.layout == torch.strided:
            return t != 0
        if t.layout == torch.sparse_coo:
            ind = t.coalesce().indices()
        else:
            ind = t.to_sparse_coo().coalesce().indices()
        return torch.sparse_coo_tensor(ind, torch.ones(ind.shape[1]),
                                       t.shape).to_dense() != 0

    def check_sparse(self, got, want_dense, want_pattern):
        self.close(got.to_dense().numpy(), want_dense)
        self.assertTrue(torch.equal(self.pattern(got), want_pattern),
                        "stored pattern differs")
