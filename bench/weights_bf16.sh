#!/bin/sh
# weights_bf16.sh [MODEL] [ROUNDS] - decode and prefill speed with the
# linear weights in f32 and in bf16 (--weights-dtype, docs/runtime.md),
# alternating runs of `hsac run` in the same minutes: random weights
# (hsac init-weights), a 2048-byte prompt, 48 generated tokens, 2 threads.
# Prints each run's tokens/s and the median ratios.  Default MODEL:
# examples/paper_swa_hsa.hsa (215M parameters: 860 MB of f32, so a decode
# step reads its weights from memory).  Stop background jobs first.
set -eu
cd "$(dirname "$0")/.."
model=${1:-examples/paper_swa_hsa.hsa}
rounds=${2:-3}
hsac=${HSAC:-build/hsac}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$hsac" init-weights "$model" -o "$tmp/w.safetensors" --seed 1 -q
python3 -c "
import random; random.seed(1)
print(''.join(random.choice('abcdefghij klmnopqrstuvwxyz.') for _ in range(2048)), end='')" >"$tmp/p.txt"
echo "model $model, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')"
echo "flags: $(grep -m1 flags /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|fma|avx512f|avx512_bf16|amx_bf16)$' | tr '\n' ' ')"
for r in $(seq "$rounds"); do
  for d in f32 bf16; do
    line=$("$hsac" run "$model" --weights "$tmp/w.safetensors" --prompt-file "$tmp/p.txt" \
      --max-new 48 --temperature 0 --weights-dtype "$d" --threads 2 2>&1 >/dev/null | grep generated)
    pre=$(echo "$line" | sed -n 's/.*prompt [0-9]* tokens in [0-9.]* s (\([0-9.]*\) tokens\/s).*/\1/p')
    dec=$(echo "$line" | sed -n 's/.*generated [0-9]* tokens in [0-9.]* s (\([0-9.]*\) tokens\/s).*/\1/p')
    echo "round $r $d: prefill $pre tokens/s, decode $dec tokens/s"
    echo "$d $pre $dec" >>"$tmp/runs"
  done
done
python3 - "$tmp/runs" <<'PY'
import statistics, sys
runs = [l.split() for l in open(sys.argv[1])]
med = lambda d, i: statistics.median(float(r[i]) for r in runs if r[0] == d)
print("median: prefill f32 %.0f, bf16 %.0f tokens/s (bf16 / f32 %.2f); decode f32 %.1f, bf16 %.1f "
      "tokens/s (bf16 / f32 %.2f)" % (med("f32", 1), med("bf16", 1), med("bf16", 1) / med("f32", 1),
                                     med("f32", 2), med("bf16", 2), med("bf16", 2) / med("f32", 2)))
PY
