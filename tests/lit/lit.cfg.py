# lit configuration of the sparsec test suites (.sdl and .mlir files).
import os

import lit.formats

config.name = "sparsec"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".sdl", ".mlir"]
config.excludes = ["Inputs", "CMakeLists.txt", "lit.cfg.py", "lit.site.cfg.py.in"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.sparsec_obj_root, "tests", "lit")

# Tools: sparsec, sparsec-opt from the build; FileCheck, not, count from
# Debian's llvm-22-tools.
config.environment["PATH"] = os.pathsep.join(
    [config.sparsec_tools_dir, config.llvm_tools_dir, config.environment.get("PATH", "")]
)
config.substitutions.append(("%python", config.oracle_python))
config.substitutions.append(("%repo", os.path.dirname(os.path.dirname(config.test_source_root))))

# ptxas (CUDA toolkit, optional): tests marked `REQUIRES: ptxas` assemble the
# generated PTX; without a toolkit they are reported UNSUPPORTED.
import shutil
_ptxas = shutil.which("ptxas") or os.path.join(
    os.environ.get("CUDA_HOME", "/usr/local/cuda"), "bin", "ptxas")
if os.access(_ptxas, os.X_OK):
    config.available_features.add("ptxas")
    config.substitutions.append(("%ptxas", _ptxas))
