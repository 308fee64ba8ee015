#!/usr/bin/env python3
"""PyTorch oracle for the runtime's SGD: drives libsparsec_runtime through
its C ABI with ctypes (a descriptor whose train kernel, written here in
Python, hands the runtime chosen gradients) and checks every parameter
after every step against torch.optim.SGD for all option combinations:

  * a dense parameter and the values of a CSR parameter: torch.optim.SGD on
    the same tensors;
  * an embedding table with lazy semantics: each row is its own torch
    parameter with its own torch.optim.SGD, stepped only when the batch
    touches it, with the coalesced (duplicate-summed) row gradient; for
    plain SGD the table takes torch's uncoalesced sparse COO gradient.

Usage: sgd_torch_oracle.py LIBSPARSEC_RUNTIME_SO. Exits 77 (skipped) when
torch or numpy is missing.
"""
import ctypes as C
import itertools
import sys

try:
    import numpy as np
    import torch
except ImportError as e:  # pragma: no cover
    print("skipped: %s" % e)
    sys.exit(77)

MAX_RANK = 4
F32, I64 = 0, 3
DENSE, CSR, EMB = 0, 1, 2
ZEROS = 0
Dims = C.c_int64 * MAX_RANK
KERNEL = C.CFUNCTYPE(C.c_int, C.POINTER(C.c_void_p), C.c_int64)


class InputDesc(C.Structure):
    _fields_ = [("name", C.c_char_p), ("dtype", C.c_int), ("rank", C.c_int32), ("dims", Dims),
                ("is_target", C.c_int32), ("id_bound", C.c_int64)]


class ParamDesc(C.Structure):
    _fields_ = [("name", C.c_char_p), ("layout", C.c_int), ("rank", C.c_int32), ("dims", Dims),
                ("nnz", C.c_int64), ("init", C.c_int), ("init_a", C.c_double),
                ("ids_input", C.c_int32)]


class OptDesc(C.Structure):
    _fields_ = [("kind", C.c_int), ("lr", C.c_double), ("momentum", C.c_double),
                ("dampening", C.c_double), ("weight_decay", C.c_double), ("nesterov", C.c_int32)]


class ModelDesc(C.Structure):
    _fields_ = [("abi_version", C.c_int32), ("name", C.c_char_p), ("num_inputs", C.c_int32),
                ("inputs", C.POINTER(InputDesc)), ("num_params", C.c_int32),
                ("params", C.POINTER(ParamDesc)), ("output_rank", C.c_int32),
                ("output_dims", Dims), ("optimizer", OptDesc), ("forward", KERNEL),
                ("train", KERNEL)]


ROWS, DIM, BAG = 8, 2, 2
W_SHAPE, S_SHAPE, S_NNZ = (5, 3), (4, 6), 9


