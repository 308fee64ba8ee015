"""Checkpoint interoperability with the `safetensors` package, both ways:

* a checkpoint written by sparsec is read by safetensors (numpy and torch)
  with sparsec's names, dtypes, shapes and metadata;
* weights trained in PyTorch (same architecture, the CSR weight as a masked
  dense matrix) and saved with safetensors.torch.save_file in sparsec's
  naming/metadata convention load into the sparsec model and give the same
  forward outputs (relative error <= 1e-5).

safetensors is a PyPI package (not in Debian 12); CI installs it with
`/usr/bin/python3 -m pip install --break-system-packages safetensors==0.8.0`
(.ci/setup.sh). Without it these tests fail, they are not skipped.
"""
import json
import os
import unittest
import warnings

from common import model_so, rel_err, sparsec, tiny_batch, tmpdir, np

import torch

warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")

try:
    import safetensors
    import safetensors.numpy
    import safetensors.torch
    from safetensors import safe_open
    _MISSING = None
except ImportError as e:  # reported as a failure by every test below
    _MISSING = e

_INSTALL = ("/usr/bin/python3 -m pip install --break-system-packages "
            "safetensors==0.8.0")


class _NeedsSafetensors(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if _MISSING is not None:
            raise AssertionError(
                "the 'safetensors' Python package is missing (%s); install it with: %s "
                "(.ci/setup.sh does)" % (_MISSING, _INSTALL))


def _expected_tensors(model, with_momentum):
    """{name: (safetensors dtype, shape)} that a checkpoint of `model` holds."""
    out = {}
    for p in model.param_info():
        if p.layout == "csr":
            out[p.name + ".crow_indices"] = ("I32", [p.shape[0] + 1])
            out[p.name + ".col_indices"] = ("I32", [p.nnz])
            out[p.name + ".values"] = ("F32", [p.nnz])
            mshape = [p.nnz]
        else:
            out[p.name] = ("F32", list(p.shape))
            mshape = list(p.shape)
        if with_momentum:
            out["optimizer.%s.momentum_buffer" % p.name] = ("F32", mshape)
    return out


class SparsecToSafetensorsTest(_NeedsSafetensors):
    def setUp(self):
        self.m = sparsec.load(model_so("tiny"), seed=11)
        for i in range(3):
            self.m.train_step(*tiny_batch(seed=i))
        self.path = os.path.join(tmpdir(), "tiny.safetensors")
        self.m.save(self.path)

    def test_names_dtypes_shapes_metadata(self):
        want = _expected_tensors(self.m, with_momentum=True)
        with open(self.path, "rb") as f:  # dtypes as the file spells them
            n = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(n))
        meta = header.pop("__metadata__")
        self.assertEqual({k: (v["dtype"], v["shape"]) for k, v in header.items()}, want)
        with safe_open(self.path, framework="np") as f:
            self.assertEqual(set(f.keys()), set(want))
            md = f.metadata()
            for k in f.keys():
                t = f.get_tensor(k)
                self.assertEqual(list(t.shape), want[k][1], k)
                self.assertEqual(t.dtype, np.float32 if want[k][0] == "F32" else np.int32, k)
        self.assertEqual(md, meta)
        self.assertEqual(md["format"], "sparsec")
        self.assertEqual(md["model"], "Tiny")
        self.assertEqual(md["step"], "3")
        self.assertEqual(float(md["lr"]), 0.1)
        self.assertEqual(json.loads(md["fc1.weight.size"]), [16, 12])
        self.assertEqual(md["crc32"], sparsec.checkpoint.data_crc32(self.path))

    def test_values_read_by_safetensors_numpy(self):
        st = safetensors.numpy.load_file(self.path)
        crow, col, vals = self.m.csr("fc1.weight")
        np.testing.assert_array_equal(st["fc1.weight.crow_indices"], crow)
        np.testing.assert_array_equal(st["fc1.weight.col_indices"], col)
        np.testing.assert_array_equal(st["fc1.weight.values"], vals)
        for n in ("fc1.bias", "fc2.weight", "fc2.bias"):
            np.testing.assert_array_equal(st[n], self.m.param(n))

    def test_torch_builds_the_csr_tensor_and_the_same_forward(self):
        sd = safetensors.torch.load_file(self.path)
        with safe_open(self.path, framework="pt") as f:
            size = json.loads(f.metadata()["fc1.weight.size"])
        w1 = torch.sparse_csr_tensor(sd["fc1.weight.crow_indices"],
                                     sd["fc1.weight.col_indices"],
                                     sd["fc1.weight.values"], size=size)
        np.testing.assert_array_equal(w1.to_dense().numpy(), self.m.dense("fc1.weight"))
        x, _ = tiny_batch(10, seed=42)
        xt = torch.from_numpy(x)
        h = torch.relu(xt @ w1.to_dense().T + sd["fc1.bias"])
        ref = (h @ sd["fc2.weight"].T + sd["fc2.bias"]).numpy()
        self.assertLessEqual(rel_err(self.m.forward(x), ref), 1e-5)
        # The triple loads back through load_state_dict as well.
        other = sparsec.load(model_so("tiny"), seed=11)
        other.load_state_dict(sd)
        np.testing.assert_array_equal(other.forward(x), self.m.forward(x))

    def test_embedding_model_checkpoint(self):
        m = sparsec.load(model_so("emb"), seed=0)
        path = os.path.join(tmpdir(), "emb.safetensors")
        m.save(path)
        st = safetensors.numpy.load_file(path)
        params = set(_expected_tensors(m, with_momentum=False))
        self.assertEqual(params, {"emb.weight", "fc.weight", "fc.bias"})
        self.assertLessEqual(params, set(st))
        # Adam's state (exp_avg, exp_avg_sq) rides along under optimizer.*.
        self.assertTrue(all(k.startswith("optimizer.") for k in set(st) - params))
        self.assertIn("optimizer.emb.weight.exp_avg", st)
        np.testing.assert_array_equal(st["emb.weight"], m.param("emb.weight"))


