#!/usr/bin/env python3
"""PyTorch oracle for the runtime's optimizers: drives libsparsec_runtime
through its C ABI with ctypes (a descriptor whose train kernel, written here
in Python, hands the runtime chosen gradients) and compares, after every
one of 10 steps, every parameter, and at the end the optimizer state (read
back from a checkpoint), with torch.optim (f32, relative error <= 1e-5):

  * dense parameters (a [5, 3] matrix, a [4] vector) and the values of a CSR
    parameter: SGD, Adagrad, RMSprop (centered, momentum), Adam (amsgrad),
    AdamW, all with weight decay and maximize, against torch.optim on the
    same tensors; row-wise Adagrad against FBGEMM's formula in torch ops;
  * an embedding table with lazy semantics: SGD against torch SGD with
    sparse gradients (per-row SGD when momentum / weight decay make torch
    refuse sparse gradients), Adagrad against torch Adagrad with sparse
    gradients, Adam against torch.optim.SparseAdam;
  * dense semantics (and catch-up with every row touched every step) on an
    embedding: the dense torch optimizer on the densified gradient, for
    every optimizer;
  * global-norm clipping against torch.nn.utils.clip_grad_norm_;
  * lr schedules against torch.optim.lr_scheduler (StepLR,
    CosineAnnealingLR, and LinearLR warm-up chained with SequentialLR),
    including sparsec_current_lr against get_last_lr();
  * nn.Embedding's options (padding_idx, max_norm with norm types 1, 2, 3
    and inf, scale_grad_by_freq, a non-zero padding row) on a table read by
    a gather kernel: sparsec_train_step and sparsec_forward against the
    module's forward (which renorms in place) and backward, lazy with SGD,
    Adagrad and SparseAdam, dense with every dense optimizer (see EmbCase).

Usage: optim_torch_oracle.py LIBSPARSEC_RUNTIME_SO. Exits 77 (skipped) when
torch or numpy is missing.
"""
import ctypes as C
import itertools
import json
import os
import struct
import sys
import tempfile
import warnings

try:
    import numpy as np
    import torch
except ImportError as e:  # pragma: no cover
    print("skipped: %s" % e)
    sys.exit(77)

warnings.filterwarnings("ignore")  # lr_scheduler's epoch warnings

ABI_VERSION = 5
MAX_RANK = 4
F32, I64 = 0, 3
DENSE, CSR, EMB = 0, 1, 2
ZEROS = 0
SGD, ADAGRAD, ROWWISE, RMSPROP, ADAM, ADAMW = range(6)
LAZY, CATCHUP, DENSE_MODE = range(3)
CONSTANT, STEP, COSINE = range(3)
Dims = C.c_int64 * MAX_RANK
KERNEL = C.CFUNCTYPE(C.c_int, C.POINTER(C.c_void_p), C.c_int64)
RTOL, ATOL = 1e-5, 1e-12


class InputDesc(C.Structure):
    _fields_ = [("name", C.c_char_p), ("dtype", C.c_int), ("rank", C.c_int32), ("dims", Dims),
                ("is_target", C.c_int32), ("id_bound", C.c_int64)]


class ParamDesc(C.Structure):
    _fields_ = [("name", C.c_char_p), ("layout", C.c_int), ("rank", C.c_int32), ("dims", Dims),
                ("nnz", C.c_int64), ("init", C.c_int), ("init_a", C.c_double),
                ("ids_input", C.c_int32), ("padding_idx", C.c_int64), ("max_norm", C.c_double),
                ("norm_type", C.c_double), ("scale_grad_by_freq", C.c_int32),
                ("row_update", C.c_void_p), ("pattern", C.c_int),
                ("user_positions", C.c_void_p), ("user_coordinates", C.c_void_p),
                ("dynamic", C.c_int), ("delta_t", C.c_int64), ("t_end", C.c_int64),
                ("drop_fraction", C.c_double), ("score", C.c_void_p), ("max_size", C.c_int64),
                ("mask_of", C.c_int32), ("mask_ones", C.c_int64), ("prune", C.c_int),
                ("prune_global", C.c_int32), ("prune_norm", C.c_int32),
                ("prune_initial", C.c_double), ("prune_final", C.c_double),
                ("prune_begin", C.c_int64), ("prune_end", C.c_int64), ("prune_every", C.c_int64)]


class OptDesc(C.Structure):
    _fields_ = [("kind", C.c_int), ("lr", C.c_double), ("momentum", C.c_double),
                ("dampening", C.c_double), ("weight_decay", C.c_double), ("nesterov", C.c_int32),
                ("eps", C.c_double), ("lr_decay", C.c_double),
                ("initial_accumulator_value", C.c_double), ("alpha", C.c_double),
                ("beta1", C.c_double), ("beta2", C.c_double), ("centered", C.c_int32),
                ("amsgrad", C.c_int32), ("maximize", C.c_int32), ("sparse_mode", C.c_int),
                ("max_grad_norm", C.c_double), ("schedule", C.c_int32),
                ("step_size", C.c_int64), ("gamma", C.c_double), ("t_max", C.c_int64),
                ("eta_min", C.c_double), ("warmup_steps", C.c_int64)]


