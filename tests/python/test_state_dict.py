"""sparsec Python package <-> PyTorch state dicts: dense tensors, CSR
parameters as torch.sparse_csr_tensor, loading from dense/COO/CSR tensors
with pattern checks, strictness and atomicity."""
import unittest

from common import model_so, sparsec, tiny_batch, np

import torch


def tiny(seed=0):
    return sparsec.load(model_so("tiny"), seed=seed)


class ToStateDictTest(unittest.TestCase):
    def test_types_shapes_and_shared_memory(self):
        m = tiny(1)
        sd = m.to_state_dict()
        self.assertEqual(list(sd), ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"])
        w1 = sd["fc1.weight"]
        self.assertEqual(w1.layout, torch.sparse_csr)
        self.assertEqual(tuple(w1.shape), (16, 12))
        self.assertEqual(w1.dtype, torch.float32)
        self.assertEqual(w1.values().shape, (48,))
        crow, col, vals = m.csr("fc1.weight")
        np.testing.assert_array_equal(w1.crow_indices().numpy(), crow)
        np.testing.assert_array_equal(w1.col_indices().numpy(), col)
        np.testing.assert_array_equal(w1.to_dense().numpy(), m.dense("fc1.weight"))
        self.assertEqual(sd["fc2.weight"].layout, torch.strided)
        self.assertEqual(tuple(sd["fc2.weight"].shape), (3, 16))
        # copy=False: the tensors alias the model (like Module.state_dict()).
        self.assertTrue(np.shares_memory(sd["fc2.weight"].numpy(), m.param("fc2.weight")))
        self.assertTrue(np.shares_memory(w1.values().numpy(), m.param("fc1.weight")))
        m.train_step(*tiny_batch())
        np.testing.assert_array_equal(sd["fc2.bias"].numpy(), m.param("fc2.bias"))
        # copy=True: independent tensors.
        sdc = m.to_state_dict(copy=True)
        self.assertFalse(np.shares_memory(sdc["fc2.weight"].numpy(), m.param("fc2.weight")))
        self.assertFalse(np.shares_memory(sdc["fc1.weight"].values().numpy(),
                                          m.param("fc1.weight")))

    def test_torch_forward_from_state_dict(self):
        m = tiny(2)
        sd = m.to_state_dict()
        x, _ = tiny_batch()
        xt = torch.from_numpy(x)
        h = torch.relu(torch.sparse.mm(sd["fc1.weight"], xt.T).T + sd["fc1.bias"])
        ref = h @ sd["fc2.weight"].T + sd["fc2.bias"]
        np.testing.assert_allclose(m.forward(x), ref.numpy(), rtol=1e-5, atol=1e-6)


class LoadStateDictTest(unittest.TestCase):
    def test_round_trip_between_instances(self):
        a, b = tiny(1), tiny(1)
        for _ in range(3):
            a.train_step(*tiny_batch())
        keys = b.load_state_dict(a.to_state_dict(copy=True))
        self.assertEqual((keys.missing_keys, keys.unexpected_keys), ([], []))
        x, _ = tiny_batch(6, seed=3)
        np.testing.assert_array_equal(a.forward(x), b.forward(x))
        self.assertEqual(b.step_count, 0)  # parameters only

    def test_csr_tensor_with_another_pattern_is_refused(self):
        a, b = tiny(1), tiny(2)  # different seeds: different patterns
        with self.assertRaisesRegex(ValueError, "pattern differs"):
            b.load_state_dict(a.to_state_dict())

    def test_dense_and_coo_inside_the_pattern(self):
        m = tiny(4)
        dense = torch.from_numpy(m.dense("fc1.weight") * 2.0)
        other = {k: v for k, v in m.to_state_dict(copy=True).items() if k != "fc1.weight"}
        m.load_state_dict({"fc1.weight": dense, **other})
        np.testing.assert_array_equal(m.dense("fc1.weight"), dense.numpy())
        # COO with a subset of the pattern: the rest becomes zero.
        coo = (dense * 3.0).to_sparse()
        idx = coo.indices()[:, ::2]
        vals = coo.values()[::2]
        sub = torch.sparse_coo_tensor(idx, vals, (16, 12))
        m.load_state_dict({"fc1.weight": sub, **other})
        np.testing.assert_array_equal(m.dense("fc1.weight"), sub.to_dense().numpy())
        # numpy arrays work too.
        m.load_state_dict({"fc1.weight": dense.numpy(), **{k: v.numpy() for k, v in other.items()}})
        np.testing.assert_array_equal(m.dense("fc1.weight"), dense.numpy())

    def test_nonzeros_outside_the_pattern_are_refused(self):
        m = tiny(4)
        crow, col, _ = m.csr("fc1.weight")
        dense = m.dense("fc1.weight")
        mask = np.zeros((16, 12), bool)
        mask[np.repeat(np.arange(16), np.diff(crow)), col] = True
        r, c = np.argwhere(~mask)[0]
        bad = dense.copy()
        bad[r, c] = 1.0
        before = {n: v.copy() for n, v in m.params.items()}
        sd = m.to_state_dict(copy=True)
        sd["fc2.bias"] = sd["fc2.bias"] + 1  # would change if not atomic
        for w in (torch.from_numpy(bad), torch.from_numpy(bad).to_sparse()):
            sd["fc1.weight"] = w
            with self.assertRaisesRegex(ValueError, r"outside the model's sparsity pattern, "
                                        r"e\.g\. at \(%d, %d\)" % (r, c)):
                m.load_state_dict(sd)
        for n, v in before.items():
            np.testing.assert_array_equal(m.param(n), v)
        # An explicit zero outside the pattern is fine.
        ok = dense.copy()
        sd["fc1.weight"] = torch.from_numpy(ok)
        m.load_state_dict(sd)

    def test_checkpoint_triple_names(self):
        a = tiny(5)
        crow, col, vals = a.csr("fc1.weight")
        sd = {"fc1.weight.crow_indices": torch.from_numpy(crow.copy()),
              "fc1.weight.col_indices": torch.from_numpy(col.copy()),
              "fc1.weight.values": torch.from_numpy(vals * 0.5),
              "optimizer.fc1.weight.momentum_buffer": torch.zeros(48)}
        for n in ("fc1.bias", "fc2.weight", "fc2.bias"):
            sd[n] = torch.from_numpy(a.param(n).copy())
        expect = vals * 0.5
        a.load_state_dict(sd)
        np.testing.assert_array_equal(a.param("fc1.weight"), expect)

    def test_strict_keys_and_shapes(self):
        m = tiny()
        sd = m.to_state_dict(copy=True)
        del sd["fc2.bias"]
        sd["extra"] = torch.zeros(1)
        with self.assertRaisesRegex(KeyError, r"missing keys \['fc2.bias'\].*\['extra'\]"):
            m.load_state_dict(sd)
        keys = m.load_state_dict(sd, strict=False)
        self.assertEqual(keys.missing_keys, ["fc2.bias"])
        self.assertEqual(keys.unexpected_keys, ["extra"])
        sd = m.to_state_dict(copy=True)
        sd["fc2.weight"] = torch.zeros(16, 3)
        with self.assertRaisesRegex(ValueError, r"'fc2.weight': shape \[16, 3\]"):
            m.load_state_dict(sd)
        sd = m.to_state_dict(copy=True)
        sd["fc2.bias"] = torch.tensor([0.0, float("nan"), 0.0])
        with self.assertRaisesRegex(ValueError, "non-finite"):
            m.load_state_dict(sd)

    def test_embedding_state_dict(self):
        m = sparsec.load(model_so("emb"), seed=0)
        sd = m.to_state_dict()
        self.assertEqual(tuple(sd["emb.weight"].shape), (50, 8))
        self.assertEqual(sd["emb.weight"].layout, torch.strided)
        n = sparsec.load(model_so("emb"), seed=1)
        n.load_state_dict(sd)
        np.testing.assert_array_equal(n.param("emb.weight"), m.param("emb.weight"))


if __name__ == "__main__":
    unittest.main()
