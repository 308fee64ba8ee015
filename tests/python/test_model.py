"""sparsec Python package: loading, header discovery, forward/train_step,
zero-copy inputs, outputs and parameter views, errors, checkpoints."""
import os
import shutil
import unittest

from common import model_so, rel_err, sparsec, sparsec_exe, tiny_batch, tmpdir, np


class LoadTest(unittest.TestCase):
    def test_spec_from_header(self):
        m = sparsec.load(model_so("tiny"))
        self.assertEqual(m.name, "Tiny")
        self.assertEqual([(i.name, i.dtype, i.shape, i.is_target) for i in m.inputs],
                         [("x", np.float32, (-1, 12), False), ("y", np.int64, (-1,), True)])
        self.assertEqual(m.inputs[1].id_bound, 3)  # class labels of cross_entropy
        self.assertEqual(m.output_shape, (-1, 3))
        info = m.param_info()
        self.assertEqual([(p.name, p.layout, p.shape) for p in info],
                         [("fc1.weight", "csr", (16, 12)), ("fc1.bias", "dense", (16,)),
                          ("fc2.weight", "dense", (3, 16)), ("fc2.bias", "dense", (3,))])
        self.assertEqual(info[0].nnz, 48)  # round(0.25 * 12 * 16)
        self.assertAlmostEqual(info[0].sparsity, 0.75)
        self.assertEqual(info[2].nnz, 48)
        self.assertEqual(m.step_count, 0)
        self.assertAlmostEqual(m.lr, 0.1)

    def test_header_next_to_library_both_namings(self):
        # sparsec -o DIR/libtiny.so writes DIR/libtiny.h; sparsec_add_model
        # writes DIR/libtiny.so + DIR/tiny.h. Both are found.
        d = tmpdir()
        so = os.path.join(d, "libtiny.so")
        shutil.copy(model_so("tiny"), so)
        shutil.copy(model_so("tiny")[:-3] + ".h", os.path.join(d, "tiny.h"))
        self.assertEqual(sparsec.load(so).name, "Tiny")
        os.rename(os.path.join(d, "tiny.h"), os.path.join(d, "elsewhere.h"))
        with self.assertRaisesRegex(sparsec.HeaderError, "cannot find the header"):
            sparsec.load(so)
        m = sparsec.load(so, header=os.path.join(d, "elsewhere.h"), name="Tiny")
        self.assertEqual(m.name, "Tiny")
        with self.assertRaisesRegex(ValueError, "not 'Other'"):
            sparsec.load(so, header=os.path.join(d, "elsewhere.h"), name="Other")

    def test_foreign_header_is_rejected(self):
        d = tmpdir()
        so = os.path.join(d, "libtiny.so")
        shutil.copy(model_so("tiny"), so)
        shutil.copy(model_so("emb")[:-3] + ".h", os.path.join(d, "libtiny.h"))
        with self.assertRaisesRegex(sparsec.HeaderError, "does not export Emb_create"):
            sparsec.load(so)

    def test_same_seed_same_parameters(self):
        a, b, c = (sparsec.load(model_so("tiny"), seed=s) for s in (7, 7, 8))
        for n in a.param_names:
            np.testing.assert_array_equal(a.param(n), b.param(n))
        self.assertFalse(np.array_equal(a.param("fc2.weight"), c.param("fc2.weight")))


