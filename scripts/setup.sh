#!/bin/sh
# setup.sh - the README's first command: install the dependencies, build
# hsac, and run its main job on the shipped example (the paper's model).
set -eu
cd "$(dirname "$0")/.."
sh scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
echo "== hsac check examples/paper_swa_hsa.hsa"
./build/hsac check examples/paper_swa_hsa.hsa
echo "== hsac ir examples/paper_swa_hsa.hsa (first 40 lines of the function)"
./build/hsac ir examples/paper_swa_hsa.hsa | sed -n '/^func/,$p' | head -40
echo "== hsac run (tiny paper model, deterministic random weights)"
./build/hsac init-weights examples/tiny/paper_swa_hsa.hsa -o build/tiny_paper.safetensors --seed 1
./build/hsac run examples/tiny/paper_swa_hsa.hsa --weights build/tiny_paper.safetensors \
  --prompt "The passkey is 1234." --max-new 16 | od -An -c | head -2
