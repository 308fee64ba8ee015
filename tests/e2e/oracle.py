"""Shared helpers of the sparsec end-to-end tests.

* Locating and running the compiler (`SPARSEC_BUILD_DIR`, default
  /work/main/build) on the models of `models/` or on DSL text.
* An independent reading of the DSL: a small parser of `.sdl` files and a
  PyTorch interpreter of the parsed model (forward, losses) in float32 or
  float64. It is the oracle the generated libraries are compared with; it
  implements the language's documented semantics (PyTorch conventions),
  never the compiler's code.
* Moving parameters between a library instance and torch (CSR weights as
  Hadamard-masked dense tensors), random batches, error measures, and a
  numpy reference of the runtime's lazy (row-wise) SGD for embeddings.

Everything here runs under /usr/bin/python3 (Debian's python3-torch).
"""
import hashlib
import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from sparsec_ctypes import Model

E2E_DIR = os.path.dirname(os.path.abspath(__file__))
MODELS_DIR = os.path.join(E2E_DIR, "models")
REPO_DIR = os.path.dirname(os.path.dirname(E2E_DIR))

# ---------------------------------------------------------------------------
# Compiler
# ---------------------------------------------------------------------------


def build_dir():
    return os.environ.get("SPARSEC_BUILD_DIR", "/work/main/build")


def sparsec_binary():
    path = os.path.join(build_dir(), "bin", "sparsec")
    if not os.access(path, os.X_OK):
        # A missing compiler is a failure, never a skip.
        raise RuntimeError(f"sparsec not found at {path}; build it or set "
                           "SPARSEC_BUILD_DIR")
    return path


def model_files():
    """Names (without .sdl) of the models in models/, sorted."""
    return sorted(f[:-4] for f in os.listdir(MODELS_DIR) if f.endswith(".sdl"))


def model_text(name):
    with open(os.path.join(MODELS_DIR, name + ".sdl")) as f:
        return f.read()


_OPT_RE = re.compile(r"optimizer\s*=\s*sgd\s*\([^)]*\)")


def with_optimizer(text, **opts):
    """The DSL text with its optimizer replaced by sgd(**opts)."""
    args = ", ".join(f"{k} = {str(v).lower() if isinstance(v, bool) else v}"
                     for k, v in opts.items())
    new, count = _OPT_RE.subn(f"optimizer = sgd({args})", text)
    if count != 1:
        raise ValueError("model text has no single 'optimizer = sgd(...)'")
    return new


@dataclass
class Compiled:
    so: str
    header: str
    spec: "Spec"

    @property
    def name(self):
        return self.spec.name

    def instance(self, seed=0):
        return Model(self.so, self.spec.name, seed)


def compile_text(text, outdir, stem="model"):
    """Compiles DSL text into outdir/lib<stem>.so (+ .h). Raises
    AssertionError with the compiler's output on failure."""
    os.makedirs(outdir, exist_ok=True)
    src = os.path.join(outdir, stem + ".sdl")
    with open(src, "w") as f:
        f.write(text)
    so = os.path.join(outdir, f"lib{stem}.so")
    proc = subprocess.run([sparsec_binary(), src, "-o", so],
                          capture_output=True, text=True)
    if proc.returncode != 0 or not os.path.exists(so):
        raise AssertionError(f"sparsec failed on {stem} (rc {proc.returncode}):"
                             f"\n{proc.stdout}{proc.stderr}")
    return Compiled(so, os.path.join(outdir, f"lib{stem}.h"), parse(text))


class CompileCache:
    """Compiles (model, optimizer) variants once per test class."""

    def __init__(self, root):
        self.root = root
        self.cache = {}

    @staticmethod
    def _key(model, opts):
        return (model, tuple(sorted(opts.items())))

    def _compile(self, key):
        model, opts = key[0], dict(key[1])
        text = model_text(model)
        if opts:
            text = with_optimizer(text, **opts)
        outdir = os.path.join(self.root, f"{model}.{abs(hash(key)):x}")
        try:
            return compile_text(text, outdir, model)
        except AssertionError as e:
            return e

    def prefetch(self, variants):
        """Compiles [(model, opts)] in parallel (one job per CPU)."""
        keys = [self._key(m, o) for m, o in variants]
        keys = [k for k in dict.fromkeys(keys) if k not in self.cache]
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            for key, got in zip(keys, pool.map(self._compile, keys)):
                self.cache[key] = got

    def get(self, model, **opts):
        key = self._key(model, opts)
        if key not in self.cache:
            self.cache[key] = self._compile(key)
        got = self.cache[key]
        if isinstance(got, AssertionError):
            raise got
        return got


