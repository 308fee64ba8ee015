"""torch_workloads.py - The PyTorch side of the benchmark workloads.

The same workloads as sparsec-bench (docs/performance.md), run in PyTorch in
this process: P1 (4096 -> 4096 layer forward: torch.sparse CSR mm and dense
nn.Linear), P2 (its train step: torch.sparse values as the parameter, a
Hadamard-masked dense weight, dense), P3 (nn.Embedding(sparse=True) with SGD,
Adagrad, SparseAdam), P4 (one dense epoch of the Fashion-MNIST MLP). Every
function returns {variant: seconds per call, median over repetitions}.

torch is imported by `load_torch()` only, after run.py has set the thread
environment, so importing this module never needs torch.
"""

import gzip
import os
import statistics
import sys
import time
import warnings

torch = None  # set by load_torch()
F = None

FEATURES = 4096
LAYER_BATCH = 256
EMB_ROWS, EMB_DIM, EMB_BATCH, EMB_KEYS, EMB_BATCHES = 1000000, 64, 4096, 10000, 16
MNIST_FEATURES, MNIST_HIDDEN, MNIST_CLASSES, MNIST_TRAIN = 784, 2000, 10, 60000


class TorchMissing(RuntimeError):
    pass


def load_torch(threads):
    """Imports torch with `threads` intra-op threads (OpenBLAS included)."""
    global torch, F
    if torch is not None:
        return torch
    try:
        import torch as t
        import torch.nn.functional as f
    except ImportError as e:
        raise TorchMissing(
            "PyTorch cannot be imported by %s (%s): install Debian's python3-torch "
            "(and libopenblas0-pthread for the dense path) and run this script with "
            "/usr/bin/python3, or pass --no-torch" % (sys.executable, e)) from e
    t.set_num_threads(threads)
    # torch 1.13 warns that CSR support is beta on every CSR tensor it builds.
    warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
    torch, F = t, f
    return t


def torch_info():
    """One line naming torch, its threads and its BLAS."""
    blas = "?"
    for line in torch.__config__.show().splitlines():
        if "BLAS_INFO=" in line:
            blas = line.split("BLAS_INFO=")[1].split(",")[0]
    return "torch %s, %d threads, BLAS_INFO=%s" % (torch.__version__, torch.get_num_threads(),
                                                  blas)


class Timer:
    """Google Benchmark-like timing: each repetition calls fn until min_time
    has passed (at least once) and yields the mean; the result is the median
    of the repetitions. One untimed warm-up call comes first."""

    def __init__(self, repetitions, min_time):
        self.repetitions = repetitions
        self.min_time = min_time

    def __call__(self, fn):
        fn()
        times = []
        for _ in range(self.repetitions):
            calls, start = 0, time.perf_counter()
            while True:
                fn()
                calls += 1
                elapsed = time.perf_counter() - start
                if elapsed >= self.min_time:
                    break
            times.append(elapsed / calls)
        return statistics.median(times)


def progress(msg):
    print("  [torch] " + msg, file=sys.stderr, flush=True)


# --- P1 / P2 / sweep: the 4096 -> 4096 layer ---------------------------------

def sparse_pattern(sparsity, seed=0):
    """Exactly round((1 - sparsity) n^2) uniform positions of the n x n weight,
    row-major (as the sparsec runtime draws them), values U(-1/sqrt(k), 1/sqrt(k))
    with k the sparse fan-in. Returns (rows, cols, values)."""
    n = FEATURES
    nnz = int(round((1.0 - sparsity) * n * n))
    g = torch.Generator().manual_seed(seed)
    flat = torch.randperm(n * n, generator=g)[:nnz].sort().values
    rows, cols = flat // n, flat % n
    bound = 1.0 / max(1.0, nnz / n) ** 0.5
    values = torch.empty(nnz).uniform_(-bound, bound, generator=g)
    return rows, cols, values


def csr_weight(rows, cols, values):
    n = FEATURES
    crow = torch.zeros(n + 1, dtype=torch.int64)
    crow[1:] = torch.bincount(rows, minlength=n).cumsum(0)
    return torch.sparse_csr_tensor(crow, cols, values, size=(n, n))


def dense_weight(rows, cols, values):
    w = torch.zeros(FEATURES, FEATURES)
    w[rows, cols] = values
    return w


def layer_inputs():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(LAYER_BATCH, FEATURES, generator=g)
    t = torch.rand(LAYER_BATCH, FEATURES, generator=g)
    return x, t


def layer_forward(timer, sparsity, variants):
    """P1 (and the sweep): y = x W^T. `variants` picks from "sparse_csr"
    (torch.sparse.mm of the CSR weight and x^T, x^T made contiguous once
    outside the timing, the output left as W x^T) and "dense" (F.linear)."""
    rows, cols, values = sparse_pattern(sparsity)
    x, _ = layer_inputs()
    out = {}
    with torch.no_grad():
        if "sparse_csr" in variants:
            w, xt = csr_weight(rows, cols, values), x.t().contiguous()
            progress("P1 %g%%: torch.sparse CSR mm" % (sparsity * 100))
            out["sparse_csr"] = timer(lambda: torch.sparse.mm(w, xt))
        if "dense" in variants:
            w = dense_weight(rows, cols, values)
            progress("P1 %g%%: dense F.linear" % (sparsity * 100))
            out["dense"] = timer(lambda: F.linear(x, w))
    return out


def sgd_step(params, loss_fn, lr=0.01):
    opt = torch.optim.SGD(params, lr=lr)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn()
        loss.backward()
        opt.step()
    return step


