#!/bin/sh
# torch_import.sh HSAC SOURCE_DIR - checks `hsac import`: checkpoints in the
# paper authors' layout (random weights under their names) are imported and
# their logits match a float64 forward pass in the authors' form and the
# twin; broken checkpoints are refused (tools/torch/tests/test_import.py).
# Needs what torch_agreement.sh needs; HSAC_ALLOW_SKIP_TORCH=1 makes their
# absence a skip.
set -u
hsac=$1 src=$2
. "$src/tests/torch_env.sh"
torch_require "torch import"
PYTHONDONTWRITEBYTECODE=1 exec "$py" "$src/tools/torch/tests/test_import.py" "$hsac" "$src"