class ZeroCopyTest(unittest.TestCase):
    def setUp(self):
        self.m = sparsec.load(model_so("tiny"), seed=1)

    def test_inputs_are_passed_without_copies(self):
        x, y = tiny_batch()
        arrays, batch = self.m.prepare_inputs(x, y, train=True, copy=False)
        self.assertEqual(batch, 8)
        self.assertIs(arrays[0], x)
        self.assertIs(arrays[1], y)
        # keyword form, forward: same
        arrays, _ = self.m.prepare_inputs(x=x, copy=False)
        self.assertIs(arrays[0], x)

    def test_conversions_copy_or_refuse(self):
        x, y = tiny_batch()
        x64 = x.astype(np.float64)
        arrays, _ = self.m.prepare_inputs(x64)
        self.assertFalse(np.shares_memory(arrays[0], x64))
        np.testing.assert_array_equal(arrays[0], x)
        with self.assertRaisesRegex(ValueError, "needs a copy"):
            self.m.forward(x64, copy=False)
        xf = np.asfortranarray(x)
        with self.assertRaisesRegex(ValueError, "needs a copy"):
            self.m.forward(xf, copy=False)
        np.testing.assert_array_equal(self.m.forward(xf), self.m.forward(x))
        with self.assertRaisesRegex(TypeError, "must be int64"):
            self.m.train_step(x, y.astype(np.float32))

    def test_forward_writes_into_out(self):
        x, _ = tiny_batch()
        out = np.full((8, 3), np.nan, np.float32)
        r = self.m.forward(x, out=out)
        self.assertIs(r, out)
        self.assertTrue(np.all(np.isfinite(out)))
        with self.assertRaisesRegex(ValueError, "out must be"):
            self.m.forward(x, out=np.zeros((8, 3), np.float64))

    def test_parameter_views_share_the_models_memory(self):
        w = self.m.param("fc2.weight")
        self.assertEqual(w.shape, (3, 16))
        self.assertTrue(np.shares_memory(w, self.m.param("fc2.weight")))
        self.assertTrue(np.shares_memory(self.m.params["fc2.bias"], self.m.param("fc2.bias")))
        crow, col, vals = self.m.csr("fc1.weight")
        self.assertTrue(np.shares_memory(vals, self.m.param("fc1.weight")))
        self.assertTrue(np.shares_memory(crow, self.m.csr("fc1.weight")[0]))
        self.assertFalse(crow.flags.writeable)
        self.assertEqual((crow.shape, col.shape, vals.shape), ((17,), (48,), (48,)))
        self.assertEqual(crow[0], 0)
        self.assertEqual(crow[-1], 48)
        # Writes through a view change the model.
        x, _ = tiny_batch()
        before = self.m.forward(x)
        self.m.param("fc2.bias")[...] += 1.0
        np.testing.assert_allclose(self.m.forward(x), before + 1.0, rtol=1e-6, atol=1e-6)
        # and a training step moves the values under existing views.
        snapshot = w.copy()
        self.m.train_step(*tiny_batch())
        self.assertFalse(np.array_equal(w, snapshot))

    def test_views_keep_the_model_alive(self):
        m = sparsec.load(model_so("tiny"), seed=3)
        w = m.param("fc2.weight")
        expect = w.copy()
        del m
        import gc
        gc.collect()
        np.testing.assert_array_equal(w, expect)

    def test_forward_matches_numpy(self):
        x, _ = tiny_batch()
        w1 = self.m.dense("fc1.weight")
        h = np.maximum(x @ w1.T + self.m.param("fc1.bias"), 0)
        ref = h @ self.m.param("fc2.weight").T + self.m.param("fc2.bias")
        self.assertLess(rel_err(self.m.forward(x), ref), 1e-5)

    def test_gradients(self):
        loss = self.m.train_step(*tiny_batch())
        self.assertTrue(np.isfinite(loss))
        g = self.m.grad("fc1.weight")
        self.assertEqual(g.shape, (48,))
        self.assertFalse(g.flags.writeable)
        self.assertEqual(self.m.grad("fc2.weight").shape, (3, 16))


