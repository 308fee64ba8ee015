"""Helpers of the reliability tests (tests/reliability).

* Compiling the models of models/ with the built `sparsec`
  (SPARSEC_BUILD_DIR, default /work/main/build), once per process.
* `Lib`: the generated C ABI of one model library through ctypes with the
  exact prototypes of the generated header (so that NULL pointers, negative
  and out-of-range values reach the C code as written), plus the model's
  input layout.
* `digest`: a fingerprint of everything an instance holds that a rejected
  call must not change: every parameter's values and CSR structure, the
  step count, the learning rates, and the checkpoint bytes (which hold the
  optimizer state: momentum buffers, Adam moments, per-row flags and
  catch-up steps).
* `in_child`: runs a function in a forked child, so that a crash fails one
  case with its name instead of killing the whole suite.

Uses only the standard library, numpy and tests/e2e/sparsec_ctypes.py.
"""
import ctypes as C
import hashlib
import os
import pickle
import re
import signal
import subprocess
import sys
import tempfile
import threading

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
MODELS = os.path.join(HERE, "models")
sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))

from sparsec_ctypes import Model, SparsecError  # noqa: E402

OK, ERR_NULL, ERR_INVALID_ARG, ERR_OUT_OF_RANGE, ERR_NONFINITE = 0, 1, 2, 3, 4
ERR_IO, ERR_FORMAT, ERR_NOMEM, ERR_KERNEL, ERR_ABI = 5, 6, 7, 8, 9
STATUS_NAMES = ["SPARSEC_OK", "SPARSEC_ERR_NULL", "SPARSEC_ERR_INVALID_ARG",
                "SPARSEC_ERR_OUT_OF_RANGE", "SPARSEC_ERR_NONFINITE",
                "SPARSEC_ERR_IO", "SPARSEC_ERR_FORMAT", "SPARSEC_ERR_NOMEM",
                "SPARSEC_ERR_KERNEL", "SPARSEC_ERR_ABI"]

NP_DTYPES = {"f32": np.float32, "f64": np.float64, "i32": np.int32,
             "i64": np.int64}


def build_dir():
    return os.environ.get("SPARSEC_BUILD_DIR", os.path.join(REPO, "build"))


def sparsec_binary():
    path = os.path.join(build_dir(), "bin", "sparsec")
    if not os.access(path, os.X_OK):
        # A missing compiler is a failure, never a skip.
        raise RuntimeError(f"sparsec not found at {path}; build it or set "
                           "SPARSEC_BUILD_DIR")
    return path


def run_sparsec(args, timeout=300, **kw):
    return subprocess.run([sparsec_binary(), *args], capture_output=True,
                          text=True, timeout=timeout, **kw)


_WORK = None
_COMPILED = {}
_LOCK = threading.Lock()


def workdir():
    """A temporary directory for this process (removed at exit)."""
    global _WORK
    if _WORK is None:
        _WORK = tempfile.TemporaryDirectory(prefix="sparsec-reliability-")
    return _WORK.name


_SCRATCH = None


def scratchdir():
    """A temporary directory in memory when possible (/dev/shm): digests
    save a checkpoint, with an fsync, per call."""
    global _SCRATCH
    if _SCRATCH is None:
        shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
        _SCRATCH = tempfile.TemporaryDirectory(prefix="sparsec-rel-", dir=shm)
    return _SCRATCH.name


class Compiled:
    def __init__(self, stem, so, header, inputs, output_dims):
        self.stem = stem
        self.so = so
        self.header = header
        self.inputs = inputs            # [(name, dtype, dims w/o batch, target, bound)]
        self.output_dims = output_dims  # without the batch dimension
        with open(header) as f:
            text = f.read()
        self.name = re.search(r"typedef struct (\w+) \1;", text).group(1)
        # sparse = catchup: the header tells to call <Model>_catch_up.
        self.catchup = "_catch_up first to bring lagging" in text

    def lib(self):
        return Lib(self)

    def model(self, seed=0):
        return Model(self.so, self.name, seed)


_INPUT_RE = re.compile(
    r"^ \*   (input|target) +(\w+) : (\w+)\[batch\]((?:\[\d+\])*)"
    r"(?: ids in \[0, (\d+)\))?$", re.M)
_OUTPUT_RE = re.compile(r"^ \* Output: f32\[batch\]((?:\[\d+\])*)$", re.M)


def _dims(text):
    return tuple(int(d) for d in re.findall(r"\[(\d+)\]", text))


def describe(stem, so):
    """Compiled for an existing lib<stem>.so and its header."""
    header = so[:-3] + ".h"
    with open(header) as f:
        text = f.read()
    inputs = [(m.group(2), m.group(3), _dims(m.group(4)),
               m.group(1) == "target",
               int(m.group(5)) if m.group(5) else None)
              for m in _INPUT_RE.finditer(text)]
    output = _dims(_OUTPUT_RE.search(text).group(1))
    return Compiled(stem, so, header, inputs, output)


