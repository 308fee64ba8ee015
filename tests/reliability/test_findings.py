"""Open findings of the reliability work (docs/reliability.md, "Findings"),
one executable reproducer each, marked @unittest.expectedFailure: the suite
stays green while a finding is open, and reports an "unexpected success"
once the fix lands -- then remove the marker, and the test guards against
the regression.

R-1  `amsgrad = true` / `centered = true` reach the runtime descriptor as
     -1 (OptimizerOp::getNumber reads a BoolAttr through IntegerAttr::getInt,
     which sign-extends i1), so create refuses every such model.
R-2  <M>_param_info with a NULL output pointer returns SPARSEC_ERR_NULL with
     an empty last_error message (the generated glue checks the pointers
     after sparsec_param_info_at succeeded and cleared the message).
R-3  sparsec_load on a FIFO (or another file that blocks on open/read)
     never returns: it should refuse anything but a regular file.
R-4  In `sparse = catchup` models the generated <M>_forward calls
     sparsec_catch_up before the call is validated, so a rejected forward
     (batch 0, NULL, id out of range, NaN) changes the parameters and the
     optimizer state (and, as catch-up in several pieces is not bitwise
     equal to one piece, the rest of the training run).
R-5  sparsec accepts sparse_linear(65536, 32768, sparsity = 0, bias = false):
     2^31 weights is within the 2^31-element limit, but the runtime stores
     CSR coordinates as int32 and refuses nnz > INT32_MAX at create.

Run: /usr/bin/python3 -m unittest -v test_findings  (from tests/reliability)
"""
import os
import tempfile
import unittest

import numpy as np

import reliability_util as U

FLAGS_MODEL = """model Flags{kind} {{
  input  x : f32[B, 4]
  target y : f32[B, 2]
  param fc : linear(4, 2)
  forward {{
    out = fc(x)
    return out
  }}
  loss = mse(out, y)
  optimizer = {opt}
}}
"""


class OpenFindingsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        U.workdir()
        U.scratchdir()

    @unittest.expectedFailure
    def test_R1_true_optimizer_flags_create(self):
        for kind, opt in (("Amsgrad", "adam(lr = 0.01, amsgrad = true)"),
                          ("Centered", "rmsprop(lr = 0.01, centered = true)")):
            lib = U.compile_text(f"flags_{kind.lower()}",
                                 FLAGS_MODEL.format(kind=kind, opt=opt)).lib()
            h = U.P()
            rc = lib.fn("create")(1, U.C.byref(h))
            self.assertEqual(rc, U.OK, f"{kind}: {lib.error()}")
            lib.destroy(h)

    @unittest.expectedFailure
    def test_R2_param_info_null_output_has_a_message(self):
        lib = U.compile_model("rel_sgd").lib()
        h = lib.create(1)
        i32, i64, d, name = U.I32(), U.I64(), U.DBL(), U.CHARP()
        dims = (U.I64 * 4)()
        rc = lib.fn("param_info")(h, 0, None, U.C.byref(i32), dims,
                                  U.C.byref(i64), U.C.byref(d))
        self.assertEqual(rc, U.ERR_NULL)
        self.assertNotEqual(lib.error(), "", "ERR_NULL without a message")

    @unittest.expectedFailure
    def test_R3_load_of_a_fifo_returns(self):
        lib = U.compile_model("rel_sgd").lib()
        tmp = tempfile.mkdtemp(dir=U.scratchdir())
        fifo = os.path.join(tmp, "fifo.st")
        os.mkfifo(fifo)

        def child():
            h = lib.create(1)
            return lib.fn("load")(h, fifo.encode()), lib.error()
        kind, got = U.in_child(child, timeout=5)
        self.assertEqual(kind, "ok", f"load of a FIFO without a writer: {kind}")
        self.assertIn(got[0], (U.ERR_IO, U.ERR_FORMAT), got[1])

    @unittest.expectedFailure
    def test_R4_rejected_forward_changes_nothing_in_catchup_models(self):
        lib = U.compile_model("rel_adam").lib()
        self.assertTrue(lib.c.catchup)
        h = lib.create(3)
        for b, data in U.batches(lib, [5, 2, 7], 3):
            self.assertEqual(lib.train_step(h, b, data)[0], U.OK)
        before = lib.digest(h)
        _, data = U.batches(lib, [4], 4)[0]
        rc, _ = lib.forward(h, 0, data)
        self.assertEqual(rc, U.ERR_INVALID_ARG)
        self.assertEqual(lib.digest(h), before,
                         "a forward rejected for batch 0 changed the instance")

    @unittest.expectedFailure
    def test_R5_csr_nnz_2e31_is_rejected_at_compile_time_or_creatable(self):
        text = """model Csr2e31 {
  input  x : f32[B, 65536]
  target y : i64[B]
  param p : sparse_linear(65536, 32768, sparsity = 0, bias = false)
  param head : linear(32768, 3)
  forward {
    logits = head(p(x))
    return logits
  }
  loss = cross_entropy(logits, y)
  optimizer = sgd(lr = 0.1)
}
"""
        try:
            lib = U.compile_text("csr2e31", text).lib()
        except AssertionError as e:     # rejected at compile time: fixed
            self.assertIn("error:", str(e))
            return

        def create():
            import resource
            with open("/proc/self/maps") as f:
                if "libclang_rt.asan" not in f.read():
                    resource.setrlimit(resource.RLIMIT_AS, (1 << 34, 1 << 34))
            h = U.P()
            return lib.fn("create")(1, U.C.byref(h)), lib.error()
        kind, got = U.in_child(create, timeout=120)
        self.assertEqual(kind, "ok", got)
        self.assertIn(got[0], (U.OK, U.ERR_NOMEM),
                      f"sparsec compiled it, create refuses it: {got[1]}")


if __name__ == "__main__":
    unittest.main()