def layer_train_step(timer, sparsity, variants):
    """P2: forward, mse loss, backward, SGD(lr=0.01). Variants: "sparse_values"
    (the nnz values are the parameter of a COO weight, torch.sparse.mm),
    "masked_dense" (dense weight times a fixed 0/1 mask), "dense" (nn.Linear
    weight without a mask)."""
    rows, cols, values = sparse_pattern(sparsity)
    x, t = layer_inputs()
    out = {}
    if "sparse_values" in variants:
        v = torch.nn.Parameter(values.clone())
        idx = torch.stack([rows, cols])
        xt, tt = x.t().contiguous(), t.t().contiguous()

        def loss_sparse():
            w = torch.sparse_coo_tensor(idx, v, (FEATURES, FEATURES))
            return F.mse_loss(torch.sparse.mm(w, xt), tt)
        progress("P2 %g%%: torch.sparse values as parameter" % (sparsity * 100))
        out["sparse_values"] = timer(sgd_step([v], loss_sparse))
    if "masked_dense" in variants:
        w = torch.nn.Parameter(dense_weight(rows, cols, values))
        mask = (w.detach() != 0).float()
        progress("P2 %g%%: Hadamard-masked dense" % (sparsity * 100))
        out["masked_dense"] = timer(sgd_step([w], lambda: F.mse_loss(F.linear(x, w * mask), t)))
    if "dense" in variants:
        w = torch.nn.Parameter(dense_weight(rows, cols, values))
        progress("P2 %g%%: dense" % (sparsity * 100))
        out["dense"] = timer(sgd_step([w], lambda: F.mse_loss(F.linear(x, w), t)))
    return out


# --- P3: embedding ------------------------------------------------------------

def zipf_batches(seed=5):
    """EMB_BATCHES batches of EMB_BATCH ids, P(rank k) ~ 1/(k+1) over EMB_KEYS
    ranks, id = 97 k mod EMB_ROWS (the distribution of bench::zipfIds)."""
    g = torch.Generator().manual_seed(seed)
    weights = 1.0 / torch.arange(1, EMB_KEYS + 1, dtype=torch.float64)
    ranks = torch.multinomial(weights, EMB_BATCH * EMB_BATCHES, replacement=True, generator=g)
    ids = (ranks * 97) % EMB_ROWS
    return list(ids.view(EMB_BATCHES, EMB_BATCH))


EMB_OPTIMIZERS = {
    "sgd": lambda p: torch.optim.SGD(p, lr=0.01),
    "adagrad": lambda p: torch.optim.Adagrad(p, lr=0.01),
    "adam": lambda p: torch.optim.SparseAdam(p, lr=0.001),
}


def embedding_step(optimizer, batches, target):
    """A fresh table and optimizer, and the step that trains them."""
    emb = torch.nn.Embedding(EMB_ROWS, EMB_DIM, sparse=True)
    opt = EMB_OPTIMIZERS[optimizer](list(emb.parameters()))
    state = {"next": 0}

    def step():
        ids = batches[state["next"]]
        state["next"] = (state["next"] + 1) % EMB_BATCHES
        opt.zero_grad(set_to_none=True)
        F.mse_loss(emb(ids), target).backward()
        opt.step()
    return step, type(opt).__name__


def embedding_train_step(timer, optimizers):
    """P3: nn.Embedding(1e6, 64, sparse=True), mse of the looked-up rows
    against a target, backward, optimizer step; cycles through the id batches."""
    batches = zipf_batches()
    target = torch.rand(EMB_BATCH, EMB_DIM, generator=torch.Generator().manual_seed(6))
    out = {}
    for name in optimizers:
        step, opt_name = embedding_step(name, batches, target)
        progress("P3: nn.Embedding(sparse=True) + %s" % opt_name)
        out[name] = timer(step)
        del step  # frees the table and its state before the next one
    return out


# --- P4: Fashion-MNIST epoch --------------------------------------------------

def read_idx(path):
    import numpy as np
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def fashion_training_set(directory, limit):
    """(images f32 [N, 784] in [0, 1], labels i64 [N], source); random data of
    the same shape (as sparsec-bench uses) when the files cannot be read."""
    try:
        images = read_idx(os.path.join(directory, "train-images-idx3-ubyte.gz"))
        labels = read_idx(os.path.join(directory, "train-labels-idx1-ubyte.gz"))
        x = torch.from_numpy(images.reshape(len(images), -1).astype("float32") / 255.0)
        y = torch.from_numpy(labels.astype("int64"))
        source = "fashion-mnist"
    except OSError as e:
        progress("cannot read Fashion-MNIST (%s): random data of the same shape" % e)
        x = torch.rand(MNIST_TRAIN, MNIST_FEATURES)
        y = torch.arange(MNIST_TRAIN) % MNIST_CLASSES
        source = "random data"
    if limit:
        x, y = x[:limit], y[:limit]
    return x, y, source


def fashion_epoch(repetitions, directory, limit, batch=64):
    """P4: one epoch of the dense 784 -> 2000 -> 10 MLP, cross entropy,
    SGD(lr=0.05, momentum=0.9), batches in file order; median over
    `repetitions` epochs (each one continues training the same model)."""
    x, y, source = fashion_training_set(directory, limit)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(MNIST_FEATURES, MNIST_HIDDEN), torch.nn.ReLU(),
                                torch.nn.Linear(MNIST_HIDDEN, MNIST_CLASSES))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    batches = [(x[i:i + batch], y[i:i + batch]) for i in range(0, len(x), batch)]

    def epoch():
        for xb, yb in batches:
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(xb), yb).backward()
            opt.step()
    progress("P4: dense epoch (%d samples, %s)" % (len(x), source))
    times = []
    for _ in range(repetitions):
        start = time.perf_counter()
        epoch()
        times.append(time.perf_counter() - start)
    return {"dense": statistics.median(times)}, source