class ModelDesc(C.Structure):
    _fields_ = [("abi_version", C.c_int32), ("name", C.c_char_p), ("num_inputs", C.c_int32),
                ("inputs", C.POINTER(InputDesc)), ("num_params", C.c_int32),
                ("params", C.POINTER(ParamDesc)), ("output_rank", C.c_int32),
                ("output_dims", Dims), ("optimizer", OptDesc), ("forward", KERNEL),
                ("train", KERNEL)]


ROWS, DIM, BAG = 8, 3, 2
W_SHAPE, B_SHAPE, S_SHAPE, S_NNZ = (5, 3), (4,), (4, 6), 9
STATE_NAMES = ("momentum_buffer", "sum", "square_avg", "grad_avg", "exp_avg", "exp_avg_sq",
               "max_exp_avg_sq")


def read_checkpoint(path):
    """name -> numpy array (json + numpy only)."""
    with open(path, "rb") as f:
        blob = f.read()
    (hlen,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + hlen])
    header.pop("__metadata__")
    data = blob[8 + hlen:]
    kinds = {"F32": np.float32, "I32": np.int32, "I64": np.int64, "U8": np.uint8}
    out = {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        out[name] = np.frombuffer(data[b:e], dtype=kinds[info["dtype"]]).reshape(info["shape"])
    return out


def param_desc(name, layout, dims, init=ZEROS, init_a=0.0, ids_input=0, padding_idx=-1,
               max_norm=0.0, norm_type=2.0, scale_grad_by_freq=0, nnz=None):
    """A ParamDesc as the compiler emits it (padding_idx -1 and norm_type 2
    when an embedding option is off)."""
    numel = int(np.prod(dims)) if dims else 1
    return ParamDesc(name, layout, len(dims), Dims(*dims), numel if nnz is None else nnz, init,
                     init_a, ids_input, padding_idx, max_norm, norm_type, scale_grad_by_freq)


class Model:
    """A runtime model created from a descriptor built here; `keep` holds the
    ctypes objects the descriptor points to."""

    def __init__(self, lib, desc, keep, seed=7):
        self.lib, self.keep = lib, keep
        self.model = C.c_void_p()
        rc = lib.sparsec_create(C.byref(desc), seed, C.byref(self.model))
        assert rc == 0, lib.sparsec_last_error()

    def values(self, name):
        ptr, count = C.POINTER(C.c_float)(), C.c_int64()
        assert self.lib.sparsec_param_values(self.model, name.encode(), C.byref(ptr),
                                             C.byref(count)) == 0
        return np.ctypeslib.as_array(ptr, shape=(count.value,))

    def current_lr(self):
        lr = C.c_double()
        assert self.lib.sparsec_current_lr(self.model, C.byref(lr)) == 0
        return lr.value

    def checkpoint(self):
        fd, path = tempfile.mkstemp(suffix=".safetensors")
        os.close(fd)
        try:
            assert self.lib.sparsec_save(self.model, path.encode()) == 0, \
                self.lib.sparsec_last_error()
            return read_checkpoint(path)
        finally:
            os.unlink(path)

    def __del__(self):
        self.lib.sparsec_destroy(self.model)


class Runtime(Model):
    """A runtime model with parameters w, b (dense), s (CSR), e (embedding)."""

    def __init__(self, lib, opt, init):
        self.grads = {}
        self.train_fn = KERNEL(self._train)
        inputs = (InputDesc * 1)(InputDesc(b"ids", I64, 2, Dims(-1, BAG), 0, ROWS))
        params = (ParamDesc * 4)(
            param_desc(b"w", DENSE, W_SHAPE), param_desc(b"b", DENSE, B_SHAPE),
            param_desc(b"s", CSR, S_SHAPE, nnz=S_NNZ), param_desc(b"e", EMB, (ROWS, DIM)))
        desc = ModelDesc(ABI_VERSION, b"Oracle", 1, inputs, 4, params, 1, Dims(-1), opt, KERNEL(),
                         self.train_fn)
        super().__init__(lib, desc, (inputs, params))
        for name, v in init.items():
            self.values(name)[:] = v.ravel()  # zero-copy writes
        pos, crd = C.POINTER(C.c_int32)(), C.POINTER(C.c_int32)()
        assert lib.sparsec_param_csr(self.model, b"s", C.byref(pos), C.byref(crd)) == 0
        self.crow = np.ctypeslib.as_array(pos, shape=(S_SHAPE[0] + 1,)).copy()

    def _train(self, bufs, batch):
        for slot, name in ((7, "w"), (8, "b"), (9, "s"), (10, "e")):
            flat = np.ascontiguousarray(self.grads[name], dtype=np.float32).ravel()
            C.memmove(C.cast(bufs[slot], C.POINTER(C.c_float)), flat.ctypes.data, flat.nbytes)
        C.cast(bufs[11], C.POINTER(C.c_float))[0] = 1.0
        return 0

    def step(self, ids, grads):
        self.grads = grads
        loss = C.c_float()
        ptrs = (C.c_void_p * 1)(ids.ctypes.data)
        rc = self.lib.sparsec_train_step(self.model, ids.shape[0], ptrs, C.byref(loss))
        assert rc == 0, self.lib.sparsec_last_error()


def opt_desc(kind, lr, **kw):
    d = OptDesc()
    d.kind, d.lr = kind, lr
    for k, v in kw.items():
        setattr(d, k, v)
    return d


def torch_kwargs(kind, d):
    """torch.optim keyword arguments of descriptor `d`."""
    if kind == SGD:
        return dict(lr=d.lr, momentum=d.momentum, dampening=d.dampening,
                    weight_decay=d.weight_decay, nesterov=bool(d.nesterov),
                    maximize=bool(d.maximize))
    if kind == ADAGRAD:
        return dict(lr=d.lr, lr_decay=d.lr_decay, weight_decay=d.weight_decay,
                    initial_accumulator_value=d.initial_accumulator_value, eps=d.eps,
                    maximize=bool(d.maximize))
    if kind == RMSPROP:
        return dict(lr=d.lr, alpha=d.alpha, eps=d.eps, weight_decay=d.weight_decay,
                    momentum=d.momentum, centered=bool(d.centered), maximize=bool(d.maximize))
    return dict(lr=d.lr, betas=(d.beta1, d.beta2), eps=d.eps, weight_decay=d.weight_decay,
                amsgrad=bool(d.amsgrad), maximize=bool(d.maximize))


TORCH_CLASS = {SGD: torch.optim.SGD, ADAGRAD: torch.optim.Adagrad,
               RMSPROP: torch.optim.RMSprop, ADAM: torch.optim.Adam, ADAMW: torch.optim.AdamW}


class RowwiseAdagrad:
    """FBGEMM's row-wise Adagrad (L2 weight decay), in torch f32 ops; `rows`
    maps each parameter to its list of (begin, end) value ranges."""

    def __init__(self, params, rows, d):
        self.params, self.rows, self.d, self.t = params, rows, d, 0
        self.param_groups = [{"lr": d.lr}]
        self.state = {p: {"sum": torch.full((len(rows[i]),), d.initial_accumulator_value)}
                      for i, p in enumerate(params)}

    def step(self):
        self.t += 1
        d, lr = self.d, self.param_groups[0]["lr"]
        clr = lr / (1 + (self.t - 1) * d.lr_decay)
        with torch.no_grad():
            for i, p in enumerate(self.params):
                flat, gflat = p.view(-1), p.grad.view(-1)
                s = self.state[p]["sum"]
                for r, (lo, hi) in enumerate(self.rows[i]):
                    if hi == lo:
                        continue
                    g = -gflat[lo:hi] if d.maximize else gflat[lo:hi]
                    if d.weight_decay:
                        g = g + d.weight_decay * flat[lo:hi]
                    s[r] += float((g.double() ** 2).mean())
                    std = s[r].sqrt() + d.eps
                    flat[lo:hi] = flat[lo:hi] + (-clr * g) / std


def make_torch_opt(kind, params, d, rows=None):
    if kind == ROWWISE:
        return RowwiseAdagrad(params, rows, d)
    kw = torch_kwargs(kind, d)
    if kind != SGD:
        kw["foreach"] = False
    return TORCH_CLASS[kind](params, **kw)


def close(got, want):
    """Relative error of the tensor (max-norm) <= RTOL. Elementwise relative
    error is meaningless where values cancel (torch's add uses fused
    multiply-adds, the runtime does not), so the scale is the tensor's."""
    got = np.asarray(got, dtype=np.float64).ravel()
    want = np.asarray(want, dtype=np.float64).ravel()
    if got.shape != want.shape:
        return False
    scale = np.max(np.abs(want)) if want.size else 0.0
    return bool(np.all(np.abs(got - want) <= RTOL * scale + ATOL))


def expect(got, want, what):
    if not close(got, want):
        g = np.asarray(got, dtype=np.float64).ravel()
        w = np.asarray(want, dtype=np.float64).ravel()
        raise AssertionError("%s differs from torch: max abs diff %g\n got %s\nwant %s"
                             % (what, np.max(np.abs(g - w)) if g.shape == w.shape else -1, g, w))


class Case:
    """One runtime model and its torch twin, stepped together."""

    def __init__(self, lib, kind, d, emb="dense", seed=0, sched=None, all_rows=False):
        self.rng = np.random.default_rng(seed)
        self.kind, self.d, self.emb, self.all_rows = kind, d, emb, all_rows
        init = {"w": self.rng.standard_normal(W_SHAPE).astype(np.float32),
                "b": self.rng.standard_normal(B_SHAPE).astype(np.float32),
                "s": self.rng.standard_normal(S_NNZ).astype(np.float32),
                "e": self.rng.standard_normal((ROWS, DIM)).astype(np.float32)}
        self.rt = Runtime(lib, d, init)
        self.t = {n: torch.nn.Parameter(torch.tensor(v)) for n, v in init.items()}
        crow = self.rt.crow
        rows = [[(r * 3, r * 3 + 3) for r in range(5)], [(0, 4)],
                [(int(crow[r]), int(crow[r + 1])) for r in range(S_SHAPE[0])],
                [(r * DIM, r * DIM + DIM) for r in range(ROWS)]]
        t = self.t
        if emb == "dense":
            self.opts = [make_torch_opt(kind, [t["w"], t["b"], t["s"], t["e"]], d, rows)]
        else:
            self.opts = [make_torch_opt(kind, [t["w"], t["b"], t["s"]], d, rows[:3])]
            self.opts.append(self.lazy_opt())
        self.scheds = [sched(o) for o in self.opts] if sched else []

    def lazy_opt(self):
        kind, d, e = self.kind, self.d, self.t["e"]
        self.per_row = None
        if kind == SGD and (d.momentum or d.weight_decay):
            # torch refuses momentum / weight decay with sparse gradients:
            # each row is its own parameter, stepped when the batch touches it.
            self.per_row = [torch.nn.Parameter(e.detach()[r].clone()) for r in range(ROWS)]
            self.row_opts = [torch.optim.SGD([p], **torch_kwargs(SGD, d)) for p in self.per_row]
            return None
        if kind == ADAM:
            return torch.optim.SparseAdam([e], lr=d.lr, betas=(d.beta1, d.beta2), eps=d.eps,
                                          maximize=bool(d.maximize))
        return make_torch_opt(kind, [e], d)

    def step(self, clip=None):
        rng = self.rng
        batch = int(rng.integers(1, 5))
        if self.all_rows:
            extra = rng.integers(0, ROWS, size=2 * BAG)  # and some duplicates
            ids = np.concatenate([rng.permutation(ROWS), extra]).astype(np.int64).reshape(-1, BAG)
        else:
            hi = ROWS - 2 if self.emb == "lazy" else ROWS  # rows 6, 7 untouched when lazy
            ids = rng.integers(0, hi, size=(batch, BAG)).astype(np.int64)
        grads = {"w": rng.standard_normal(W_SHAPE).astype(np.float32),
                 "b": rng.standard_normal(B_SHAPE).astype(np.float32),
                 "s": rng.standard_normal(S_NNZ).astype(np.float32),
                 "e": rng.standard_normal((ids.size, DIM)).astype(np.float32)}
        self.rt.step(ids, grads)
        t = self.t
        for n in ("w", "b", "s"):
            t[n].grad = torch.tensor(grads[n])
        flat = torch.tensor(ids.ravel())
        sparse = torch.sparse_coo_tensor(flat[None, :], torch.tensor(grads["e"]), (ROWS, DIM))
        t["e"].grad = sparse.to_dense() if self.emb == "dense" else sparse
        if clip is not None:
            total = torch.nn.utils.clip_grad_norm_([t["w"], t["b"], t["s"], t["e"]], clip)
            if t["e"].grad.is_sparse:
                # torch 1.13's clip_grad_norm_ computes the norm of sparse
                # gradients but its in-place g.detach().mul_() does not reach
                # them: scale with the coefficient it applied to the others.
                coef = torch.clamp(clip / (total + 1e-6), max=1.0)
                t["e"].grad = t["e"].grad * coef
        for o in self.opts:
            if o is not None:
                o.step()
        if self.emb == "lazy" and self.per_row is not None:
            g = t["e"].grad.coalesce()
            for r, row in zip(g.indices()[0].tolist(), g.values()):
                self.per_row[r].grad = row.clone()
                self.row_opts[r].step()
            with torch.no_grad():
                t["e"].copy_(torch.stack([p.detach() for p in self.per_row]))
        for s in self.scheds:
            s.step()
        for n in ("w", "b", "s", "e"):
            expect(self.rt.values(n), t[n].detach().numpy(), "%s after step" % n)
        if self.scheds:
            expect([self.rt.current_lr()], [self.scheds[0].get_last_lr()[0]], "current_lr")

    def check_state(self):
        ck = self.rt.checkpoint()
        t = self.t
        for n in ("w", "b", "s", "e"):
            p = t[n]
            if self.emb == "lazy" and n == "e" and self.per_row is not None:
                if "optimizer.e.momentum_buffer" in ck:
                    flags = ck["optimizer.e.momentum_rows"]
                    buf = ck["optimizer.e.momentum_buffer"]
                    for r in range(ROWS):
                        st = self.row_opts[r].state.get(self.per_row[r], {})
                        assert bool(flags[r]) == ("momentum_buffer" in st), (r, flags)
                        if flags[r]:
                            expect(buf[r], st["momentum_buffer"].numpy(), "e momentum row %d" % r)
                continue
            opt = self.opts[0] if (n != "e" or self.emb == "dense") else self.opts[1]
            st = opt.state.get(p, {})
            for name in STATE_NAMES:
                key = "optimizer.%s.%s" % (n, name)
                want = st.get(name)
                if want is None:
                    assert key not in ck or not ck[key].any(), (key, self.kind)
                    continue
                assert key in ck, (key, sorted(ck))
                expect(ck[key], want.numpy(), key)


def run(case, steps=10, clip=None):
    for _ in range(steps):
        case.step(clip)
    case.check_state()


def dense_cases():
    """(kind, descriptor kwargs) for every optimizer option that matters."""
    out = []
    for mom, damp, nest, wd, mx in itertools.product((0.0, 0.9), (0.0, 0.3), (False, True),
                                                     (0.0, 0.05), (0, 1)):
        if nest and (mom == 0 or damp != 0):
            continue
        out.append((SGD, dict(lr=0.1, momentum=mom, dampening=damp, nesterov=int(nest),
                              weight_decay=wd, maximize=mx)))
    for kind in (ADAGRAD, ROWWISE):
        for lr_decay, wd, iav, mx in itertools.product((0.0, 0.1), (0.0, 0.05), (0.0, 0.3), (0, 1)):
            out.append((kind, dict(lr=0.1, lr_decay=lr_decay, weight_decay=wd,
                                   initial_accumulator_value=iav, eps=1e-10, maximize=mx)))
    for centered, mom, wd, mx in itertools.product((0, 1), (0.0, 0.9), (0.0, 0.05), (0, 1)):
        out.append((RMSPROP, dict(lr=0.01, alpha=0.99, eps=1e-8, centered=centered, momentum=mom,
                                  weight_decay=wd, maximize=mx)))
    for kind in (ADAM, ADAMW):
        for ams, wd, mx in itertools.product((0, 1), (0.0, 0.05), (0, 1)):
            out.append((kind, dict(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8, amsgrad=ams,
                                   weight_decay=wd, maximize=mx)))
    out.append((ADAM, dict(lr=0.01, beta1=0.5, beta2=0.6, eps=1e-3)))
    out.append((RMSPROP, dict(lr=0.01, alpha=0.5, eps=1e-3, centered=1, momentum=0.5)))
    return out


# --- Embedding options: nn.Embedding(padding_idx, max_norm, norm_type,
# scale_grad_by_freq) against the runtime with a gather kernel. ---

NORMAL = 2


def f32_array(ptr, count):
    return np.ctypeslib.as_array(C.cast(ptr, C.POINTER(C.c_float)), shape=(count,))


class EmbRuntime(Model):
    """One embedding table e [ROWS, DIM] with nn.Embedding's options, read by
    ids [batch, BAG]; the forward kernel gathers out = e[ids] [batch, BAG,
    DIM] and the train kernel adds the loss 0.5 * sum((out - y)^2), whose
    gradient row of each id is out - y (padding ids included: the runtime
    drops them). Test scaffolding, in numpy."""

    def __init__(self, lib, opt, padding_idx, max_norm, norm_type, freq):
        self.forward_fn, self.train_fn = KERNEL(self._forward), KERNEL(self._train)
        inputs = (InputDesc * 2)(InputDesc(b"ids", I64, 2, Dims(-1, BAG), 0, ROWS),
                                 InputDesc(b"y", F32, 3, Dims(-1, BAG, DIM), 1, 0))
        params = (ParamDesc * 1)(param_desc(b"e", EMB, (ROWS, DIM), NORMAL, 1.0, 0, padding_idx,
                                            max_norm, norm_type, freq))
        desc = ModelDesc(ABI_VERSION, b"EmbOracle", 2, inputs, 1, params, 3, Dims(-1, BAG, DIM),
                         opt, self.forward_fn, self.train_fn)
        super().__init__(lib, desc, (inputs, params))

    @staticmethod
    def _gather(bufs, batch, table_slot):
        ids = np.ctypeslib.as_array(C.cast(bufs[0], C.POINTER(C.c_int64)), shape=(batch * BAG,))
        return f32_array(bufs[table_slot], ROWS * DIM).reshape(ROWS, DIM)[ids]

    def _forward(self, bufs, batch):
        f32_array(bufs[2], batch * BAG * DIM)[:] = self._gather(bufs, batch, 1).ravel()
        return 0

    def _train(self, bufs, batch):
        diff = self._gather(bufs, batch, 2) - f32_array(bufs[1], batch * BAG * DIM).reshape(-1, DIM)
        f32_array(bufs[3], diff.size)[:] = diff.ravel()
        C.cast(bufs[4], C.POINTER(C.c_float))[0] = float(0.5 * np.sum(diff.astype(np.float64) ** 2))
        return 0

    def step(self, ids, y):
        loss = C.c_float()
        ptrs = (C.c_void_p * 2)(ids.ctypes.data, y.ctypes.data)
        rc = self.lib.sparsec_train_step(self.model, ids.shape[0], ptrs, C.byref(loss))
        assert rc == 0, self.lib.sparsec_last_error()
        return loss.value

    def forward(self, ids):
        out = np.zeros((ids.shape[0], BAG, DIM), dtype=np.float32)
        ptrs = (C.c_void_p * 1)(ids.ctypes.data)
        rc = self.lib.sparsec_forward(self.model, ids.shape[0], ptrs, out.ctypes.data)
        assert rc == 0, self.lib.sparsec_last_error()
        return out


class EmbCase:
    """An EmbRuntime and its nn.Embedding twin, stepped together. Lazy tables
    use nn.Embedding(sparse=True) with torch's sparse optimizers (Adam:
    SparseAdam); dense tables use nn.Embedding(sparse=False) with the dense
    optimizer, whose weight decay would move a non-zero padding row: sparsec
    never moves it, so the twin's padding row is put back after each step
    and its state is not compared. torch 1.13 refuses scale_grad_by_freq
    with sparse=True ("not supported with sparse gradients"): the twin then
    takes the dense backward's rows (which apply it) at the batch's
    non-padding ids as a coalesced sparse gradient."""

    def __init__(self, lib, kind, d, padding_idx=-1, max_norm=0.0, norm_type=2.0, freq=0,
                 pad_nonzero=False, seed=0):
        self.rng = np.random.default_rng(seed)
        self.kind, self.d, self.pad = kind, d, padding_idx
        self.lazy = d.sparse_mode == LAZY
        self.rt = EmbRuntime(lib, d, padding_idx, max_norm, norm_type, freq)
        table = self.rt.values("e").reshape(ROWS, DIM)
        if padding_idx >= 0:  # zeroed after the normal initialiser, as nn.Embedding does
            assert not table[padding_idx].any() and table.any(), table
        init = self.rng.standard_normal((ROWS, DIM)).astype(np.float32)
        if padding_idx >= 0:
            init[padding_idx] = (0.5, -0.7, 1.3) if pad_nonzero else 0.0
        table[:] = init
        self.emb = torch.nn.Embedding(ROWS, DIM, padding_idx=padding_idx if padding_idx >= 0
                                      else None, max_norm=max_norm or None, norm_type=norm_type,
                                      scale_grad_by_freq=bool(freq),
                                      sparse=self.lazy and not freq)
        self.densified = self.lazy and bool(freq)
        w = self.emb.weight
        with torch.no_grad():
            w.copy_(torch.tensor(init))
        if not self.lazy:
            self.opt = make_torch_opt(kind, [w], d, [[(r * DIM, r * DIM + DIM)
                                                      for r in range(ROWS)]])
        elif kind == ADAM:
            self.opt = torch.optim.SparseAdam([w], lr=d.lr, betas=(d.beta1, d.beta2), eps=d.eps,
                                              maximize=bool(d.maximize))
        else:
            self.opt = make_torch_opt(kind, [w], d)

    def ids(self, batch):
        ids = self.rng.integers(0, ROWS, size=(batch, BAG)).astype(np.int64)
        if self.pad >= 0:
            ids[self.rng.random(ids.shape) < 0.3] = self.pad
        return ids

    def step(self, i):
        batch = int(self.rng.integers(1, 5))
        ids = self.ids(batch)
        if self.pad >= 0 and i == 3:
            ids[:] = self.pad  # a batch of padding ids only: an empty gradient
        y = self.rng.standard_normal((batch, BAG, DIM)).astype(np.float32)
        loss = self.rt.step(ids, y)
        w = self.emb.weight
        w.grad = None
        want = 0.5 * ((self.emb(torch.tensor(ids)) - torch.tensor(y)) ** 2).sum()
        want.backward()
        expect([loss], [want.item()], "loss")
        if self.densified:
            rows = torch.tensor(np.unique(ids[ids != self.pad]), dtype=torch.int64)
            w.grad = torch.sparse_coo_tensor(rows[None, :], w.grad[rows], (ROWS, DIM)).coalesce()
        pad_row = w.detach()[self.pad].clone() if self.pad >= 0 else None
        try:
            self.opt.step()
        except RuntimeError:
            # torch 1.13's SparseAdam and sparse Adagrad fail on an empty
            # gradient (a batch of padding ids only; issue #82486, fixed by
            # skipping the update in PR #86459) after counting the step and
            # before changing anything else: the fixed behaviour.
            assert self.lazy and w.grad._nnz() == 0
        if pad_row is not None:
            with torch.no_grad():
                w[self.pad] = pad_row
        expect(self.rt.values("e"), w.detach().numpy(), "e after step %d" % i)
        # A forward renorms the rows it reads, in place, on both sides.
        ids = self.ids(2)
        got = self.rt.forward(ids)
        with torch.no_grad():
            out = self.emb(torch.tensor(ids))
        expect(got, out.numpy(), "forward output")
        expect(self.rt.values("e"), w.detach().numpy(), "e after forward %d" % i)

    def check_state(self):
        ck = self.rt.checkpoint()
        st = self.opt.state.get(self.emb.weight, {})
        keep = [r for r in range(ROWS) if r != self.pad]
        for name in STATE_NAMES:
            key = "optimizer.e.%s" % name
            want = st.get(name)
            if want is None or (self.kind == ROWWISE and name == "sum"):
                continue
            assert key in ck, (key, sorted(ck))
            expect(ck[key][keep], want.numpy()[keep], key)
            if self.pad >= 0:  # the padding row's state never changes
                fresh = self.d.initial_accumulator_value if name == "sum" else 0.0
                assert np.all(ck[key][self.pad] == np.float32(fresh)), (key, ck[key][self.pad])
        if self.kind == ROWWISE:
            expect(ck["optimizer.e.sum"][keep], self.opt.state[self.emb.weight]["sum"][keep],
                   "rowwise sum")


EMB_OPTIONS = [dict(padding_idx=2), dict(max_norm=1.0), dict(max_norm=1.5, norm_type=1.0),
               dict(max_norm=0.9, norm_type=3.0), dict(max_norm=0.8, norm_type=float("inf")),
               dict(freq=1), dict(padding_idx=5, max_norm=1.1, freq=1),
               dict(padding_idx=0, pad_nonzero=True, max_norm=1.2, freq=1)]
EMB_LAZY = [(SGD, dict(lr=0.1)), (SGD, dict(lr=0.1, maximize=1)),
            (ADAGRAD, dict(lr=0.1, lr_decay=0.1, initial_accumulator_value=0.3, eps=1e-10)),
            (ADAM, dict(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8)),
            (ADAM, dict(lr=0.01, beta1=0.5, beta2=0.6, eps=1e-3, maximize=1))]
EMB_DENSE = [(SGD, dict(lr=0.1, momentum=0.9, nesterov=1, weight_decay=0.05)),
             (ADAGRAD, dict(lr=0.1, weight_decay=0.05, eps=1e-10)),
             (ROWWISE, dict(lr=0.1, weight_decay=0.05, eps=1e-10)),
             (RMSPROP, dict(lr=0.01, alpha=0.99, eps=1e-8, centered=1, momentum=0.5,
                            weight_decay=0.05)),
             (ADAM, dict(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8, amsgrad=1, weight_decay=0.05)),
             (ADAMW, dict(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.05))]



def main():
    lib = C.CDLL(sys.argv[1])
    lib.sparsec_last_error.restype = C.c_char_p
    for f, args in (("sparsec_create", [C.c_void_p, C.c_uint64, C.c_void_p]),
                    ("sparsec_train_step", [C.c_void_p, C.c_int64, C.c_void_p, C.c_void_p]),
                    ("sparsec_forward", [C.c_void_p, C.c_int64, C.c_void_p, C.c_void_p]),
                    ("sparsec_param_values", [C.c_void_p, C.c_char_p, C.c_void_p, C.c_void_p]),
                    ("sparsec_param_csr", [C.c_void_p, C.c_char_p, C.c_void_p, C.c_void_p]),
                    ("sparsec_current_lr", [C.c_void_p, C.c_void_p]),
                    ("sparsec_save", [C.c_void_p, C.c_char_p]),
                    ("sparsec_destroy", [C.c_void_p])):
        getattr(lib, f).argtypes = args
    counts = {}

    def done(group):
        counts[group] = counts.get(group, 0) + 1

    # Dense parameters (and the embedding in dense mode, and catch-up with
    # every row touched every step, which must equal it).
    for i, (kind, kw) in enumerate(dense_cases()):
        run(Case(lib, kind, opt_desc(kind, sparse_mode=DENSE_MODE, **kw), "dense", seed=i))
        done("dense")
        run(Case(lib, kind, opt_desc(kind, sparse_mode=CATCHUP, **kw), "dense", seed=i,
                 all_rows=True))
        done("catchup-all-rows")

    # Lazy embeddings against torch's sparse-gradient optimizers.
    lazy = [(SGD, dict(lr=0.1, momentum=m, dampening=dp, nesterov=int(n), weight_decay=wd,
                       maximize=mx))
            for m, dp, n, wd, mx in itertools.product((0.0, 0.9), (0.0, 0.3), (False, True),
                                                      (0.0, 0.05), (0, 1))
            if not (n and (m == 0 or dp != 0))]
    lazy += [(ADAGRAD, dict(lr=0.1, lr_decay=ld, initial_accumulator_value=iav, eps=1e-10,
                            maximize=mx))
             for ld, iav, mx in itertools.product((0.0, 0.1), (0.0, 0.3), (0, 1))]
    lazy += [(ADAM, dict(lr=0.01, beta1=b1, beta2=b2, eps=eps, maximize=mx))
             for (b1, b2, eps), mx in itertools.product(((0.9, 0.999, 1e-8), (0.5, 0.6, 1e-3)),
                                                        (0, 1))]
    for i, (kind, kw) in enumerate(lazy):
        for seed in range(2):
            run(Case(lib, kind, opt_desc(kind, sparse_mode=LAZY, **kw), "lazy", seed=10 * i + seed))
            done("lazy")

    # Clipping (sometimes active, sometimes not) with lazy and dense tables.
    for i, (kind, kw, emb) in enumerate([
            (SGD, dict(lr=0.1), "lazy"), (SGD, dict(lr=0.1, momentum=0.9), "lazy"),
            (ADAGRAD, dict(lr=0.1, eps=1e-10), "lazy"),
            (ADAM, dict(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8), "lazy"),
            (SGD, dict(lr=0.1, momentum=0.9, weight_decay=0.05), "dense"),
            (RMSPROP, dict(lr=0.01, alpha=0.99, eps=1e-8, centered=1), "dense"),
            (ADAMW, dict(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.05), "dense"),
            (ROWWISE, dict(lr=0.1, eps=1e-10), "dense")]):
        for max_norm in (0.5, 3.0, 100.0):
            mode = LAZY if emb == "lazy" else DENSE_MODE
            run(Case(lib, kind, opt_desc(kind, sparse_mode=mode, max_grad_norm=max_norm, **kw),
                     emb, seed=100 + i), clip=max_norm)
            done("clip")

    # Schedules: StepLR, CosineAnnealingLR, LinearLR warm-up then each.
    S = torch.optim.lr_scheduler

    def warm(w, then):
        def make(o):
            first = S.LinearLR(o, start_factor=1.0 / w, end_factor=1.0, total_iters=w - 1)
            return S.SequentialLR(o, [first, then(o)], milestones=[w])
        return make

    scheds = [
        (dict(schedule=STEP, step_size=3, gamma=0.5), lambda o: S.StepLR(o, 3, gamma=0.5)),
        (dict(schedule=COSINE, t_max=4, eta_min=0.001),
         lambda o: S.CosineAnnealingLR(o, T_max=4, eta_min=0.001)),
        (dict(warmup_steps=4), lambda o: S.LinearLR(o, start_factor=0.25, total_iters=3)),
        (dict(warmup_steps=3, schedule=STEP, step_size=2, gamma=0.1),
         warm(3, lambda o: S.StepLR(o, 2, gamma=0.1))),
        (dict(warmup_steps=2, schedule=COSINE, t_max=5, eta_min=0.0),
         warm(2, lambda o: S.CosineAnnealingLR(o, T_max=5))),
    ]
    for i, (skw, make) in enumerate(scheds):
        for kind, kw in ((SGD, dict(lr=0.1, momentum=0.9)),
                         (ADAM, dict(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8)),
                         (ADAGRAD, dict(lr=0.1, eps=1e-10, lr_decay=0.05))):
            d = opt_desc(kind, sparse_mode=DENSE_MODE, **kw, **skw)
            run(Case(lib, kind, d, "dense", seed=200 + i, sched=make), steps=12)
            done("schedule")

    # nn.Embedding's options, lazy (torch's sparse optimizers) and dense.
    for i, opts in enumerate(EMB_OPTIONS):
        for mode, cases in ((LAZY, EMB_LAZY), (DENSE_MODE, EMB_DENSE)):
            for j, (kind, kw) in enumerate(cases):
                d = opt_desc(kind, sparse_mode=mode, **kw)
                case = EmbCase(lib, kind, d, seed=300 + i * 20 + j, **opts)
                for step in range(10):
                    case.step(step)
                case.check_state()
                done("embedding-options")

    total = sum(counts.values())
    print(" ".join("%s=%d" % kv for kv in sorted(counts.items())))
    print("%d passed, 0 failed" % total)


if __name__ == "__main__":
    main()
