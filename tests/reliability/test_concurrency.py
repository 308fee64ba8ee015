"""Concurrent calls from threads (ctypes releases the GIL around each C call).

* Distinct handles are independent: T threads, each with its own instance,
  train and run forward at the same time; every loss, output and final
  state is bit-identical to the same work done sequentially.
* forward only reads the handle (models without max_norm, including
  `sparse = catchup` ones, whose forward does not catch rows up): T threads
  run forward on one shared instance at once; outputs equal the sequential
  ones and the instance is unchanged.
* Errors are per thread: threads that fail calls on purpose while others
  succeed see only their own messages.

What is *not* allowed (docs/reliability.md) is not exercised: train_step,
load, set_lr, catch_up or writes through param_values concurrently with
anything else on the same handle, and forward on one handle from several
threads when the model has an embedding with max_norm (forward renorms the
rows it reads, in place).

Run: /usr/bin/python3 -m unittest -v test_concurrency  (from tests/reliability)
"""
import threading
import unittest

import numpy as np

import reliability_util as U

MODELS = ["rel_sgd", "rel_adam", "rel_maxnorm"]
THREADS = 4
STEPS = 25


def work(lib, seed):
    """Creates an instance of `seed`, trains it STEPS steps and runs forward
    after each; returns (losses, outputs, digest)."""
    h = lib.create(seed)
    sizes = [1 + (seed * 7 + k * 3) % 9 for k in range(STEPS)]
    losses, outputs = [], []
    for b, data in U.batches(lib, sizes, seed):
        rc, loss = lib.train_step(h, b, data)
        assert rc == U.OK, lib.error()
        losses.append(np.float32(loss).tobytes())
        rc, out = lib.forward(h, b, data)
        assert rc == U.OK, lib.error()
        outputs.append(out.tobytes())
    d = lib.digest(h)
    lib.destroy(h)
    return losses, outputs, d


def run_threads(fns):
    """Runs the callables in threads started together; returns their
    results (re-raising the first exception)."""
    results, errors = [None] * len(fns), []
    barrier = threading.Barrier(len(fns))

    def run(i):
        try:
            barrier.wait()
            results[i] = fns[i]()
        except BaseException as e:  # noqa: BLE001 - re-raised below
            errors.append(e)
    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(fns))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


class ConcurrencyTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        U.workdir()
        U.scratchdir()
        cls.libs = {m: U.compile_model(m).lib() for m in MODELS}

    def test_distinct_handles_are_independent(self):
        for name, lib in self.libs.items():
            with self.subTest(model=name):
                seeds = [100 + i for i in range(THREADS)]
                sequential = [work(lib, s) for s in seeds]
                for rnd in range(3):
                    parallel = run_threads([lambda s=s: work(lib, s) for s in seeds])
                    for s, a, b in zip(seeds, sequential, parallel):
                        self.assertEqual(a[0], b[0], f"seed {s} round {rnd}: losses")
                        self.assertEqual(a[1], b[1], f"seed {s} round {rnd}: outputs")
                        self.assertEqual(a[2], b[2], f"seed {s} round {rnd}: state")

    def test_concurrent_forward_on_one_handle(self):
        for name in ("rel_sgd", "rel_adam"):   # no max_norm: forward reads only
            with self.subTest(model=name):
                self.concurrent_forward(self.libs[name])

    def concurrent_forward(self, lib):
        h = lib.create(5)
        for b, data in U.batches(lib, [4, 6, 3], 5):
            self.assertEqual(lib.train_step(h, b, data)[0], U.OK)
        before = lib.digest(h, grads=True)
        batches = U.batches(lib, [1 + k % 8 for k in range(40)], 6)
        want = [lib.forward(h, b, d)[1].tobytes() for b, d in batches]

        def reader(offset):
            got = []
            for k in range(len(batches)):
                b, d = batches[(k + offset) % len(batches)]
                rc, out = lib.forward(h, b, d)
                assert rc == U.OK, lib.error()
                got.append(((k + offset) % len(batches), out.tobytes()))
            return got
        for rnd in range(3):
            for got in run_threads([lambda o=o: reader(o * 10) for o in range(THREADS)]):
                for k, out in got:
                    self.assertEqual(out, want[k], f"round {rnd}, batch {k}")
        self.assertEqual(lib.digest(h, grads=True), before,
                         "concurrent forwards changed the instance")

    def test_errors_are_per_thread(self):
        lib = self.libs["rel_sgd"]

        def failing(i):
            h = lib.create(i)
            msgs = []
            for k in range(200):
                rc = lib.fn("set_lr")(h, -1.0 - k)
                assert rc == U.ERR_INVALID_ARG
                msgs.append(lib.error())
            lib.destroy(h)
            return msgs

        def succeeding(i):
            h = lib.create(i)
            msgs = []
            for b, data in U.batches(lib, [3] * 50, i):
                assert lib.train_step(h, b, data)[0] == U.OK
                msgs.append(lib.error())
            lib.destroy(h)
            return msgs
        results = run_threads([lambda: failing(1), lambda: succeeding(2),
                               lambda: failing(3), lambda: succeeding(4)])
        for k, msg in enumerate(results[0]):
            self.assertIn(str(-1.0 - k).rstrip("0").rstrip("."), msg)
        self.assertEqual(set(results[1]) | set(results[3]), {""})


if __name__ == "__main__":
    unittest.main()
