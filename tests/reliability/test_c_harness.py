"""Builds abi_stress.c with the `cc` on PATH against librel_sgd.so and runs
it (see abi_stress.c): create/destroy cycles, every user error, refused
loads, save/load round trips, and THREADS pthreads on distinct handles
reaching the sequential run's states bit for bit. Under .ci/sanitize.sh
`cc` is the sanitizing wrapper, so this is also the leak check of the
runtime, the glue and the kernels (LeakSanitizer runs at the program's
exit; it is off inside the Python tests).

Run: /usr/bin/python3 -m unittest -v test_c_harness  (from tests/reliability)
"""
import os
import shutil
import subprocess
import tempfile
import unittest

import reliability_util as U


class CHarnessTest(unittest.TestCase):
    def test_abi_stress(self):
        c = U.compile_model("rel_sgd")
        d = os.path.dirname(c.so)
        exe = os.path.join(d, "abi_stress")
        cc = shutil.which("cc")
        self.assertIsNotNone(cc, "no cc on PATH")
        proc = subprocess.run(
            [cc, "-std=c11", "-O1", "-g", "-Wall", "-Wextra", "-Werror",
             "-pthread", os.path.join(U.HERE, "abi_stress.c"), "-I", d, "-L", d,
             "-lrel_sgd", "-lm", f"-Wl,-rpath,{d}", "-o", exe],
            capture_output=True, text=True)
        self.assertEqual(proc.returncode, 0, f"{cc}: {proc.stderr}")
        scratch = tempfile.mkdtemp(dir=U.scratchdir())
        proc = subprocess.run([exe, scratch], capture_output=True, text=True,
                              timeout=600)
        self.assertEqual(proc.returncode, 0,
                         f"abi_stress failed (status {proc.returncode}):\n"
                         f"{proc.stdout}\n{proc.stderr[-20000:]}")
        self.assertIn("all checks passed", proc.stdout)
        self.assertEqual(os.listdir(scratch), [], "files left behind")


if __name__ == "__main__":
    unittest.main()
