#!/usr/bin/env bash
# Sanitizer build and test run: ASan + UBSan + LeakSanitizer.
#
# Builds the compiler, the runtime, the tests and the examples in
# ${SPARSEC_ASAN_BUILD_DIR:-build-asan} with
#   -fsanitize=address,undefined -fno-sanitize-recover=all -shared-libasan
# (no -DNDEBUG: LLVM/MLIR's inline asserts are live in sparsec's code), and
# runs the whole ctest suite under it. Generated model libraries are
# sanitized too: `sparsec` links them with the `cc` it finds on PATH, and
# this script puts a wrapper first on PATH that compiles the C glue and
# links with the same sanitizer flags (the runtime archive linked into every
# model is the instrumented one of this build). The MLIR-generated kernels
# themselves are not instrumented (the driver has no option for it yet; see
# docs/reliability.md).
#
# Python tests load instrumented model libraries into /usr/bin/python3, which
# needs the ASan runtime preloaded: SPARSEC_ORACLE_PYTHON points at a wrapper
# that sets LD_PRELOAD (and detect_leaks=0 for the interpreter itself, whose
# own allocations LeakSanitizer would report); a sitecustomize.py removes
# the preload from the environment of its children again, so the compiler,
# cc, nm, ldd and test programs it starts run as usual (with leak checks for
# the instrumented ones).
#
# Test programs and the CMake consumer projects of tests/install are built
# with `cc`/`c++` wrappers (on PATH, and as CC/CXX) that add the same flags.
#
# e2e.abi asserts that a model library needs only libc/libm; a sanitized
# library also needs the ASan runtime, so that ctest entry is replaced by a
# run of the same module without its two dependency checks
# (test_ldd_only_libc_libm, test_undefined_symbols_from_libc_libm).
#
# Usage: bash .ci/sanitize.sh [--full] [extra ctest arguments]
#   default  (the CI mode) every ctest entry except e2e.parity: 41 forward,
#            loss, gradient and SGD-step comparisons with PyTorch, the
#            slowest numerics-only test (~100 s unsanitized, ~300 s under
#            ASan on the shared 2-core VM: it would be the longest step of
#            the CI mode). What it runs -- the compiler, the glue, the
#            runtime and kernels of the same layers -- runs under the
#            sanitizers in lit, e2e.finite_diff, e2e.optimizers,
#            e2e.embedding, e2e.fashion_short (a 300-step training run),
#            examples.recsys, the runtime gtests and tests/reliability.
#   --full   e2e.parity too.
# Both modes leave out install.tutorial and install.cli_doc (see below).
# Exits non-zero when the build or any test fails; every sanitizer report
# aborts the process that hit it (with a stack trace in the test's output).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
full=0
if [ "${1:-}" = "--full" ]; then
  full=1
  shift
fi
build=${SPARSEC_ASAN_BUILD_DIR:-build-asan}
mkdir -p "$build"
build=$(cd "$build" && pwd)
repo=$(pwd)

cc=${SPARSEC_ASAN_CC:-clang-22}
cxx=${SPARSEC_ASAN_CXX:-clang++-22}
rtdir=$("$cc" -print-runtime-dir)
asan_rt="$rtdir/libclang_rt.asan-x86_64.so"
if [ ! -f "$asan_rt" ]; then
  echo "sanitize: $asan_rt not found (Debian package libclang-rt-22-dev)" >&2
  exit 1
fi
san="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
# One shared ASan runtime for every executable and library (a model library
# is loaded by python, by C test programs and by the examples).
link="$san -shared-libasan -Wl,-rpath,$rtdir"

# --- tools: cc and python wrappers, LSan suppressions -----------------------
tools="$build/sanitize-tools"
mkdir -p "$tools/py"
cat > "$tools/cc" <<EOF
#!/bin/sh
# cc for sanitized builds: what sparsec links model libraries with.
exec $cc $link -Wno-unused-command-line-argument "\$@"
EOF
cat > "$tools/c++" <<EOF
#!/bin/sh
# c++ for sanitized builds (programs and projects built against models).
exec $cxx $link -Wno-unused-command-line-argument "\$@"
EOF
cat > "$tools/python3" <<EOF
#!/bin/sh
# /usr/bin/python3 with the ASan runtime preloaded, so that it can load
# sanitized model libraries. LeakSanitizer is off for the interpreter.
export SPARSEC_SAN_CHILD_LD_PRELOAD="\${LD_PRELOAD:-}"
export SPARSEC_SAN_CHILD_ASAN_OPTIONS="\${ASAN_OPTIONS:-}"
export LD_PRELOAD="$asan_rt\${LD_PRELOAD:+:\$LD_PRELOAD}"
export ASAN_OPTIONS="\${ASAN_OPTIONS:+\$ASAN_OPTIONS:}detect_leaks=0"
export PYTHONPATH="$tools/py\${PYTHONPATH:+:\$PYTHONPATH}"
exec /usr/bin/python3 "\$@"
EOF
cat > "$tools/py/sitecustomize.py" <<'EOF'
# Loaded by the sanitize python3 wrapper: its children get the environment
# the wrapper was started with (no preloaded ASan runtime).
import os

