#!/bin/sh
# run_full_examples.sh [HSAC] - every full-size example runs on
# deterministic random weights (hsac init-weights), through the reference
# interpreter, on a 64-token prompt with 4 generated tokens.  Prints the
# time and peak memory of each run.  Too heavy for CI (the weights of one
# model are close to 1 GB); run it by hand after changes to the runtime.
set -eu
hsac=${1:-./build/hsac}
dir=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prompt="The passkey is 48213. Remember it. The grass is green. The passkey is"
for f in "$dir"/examples/*.hsa; do
  name=$(basename "$f" .hsa)
  "$hsac" init-weights "$f" -o "$tmp/w.safetensors" --seed 1
  size=$(du -m "$tmp/w.safetensors" | cut -f1)
  if /usr/bin/time -f "%e %M" -o "$tmp/time" "$hsac" run "$f" --weights "$tmp/w.safetensors" \
      --prompt "$prompt" --max-new 4 >/dev/null 2>"$tmp/err"; then
    set -- $(cat "$tmp/time")
    echo "$name: ok, weights ${size} MiB, run ${1} s, peak $(($2 / 1024)) MiB"
  else
    echo "$name: FAILED"; cat "$tmp/err"
  fi
  rm -f "$tmp/w.safetensors"
done