def compile_text(stem, text):
    """Compiles DSL text into <workdir>/text/<stem>/lib<stem>.so."""
    out = os.path.join(workdir(), "text", stem)
    os.makedirs(out, exist_ok=True)
    src = os.path.join(out, stem + ".sdl")
    with open(src, "w") as f:
        f.write(text)
    so = os.path.join(out, f"lib{stem}.so")
    proc = run_sparsec([src, "-o", so])
    if proc.returncode != 0:
        raise AssertionError(f"sparsec failed on {stem}:\n{proc.stderr}")
    return describe(stem, so)


def compile_model(stem):
    """Compiles models/<stem>.sdl once per process; returns Compiled."""
    with _LOCK:
        if stem in _COMPILED:
            return _COMPILED[stem]
        out = os.path.join(workdir(), stem)
        os.makedirs(out, exist_ok=True)
        so = os.path.join(out, f"lib{stem}.so")
        proc = run_sparsec([os.path.join(MODELS, stem + ".sdl"), "-o", so])
        if proc.returncode != 0:
            raise AssertionError(f"sparsec failed on {stem}:\n{proc.stderr}")
        _COMPILED[stem] = describe(stem, so)
        return _COMPILED[stem]


# ---------------------------------------------------------------------------
# The C ABI with exact prototypes
# ---------------------------------------------------------------------------
P = C.c_void_p
I32, I64, U64, DBL = C.c_int32, C.c_int64, C.c_uint64, C.c_double
CHARP = C.c_char_p

# Every entry point of the generated header but forward/train_step (whose
# arguments depend on the model): name -> (restype, argtypes).
ENTRY_POINTS = {
    "create": (C.c_int, [U64, P]),
    "destroy": (None, [P]),
    "catch_up": (C.c_int, [P]),
    "current_lr": (C.c_int, [P, P]),
    "set_lr": (C.c_int, [P, DBL]),
    "get_lr": (C.c_int, [P, P]),
    "step_count": (C.c_int, [P, P]),
    "num_params": (C.c_int, [P, P]),
    "param_info": (C.c_int, [P, I32, P, P, P, P, P]),
    "param_values": (C.c_int, [P, CHARP, P, P]),
    "param_csr": (C.c_int, [P, CHARP, P, P]),
    "param_grad": (C.c_int, [P, CHARP, P, P]),
    "save": (C.c_int, [P, CHARP]),
    "load": (C.c_int, [P, CHARP]),
    "last_error": (CHARP, []),
    "status_name": (CHARP, [C.c_int]),
}


