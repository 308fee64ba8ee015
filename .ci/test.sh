#!/usr/bin/env bash
# Builds everything and runs the whole test suite (unit, lit, end-to-end).
# Exits non-zero when any test fails.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${SPARSEC_BUILD_DIR:-build}
bash .ci/build.sh
ctest --test-dir "$build" --output-on-failure -j "$(nproc)" "$@"
