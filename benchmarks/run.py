#!/usr/bin/env python3
"""run.py - Runs the sparsec benchmarks next to the same workloads in PyTorch.

Runs sparsec-bench (Google Benchmark over sparsec-generated libraries) and
the PyTorch versions of the workloads of docs/performance.md in one run, and
prints a table of times, ratios and targets (MET / MISSED):

  M      machine probes for the roofline (FMA rate, bandwidth, latency)
  P1     4096 -> 4096 sparse_linear forward, 90% sparse, batch 256
  P2     the same layer's train step (forward, backward, SGD)
  P3     embedding 1,000,000 x 64, 4096 Zipf ids: SGD, Adagrad, Adam
  P4     one Fashion-MNIST epoch of the 784 -> 2000 -> 10 MLP, batch 64
  P5     sparsec compile time of every example and benchmark model
  SWEEP  P1 at 50, 70, 80, 90, 95, 99% sparsity against dense

Usage (from the repository root, after building sparsec-bench):
  /usr/bin/python3 benchmarks/run.py --quick            # ~3-5 minutes
  /usr/bin/python3 benchmarks/run.py                    # full: more repetitions
  /usr/bin/python3 benchmarks/run.py --write-doc docs/performance.md
  /usr/bin/python3 benchmarks/run.py --only P1,P5 --smoke --no-torch

Progress goes to stderr, the table to stdout. Exit status: 0 when everything
ran (a MISSED target is not a failure), 1 when a benchmark program, sparsec
or the PyTorch side failed, 2 for usage errors, a missing build or torch.
"""

import argparse
import datetime
import glob
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import report  # noqa: E402
import torch_workloads as tw  # noqa: E402

WORKLOADS = ["M", "P1", "P2", "P3", "P4", "P5", "SWEEP"]
SWEEP = [50, 70, 80, 90, 95, 99]
EMB_OPTIMIZERS = ["sgd", "adagrad", "adam"]
BENCH_TIMEOUT = 1800   # seconds for one sparsec-bench run (a hang is a failure)
COMPILE_TIMEOUT = 300  # seconds for one sparsec compile

# Per mode: Google Benchmark min time and repetitions, the same for the
# PyTorch timer, epochs of P4 (and samples per epoch, 0 = all), compile runs
# per model and models compiled in P5 (0 = all).
MODES = {
    "smoke": dict(min_time=0.001, reps=1, epochs=1, epoch_limit=640, compile_reps=1,
                  compile_models=1),
    "quick": dict(min_time=0.2, reps=3, epochs=1, epoch_limit=0, compile_reps=3,
                  compile_models=0),
    "full": dict(min_time=0.5, reps=7, epochs=3, epoch_limit=0, compile_reps=5,
                 compile_models=0),
}


class Failure(Exception):
    """A benchmark program, sparsec or the PyTorch side failed."""


def progress(msg):
    print("[run.py %s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


def fatal(msg, code=2):
    print("run.py: error: " + msg, file=sys.stderr)
    sys.exit(code)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_const", const="quick", dest="mode",
                      help="few repetitions (about 3-5 minutes)")
    mode.add_argument("--smoke", action="store_const", const="smoke", dest="mode",
                      help="one short repetition of everything, for tests (no timing value)")
    p.set_defaults(mode="full")
    p.add_argument("--build-dir", help="build tree with bin/sparsec-bench and bin/sparsec "
                   "(default: build-bench, else build, under the repository root)")
    p.add_argument("--only", default=",".join(WORKLOADS),
                   help="comma-separated workloads (default: all): " + ", ".join(WORKLOADS))
    p.add_argument("--no-torch", action="store_true", help="run the sparsec side only")
    p.add_argument("--threads", type=int, default=2,
                   help="threads of both sides (SPARSEC_NUM_THREADS, torch, OpenBLAS)")
    p.add_argument("--niceness", type=int, default=-5,
                   help="run at this niceness if it is lower than the current one "
                   "(negative needs root; default -5)")
    p.add_argument("--omp-wait-policy", default="PASSIVE", choices=["PASSIVE", "ACTIVE", "default"],
                   help="OMP_WAIT_POLICY of PyTorch's OpenMP threads (default PASSIVE: they "
                   "sleep while waiting, as sparsec's pool does; 'default' leaves it unset)")
    p.add_argument("--fashion-dir", default="/usr/share/datasets/fashion-mnist",
                   help="Fashion-MNIST IDX files for P4 (random data if unreadable)")
    p.add_argument("--json", metavar="FILE", help="also write the raw results as JSON")
    p.add_argument("--from-json", metavar="FILE",
                   help="do not run anything: print (and --write-doc) results saved by --json")
    p.add_argument("--write-doc", metavar="FILE",
                   help="replace the generated section of FILE (docs/performance.md)")
    args = p.parse_args(argv)
    args.only = [w.strip().upper() for w in args.only.split(",") if w.strip()]
    bad = [w for w in args.only if w not in WORKLOADS]
    if bad:
        p.error("unknown workload(s) %s; choose from %s" % (", ".join(bad), ", ".join(WORKLOADS)))
    if args.threads < 1:
        p.error("--threads must be >= 1")
    return args


