#!/bin/sh
# torch_setup.sh - creates (idempotently) a virtual environment with a recent
# PyTorch 2.x, numpy and safetensors from PyPI, for the PyTorch baselines of
# bench/ (torch_sparse_attention.py: eager, FlexAttention, SDPA; and
# torch_twin_prefill.py under a newer torch).
#
# BENCHMARK-ONLY dependency.  Nothing of the build or of the tests uses it:
# the twin's tests (tools/torch/tests) run on Debian's /usr/bin/python3 with
# python3-torch 1.13 (scripts/deps.sh), which lacks FlexAttention.  This venv
# is kept apart from it and outside the repository.
#
#   sh bench/torch_setup.sh            # venv at $HSAC_TORCH_VENV
#   "$HSAC_TORCH_VENV/bin/python" bench/torch_sparse_attention.py --L 4096 --lq 256
#
# Environment:
#   HSAC_TORCH_VENV   where the venv goes (default $HOME/.cache/hsac-bench-venv)
#   HSAC_TORCH_PYTHON the interpreter that creates it (default /usr/bin/python3
#                     when present, else python3); needs the venv module
#                     (Debian: python3-venv)
#   HSAC_TORCH_SPEC   the torch requirement (default 'torch>=2.5'; FlexAttention
#                     on CPU needs 2.6 or newer, through torch.compile)
#
# Size: PyPI's default torch wheel for Linux x86-64 is the CUDA build; pip
# also brings the nvidia-* runtime wheels it depends on (several GiB on disk),
# though only the CPU is used.  PyPI is the only index this setup assumes.
# torch.compile (FlexAttention on CPU) also needs a C++ compiler (g++) and
# Python's headers (Debian: build-essential, python3-dev).
set -eu
venv="${HSAC_TORCH_VENV:-$HOME/.cache/hsac-bench-venv}"
spec="${HSAC_TORCH_SPEC:-torch>=2.5}"
if [ -n "${HSAC_TORCH_PYTHON:-}" ]; then
  py="$HSAC_TORCH_PYTHON"
elif [ -x /usr/bin/python3 ]; then
  py=/usr/bin/python3
else
  py=python3
fi

check='import torch, numpy, safetensors
from torch.nn.attention.flex_attention import flex_attention, create_block_mask
print("torch", torch.__version__)'

if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "$check" 2>/dev/null; then
  echo "torch_setup.sh: $venv is ready"
  exit 0
fi

if [ ! -x "$venv/bin/python" ]; then
  echo "torch_setup.sh: creating $venv with $py"
  mkdir -p "$(dirname "$venv")"
  "$py" -m venv "$venv"
fi
echo "torch_setup.sh: installing $spec numpy safetensors into $venv (large download)"
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q "$spec" numpy safetensors
"$venv/bin/python" -c "$check"
echo "torch_setup.sh: $venv is ready"
