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
* Optimizers (docs/optimizers.md): the DSL's optimizer settings with their
  documented defaults, the matching torch.optim optimizers and
  lr_scheduler schedules, a torch-ops reference of row-wise Adagrad (which
  PyTorch lacks) and a numpy reference of every optimizer's lazy update of
  embedding rows.

Everything here runs under /usr/bin/python3 (Debian's python3-torch).
"""
import hashlib
import os
import re
import subprocess
import sys
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


def python_executable():
    """The interpreter for child Python processes: SPARSEC_PYTHON when set
    (.ci/sanitize.sh's wrapper, which preloads the ASan runtime), else this
    one."""
    return os.environ.get("SPARSEC_PYTHON") or sys.executable


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


_ANY_OPT_RE = re.compile(r"optimizer\s*=\s*[A-Za-z_]\w*\s*\([^)]*\)")


def with_optimizer_text(text, source):
    """The DSL text with its optimizer replaced by `source`, e.g.
    "adam(lr = 0.01, sparse = dense)"."""
    new, count = _ANY_OPT_RE.subn(lambda _: f"optimizer = {source}", text)
    if count != 1:
        raise ValueError("model text has no single 'optimizer = ...(...)'")
    return new


@dataclass
class Compiled:
    so: str
    header: str
    spec: "Spec"

    @property
    def name(self):
        return self.spec.name

    def instance(self, seed=0, device=None):
        return Model(self.so, self.spec.name, seed, device)


def compile_text(text, outdir, stem="model", flags=()):
    """Compiles DSL text into outdir/lib<stem>.so (+ .h), with extra
    sparsec `flags`. Raises AssertionError with the compiler's output on
    failure."""
    os.makedirs(outdir, exist_ok=True)
    src = os.path.join(outdir, stem + ".sdl")
    with open(src, "w") as f:
        f.write(text)
    so = os.path.join(outdir, f"lib{stem}.so")
    proc = subprocess.run([sparsec_binary(), *flags, src, "-o", so],
                          capture_output=True, text=True)
    if proc.returncode != 0 or not os.path.exists(so):
        raise AssertionError(f"sparsec failed on {stem} (rc {proc.returncode}):"
                             f"\n{proc.stdout}{proc.stderr}")
    return Compiled(so, os.path.join(outdir, f"lib{stem}.h"), parse(text))


class CompileCache:
    """Compiles (model, optimizer) variants once per test class.

    `model` names a file of models/ without .sdl (a path below models/ is
    allowed: "optim/opt_mix"). The options are sgd arguments, or
    optimizer="<DSL optimizer call>" to replace the whole optimizer;
    flags=(...) adds sparsec command-line flags (e.g. ("-O", "0"))."""

    def __init__(self, root):
        self.root = root
        self.cache = {}

    @staticmethod
    def _key(model, opts):
        return (model, tuple(sorted(opts.items())))

    def _compile(self, key):
        model, opts = key[0], dict(key[1])
        text = model_text(model)
        flags = opts.pop("flags", ())
        if "optimizer" in opts:
            text = with_optimizer_text(text, opts.pop("optimizer"))
        if opts:
            text = with_optimizer(text, **opts)
        stem = os.path.basename(model)
        outdir = os.path.join(self.root, f"{stem}.{abs(hash(key)):x}")
        try:
            return compile_text(text, outdir, stem, flags)
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
        if self.kind in ("embedding", "embedding_bag"):
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
               "masked_linear": ["in", "out", "sparsity", "bias"],
               "kwinners": ["units"],
               "kwinners2d": ["channels"],
               "sparse_quantized_linear": ["in", "out", "sparsity", "bias"],
               "masked_lstm": ["input_size", "hidden_size", "batch_first", "bias",
                               "sparsity"],
               "masked_conv2d": ["in_channels", "out_channels", "kernel_size"],
               "embedding": ["num", "dim"],
               "embedding_bag": ["num", "dim", "mode"],
               "tensor": ["d0", "d1", "init", "scale"],
               "sgd": ["lr", "momentum", "dampening", "weight_decay",
                       "nesterov"],
               "adagrad": ["lr", "lr_decay", "weight_decay",
                           "initial_accumulator_value", "eps"],
               "rowwise_adagrad": ["lr", "weight_decay",
                                   "initial_accumulator_value", "eps"],
               "rmsprop": ["lr", "alpha", "eps", "weight_decay", "momentum",
                           "centered"],
               "adam": ["lr", "beta1", "beta2", "eps", "weight_decay",
                        "amsgrad"],
               "adamw": ["lr", "beta1", "beta2", "eps", "weight_decay",
                         "amsgrad"]}


@dataclass
class Spec:
    name: str
    inputs: list = field(default_factory=list)
    params: dict = field(default_factory=dict)
    stmts: list = field(default_factory=list)   # (name, expr)
    ret: str = None
    loss: tuple = None                          # (kind, pred, target)
    optimizer: dict = field(default_factory=dict)
    optimizer_kind: str = None

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
        if tok == "[":  # a pair such as a conv's [height, width]
            items = []
            while self.peek() != "]":
                items.append(self.value())
                if self.peek() == ",":
                    self.take(",")
            self.take("]")
            return items
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
                spec.optimizer_kind = kind
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
        if p.kind == "embedding_bag":
            return (p.args["dim"],)
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
            if p is not None and p.kind in ("embedding", "embedding_bag") \
                    and e[2][0][0] == "id":
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


def embedding_options(param):
    """nn.Embedding's keyword arguments of an embedding / embedding_bag
    parameter (PyTorch's defaults where the model leaves them out)."""
    a = param.args
    max_norm = a.get("max_norm")
    return dict(padding_idx=a.get("padding_idx"),
                max_norm=None if max_norm is None else float(max_norm),
                norm_type=float(a.get("norm_type", 2.0)),
                scale_grad_by_freq=bool(a.get("scale_grad_by_freq", False)))


def bag_mode(param):
    # The DSL's default mode is `sum` (examples/recsys; PyTorch's
    # nn.EmbeddingBag defaults to `mean`): the test models spell it out.
    return param.args.get("mode", "sum")


def expanded_bag(e, ids, mode, padding_idx=None, weights=None):
    """F.embedding_bag on fixed-size bags, written with differentiable torch
    ops on the looked-up rows e = F.embedding(ids, W) [B, K, D], so that
    e.grad is the gradient of each (bag, position) row (what the library
    reports per id). PyTorch's semantics: padding ids are left out of their
    bag (sum, mean count, max), a bag of padding only is 0, `mean` divides
    by the number of non-padding ids, `max` takes each feature from the
    first position holding the maximum (ties: the first, as PyTorch's
    kernel, which replaces the maximum only on `>`)."""
    keep = (ids != padding_idx) if padding_idx is not None else \
        torch.ones(ids.shape, dtype=torch.bool)
    km = keep.unsqueeze(-1).to(e.dtype)
    if mode == "sum":
        scale = km if weights is None else km * weights.unsqueeze(-1)
        return (e * scale).sum(1)
    if mode == "mean":
        count = keep.sum(1, keepdim=True).to(e.dtype).clamp(min=1)
        return (e * km).sum(1) / count
    if mode == "max":
        with torch.no_grad():
            masked = e.masked_fill(~keep.unsqueeze(-1), float("-inf"))
            best = masked.max(1, keepdim=True).values
            first = (masked == best).to(torch.float32).argmax(1, keepdim=True)
        nonempty = keep.any(1, keepdim=True).to(e.dtype)
        return e.gather(1, first).squeeze(1) * nonempty
    raise ValueError(f"unknown bag mode {mode!r}")


def torch_forward(spec, params, inputs, emb_sparse=False, bags="expanded"):
    """Evaluates the forward block. `params`: {tensor name: torch tensor}
    (CSR weights as dense tensors), `inputs`: {name: numpy or torch}.
    Returns (env of all values, [(embedding weight name, ids, lookup
    output)] in evaluation order). For an embedding_bag the lookup output
    is the [B, K, D] tensor of looked-up rows (see expanded_bag).
    Embedding options follow F.embedding: a max_norm renorms the rows the
    ids reference in `params` in place (without gradient), as PyTorch does.
    bags="functional" evaluates bags with F.embedding_bag itself instead
    (PyTorch's kernels; its lookup entries have no rows: None). Note that
    torch 1.13's CPU embedding_bag backward divides by the wrong count with
    scale_grad_by_freq (pytorch/pytorch#190063); the expanded form uses
    F.embedding's frequency scaling, the documented semantics.
    """
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
        if p.kind == "embedding_bag" and bags == "functional":
            w = params[f"{callee}.weight"]
            weights = args[1] if len(args) > 1 else None
            lookups.append((f"{callee}.weight", args[0], None))
            return F.embedding_bag(args[0], w, mode=bag_mode(p),
                                   per_sample_weights=weights,
                                   sparse=emb_sparse and bag_mode(p) != "max",
                                   **embedding_options(p))
        if p.kind in ("embedding", "embedding_bag"):
            w = params[f"{callee}.weight"]
            opts = embedding_options(p)
            out = F.embedding(args[0], w, sparse=emb_sparse, **opts)
            if out.requires_grad:
                out.retain_grad()
            lookups.append((f"{callee}.weight", args[0], out))
            if p.kind == "embedding":
                return out
            return expanded_bag(out, args[0], bag_mode(p),
                                opts["padding_idx"],
                                args[1] if len(args) > 1 else None)
        bias = params.get(f"{callee}.bias")
        return F.linear(args[0], params[f"{callee}.weight"], bias)

    for name, e in spec.stmts:
        env[name] = ev(e)
    return env, lookups


def expected_id_rows(spec, name, lookups):
    """(ids, the gradient rows the library reports for embedding tensor
    `name`: one row per id in batch order) from a backward pass through
    torch_forward's lookups: the lookup output's gradient, zero for
    padding ids, divided by the id's count in its lookup with
    scale_grad_by_freq (PyTorch's embedding backward)."""
    opts = embedding_options(spec.params[name.rsplit(".", 1)[0]])
    all_ids, all_rows = [], []
    for n, ids, out in lookups:
        if n != name:
            continue
        flat = ids.reshape(-1)
        rows = out.grad.reshape(flat.numel(), -1).clone()
        if opts["padding_idx"] is not None:
            rows[flat == opts["padding_idx"]] = 0
        if opts["scale_grad_by_freq"]:
            counts = torch.bincount(flat)[flat].to(rows.dtype)
            rows = rows * (1.0 / counts).unsqueeze(1)
        all_ids.append(flat)
        all_rows.append(rows)
    return torch.cat(all_ids).numpy(), torch.cat(all_rows).detach().numpy()


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
# Optimizers: settings, torch counterparts, references
# ---------------------------------------------------------------------------

# docs/language.md section 8 (PyTorch's defaults; sgd's lr is required).
OPT_DEFAULTS = {
    "sgd": dict(momentum=0.0, dampening=0.0, weight_decay=0.0,
                nesterov=False),
    "adagrad": dict(lr=0.01, lr_decay=0.0, weight_decay=0.0,
                    initial_accumulator_value=0.0, eps=1e-10),
    "rowwise_adagrad": dict(lr=0.01, weight_decay=0.0,
                            initial_accumulator_value=0.0, eps=1e-10),
    "rmsprop": dict(lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0,
                    momentum=0.0, centered=False),
    "adam": dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0,
                 amsgrad=False),
    "adamw": dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8,
                  weight_decay=0.01, amsgrad=False),
}
COMMON_DEFAULTS = dict(sparse="lazy", clip_grad_norm=0.0, schedule="constant",
                       step_size=None, gamma=0.1, t_max=None, eta_min=0.0,
                       warmup=0, fused=None)   # fused: same numerics


def optimizer_settings(spec):
    """(kind, hyper-parameters, common settings) of the model's optimizer,
    with the documented defaults filled in."""
    kind = spec.optimizer_kind
    hyper, common = dict(OPT_DEFAULTS[kind]), dict(COMMON_DEFAULTS)
    for key, value in spec.optimizer.items():
        if key in common:
            common[key] = value
        elif key in hyper or key == "lr":
            hyper[key] = value
        else:
            raise ValueError(f"unknown argument {key!r} of {kind}")
    return kind, hyper, common


class RowwiseAdagrad(torch.optim.Optimizer):
    """Row-wise Adagrad (docs/optimizers.md; FBGEMM's EXACT_ROWWISE_ADAGRAD
    with L2 decay) in torch ops, for float32 parameters:
        g = g + wd p;  sum_r += mean_j(g_rj^2) (in double);
        p_rj += (-lr g_rj) / (sqrt(sum_r) + eps)
    A rank >= 2 tensor has dims[0] rows, a rank-0/1 tensor is one row.
    `masks` {param: 0/1 tensor}: a CSR weight as a masked dense tensor, whose
    rows are the stored values (mean over them; rows without any skipped)."""

    def __init__(self, params, lr=0.01, weight_decay=0.0,
                 initial_accumulator_value=0.0, eps=1e-10, masks=None):
        super().__init__(params, dict(lr=lr, weight_decay=weight_decay,
                                      initial_accumulator_value=
                                      initial_accumulator_value, eps=eps))
        self.masks = masks or {}

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                rows = p.view(1, -1) if p.dim() <= 1 else p.view(p.shape[0], -1)
                g = p.grad.view(rows.shape)
                if group["weight_decay"] != 0:
                    g = g + group["weight_decay"] * rows
                mask = self.masks.get(p)
                if mask is None:
                    n = torch.full((rows.shape[0],), rows.shape[1],
                                   dtype=torch.float64)
                    g2 = (g.double() ** 2).sum(1)
                else:
                    m = mask.view(rows.shape)
                    n = m.double().sum(1)
                    g2 = ((g * m).double() ** 2).sum(1)
                state = self.state[p]
                if "sum" not in state:
                    state["sum"] = torch.full(
                        (rows.shape[0],), group["initial_accumulator_value"],
                        dtype=torch.float32)
                live = n > 0
                acc = state["sum"]
                acc[live] = (acc[live].double() + g2[live] / n[live]).float()
                upd = (-group["lr"] * g) / (acc.sqrt() + group["eps"]).unsqueeze(1)
                if mask is not None:
                    upd = upd * m
                rows[live] += upd[live]


def torch_optimizer(kind, hyper, params, sparse=False, masks=None):
    """The torch.optim counterpart of a sparsec optimizer over `params`.
    sparse=True: the optimizer PyTorch offers for sparse gradients (SGD and
    Adagrad take them; Adam -> SparseAdam), for the lazy embedding rows."""
    h = hyper
    if kind == "sgd":
        return torch.optim.SGD(params, lr=h["lr"], momentum=h["momentum"],
                               dampening=h["dampening"],
                               weight_decay=h["weight_decay"],
                               nesterov=h["nesterov"])
    if kind == "adagrad":
        return torch.optim.Adagrad(
            params, lr=h["lr"], lr_decay=h["lr_decay"],
            weight_decay=h["weight_decay"],
            initial_accumulator_value=h["initial_accumulator_value"],
            eps=h["eps"])
    if kind == "rowwise_adagrad":
        return RowwiseAdagrad(params, lr=h["lr"],
                              weight_decay=h["weight_decay"],
                              initial_accumulator_value=
                              h["initial_accumulator_value"], eps=h["eps"],
                              masks=masks)
    if kind == "rmsprop":
        return torch.optim.RMSprop(params, lr=h["lr"], alpha=h["alpha"],
                                   eps=h["eps"],
                                   weight_decay=h["weight_decay"],
                                   momentum=h["momentum"],
                                   centered=h["centered"])
    betas = (h.get("beta1"), h.get("beta2"))
    if kind == "adam" and sparse:
        if h["weight_decay"] != 0 or h["amsgrad"]:
            raise ValueError("SparseAdam has no weight decay nor amsgrad")
        return torch.optim.SparseAdam(params, lr=h["lr"], betas=betas,
                                      eps=h["eps"])
    if kind in ("adam", "adamw"):
        cls = torch.optim.Adam if kind == "adam" else torch.optim.AdamW
        return cls(params, lr=h["lr"], betas=betas, eps=h["eps"],
                   weight_decay=h["weight_decay"], amsgrad=h["amsgrad"])
    raise ValueError(kind)


def torch_scheduler(opt, common):
    """The torch.optim.lr_scheduler equivalent of the schedule (None for a
    constant lr), per docs/optimizers.md "Schedules"."""
    S = torch.optim.lr_scheduler
    warmup, kind = int(common["warmup"]), common["schedule"]
    main = None
    if kind == "step":
        main = S.StepLR(opt, step_size=common["step_size"],
                        gamma=common["gamma"])
    elif kind == "cosine":
        main = S.CosineAnnealingLR(opt, T_max=common["t_max"],
                                   eta_min=common["eta_min"])
    if warmup <= 0:
        return main
    if warmup == 1:
        raise ValueError("LinearLR needs total_iters >= 1: use warmup >= 2")
    # (Constructed after `main`, so that the lrs it starts from are the
    # warm-up's.)
    linear = S.LinearLR(opt, start_factor=1.0 / warmup, end_factor=1.0,
                        total_iters=warmup - 1)
    if main is None:
        return linear
    return S.SequentialLR(opt, [linear, main], milestones=[warmup])


class LazyRows:
    """numpy float32 reference of the runtime's lazy update of an embedding
    table (docs/optimizers.md, SPARSEC_SPARSE_LAZY), for every optimizer:
    only the rows whose id occurs in the batch (the padding id excepted)
    change, with the row's coalesced gradient; weight decay (L2, or AdamW's
    decoupled factor) applies to those rows only; step counts (Adam's bias
    corrections, Adagrad's lr_decay) are the global step t. Per kind:
      sgd      torch.optim.SGD per row, momentum buffer set by the row's
               first touch (as LazyRowSGD)
      adagrad  sum += g^2;  p += -clr * (g / (sqrt(sum) + eps))
               (PyTorch's sparse ordering), clr = lr / (1 + (t-1) lr_decay)
      rowwise_adagrad  sum_r += mean(g_r^2);
               p += (-lr g) / (sqrt(sum_r) + eps)
      rmsprop  torch.optim.RMSprop's dense formula on the row (buffers 0)
      adam/adamw  torch.optim.SparseAdam's arithmetic:
               m += (g - m)(1 - b1);  v += (g^2 - v)(1 - b2);
               vm = max(vm, v) (amsgrad);
               p += (-lr sqrt(1 - b2^t) / (1 - b1^t)) (m / (sqrt(v^) + eps))
               (adamw first p *= 1 - lr wd; adam adds wd p to g)."""

    def __init__(self, table, kind, hyper, padding_idx=None):
        self.p = np.array(table, np.float32)
        self.kind, self.h, self.pad = kind, dict(hyper), padding_idx
        self.t = 0
        z = np.zeros_like(self.p)
        self.buf, self.has_buf = z.copy(), np.zeros(self.p.shape[0], bool)
        acc = np.float32(self.h.get("initial_accumulator_value", 0.0))
        self.sum = np.full(self.p.shape, acc, np.float32)
        self.rsum = np.full(self.p.shape[0], acc, np.float32)
        self.v, self.ga, self.m, self.vm = z.copy(), z.copy(), z.copy(), z.copy()

    def step(self, ids, dense_grad, lr):
        """One optimizer step; `dense_grad`: the coalesced [num, dim]
        gradient (torch's dense embedding gradient), `lr`: this step's."""
        self.t += 1
        t, h, f = self.t, self.h, np.float32
        rows = np.unique(np.asarray(ids).reshape(-1))
        if self.pad is not None:
            rows = rows[rows != self.pad]
        if rows.size == 0:
            return
        p = self.p[rows]
        g = np.asarray(dense_grad, np.float32)[rows]
        wd = f(h.get("weight_decay", 0.0))
        if wd != 0 and self.kind != "adamw":
            g = g + wd * p
        k = self.kind
        if k == "sgd":
            mom = f(h["momentum"])
            if mom != 0:
                buf = self.buf[rows]
                old = self.has_buf[rows][:, None]
                buf = np.where(old, mom * buf + f(1.0 - h["dampening"]) * g, g)
                self.buf[rows] = buf
                self.has_buf[rows] = True
                g = g + mom * buf if h["nesterov"] else buf
            p = p + f(-lr) * g
        elif k == "adagrad":
            clr = lr / (1 + (t - 1) * h["lr_decay"])
            s = self.sum[rows] + g * g
            self.sum[rows] = s
            p = p + f(-clr) * (g / (np.sqrt(s) + f(h["eps"])))
        elif k == "rowwise_adagrad":
            s = (self.rsum[rows].astype(np.float64) +
                 np.mean(g.astype(np.float64) ** 2, axis=1)).astype(np.float32)
            self.rsum[rows] = s
            p = p + (f(-lr) * g) / (np.sqrt(s) + f(h["eps"]))[:, None]
        elif k == "rmsprop":
            a = f(h["alpha"])
            v = a * self.v[rows] + f(1 - h["alpha"]) * g * g
            self.v[rows] = v
            if h["centered"]:
                ga = a * self.ga[rows] + f(1 - h["alpha"]) * g
                self.ga[rows] = ga
                avg = np.sqrt(v - ga * ga) + f(h["eps"])
            else:
                avg = np.sqrt(v) + f(h["eps"])
            if h["momentum"] > 0:
                buf = f(h["momentum"]) * self.buf[rows] + g / avg
                self.buf[rows] = buf
                p = p + f(-lr) * buf
            else:
                p = p + (f(-lr) * g) / avg
        elif k in ("adam", "adamw"):
            if k == "adamw":
                p = p * f(1 - lr * h["weight_decay"])
            b1, b2 = h["beta1"], h["beta2"]
            m = self.m[rows] + (g - self.m[rows]) * f(1 - b1)
            v = self.v[rows] + (g * g - self.v[rows]) * f(1 - b2)
            self.m[rows], self.v[rows] = m, v
            if h["amsgrad"]:
                v = np.maximum(self.vm[rows], v)
                self.vm[rows] = v
            step = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
            p = p + f(-step) * (m / (np.sqrt(v) + f(h["eps"])))
        else:
            raise ValueError(k)
        self.p[rows] = p


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


def check_masked_fd(testcase, got, flat, mask, coords, loss64, what,
                    eps=1e-6):
    """The library's gradient `got` (flat) of the tensor whose flat float64
    view is `flat` against central differences of `loss64()` at `coords`
    (each perturbed by +-eps and restored); where `mask` is 0 the gradient
    must be exactly 0. Tolerance: 1e-3 relative + 1e-4 of the largest
    difference quotient + 1e-6."""
    fd = np.empty(len(coords))
    for k, c in enumerate(coords):
        old = flat[c].item()
        flat[c] = old + eps
        up = loss64()
        flat[c] = old - eps
        down = loss64()
        flat[c] = old
        fd[k] = (up - down) / (2 * eps)
    scale = np.abs(fd).max()
    for k, c in enumerate(coords):
        if mask[c] == 0:
            testcase.assertEqual(got[c], 0.0, f"{what}[{c}] is masked")
        testcase.assertLessEqual(
            abs(got[c] - fd[k]), 1e-3 * abs(fd[k]) + 1e-6 + 1e-4 * scale,
            f"{what}[{c}]: {got[c]} vs fd {fd[k]}")