def find_build(args):
    """(build dir, sparsec-bench, sparsec): the first candidate build that has
    the programs the selected workloads need (sparsec for P5 only)."""
    dirs = [args.build_dir] if args.build_dir else [os.path.join(ROOT, "build-bench"),
                                                    os.path.join(ROOT, "build")]
    need = ["sparsec-bench"] if set(args.only) - {"P5"} else []
    need += ["sparsec"] if "P5" in args.only else []
    for d in dirs:
        paths = {p: os.path.join(d, "bin", p) for p in ("sparsec-bench", "sparsec")}
        if all(os.access(paths[p], os.X_OK) for p in need):
            return os.path.abspath(d), paths["sparsec-bench"], paths["sparsec"]
    fatal("no %s under %s; build first:\n"
          "  cmake -G Ninja -S . -B build-bench -DCMAKE_BUILD_TYPE=Release "
          "-DCMAKE_C_COMPILER=clang-22 -DCMAKE_CXX_COMPILER=clang++-22\n"
          "  ninja -C build-bench sparsec sparsec-bench\n"
          "(Google Benchmark, Debian's libbenchmark-dev, must be installed, or CMake "
          "skips the benchmarks)" % (" and ".join("bin/" + p for p in need), " or ".join(dirs)))


# --- the sparsec side ------------------------------------------------------------

def run_bench(ctx, filter_regex, what, reps=None, best=False):
    """Runs sparsec-bench on the benchmarks matching filter_regex (`reps`
    repetitions, default the mode's) and returns {name: {"time": seconds,
    "counters": {...}, "label": str}}: the median repetition, or with `best`
    the fastest one (for the machine's peaks)."""
    m = ctx.mode
    reps = reps or m["reps"]
    cmd = [ctx.bench, "--benchmark_filter=" + filter_regex, "--benchmark_format=json",
           "--benchmark_min_time=%g" % m["min_time"],
           "--benchmark_repetitions=%d" % reps,
           "--fashion-dir=" + ctx.args.fashion_dir,
           "--epoch-limit=%d" % m["epoch_limit"]]
    if reps > 1 and not best:
        cmd.append("--benchmark_report_aggregates_only=true")
    progress("sparsec: %s (%s)" % (what, filter_regex))
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=ctx.env, timeout=BENCH_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise Failure("sparsec-bench did not finish %s within %d s" %
                      (filter_regex, BENCH_TIMEOUT))
    if proc.stderr.strip():
        for line in proc.stderr.strip().splitlines():
            print("  [sparsec-bench] " + line, file=sys.stderr)
    if proc.returncode != 0:
        raise Failure("sparsec-bench failed (exit %d) on %s: %s" %
                      (proc.returncode, filter_regex, proc.stderr.strip()[-2000:]))
    try:
        data = json.loads(proc.stdout)
    except ValueError as e:
        raise Failure("sparsec-bench printed no JSON for %s: %s" % (filter_regex, e))
    out = {}
    scale = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}
    for b in data.get("benchmarks", []):
        if b.get("error_occurred"):
            raise Failure("%s: %s" % (b["name"], b.get("error_message")))
        agg = b.get("aggregate_name")
        if agg != ("median" if reps > 1 and not best else None):
            continue
        name = re.sub(r"/(real_time|iterations:\d+)", "", b.get("run_name", b["name"]))
        counters = {k: v for k, v in b.items() if isinstance(v, (int, float)) and k not in (
            "real_time", "cpu_time", "iterations", "repetitions", "repetition_index",
            "threads", "family_index", "per_family_instance_index")}
        t = b["real_time"] * scale[b["time_unit"]]
        if name not in out or t < out[name]["time"]:
            out[name] = {"time": t, "cpu_time": b["cpu_time"] * scale[b["time_unit"]],
                         "counters": counters, "label": b.get("label", "")}
    if not out:
        raise Failure("sparsec-bench ran no benchmark matching %s" % filter_regex)
    return out


