#!/bin/sh
# torch_train.sh HSAC SOURCE_DIR - checks tools/torch/train.py: its
# selection loss on hand-made scores, and a 2-step run plus a resume whose
# weights hsac runs (tools/torch/tests/test_train.py).  Needs what
# torch_agreement.sh needs; HSAC_ALLOW_SKIP_TORCH=1 makes their absence a skip.
set -u
hsac=$1 src=$2
. "$src/tests/torch_env.sh"
torch_require "torch train"
PYTHONDONTWRITEBYTECODE=1 exec "$py" "$src/tools/torch/tests/test_train.py" "$hsac" "$src"
