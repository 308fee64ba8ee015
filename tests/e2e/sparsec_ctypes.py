"""ctypes access to a sparsec-generated model library (test harness).

Loads `lib<Model>.so`, and wraps the `<Model>_*` C entry points: create
(or create_on a device),
forward, train_step, parameter values/CSR structure/gradients by name, lr
(base and scheduled), catch-up, save, load. Parameters are exposed as zero-copy numpy views.
"""
import ctypes as C

import numpy as np

_DTYPES = {np.float32: C.c_float, np.int64: C.c_int64, np.int32: C.c_int32}


class SparsecError(RuntimeError):
    def __init__(self, status, message):
        super().__init__(f"status {status}: {message}")
        self.status = status
        self.message = message


class Model:
    def __init__(self, so_path, name, seed=0, device=None):
        """`device`: None (<Model>_create) or a device name for
        <Model>_create_on ("cpu", "cuda")."""
        self.lib = C.CDLL(so_path)
        self.name = name
        self._fn("last_error").restype = C.c_char_p
        self.handle = C.c_void_p()
        if device is None:
            status = self._fn("create")(C.c_uint64(seed), C.byref(self.handle))
        else:
            status = self._fn("create_on")(C.c_uint64(seed), device.encode(),
                                           C.byref(self.handle))
        self._check(status)

    def device(self):
        where = C.c_char_p()
        self._check(self._fn("device")(self.handle, C.byref(where)))
        return where.value.decode()

    def _fn(self, suffix):
        return getattr(self.lib, f"{self.name}_{suffix}")

    def last_error(self):
        return self._fn("last_error")().decode()

    def _check(self, status):
        if status != 0:
            raise SparsecError(status, self.last_error())

    def close(self):
        if self.handle:
            self._fn("destroy")(self.handle)
            self.handle = C.c_void_p()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    # Parameters -----------------------------------------------------------
    def param_info(self):
        count = C.c_int32()
        self._check(self._fn("num_params")(self.handle, C.byref(count)))
        infos = []
        for i in range(count.value):
            name, rank = C.c_char_p(), C.c_int32()
            dims, nnz, sp = (C.c_int64 * 4)(), C.c_int64(), C.c_double()
            self._check(self._fn("param_info")(
                self.handle, C.c_int32(i), C.byref(name), C.byref(rank), dims,
                C.byref(nnz), C.byref(sp)))
            infos.append(dict(name=name.value.decode(),
                              shape=tuple(dims[:rank.value]), nnz=nnz.value,
                              sparsity=sp.value))
        return infos

    def values(self, name):
        ptr, count = C.POINTER(C.c_float)(), C.c_int64()
        self._check(self._fn("param_values")(
            self.handle, name.encode(), C.byref(ptr), C.byref(count)))
        return np.ctypeslib.as_array(ptr, shape=(count.value,))

    def csr(self, name, rows, nnz):
        pos, crd = C.POINTER(C.c_int32)(), C.POINTER(C.c_int32)()
        self._check(self._fn("param_csr")(
            self.handle, name.encode(), C.byref(pos), C.byref(crd)))
        return (np.ctypeslib.as_array(pos, shape=(rows + 1,)).copy(),
                np.ctypeslib.as_array(crd, shape=(nnz,)).copy())

    def grad(self, name):
        ptr, count = C.POINTER(C.c_float)(), C.c_int64()
        self._check(self._fn("param_grad")(
            self.handle, name.encode(), C.byref(ptr), C.byref(count)))
        return np.ctypeslib.as_array(ptr, shape=(count.value,)).copy()

    def dense_weight(self, info):
        """The parameter as a dense numpy array (CSR scattered)."""
        vals = self.values(info["name"])
        shape = info["shape"]
        if info["nnz"] == int(np.prod(shape)):
            return vals.reshape(shape).copy()
        pos, crd = self.csr(info["name"], shape[0], info["nnz"])
        dense = np.zeros(shape, np.float32)
        for r in range(shape[0]):
            dense[r, crd[pos[r]:pos[r + 1]]] = vals[pos[r]:pos[r + 1]]
        return dense

    # Steps ----------------------------------------------------------------
    # `inputs` lists arrays in the C API's order; None passes a NULL pointer.
    # `batch` defaults to the first array's leading dimension.
    @staticmethod
    def _ptrs(arrays):
        return [None if a is None else a.ctypes.data_as(C.c_void_p)
                for a in arrays]

    @staticmethod
    def _prepare(inputs, batch):
        inputs = [None if a is None else np.ascontiguousarray(a)
                  for a in inputs]
        if batch is None:
            batch = next(a for a in inputs if a is not None).shape[0]
        return inputs, batch

    def forward(self, inputs, out_shape, batch=None):
        inputs, batch = self._prepare(inputs, batch)
        out = np.zeros(out_shape, np.float32)
        self._check(self._fn("forward")(self.handle, C.c_int64(batch),
                                        *self._ptrs(inputs),
                                        out.ctypes.data_as(C.c_void_p)))
        return out

    def train_step(self, inputs, batch=None):
        inputs, batch = self._prepare(inputs, batch)
        loss = C.c_float()
        self._check(self._fn("train_step")(self.handle, C.c_int64(batch),
                                           *self._ptrs(inputs), C.byref(loss)))
        return loss.value

    def step_count(self):
        steps = C.c_int64()
        self._check(self._fn("step_count")(self.handle, C.byref(steps)))
        return steps.value

    def get_lr(self):
        lr = C.c_double()
        self._check(self._fn("get_lr")(self.handle, C.byref(lr)))
        return lr.value

    def current_lr(self):
        """The scheduled learning rate of the next step."""
        lr = C.c_double()
        self._check(self._fn("current_lr")(self.handle, C.byref(lr)))
        return lr.value

    def catch_up(self):
        """Applies the skipped steps of lagging embedding rows (catchup)."""
        self._check(self._fn("catch_up")(self.handle))

    def set_lr(self, lr):
        self._check(self._fn("set_lr")(self.handle, C.c_double(lr)))

    def save(self, path):
        self._check(self._fn("save")(self.handle, str(path).encode()))

    def load(self, path):
        self._check(self._fn("load")(self.handle, str(path).encode()))