def compile_times(ctx):
    """P5: median wall time of `sparsec model.sdl -o lib.so` per model."""
    files = sorted(glob.glob(os.path.join(ROOT, "examples", "**", "*.sdl"), recursive=True))
    files += sorted(glob.glob(os.path.join(ROOT, "benchmarks", "models", "*.sdl")))
    files += sorted(glob.glob(os.path.join(ctx.build, "benchmarks", "models", "*.sdl")))
    if ctx.mode["compile_models"]:
        files = files[:ctx.mode["compile_models"]]
    out = {}
    with tempfile.TemporaryDirectory(prefix="sparsec-p5-") as tmp:
        for f in files:
            rel = os.path.relpath(f, ctx.build if f.startswith(ctx.build + os.sep) else ROOT)
            if f.startswith(ctx.build + os.sep):
                rel = "<build>/" + rel
            progress("sparsec: compile %s" % rel)
            times = []
            for _ in range(ctx.mode["compile_reps"]):
                start = time.perf_counter()
                try:
                    proc = subprocess.run([ctx.sparsec, f, "-o", os.path.join(tmp, "libm.so")],
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                          text=True, env=ctx.env, timeout=COMPILE_TIMEOUT)
                except subprocess.TimeoutExpired:
                    raise Failure("sparsec did not compile %s within %d s" %
                                  (f, COMPILE_TIMEOUT))
                times.append(time.perf_counter() - start)
                if proc.returncode != 0:
                    raise Failure("sparsec failed on %s: %s" % (f, proc.stderr.strip()[-2000:]))
            out[rel] = statistics.median(times)
    return out


# --- running everything ------------------------------------------------------------

