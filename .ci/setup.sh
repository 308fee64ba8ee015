#!/usr/bin/env bash
# Installs every package sparsec's build, tests and examples need: Debian
# packages with apt-get, and safetensors (PyPI only) for the system Python.
# Run as root (or with sudo available). Idempotent.
set -euo pipefail

packages=(
  # toolchain and build
  cmake ninja-build ccache clang-22 lld-22 git
  # LLVM/MLIR 22: libraries, headers, CMake packages, lit/FileCheck
  llvm-22-dev llvm-22-tools libmlir-22-dev mlir-22-tools
  # link dependencies of LLVM's CMake package; zlib for the examples
  zlib1g-dev libzstd-dev libedit-dev libffi-dev libxml2-dev libcurl4-openssl-dev
  # tests and benchmarks
  libgtest-dev libbenchmark-dev
  # fuzzing and sanitizers (clang-22 runtimes)
  libclang-rt-22-dev libfuzzer-22-dev
  # numerical oracle (system interpreter /usr/bin/python3) and fast BLAS for it
  python3 python3-numpy python3-torch libopenblas0-pthread
  # install test: pkg-config, pip install ./python
  pkgconf python3-pip python3-setuptools python3-wheel
  # data of the main example
  dataset-fashion-mnist
)

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: run as root" >&2; exit 1; }
  sudo="sudo"
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} Debian packages are installed"
else
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -q
  $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# safetensors is on PyPI only (not in Debian 12): checkpoint interop tests.
if ! /usr/bin/python3 -c 'import safetensors' 2>/dev/null; then
  echo "setup: pip installing safetensors==0.8.0"
  $sudo /usr/bin/python3 -m pip install --quiet --root-user-action=ignore \
    --break-system-packages safetensors==0.8.0
fi
