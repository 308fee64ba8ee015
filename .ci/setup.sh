#!/usr/bin/env bash
# Installs every Debian package sparsec's build, tests and examples need.
# Run as root (or with sudo available). Idempotent.
set -euo pipefail

packages=(
  # toolchain and build
  cmake ninja-build ccache clang-22 lld-22 git
  # LLVM/MLIR 22: libraries, headers, CMake packages, lit/FileCheck
  llvm-22-dev llvm-22-tools libmlir-22-dev mlir-22-tools
  # zlib/zstd/libedit/libffi/libxml2: link dependencies of LLVM's CMake package
  zlib1g-dev libzstd-dev libedit-dev libffi-dev libxml2-dev libcurl4-openssl-dev
  # tests and benchmarks
  libgtest-dev libbenchmark-dev
  # numerical oracle (system interpreter /usr/bin/python3) and fast BLAS for it
  python3 python3-numpy python3-torch libopenblas0-pthread
  # data of the main example
  dataset-fashion-mnist
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages are installed"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: run as root to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