# ---------------------------------------------------------------------------
# DSL parser (an independent reading of docs/language.md)
# ---------------------------------------------------------------------------

_TOKEN_RE = re.compile(r"""
    (?P<ws>[ \t\r\n]+|\#[^\n]*)
  | (?P<num>-?\d+\.\d*(?:[eE][-+]?\d+)?|-?\d+[eE][-+]?\d+|-?\.\d+|-?\d+)
  | (?P<id>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>[{}()\[\],:=+@;])
""", re.VERBOSE)


def _tokens(text):
    pos, out = 0, []
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if not m:
            raise ValueError(f"bad character at {pos}: {text[pos:pos + 10]!r}")
        pos = m.end()
        if m.lastgroup != "ws":
            out.append(m.group())
    return out


@dataclass
class Input:
    name: str
    dtype: str            # f32, i32, i64
    dims: tuple           # without the batch dimension
    is_target: bool


@dataclass
class Param:
    name: str
    kind: str             # linear, sparse_linear, embedding, tensor
    args: dict            # positional args under their documented names

    # Names and layouts of the tensors the runtime stores for this param.
    def tensors(self):
        a = self.args
        if self.kind in ("linear", "sparse_linear"):
            out = [(f"{self.name}.weight",
                    "csr" if self.kind == "sparse_linear" else "dense",
                    (a["out"], a["in"]))]
            if a.get("bias", True):
                out.append((f"{self.name}.bias", "dense", (a["out"],)))
            return out
        if self.kind == "embedding":
            return [(f"{self.name}.weight", "embedding", (a["num"], a["dim"]))]
        dims = (a["d0"],) if "d1" not in a else (a["d0"], a["d1"])
        return [(self.name, "dense", dims)]

    def nnz(self):
        a = self.args
        if self.kind != "sparse_linear":
            return None
        return int(round((1.0 - a.get("sparsity", 0.9)) * a["in"] * a["out"]))


_POSITIONAL = {"linear": ["in", "out", "bias"],
               "sparse_linear": ["in", "out", "sparsity", "bias"],
               "embedding": ["num", "dim"],
               "tensor": ["d0", "d1", "init", "scale"],
               "sgd": ["lr", "momentum", "dampening", "weight_decay",
                       "nesterov"]}


@dataclass
class Spec:
    name: str
    inputs: list = field(default_factory=list)
    params: dict = field(default_factory=dict)
    stmts: list = field(default_factory=list)   # (name, expr)
    ret: str = None
    loss: tuple = None                          # (kind, pred, target)
    optimizer: dict = field(default_factory=dict)

    def input(self, name):
        return next(i for i in self.inputs if i.name == name)

    def tensors(self):
        """[(tensor name, layout, shape)] of every parameter tensor."""
        return [t for p in self.params.values() for t in p.tensors()]

    @property
    def output(self):
        return self.ret or self.loss[1]


