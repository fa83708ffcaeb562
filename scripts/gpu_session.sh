#!/bin/sh
# gpu_session.sh - everything a session with a lent GPU runs, in one go
# (docs/cuda.md, "A session with a GPU").  Run on the device machine from
# the repository root, with the binaries of scripts/gpu_prepare.sh carried
# along; every result goes under $OUT:
#
#   env.txt                the GPU (nvidia-smi), the binaries' libraries,
#                          hsac's and PyTorch's versions
#   test_gpu.txt           test_unit gpu: every example model's logits on
#                          the GPU against the reference, decode == prefill,
#                          the tensor cores, batched decode, hsac tune
#   bench_gpu_kernels.txt  the roofline, HSA's sparse attention at 16K-1M,
#                          the decode landmark scan (bench/gpu_kernels.c)
#   torch_attention.txt    SDPA and FlexAttention on the same selection,
#                          FlexAttention with a sliding window of 512
#   tune.txt               hsac tune on the paper's 215M model (tensor
#                          cores, 16K tokens), then the tuning database
#                          it wrote
#   models.txt             whole models through --backend cuda -v
#                          --profile: the trained passkey model on an 8K
#                          item, the 215M paper model (random weights) on
#                          16K tokens in f32 and with the tensor cores, the
#                          same at 4K, and the PyTorch twin of that model
#                          on the GPU (f32, bf16) at 4K and 16K tokens
#   ncu.txt                Nsight Compute on one launch each of the sparse
#                          attention (bf16 pages, 64K), the windowed
#                          attention and the decode scan's first part
#                          (1M): speed of light, occupancy, memory,
#                          warp stalls (where ncu can read the counters)
#   summary.txt            each step's exit status and seconds
#
# Steps run most important first, each under a time limit, so a session
# cut short still returns what it measured.  The device tool brings back
# at most 8 files: keep it at that.
set -u
out=${OUT:?set OUT to the folder for the results}
b=${HSAC_GPU_BUILD:-build-nollvm}
root=$(pwd)
export LD_LIBRARY_PATH="$root/$b/gpu-libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export HSAC_SOURCE_DIR="$root" HSAC_CACHE_DIR=/tmp/hsac-gpu-cache HSAC_TUNING_DB=/tmp/hsac-tuning.tsv
py=${HSAC_GPU_PYTHON:-python3}
# NVRTC: hsac looks on the loader's path and in /usr/local/cuda/lib64; where
# it is elsewhere (a pip wheel's, say), point HSAC_NVRTC at it
if [ -z "${HSAC_NVRTC:-}" ] && ! ldconfig -p | grep -q 'libnvrtc\.so\.1[23] ' &&
   [ ! -e /usr/local/cuda/lib64/libnvrtc.so.13 ] && [ ! -e /usr/local/cuda/lib64/libnvrtc.so.12 ]; then
  nv=$(find / -xdev -name 'libnvrtc.so.1[23]' 2>/dev/null | head -1)
  [ -n "$nv" ] && export HSAC_NVRTC="$nv"
fi

step() {
  name=$1 limit=$2
  shift 2
  echo "== $name (at most $limit s)"
  start=$(date +%s)
  timeout "$limit" "$@" >"$out/$name.txt" 2>&1
  rc=$?
  echo "$name: exit $rc in $(($(date +%s) - start)) s" | tee -a "$out/summary.txt"
  tail -n 4 "$out/$name.txt"
}

