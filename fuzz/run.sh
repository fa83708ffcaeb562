#!/bin/sh
# run.sh - runs one libFuzzer target for a bounded time.
#
#   fuzz/run.sh TARGET SECONDS [libFuzzer flags...]
#
# TARGET is NAME for the executable fuzz_NAME (fuzz/fuzz_NAME.c), built by
#   cmake -S . -B build-fuzz -DHSAC_FUZZ=ON -DCMAKE_C_COMPILER=clang-14 \
#         -DCMAKE_CXX_COMPILER=clang++-14
#   cmake --build build-fuzz --target fuzz
# (FUZZ_BUILD names another build folder).  The run:
#  1. replays every regression input in fuzz/crashes/NAME/ (inputs that once
#     crashed; each must now pass);
#  2. fuzzes for SECONDS seconds, starting from the checked-in seeds in
#     fuzz/corpus/NAME/ and the scratch corpus of earlier runs; new inputs go
#     to the scratch corpus only ($FUZZ_BUILD/fuzz-work/NAME/corpus), so the
#     seeds stay small.
# The process runs in a scratch directory ($FUZZ_BUILD/fuzz-work/NAME/cwd,
# holding a copy of examples/tiny/common/ for `include`), with stdin from
# /dev/null.  A crash, a leak, a sanitizer report, an input slower than the
# timeout or an RSS above the limit leaves its reproducer in
# $FUZZ_BUILD/fuzz-work/NAME/artifacts/ and makes this script fail.
#
# Per-target settings (input size, per-input timeout, dictionary) are in the
# case below; a new target needs a line only if the defaults do not fit.
set -eu
usage() { echo "usage: fuzz/run.sh TARGET SECONDS [libFuzzer flags...]" >&2; exit 2; }
[ $# -ge 2 ] || usage
target=$1 seconds=$2
shift 2
case $seconds in '' | *[!0-9]*) usage ;; esac
root=$(cd "$(dirname "$0")/.." && pwd)
build=${FUZZ_BUILD:-$root/build-fuzz}
case $build in /*) ;; *) build=$(pwd)/$build ;; esac
bin=$build/fuzz/fuzz_$target
if [ ! -x "$bin" ]; then
  echo "run.sh: no $bin; build it first (see the top of fuzz/run.sh)" >&2
  exit 2
fi

# defaults, then per target
max_len=4096 timeout=10 rss=2048 dict="" quiet=""
case $target in
  frontend) max_len=8192 dict=$root/fuzz/hsa.dict ;;
  safetensors) max_len=20000 dict=$root/fuzz/safetensors.dict ;;
  # the parse prints help and usage errors: -close_fd_mask=3 discards them
  # (libFuzzer keeps its own output and the sanitizers' reports)
  cli) max_len=1024 dict=$root/fuzz/cli.dict quiet=-close_fd_mask=3 ;;
esac

work=$build/fuzz-work/$target
mkdir -p "$work/corpus" "$work/artifacts" "$work/cwd"
rm -rf "$work/cwd/common"
cp -R "$root/examples/tiny/common" "$work/cwd/common"
seeds=$root/fuzz/corpus/$target
[ -d "$seeds" ] || seeds=""

set -- -timeout="$timeout" -rss_limit_mb="$rss" -max_len="$max_len" \
  -artifact_prefix="$work/artifacts/" -print_final_stats=1 ${dict:+-dict="$dict"} $quiet "$@"
cd "$work/cwd"

# 1. regression inputs
crashes=$root/fuzz/crashes/$target
if [ -d "$crashes" ] && [ -n "$(ls -A "$crashes")" ]; then
  echo "== fuzz $target: replaying $(ls "$crashes" | wc -l) regression inputs from fuzz/crashes/$target/"
  # replayed with a 30 s limit: the saved timeouts take ~2 s under the
  # sanitizers now, and their quadratic versions took well over 30 s
  "$bin" "$@" -timeout=30 "$crashes"/* </dev/null >"$work/replay.log" 2>&1 || {
    cat "$work/replay.log" >&2
    echo "run.sh: a regression input in fuzz/crashes/$target/ fails again" >&2
    exit 1
  }
fi

# 2. bounded fuzzing
echo "== fuzz $target for ${seconds}s (scratch corpus $work/corpus)"
status=0
"$bin" "$@" -max_total_time="$seconds" "$work/corpus" $seeds </dev/null \
  >"$work/fuzz.log" 2>&1 || status=$?
# the progress lines are long; show the start, the end and any report
grep -E "INFO: seed corpus|INITED" "$work/fuzz.log" | head -3 || true
if [ $status -ne 0 ]; then
  tail -n 80 "$work/fuzz.log" >&2
  echo "run.sh: fuzz_$target failed (exit $status); reproducer in $work/artifacts/:" >&2
  ls -l "$work/artifacts" >&2
  echo "run.sh: replay with: (cd $work/cwd && $bin INPUT); keep it as fuzz/crashes/$target/NAME" >&2
  exit 1
fi
grep -E "^#[0-9]+.*(DONE|pulse|NEW|REDUCE)" "$work/fuzz.log" | tail -n 1 || true
grep -E "^stat::" "$work/fuzz.log" || true
echo "== fuzz $target: scratch corpus $(ls "$work/corpus" | wc -l) files, $(du -sb "$work/corpus" | cut -f1) bytes"
