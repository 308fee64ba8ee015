"""State dicts: model parameters <-> torch tensors (or numpy arrays)."""
import warnings
from collections import namedtuple

import numpy as np

#: What load_state_dict returns (as torch.nn.Module.load_state_dict).
IncompatibleKeys = namedtuple("IncompatibleKeys", "missing_keys unexpected_keys")


def _torch():
    try:
        import torch
    except ImportError as e:  # pragma: no cover - depends on the system
        raise ImportError("sparsec: to_state_dict needs PyTorch (python3-torch or "
                          "pip install torch)") from e
    return torch


def _is_torch(x):
    mod = type(x).__module__
    return mod.startswith("torch")


def to_state_dict(model, copy):
    torch = _torch()
    model.catch_up()
    sd = {}
    for info in model.param_info():
        if info.layout == "csr":
            crow, col, vals = model.csr(info.name)
            values = torch.from_numpy(vals.copy() if copy else vals)
            with warnings.catch_warnings():  # "Sparse CSR tensor support is in beta"
                warnings.simplefilter("ignore", UserWarning)
                sd[info.name] = torch.sparse_csr_tensor(
                    torch.from_numpy(crow.copy()), torch.from_numpy(col.copy()), values,
                    size=info.shape, dtype=torch.float32)
        else:
            v = model.param(info.name)
            sd[info.name] = torch.from_numpy(v.copy() if copy else v)
    return sd


def _layout(x):
    """'dense', 'coo' or 'csr' for a torch tensor or numpy array."""
    if _is_torch(x):
        torch = _torch()
        if x.layout == torch.sparse_coo:
            return "coo"
        if x.layout == torch.sparse_csr:
            return "csr"
        if x.layout != torch.strided:
            raise ValueError("unsupported tensor layout %s" % x.layout)
    return "dense"


def _np(x, dtype=None):
    if _is_torch(x):
        x = x.detach().cpu()
        if dtype is not None and x.is_floating_point():
            x = x.float()
        x = x.numpy()
    x = np.asarray(x)
    return x if dtype is None else x.astype(dtype, copy=False)


def _dense_values(name, shape, x):
    kind = _layout(x)
    if kind != "dense":
        x = x.to_dense()
    arr = _np(x, np.float32)
    if tuple(arr.shape) != tuple(shape):
        raise ValueError("'%s': shape %s, the model's parameter has %s" % (
            name, list(arr.shape), list(shape)))
    return arr


def _csr_values(name, info, crow, col, x):
    """Values of CSR parameter `name` (pattern crow/col) from `x`."""
    rows, cols = info.shape
    kind = _layout(x)
    if kind == "csr":
        xc, xi = _np(x.crow_indices()), _np(x.col_indices())
        if tuple(x.shape) != (rows, cols):
            raise ValueError("'%s': shape %s, the model's parameter has %s" % (
                name, list(x.shape), [rows, cols]))
        if xc.shape != crow.shape or xi.shape != col.shape or \
                not np.array_equal(xc, crow) or not np.array_equal(xi, col):
            raise ValueError(
                "'%s': the CSR tensor's sparsity pattern differs from the model's "
                "(nnz %d vs %d); a pattern can only be replaced through a checkpoint "
                "(Model.load)" % (name, xi.shape[0], col.shape[0]))
        return _np(x.values(), np.float32)
    if kind == "coo":
        x = x.coalesce()
        if tuple(x.shape) != (rows, cols):
            raise ValueError("'%s': shape %s, the model's parameter has %s" % (
                name, list(x.shape), [rows, cols]))
        idx = _np(x.indices()).astype(np.int64)
        v = _np(x.values(), np.float32)
        lin = idx[0] * cols + idx[1]
        pattern = _pattern_linear(crow, col, cols)
        pos = np.searchsorted(pattern, lin)
        pos_c = np.minimum(pos, max(len(pattern) - 1, 0))
        inside = (pos < len(pattern)) & (pattern[pos_c] == lin) if len(pattern) else \
            np.zeros(len(lin), bool)
        outside = ~inside & (v != 0)
        if outside.any():
            k = int(np.argmax(outside))
            raise ValueError(
                "'%s': the COO tensor has %d nonzero(s) outside the model's sparsity "
                "pattern, e.g. at (%d, %d)" % (name, int(outside.sum()), idx[0][k], idx[1][k]))
        out = np.zeros(len(pattern), np.float32)
        out[pos[inside]] = v[inside]
        return out
    arr = _dense_values(name, (rows, cols), x)
    mask = np.zeros((rows, cols), bool)
    r = np.repeat(np.arange(rows), np.diff(crow.astype(np.int64)))
    mask[r, col] = True
    bad = (arr != 0) & ~mask
    if bad.any():
        rr, cc = np.argwhere(bad)[0]
        raise ValueError(
            "'%s': the dense tensor has %d nonzero(s) outside the model's sparsity "
            "pattern, e.g. at (%d, %d)" % (name, int(bad.sum()), rr, cc))
    return arr[r, col]


def _pattern_linear(crow, col, cols):
    r = np.repeat(np.arange(len(crow) - 1, dtype=np.int64), np.diff(crow.astype(np.int64)))
    return r * cols + col.astype(np.int64)


def load_state_dict(model, sd, strict):
    infos = model.param_info()
    keys = set(sd.keys())
    used, updates, missing = set(), [], []
    for info in infos:
        n = info.name
        if info.layout == "csr":
            crow, col, _ = model.csr(n)
            triple = [n + ".crow_indices", n + ".col_indices", n + ".values"]
            if n in sd:
                vals = _csr_values(n, info, crow, col, sd[n])
                used.add(n)
            elif all(k in sd for k in triple):
                xc, xi = _np(sd[triple[0]]), _np(sd[triple[1]])
                if not (np.array_equal(xc, crow) and np.array_equal(xi, col)):
                    raise ValueError(
                        "'%s': crow_indices/col_indices differ from the model's sparsity "
                        "pattern; a pattern can only be replaced through a checkpoint "
                        "(Model.load)" % n)
                vals = _np(sd[triple[2]], np.float32).reshape(-1)
                used.update(triple)
            else:
                missing.append(n)
                continue
            if vals.shape != (info.nnz,):
                raise ValueError("'%s': %d values, the model stores %d" % (
                    n, vals.size, info.nnz))
        else:
            if n not in sd:
                missing.append(n)
                continue
            vals = _dense_values(n, info.shape, sd[n])
            used.add(n)
        if not np.all(np.isfinite(vals)):
            raise ValueError("'%s' has non-finite values" % n)
        updates.append((n, vals))
    unexpected = sorted(k for k in keys - used if not str(k).startswith("optimizer."))
    if strict and (missing or unexpected):
        raise KeyError("load_state_dict: missing keys %s, unexpected keys %s" % (
            missing, unexpected))
    for n, vals in updates:  # everything checked: now write
        model.param(n)[...] = vals.reshape(model.param(n).shape)
    return IncompatibleKeys(missing, unexpected)
