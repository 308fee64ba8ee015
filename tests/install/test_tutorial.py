"""docs/tutorial.md is executable: every ```sh block runs, in order, in one
bash session started at the root of the checkout, as a new user would type
them (HOME is a fresh temporary directory, so ~/sparsec, ~/sparse-tutorial
and ~/consume are created there). ```sh-skip blocks are illustrations and are
not run; no other fence may hold shell commands.

Environment: SPARSEC_BUILD_DIR (the build tree to install from; default
build/), SPARSEC_TUTORIAL_KEEP=1 keeps the temporary HOME.

    /usr/bin/python3 -m unittest -v tests/install/test_tutorial.py
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
TUTORIAL = os.path.join(SRC, "docs", "tutorial.md")

FENCE = re.compile(r"^```([\w+-]*)[ \t]*$")
SHELL_LANGS = {"sh", "bash", "shell", "console", "zsh"}


def blocks(path=TUTORIAL):
    """[(language, first line number, text)] of every fenced block."""
    out, lang, start, buf = [], None, 0, []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            m = FENCE.match(line.rstrip("\n"))
            if lang is None:
                if m:
                    lang, start, buf = m.group(1), n + 1, []
            elif line.rstrip("\n") == "```":
                out.append((lang, start, "".join(buf)))
                lang = None
            else:
                buf.append(line)
    if lang is not None:
        raise ValueError("%s: unterminated fence opened at line %d" % (path, start - 1))
    return out


def script(path=TUTORIAL):
    """The bash script made of the ```sh blocks, with a marker before each."""
    parts = ["set -euo pipefail\n"]
    for i, (lang, line, text) in enumerate(b for b in blocks(path) if b[0] == "sh"):
        parts.append("printf '\\n### tutorial block %d (docs/tutorial.md:%d)\\n'\n"
                     % (i + 1, line))
        parts.append(text)
    return "".join(parts)


class TutorialTest(unittest.TestCase):
    def test_fences(self):
        langs = [b[0] for b in blocks()]
        self.assertGreaterEqual(langs.count("sh"), 10)
        # Shell commands are either run (sh) or explicitly skipped (sh-skip).
        bad = [(lang, line) for lang, line, _ in blocks() if lang in SHELL_LANGS - {"sh"}]
        self.assertEqual(bad, [], "use ```sh (run by this test) or ```sh-skip")
        for lang, line, text in blocks():
            if lang == "":
                self.assertNotRegex(text, r"(?m)^\$ ", "untagged shell at line %d" % line)

    def test_run_the_tutorial(self):
        home = tempfile.mkdtemp(prefix="sparsec-tutorial-")
        env = dict(os.environ)
        env["HOME"] = home
        # A plain Debian user's interpreter and tools come first.
        env["PATH"] = "/usr/bin:/bin:" + env.get("PATH", "")
        env.pop("PYTHONPATH", None)
        env.setdefault("SPARSEC_BUILD_DIR", os.path.join(SRC, "build"))
        path = os.path.join(home, "tutorial.sh")
        with open(path, "w") as f:
            f.write(script())
        start = time.time()
        try:
            r = subprocess.run(["bash", path], cwd=SRC, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, universal_newlines=True,
                               timeout=1200)
            took = time.time() - start
            sys.stdout.write(r.stdout)
            print("\ntutorial: %d blocks in %.1f s" % (script().count("### tutorial block"),
                                                       took))
            self.assertEqual(r.returncode, 0, "the tutorial failed (see the last "
                             "'### tutorial block' marker above)")
            out = r.stdout
            self.assertRegex(out, r"sparsec \d+\.\d+\.\d+ \(LLVM/MLIR")
            self.assertRegex(out, r"epoch 1: loss [\d.]+\s+test accuracy [\d.]+%")
            self.assertIn("fc1.weight   csr", out)
            self.assertIn("saved mlp.safetensors after 32 steps", out)
            self.assertIn("'fc1.weight': ((512, 784), 'torch.sparse_csr')", out)
            self.assertRegex(out, r"max \|torch - sparsec\| = [0-9.e-]+")
            diff = float(re.search(r"max \|torch - sparsec\| = (\S+)", out).group(1))
            self.assertLess(diff, 1e-4)
            self.assertIn("trained 20 steps", out)
            self.assertIn("-lsparsec_runtime", out)
            for f in ("sparsec/bin/sparsec", "sparse-tutorial/build/libmlp.so",
                      "sparse-tutorial/build/libmlp.h", "sparse-tutorial/mlp.safetensors",
                      "consume/build/train_tiny"):
                self.assertTrue(os.path.exists(os.path.join(home, f)), f)
        finally:
            if os.environ.get("SPARSEC_TUTORIAL_KEEP") != "1":
                shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
