#!/bin/sh
# setup.sh - the README's first command: install the dependencies, build
# hsac, check the paper's model and print its IR, then run the shipped trained
# model (examples/trained/passkey_hsa) on a passkey prompt.
set -eu
cd "$(dirname "$0")/.."
sh scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
echo "== hsac check examples/paper_swa_hsa.hsa"
./build/hsac check examples/paper_swa_hsa.hsa
echo "== hsac ir examples/paper_swa_hsa.hsa (first 40 lines of the function)"
./build/hsac ir examples/paper_swa_hsa.hsa | sed -n '/^func/,$p' | head -40
echo "== hsac run: the shipped trained model (examples/trained/passkey_hsa) on a passkey prompt"
./build/hsac gen-task --task passkey --length 512 --seed 7 --format prompt >build/passkey_prompt.txt
echo "prompt: 512 bytes, build/passkey_prompt.txt; its needle and its end:"
grep -o 'The passkey is [0-9]*\. Remember it\.' build/passkey_prompt.txt
tail -c 60 build/passkey_prompt.txt; echo
printf 'answer (greedy): '
./build/hsac run examples/passkey_hsa.hsa --weights examples/trained/passkey_hsa/weights.safetensors \
  --prompt-file build/passkey_prompt.txt --max-new 7 --temperature 0
printf 'expected:        '
./build/hsac gen-task --task passkey --length 512 --seed 7 --format text | tail -n 1
