#!/bin/sh
# cpu_backend.sh [BUILD_DIR] - every CPU-backend benchmark in one run, so
# the ratios compare numbers measured on the same machine at the same time.
# Prints Markdown for bench/RESULTS.md:
#   - the CPU (model name and flags) and the thread count;
#   - bench_cpu_kernels: FMA peak, bandwidth, GEMM vs OpenBLAS at the
#     models' shapes, the HSA sparse-attention layer, the landmark scan;
#     with 1 thread and with every core;
#   - PyTorch baselines of the same layer (bench/torch_sparse_attention.py)
#     when the benchmark venv exists (bench/torch_setup.sh);
#   - bench_prefill: whole-model prefill tokens/s against the reference
#     interpreter, and decode tokens/s at long contexts;
#   - the PyTorch twin's prefill (bench/torch_twin_prefill.py);
#   - JIT: compiling every kernel of the paper's model cold and from the cache.
# Takes about 20 minutes on a 2-core machine and a few GB of disk for
# random weights of the 215M model.  Stop background jobs first (kill -STOP).
set -eu
build=${1:-build}
dir=$(cd "$(dirname "$0")/.." && pwd)
hsac="$build/hsac"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
threads=$(nproc)
venv=${HSAC_TORCH_VENV:-$HOME/.cache/hsac-bench-venv}

# OpenBLAS must be told the core (SkylakeX dies on AVX2-only machines)
if grep -q -m1 avx512f /proc/cpuinfo; then export OPENBLAS_CORETYPE=SkylakeX
else export OPENBLAS_CORETYPE=Haswell; fi

echo "## CPU backend ($(date -u +%Y-%m-%d))"
echo
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores;"
echo "flags: \`$(grep -m1 flags /proc/cpuinfo | cut -d: -f2 | tr ' ' '\n' | grep -E '^(avx2|fma|avx512f|avx512bw|avx512vl|avx512_bf16|amx_tile|amx_bf16|amx_int8)$' | tr '\n' ' ' | sed 's/ $//')\`;"
echo "OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE.  Command: \`sh bench/cpu_backend.sh\`."
echo
for t in 1 "$threads"; do
  echo "### Kernels, $t thread(s)"
  echo
  "$build/bench_cpu_kernels" --threads "$t" "$dir/examples/passkey_hsa.hsa" \
    "$dir/bench/models/paper_small.hsa" "$dir/examples/paper_swa_hsa.hsa" | sed 's/^###/####/'
  echo
done

if [ -x "$venv/bin/python" ]; then
  echo "### PyTorch baselines of the sparse-attention layer ($("$venv/bin/python" -c 'import torch; print("torch", torch.__version__)'))"
  echo
  for t in 1 "$threads"; do
    "$venv/bin/python" "$dir/bench/torch_sparse_attention.py" --threads "$t" \
      --L 4096 16384 65536 262144 --lq 4096 2>/dev/null || true
    # the clustered selections of the kernels' second table: eager and
    # SDPA gather per query, so they gain nothing from chunks shared
    "$venv/bin/python" "$dir/bench/torch_sparse_attention.py" --threads "$t" \
      --L 4096 16384 65536 262144 --lq 4096 --select clustered --impl eager sdpa \
      2>/dev/null || true
  done
  echo
else
  echo "(PyTorch baselines skipped: no venv at $venv; sh bench/torch_setup.sh makes one)"
  echo
fi

echo "### Whole models, $threads threads (random weights, random byte prompts)"
echo
echo "| model | prompt tokens | hsac cpu tokens/s | reference tokens/s | cpu / ref | max logit diff | decode tokens/s | bytes read per token | read rate |"
echo "|---|---|---|---|---|---|---|---|---|"
"$hsac" init-weights "$dir/bench/models/paper_small.hsa" -o "$tmp/small.st" --seed 1
pk="$dir/examples/passkey_hsa.hsa"
pkw="$dir/examples/trained/passkey_hsa/weights.safetensors"
"$build/bench_prefill" "$pk" "$pkw" --tokens 4096 --threads "$threads"
"$build/bench_prefill" "$pk" "$pkw" --tokens 4096 --all --threads "$threads"
"$build/bench_prefill" "$pk" "$pkw" --tokens 64K --ref-tokens 8192 --threads "$threads"
"$build/bench_prefill" "$dir/bench/models/paper_small.hsa" "$tmp/small.st" --tokens 4096 --threads "$threads"
"$build/bench_prefill" "$dir/bench/models/paper_small.hsa" "$tmp/small.st" --tokens 4096 --all --threads "$threads"
"$build/bench_prefill" "$dir/bench/models/paper_small.hsa" "$tmp/small.st" --tokens 64K --ref-tokens 4096 --threads "$threads"
for n in 64K 1M 8M; do
  "$build/bench_prefill" "$dir/bench/models/paper_small.hsa" "$tmp/small.st" --tokens "$n" \
    --ref-tokens 0 --decode 64 --segment 4096 --threads "$threads"
done
rm -f "$tmp/small.st"
"$hsac" init-weights "$dir/examples/paper_swa_hsa.hsa" -o "$tmp/paper.st" --seed 1
"$build/bench_prefill" "$dir/examples/paper_swa_hsa.hsa" "$tmp/paper.st" --tokens 4096 \
  --ref-tokens 256 --threads "$threads"
echo

echo "### JIT: every kernel of examples/paper_swa_hsa.hsa"
echo
export HSAC_CACHE_DIR="$tmp/cache"
for i in 1 2; do
  "$hsac" run "$dir/examples/paper_swa_hsa.hsa" --weights "$tmp/paper.st" --prompt x \
    --max-new 1 -v 2>&1 >/dev/null | sed -n 's/^hsac: backend cpu: /- /p'
done
echo

if [ -x "$venv/bin/python" ] || /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  py=/usr/bin/python3
  echo "### The PyTorch twin, $threads threads ($($py -c 'import torch; print("torch", torch.__version__)'))"
  echo
  twin() { "$py" "$dir/bench/torch_twin_prefill.py" --threads "$threads" --hsac "$hsac" "$@" || true; }
  twin "$pk" "$pkw" --N 4096 16384
  "$hsac" init-weights "$dir/bench/models/paper_small.hsa" -o "$tmp/small.st" --seed 1
  twin "$dir/bench/models/paper_small.hsa" "$tmp/small.st" --N 4096 16384
  twin "$dir/examples/paper_swa_hsa.hsa" "$tmp/paper.st" --N 4096
fi