{
  nvidia-smi
  ldd "$b/hsac"
  "$b/hsac" version
  "$py" -c 'import torch; print("torch", torch.__version__, torch.version.cuda)'
  grep -m1 'model name' /proc/cpuinfo
  echo "HSAC_NVRTC=${HSAC_NVRTC:-} (unset: the loader's path, /usr/local/cuda/lib64)"
  ls /usr/local/cuda/lib64/libnvrtc* 2>&1
} >"$out/env.txt" 2>&1
# the benchmark first: the shortest step, and it checks the hot kernels
# against float64 on the way
step bench_gpu_kernels "${HSAC_T_BENCH:-100}" "$b/bench_gpu_kernels"
# the counters of one launch each of the sparse attention (bf16 pages) and
# the windowed attention on the tensor cores, in a benchmark run at 64K
# (--clock-control none leaves the clocks alone)
step ncu "${HSAC_T_NCU:-130}" sh -c '
  for k in bench_hsa_tc16:64K:64K bench_swa_tc:64K:64K bench_scan_s:16K:1M; do
    name=${k%%:*} rest=${k#*:}
    echo "== $name (--lengths ${rest%%:*} --contexts ${rest#*:})"
    ncu --clock-control none --launch-count 1 --kernel-name "$name" --section SpeedOfLight \
      --section Occupancy --section MemoryWorkloadAnalysis --section WarpStateStats \
      --section LaunchStats "$1/bench_gpu_kernels" --lengths "${rest%%:*}" --contexts "${rest#*:}" 2>&1 |
      grep -v "^| hsac\|^|---\|^| implementation\|^| context\|^| |\|^| [0-9]"
  done' sh "$b"
"$b/hsac" gen-task --task passkey --length 8K --seed 7 --format prompt >/tmp/hsac-passkey.txt 2>/dev/null
"$b/hsac" gen-task --task passkey --length 16K --seed 8 --format prompt >/tmp/hsac-16k.txt 2>/dev/null
step models "${HSAC_T_MODELS:-200}" sh -c '
  b=$1
  echo "== passkey_hsa (trained), an 8K-token item, f32 arithmetic"
  "$b/hsac" run examples/passkey_hsa.hsa --weights examples/trained/passkey_hsa/weights.safetensors \
    --prompt-file /tmp/hsac-passkey.txt --max-new 8 --backend cuda -v --profile 2>&1 | head -30
  "$b/hsac" init-weights examples/paper_swa_hsa.hsa -o /tmp/hsac-paper.safetensors -q || exit 1
  for math in f32 bf16; do
    echo "== paper_swa_hsa (215M, random weights), 16K tokens, --gpu-math $math"
    "$b/hsac" run examples/paper_swa_hsa.hsa --weights /tmp/hsac-paper.safetensors \
      --prompt-file /tmp/hsac-16k.txt --max-new 16 --backend cuda --gpu-math $math -v --profile \
      2>&1 | grep -v "prefill [0-9]*%" | head -30
  done
  echo "== the same model and weights at 16K in segments of 512 and at 4K, then the PyTorch twin on the GPU at 4K and 16K"
  "$b/hsac" gen-task --task passkey --length 4K --seed 9 --format prompt >/tmp/hsac-4k.txt 2>/dev/null
  for math in f32 bf16; do
    "$b/hsac" run examples/paper_swa_hsa.hsa --weights /tmp/hsac-paper.safetensors \
      --prompt-file /tmp/hsac-16k.txt --max-new 4 --backend cuda --gpu-math $math --segment 512 -v 2>&1 |
      grep "hsac: prompt" | sed "s/^/hsac 16K $math, segments of 512: /"
    "$b/hsac" run examples/paper_swa_hsa.hsa --weights /tmp/hsac-paper.safetensors \
      --prompt-file /tmp/hsac-4k.txt --max-new 4 --backend cuda --gpu-math $math -v 2>&1 |
      grep "hsac: prompt" | sed "s/^/hsac 4K $math: /"
  done
  for dt in f32 bf16; do
    PYTHONUNBUFFERED=1 "$2" bench/torch_twin_prefill.py examples/paper_swa_hsa.hsa \
      /tmp/hsac-paper.safetensors --hsac "$b/hsac" --device cuda --dtype $dt --N 4096 16384 2>&1 | tail -8
  done' sh "$b" "$py"
step test_gpu "${HSAC_T_TEST:-170}" "$b/tests/test_unit" gpu
step torch_attention "${HSAC_T_TORCH:-200}" env PYTHONUNBUFFERED=1 "$py" bench/torch_gpu_attention.py \
  --impl sdpa flex swa
step tune "${HSAC_T_TUNE:-60}" "$b/hsac" tune examples/paper_swa_hsa.hsa --gpu-math bf16 \
  --length 16384 --decode 16 --reps 2
{ echo "== the tuning database"; cat /tmp/hsac-tuning.tsv; } >>"$out/tune.txt" 2>&1
exit 0
