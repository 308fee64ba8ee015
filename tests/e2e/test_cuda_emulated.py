"""The CUDA target's kernels and the runtime's device path, emulated on the
host, against the CPU.

Each model is compiled with `--target=cpu,cuda --cuda-emulate` (the CUDA
functions as host loops, sparsec-gpu-emulate) and created twice from one
seed: `<Model>_create_on(seed, "cpu")` and `(seed, "cuda")`. Both train on
the same random batches; the first step's loss and gradients must agree to
1e-5 (relative to the largest value, as the GPU suite requires), every
later loss and the final
parameters and forward output to 1e-4 (the two trajectories drift apart by
rounding: the CPU kernels sum in other orders). The models cover every loss
the CUDA target lowers (cross-entropy, MSE, BCE with logits), CSR and dense
layers (a CSR layer inside the network, so its input gradient is needed),
relu/add, the per-value optimizers with their options (momentum,
nesterov, weight decay, centered RMSprop, amsgrad, AdamW, Adagrad) and
gradient clipping; and embedding models (embedding with a padding row,
embedding_bag sum/mean/max with and without padding, concat) whose lazy
sparse rows step under SGD (uncoalesced), SGD with momentum, Adam
(SparseAdam), Adagrad and row-wise Adagrad, whose dense gradients
(sparse = dense) step under Adam and SGD with momentum, whose lagging rows
catch up (sparse = catchup: AdamW, SGD with momentum and decay, RMSprop),
with max_norm (2- and 1-norm), scale_grad_by_freq and gradient clipping
(lazy, catch-up and dense tables); and masked_linear models whose masks
(buffers on the device) are pruned by gradual, structured and global
magnitude schedules;
K-Winners models (boosting, boost decay, k_inference, ties); SET and
RigL layers whose patterns change on the host copy; masked CNNs; a
matmul with a tensor parameter; stacked masked LSTMs; quantized layers
(int8 and f32 inference); KWinners2d (global and local) after a conv;
and MSE on a sequence output [B, T, H].
docs/cuda.md, "The emulator".
"""
import tempfile
import unittest

import numpy as np

import oracle

NET = """
model Net {{
  input x : f32[B, 20]
  target y : {target}
  param fc1 : linear(20, 16)
  param fc2 : sparse_linear(16, 12, sparsity = 0.7)
  param fc3 : linear(12, {out})
  forward {{
    h = relu(fc1(x))
    g = fc2(h)
    s = g + relu(g)
    out = fc3(s)
    return out
  }}
  loss = {loss}(out, y)
  optimizer = {optimizer}
}}
"""

# A tensor parameter used as a value (h @ w: sdl.matmul and both of its
# gradients).
MATMUL = """
model Mm {
  input x : f32[B, 20]
  target y : f32[B, 3]
  param fc0 : linear(20, 20)
  param w : tensor(20, 12, init = normal, scale = 0.3)
  param fc : linear(12, 3)
  forward {
    out = fc(relu(relu(fc0(x)) @ w))
    return out
  }
  loss = mse(out, y)
  optimizer = adam(lr = 0.01)
}
"""

CASES = [
    # (name, loss, target, outputs, optimizer)
    ("ce_sgd", "cross_entropy", "i64[B]", 7,
     "sgd(lr = 0.05, momentum = 0.9, nesterov = true, weight_decay = 0.001)"),
    ("ce_adam", "cross_entropy", "i64[B]", 7,
     "adam(lr = 0.01, amsgrad = true, weight_decay = 0.01)"),
    ("ce_adamw_clip", "cross_entropy", "i64[B]", 7,
     "adamw(lr = 0.01, clip_grad_norm = 0.05)"),
    ("mse_rmsprop", "mse", "f32[B, 3]", 3,
     "rmsprop(lr = 0.001, centered = true, momentum = 0.5)"),
    ("bce_adagrad", "bce_with_logits", "f32[B, 3]", 3, "adagrad(lr = 0.05)"),
]