class _Parser:
    def __init__(self, text):
        self.toks = _tokens(text)
        self.i = 0

    def peek(self, k=0):
        return self.toks[self.i + k] if self.i + k < len(self.toks) else None

    def take(self, want=None):
        tok = self.peek()
        if tok is None or (want is not None and tok != want):
            raise ValueError(f"expected {want!r}, got {tok!r}")
        self.i += 1
        return tok

    def value(self):
        tok = self.take()
        if re.fullmatch(r"-?\d+", tok):
            return int(tok)
        try:
            return float(tok)
        except ValueError:
            pass
        return {"true": True, "false": False}.get(tok, tok)

    def arglist(self, kind):
        self.take("(")
        args, names = {}, _POSITIONAL[kind]
        while self.peek() != ")":
            if self.peek(1) == "=":
                key = self.take()
                self.take("=")
            else:
                key = names[len(args)]
            args[key] = self.value()
            if self.peek() == ",":
                self.take(",")
        self.take(")")
        return args

    def model(self):
        self.take("model")
        spec = Spec(self.take())
        self.take("{")
        while self.peek() != "}":
            kw = self.take()
            if kw == ";":
                continue
            if kw in ("input", "target"):
                name = self.take()
                self.take(":")
                dtype = self.take()
                self.take("[")
                dims = []
                while self.peek() != "]":
                    dims.append(self.value())
                    if self.peek() == ",":
                        self.take(",")
                self.take("]")
                spec.inputs.append(Input(name, dtype, tuple(dims[1:]),
                                         kw == "target"))
            elif kw == "param":
                name = self.take()
                self.take(":")
                kind = self.take()
                spec.params[name] = Param(name, kind, self.arglist(kind))
            elif kw == "forward":
                self.take("{")
                while self.peek() != "}":
                    if self.peek() == "return":
                        self.take()
                        spec.ret = self.take()
                    elif self.peek() == ";":
                        self.take()
                    else:
                        name = self.take()
                        self.take("=")
                        spec.stmts.append((name, self.expr()))
                self.take("}")
            elif kw == "loss":
                self.take("=")
                kind = self.take()
                self.take("(")
                pred = self.take()
                self.take(",")
                target = self.take()
                self.take(")")
                spec.loss = (kind, pred, target)
            elif kw == "optimizer":
                self.take("=")
                kind = self.take()
                spec.optimizer = self.arglist(kind)
            else:
                raise ValueError(f"unexpected {kw!r}")
        self.take("}")
        return spec

    # expr := term ('+' term)* ; term := primary ('@' primary)*
    def expr(self):
        e = self.term()
        while self.peek() == "+":
            self.take()
            e = ("add", e, self.term())
        return e

    def term(self):
        e = self.primary()
        while self.peek() == "@":
            self.take()
            e = ("matmul", e, self.primary())
        return e

    def primary(self):
        if self.peek() == "(":
            self.take()
            e = self.expr()
            self.take(")")
            return e
        name = self.take()
        if self.peek() != "(":
            return ("id", name)
        self.take("(")
        args = []
        while self.peek() != ")":
            args.append(self.expr())
            if self.peek() == ",":
                self.take(",")
        self.take(")")
        return ("call", name, args)


def parse(text):
    return _Parser(text).model()


# ---------------------------------------------------------------------------
# Shapes and random batches
# ---------------------------------------------------------------------------


def value_shapes(spec):
    """Per-sample shape (no batch dim) of every input and forward value."""
    shapes = {i.name: i.dims for i in spec.inputs}

    def shape(e):
        if e[0] == "id":
            return shapes[e[1]]
        if e[0] == "add":
            return shape(e[1])
        if e[0] == "matmul":
            return (spec.params[e[2][1]].args["d1"],)
        callee, args = e[1], e[2]
        if callee in ("relu", "add"):
            return shape(args[0])
        if callee == "matmul":
            return shape(("matmul", args[0], args[1]))
        if callee == "concat":
            s = [shape(a) for a in args]
            return s[0][:-1] + (sum(x[-1] for x in s),)
        p = spec.params[callee]
        if p.kind == "embedding":
            return shape(args[0]) + (p.args["dim"],)
        return (p.args["out"],)

    for name, e in spec.stmts:
        shapes[name] = shape(e)
    return shapes


def id_bounds(spec):
    """{integer input: exclusive bound}: embedding tables and class labels."""
    bounds = {}

    def walk(e):
        if e[0] == "call":
            p = spec.params.get(e[1])
            if p is not None and p.kind == "embedding" and e[2][0][0] == "id":
                name = e[2][0][1]
                bounds[name] = min(bounds.get(name, 1 << 62), p.args["num"])
            for a in e[2]:
                walk(a)
        elif e[0] in ("add", "matmul"):
            walk(e[1])
            walk(e[2])

    for _, e in spec.stmts:
        walk(e)
    kind, pred, target = spec.loss
    if kind == "cross_entropy":
        bounds[target] = value_shapes(spec)[pred][-1]
    return bounds


NP_DTYPES = {"f32": np.float32, "f64": np.float64, "i32": np.int32, "i64": np.int64}


def random_batch(spec, batch, rng):
    """{input name: array} for every input and target (declaration order)."""
    bounds = id_bounds(spec)
    kind = spec.loss[0]
    out = {}
    for i in spec.inputs:
        shape = (batch,) + i.dims
        if i.dtype.startswith("i"):
            out[i.name] = rng.integers(0, bounds[i.name], shape).astype(
                NP_DTYPES[i.dtype])
        elif i.is_target and kind == "bce_with_logits":
            out[i.name] = rng.random(shape).astype(np.float32)
        else:
            out[i.name] = rng.standard_normal(shape).astype(np.float32)
    return out


def lib_inputs(spec, batch, targets=True):
    """The arrays of `batch` in the C API's order."""
    return [batch[i.name] for i in spec.inputs if targets or not i.is_target]