class Lib:
    """One model library with typed entry points: lib.fn('set_lr')."""

    def __init__(self, compiled):
        self.c = compiled
        self.dll = C.CDLL(compiled.so)
        self.fns = {}
        for suffix, (res, args) in ENTRY_POINTS.items():
            f = getattr(self.dll, f"{compiled.name}_{suffix}")
            f.restype, f.argtypes = res, args
            self.fns[suffix] = f
        n_fwd = sum(1 for i in compiled.inputs if not i[3])
        f = getattr(self.dll, f"{compiled.name}_forward")
        f.restype, f.argtypes = C.c_int, [P, I64] + [P] * n_fwd + [P]
        self.fns["forward"] = f
        f = getattr(self.dll, f"{compiled.name}_train_step")
        f.restype, f.argtypes = C.c_int, [P, I64] + [P] * len(compiled.inputs) + [P]
        self.fns["train_step"] = f

    def fn(self, suffix):
        return self.fns[suffix]

    def error(self):
        # Messages quote user strings (names, paths) byte for byte.
        return self.fns["last_error"]().decode("utf-8", "backslashreplace")

    def create(self, seed=0):
        h = P()
        rc = self.fns["create"](seed, C.byref(h))
        if rc != OK:
            raise SparsecError(rc, self.error())
        return h

    def destroy(self, h):
        self.fns["destroy"](h)

    # -- data ----------------------------------------------------------------
    def batch(self, n, rng, targets=True):
        """{name: array} of a valid batch of `n` samples."""
        out = {}
        for name, dtype, dims, target, bound in self.c.inputs:
            if target and not targets:
                continue
            shape = (n,) + dims
            if dtype.startswith("i"):
                a = rng.integers(0, bound, size=shape)
            else:
                a = rng.standard_normal(shape)
            out[name] = np.ascontiguousarray(a.astype(NP_DTYPES[dtype]))
        return out

    def input_names(self, targets):
        return [i[0] for i in self.c.inputs if targets or not i[3]]

    def forward(self, h, batch, data, out=None):
        """(status, output) of forward; `data` maps names to arrays (None:
        a NULL pointer)."""
        if out is None:
            out = np.full((max(batch, 0),) + self.c.output_dims, np.nan,
                          np.float32)
        ptrs = [None if data[n] is None else data[n].ctypes.data
                for n in self.input_names(False)]
        rc = self.fns["forward"](h, batch, *ptrs,
                                 None if out is False else out.ctypes.data)
        return rc, out

    def train_step(self, h, batch, data, loss=True):
        lv = C.c_float(np.nan)
        ptrs = [None if data[n] is None else data[n].ctypes.data
                for n in self.input_names(True)]
        rc = self.fns["train_step"](h, batch, *ptrs,
                                    C.byref(lv) if loss else None)
        return rc, lv.value

    def params(self, h):
        """[(name, rank, dims, nnz)] of the instance."""
        n = I32()
        assert self.fns["num_params"](h, C.byref(n)) == OK, self.error()
        out = []
        for i in range(n.value):
            name, rank, nnz, sp = CHARP(), I32(), I64(), DBL()
            dims = (I64 * 4)()
            rc = self.fns["param_info"](h, i, C.byref(name), C.byref(rank),
                                        dims, C.byref(nnz), C.byref(sp))
            assert rc == OK, self.error()
            out.append((name.value.decode(), rank.value,
                        tuple(dims[:rank.value]), nnz.value))
        return out

    def values(self, h, name):
        ptr, count = C.POINTER(C.c_float)(), I64()
        rc = self.fns["param_values"](h, name.encode(), C.byref(ptr),
                                      C.byref(count))
        assert rc == OK, self.error()
        return np.ctypeslib.as_array(ptr, shape=(count.value,)).copy()

    def csr(self, h, name, rows, nnz):
        pos, crd = C.POINTER(I32)(), C.POINTER(I32)()
        rc = self.fns["param_csr"](h, name.encode(), C.byref(pos),
                                   C.byref(crd))
        if rc != OK:
            return None
        return (np.ctypeslib.as_array(pos, shape=(rows + 1,)).tobytes() +
                np.ctypeslib.as_array(crd, shape=(max(nnz, 1),))[:nnz].tobytes())

    def scalars(self, h):
        steps, lr, clr = I64(), DBL(), DBL()
        assert self.fns["step_count"](h, C.byref(steps)) == OK
        assert self.fns["get_lr"](h, C.byref(lr)) == OK
        assert self.fns["current_lr"](h, C.byref(clr)) == OK
        return steps.value, lr.value, clr.value

    def save_bytes(self, h):
        path = os.path.join(scratchdir(), f"digest-{os.getpid()}-"
                            f"{threading.get_ident()}.st")
        rc = self.fns["save"](h, path.encode())
        assert rc == OK, self.error()
        with open(path, "rb") as f:
            data = f.read()
        os.unlink(path)
        return data

    def digest(self, h, grads=False):
        """SHA-256 of the parameters, CSR structures, step, lr and the
        checkpoint bytes (optimizer state); with `grads`, of the last
        gradients too."""
        s = hashlib.sha256()
        for name, rank, dims, nnz in self.params(h):
            s.update(name.encode())
            s.update(self.values(h, name).tobytes())
            c = self.csr(h, name, dims[0], nnz) if rank == 2 else None
            if c is not None:
                s.update(c)
            if grads:
                ptr, count = C.POINTER(C.c_float)(), I64()
                if self.fns["param_grad"](h, name.encode(), C.byref(ptr),
                                          C.byref(count)) == OK and ptr:
                    s.update(np.ctypeslib.as_array(
                        ptr, shape=(count.value,)).tobytes())
        s.update(repr(self.scalars(h)).encode())
        s.update(self.save_bytes(h))
        return s.hexdigest()


# ---------------------------------------------------------------------------
# Isolation
# ---------------------------------------------------------------------------
def in_child(fn, timeout=120):
    """Runs fn() in a forked child. Returns ("ok", value), ("raised", repr),
    ("signal", name) or ("timeout", seconds)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            try:
                out = ("ok", fn())
            except BaseException as e:  # noqa: BLE001 - reported to the parent
                out = ("raised", f"{type(e).__name__}: {e}")
            data = pickle.dumps(out)
        except BaseException as e:  # noqa: BLE001
            data = pickle.dumps(("raised", f"unpicklable result: {e}"))
        with os.fdopen(w, "wb") as f:
            f.write(data)
        os._exit(0)
    os.close(w)
    chunks = []
    timer = threading.Timer(timeout, lambda: os.kill(pid, signal.SIGKILL))
    timer.start()
    try:
        with os.fdopen(r, "rb") as f:
            while True:
                b = f.read(1 << 16)
                if not b:
                    break
                chunks.append(b)
        _, status = os.waitpid(pid, 0)
    finally:
        timer.cancel()
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig == signal.SIGKILL and not chunks:
            return ("timeout", timeout)
        return ("signal", signal.Signals(sig).name)
    if not chunks:
        return ("signal", f"exit status {os.WEXITSTATUS(status)} without a result")
    return pickle.loads(b"".join(chunks))


def batches(lib, sizes, seed):
    """Deterministic batches [(size, data)] of the given sizes; in each
    batch of 2 or more samples, sample 1 repeats sample 0's ids (duplicate
    rows in embedding gradients)."""
    rng = np.random.default_rng(seed)
    out = []
    for b in sizes:
        data = lib.batch(b, rng)
        for name, dtype, dims, target, bound in lib.c.inputs:
            if bound and not target and b > 1:
                data[name].reshape(b, -1)[1] = data[name].reshape(b, -1)[0]
        out.append((b, data))
    return out
