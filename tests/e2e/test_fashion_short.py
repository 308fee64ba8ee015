"""A short real training run: examples/fashion_mnist/fashion_mlp.sdl
(784 -> 90%-sparse 2000 -> 10, SGD with momentum) on Fashion-MNIST.

300 steps of batch 64 on shuffled training images (pixels / 255, float32);
the mean loss of the last 50 steps must be clearly below that of the first
50, and the accuracy on the first 2000 test images above 0.6 (chance is
0.1). Budget: well under 60 s on a 2-core machine.

Run: /usr/bin/python3 -m unittest -v test_fashion_short  (from tests/e2e)
"""
import gzip
import os
import struct
import tempfile
import time
import unittest

import numpy as np

import oracle

DATA_DIR = os.environ.get("SPARSEC_FASHION_DIR",
                          "/usr/share/datasets/fashion-mnist")
EXAMPLE = os.path.join(oracle.REPO_DIR, "examples", "fashion_mnist",
                       "fashion_mlp.sdl")
STEPS, BATCH, WINDOW, TEST_IMAGES = 300, 64, 50, 2000


def read_idx(name):
    """An IDX file (gzip) as a numpy array: magic 0x0000 08 NDIM (unsigned
    bytes), NDIM big-endian u32 dims, then the data."""
    path = os.path.join(DATA_DIR, name + "-ubyte.gz")
    with gzip.open(path, "rb") as f:
        blob = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", blob[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    dims = struct.unpack(f">{ndim}I", blob[4:4 + 4 * ndim])
    data = np.frombuffer(blob, np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: {data.size} bytes for dims {dims}")
    return data.reshape(dims)


def images(name):
    raw = read_idx(name)
    return (raw.reshape(raw.shape[0], -1).astype(np.float32) / 255.0)


class FashionShortTest(unittest.TestCase):
    def test_training_reduces_loss_and_classifies(self):
        t0 = time.monotonic()
        with open(EXAMPLE) as f:
            text = f.read()
        with tempfile.TemporaryDirectory(prefix="sparsec-fashion-") as tmp:
            compiled = oracle.compile_text(text, tmp, "fashion_mlp")
            t_compile = time.monotonic() - t0
            x_train = images("train-images-idx3")
            y_train = read_idx("train-labels-idx1").astype(np.int64)
            x_test = images("t10k-images-idx3")[:TEST_IMAGES]
            y_test = read_idx("t10k-labels-idx1")[:TEST_IMAGES]
            self.assertEqual(x_train.shape, (60000, 784))
            t_data = time.monotonic() - t0 - t_compile

            m = compiled.instance(seed=0)
            rng = np.random.default_rng(0)
            order = rng.permutation(len(x_train))
            losses = []
            t1 = time.monotonic()
            for step in range(STEPS):
                idx = order[step * BATCH:(step + 1) * BATCH]
                losses.append(m.train_step([x_train[idx], y_train[idx]]))
            t_train = time.monotonic() - t1

            logits = np.concatenate([
                m.forward([x_test[i:i + 500]], (len(x_test[i:i + 500]), 10))
                for i in range(0, len(x_test), 500)])
            accuracy = float(np.mean(np.argmax(logits, axis=1) == y_test))

        first = float(np.mean(losses[:WINDOW]))
        last = float(np.mean(losses[-WINDOW:]))
        print(f"\n  compile {t_compile:.1f}s, data {t_data:.1f}s, "
              f"{STEPS} steps {t_train:.1f}s, total "
              f"{time.monotonic() - t0:.1f}s; mean loss first {WINDOW} "
              f"{first:.4f}, last {WINDOW} {last:.4f}; test accuracy "
              f"{accuracy:.4f}")
        self.assertTrue(np.all(np.isfinite(losses)), "non-finite loss")
        self.assertLess(last, 0.75 * first,
                        f"loss did not drop clearly: {first:.4f} -> {last:.4f}")
        self.assertGreater(accuracy, 0.6)


if __name__ == "__main__":
    unittest.main()
