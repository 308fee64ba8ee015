"""A sparsec model library (lib<Model>.so) driven through ctypes."""
import ctypes as C
import json
import os
import tempfile
from collections import namedtuple
from typing import Dict, Optional

import numpy as np

from . import _header
from . import checkpoint as _ckpt

#: Status codes of the C API (runtime.h), by value.
STATUS_NAMES = {
    0: "SPARSEC_OK", 1: "SPARSEC_ERR_NULL", 2: "SPARSEC_ERR_INVALID_ARG",
    3: "SPARSEC_ERR_OUT_OF_RANGE", 4: "SPARSEC_ERR_NONFINITE", 5: "SPARSEC_ERR_IO",
    6: "SPARSEC_ERR_FORMAT", 7: "SPARSEC_ERR_NOMEM", 8: "SPARSEC_ERR_KERNEL",
    9: "SPARSEC_ERR_ABI",
}

#: One parameter: name, layout ("dense", "csr", "embedding", "buffer" for layer
#: state such as kwinners duty cycles, "mask" for a masked_linear mask), dense shape,
#: stored values (nnz; numel for dense) and sparsity (1 - nnz / numel).
ParamInfo = namedtuple("ParamInfo", "name layout shape nnz sparsity")


class SparsecError(RuntimeError):
    """A call into the model library failed; `status` is the C status code."""

    def __init__(self, status, status_name, message):
        super().__init__("%s (%s)" % (message or "call failed", status_name))
        self.status = status
        self.status_name = status_name
        self.message = message


def _view(addr, count, dtype, owner, shape=None, writeable=True):
    """A numpy array over `count` elements at `addr` that keeps `owner` alive."""
    ctype = np.ctypeslib.as_ctypes_type(np.dtype(dtype))
    if count == 0 or not addr:
        arr = np.empty(0, dtype)
    else:
        buf = (ctype * count).from_address(addr)
        buf._sparsec_owner = owner  # the view's base holds the model
        arr = np.frombuffer(buf, dtype=dtype, count=count)
    if shape is not None:
        arr = arr.reshape(shape)
    if not writeable:
        arr.flags.writeable = False
    return arr


