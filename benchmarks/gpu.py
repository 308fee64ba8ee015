#!/usr/bin/env python3
"""gpu.py - P1, P2, P4 and the P1 sparsity sweep on an NVIDIA GPU: sparsec
(models created with <Model>_create_on(seed, "cuda"), sparsec-bench
--device=cuda) against PyTorch CUDA (cuBLAS dense, torch.sparse CSR/COO).

  P1     4096 -> 4096 sparse_linear forward, 90% sparse, batch 256
  P2     its train step (forward, mse, backward, SGD)
  P3     embedding 1,000,000 x 64, 4096 Zipf ids: SGD, Adagrad, Adam
         against nn.Embedding(sparse=True) with SGD, Adagrad, SparseAdam,
         and against sparsec's own step with the ids sorted on the host
         (SPARSEC_CUDA_SORT=host) instead of on the device
  P4     one Fashion-MNIST epoch of the 784 -> 2000 (90% sparse) -> 10 MLP
  SWEEP  P1 at 50, 70, 80, 90, 95, 99% sparsity

The sparsec model API takes host arrays, so its times include copying the
inputs in and the output out; the PyTorch side does the same (inputs moved
to the GPU and the output back inside the timed call) so both measure one
call of an application that holds its data on the host. Times are medians
of repetitions (torch.cuda.synchronize() ends every PyTorch call; the
sparsec calls are synchronous). Printed: times and ratio = torch / sparsec
(> 1: sparsec faster), and the issue's targets: beat cuBLAS dense from 80%
sparsity on P1 (SWEEP), an Adam embedding step at least 5x faster than
SparseAdam (P3).

Needs a CUDA driver and GPU, a torch with CUDA, and a build with
sparsec-bench (benchmarks/CMakeLists.txt builds the layer and MLP models
with TARGET cuda). Without a GPU it says why and exits 2: nothing is
measured and no result is printed.

Usage: /usr/bin/python3 benchmarks/gpu.py --build-dir build [--quick]
       [--only P1,P2,P4,SWEEP] [--fashion-dir DIR]
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import torch_workloads as tw  # noqa: E402

SWEEP = (50, 70, 80, 90, 95, 99)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--build-dir", required=True, help="build tree with bin/sparsec-bench")
    p.add_argument("--quick", action="store_true", help="3 repetitions, 0.2 s each")
    p.add_argument("--only", default="P1,P2,P3,P4,SWEEP")
    p.add_argument("--fashion-dir", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--epoch-limit", type=int, default=0, help="samples of a P4 epoch")
    a = p.parse_args()
    a.only = [w.strip().upper() for w in a.only.split(",") if w.strip()]
    bad = [w for w in a.only if w not in ("P1", "P2", "P3", "P4", "SWEEP")]
    if bad:
        p.error("unknown workload(s) %s (P1, P2, P3, P4, SWEEP)" % ",".join(bad))
    return a


def need_gpu(bench):
    """Exits 2 with the reason unless torch and sparsec both see a GPU."""
    try:
        tw.load_torch(os.cpu_count() or 1)
    except tw.TorchMissing as e:
        print("gpu.py: %s cannot import torch (%s); nothing measured" %
              (sys.executable, e.__cause__ or e), file=sys.stderr)
        sys.exit(2)
    torch = tw.torch
    if not torch.cuda.is_available():
        print("gpu.py: torch %s sees no CUDA device; nothing measured" % torch.__version__,
              file=sys.stderr)
        sys.exit(2)
    probe = subprocess.run([bench, "--device=cuda", "--benchmark_filter=Layer/forward/90",
                            "--benchmark_min_time=0.001"], capture_output=True, text=True)
    if probe.returncode != 0:
        print("gpu.py: sparsec cannot use the GPU: %s" % probe.stderr.strip()[-500:],
              file=sys.stderr)
        sys.exit(2)
    return torch


def sparsec_times(bench, regex, args, reps, min_time, env=None):
    """{benchmark name: median seconds} of sparsec-bench --device=cuda
    (with the variables of `env` added to the environment)."""
    cmd = [bench, "--device=cuda", "--benchmark_filter=" + regex, "--benchmark_format=json",
           "--benchmark_min_time=%g" % min_time, "--benchmark_repetitions=%d" % reps,
           "--benchmark_report_aggregates_only=true", "--fashion-dir=" + args.fashion_dir,
           "--epoch-limit=%d" % args.epoch_limit]
    tw.progress("sparsec on the GPU: " + regex)
    proc = subprocess.run(cmd, capture_output=True, text=True,
                          env=dict(os.environ, **(env or {})))
    if proc.returncode != 0:
        sys.exit("gpu.py: sparsec-bench failed: %s" % proc.stderr.strip()[-2000:])
    scale = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}
    out = {}
    for b in json.loads(proc.stdout).get("benchmarks", []):
        if b.get("error_occurred"):
            sys.exit("gpu.py: %s: %s" % (b["name"], b.get("error_message")))
        if b.get("aggregate_name") == "median":
            name = re.sub(r"/(real_time|iterations:\d+)", "", b["run_name"])
            out[name] = b["real_time"] * scale[b["time_unit"]]
    return out


def synced(torch, fn):
    def call():
        fn()
        torch.cuda.synchronize()
    return call


def torch_layer(torch, timer, percent, train):
    """P1 (forward) or P2 (train step) of the 4096 layer on the GPU:
    {"dense": cuBLAS, "sparse": torch.sparse} seconds; inputs copied in and
    the output (P1) out inside each call."""
    F, dev = tw.F, "cuda"
    rows, cols, values = tw.sparse_pattern(percent / 100.0)
    x, t = tw.layer_inputs()
    out = {}
    if not train:
        with torch.no_grad():
            w = tw.dense_weight(rows, cols, values).to(dev)
            out["dense"] = timer(synced(torch, lambda: F.linear(x.to(dev), w).cpu()))
            ws = tw.csr_weight(rows, cols, values).to(dev)
            out["sparse"] = timer(synced(
                torch, lambda: torch.sparse.mm(ws, x.to(dev).t()).t().cpu()))
        return out
    w = torch.nn.Parameter(tw.dense_weight(rows, cols, values).to(dev))
    out["dense"] = timer(synced(torch, tw.sgd_step(
        [w], lambda: F.mse_loss(F.linear(x.to(dev), w), t.to(dev)))))
    v = torch.nn.Parameter(values.clone().to(dev))
    idx = torch.stack([rows, cols]).to(dev)

    def loss_sparse():
        ws = torch.sparse_coo_tensor(idx, v, (tw.FEATURES, tw.FEATURES))
        return F.mse_loss(torch.sparse.mm(ws, x.to(dev).t()), t.to(dev).t())
    out["sparse"] = timer(synced(torch, tw.sgd_step([v], loss_sparse)))
    return out


def torch_embedding(torch, timer):
    """P3 on the GPU: {optimizer: seconds} of nn.Embedding(sparse=True), mse
    of the looked-up rows, backward, step; ids and target copied in."""
    batches = tw.zipf_batches()
    target = torch.rand(tw.EMB_BATCH, tw.EMB_DIM, generator=torch.Generator().manual_seed(6))
    make = {"sgd": lambda p: torch.optim.SGD(p, lr=0.01),
            "adagrad": lambda p: torch.optim.Adagrad(p, lr=0.01),
            "adam": lambda p: torch.optim.SparseAdam(p, lr=0.001)}
    out = {}
    for name, opt_of in make.items():
        emb = torch.nn.Embedding(tw.EMB_ROWS, tw.EMB_DIM, sparse=True).to("cuda")
        opt = opt_of(list(emb.parameters()))
        state = {"next": 0}

        def step():
            ids = batches[state["next"]].to("cuda")
            state["next"] = (state["next"] + 1) % len(batches)
            opt.zero_grad(set_to_none=True)
            tw.F.mse_loss(emb(ids), target.to("cuda")).backward()
            opt.step()
        out[name] = timer(synced(torch, step))
        del emb, opt
    return out


def torch_fashion(torch, reps, args):
    """P4: one dense epoch on the GPU, each batch copied in per step."""
    F, dev = tw.F, "cuda"
    x, y, _ = tw.fashion_training_set(args.fashion_dir, args.epoch_limit)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(784, 2000), torch.nn.ReLU(),
                                torch.nn.Linear(2000, 10)).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    times = []
    for _ in range(reps + 1):
        start = time.perf_counter()
        for i in range(0, len(x), 64):
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x[i:i + 64].to(dev)), y[i:i + 64].to(dev)).backward()
            opt.step()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def row(name, ours, theirs):
    cells = ["%-22s %10.3f ms" % (name, ours * 1e3)]
    for k, v in theirs.items():
        cells.append("%s %.3f ms (x%.2f)" % (k, v * 1e3, v / ours))
    print("  ".join(cells))


def main():
    args = parse_args()
    bench = os.path.join(args.build_dir, "bin", "sparsec-bench")
    if not os.access(bench, os.X_OK):
        sys.exit("gpu.py: no %s; build the benchmarks first" % bench)
    torch = need_gpu(bench)
    reps, min_time = (3, 0.2) if args.quick else (7, 0.5)
    timer = tw.Timer(reps, min_time)
    print("GPU: %s; %s" % (torch.cuda.get_device_name(0), tw.torch_info()))
    print("ratio = torch / sparsec (> 1: sparsec faster)")
    if "P1" in args.only or "SWEEP" in args.only:
        percents = SWEEP if "SWEEP" in args.only else (90,)
        ours = sparsec_times(bench, "Layer/forward/", args, reps, min_time)
        met = True
        for p in percents:
            theirs = torch_layer(torch, timer, p, False)
            t = ours["Layer/forward/%d" % p]
            row("P1 forward %d%%" % p, t, theirs)
            if p >= 80:
                met = met and t < theirs["dense"]
        if "SWEEP" in args.only:
            print("target: beat cuBLAS dense from 80%% sparsity: %s" %
                  ("MET" if met else "MISSED"))
    if "P2" in args.only:
        ours = sparsec_times(bench, "Layer/train_step/90", args, reps, min_time)
        row("P2 train_step 90%", ours["Layer/train_step/90"], torch_layer(torch, timer, 90, True))
    if "P3" in args.only:
        ours = sparsec_times(bench, "Embedding/train_step/", args, reps, min_time)
        # The same steps with the ids sorted on the host (the runtime's
        # other row order): which one is faster on this GPU.
        host_sort = sparsec_times(bench, "Embedding/train_step/", args, reps, min_time,
                                  {"SPARSEC_CUDA_SORT": "host"})
        theirs = torch_embedding(torch, timer)
        for name in ("sgd", "adagrad", "adam"):
            key = "Embedding/train_step/" + name
            row("P3 embedding %s" % name, ours[key],
                {"torch": theirs[name], "sparsec host sort": host_sort[key]})
        ratio = theirs["adam"] / ours["Embedding/train_step/adam"]
        print("target: Adam step >= 5x SparseAdam: %s (x%.2f)" %
              ("MET" if ratio >= 5 else "MISSED", ratio))
    if "P4" in args.only:
        ours = sparsec_times(bench, "FashionMLP/epoch", args, reps, min_time)
        name = next(iter(ours))
        row("P4 epoch", ours[name], {"dense": torch_fashion(torch, reps, args)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
