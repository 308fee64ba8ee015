"""docs/editors/sdl.tmLanguage.json: valid JSON, every regex compiles, and a
small TextMate tokenizer (match / begin-end rules, captures, includes; the
earliest match wins, ties go to the first rule, an `end` beats nested
rules) gives the expected scopes on a model using every construct and no
`invalid` scope on any valid .sdl file of the repository.

    /usr/bin/python3 -m unittest -v tests/install/test_editor_grammar.py
"""
import glob
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from test_tutorial import SRC, blocks

GRAMMAR = os.path.join(SRC, "docs", "editors", "sdl.tmLanguage.json")


class Tokenizer:
    def __init__(self, grammar):
        self.g = grammar
        self.repo = grammar["repository"]
        self._re = {}

    def rx(self, pattern):
        if pattern not in self._re:
            self._re[pattern] = re.compile(pattern)
        return self._re[pattern]

    def expand(self, patterns):
        out = []
        for p in patterns:
            if "include" in p:
                inc = p["include"]
                target = self.g if inc == "$self" else self.repo[inc.lstrip("#")]
                if "match" in target or "begin" in target:
                    out.append(target)
                else:
                    out.extend(self.expand(target["patterns"]))
            else:
                out.append(p)
        return out

    def tokenize_line(self, line, stack):
        """[(text, scope)] of `line`; `stack` holds open begin/end rules."""
        toks, pos = [], 0

        def emit(text, scopes):
            if text:
                toks.append((text, " ".join(s for s in scopes if s)))

        def captured(m, caps, base):
            if not caps:
                emit(m.group(0), base)
                return
            cur = m.start()
            for i in range(1, (m.re.groups or 0) + 1):
                if m.group(i) is None or str(i) not in caps:
                    continue
                emit(line[cur:m.start(i)], base)
                emit(m.group(i), base + [caps[str(i)]["name"]])
                cur = m.end(i)
            emit(line[cur:m.end()], base)

        while pos <= len(line):
            scopes = [r.get("name") for r in stack]
            patterns = self.expand(stack[-1]["patterns"] if stack else self.g["patterns"])
            best = None
            if stack:
                m = self.rx(stack[-1]["end"]).search(line, pos)
                if m:
                    best = (m.start(), -1, None, m)
            for i, p in enumerate(patterns):
                m = self.rx(p.get("match") or p["begin"]).search(line, pos)
                if m and (best is None or m.start() < best[0]):
                    best = (m.start(), i, p, m)
            if best is None:
                emit(line[pos:], scopes)
                break
            start, _, p, m = best
            emit(line[pos:start], scopes)
            if p is None:  # end of the open rule
                rule = stack.pop()
                captured(m, rule.get("endCaptures"), scopes)
            elif "match" in p:
                captured(m, p.get("captures"), scopes + [p.get("name")])
            else:
                captured(m, p.get("beginCaptures"), scopes + [p.get("name")])
                stack.append(p)
            if m.end() == pos and p is not None and "match" in p:
                emit(line[pos:pos + 1], scopes)  # no progress: step one char
                pos += 1
            else:
                pos = m.end()
            if pos >= len(line) and not (stack and m.end() == len(line) and p is not None
                                         and "begin" in p):
                break
        return toks

    def tokenize(self, text):
        stack, out = [], []
        for line in text.split("\n"):
            out.extend(self.tokenize_line(line, stack))
        return out


SAMPLE = r'''# Every construct of the language
model Demo {
  input  x   : f32[B, 784]
  input  ids : i64[B, 8] @csr
  target y   : i64[B]
  param fc1 : sparse_linear(784, 128, sparsity = 0.9, bias = true)
  param emb : embedding_bag(1000, 16, mode = mean, padding_idx = 0)
  param w   : tensor(144, 10, init = normal, scale = 1e-2)
  forward {
    dense = concat(relu(fc1(x)), emb(ids))
    logits = add(dense @ w, dense @ w)
    return logits
  }
  loss = cross_entropy(logits, y)
  optimizer = adamw(lr = .001, weight_decay = -0.5, sparse = catchup, schedule = cosine, t_max = 100, note = "a\tb")
}
grad(v) fn scores(A : f32[4, 4] @csr, v : f32[4]) -> f32 { return sum(softmax(A, 1) @ v) }
'''


def scope_of(toks, text, nth=0):
    hits = [s for t, s in toks if t.strip() == text]
    return hits[nth] if len(hits) > nth else None


class GrammarTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(GRAMMAR, encoding="utf-8") as f:
            cls.g = json.load(f)
        cls.tk = Tokenizer(cls.g)

    def test_metadata_and_regexes(self):
        self.assertEqual(self.g["scopeName"], "source.sdl")
        self.assertEqual(self.g["fileTypes"], ["sdl"])

        def walk(node):
            if isinstance(node, dict):
                for k in ("match", "begin", "end"):
                    if k in node:
                        re.compile(node[k])
                for v in node.values():
                    walk(v)
            elif isinstance(node, list):
                for v in node:
                    walk(v)
        walk(self.g)
        for inc in re.findall(r'"include":\s*"#([\w-]+)"', json.dumps(self.g)):
            self.assertIn(inc, self.g["repository"])

    def test_scopes(self):
        toks = self.tk.tokenize(SAMPLE)
        want = {
            "Every construct of the language": "comment.line.number-sign.sdl",
            "model": "keyword.declaration.model.sdl",
            "Demo": "entity.name.type.model.sdl",
            "input": "keyword.declaration.input.sdl",
            "target": "keyword.declaration.input.sdl",
            "param": "keyword.declaration.param.sdl",
            "fc1": "variable.other.param.sdl",
            "f32": "storage.type.element.sdl",
            "i64": "storage.type.element.sdl",
            "csr": "storage.modifier.encoding.sdl",
            "sparse_linear": "support.class.layer.sdl",
            "embedding_bag": "support.class.layer.sdl",
            "tensor": "support.class.layer.sdl",
            "784": "constant.numeric.integer.sdl",
            "0.9": "constant.numeric.float.sdl",
            "1e-2": "constant.numeric.float.sdl",
            ".001": "constant.numeric.float.sdl",
            "sparsity": "variable.parameter.argument.sdl",
            "true": "constant.language.boolean.sdl",
            "mean": "constant.language.option.sdl",
            "normal": "constant.language.option.sdl",
            "catchup": "constant.language.option.sdl",
            "forward": "keyword.other.forward.sdl",
            "relu": "support.function.builtin.sdl",
            "concat": "support.function.builtin.sdl",
            "add": "support.function.builtin.sdl",
            "return": "keyword.control.return.sdl",
            "loss": "keyword.other.loss.sdl",
            "cross_entropy": "support.function.loss.sdl",
            "optimizer": "keyword.other.optimizer.sdl",
            "adamw": "support.function.optimizer.sdl",
            "\\t": "constant.character.escape.sdl",
            "grad": "keyword.other.grad.sdl",
            "fn": "keyword.declaration.function.sdl",
            "scores": "entity.name.function.sdl",
            "softmax": "support.function.builtin.sdl",
        }
        for text, scope in want.items():
            got = scope_of(toks, text)
            self.assertIsNotNone(got, "no token %r" % text)
            self.assertIn(scope, got.split(), "%r: %s" % (text, got))
        # A value named like an option keyword is a variable, not a constant.
        self.assertIn("variable.other.assignment.sdl", scope_of(toks, "dense").split())
        self.assertNotIn("constant", scope_of(toks, "dense", 1))
        self.assertIn("entity.name.function.layer-call.sdl", scope_of(toks, "fc1", 1))
        self.assertIn("keyword.operator.arithmetic.sdl", scope_of(toks, "-"))
        self.assertIn("keyword.operator.encoding.sdl", scope_of(toks, "@", 0))
        self.assertIn("keyword.operator.matmul.sdl", scope_of(toks, "@", 1))

    def test_kwinners2d_and_reshapes(self):
        text = ("  param kw : kwinners2d(8, 0.25, local = true)\n"
                "  forward { h = flatten(kw(unflatten(x, 8, 3, 3))) }\n")
        toks = self.tk.tokenize(text)
        for word, scope in (("kwinners2d", "support.class.layer.sdl"),
                            ("flatten", "support.function.builtin.sdl"),
                            ("unflatten", "support.function.builtin.sdl")):
            got = scope_of(toks, word)
            self.assertIsNotNone(got, "no token %r" % word)
            self.assertIn(scope, got.split(), "%r: %s" % (word, got))

    def test_repository_models_have_no_invalid_tokens(self):
        files = []
        for pat in ("examples/**/*.sdl", "tests/e2e/models/*.sdl", "tests/python/models/*.sdl",
                    "benchmarks/**/*.sdl", "tests/lit/frontend/ast_*.sdl"):
            files += glob.glob(os.path.join(SRC, pat), recursive=True)
        self.assertGreater(len(files), 10)
        for f in files:
            with open(f, encoding="utf-8") as fh:
                toks = self.tk.tokenize(fh.read())
            bad = [(t, s) for t, s in toks if "invalid" in s]
            self.assertEqual(bad, [], f)

    def test_vscode_instructions(self):
        """The ```sh block of docs/editors/README.md builds a valid extension."""
        readme = os.path.join(SRC, "docs", "editors", "README.md")
        code = [t for lang, _, t in blocks(readme) if lang == "sh"]
        self.assertEqual(len(code), 1)
        home = tempfile.mkdtemp()
        try:
            env = dict(os.environ, HOME=home)
            subprocess.run(["bash", "-euo", "pipefail", "-c", code[0]], cwd=SRC, env=env,
                           check=True)
            ext = os.path.join(home, ".vscode", "extensions", "sparsec-sdl-0.1.0")
            with open(os.path.join(ext, "package.json")) as f:
                pkg = json.load(f)
            with open(os.path.join(ext, "language-configuration.json")) as f:
                conf = json.load(f)
            self.assertEqual(conf["comments"]["lineComment"], "#")
            lang = pkg["contributes"]["languages"][0]
            grammar = pkg["contributes"]["grammars"][0]
            self.assertEqual(lang["extensions"], [".sdl"])
            self.assertEqual(grammar["language"], lang["id"])
            self.assertEqual(grammar["scopeName"], self.g["scopeName"])
            with open(os.path.join(ext, grammar["path"])) as f:
                self.assertEqual(json.load(f), self.g)
        finally:
            shutil.rmtree(home)


if __name__ == "__main__":
    unittest.main()
