#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz (a CMake project of its own,
# clang-22 with -fsanitize=fuzzer,address,undefined; the main build stays
# unsanitized) in ${SPARSEC_FUZZ_BUILD_DIR:-build-fuzz} and runs each for a
# short time:
#   sparsec-fuzz-frontend    ${SPARSEC_FUZZ_FRONTEND_SECONDS:-60} s  (.sdl bytes)
#   sparsec-fuzz-generate    ${SPARSEC_FUZZ_GENERATE_SECONDS:-30} s  (generated models)
#   sparsec-fuzz-checkpoint  ${SPARSEC_FUZZ_CHECKPOINT_SECONDS:-30} s
# The front-end corpus is seeded with every .sdl file of the repository and
# uses tests/fuzz/sdl.dict; the checkpoint corpus is seeded with valid
# checkpoints of the harness model (sparsec-fuzz-ckpt-seeds) and uses
# tests/fuzz/checkpoint.dict. Inputs under tests/fuzz/regressions/<target>/
# (reproducers of fixed findings) are replayed first. Corpora grow in
# <build>/fuzz-work across runs.
#
# Exits non-zero on any finding (crash, sanitizer report, leak, timeout,
# harness invariant); the reproducer is written to
# <build>/fuzz-work/artifacts/<target>-crash-*, -leak-*, -timeout-*.
# Reproduce with: <build>/bin/sparsec-fuzz-<target> <file>
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
build=${SPARSEC_FUZZ_BUILD_DIR:-build-fuzz}
fe_time=${SPARSEC_FUZZ_FRONTEND_SECONDS:-60}
ck_time=${SPARSEC_FUZZ_CHECKPOINT_SECONDS:-30}
gen_time=${SPARSEC_FUZZ_GENERATE_SECONDS:-30}

if [ ! -f "$build/build.ninja" ]; then
  cmake -G Ninja -S tests/fuzz -B "$build" \
    -DCMAKE_C_COMPILER=clang-22 -DCMAKE_CXX_COMPILER=clang++-22
fi
ninja -C "$build"
t_built=$(date +%s)
echo "fuzz: build took $((t_built - start)) s"

work=$build/fuzz-work
art=$work/artifacts
mkdir -p "$work/seeds-frontend" "$work/seeds-checkpoint" "$work/seeds-generate" \
         "$work/corpus-frontend" "$work/corpus-checkpoint" "$work/corpus-generate" "$art"

# Seeds: every .sdl of the repository (tracked or not, build trees excluded).
find . -name '*.sdl' -not -path './build*' -not -path './.git/*' -print0 |
  while IFS= read -r -d '' f; do
    cp "$f" "$work/seeds-frontend/$(echo "${f#./}" | tr '/' '_')"
  done
"$build/bin/sparsec-fuzz-ckpt-seeds" "$work/seeds-checkpoint" >/dev/null

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
status=0

# run TARGET DICT SECONDS: replays the regressions, then fuzzes.
run() {
  local target=$1 dict=$2 seconds=$3
  local exe="$build/bin/sparsec-fuzz-$target"
  local regressions=tests/fuzz/regressions/$target
  if [ -d "$regressions" ] && [ -n "$(ls -A "$regressions")" ]; then
    echo "fuzz: $target: replaying $(ls "$regressions" | wc -l) regression inputs"
    "$exe" -timeout=10 "$regressions"/* || { echo "fuzz: $target: a regression input fails" >&2; status=1; }
  fi
  local log="$work/$target.log"
  local t0
  t0=$(date +%s)
  if "$exe" ${dict:+-dict="$dict"} -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 \
       -max_len=16384 -print_final_stats=1 -artifact_prefix="$art/$target-" \
       "$work/corpus-$target" "$work/seeds-$target" >"$log" 2>&1; then
    echo "fuzz: $target: no finding in $(( $(date +%s) - t0 )) s:" \
         "$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}') executions," \
         "$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1)"
  else
    echo "fuzz: $target: FINDING (see $log; reproducer in $art):" >&2
    grep -E "ERROR|FINDING|SUMMARY|Test unit written|==[0-9]+==" "$log" | head -20 >&2 || true
    status=1
  fi
}

run frontend tests/fuzz/sdl.dict "$fe_time"
run generate "" "$gen_time"
run checkpoint tests/fuzz/checkpoint.dict "$ck_time"
echo "fuzz: finished in $(( $(date +%s) - start )) s, status $status"
exit $status