class Context:
    def __init__(self, args):
        self.args = args
        self.mode = MODES[args.mode]
        self.build, self.bench, self.sparsec = find_build(args)
        self.env = dict(os.environ)
        for var in ("SPARSEC_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            self.env[var] = str(args.threads)
        if args.omp_wait_policy != "default":
            self.env["OMP_WAIT_POLICY"] = args.omp_wait_policy
        self.timer = tw.Timer(self.mode["reps"], self.mode["min_time"])


def run_workload(ctx, name, res):
    """Runs one workload on both sides and stores its results in res."""
    torch_on = not ctx.args.no_torch
    sp, th = res["sparsec"], res["torch"]
    if name == "M":
        sp.update(run_bench(ctx, "^Machine/", "machine probes", best=True))
    elif name == "P1":
        sp.update(run_bench(ctx, "^Layer/forward/90(/|$)", "P1 forward"))
        if torch_on:
            th["P1"] = tw.layer_forward(ctx.timer, 0.9, ["sparse_csr", "dense"])
    elif name == "P2":
        sp.update(run_bench(ctx, "^Layer/train_step/90(/|$)", "P2 train step"))
        if torch_on:
            th["P2"] = tw.layer_train_step(ctx.timer, 0.9,
                                           ["sparse_values", "masked_dense", "dense"])
    elif name == "P3":
        sp.update(run_bench(ctx, "^Embedding/train_step/", "P3 embedding steps"))
        if torch_on:
            th["P3"] = tw.embedding_train_step(ctx.timer, EMB_OPTIMIZERS)
    elif name == "P4":
        sp.update(run_bench(ctx, "^FashionMLP/epoch/", "P4 epoch", reps=ctx.mode["epochs"]))
        if torch_on:
            th["P4"], res["meta"]["p4_torch_data"] = tw.fashion_epoch(
                ctx.mode["epochs"], ctx.args.fashion_dir, ctx.mode["epoch_limit"])
    elif name == "P5":
        res["compile"] = compile_times(ctx)
    elif name == "SWEEP":
        regex = "^Layer/forward/(%s)(/|$)" % "|".join(str(s) for s in SWEEP)
        sp.update(run_bench(ctx, regex, "sparsity sweep"))
        if torch_on:
            th.setdefault("P1", {})
            for s in SWEEP:
                key = "SWEEP%d" % s
                if s == 90 and "sparse_csr" in th["P1"]:
                    th[key] = {"sparse_csr": th["P1"]["sparse_csr"]}
                    continue
                th[key] = tw.layer_forward(ctx.timer, s / 100.0, ["sparse_csr"])
            if "dense" not in th["P1"]:
                th["P1"].update(tw.layer_forward(ctx.timer, 0.9, ["dense"]))


def build_source(build):
    """The source tree a CMake build directory was configured from."""
    try:
        with open(os.path.join(build, "CMakeCache.txt")) as f:
            for line in f:
                if line.startswith("CMAKE_HOME_DIRECTORY:"):
                    return line.split("=", 1)[1].strip()
    except OSError:
        pass
    return ROOT


def git_commit(src):
    """`<commit>[ + uncommitted changes]` of src, or a note that it is no checkout."""
    def git(*cmd):
        return subprocess.run(["git", "-C", src] + list(cmd), stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    try:
        rev = git("rev-parse", "--short", "HEAD")
        if rev.returncode != 0:
            return "unknown (%s is not a git checkout)" % src
        dirty = git("status", "--porcelain", "--untracked-files=no").stdout.strip()
        return rev.stdout.strip() + (" + uncommitted changes" if dirty else "")
    except OSError:
        return "unknown (no git)"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def run_all(args):
    ctx = Context(args)
    if not set(args.only) & {"P1", "P2", "P3", "P4", "SWEEP"}:
        args.no_torch = True  # nothing to run in PyTorch
    if not args.no_torch:
        # Read by libgomp and OpenBLAS when torch loads them.
        os.environ.update({k: ctx.env[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                    "OMP_WAIT_POLICY") if k in ctx.env})
        try:
            tw.load_torch(args.threads)
        except tw.TorchMissing as e:
            fatal(str(e))
    if os.nice(0) > args.niceness:
        try:
            os.nice(args.niceness - os.nice(0))
        except OSError as e:
            progress("warning: cannot run at niceness %d (%s); staying at %d" %
                     (args.niceness, e, os.nice(0)))
    res = {"sparsec": {}, "torch": {}, "compile": {}, "failures": [], "meta": {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "mode": args.mode, "threads": args.threads, "cpu": cpu_model(),
        "cores": os.cpu_count(), "commit": git_commit(build_source(ctx.build)),
        "build": ctx.build,
        "niceness": os.nice(0), "torch": None if args.no_torch else tw.torch_info(),
        "omp_wait_policy": ctx.env.get("OMP_WAIT_POLICY", "unset"),
        "load_before": os.getloadavg()}}
    progress("mode %s, %d threads, build %s, load %.2f %.2f %.2f" %
             ((args.mode, args.threads, ctx.build) + res["meta"]["load_before"]))
    if res["meta"]["load_before"][0] > 0.5 * (os.cpu_count() or 1):
        progress("warning: the machine is busy (load %.2f on %d cores): times are noisy and "
                 "both sides lose time slices; compare runs at similar load" %
                 (res["meta"]["load_before"][0], os.cpu_count()))
    for name in WORKLOADS:
        if name not in args.only:
            continue
        start = time.perf_counter()
        try:
            run_workload(ctx, name, res)
        except Failure as e:
            progress("FAILED %s: %s" % (name, e))
            res["failures"].append("%s: %s" % (name, e))
        except Exception as e:  # the PyTorch side: report and go on
            progress("FAILED %s: %s: %s" % (name, type(e).__name__, e))
            res["failures"].append("%s: %s: %s" % (name, type(e).__name__, e))
        progress("%s done in %.1f s, load %.2f" % (name, time.perf_counter() - start,
                                                   os.getloadavg()[0]))
    res["meta"]["load_after"] = os.getloadavg()
    return res


def main(argv):
    args = parse_args(argv)
    if args.from_json:
        with open(args.from_json) as f:
            res = json.load(f)
    else:
        res = run_all(args)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(res, f, indent=1)
    print(report.text_table(res))
    if args.write_doc:
        try:
            report.write_doc(args.write_doc, res)
        except report.DocError as e:
            fatal(str(e))
        progress("wrote the generated section of " + args.write_doc)
    if res["failures"]:
        print("\nFAILED:\n  " + "\n  ".join(res["failures"]), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
