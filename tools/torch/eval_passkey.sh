#!/bin/sh
# eval_passkey.sh - passkey accuracy of a model with hsac alone (no Python).
#
#   tools/torch/eval_passkey.sh [-n ITEMS] [-s SEED] [-l LENGTH] [-k MAXNEW] [-v] \
#       HSAC MODEL.hsa WEIGHTS.safetensors
#
# For seeds SEED .. SEED+ITEMS-1 (default 0..199; training uses seeds from
# 1000000 on, see train.py --data-seed), `hsac gen-task --task passkey
# --length LENGTH --seed S` (default 512 bytes = tokens) gives a prompt and
# its answer; `hsac run MODEL --weights W --prompt-file P --max-new MAXNEW
# --temperature 0` continues it greedily, and the item counts as correct when
# the first strlen(answer) bytes of the continuation are the answer (exact
# match, docs/tasks.md).  Prints one line per item with -v, and at the end
#   passkey LENGTH: C/N correct (ACC%)
# Exit status 0 when it ran (whatever the accuracy), 2 on a usage error.
set -u
n=200 seed=0 len=512 maxnew=8 verbose=0
while getopts n:s:l:k:v o; do
  case $o in
    n) n=$OPTARG ;; s) seed=$OPTARG ;; l) len=$OPTARG ;; k) maxnew=$OPTARG ;;
    v) verbose=1 ;; *) echo "usage: $0 [-n N] [-s SEED] [-l LEN] [-k MAXNEW] [-v] HSAC MODEL WEIGHTS" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[ $# -eq 3 ] || { echo "usage: $0 [-n N] [-s SEED] [-l LEN] [-k MAXNEW] [-v] HSAC MODEL WEIGHTS" >&2; exit 2; }
hsac=$1 model=$2 weights=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ok=0 i=0
while [ "$i" -lt "$n" ]; do
  s=$((seed + i))
  "$hsac" gen-task --task passkey --length "$len" --seed "$s" --format prompt >"$tmp/p" || exit 1
  ans=$("$hsac" gen-task --task passkey --length "$len" --seed "$s" --format text | tail -n 1)
  "$hsac" run "$model" --weights "$weights" --prompt-file "$tmp/p" --max-new "$maxnew" \
      --temperature 0 >"$tmp/o" 2>"$tmp/e" || { cat "$tmp/e" >&2; exit 1; }
  got=$(head -c ${#ans} "$tmp/o")
  if [ "$got" = "$ans" ]; then ok=$((ok + 1)); r=ok; else r=WRONG; fi
  [ "$verbose" -eq 1 ] && printf 'seed %d: answer %s got %s %s\n' "$s" "$ans" "$(head -c "$maxnew" "$tmp/o" | tr -c '[:print:]' '?')" "$r"
  i=$((i + 1))
done
awk -v c="$ok" -v n="$n" -v l="$len" 'BEGIN { printf "passkey %s: %d/%d correct (%.1f%%)\n", l, c, n, 100 * c / n }'