class TrainTest(unittest.TestCase):
    def test_loss_decreases(self):
        m = sparsec.load(model_so("tiny"), seed=2)
        x, y = tiny_batch(32, seed=5)
        first = m.train_step(x, y)
        for _ in range(30):
            last = m.train_step(x=x, y=y)
        self.assertLess(last, first * 0.5)
        self.assertEqual(m.step_count, 31)
        m.lr = 0.01
        self.assertAlmostEqual(m.lr, 0.01)
        self.assertAlmostEqual(m.current_lr, 0.01)

    def test_embedding_model(self):
        m = sparsec.load(model_so("emb"), seed=0)
        self.assertEqual([p.layout for p in m.param_info()],
                         ["embedding", "dense", "dense"])
        self.assertEqual(m.inputs[0].id_bound, 50)
        rng = np.random.default_rng(0)
        ids = rng.integers(0, 50, 16)
        dense = rng.standard_normal((16, 4)).astype(np.float32)
        t = rng.standard_normal((16, 1)).astype(np.float32)
        losses = [m.train_step(ids, dense, t) for _ in range(20)]
        self.assertLess(losses[-1], losses[0])
        self.assertEqual(m.grad("emb.weight").shape, (16, 8))
        self.assertEqual(m.forward(ids=ids, dense=dense).shape, (16, 1))
        with self.assertRaisesRegex(ValueError, "outside the range of int64"):
            m.forward(np.full(16, 2**63, np.uint64), dense)
        np.testing.assert_array_equal(m.forward(ids.astype(np.uint8), dense),
                                      m.forward(ids, dense))
        with self.assertRaises(sparsec.SparsecError) as e:
            m.forward(np.full(16, 50), dense)
        self.assertEqual(e.exception.status_name, "SPARSEC_ERR_OUT_OF_RANGE")
        self.assertIn("outside [0, 50)", str(e.exception))


class DeviceTest(unittest.TestCase):
    """device= on a library built with --target=cpu,cuda --cuda-emulate (its
    "GPU" is the host, so this runs anywhere) and on a CPU-only one."""

    def test_device_instances(self):
        so = sparsec.compile(os.path.join(os.path.dirname(__file__), "models", "tiny.sdl"),
                             tmpdir(), sparsec=sparsec_exe(),
                             options=["--target=cpu,cuda", "--cuda-emulate"])
        cpu = sparsec.load(so, seed=4, device="cpu")
        dev = sparsec.load(so, seed=4, device="cuda")
        self.assertEqual(cpu.device, "cpu")
        self.assertEqual(dev.device, "cuda (emulated on the host)")
        x, y = tiny_batch(16, seed=3)
        for _ in range(3):
            self.assertLess(rel_err(dev.train_step(x, y), cpu.train_step(x, y)), 1e-5)
        self.assertLess(rel_err(dev.param("fc2.weight"), cpu.param("fc2.weight")), 1e-5)
        self.assertLess(rel_err(dev.forward(x), cpu.forward(x)), 1e-5)
        with self.assertRaises(sparsec.SparsecError) as e:
            sparsec.load(so, device="tpu")
        self.assertIn("unknown device 'tpu'", str(e.exception))
        with self.assertRaises(sparsec.SparsecError) as e:
            sparsec.load(model_so("tiny"), device="cuda")  # built for the CPU only
        self.assertEqual(e.exception.status, 32)
        self.assertIn("compiled without CUDA kernels", str(e.exception))
        self.assertEqual(sparsec.load(model_so("tiny")).device, "cpu")


class ErrorTest(unittest.TestCase):
    def setUp(self):
        self.m = sparsec.load(model_so("tiny"))

    def test_shape_and_argument_errors(self):
        x, y = tiny_batch()
        with self.assertRaisesRegex(ValueError, r"'x' must have shape \[8, 12\].*\[8, 11\]"):
            self.m.forward(x[:, :11].copy())
        with self.assertRaisesRegex(ValueError, r"'y' must have shape \[8\]"):
            self.m.train_step(x, y[:4])
        with self.assertRaisesRegex(TypeError, "unknown input 'z'"):
            self.m.forward(z=x)
        with self.assertRaisesRegex(TypeError, "missing input"):
            self.m.train_step(x)
        with self.assertRaisesRegex(ValueError, "batch size must be positive"):
            self.m.forward(np.zeros((0, 12), np.float32))
        with self.assertRaisesRegex(KeyError, "no parameter 'nope'"):
            self.m.param("nope")

    def test_runtime_errors_raise_and_change_nothing(self):
        x, y = tiny_batch()
        x[2, 3] = np.nan
        before = self.m.param("fc2.weight").copy()
        with self.assertRaises(sparsec.SparsecError) as e:
            self.m.train_step(x, y)
        self.assertEqual(e.exception.status, 4)
        self.assertEqual(e.exception.status_name, "SPARSEC_ERR_NONFINITE")
        self.assertIn("non-finite", e.exception.message)
        np.testing.assert_array_equal(self.m.param("fc2.weight"), before)
        self.assertEqual(self.m.step_count, 0)

    def test_closed_model(self):
        with sparsec.load(model_so("tiny")) as m:
            pass
        with self.assertRaisesRegex(ValueError, "closed"):
            m.forward(tiny_batch()[0])