STEPS, BATCH = 8, 33

# Hadamard-masked layers (masks are buffers on the device) with pruning
# schedules, which prune on the host copy between steps.
MASKED = """
model Masked {{
  input x : f32[B, 20]
  target y : i64[B]
  param fc1 : masked_linear(20, 16, sparsity = 0.5, {prune1})
  param fc2 : masked_linear(16, 7, density = 0.6, bias = false, {prune2})
  forward {{
    h = relu(fc1(x))
    out = fc2(h)
    return out
  }}
  loss = cross_entropy(out, y)
  optimizer = {optimizer}
}}
"""

MASKED_CASES = [
    # (name, fc1 pruning, fc2 pruning, optimizer)
    ("gradual_structured",
     "prune = gradual, final = 0.8, begin = 2, end = 6, every = 2",
     "prune = structured, final = 0.3, begin = 3, norm = l2",
     "sgd(lr = 0.05, momentum = 0.9, weight_decay = 0.01)"),
    ("global_adam",
     "prune = magnitude, final = 0.7, begin = 4, scope = global",
     "prune = magnitude, final = 0.7, begin = 4, scope = global",
     "adam(lr = 0.01, clip_grad_norm = 0.5)"),
]

# Embeddings (a table with a padding row, a bag table) concatenated with a
# dense input, then the network above; lazy sparse gradients.
EMB = """
model Rec {{
  input user : i64[B]
  input items : i64[B, 5]
  input dense : f32[B, 6]
  target click : f32[B, 1]
  param user_emb : embedding(40, 8, padding_idx = 3{user_opts})
  param item_emb : embedding_bag(30, 8, mode = {mode}{bag_pad})
  param fc1 : sparse_linear(22, 16, sparsity = 0.7)
  param fc2 : linear(16, 1)
  forward {{
    h = concat(user_emb(user), item_emb(items), dense)
    h = relu(fc1(h))
    logit = fc2(h)
    return logit
  }}
  loss = bce_with_logits(logit, click)
  optimizer = {optimizer}
}}
"""

EMB_CASES = [
    # (name, bag mode, bag padding, optimizer[, user table options])
    ("sgd_sum", "sum", "", "sgd(lr = 0.1)"),
    ("momentum_mean", "mean", ", padding_idx = 2", "sgd(lr = 0.05, momentum = 0.9)"),
    ("adam_max", "max", ", padding_idx = 2", "adam(lr = 0.01)"),
    ("adagrad_mean", "mean", "", "adagrad(lr = 0.05)"),
    ("rowwise_sum", "sum", ", padding_idx = 2", "rowwise_adagrad(lr = 0.05)"),
    # sparse = dense: the densified gradient, every row but padding steps.
    ("dense_adam", "mean", ", padding_idx = 2", "adam(lr = 0.01, sparse = dense)"),
    ("dense_momentum", "sum", "", "sgd(lr = 0.05, momentum = 0.9, sparse = dense)"),
    # sparse = catchup: lagging rows caught up before each kernel and by
    # catch_up (the recsys example's optimizer).
    ("catchup_adamw", "sum", "", "adamw(lr = 0.01, weight_decay = 0.1, sparse = catchup)"),
    ("catchup_momentum", "mean", ", padding_idx = 2",
     "sgd(lr = 0.05, momentum = 0.9, weight_decay = 0.01, sparse = catchup)"),
    ("catchup_rmsprop", "sum", "",
     "rmsprop(lr = 0.001, momentum = 0.5, centered = true, sparse = catchup)"),
    # nn.Embedding's options and clipping with embeddings.
    ("max_norm_freq", "mean", "", "adam(lr = 0.01)",
     ", max_norm = 0.9, scale_grad_by_freq = true"),
    ("max_norm1_catchup_clip", "sum", ", padding_idx = 2",
     "adam(lr = 0.01, sparse = catchup, clip_grad_norm = 0.05)", ", max_norm = 2, norm_type = 1"),
    ("clip_lazy", "max", "", "sgd(lr = 0.05, momentum = 0.9, clip_grad_norm = 0.02)"),
    ("clip_dense", "mean", "", "adagrad(lr = 0.05, sparse = dense, clip_grad_norm = 0.02)"),
]