# ---------------------------------------------------------------------------
# The torch interpreter
# ---------------------------------------------------------------------------


def torch_forward(spec, params, inputs, emb_sparse=False):
    """Evaluates the forward block. `params`: {tensor name: torch tensor}
    (CSR weights as dense tensors), `inputs`: {name: numpy or torch}.
    Returns (env of all values, [(embedding weight name, ids, lookup
    output)] in evaluation order)."""
    dtype = next(iter(params.values())).dtype
    env, lookups = {}, []
    for i in spec.inputs:
        if i.is_target:
            continue
        v = torch.as_tensor(inputs[i.name])
        env[i.name] = v.long() if i.dtype.startswith("i") else v.to(dtype)

    def ev(e):
        if e[0] == "id":
            return env[e[1]] if e[1] in env else params[e[1]]
        if e[0] == "add":
            return ev(e[1]) + ev(e[2])
        if e[0] == "matmul":
            return ev(e[1]) @ ev(e[2])
        callee, args = e[1], [ev(a) for a in e[2]]
        if callee == "relu":
            return torch.relu(args[0])
        if callee == "add":
            return args[0] + args[1]
        if callee == "matmul":
            return args[0] @ args[1]
        if callee == "concat":
            return torch.cat(args, dim=-1)
        p = spec.params[callee]
        if p.kind == "embedding":
            w = params[f"{callee}.weight"]
            out = F.embedding(args[0], w, sparse=emb_sparse)
            if out.requires_grad:
                out.retain_grad()
            lookups.append((f"{callee}.weight", args[0], out))
            return out
        bias = params.get(f"{callee}.bias")
        return F.linear(args[0], params[f"{callee}.weight"], bias)

    for name, e in spec.stmts:
        env[name] = ev(e)
    return env, lookups


def torch_loss(spec, env, inputs):
    kind, pred, target = spec.loss
    p = env[pred]
    t = torch.as_tensor(inputs[target])
    if kind == "mse":
        return F.mse_loss(p, t.to(p.dtype))
    if kind == "cross_entropy":
        return F.cross_entropy(p, t.long())
    if kind == "bce_with_logits":
        return F.binary_cross_entropy_with_logits(p, t.to(p.dtype))
    raise ValueError(kind)


# ---------------------------------------------------------------------------
# Library <-> torch
# ---------------------------------------------------------------------------


class LibParams:
    """Parameter tensors of one library instance, with their layouts."""

    def __init__(self, model, spec):
        self.model, self.spec = model, spec
        self.info = {i["name"]: i for i in model.param_info()}
        self.layout = {n: lay for n, lay, _ in spec.tensors()}
        self.pattern = {}   # CSR name -> (rows, cols) of stored entries
        for name, lay in self.layout.items():
            if lay == "csr":
                info = self.info[name]
                pos, crd = model.csr(name, info["shape"][0], info["nnz"])
                rows = np.repeat(np.arange(info["shape"][0]), np.diff(pos))
                self.pattern[name] = (rows, crd.astype(np.int64))

    def names(self):
        return list(self.layout)

    def dense(self, name):
        """The parameter as a dense float32 array (CSR scattered)."""
        info = self.info[name]
        vals = self.model.values(name)
        if name not in self.pattern:
            return vals.reshape(info["shape"]).copy()
        out = np.zeros(info["shape"], np.float32)
        out[self.pattern[name]] = vals
        return out

    def mask(self, name):
        m = np.zeros(self.info[name]["shape"], np.float32)
        m[self.pattern[name]] = 1
        return m

    def torch_params(self, dtype=torch.float32, requires_grad=True):
        return {n: torch.tensor(self.dense(n), dtype=dtype,
                                requires_grad=requires_grad)
                for n in self.names()}

    def at_pattern(self, name, dense):
        """Values of a dense [rows, cols] array at the CSR pattern."""
        return np.asarray(dense)[self.pattern[name]]

    def digest(self):
        """Hash of every parameter byte, the CSR structures, step and lr."""
        h = hashlib.sha256()
        for name in self.names():
            h.update(self.model.values(name).tobytes())
            if name in self.pattern:
                info = self.info[name]
                for a in self.model.csr(name, info["shape"][0], info["nnz"]):
                    h.update(a.tobytes())
        h.update(repr((self.model.step_count(), self.model.get_lr())).encode())
        return h.hexdigest()


