#!/usr/bin/env bash
# Configures (once) and builds sparsec into ${SPARSEC_BUILD_DIR:-build}.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${SPARSEC_BUILD_DIR:-build}
if [ ! -f "$build/build.ninja" ]; then
  cmake -G Ninja -S . -B "$build" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_C_COMPILER=clang-22 -DCMAKE_CXX_COMPILER=clang++-22
fi
ninja -C "$build" "$@"
