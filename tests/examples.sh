#!/bin/sh
# examples.sh HSAC EXAMPLES_DIR - every shipped example compiles cleanly.
#
# For each examples/*.hsa and examples/tiny/*.hsa: `hsac check` exits 0 with
# nothing on stderr (no warnings), `hsac ir` exits 0, and the fully resolved
# model printed by `hsac check -v` (its stdout as it is) checks again and
# compiles to the very same IR.  Every full
# example has a tiny twin with the same name.
set -u
hsac=$1 dir=$2
pass=0 fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bad() { echo "FAIL $1"; fail=$((fail + 1)); }
for f in "$dir"/*.hsa "$dir"/tiny/*.hsa; do
  if ! "$hsac" check "$f" >"$tmp/out" 2>"$tmp/err"; then
    bad "$f: hsac check failed"; cat "$tmp/err"; continue
  fi
  if [ -s "$tmp/err" ]; then bad "$f: hsac check printed diagnostics"; cat "$tmp/err"; continue; fi
  if ! "$hsac" ir "$f" >"$tmp/ir" 2>"$tmp/err"; then
    bad "$f: hsac ir failed"; cat "$tmp/err"; continue
  fi
  # stdout of check -v is a model file as it is (the summary goes to stderr)
  "$hsac" check -v "$f" >"$tmp/resolved.hsa" 2>"$tmp/err"
  if ! grep -q ": ok: " "$tmp/err"; then bad "$f: check -v printed no summary on stderr"; continue; fi
  if ! "$hsac" check "$tmp/resolved.hsa" >/dev/null 2>&1; then
    bad "$f: its resolved form does not check"; continue
  fi
  if ! "$hsac" ir "$tmp/resolved.hsa" >"$tmp/ir2" 2>"$tmp/err"; then
    bad "$f: its resolved form does not compile"; cat "$tmp/err"; continue
  fi
  if ! cmp -s "$tmp/ir" "$tmp/ir2"; then bad "$f: its resolved form gives another IR"; continue; fi
  pass=$((pass + 1))
done
for f in "$dir"/*.hsa; do
  [ -f "$dir/tiny/$(basename "$f")" ] || bad "$f has no tiny version in $dir/tiny/"
done
n=$(ls "$dir"/*.hsa | wc -l)
[ "$n" -ge 8 ] || bad "only $n examples (PAPER.md section 9 has 8 systems)"
echo "examples: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