def coalesce_rows(ids, rows, num):
    """Sums per-id gradient rows into a dense [num, dim] table (float64)."""
    ids = np.asarray(ids).reshape(-1)
    rows = np.asarray(rows, np.float64).reshape(len(ids), -1)
    out = np.zeros((num, rows.shape[1]), np.float64)
    np.add.at(out, ids, rows)
    return out


# ---------------------------------------------------------------------------
# Error measures
# ---------------------------------------------------------------------------


def rel_err(got, want):
    """max|got - want| / max(1e-6, max|want|)."""
    got = np.asarray(got, np.float64)
    want = np.asarray(want, np.float64)
    if got.shape != want.shape:
        raise AssertionError(f"shape {got.shape} != expected {want.shape}")
    if want.size == 0:
        return 0.0
    if not np.all(np.isfinite(got)):
        return float("inf")
    return float(np.max(np.abs(got - want)) / max(1e-6, np.max(np.abs(want))))


def check_close(testcase, got, want, what, tol=1e-5):
    err = rel_err(got, want)
    if not err <= tol:
        g = np.asarray(got, np.float64).reshape(-1)
        w = np.asarray(want, np.float64).reshape(-1)
        k = int(np.argmax(np.abs(g - w))) if g.size else 0
        testcase.fail(f"{what}: relative error {err:.3g} > {tol:g} (worst at "
                      f"flat index {k}: got {g[k]!r}, expected {w[k]!r}; "
                      f"max|expected| = {np.max(np.abs(w)):.4g})")
    return err


# ---------------------------------------------------------------------------
# Lazy SGD reference for embedding tables
# ---------------------------------------------------------------------------


class LazyRowSGD:
    """numpy float32 reference of the runtime's lazy embedding update.

    torch.optim.SGD has no lazy mode (it rejects sparse gradients with
    weight decay, and its momentum would touch every row), so the runtime's
    documented rule is written out here: only rows whose id occurs in the
    batch change; their gradient is the coalesced (duplicate-summed) row
    gradient; each row keeps its own momentum buffer, initialised by the
    first step that touches the row; then torch.optim.SGD's formula:
        g = grad + wd * p
        buf = g (first time) | momentum * buf + (1 - dampening) * g
        g = g + momentum * buf (nesterov) | buf
        p = p - lr * g
    With momentum = weight_decay = 0 this is plain (dense) SGD.
    """

    def __init__(self, table, lr, momentum=0.0, dampening=0.0,
                 weight_decay=0.0, nesterov=False):
        self.p = np.array(table, np.float32)
        self.buf = np.zeros_like(self.p)
        self.has_buf = np.zeros(self.p.shape[0], bool)
        self.lr, self.momentum = np.float32(lr), np.float32(momentum)
        self.damp = np.float32(1.0 - dampening)
        self.wd, self.nesterov = np.float32(weight_decay), nesterov

    def step(self, ids, dense_grad):
        for r in np.unique(np.asarray(ids).reshape(-1)):
            g = np.asarray(dense_grad[r], np.float32)
            if self.wd != 0:
                g = g + self.wd * self.p[r]
            if self.momentum != 0:
                if self.has_buf[r]:
                    self.buf[r] = self.momentum * self.buf[r] + self.damp * g
                else:
                    self.buf[r] = g
                    self.has_buf[r] = True
                g = g + self.momentum * self.buf[r] if self.nesterov \
                    else self.buf[r]
            self.p[r] = self.p[r] - self.lr * g


# ---------------------------------------------------------------------------
# Crash isolation
# ---------------------------------------------------------------------------


def in_child(fn):
    """Runs fn() in a forked child, so that a crash of the library (e.g. an
    unchecked index) fails one check instead of killing the test run.
    Returns ("ok", fn's picklable result), ("raised", repr of the
    exception) or ("crashed", description of how the child died)."""
    import pickle
    import signal
    import sys
    rfd, wfd = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # child
        os.close(rfd)
        try:
            try:
                out = ("ok", fn())
            except BaseException as e:  # report everything, even exit()
                out = ("raised", f"{type(e).__name__}: {e}")
            with os.fdopen(wfd, "wb") as f:
                pickle.dump(out, f)
        finally:
            os._exit(0)
    os.close(wfd)
    with os.fdopen(rfd, "rb") as f:
        data = f.read()
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        return ("crashed", f"killed by signal {sig} "
                           f"({signal.Signals(sig).name})")
    if not data:
        return ("crashed", f"exited with status {os.WEXITSTATUS(status)} "
                           "without a result")
    return pickle.loads(data)
