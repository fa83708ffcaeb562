#!/bin/sh
# cpu_bf16.sh [MODEL] [ROUNDS] [PROMPT_BYTES] - whole-model speed and memory
# of the CPU backend's precision choices (docs/runtime.md, "Precision"),
# alternating runs of `hsac run` in the same minutes:
#   f32        f32 weights, f32 arithmetic (the default on an f32 file)
#   bf16w      --weights-dtype bf16: bf16 matrices widened to f32 as read
#   bf16math   --cpu-math bf16: bf16 inputs and matrices, f32 sums (AMX
#              tiles, AVX512-BF16 dot products or f32 FMAs: `run -v` says)
# Random weights (hsac init-weights), a random prompt of PROMPT_BYTES bytes
# (default 4096), 32 generated tokens, 2 threads.  Prints each run's
# prefill and decode tokens/s and peak memory, then the medians and the
# ratios to f32.  Default MODEL: examples/paper_swa_hsa.hsa (215M
# parameters).  Stop background jobs first.
set -eu
cd "$(dirname "$0")/.."
model=${1:-examples/paper_swa_hsa.hsa}
rounds=${2:-3}
nbytes=${3:-4096}
hsac=${HSAC:-build/hsac}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$hsac" init-weights "$model" -o "$tmp/w.safetensors" --seed 1 -q
python3 -c "
import random; random.seed(1)
print(''.join(random.choice('abcdefghij klmnopqrstuvwxyz.') for _ in range($nbytes)), end='')" >"$tmp/p.txt"
echo "model $model, prompt $nbytes bytes, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')"
echo "flags: $(grep -m1 flags /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|fma|avx512f|avx512_bf16|amx_bf16|amx_tile)$' | tr '\n' ' ')"
"$hsac" run "$model" --weights "$tmp/w.safetensors" --prompt x --max-new 1 --cpu-math bf16 -v 2>&1 |
  grep -o 'linear math: [^,]*,[^,]*' | head -1
for r in $(seq "$rounds"); do
  for c in f32 bf16w bf16math; do
    case $c in
    f32) opt="--weights-dtype f32" ;;
    bf16w) opt="--weights-dtype bf16" ;;
    bf16math) opt="--cpu-math bf16" ;;
    esac
    # shellcheck disable=SC2086
    line=$("$hsac" run "$model" --weights "$tmp/w.safetensors" --prompt-file "$tmp/p.txt" \
      --max-new 32 --temperature 0 --threads 2 $opt 2>&1 >/dev/null | grep generated)
    pre=$(echo "$line" | sed -n 's/.*prompt [0-9]* tokens in [0-9.]* s (\([0-9.]*\) tokens\/s).*/\1/p')
    dec=$(echo "$line" | sed -n 's/.*generated [0-9]* tokens in [0-9.]* s (\([0-9.]*\) tokens\/s).*/\1/p')
    mem=$(echo "$line" | sed -n 's/.*peak memory \([0-9.]*\) \([KMG]\)iB.*/\1 \2/p' |
      awk '{print $2 == "G" ? $1 * 1024 : $2 == "K" ? $1 / 1024 : $1}')
    echo "round $r $c: prefill $pre tokens/s, decode $dec tokens/s, peak $mem MiB"
    echo "$c $pre $dec $mem" >>"$tmp/runs"
  done
done
python3 - "$tmp/runs" <<'PY'
import statistics, sys
runs = [l.split() for l in open(sys.argv[1])]
med = lambda c, i: statistics.median(float(r[i]) for r in runs if r[0] == c)
print("| config | prefill tokens/s | decode tokens/s | peak memory MiB |")
print("|---|---|---|---|")
for c in ("f32", "bf16w", "bf16math"):
    print("| %s | %.0f (%.2fx) | %.1f (%.2fx) | %.0f |" % (c, med(c, 1), med(c, 1) / med("f32", 1),
          med(c, 2), med(c, 2) / med("f32", 2), med(c, 3)))
PY