class TorchToSparsecTest(_NeedsSafetensors):
    STEPS = 5

    def _train_in_torch(self, nnz, lr):
        """A few SGD steps of the Tiny architecture in PyTorch, the sparse
        layer as a masked dense weight with its own random pattern."""
        g = torch.Generator().manual_seed(1234)
        mask = torch.zeros(16 * 12, dtype=torch.bool)
        mask[torch.randperm(16 * 12, generator=g)[:nnz]] = True
        mask = mask.reshape(16, 12)
        w1 = (torch.rand(16, 12, generator=g) - 0.5).mul_(mask).requires_grad_()
        b1 = (torch.rand(16, generator=g) - 0.5).requires_grad_()
        w2 = (torch.rand(3, 16, generator=g) - 0.5).requires_grad_()
        b2 = (torch.rand(3, generator=g) - 0.5).requires_grad_()
        opt = torch.optim.SGD([w1, b1, w2, b2], lr=lr, momentum=0.9)

        def forward(x):
            return torch.relu(x @ (w1 * mask).T + b1) @ w2.T + b2

        for i in range(self.STEPS):
            x, y = tiny_batch(16, seed=100 + i)
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(forward(torch.from_numpy(x)),
                                                     torch.from_numpy(y))
            loss.backward()
            opt.step()
        return mask, w1.detach() * mask, b1.detach(), w2.detach(), b2.detach(), forward

    def test_pytorch_weights_load_into_sparsec(self):
        m = sparsec.load(model_so("tiny"), seed=0)
        info = {p.name: p for p in m.param_info()}
        nnz = info["fc1.weight"].nnz
        mask, w1, b1, w2, b2, forward = self._train_in_torch(nnz, m.lr)
        crow_np, col_np, _ = m.csr("fc1.weight")
        own = np.zeros((16, 12), bool)
        own[np.repeat(np.arange(16), np.diff(crow_np)), col_np] = True
        self.assertFalse(np.array_equal(own, mask.numpy()), "patterns should differ")

        # sparsec's convention: NAME.crow_indices/.col_indices (int32, row-major,
        # ascending columns), NAME.values, metadata with NAME.size and crc32.
        rows, cols = mask.nonzero(as_tuple=True)  # row-major, ascending columns
        crow = torch.zeros(17, dtype=torch.int32)
        crow[1:] = torch.cumsum(torch.bincount(rows, minlength=16), 0).to(torch.int32)
        tensors = {
            "fc1.weight.crow_indices": crow,
            "fc1.weight.col_indices": cols.to(torch.int32).contiguous(),
            "fc1.weight.values": w1[rows, cols].contiguous(),
            "fc1.bias": b1.contiguous(),
            "fc2.weight": w2.contiguous(),
            "fc2.bias": b2.contiguous(),
        }
        self.assertEqual(int(mask.sum()), nnz)
        own_meta = m.checkpoint_metadata()
        meta = {"format": "sparsec", "model": "Tiny", "abi": own_meta["abi"],
                "step": str(self.STEPS), "lr": repr(m.lr),
                "fc1.weight.size": json.dumps([16, 12], separators=(",", ":")),
                "crc32": sparsec.checkpoint.CRC_PLACEHOLDER}
        path = os.path.join(tmpdir(), "from_torch.safetensors")
        safetensors.torch.save_file(tensors, path, metadata=meta)
        # The CRC covers the data section, which does not depend on the
        # metadata: compute it, then save again with the right value.
        with self.assertRaises(sparsec.SparsecError) as e:
            m.load(path)
        self.assertIn("checksum mismatch", str(e.exception))
        meta["crc32"] = sparsec.checkpoint.data_crc32(path)
        safetensors.torch.save_file(tensors, path, metadata=meta)
        self.assertEqual(sparsec.checkpoint.data_crc32(path), meta["crc32"])

        m.load(path)
        self.assertEqual(m.step_count, self.STEPS)
        crow2, col2, _ = m.csr("fc1.weight")
        np.testing.assert_array_equal(crow2, crow.numpy())
        np.testing.assert_array_equal(col2, cols.numpy())
        np.testing.assert_array_equal(m.dense("fc1.weight"), w1.numpy())
        x, _ = tiny_batch(64, seed=7)
        with torch.no_grad():
            ref = forward(torch.from_numpy(x)).numpy()
        err = rel_err(m.forward(x), ref)
        self.assertLessEqual(err, 1e-5)

    def test_fix_crc32_in_place(self):
        m = sparsec.load(model_so("tiny"), seed=0)
        path = os.path.join(tmpdir(), "fix.safetensors")
        m.save(path)
        tensors = safetensors.torch.load_file(path)
        with safe_open(path, framework="pt") as f:
            meta = dict(f.metadata())
        tensors["fc2.bias"] = tensors["fc2.bias"] + 1.0
        meta["crc32"] = sparsec.checkpoint.CRC_PLACEHOLDER
        safetensors.torch.save_file(tensors, path, metadata=meta)
        crc = sparsec.checkpoint.fix_crc32(path)
        self.assertEqual(sparsec.checkpoint.read_metadata(path)["crc32"], crc)
        m.load(path)
        np.testing.assert_array_equal(m.param("fc2.bias"), tensors["fc2.bias"].numpy())


if __name__ == "__main__":
    unittest.main()
