#!/bin/sh
# gpu_prepare.sh - builds what scripts/gpu_session.sh runs on a lent GPU
# machine, which has CMake, nvcc, NVRTC and PyTorch but no LLVM, flex,
# bison, cJSON or CUnit (docs/cuda.md, "A session with a GPU"): hsac,
# test_unit and bench_gpu_kernels without LLVM (build-nollvm), and the two
# shared libraries they need that the machine lacks (build-nollvm/gpu-libs).
# NVRTC is not carried: hsac loads the machine's own.  Prints the device
# tool's call.
set -eu
b=build-nollvm
cmake -S . -B "$b" -DHSAC_WITH_LLVM=OFF -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$b" -j"$(nproc)" --target hsac test_unit bench_gpu_kernels
mkdir -p "$b/gpu-libs"
for lib in libcjson.so.1 libcunit.so.1; do
  path=$(ldd "$b/tests/test_unit" | awk -v l="$lib" '$1 == l { print $3 }')
  [ -n "$path" ] || { echo "gpu_prepare.sh: test_unit does not use $lib?" >&2; exit 1; }
  cp -L "$path" "$b/gpu-libs/$lib"
done
strip "$b/hsac" "$b/tests/test_unit" "$b/bench_gpu_kernels" "$b"/gpu-libs/*
du -ch "$b/hsac" "$b/tests/test_unit" "$b/bench_gpu_kernels" "$b/gpu-libs" | tail -1
# the C library the machine must have: the newest symbol version used
glibc=$(objdump -T "$b/hsac" "$b/tests/test_unit" "$b/bench_gpu_kernels" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)
echo "needs $glibc or newer"
echo "device tool: run  command='sh scripts/gpu_session.sh'" \
     "carry=[\"$b/hsac\", \"$b/tests/test_unit\", \"$b/bench_gpu_kernels\", \"$b/gpu-libs\"]" \
     "timeout_s=600"
