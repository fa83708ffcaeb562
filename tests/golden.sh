#!/bin/sh
# golden.sh HSAC MODE DIR - golden-file tests.
#
#   MODE ir:   for each DIR/NAME.hsa, `hsac ir NAME.hsa` must exit 0 and print
#              exactly DIR/NAME.ir.
#   MODE diag: for each DIR/NAME.hsa, `hsac check NAME.hsa` must print exactly
#              DIR/NAME.err on stderr and exit 1 (exit 0 for NAME starting
#              with "warn_": warnings only).
#
# Commands run inside DIR so file names in messages are relative.  Set
# HSAC_UPDATE_GOLDEN=1 to rewrite the expected files (review the diff!).
set -u
hsac=$1 mode=$2 dir=$3
pass=0 fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$dir" || exit 2
for f in *.hsa; do
  name=${f%.hsa}
  case $mode in
    ir)   expected=$name.ir;  want=0
          "$hsac" ir "$f" >"$tmp/out" 2>"$tmp/err"; rc=$? ;;
    diag) expected=$name.err; want=1
          case $name in warn_*) want=0 ;; esac
          "$hsac" check "$f" >/dev/null 2>"$tmp/out"; rc=$? ;;
    *) echo "golden.sh: unknown mode $mode" >&2; exit 2 ;;
  esac
  if [ "${HSAC_UPDATE_GOLDEN:-0}" = 1 ]; then
    if [ -n "${CI:-}" ]; then
      echo "golden.sh: HSAC_UPDATE_GOLDEN=1 under CI would rewrite what is checked" >&2
      exit 2
    fi
    cp "$tmp/out" "$expected"
  fi
  if [ "$rc" -ne "$want" ]; then
    echo "FAIL $dir/$f: exit $rc, expected $want"
    [ "$mode" = ir ] && cat "$tmp/err"
    fail=$((fail + 1))
  elif [ ! -f "$expected" ]; then
    echo "FAIL $dir/$f: no expected output $expected"
    fail=$((fail + 1))
  elif ! diff -u "$expected" "$tmp/out" >"$tmp/diff"; then
    echo "FAIL $dir/$f: output differs from $expected"
    head -40 "$tmp/diff"
    fail=$((fail + 1))
  else
    pass=$((pass + 1))
  fi
done
echo "golden $mode: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
