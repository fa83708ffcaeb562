#!/bin/sh
# torch_train.sh HSAC SOURCE_DIR - checks tools/torch/train.py: its
# selection loss on hand-made scores, and a 2-step run plus a resume whose
# weights hsac runs (tools/torch/tests/test_train.py).  Needs what
# torch_agreement.sh needs; HSAC_ALLOW_SKIP_TORCH=1 makes their absence a skip.
set -u
hsac=$1 src=$2
py=/usr/bin/python3
skip() {
  if [ "${HSAC_ALLOW_SKIP_TORCH:-0}" = 1 ]; then
    echo "torch train: SKIPPED ($1)"
    exit 0
  fi
  echo "torch train: FAILED: $1 (scripts/deps.sh installs it; HSAC_ALLOW_SKIP_TORCH=1 skips)"
  exit 1
}
[ -x "$py" ] || skip "no $py"
"$py" -c 'import torch' 2>/dev/null || skip "$py cannot import torch"
"$py" -c 'import safetensors.torch' 2>/dev/null || skip "$py cannot import safetensors"
PYTHONDONTWRITEBYTECODE=1 exec "$py" "$src/tools/torch/tests/test_train.py" "$hsac" "$src"
