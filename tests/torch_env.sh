# torch_env.sh - sourced by the torch tests: torch_require NAME checks that
# /usr/bin/python3 can import torch and safetensors (scripts/deps.sh
# installs both), and otherwise fails, or skips with HSAC_ALLOW_SKIP_TORCH=1.
# Sets py.
py=/usr/bin/python3
torch_skip() {   # NAME REASON
  if [ "${HSAC_ALLOW_SKIP_TORCH:-0}" = 1 ]; then
    echo "$1: SKIPPED ($2)"
    exit 0
  fi
  echo "$1: FAILED: $2 (scripts/deps.sh installs it; HSAC_ALLOW_SKIP_TORCH=1 skips)"
  echo "0 passed, 1 failed"
  exit 1
}
torch_require() {   # NAME
  [ -x "$py" ] || torch_skip "$1" "no $py"
  "$py" -c 'import torch' 2>/dev/null || torch_skip "$1" "$py cannot import torch"
  "$py" -c 'import safetensors.torch' 2>/dev/null || torch_skip "$1" "$py cannot import safetensors"
}