def run(lib, opts, steps=6, seed=0):
    lr, momentum, dampening, wd, nesterov = opts
    rng = np.random.default_rng(seed)
    grads = {}  # filled per step, read by the kernel

    def train(bufs, batch):
        w_g = C.cast(bufs[6], C.POINTER(C.c_float))
        s_g = C.cast(bufs[7], C.POINTER(C.c_float))
        e_g = C.cast(bufs[8], C.POINTER(C.c_float))
        for name, ptr in (("w", w_g), ("s", s_g), ("e", e_g)):
            flat = grads[name].ravel()
            C.memmove(ptr, flat.ctypes.data, flat.nbytes)
        C.cast(bufs[9], C.POINTER(C.c_float))[0] = 1.0
        return 0

    train_fn = KERNEL(train)
    inputs = (InputDesc * 1)(InputDesc(b"ids", I64, 2, Dims(-1, BAG), 0, ROWS))
    params = (ParamDesc * 3)(
        ParamDesc(b"w", DENSE, 2, Dims(*W_SHAPE), W_SHAPE[0] * W_SHAPE[1], ZEROS, 0, 0),
        ParamDesc(b"s", CSR, 2, Dims(*S_SHAPE), S_NNZ, ZEROS, 0, 0),
        ParamDesc(b"e", EMB, 2, Dims(ROWS, DIM), ROWS * DIM, ZEROS, 0, 0))
    desc = ModelDesc(1, b"Oracle", 1, inputs, 3, params, 1, Dims(-1),
                     OptDesc(0, lr, momentum, dampening, wd, int(nesterov)), KERNEL(), train_fn)
    model = C.c_void_p()
    assert lib.sparsec_create(C.byref(desc), 7, C.byref(model)) == 0, lib.sparsec_last_error()

    def values(name, n):
        ptr, count = C.POINTER(C.c_float)(), C.c_int64()
        assert lib.sparsec_param_values(model, name, C.byref(ptr), C.byref(count)) == 0
        assert count.value == n
        return np.ctypeslib.as_array(ptr, shape=(n,))

    w0 = rng.standard_normal(W_SHAPE).astype(np.float32)
    s0 = rng.standard_normal(S_NNZ).astype(np.float32)
    e0 = rng.standard_normal((ROWS, DIM)).astype(np.float32)
    values(b"w", w0.size)[:] = w0.ravel()  # zero-copy writes
    values(b"s", S_NNZ)[:] = s0
    values(b"e", e0.size)[:] = e0.ravel()

    kw = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=wd, nesterov=nesterov)
    tw = torch.nn.Parameter(torch.tensor(w0))
    ts = torch.nn.Parameter(torch.tensor(s0))
    opt = torch.optim.SGD([tw, ts], **kw)
    plain = momentum == 0 and wd == 0
    if plain:
        te = torch.nn.Parameter(torch.tensor(e0))
        opt_e = torch.optim.SGD([te], lr=lr)
    else:
        rows = [torch.nn.Parameter(torch.tensor(e0[r])) for r in range(ROWS)]
        opt_rows = [torch.optim.SGD([rows[r]], **kw) for r in range(ROWS)]

    for step in range(steps):
        batch = int(rng.integers(1, 5))
        ids = rng.integers(0, ROWS - 2, size=(batch, BAG)).astype(np.int64)  # rows 6, 7 untouched
        grads["w"] = rng.standard_normal(W_SHAPE).astype(np.float32)
        grads["s"] = rng.standard_normal(S_NNZ).astype(np.float32)
        grads["e"] = rng.standard_normal((batch * BAG, DIM)).astype(np.float32)
        loss = C.c_float()
        ptrs = (C.c_void_p * 1)(ids.ctypes.data)
        rc = lib.sparsec_train_step(model, batch, ptrs, C.byref(loss))
        assert rc == 0, lib.sparsec_last_error()

        tw.grad = torch.tensor(grads["w"])
        ts.grad = torch.tensor(grads["s"])
        opt.step()
        flat = ids.ravel()
        if plain:
            te.grad = torch.sparse_coo_tensor(torch.tensor(flat)[None, :],
                                              torch.tensor(grads["e"]), (ROWS, DIM))
            opt_e.step()
            want_e = te.detach().numpy()
        else:
            for r in sorted(set(flat.tolist())):
                g = np.zeros(DIM, dtype=np.float32)
                for i in np.nonzero(flat == r)[0]:  # batch order, as the runtime sums
                    g = g + grads["e"][i]
                rows[r].grad = torch.tensor(g)
                opt_rows[r].step()
            want_e = torch.stack([p.detach() for p in rows]).numpy()
        for name, got, want in (("w", values(b"w", w0.size), tw.detach().numpy().ravel()),
                                ("s", values(b"s", S_NNZ), ts.detach().numpy()),
                                ("e", values(b"e", e0.size), want_e.ravel())):
            if not np.allclose(got, want, rtol=2e-6, atol=2e-7):
                diff = np.max(np.abs(got - want))
                raise AssertionError("%s differs from torch at step %d for %s (max %g)"
                                     % (name, step, opts, diff))
        assert np.array_equal(values(b"e", e0.size).reshape(ROWS, DIM)[6:], e0[6:])
    lib.sparsec_destroy(model)


def main():
    lib = C.CDLL(sys.argv[1])
    lib.sparsec_last_error.restype = C.c_char_p
    lib.sparsec_create.argtypes = [C.c_void_p, C.c_uint64, C.c_void_p]
    lib.sparsec_train_step.argtypes = [C.c_void_p, C.c_int64, C.c_void_p, C.c_void_p]
    lib.sparsec_param_values.argtypes = [C.c_void_p, C.c_char_p, C.c_void_p, C.c_void_p]
    lib.sparsec_destroy.argtypes = [C.c_void_p]
    count = 0
    for momentum, dampening, nesterov, wd in itertools.product(
            (0.0, 0.9), (0.0, 0.3), (False, True), (0.0, 0.05)):
        if nesterov and (momentum == 0 or dampening != 0):
            continue
        for seed in range(3):
            run(lib, (0.1, momentum, dampening, wd, nesterov), seed=seed)
            count += 1
    print("%d passed, 0 failed" % count)


if __name__ == "__main__":
    main()