for _var in ("LD_PRELOAD", "ASAN_OPTIONS"):
    _orig = os.environ.pop("SPARSEC_SAN_CHILD_" + _var, "")
    if _orig:
        os.environ[_var] = _orig
    else:
        os.environ.pop(_var, None)
EOF
chmod +x "$tools/cc" "$tools/c++" "$tools/python3"

# Everything that compiles C or C++ against a model library (tests, the
# consumer projects of tests/install, the tutorial) must use the sanitizer
# flags too: `cc`/`c++` on PATH, and CC/CXX for the CMake projects the
# tests configure.
export PATH="$tools:$PATH"
export CC="$tools/cc" CXX="$tools/c++"
# .ci/install-test.sh (ctest install.consume) runs its Python step with it.
export SPARSEC_PYTHON="$tools/python3"
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-print_suppressions=0}"

# --- configure and build ----------------------------------------------------
t0=$(date +%s)
if [ ! -f "$build/build.ninja" ]; then
  cmake -G Ninja -S . -B "$build" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g" \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" \
    -DCMAKE_C_COMPILER="$cc" -DCMAKE_CXX_COMPILER="$cxx" \
    -DCMAKE_C_FLAGS="$san" -DCMAKE_CXX_FLAGS="$san" \
    -DCMAKE_EXE_LINKER_FLAGS="$link" \
    -DCMAKE_SHARED_LINKER_FLAGS="$link" \
    -DCMAKE_MODULE_LINKER_FLAGS="$link" \
    -DSPARSEC_ORACLE_PYTHON="$tools/python3"
fi
ninja -C "$build"
t1=$(date +%s)
echo "sanitize: build took $((t1 - t0)) s"

# --- tests --------------------------------------------------------------------
status=0
# install.tutorial and install.cli_doc run documented commands with
# /usr/bin first on PATH, so `sparsec` there links with the system cc, which
# lacks the sanitizer runtime the instrumented runtime archive needs: they
# cannot run in this build (they would with a driver-level way to choose the
# linker, e.g. a SPARSEC_CC environment variable; docs/reliability.md).
# e2e.abi is run below, and e2e.parity only with --full (see the top).
exclude='^(e2e\.(abi|parity)|install\.(tutorial|cli_doc))$'
if [ $full = 1 ]; then
  exclude='^(e2e\.abi|install\.(tutorial|cli_doc))$'
fi
ctest --test-dir "$build" --output-on-failure -j "$(nproc)" -E "$exclude" "$@" || status=1
t2=$(date +%s)
echo "sanitize: ctest took $((t2 - t1)) s"

# e2e.abi without the two "needs only libc/libm" checks.
(
  cd tests/e2e
  SPARSEC_BUILD_DIR="$build" PYTHONDONTWRITEBYTECODE=1 "$tools/python3" - <<'EOF'
import sys
import unittest

import test_abi

SKIP = {"test_ldd_only_libc_libm", "test_undefined_symbols_from_libc_libm"}


def flat(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from flat(t)
        else:
            yield t


suite = unittest.TestSuite(
    t for t in flat(unittest.TestLoader().loadTestsFromModule(test_abi))
    if t._testMethodName not in SKIP)
print(f"e2e.abi (sanitized): {suite.countTestCases()} tests, skipping "
      f"{', '.join(sorted(SKIP))} (a sanitized library also needs the ASan runtime)")
result = unittest.TextTestRunner(verbosity=2).run(suite)
sys.exit(0 if result.wasSuccessful() else 1)
EOF
) || status=1
t3=$(date +%s)
echo "sanitize: e2e.abi (sanitized subset) took $((t3 - t2)) s"
echo "sanitize: finished in $((t3 - start)) s, status $status"
exit $status
