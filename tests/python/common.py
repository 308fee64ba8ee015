"""Shared helpers of the Python binding tests: compile the test models once
per process with the sparsec under test and import the package."""
import atexit
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
# The package from this checkout unless PYTHONPATH already provides one.
try:
    import sparsec  # noqa: F401
except ImportError:
    sys.path.insert(0, os.path.join(SRC, "python"))
    import sparsec  # noqa: F401

import numpy as np  # noqa: E402


def sparsec_exe():
    """$SPARSEC, else $SPARSEC_BUILD_DIR/bin/sparsec, else build/bin/sparsec."""
    exe = os.environ.get("SPARSEC")
    if not exe:
        build = os.environ.get("SPARSEC_BUILD_DIR", os.path.join(SRC, "build"))
        exe = os.path.join(build, "bin", "sparsec")
    if not os.access(exe, os.X_OK):
        raise RuntimeError("no sparsec at %s: build first (bash .ci/build.sh) or set "
                           "SPARSEC / SPARSEC_BUILD_DIR" % exe)
    return exe


_TMP = tempfile.mkdtemp(prefix="sparsec-pytest-")
atexit.register(shutil.rmtree, _TMP, True)
_CACHE = {}


def tmpdir():
    return tempfile.mkdtemp(dir=_TMP)


def model_so(name):
    """Path of lib<name>.so compiled from tests/python/models/<name>.sdl."""
    if name not in _CACHE:
        _CACHE[name] = sparsec.compile(os.path.join(HERE, "models", name + ".sdl"),
                                       os.path.join(_TMP, "models"), sparsec=sparsec_exe())
    return _CACHE[name]


def rel_err(a, b):
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


def tiny_batch(n=8, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 12)).astype(np.float32)
    y = np.argmax(x[:, :3], axis=1).astype(np.int64)  # a learnable rule
    return x, y
