"""Running the sparsec compiler from Python."""
import os
import shutil
import subprocess


class CompileError(RuntimeError):
    """sparsec exited with a non-zero status; `stderr` holds its diagnostics."""

    def __init__(self, cmd, returncode, stderr):
        super().__init__("sparsec failed (exit status %d):\n%s" % (returncode, stderr.rstrip()))
        self.cmd = cmd
        self.returncode = returncode
        self.stderr = stderr


def find_sparsec(sparsec=None):
    """The sparsec executable: `sparsec` if given, else $SPARSEC, else the
    first `sparsec` on PATH."""
    exe = sparsec or os.environ.get("SPARSEC") or shutil.which("sparsec")
    if not exe:
        raise FileNotFoundError(
            "cannot find the sparsec compiler: pass sparsec=PATH, set $SPARSEC or "
            "put <prefix>/bin on PATH")
    if os.sep not in exe:
        found = shutil.which(exe)
        if not found:
            raise FileNotFoundError("sparsec executable '%s' not found on PATH" % exe)
        exe = found
    if not os.access(exe, os.X_OK):
        raise FileNotFoundError("sparsec executable '%s' is not executable" % exe)
    return exe


def compile(sdl_path, out_dir=None, sparsec=None, name=None, options=(), timeout=None):
    """Compiles `sdl_path` into ``<out_dir>/lib<name>.so`` plus its header
    ``<out_dir>/lib<name>.h`` and returns the library's path.

    `name` defaults to the .sdl file's stem, `out_dir` to the file's folder
    (created if needed). `options` are extra sparsec arguments (e.g.
    ``["-O2", "--model=Net"]``). Raises CompileError with sparsec's
    diagnostics when compilation fails."""
    exe = find_sparsec(sparsec)
    sdl_path = os.fspath(sdl_path)
    stem = name or os.path.splitext(os.path.basename(sdl_path))[0]
    out_dir = os.fspath(out_dir) if out_dir is not None else \
        os.path.dirname(os.path.abspath(sdl_path))
    os.makedirs(out_dir, exist_ok=True)
    so = os.path.join(out_dir, "lib%s.so" % stem)
    cmd = [exe, sdl_path, "-o", so] + [str(o) for o in options]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=timeout)
    if r.returncode != 0:
        raise CompileError(cmd, r.returncode, r.stderr)
    return so
