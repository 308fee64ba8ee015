#!/usr/bin/env bash
# Install test: installs the build into a temporary prefix and uses it the
# way a downstream project would.
#
#   bash .ci/install-test.sh [--no-build]
#
# 1. `cmake --install ${SPARSEC_BUILD_DIR:-build} --prefix $tmp/prefix`, and
#    checks the installed files;
# 2. the installed sparsec compiles a model against the installed runtime;
# 3. `pkg-config --cflags --libs sparsec` (PKG_CONFIG_PATH) builds and runs a
#    C program against the runtime;
# 4. examples/consume_installed (find_package(Sparsec), sparsec_add_model)
#    is configured, built and run against the prefix; OPTIONS reach sparsec;
#    touching its .sdl makes `ninja -n` show the sparsec step again;
# 5. sparsec_add_model(... TARGET cuda) builds a library that carries the
#    CUDA kernels and <Model>_create_on; an unknown TARGET fails clearly;
# 6. the prefix is moved and still works (relocatable);
# 7. `pip install ./python` (into a --target dir) gives a package that loads
#    the model library the consumer project built.
# --no-build skips `.ci/build.sh` (ctest runs it this way, after the build).
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
build=${SPARSEC_BUILD_DIR:-build}
case "$build" in /*) ;; *) build="$src/$build" ;; esac
python=${SPARSEC_PYTHON:-/usr/bin/python3}
if [ "${1:-}" != "--no-build" ]; then
  bash .ci/build.sh
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/sparsec-install-test.XXXXXX")
cleanup() { rm -rf "$tmp"; }
trap cleanup EXIT
start=$(date +%s%N)
step() {
  local ms=$(( ($(date +%s%N) - start) / 1000000 ))
  printf '\n== install-test: %s (at %d.%01d s)\n' "$1" $((ms / 1000)) $((ms % 1000 / 100))
}
fail() { echo "install-test: FAILED: $*" >&2; exit 1; }

step "cmake --install into $tmp/prefix"
prefix=$tmp/prefix
cmake --install "$build" --prefix "$prefix" >"$tmp/install.log"
for f in bin/sparsec bin/sparsec-opt include/sparsec/runtime.h \
         lib/libsparsec_runtime.a lib/libsparsec_runtime.so \
         lib/cmake/Sparsec/SparsecConfig.cmake \
         lib/cmake/Sparsec/SparsecConfigVersion.cmake \
         lib/cmake/Sparsec/SparsecTargets.cmake \
         lib/cmake/Sparsec/SparsecModel.cmake lib/pkgconfig/sparsec.pc; do
  [ -e "$prefix/$f" ] || fail "missing $prefix/$f"
done
"$prefix/bin/sparsec" --version
"$prefix/bin/sparsec-opt" --version | sed -n 1,2p

step "the installed sparsec links the installed runtime"
mkdir "$tmp/direct"
cp examples/consume_installed/tiny_mlp.sdl "$tmp/direct/"
"$prefix/bin/sparsec" "$tmp/direct/tiny_mlp.sdl" -o "$tmp/direct/libtiny.so" -v \
  2>"$tmp/direct/link.txt"
grep -q -- "-I$prefix/include" "$tmp/direct/link.txt" ||
  fail "link did not use $prefix/include: $(cat "$tmp/direct/link.txt")"
grep -q -- "$prefix/lib/libsparsec_runtime.a" "$tmp/direct/link.txt" ||
  fail "link did not use $prefix/lib/libsparsec_runtime.a"
[ -f "$tmp/direct/libtiny.so" ] && [ -f "$tmp/direct/libtiny.h" ] ||
  fail "no libtiny.so/libtiny.h"

step "pkg-config --cflags --libs sparsec"
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
pkg-config --modversion sparsec
flags=$(pkg-config --cflags --libs sparsec)
echo "pkg-config: $flags"
case "$flags" in *-lsparsec_runtime*) ;; *) fail "no -lsparsec_runtime in '$flags'" ;; esac
[ "$(cd "$(pkg-config --variable=includedir sparsec)" && pwd -P)" = \
  "$(cd "$prefix/include" && pwd -P)" ] || fail "includedir is not $prefix/include"
[ -x "$(pkg-config --variable=sparsec sparsec)" ] || fail "no sparsec variable"
# shellcheck disable=SC2086
cc -std=c11 examples/consume_installed/runtime_info.c -o "$tmp/runtime_info" $flags
LD_LIBRARY_PATH="$prefix/lib" "$tmp/runtime_info" >"$tmp/info.txt"
cat "$tmp/info.txt"
grep -q "SPARSEC_ERR_ABI" "$tmp/info.txt" || fail "runtime_info output"
# shellcheck disable=SC2046
cc -std=c11 -static-libgcc examples/consume_installed/runtime_info.c \
  -o "$tmp/runtime_info_static" $(pkg-config --cflags sparsec) \
  "$(pkg-config --variable=libdir sparsec)/libsparsec_runtime.a" \
  $(pkg-config --libs-only-other --static sparsec) -lm
"$tmp/runtime_info_static" >/dev/null

step "examples/consume_installed against the prefix"
cp -r examples/consume_installed "$tmp/consume-src"
cmake -G Ninja -S "$tmp/consume-src" -B "$tmp/consume" \
  -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release >"$tmp/configure.log" ||
  { cat "$tmp/configure.log"; fail "configure"; }
grep "sparsec 0" "$tmp/configure.log" || true
ninja -C "$tmp/consume" | tail -n 3
"$tmp/consume/train_tiny" >"$tmp/train.txt"
cat "$tmp/train.txt"
grep -q "^trained 20 steps" "$tmp/train.txt" || fail "train_tiny output"
"$tmp/consume/runtime_info"
"$tmp/consume/runtime_info_static" >/dev/null
ninja -C "$tmp/consume" -t commands train_tiny >"$tmp/commands.txt"
grep -- "bin/sparsec" "$tmp/commands.txt"
grep -q -- "^cd $tmp/consume && $prefix/bin/sparsec .*tiny_mlp.sdl .*-O2 --generic-cpu$" \
  "$tmp/commands.txt" || fail "the installed sparsec does not compile the model with OPTIONS"

step "editing the .sdl rebuilds the model"
ninja -C "$tmp/consume" -n >"$tmp/noop.txt"
cat "$tmp/noop.txt"
grep -q "no work to do" "$tmp/noop.txt" || fail "a second build is not a no-op"
sleep 1
touch "$tmp/consume-src/tiny_mlp.sdl"
ninja -C "$tmp/consume" -n >"$tmp/dry.txt"
cat "$tmp/dry.txt"
grep -q "sparsec tiny_mlp.sdl -> libtiny_mlp.so" "$tmp/dry.txt" ||
  fail "touching tiny_mlp.sdl does not rerun sparsec"
grep -q "train_tiny" "$tmp/dry.txt" || fail "train_tiny is not relinked"
sed -i 's/sparsity = 0.8/sparsity = 0.5/' "$tmp/consume-src/tiny_mlp.sdl"
ninja -C "$tmp/consume" >/dev/null
grep -q "fc1.weight : csr \[32\]\[16\], nnz 256" "$tmp/consume/tiny_mlp.h" ||
  fail "the edited model was not recompiled"
"$tmp/consume/train_tiny" | tail -n 1

step "TARGET cuda builds the CUDA kernels into the library"
mkdir "$tmp/cuda-src"
cp examples/consume_installed/tiny_mlp.sdl "$tmp/cuda-src/"
cat >"$tmp/cuda-src/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.20)
project(cuda_model LANGUAGES C)
find_package(Sparsec REQUIRED)
sparsec_add_model(tiny_cuda tiny_mlp.sdl TARGET cuda)
add_custom_target(models ALL)
add_dependencies(models tiny_cuda_generate)
EOF
cmake -G Ninja -S "$tmp/cuda-src" -B "$tmp/cuda" -DCMAKE_PREFIX_PATH="$prefix" \
  >"$tmp/cuda.log" 2>&1 || { cat "$tmp/cuda.log"; fail "TARGET cuda did not configure"; }
ninja -C "$tmp/cuda" >>"$tmp/cuda.log" 2>&1 || { cat "$tmp/cuda.log"; fail "TARGET cuda did not build"; }
grep -q "int TinyMLP_create_on(uint64_t seed, const char \*device" "$tmp/cuda/tiny_cuda.h" ||
  fail "no TinyMLP_create_on in the header"
grep -q "sparsec_gpu_kernel_TinyMLP_train_0_" "$tmp/cuda/libtiny_cuda.so" ||
  fail "the library carries no CUDA kernels"
sed -i 's/TARGET cuda/TARGET tpu/' "$tmp/cuda-src/CMakeLists.txt"
if cmake -G Ninja -S "$tmp/cuda-src" -B "$tmp/tpu" -DCMAKE_PREFIX_PATH="$prefix" \
    >"$tmp/tpu.log" 2>&1; then
  fail "TARGET tpu configured"
fi
grep -q "unknown TARGET 'tpu' (expected cpu, cuda or" "$tmp/tpu.log" ||
  { cat "$tmp/tpu.log"; fail "no clear TARGET message"; }
grep "unknown TARGET" "$tmp/tpu.log"

step "the prefix is relocatable"
mv "$prefix" "$tmp/moved"
prefix=$tmp/moved
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
[ -f "$(pkg-config --variable=libdir sparsec)/libsparsec_runtime.a" ] ||
  fail "pkg-config after the move"
cmake -G Ninja -S "$tmp/consume-src" -B "$tmp/consume2" \
  -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
ninja -C "$tmp/consume2" >/dev/null
"$tmp/consume2/train_tiny" | tail -n 1

step "pip install ./python loads the library built by sparsec_add_model"
cp -r "$src/python" "$tmp/python-src"   # pip writes build/ and *.egg-info/ next to it
"$python" -m pip install --quiet --no-build-isolation --no-deps --no-index \
  --target "$tmp/pylib" "$tmp/python-src" 2>&1 | grep -v "^WARNING: Running pip as" || true
[ -f "$tmp/pylib/sparsec/__init__.py" ] || fail "pip did not install the package"
(cd "$tmp" && PYTHONPATH="$tmp/pylib" "$python" - "$tmp/consume2/libtiny_mlp.so" <<'EOF'
import sys, numpy as np, sparsec
assert sparsec.__file__.startswith(sys.argv[1].split("/consume2/")[0]), sparsec.__file__
m = sparsec.load(sys.argv[1])            # finds tiny_mlp.h next to the library
x = np.random.default_rng(0).standard_normal((8, 16)).astype(np.float32)
y = np.arange(8, dtype=np.int64) % 4
losses = [m.train_step(x, y) for _ in range(5)]
print("python:", m.name, [p.name for p in m.param_info()], "loss %.4f -> %.4f" % (losses[0], losses[-1]))
assert losses[-1] < losses[0]
EOF
)

step "passed"
