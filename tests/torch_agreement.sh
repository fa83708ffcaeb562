#!/bin/sh
# torch_agreement.sh HSAC SOURCE_DIR - the PyTorch twin (tools/torch/)
# computes the reference interpreter's logits.
#
# For every examples/tiny/*.hsa model, and the variants in
# tools/torch/tests/ (options the examples leave at their defaults): export
# the JSON, write random weights with `hsac init-weights`, take `hsac
# logits` on 150 fixed tokens and compare the twin's logits (fp32, weights
# read with the safetensors package): max |err| <= 1e-4.  Also: the twin
# with the reference's arithmetic (<= 1e-5), weights written by
# safetensors.torch.save_file run through hsac, and weights whose scores
# all tie (see tools/torch/agreement.py).  Prints one line per model and
# 'N passed, M failed'.
#
# Needs Debian's PyTorch (python3-torch) and PyPI's safetensors for
# /usr/bin/python3 (scripts/deps.sh installs both).  Without them this
# fails, unless HSAC_ALLOW_SKIP_TORCH=1, which makes it a skip.
set -u
hsac=$1 src=$2
. "$src/tests/torch_env.sh"
torch_require "torch agreement"
set -- "$src"/examples/tiny/*.hsa "$src"/tools/torch/tests/*.hsa
[ -f "$1" ] || { echo "no models under $src/examples/tiny"; echo "0 passed, 1 failed"; exit 1; }
PYTHONDONTWRITEBYTECODE=1 exec "$py" "$src/tools/torch/agreement.py" "$hsac" "$@"
