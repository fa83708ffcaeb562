#!/bin/sh
# deps.sh - installs hsac's build dependencies on Debian 12 (bookworm).
# Runs apt-get only when a package is missing; needs root (or sudo).
# python3-torch, python3-pip and PyPI's safetensors (for /usr/bin/python3)
# serve the PyTorch twin's tests (tools/torch/); libopenblas0-pthread (fast
# BLAS for torch), python3-tqdm and python3-matplotlib (train.py's progress
# bar and loss plot) serve training with it (tools/torch/TRAINING.md);
# zlib1g-dev, fortunes-min, fortunes, dict-devil and dict-jargon serve gen-task's
# prose filler styles (docs/tasks.md).
set -eu
pkgs="build-essential cmake pkg-config flex bison libcunit1-dev libcjson-dev zlib1g-dev
fortunes-min fortunes dict-devil dict-jargon
llvm-19-dev libmlir-19-dev mlir-19-tools clang-14 libclang-rt-14-dev
python3-torch python3-pip libopenblas0-pthread python3-tqdm python3-matplotlib"
sudo=""
[ "$(id -u)" -ne 0 ] && sudo=sudo
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "deps.sh: installing:$missing"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends $missing
fi
if ! /usr/bin/python3 -c 'import safetensors' 2>/dev/null; then
  echo "deps.sh: installing safetensors for /usr/bin/python3"
  $sudo /usr/bin/python3 -m pip install -q --break-system-packages safetensors
fi