# K-Winners between two layers: the winners (boosted by the duty cycles,
# ties to the lower index), their gradient and the duty-cycle buffer.
KWIN = """
model KWin {{
  input x : f32[B, 20]
  target y : i64[B]
  param fc1 : linear(20, 48)
  param kw : kwinners(48, {kw})
  param fc2 : linear(48, 7)
  forward {{
    out = fc2(kw(fc1(x)))
    return out
  }}
  loss = cross_entropy(out, y)
  optimizer = sgd(lr = 0.05, momentum = 0.9)
}}
"""

KWIN_CASES = [
    ("boost", "percent_on = 0.25, boost_strength = 1.5"),
    ("boost_decay", "percent_on = 0.1, k_inference_factor = 1.5, boost_strength = 2.0, "
                    "boost_strength_factor = 0.9, boost_decay_period = 3, duty_cycle_period = 40"),
]


# Dynamic sparsity: SET and RigL change fc1's pattern every 2 steps (on
# the host copy of a device model; RigL's growth scores from the batch the
# device captured).
DYN = """
model Dyn {{
  input x : f32[B, 20]
  target y : i64[B]
  param fc1 : sparse_linear(20, 16, sparsity = 0.7, dynamic = {kind}, delta_t = 2, t_end = 7,
                            drop_fraction = 0.3{extra})
  param fc2 : linear(16, 7)
  forward {{
    out = fc2(relu(fc1(x)))
    return out
  }}
  loss = cross_entropy(out, y)
  optimizer = {optimizer}
}}
"""

DYN_CASES = [
    ("set", "set", "", "sgd(lr = 0.05, momentum = 0.9)"),
    ("rigl", "rigl", ", max_size = 64", "adam(lr = 0.01)"),
]


# Masked 2-D convolutions (NCHW views of a flat input, groups, strides,
# padding, dilation, a pruning schedule), relu on rank 4, flatten.
CONV = """
model Conv {{
  input x : f32[B, 72]
  target y : i64[B]
  param c1 : masked_conv2d(2, 4, {k1}, sparsity = 0.3{c1})
  param c2 : masked_conv2d(4, {o2}, {k2}{c2})
  param fc : linear({f}, 7)
  forward {{
    img = unflatten(x, 2, 6, 6)
    h1 = relu(c1(img))
    h2 = relu(c2(h1))
    out = fc(flatten(h2))
    return out
  }}
  loss = cross_entropy(out, y)
  optimizer = sgd(lr = 0.05, momentum = 0.9)
}}
"""

CONV_CASES = [
    # (name, c1 kernel, c1 options, c2 outputs, c2 kernel, c2 options, fc inputs)
    ("padded_groups", "3", ", padding = 1, prune = gradual, final = 0.6, begin = 2, end = 6, "
     "every = 2", 6, "3", ", stride = 2, padding = 1, groups = 2, sparsity = 0.2", 54),
    ("grouped_then_dilated", "1", ", groups = 2", 4, "[3, 2]",
     ", stride = [2, 1], padding = [0, 1], dilation = [2, 2]", 24),
]


# Masked LSTMs: a sequence layer feeding a last-state layer (without
# biases), batch- or sequence-first, with a pruning schedule.
LSTM = """
model Lstm {{
  input x : f32[{xdims}, 3]
  target y : i64[B]
  param r1 : masked_lstm(3, 4, batch_first = {bf}, sparsity = 0.3{prune})
  param r2 : masked_lstm(4, 3, batch_first = {bf}, bias = false, sparsity = 0.5, output = last)
  param fc : linear(3, 7)
  forward {{
    out = fc(r2(r1(x)))
    return out
  }}
  loss = cross_entropy(out, y)
  optimizer = {optimizer}
}}
"""