class Model:
    """One instance of a compiled model: its parameters, gradients and
    optimizer state live in the library's memory.

    ``Model(so_path)`` (or :func:`sparsec.load`) opens ``lib<x>.so`` and reads
    the model's name, inputs, output and parameters from the C header sparsec
    wrote next to it (``lib<x>.h``, or ``<x>.h`` as ``sparsec_add_model``
    names it; ``header=`` overrides). ``name=``, when given, must match.
    ``device="cuda"`` creates the instance on the GPU (``<Model>_create_on``;
    the library must be built with ``--target=cpu,cuda``): parameter views
    are then host copies that the library keeps in sync (docs/cuda.md).
    """

    def __init__(self, so_path, seed=0, header=None, name=None, device=None):
        self.path = os.path.abspath(so_path)
        self.spec = _header.load_spec(self.path, header)
        if name is not None and name != self.spec.name:
            raise ValueError("the header %s is for model '%s', not '%s'"
                             % (self.spec.header, self.spec.name, name))
        self.name = self.spec.name
        self._lib = C.CDLL(self.path)
        self._bind()
        self._handle = C.c_void_p()
        if device is None:
            self._check(self._f["create"](C.c_uint64(seed), C.byref(self._handle)))
        else:
            if "create_on" not in self._f:
                raise ValueError("%s has no %s_create_on: it was compiled by an older sparsec"
                                 % (self.path, self.name))
            self._check(self._f["create_on"](C.c_uint64(seed), str(device).encode(),
                                             C.byref(self._handle)))
        self._layouts = {p.name: p.layout for p in self.spec.params}

    # ctypes prototypes ----------------------------------------------------
    def _bind(self):
        P, I32, I64, D = C.c_void_p, C.c_int32, C.c_int64, C.c_double
        pp = C.POINTER(C.c_void_p)
        n_fwd = len(self.spec.forward_inputs)
        n_all = len(self.spec.inputs)
        protos = {
            "create": (C.c_int, [C.c_uint64, C.POINTER(C.c_void_p)]),
            "destroy": (None, [P]),
            "forward": (C.c_int, [P, I64] + [P] * n_fwd + [P]),
            "train_step": (C.c_int, [P, I64] + [P] * n_all + [C.POINTER(C.c_float)]),
            "set_lr": (C.c_int, [P, D]),
            "get_lr": (C.c_int, [P, C.POINTER(D)]),
            "step_count": (C.c_int, [P, C.POINTER(I64)]),
            "num_params": (C.c_int, [P, C.POINTER(I32)]),
            "param_info": (C.c_int, [P, I32, C.POINTER(C.c_char_p), C.POINTER(I32),
                                     C.POINTER(I64), C.POINTER(I64), C.POINTER(D)]),
            "param_values": (C.c_int, [P, C.c_char_p, pp, C.POINTER(I64)]),
            "param_csr": (C.c_int, [P, C.c_char_p, pp, pp]),
            "param_grad": (C.c_int, [P, C.c_char_p, pp, C.POINTER(I64)]),
            "save": (C.c_int, [P, C.c_char_p]),
            "load": (C.c_int, [P, C.c_char_p]),
            "last_error": (C.c_char_p, []),
            "status_name": (C.c_char_p, [C.c_int]),
        }
        optional = {
            "catch_up": (C.c_int, [P]),
            "current_lr": (C.c_int, [P, C.POINTER(D)]),
            "create_on": (C.c_int, [C.c_uint64, C.c_char_p, C.POINTER(C.c_void_p)]),
            "device": (C.c_int, [P, C.POINTER(C.c_char_p)]),
        }
        self._f = {}
        for table, required in ((protos, True), (optional, False)):
            for suffix, (res, args) in table.items():
                sym = "%s_%s" % (self.name, suffix)
                try:
                    fn = getattr(self._lib, sym)
                except AttributeError:
                    if required:
                        raise _header.HeaderError(
                            "%s does not export %s: the header %s belongs to another "
                            "library" % (self.path, sym, self.spec.header)) from None
                    continue
                fn.restype, fn.argtypes = res, args
                self._f[suffix] = fn

    def _check(self, status):
        if status != 0:
            msg = self._f["last_error"]()
            name = self._f["status_name"](status)
            raise SparsecError(status, (name or b"").decode() or STATUS_NAMES.get(status, "?"),
                               (msg or b"").decode())

    def _h(self):
        if not self._handle:
            raise ValueError("model %s is closed" % self.name)
        return self._handle

    def close(self):
        """Destroys the instance. Views returned earlier must not be used after."""
        if getattr(self, "_handle", None):
            self._f["destroy"](self._handle)
            self._handle = C.c_void_p()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return "<sparsec.Model %s from %s>" % (self.name, self.path)

    @property
    def device(self):
        """Where the parameters live: "cpu", "cuda" or "cuda (emulated on
        the host)" (device= of the constructor; docs/cuda.md)."""
        if "device" not in self._f:
            return "cpu"
        where = C.c_char_p()
        self._check(self._f["device"](self._h(), C.byref(where)))
        return where.value.decode()

    # Inputs, outputs -------------------------------------------------------
    @property
    def inputs(self):
        """Every input and target: list of InputSpec (name, dtype, shape with
        -1 for the batch dimension, is_target, id_bound)."""
        return list(self.spec.inputs)

    @property
    def output_shape(self):
        """Output shape, -1 standing for the batch size."""
        return self.spec.output_shape

    def _gather(self, specs, args, kwargs, what):
        if len(args) > len(specs):
            raise TypeError("%s takes %d inputs (%s), got %d" % (
                what, len(specs), ", ".join(s.name for s in specs), len(args)))
        values = dict(zip([s.name for s in specs], args))
        for k, v in kwargs.items():
            if k not in {s.name for s in specs}:
                raise TypeError("%s got an unknown input '%s' (inputs: %s)" % (
                    what, k, ", ".join(s.name for s in specs)))
            if k in values:
                raise TypeError("%s got input '%s' twice" % (what, k))
            values[k] = v
        missing = [s.name for s in specs if s.name not in values]
        if missing:
            raise TypeError("%s is missing input(s) %s" % (what, ", ".join(missing)))
        return [values[s.name] for s in specs]

    @staticmethod
    def _batch_of(specs, arrays):
        for s, a in zip(specs, arrays):
            shape = np.shape(a)
            if len(shape) == 0:
                raise ValueError("input '%s' must be an array of shape %s, got a scalar"
                                 % (s.name, _fmt(s.shape)))
            return int(shape[0])
        raise ValueError("the model has no inputs")

    @staticmethod
    def _prepare(spec, a, batch, copy, what):
        """The array passed to C for input `spec`: `a` itself when it is a
        C-contiguous, aligned ndarray of the input's dtype, else a converted
        copy (refused with copy=False)."""
        want = spec.shape_for(batch)
        if isinstance(a, np.ndarray) and a.dtype == spec.dtype and \
                a.flags.c_contiguous and a.flags.aligned:
            arr = a
        else:
            src = np.asarray(a)
            if not np.can_cast(src.dtype, spec.dtype, casting="same_kind"):
                raise TypeError("%s: input '%s' must be %s, got %s" % (
                    what, spec.name, spec.dtype, src.dtype))
            if not copy:
                raise ValueError(
                    "%s: input '%s' needs a copy (dtype %s, C-contiguous: %s; the model "
                    "takes C-contiguous %s) and copy=False" % (
                        what, spec.name, src.dtype, src.flags.c_contiguous, spec.dtype))
            if spec.dtype.kind in "iu" and src.dtype.kind in "iu" and src.size and \
                    not np.can_cast(src.dtype, spec.dtype, casting="safe"):
                info = np.iinfo(spec.dtype)
                if int(src.min()) < info.min or int(src.max()) > info.max:
                    raise ValueError("%s: input '%s' has values outside the range of %s" % (
                        what, spec.name, spec.dtype))
            arr = np.ascontiguousarray(src, dtype=spec.dtype)
        if arr.shape != want:
            raise ValueError("%s: input '%s' must have shape %s for batch %d, got %s" % (
                what, spec.name, _fmt(want), batch, _fmt(arr.shape)))
        return arr

    def prepare_inputs(self, *args, train=False, copy=True, **kwargs):
        """The arrays that forward/train_step hand to C (zero-copy when possible)
        and the batch size: (list of arrays, batch)."""
        specs = self.spec.inputs if train else self.spec.forward_inputs
        what = "train_step" if train else "forward"
        arrays = self._gather(specs, args, kwargs, what)
        batch = self._batch_of(specs, arrays)
        if batch <= 0:
            raise ValueError("%s: the batch size must be positive, got %d" % (what, batch))
        return [self._prepare(s, a, batch, copy, what) for s, a in zip(specs, arrays)], batch

    def forward(self, *inputs, out=None, copy=True, **named):
        """Runs the model on a batch; returns the output (float32).

        Inputs (non-target, declaration order) are positional or by name;
        the batch size is their leading dimension. C-contiguous arrays of the
        input's dtype are passed without a copy; others are converted
        (``copy=False`` makes that an error). ``out=`` receives the output in
        place (float32, C-contiguous, the output shape)."""
        arrays, batch = self.prepare_inputs(*inputs, train=False, copy=copy, **named)
        shape = tuple(batch if d == -1 else d for d in self.spec.output_shape)
        if out is None:
            out = np.empty(shape, np.float32)
        elif not (isinstance(out, np.ndarray) and out.dtype == np.float32 and
                  out.flags.c_contiguous and out.flags.writeable and out.shape == shape):
            raise ValueError("forward: out must be a writeable C-contiguous float32 array "
                             "of shape %s" % _fmt(shape))
        ptrs = [a.ctypes.data for a in arrays]
        self._check(self._f["forward"](self._h(), batch, *ptrs, out.ctypes.data))
        return out

    __call__ = forward

    def train_step(self, *inputs, copy=True, **named):
        """One optimizer step on a batch (inputs and targets, declaration order
        or by name); returns the batch's mean loss."""
        arrays, batch = self.prepare_inputs(*inputs, train=True, copy=copy, **named)
        loss = C.c_float()
        ptrs = [a.ctypes.data for a in arrays]
        self._check(self._f["train_step"](self._h(), batch, *ptrs, C.byref(loss)))
        return loss.value

    # Optimizer state -------------------------------------------------------
    @property
    def lr(self):
        """The base learning rate (settable; saved in checkpoints)."""
        v = C.c_double()
        self._check(self._f["get_lr"](self._h(), C.byref(v)))
        return v.value

    @lr.setter
    def lr(self, value):
        self._check(self._f["set_lr"](self._h(), float(value)))

    @property
    def current_lr(self):
        """The learning rate of the next step (schedule and warm-up applied)."""
        if "current_lr" not in self._f:
            return self.lr
        v = C.c_double()
        self._check(self._f["current_lr"](self._h(), C.byref(v)))
        return v.value

    @property
    def step_count(self):
        v = C.c_int64()
        self._check(self._f["step_count"](self._h(), C.byref(v)))
        return v.value

    def catch_up(self):
        """Applies skipped steps of lagging embedding rows (sparse = catchup)."""
        if "catch_up" in self._f:
            self._check(self._f["catch_up"](self._h()))

    # Parameters ------------------------------------------------------------
    def param_info(self):
        """List of ParamInfo, in declaration order."""
        count = C.c_int32()
        self._check(self._f["num_params"](self._h(), C.byref(count)))
        out = []
        for i in range(count.value):
            name, rank = C.c_char_p(), C.c_int32()
            dims, nnz, sp = (C.c_int64 * 4)(), C.c_int64(), C.c_double()
            self._check(self._f["param_info"](self._h(), i, C.byref(name), C.byref(rank),
                                              dims, C.byref(nnz), C.byref(sp)))
            n = name.value.decode()
            out.append(ParamInfo(n, self._layout(n), tuple(dims[:rank.value]), nnz.value,
                                 sp.value))
        return out

    def _layout(self, name):
        layout = self._layouts.get(name)
        if layout is None:  # header without the parameter list: ask the library
            pos, crd = C.c_void_p(), C.c_void_p()
            ok = self._f["param_csr"](self._h(), name.encode(), C.byref(pos), C.byref(crd))
            layout = "csr" if ok == 0 else "dense"
        return layout

    def _info(self, name):
        for p in self.param_info():
            if p.name == name:
                return p
        raise KeyError("model %s has no parameter '%s' (parameters: %s)" % (
            self.name, name, ", ".join(p.name for p in self.param_info())))

    @property
    def param_names(self):
        return [p.name for p in self.param_info()]

    def param(self, name):
        """Zero-copy view of a parameter's values: the dense shape for dense
        and embedding parameters, [nnz] for CSR ones (see csr()). Writes go
        to the model."""
        info = self._info(name)
        ptr, count = C.c_void_p(), C.c_int64()
        self._check(self._f["param_values"](self._h(), name.encode(), C.byref(ptr),
                                            C.byref(count)))
        shape = (count.value,) if info.layout == "csr" else info.shape
        return _view(ptr.value, count.value, np.float32, self, shape)

    @property
    def params(self) -> Dict[str, np.ndarray]:
        """{name: zero-copy view} of every parameter (see param())."""
        return {n: self.param(n) for n in self.param_names}

    def csr(self, name):
        """(crow_indices[rows+1], col_indices[nnz], values[nnz]) of a CSR
        parameter; int32 index views are read-only, values are writeable.
        All three are views of the model's memory."""
        info = self._info(name)
        if info.layout != "csr":
            raise ValueError("parameter '%s' is %s, not csr" % (name, info.layout))
        pos, crd = C.c_void_p(), C.c_void_p()
        self._check(self._f["param_csr"](self._h(), name.encode(), C.byref(pos),
                                         C.byref(crd)))
        return (_view(pos.value, info.shape[0] + 1, np.int32, self, writeable=False),
                _view(crd.value, info.nnz, np.int32, self, writeable=False),
                self.param(name))

    def grad(self, name):
        """Read-only view of the gradient of the last train_step (CSR: [nnz];
        embedding: [ids of the last batch, dim], uncoalesced)."""
        info = self._info(name)
        ptr, count = C.c_void_p(), C.c_int64()
        self._check(self._f["param_grad"](self._h(), name.encode(), C.byref(ptr),
                                          C.byref(count)))
        if info.layout == "csr":
            shape = (count.value,)
        elif info.layout == "embedding":
            shape = (count.value // info.shape[1], info.shape[1])
        else:
            shape = info.shape
        return _view(ptr.value, count.value, np.float32, self, shape, writeable=False)

    def dense(self, name):
        """A dense copy of a parameter (CSR values scattered into zeros)."""
        info = self._info(name)
        if info.layout != "csr":
            return self.param(name).copy()
        crow, col, vals = self.csr(name)
        out = np.zeros(info.shape, np.float32)
        out[_rows(crow), col] = vals
        return out

    # Checkpoints -----------------------------------------------------------
    def save(self, path):
        """Writes a safetensors checkpoint (atomic)."""
        self._check(self._f["save"](self._h(), os.fsencode(path)))

    def load(self, path):
        """Loads a checkpoint; nothing changes unless the whole file is valid.
        CSR patterns are taken from the file (same nnz)."""
        self._check(self._f["load"](self._h(), os.fsencode(path)))

    def checkpoint_metadata(self):
        """The __metadata__ this model writes (format, model, abi, step, lr,
        crc32, NAME.size), read back from a temporary checkpoint."""
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "m.safetensors")
            self.save(p)
            return _ckpt.read_metadata(p)

    # PyTorch ---------------------------------------------------------------
    def to_state_dict(self, copy=False):
        """{name: torch.Tensor}: dense and embedding parameters as strided
        tensors, CSR parameters as torch.sparse_csr_tensor (int32 indices).
        With copy=False (default) the value tensors share the model's memory,
        like torch.nn.Module.state_dict(). Lagging embedding rows
        (sparse = catchup) are brought up to date first."""
        from ._torch import to_state_dict
        return to_state_dict(self, copy)

    def load_state_dict(self, state_dict, strict=True):
        """Copies parameters from a state dict (torch tensors or numpy arrays).

        Dense/embedding parameters take dense tensors (sparse ones are
        densified). A CSR parameter takes a sparse CSR tensor with the
        model's pattern, a sparse COO tensor or a dense tensor whose nonzeros
        lie inside the model's pattern (missing positions become 0), or the
        checkpoint triple NAME.crow_indices / NAME.col_indices / NAME.values.
        Anything else raises ValueError (use a checkpoint, load(), to change
        a CSR pattern). ``optimizer.*`` entries are ignored. Everything is
        checked before any parameter changes; strict=True also rejects
        missing and unexpected keys. Optimizer state is kept."""
        from ._torch import load_state_dict
        return load_state_dict(self, state_dict, strict)


def _rows(crow):
    crow = np.asarray(crow, np.int64)
    return np.repeat(np.arange(len(crow) - 1), np.diff(crow))


def _fmt(shape):
    return "[" + ", ".join("B" if d == -1 else str(d) for d in shape) + "]"


def load(so_path, seed=0, header=None, name=None, device=None) -> Model:
    """Opens a model library and creates an instance (see Model); `device`
    "cuda" puts it on the GPU (a library built with --target=cpu,cuda)."""
    return Model(so_path, seed=seed, header=header, name=name, device=device)