class CheckpointTest(unittest.TestCase):
    def test_save_load_round_trip(self):
        a = sparsec.load(model_so("tiny"), seed=1)
        for _ in range(3):
            a.train_step(*tiny_batch())
        path = os.path.join(tmpdir(), "a.safetensors")
        a.save(path)
        b = sparsec.load(model_so("tiny"), seed=2)
        b.load(path)
        self.assertEqual(b.step_count, 3)
        x, _ = tiny_batch(5, seed=9)
        np.testing.assert_array_equal(a.forward(x), b.forward(x))
        # Same optimizer state: the next step is identical too.
        batch = tiny_batch(seed=4)
        self.assertEqual(a.train_step(*batch), b.train_step(*batch))
        np.testing.assert_array_equal(a.param("fc1.weight"), b.param("fc1.weight"))

    def test_bad_checkpoint(self):
        path = os.path.join(tmpdir(), "bad.safetensors")
        with open(path, "wb") as f:
            f.write(b"\x00" * 4)
        m = sparsec.load(model_so("tiny"))
        with self.assertRaises(sparsec.SparsecError) as e:
            m.load(path)
        self.assertEqual(e.exception.status_name, "SPARSEC_ERR_FORMAT")

    def test_pure_python_reader_and_writer(self):
        m = sparsec.load(model_so("tiny"), seed=1)
        m.train_step(*tiny_batch())
        path = os.path.join(tmpdir(), "m.safetensors")
        m.save(path)
        tensors, meta = sparsec.checkpoint.read(path)
        self.assertEqual(meta["format"], "sparsec")
        self.assertEqual(meta["model"], "Tiny")
        self.assertEqual(meta["crc32"], sparsec.checkpoint.data_crc32(path))
        self.assertEqual(sparsec.checkpoint.csr_size(meta, "fc1.weight"), (16, 12))
        np.testing.assert_array_equal(tensors["fc1.weight.values"], m.param("fc1.weight"))
        # Rewritten by the pure-Python writer with new values: sparsec loads it.
        tensors["fc2.bias"] = tensors["fc2.bias"] + 2.0
        path2 = os.path.join(tmpdir(), "m2.safetensors")
        sparsec.checkpoint.write(path2, tensors, meta)
        m.load(path2)
        np.testing.assert_array_equal(m.param("fc2.bias"), tensors["fc2.bias"])
        self.assertEqual(m.checkpoint_metadata()["model"], "Tiny")


class CompileTest(unittest.TestCase):
    def test_compile_writes_library_and_header(self):
        d = tmpdir()
        src = os.path.join(os.path.dirname(__file__), "models", "tiny.sdl")
        so = sparsec.compile(src, os.path.join(d, "out"), sparsec=sparsec_exe(),
                             name="mine", options=["-O1"])
        self.assertEqual(so, os.path.join(d, "out", "libmine.so"))
        self.assertTrue(os.path.isfile(os.path.join(d, "out", "libmine.h")))
        self.assertEqual(sparsec.load(so).name, "Tiny")

    def test_compile_error_has_diagnostics(self):
        d = tmpdir()
        bad = os.path.join(d, "bad.sdl")
        with open(bad, "w") as f:
            f.write("model M {\n  input x : f32[B, 4]\n  forward { y = relu(q) }\n}\n")
        with self.assertRaises(sparsec.CompileError) as e:
            sparsec.compile(bad, d, sparsec=sparsec_exe())
        self.assertEqual(e.exception.returncode, 1)
        self.assertIn("use of undefined name 'q'", e.exception.stderr)

    def test_missing_compiler(self):
        with self.assertRaisesRegex(FileNotFoundError, "not found on PATH"):
            sparsec.compile("x.sdl", sparsec="no-such-sparsec-binary")


if __name__ == "__main__":
    unittest.main()
