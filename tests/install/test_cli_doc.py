"""docs/cli.md stays true: it documents every option `sparsec --help`
lists and every sparsec pass/pipeline of `sparsec-opt --help`, its
EXAMPLES (```sh blocks) run, and the exit statuses it promises hold.

Environment: SPARSEC_BUILD_DIR (default build/).

    /usr/bin/python3 -m unittest -v tests/install/test_cli_doc.py
"""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from test_tutorial import SRC, blocks

CLI = os.path.join(SRC, "docs", "cli.md")
BUILD = os.environ.get("SPARSEC_BUILD_DIR", os.path.join(SRC, "build"))
BIN = os.path.join(BUILD if os.path.isabs(BUILD) else os.path.join(SRC, BUILD), "bin")

MODELS = """model Small {
  input  x : f32[B, 8]
  target y : f32[B, 1]
  param fc : linear(8, 1)
  forward { out = fc(x) }
  loss = mse(out, y)
  optimizer = sgd(lr = 0.1)
}
model Big {
  input  x : f32[B, 64]
  target y : i64[B]
  param fc1 : sparse_linear(64, 128, sparsity = 0.9)
  param fc2 : linear(128, 4)
  forward { h = relu(fc1(x))
            logits = fc2(h) }
  loss = cross_entropy(logits, y)
  optimizer = adam(lr = 0.001)
}
"""


def run(args, **kw):
    return subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, **kw)


class CliDocTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(CLI, encoding="utf-8") as f:
            cls.doc = f.read()
        cls.sparsec = os.path.join(BIN, "sparsec")
        cls.opt = os.path.join(BIN, "sparsec-opt")

    def test_every_sparsec_option_is_documented(self):
        out = run([self.sparsec, "--help"]).stdout
        opts = re.findall(r"^\s+(--?[a-zA-Z][\w-]*)", out, re.M)
        self.assertGreater(len(opts), 30)
        missing = sorted({o for o in opts if "`%s" % o not in self.doc})
        self.assertEqual(missing, [], "options of `sparsec --help` missing in docs/cli.md")
        emit = out.split("--emit=<value>", 1)[1].split("\n  --", 1)[0]
        stages = re.findall(r"^\s+=([\w-]+)\s+-\s", emit, re.M)
        self.assertEqual(len(stages), 11, stages)
        for stage in stages:
            self.assertTrue("| `%s`" % stage in self.doc, "stage %s" % stage)

    def test_sparsec_passes_and_pipelines_are_documented(self):
        out = run([self.opt, "--help"]).stdout
        names = re.findall(r"^\s+--((?:sdl|sparsec)-[\w-]+|convert-sdl-to-linalg)\s", out, re.M)
        # 15 + sdl-lower-masked-conv2d, sdl-lower-masked-lstm, sparsec-llvm-fn,
        # sdl-lower-fake-quant, sparsec-hand-over-deallocs,
        # sdl-lower-quantized-linear, sparsec-gpu-emulate,
        # sparsec-gpu-emulated
        self.assertEqual(len(set(names)), 23, names)
        for n in names:
            self.assertTrue("`--%s`" % n in self.doc, n)

    def test_exit_statuses(self):
        d = tempfile.mkdtemp()
        try:
            bad = os.path.join(d, "bad.sdl")
            with open(bad, "w") as f:
                f.write("model M {\n  input x : f32[B, 4]\n}\n")
            self.assertEqual(run([self.sparsec, "--version"]).returncode, 0)
            self.assertEqual(run([self.sparsec, "--help"]).returncode, 0)
            r = run([self.sparsec, "--emit=ast", bad])
            self.assertEqual(r.returncode, 1)
            self.assertRegex(r.stderr, r"bad\.sdl:1:7: error: model 'M' has no 'forward' block")
            self.assertEqual(run([self.sparsec, os.path.join(d, "none.sdl")]).returncode, 1)
            self.assertEqual(run([self.sparsec, "--no-such-option"]).returncode, 1)
            self.assertEqual(run([self.opt, "--no-such-option"]).returncode, 1)
        finally:
            shutil.rmtree(d)

    def test_examples_run(self):
        d = tempfile.mkdtemp(prefix="sparsec-cli-doc-")
        try:
            tut = [t for lang, _, t in blocks() if lang == "sh" and "cat > mlp.sdl" in t][0]
            mlp = tut.split("<<'EOF'\n", 1)[1].split("\nEOF\n", 1)[0]
            with open(os.path.join(d, "mlp.sdl"), "w") as f:
                f.write(mlp + "\n")
            with open(os.path.join(d, "models.sdl"), "w") as f:
                f.write(MODELS)
            code = [t for lang, _, t in blocks(CLI) if lang == "sh"]
            self.assertGreaterEqual(len(code), 4)
            env = dict(os.environ)
            env["PATH"] = BIN + ":/usr/bin:/bin:" + env.get("PATH", "")
            env["PYTHONPATH"] = os.path.join(SRC, "python")
            r = subprocess.run(["bash", "-c", "set -euo pipefail\n" + "\n".join(code)],
                               cwd=d, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, universal_newlines=True,
                               timeout=600)
            self.assertEqual(r.returncode, 0, r.stdout[-4000:])
            for f in ("build/libmlp.so", "build/libmlp.h", "libmlp.so", "mlp_api.h",
                      "mlp.train.mlir", "mlp.linalg.mlir", "mlp.s", "libbig.so", "libbig.h",
                      "mlp.sdl.mlir", "mlp.llvm.mlir"):
                self.assertTrue(os.path.exists(os.path.join(d, f)), f)
            with open(os.path.join(d, "libbig.h")) as f:
                self.assertIn("typedef struct Big Big;", f.read())
        finally:
            shutil.rmtree(d)


if __name__ == "__main__":
    unittest.main()
