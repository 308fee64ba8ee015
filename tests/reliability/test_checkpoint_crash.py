"""Crash safety of checkpoints.

* Killed saves: a child process trains the large model of models/rel_big.sdl
  (a ~25 MB checkpoint) and saves over the same path in a loop; the parent
  SIGKILLs it at random moments, many times. After every kill the file at
  the path must be byte-identical to one of the checkpoints a complete save
  writes (the state after some step), and it must load. Temporary files a
  killed save leaves (PATH.tmp.XXXXXX) are counted: they show the kill hit
  the middle of a save, and the test requires that this happened.
* Killed first save: with no file at the path yet, a kill leaves either no
  file or a complete one.
* Corrupt files: truncated (many lengths), bit-flipped (header, each
  tensor, the length prefix), another model's checkpoint, another
  optimizer's checkpoint, garbage headers, an absurd header length: all
  refused with SPARSEC_ERR_FORMAT and a message that names the file and
  the problem ("truncated", "checksum mismatch", "is for model", ...).
* No partial overwrite: after any refused load the instance is
  byte-identical (parameters, CSR, optimizer state, step, lr), even when
  every tensor before the damaged one is valid; a valid file replaces the
  whole state.

Run: /usr/bin/python3 -m unittest -v test_checkpoint_crash  (from tests/reliability)
"""
import hashlib
import json
import os
import random
import signal
import struct
import sys
import time
import unittest

import numpy as np

import reliability_util as U

KILLS = int(os.environ.get("SPARSEC_RELIABILITY_KILLS", "60"))
REF_STEPS = 12


def sha(data):
    return hashlib.sha256(data).hexdigest()


class KilledSaveTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        U.workdir()
        cls.lib = U.compile_model("rel_big").lib()
        cls.dir = os.path.join(U.workdir(), "killed")
        os.makedirs(cls.dir, exist_ok=True)
        # Reference trajectory: the checkpoint bytes after each step.
        lib = cls.lib
        h = lib.create(11)
        cls.valid = {}
        cls.first = os.path.join(cls.dir, "step1.st")
        t0 = time.monotonic()
        for k in range(1, REF_STEPS + 1):
            rc, _ = lib.train_step(h, 16, cls.batch(k))
            assert rc == U.OK, lib.error()
            path = cls.first if k == 1 else os.path.join(cls.dir, "ref.st")
            assert lib.fn("save")(h, path.encode()) == U.OK, lib.error()
            with open(path, "rb") as f:
                cls.valid[sha(f.read())] = k
        cls.cycle = (time.monotonic() - t0) / REF_STEPS
        os.unlink(os.path.join(cls.dir, "ref.st"))
        lib.destroy(h)

    @classmethod
    def batch(cls, k):
        """The (deterministic) batch of step k."""
        return cls.lib.batch(16, np.random.default_rng(1000 + k))

    def child_loop(self, path, ready_w):
        """In the child: load `path` (or start fresh), then train the next
        step and save, until killed or the reference trajectory ends."""
        lib = self.lib
        h = lib.create(11)
        k = 0
        if os.path.exists(path):
            assert lib.fn("load")(h, path.encode()) == U.OK, lib.error()
            steps = U.I64()
            lib.fn("step_count")(h, U.C.byref(steps))
            k = steps.value
        os.write(ready_w, b"r")
        while k < REF_STEPS:
            k += 1
            rc, _ = lib.train_step(h, 16, self.batch(k))
            assert rc == U.OK, lib.error()
            assert lib.fn("save")(h, path.encode()) == U.OK, lib.error()

    def run_and_kill(self, path, delay):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            code = 0
            try:
                self.child_loop(path, w)
            except BaseException:  # noqa: BLE001
                code = 3
            os._exit(code)
        os.close(w)
        ready = os.read(r, 1)
        os.close(r)
        time.sleep(delay)
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        if os.WIFEXITED(status):
            self.assertEqual(os.WEXITSTATUS(status), 0, "the child failed")
        return ready == b"r"

    def temporaries(self, path):
        base = os.path.basename(path) + ".tmp."
        return [f for f in os.listdir(os.path.dirname(path))
                if f.startswith(base)]

    def check_file(self, path, what):
        with open(path, "rb") as f:
            data = f.read()
        self.assertIn(sha(data), self.valid, f"{what}: the file at the "
                      f"checkpoint path ({len(data)} bytes) is not a complete "
                      "checkpoint")
        h = self.lib.create(99)
        rc = self.lib.fn("load")(h, path.encode())
        msg = self.lib.error()
        self.lib.destroy(h)
        self.assertEqual(rc, U.OK, f"{what}: the checkpoint does not load: {msg}")
        return self.valid[sha(data)]

    def test_killed_saves_leave_a_loadable_checkpoint(self):
        path = os.path.join(self.dir, "model.st")
        with open(self.first, "rb") as f, open(path, "wb") as g:
            g.write(f.read())
        rng = random.Random(20240611)
        mid_write, steps_seen = 0, set()
        t0 = time.monotonic()
        for i in range(KILLS):
            # Kill anywhere in the first few train+save cycles.
            delay = rng.uniform(0, 3 * self.cycle)
            self.assertTrue(self.run_and_kill(path, delay), "child not ready")
            steps_seen.add(self.check_file(path, f"kill {i} after {delay:.3f} s"))
            left = self.temporaries(path)
            if left:
                mid_write += 1
                for f in left:
                    os.unlink(os.path.join(self.dir, f))
            if self.valid[sha(open(path, "rb").read())] >= REF_STEPS - 1:
                with open(self.first, "rb") as f, open(path, "wb") as g:
                    g.write(f.read())
        print(f"\n{KILLS} kills in {time.monotonic() - t0:.1f} s "
              f"(train+save cycle {self.cycle * 1000:.0f} ms): {mid_write} "
              f"hit a save in progress (temporary file left), checkpoints "
              f"of steps {sorted(steps_seen)} found")
        self.assertGreater(mid_write, 0, "no kill landed during a save; the "
                           "test did not test anything")

    def test_killed_first_save(self):
        rng = random.Random(7)
        hits = 0
        for i in range(max(10, KILLS // 4)):
            path = os.path.join(self.dir, f"first{i}.st")
            self.run_and_kill(path, rng.uniform(0, 1.5 * self.cycle))
            if os.path.exists(path):
                self.check_file(path, f"first save, kill {i}")
            for f in self.temporaries(path):
                hits += 1
                os.unlink(os.path.join(self.dir, f))
            if os.path.exists(path):
                os.unlink(path)
        print(f"\nfirst saves: {hits} kills left a temporary file")


class CorruptFileTest(unittest.TestCase):
    refused = 0   # corrupted files refused (printed at the end)

    @classmethod
    def tearDownClass(cls):
        print(f"\ncheckpoint_crash: {cls.refused} corrupted or foreign files refused, "
              "each with a message naming the file, nothing changed", file=sys.stderr)

    @classmethod
    def setUpClass(cls):
        U.workdir()
        U.scratchdir()
        cls.libs = {m: U.compile_model(m).lib() for m in ("rel_sgd", "rel_adam")}
        cls.dir = os.path.join(U.scratchdir(), "corrupt")
        os.makedirs(cls.dir, exist_ok=True)

    def trained(self, lib, seed, steps=3):
        h = lib.create(seed)
        rng = np.random.default_rng(seed)
        for s in range(steps):
            rc, _ = lib.train_step(h, 4 + s, lib.batch(4 + s, rng))
            self.assertEqual(rc, U.OK, lib.error())
        return h

    def checkpoint(self, lib, seed):
        h = self.trained(lib, seed)
        data = lib.save_bytes(h)
        lib.destroy(h)
        return data

    @staticmethod
    def layout(data):
        n = struct.unpack("<Q", data[:8])[0]
        header = json.loads(data[8:8 + n])
        tensors = {k: v for k, v in header.items() if k != "__metadata__"}
        return n, header, tensors

    def expect_refused(self, lib, h, cases, before):
        """Each (what, bytes, fragments) must be refused with ERR_FORMAT and
        a message naming the file and containing one of `fragments`."""
        path = os.path.join(self.dir, "bad.st")
        bad = []
        for what, blob, fragments in cases:
            with open(path, "wb") as f:
                f.write(blob)
            rc = lib.fn("load")(h, path.encode())
            msg = lib.error()
            if rc != U.ERR_FORMAT:
                bad.append(f"{what}: status {rc}: {msg!r}")
            elif "bad.st" not in msg:
                bad.append(f"{what}: the message does not name the file: {msg!r}")
            elif fragments and not any(x.lower() in msg.lower() for x in fragments):
                bad.append(f"{what}: message {msg!r} says none of {fragments}")
        CorruptFileTest.refused += len(cases)
        self.assertEqual(bad[:15], [], f"{len(bad)} of {len(cases)} bad")
        self.assertEqual(lib.digest(h), before, "a refused load changed the "
                         "instance")

    def expect_refused_or_exact(self, lib, data, cases):
        """Each (what, bytes, _) must be refused or load exactly the state
        saved in `data`."""
        path = os.path.join(self.dir, "good.st")
        with open(path, "wb") as f:
            f.write(data)
        h = lib.create(1)
        self.assertEqual(lib.fn("load")(h, path.encode()), U.OK, lib.error())
        want = lib.digest(h)
        lib.destroy(h)
        for what, blob, _ in cases:
            with open(path, "wb") as f:
                f.write(blob)
            h = lib.create(1)
            rc = lib.fn("load")(h, path.encode())
            if rc == U.OK:
                self.assertEqual(lib.digest(h), want, f"{what}: loaded another state")
            else:
                self.assertEqual(rc, U.ERR_FORMAT, f"{what}: {lib.error()}")
            lib.destroy(h)

    def test_truncated(self):
        for name, lib in self.libs.items():
            with self.subTest(model=name):
                data = self.checkpoint(lib, 21)
                h = self.trained(lib, 22)
                before = lib.digest(h)
                cuts = sorted(set(list(range(0, 64)) +
                                  list(range(len(data) - 64, len(data))) +
                                  list(range(64, len(data), 7))))
                self.expect_refused(lib, h, [
                    (f"first {n} of {len(data)} bytes", data[:n],
                     ("truncated", "corrupt", "header")) for n in cuts], before)

    def test_bit_flips(self):
        rng = random.Random(3)
        for name, lib in self.libs.items():
            with self.subTest(model=name):
                data = self.checkpoint(lib, 31)
                n, header, tensors = self.layout(data)
                h = self.trained(lib, 32)
                before = lib.digest(h)
                cases = []
                # Every bit of the data section of each tensor, sampled.
                base = 8 + n
                for tname, t in tensors.items():
                    b, e = t["data_offsets"]
                    for _ in range(4):
                        k = base + rng.randrange(b, e)
                        bit = 1 << rng.randrange(8)
                        blob = bytearray(data)
                        blob[k] ^= bit
                        cases.append((f"{tname} byte {k} bit {bit}", bytes(blob),
                                      ("checksum",)))
                # Every byte of the length prefix and of the header: tensor
                # entries, and the "__metadata__" values, which the
                # metadata_crc32 entry covers since the fix of R-7. A flip in
                # the key "metadata_crc32" itself turns the file into one
                # without a metadata checksum, which is accepted (files of
                # other writers): such a file must then load exactly the
                # saved state.
                key = data.index(b'"metadata_crc32"')
                own_key = range(key + 1, key + 1 + len("metadata_crc32"))
                harmless = []
                for k in list(range(8)) + list(range(8, 8 + n)):
                    for bit in (0x01, 0x80):
                        blob = bytearray(data)
                        blob[k] ^= bit
                        if bytes(blob) == data:
                            continue
                        what = f"header byte {k} bit {bit}"
                        (harmless if k in own_key else cases).append(
                            (what, bytes(blob), None))
                self.expect_refused(lib, h, cases, before)
                self.expect_refused_or_exact(lib, data, harmless)

    def test_other_model_and_other_optimizer(self):
        sgd, adam = self.libs["rel_sgd"], self.libs["rel_adam"]
        h = self.trained(sgd, 41)
        before = sgd.digest(h)
        self.expect_refused(sgd, h, [
            ("a RelAdam checkpoint", self.checkpoint(adam, 42),
             ("is for model 'RelAdam', not 'RelSgd'",))], before)

    def test_garbage_headers(self):
        lib = self.libs["rel_adam"]
        data = self.checkpoint(lib, 51)
        n, header, tensors = self.layout(data)
        h = self.trained(lib, 52)
        before = lib.digest(h)

        def with_header(hdr, pad=True):
            text = json.dumps(hdr, separators=(",", ":")).encode()
            if pad:
                text += b" " * ((8 - (8 + len(text)) % 8) % 8)
            return struct.pack("<Q", len(text)) + text + data[8 + n:]

        first = next(k for k in tensors if not k.startswith("optimizer."))
        cases = [
            ("an absurd header length", struct.pack("<Q", (1 << 63) + 5) + data[8:], None),
            ("header length 2^64-1", b"\xff" * 8 + data[8:], None),
            ("header length 0", struct.pack("<Q", 0) + data[8:], None),
            ("a JSON array header", with_header([1, 2]), None),
            ("no metadata", with_header({k: v for k, v in header.items()
                                         if k != "__metadata__"}), None),
            ("a missing tensor", with_header({k: v for k, v in header.items()
                                              if k != first}), None),
            ("an unknown tensor", with_header(dict(header, bogus={
                "dtype": "F32", "shape": [1], "data_offsets": [0, 4]})), ("bogus",)),
            ("a wrong dtype", with_header(dict(header, **{first: dict(
                tensors[first], dtype="F16")})), ("dtype",)),
            ("a wrong shape", with_header(dict(header, **{first: dict(
                tensors[first], shape=[1, 2, 3])})), ("shape",)),
            ("offsets past the end", with_header(dict(header, **{first: dict(
                tensors[first], data_offsets=[0, 1 << 40])})), None),
            ("reversed offsets", with_header(dict(header, **{first: dict(
                tensors[first], data_offsets=[8, 0])})), None),
            ("a negative step", with_header(dict(header, __metadata__=dict(
                header["__metadata__"], step="-1"))), ("step",)),
            ("a NaN lr", with_header(dict(header, __metadata__=dict(
                header["__metadata__"], lr="nan"))), ("lr",)),
            ("another format", with_header(dict(header, __metadata__=dict(
                header["__metadata__"], format="pt"))), ("format",)),
            ("another abi", with_header(dict(header, __metadata__=dict(
                header["__metadata__"], abi="99"))), ("abi",)),
            ("a bad crc field", with_header(dict(header, __metadata__=dict(
                header["__metadata__"], crc32="xyz"))), ("crc32",)),
            ("a nested metadata value", with_header(dict(header, __metadata__=dict(
                header["__metadata__"], step={"a": 1}))), ("step",)),
            ("deeply nested JSON", struct.pack("<Q", 20000) + b"[" * 10000 +
             b"]" * 10000 + data[8 + n:], None),
            ("invalid UTF-8", data[:8] + data[8:8 + n].replace(b"format", b"f\xffrmat")
             + data[8 + n:], None),
            ("a NUL in the header", data[:8] + data[8:8 + n].replace(b"sparsec", b"spa\0sec")
             + data[8 + n:], None),
        ]
        self.expect_refused(lib, h, cases, before)

    def test_valid_file_replaces_the_whole_state(self):
        for name, lib in self.libs.items():
            with self.subTest(model=name):
                src = self.trained(lib, 61, steps=5)
                want = lib.digest(src)
                path = os.path.join(self.dir, "good.st")
                self.assertEqual(lib.fn("save")(src, path.encode()), U.OK)
                dst = self.trained(lib, 62, steps=2)
                self.assertNotEqual(lib.digest(dst), want)
                self.assertEqual(lib.fn("load")(dst, path.encode()), U.OK, lib.error())
                self.assertEqual(lib.error(), "")
                self.assertEqual(lib.digest(dst), want)


if __name__ == "__main__":
    unittest.main()
