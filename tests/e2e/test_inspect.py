"""`sparsec inspect CHECKPOINT [--masks DIR]` on a checkpoint of a generated
library (models/conn/user_conn.sdl: a 9 -> 12 sparse layer whose 30
connections come from a file).

* the header line names the model and the step; the table gives each
  parameter's layout, shape, stored values and sparsity (72.22% for 30 of
  108 positions) and counts the optimizer state tensors;
* the mask PNG (one pixel per position at this size) is black exactly at
  the file's connections and white elsewhere (decoded here with zlib); a
  masked_linear layer's `fc.weight_mask` is drawn the same way;
* a missing file, a file that is not a checkpoint, no argument and an
  unknown option end with status 1 and a message; --help with 0.

Run: /usr/bin/python3 -m unittest -v test_inspect  (from tests/e2e)
"""
import os
import struct
import subprocess
import tempfile
import unittest
import zlib

import numpy as np

import oracle
from sparsec_ctypes import Model
from test_connectivity import CONN_DIR, compile_file, read_pairs


def inspect(*args):
    return subprocess.run([oracle.sparsec_binary(), "inspect", *args],
                          capture_output=True, text=True)


def read_png(path):
    """(width, height, pixels[h, w]) of an 8-bit grey, unfiltered PNG."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, size = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        crc = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0]
        assert zlib.crc32(kind + body) == crc, kind
        if kind == b"IHDR":
            size = struct.unpack(">II", body[:8])
            assert body[8:13] == b"\x08\x00\x00\x00\x00"
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    w, h = size
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, w + 1)
    assert (raw[:, 0] == 0).all()
    return w, h, raw[:, 1:]


def trained(src, outdir, model, seed, shapes, steps, ckpt):
    """Compiles `src`, takes `steps` train steps on one random batch of
    input/target `shapes`, saves the checkpoint `ckpt`; returns the model."""
    m = Model(compile_file(src, outdir), model, seed)
    rng = np.random.default_rng(seed)
    batch = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    for _ in range(steps):
        m.train_step(batch)
    m.save(ckpt)
    return m


class InspectTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="sparsec-inspect-")
        cls.ckpt = os.path.join(cls.tmp.name, "model.safetensors")
        trained(os.path.join(CONN_DIR, "user_conn.sdl"), cls.tmp.name,
                "UserConn", 1, [(8, 9), (8, 12)], 3, cls.ckpt)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_table_and_mask(self):
        masks = os.path.join(self.tmp.name, "masks")
        r = inspect(self.ckpt, "--masks", masks)
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertIn("model UserConn, step 3", lines[0])
        row = next(l for l in lines if l.startswith("fc.weight "))
        self.assertEqual(row.split()[:6],
                         ["fc.weight", "csr", "[12,", "9]", "30", "72.22%"])
        bias = next(l for l in lines if l.startswith("fc.bias "))
        self.assertEqual(bias.split()[1:4], ["dense", "[12]", "12"])
        self.assertEqual(lines[-1], "optimizer state: 0 tensors")
        w, h, px = read_png(os.path.join(masks, "fc.weight.png"))
        self.assertEqual((w, h), (9, 12))
        want = np.full((12, 9), 255, np.uint8)
        rows, cols = read_pairs(os.path.join(CONN_DIR, "conn_12x9.txt"))
        want[rows, cols] = 0
        np.testing.assert_array_equal(px, want)

    def test_masked_layer_mask(self):
        """A masked_linear layer's mask (a dense 0/1 tensor, 5 -> 7 at
        60% sparsity, pruned further by a magnitude step) is drawn like a
        CSR pattern: black where the mask is 1."""
        src = os.path.join(self.tmp.name, "masked_inspect.sdl")
        with open(src, "w") as f:
            f.write("""model MaskedInspect {
  input  x : f32[B, 5]
  target y : f32[B, 7]
  param fc : masked_linear(5, 7, sparsity = 0.6,
                           prune = magnitude, final = 0.8, begin = 2)
  forward { h = fc(x) }
  loss = mse(h, y)
  optimizer = sgd(lr = 0.1)
}
""")
        ckpt = os.path.join(self.tmp.name, "masked.safetensors")
        m = trained(src, self.tmp.name, "MaskedInspect", 3, [(4, 5), (4, 7)],
                    2, ckpt)
        mask = m.values("fc.weight_mask").reshape(7, 5).copy()
        masks = os.path.join(self.tmp.name, "masked_pngs")
        r = inspect(ckpt, "--masks", masks)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("fc.weight_mask.png", r.stdout)
        w, h, px = read_png(os.path.join(masks, "fc.weight_mask.png"))
        self.assertEqual((w, h), (5, 7))
        self.assertEqual(int(mask.sum()), 7)  # 20% of 35 kept after pruning
        np.testing.assert_array_equal(px, np.where(mask != 0, 0, 255))
        # The weight itself is not a mask: no picture of it.
        self.assertFalse(os.path.exists(os.path.join(masks, "fc.weight.png")))

    def test_errors(self):
        bad = os.path.join(self.tmp.name, "bad.safetensors")
        with open(bad, "wb") as f:
            f.write(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
        for args, msg in [((os.path.join(self.tmp.name, "missing"),),
                           "cannot read"),
                          ((bad,), "the header is not JSON"),
                          ((), "no checkpoint given"),
                          ((self.ckpt, "--frob"), "unknown option")]:
            r = inspect(*args)
            self.assertEqual(r.returncode, 1, args)
            self.assertTrue(r.stderr.startswith("sparsec inspect: error: "),
                            r.stderr)
            self.assertIn(msg, r.stderr, args)
        r = inspect("--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("usage: sparsec inspect", r.stdout)


if __name__ == "__main__":
    unittest.main()
