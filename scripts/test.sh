#!/bin/sh
# test.sh - the README's second command, and what CI runs: install the
# dependencies, build warning-free, run every test; then build again with
# AddressSanitizer and UndefinedBehaviorSanitizer and run every test again;
# then run every fuzz target for a bounded time (FUZZ_SECONDS each, 35 by
# default, as many targets at a time as there are cores, which keeps the
# whole run under CI's 20 minutes on a slow 2-core VM; FUZZ_SECONDS=0 skips
# fuzzing).  Each stage prints the seconds since the start.
set -eu
cd "$(dirname "$0")/.."
t0=$(date +%s)
stage() { echo "== $* (at $(($(date +%s) - t0)) s)"; }
stage "dependencies (scripts/deps.sh)"
sh scripts/deps.sh
jobs=$(nproc)

stage "build (warnings are errors)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHSAC_WERROR=ON >/dev/null
cmake --build build -j"$jobs"
stage "tests"
(cd build && ctest --output-on-failure -j"$jobs")

# The build for a machine with the CUDA toolkit but no LLVM (a lent GPU
# machine, docs/cuda.md): it must keep building, and run the CUDA backend.
stage "build without LLVM (-DHSAC_WITH_LLVM=OFF) and its CUDA checks"
cmake -S . -B build-nollvm -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHSAC_WERROR=ON \
  -DHSAC_WITH_LLVM=OFF >/dev/null
cmake --build build-nollvm -j"$jobs" --target hsac test_unit
build-nollvm/tests/test_unit runtime
build-nollvm/tests/test_unit gpu
build-nollvm/tests/test_unit cuda "--backend cuda and cuda-emu"
build-nollvm/tests/test_unit cuda "a device fault through a session: named, reset, then == fresh"

stage "build with ASan + UBSan"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DHSAC_WERROR=ON -DHSAC_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$jobs"
stage "tests under ASan + UBSan"
# (not the torch twin's tests, label torch: see tests/CMakeLists.txt)
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j"$jobs" -LE torch)

# --- fuzzing (fuzz/run.sh): libFuzzer + ASan + UBSan, built with clang-14 ---
# Each target first replays its regression inputs (fuzz/crashes/NAME/), then
# fuzzes from its seeds (fuzz/corpus/NAME/); a crash, leak, sanitizer report,
# timeout or out-of-memory fails this script.
fuzz_seconds=${FUZZ_SECONDS:-35}
if [ "$fuzz_seconds" != 0 ]; then
  # (without LLVM: no target generates code, and the instrumented code
  # generator and the MLIR archives took most of this build's time)
  stage "build the fuzz targets (clang-14, libFuzzer + ASan + UBSan)"
  cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHSAC_FUZZ=ON -DHSAC_WITH_LLVM=OFF \
    -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 >/dev/null
  cmake --build build-fuzz -j"$jobs" --target fuzz
  # the targets run side by side, one per core (each is one process, in its
  # own work folder); their logs are printed in order when all are done
  stage "fuzz"
  rm -f build-fuzz/fuzz-*.log
  status=0
  for src in fuzz/fuzz_*.c; do name=$(basename "$src" .c); echo "${name#fuzz_}"; done |
    xargs -P "$jobs" -I{} sh -c 'sh fuzz/run.sh "$1" "$2" >"build-fuzz/fuzz-$1.log" 2>&1' \
      sh {} "$fuzz_seconds" || status=$?
  cat build-fuzz/fuzz-*.log
  if [ "$status" != 0 ]; then
    echo "test.sh: a fuzz target failed (its log is above)" >&2
    exit 1
  fi
fi
stage "done"