# A sequence output under MSE: the pointwise loss on [B, T, H].
LSTM_SEQ = """
model LstmSeq {
  input x : f32[B, 5, 3]
  target y : f32[B, 5, 4]
  param r : masked_lstm(3, 4, batch_first = true, sparsity = 0.4)
  forward {
    h = r(x)
    return h
  }
  loss = mse(h, y)
  optimizer = adam(lr = 0.01)
}
"""

LSTM_CASES = [
    ("batch_first", "B, 5", "true", "", "adam(lr = 0.01)"),
    ("seq_first_pruned", "5, B", "false",
     ", prune = gradual, initial = 0.25, final = 0.75, begin = 2, end = 6, every = 2",
     "sgd(lr = 0.1, momentum = 0.9)"),
]


# sparse_quantized_linear: the fake-quantized training forward, and the
# forward entry in int8 (fc1) and in f32 (fc2, 4 bits).
QUANT = """
model Quant {
  input x : f32[B, 20]
  target y : i64[B]
  param fc1 : sparse_quantized_linear(20, 16, sparsity = 0.5, inference = int8)
  param fc2 : sparse_quantized_linear(16, 7, sparsity = 0.3, bits = 4, inference = f32)
  forward {
    out = fc2(relu(fc1(x)))
    return out
  }
  loss = cross_entropy(out, y)
  optimizer = sgd(lr = 0.05, momentum = 0.9)
}
"""


# KWinners2d after a convolution, among all C*H*W values of a sample or,
# `local`, among the channels at each location.
CONV_KW = """
model ConvKw {{
  input x : f32[B, 72]
  target y : i64[B]
  param c1 : masked_conv2d(2, 4, 3, padding = 1)
  param kw : kwinners2d(4, percent_on = 0.3, boost_strength = 1.0{local})
  param fc : linear(144, 7)
  forward {{
    out = fc(flatten(kw(c1(unflatten(x, 2, 6, 6)))))
    return out
  }}
  loss = cross_entropy(out, y)
  optimizer = sgd(lr = 0.05, momentum = 0.9)
}}
"""


class CudaEmulatedTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="sparsec-cuda-emu-")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def batch(self, rng, target, out):
        x = rng.standard_normal((BATCH, 20)).astype(np.float32)
        if target.startswith("i64"):
            y = rng.integers(0, out, BATCH).astype(np.int64)
        elif out == 3 and "bce" in self.current:
            y = (rng.random((BATCH, out)) < 0.5).astype(np.float32)
        else:
            y = rng.standard_normal((BATCH, out)).astype(np.float32)
        return x, y

    @staticmethod
    def rel(a, b):
        """max |a - b| relative to max |b| (a scale error of 1e-4 in any
        gradient shows, however small its values)."""
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))

    def train_both(self, text, stem, seed, batches, batch=None):
        """Compiles `text` with the emulated CUDA functions, trains it on
        "cpu" and "cuda" from `seed` on the input lists `batches` yields,
        checks losses, first gradients and final parameters; returns both
        models (closed by the caller)."""
        lib = oracle.compile_text(text, f"{self.tmp.name}/{stem}", stem,
                                  flags=("--target=cpu,cuda", "--cuda-emulate"))
        cpu = lib.instance(seed=seed, device="cpu")
        dev = lib.instance(seed=seed, device="cuda")
        self.assertEqual(cpu.device(), "cpu")
        self.assertEqual(dev.device(), "cuda (emulated on the host)")
        names = [p["name"] for p in cpu.param_info()]
        for step in range(STEPS):
            inputs = next(batches)
            lc, ld = cpu.train_step(inputs, batch), dev.train_step(inputs, batch)
            tol = 1e-5 if step == 0 else 1e-4
            self.assertLessEqual(self.rel(ld, lc), tol, f"loss of step {step + 1}")
            if step == 0:
                for p in names:
                    self.assertLessEqual(self.rel(dev.grad(p), cpu.grad(p)), 1e-5,
                                         f"first gradient of {p}")
        for p in names:
            self.assertLessEqual(self.rel(dev.values(p), cpu.values(p)), 1e-4, p)
        self.assertEqual(dev.step_count(), STEPS)
        return cpu, dev

    def test_models_train_alike_on_both_devices(self):
        for name, loss, target, out, opt in CASES:
            self.current = name
            with self.subTest(model=name):
                text = NET.format(loss=loss, target=target, out=out, optimizer=opt)
                rng = np.random.default_rng(5)
                batches = (list(self.batch(rng, target, out)) for _ in iter(int, 1))
                cpu, dev = self.train_both(text, name, 11, batches)
                x, _ = self.batch(rng, target, out)
                oc = cpu.forward([x], (BATCH, out))
                od = dev.forward([x], (BATCH, out))
                self.assertLessEqual(self.rel(od, oc), 1e-4, "forward")
                cpu.close()
                dev.close()

    def test_matmul_model_trains_alike_on_both_devices(self):
        self.current = "matmul"
        rng = np.random.default_rng(12)
        batches = (list(self.batch(rng, "f32[B, 3]", 3)) for _ in iter(int, 1))
        cpu, dev = self.train_both(MATMUL, "matmul", 2, batches)
        x, _ = self.batch(rng, "f32[B, 3]", 3)
        oc, od = cpu.forward([x], (BATCH, 3)), dev.forward([x], (BATCH, 3))
        self.assertLessEqual(self.rel(od, oc), 1e-4, "forward")
        cpu.close()
        dev.close()

    def test_quantized_model_trains_alike_on_both_devices(self):
        self.current = "quant"
        rng = np.random.default_rng(61)
        batches = (list(self.batch(rng, "i64[B]", 7)) for _ in iter(int, 1))
        cpu, dev = self.train_both(QUANT, "quant", 3, batches)
        x, _ = self.batch(rng, "i64[B]", 7)
        oc, od = cpu.forward([x], (BATCH, 7)), dev.forward([x], (BATCH, 7))
        # The int8 forward sums exactly; its scales and levels are the CPU's.
        self.assertLessEqual(self.rel(od, oc), 1e-5, "forward (int8, then f32 4-bit)")
        cpu.close()
        dev.close()

    def test_masked_models_train_alike_on_both_devices(self):
        for name, prune1, prune2, opt in MASKED_CASES:
            self.current = name
            with self.subTest(model=name):
                text = MASKED.format(prune1=prune1, prune2=prune2, optimizer=opt)
                rng = np.random.default_rng(8)
                batches = (list(self.batch(rng, "i64[B]", 7)) for _ in iter(int, 1))
                cpu, dev = self.train_both(text, "masked_" + name, 13, batches)
                for p in ("fc1", "fc2"):  # the same masks, pruned weights 0
                    mask = dev.values(p + ".weight_mask")
                    np.testing.assert_array_equal(mask, cpu.values(p + ".weight_mask"))
                    self.assertTrue(np.all(dev.values(p + ".weight")[mask == 0] == 0))
                    self.assertGreater(float((mask == 0).mean()), 0.29, p)
                # Weights written where the mask is 0 still do not count:
                # the kernels multiply by the mask as they read.
                for m in (cpu, dev):
                    m.values("fc1.weight")[:] = 0.25
                x, _ = self.batch(rng, "i64[B]", 7)
                oc, od = cpu.forward([x], (BATCH, 7)), dev.forward([x], (BATCH, 7))
                self.assertLessEqual(self.rel(od, oc), 1e-5, "forward, masked")
                cpu.close()
                dev.close()

    def test_kwinners_models_train_alike_on_both_devices(self):
        for name, kw in KWIN_CASES:
            self.current = name
            with self.subTest(model=name):
                rng = np.random.default_rng(21)
                batches = (list(self.batch(rng, "i64[B]", 7)) for _ in iter(int, 1))
                cpu, dev = self.train_both(KWIN.format(kw=kw), "kwin_" + name, 4, batches)
                x, _ = self.batch(rng, "i64[B]", 7)
                oc, od = cpu.forward([x], (BATCH, 7)), dev.forward([x], (BATCH, 7))
                self.assertLessEqual(self.rel(od, oc), 1e-4, "forward (k_inference)")
                cpu.close()
                dev.close()

    def test_kwinners_ties_go_to_the_lower_index(self):
        """K-Winners straight on small integer inputs: many equal boosted
        values, so the cut among the ties decides the winners."""
        text = KWIN.replace("param fc1 : linear(20, 48)\n", "").replace(
            "kwinners(48,", "kwinners(20,").replace("linear(48, 7)", "linear(20, 7)").replace(
            "fc2(kw(fc1(x)))", "fc2(kw(x))")
        rng = np.random.default_rng(2)

        def batches():
            while True:
                yield [rng.integers(-2, 3, (BATCH, 20)).astype(np.float32),
                       rng.integers(0, 7, BATCH).astype(np.int64)]
        cpu, dev = self.train_both(text.format(kw="percent_on = 0.3, boost_strength = 0.0"),
                                   "kwin_ties", 6, batches())
        x = rng.integers(-2, 3, (BATCH, 20)).astype(np.float32)
        oc, od = cpu.forward([x], (BATCH, 7)), dev.forward([x], (BATCH, 7))
        self.assertLessEqual(self.rel(od, oc), 1e-5, "forward")
        cpu.close()
        dev.close()

    def test_dynamic_sparsity_trains_alike_on_both_devices(self):
        for name, kind, extra, opt in DYN_CASES:
            self.current = name
            with self.subTest(model=name):
                rng = np.random.default_rng(31)
                batches = (list(self.batch(rng, "i64[B]", 7)) for _ in iter(int, 1))
                text = DYN.format(kind=kind, extra=extra, optimizer=opt)
                cpu, dev = self.train_both(text, "dyn_" + name, 9, batches)
                pos_c, crd_c = cpu.csr("fc1.weight", 16, 96)
                pos_d, crd_d = dev.csr("fc1.weight", 16, 96)
                np.testing.assert_array_equal(pos_d, pos_c)
                np.testing.assert_array_equal(crd_d, crd_c)
                x, _ = self.batch(rng, "i64[B]", 7)
                oc, od = cpu.forward([x], (BATCH, 7)), dev.forward([x], (BATCH, 7))
                self.assertLessEqual(self.rel(od, oc), 1e-4, "forward after the updates")
                cpu.close()
                dev.close()

    def test_conv_models_train_alike_on_both_devices(self):
        for name, k1, c1, o2, k2, c2, f in CONV_CASES:
            self.current = name
            with self.subTest(model=name):
                rng = np.random.default_rng(41)

                def batches():
                    while True:
                        yield [rng.standard_normal((BATCH, 72)).astype(np.float32),
                               rng.integers(0, 7, BATCH).astype(np.int64)]
                text = CONV.format(k1=k1, c1=c1, o2=o2, k2=k2, c2=c2, f=f)
                cpu, dev = self.train_both(text, "conv_" + name, 5, batches())
                x = rng.standard_normal((BATCH, 72)).astype(np.float32)
                oc, od = cpu.forward([x], (BATCH, 7)), dev.forward([x], (BATCH, 7))
                self.assertLessEqual(self.rel(od, oc), 1e-4, "forward")
                mask = dev.values("c1.weight_mask")
                np.testing.assert_array_equal(mask, cpu.values("c1.weight_mask"))
                cpu.close()
                dev.close()

    def test_lstm_models_train_alike_on_both_devices(self):
        for name, xdims, bf, prune, opt in LSTM_CASES:
            self.current = name
            with self.subTest(model=name):
                rng = np.random.default_rng(51)
                shape = (BATCH, 5, 3) if bf == "true" else (5, BATCH, 3)

                def batches():
                    while True:
                        yield [rng.standard_normal(shape).astype(np.float32),
                               rng.integers(0, 7, BATCH).astype(np.int64)]
                text = LSTM.format(xdims=xdims, bf=bf, prune=prune, optimizer=opt)
                cpu, dev = self.train_both(text, "lstm_" + name, 8, batches(), BATCH)
                x = rng.standard_normal(shape).astype(np.float32)
                oc = cpu.forward([x], (BATCH, 7), batch=BATCH)
                od = dev.forward([x], (BATCH, 7), batch=BATCH)
                self.assertLessEqual(self.rel(od, oc), 1e-4, "forward")
                cpu.close()
                dev.close()

    def test_kwinners2d_trains_alike_on_both_devices(self):
        for local in ("", ", local = true"):
            self.current = "kwinners2d" + local
            with self.subTest(local=bool(local)):
                rng = np.random.default_rng(71)

                def batches():
                    while True:
                        yield [rng.standard_normal((BATCH, 72)).astype(np.float32),
                               rng.integers(0, 7, BATCH).astype(np.int64)]
                text = CONV_KW.format(local=local)
                cpu, dev = self.train_both(text, "convkw" + ("_local" if local else ""), 6,
                                           batches())
                x = rng.standard_normal((BATCH, 72)).astype(np.float32)
                oc, od = cpu.forward([x], (BATCH, 7)), dev.forward([x], (BATCH, 7))
                self.assertLessEqual(self.rel(od, oc), 1e-4, "forward")
                cpu.close()
                dev.close()

    def test_sequence_mse_trains_alike_on_both_devices(self):
        self.current = "lstm_seq"
        rng = np.random.default_rng(81)

        def batches():
            while True:
                yield [rng.standard_normal((BATCH, 5, 3)).astype(np.float32),
                       rng.standard_normal((BATCH, 5, 4)).astype(np.float32)]
        cpu, dev = self.train_both(LSTM_SEQ, "lstm_seq", 4, batches())
        x = rng.standard_normal((BATCH, 5, 3)).astype(np.float32)
        oc, od = cpu.forward([x], (BATCH, 5, 4)), dev.forward([x], (BATCH, 5, 4))
        self.assertLessEqual(self.rel(od, oc), 1e-4, "forward")
        cpu.close()
        dev.close()

    def test_embedding_models_train_alike_on_both_devices(self):
        rng = np.random.default_rng(17)

        def batches():
            while True:
                # Few distinct ids: repeats in every batch, padding ids.
                yield [rng.integers(0, 8, BATCH).astype(np.int64),
                       rng.integers(0, 6, (BATCH, 5)).astype(np.int64),
                       rng.standard_normal((BATCH, 6)).astype(np.float32),
                       (rng.random((BATCH, 1)) < 0.5).astype(np.float32)]
        for name, mode, pad, opt, *user in EMB_CASES:
            with self.subTest(model=name):
                text = EMB.format(mode=mode, bag_pad=pad, optimizer=opt,
                                  user_opts=user[0] if user else "")
                cpu, dev = self.train_both(text, "emb_" + name, 3, batches())
                if "catchup" in opt:
                    cpu.catch_up()
                    dev.catch_up()
                    for p in (i["name"] for i in cpu.param_info()):
                        self.assertLessEqual(self.rel(dev.values(p), cpu.values(p)), 1e-4,
                                             f"{p} after catch_up")
                cpu.close()
                dev.close()

if __name__ == "__main__":
    unittest.main()
