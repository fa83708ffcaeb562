#!/bin/sh
# cli.sh HSAC SOURCE_DIR - the command line: exit codes, usage errors, and
# that docs/language.md documents every parameter the compiler knows.
set -u
hsac=$1 src=$2
pass=0 fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# expect CODE PATTERN -- ARGS...: exit code and a pattern in stdout+stderr
expect() {
  code=$1 pat=$2; shift 3
  "$hsac" "$@" >"$tmp/out" 2>&1; rc=$?
  if [ "$rc" -ne "$code" ]; then
    echo "FAIL hsac $*: exit $rc, expected $code"; cat "$tmp/out"; fail=$((fail + 1))
  elif ! grep -q -- "$pat" "$tmp/out"; then
    echo "FAIL hsac $*: output lacks '$pat'"; cat "$tmp/out"; fail=$((fail + 1))
  else
    pass=$((pass + 1))
  fi
}
expect 2 "usage: hsac"            --
expect 2 "unknown command 'frob'" -- frob
expect 2 "no input file"          -- check
expect 2 "no input file"          -- ir
expect 2 "more than one input"    -- check a.hsa b.hsa
expect 2 "unknown option '--bogus'" -- check --bogus x.hsa
expect 2 "unknown option '-v' for ir" -- ir -v x.hsa
expect 2 "takes no arguments"     -- params extra
expect 1 "cannot read '/nonexistent/x.hsa': No such file" -- check /nonexistent/x.hsa
expect 1 "cannot read '$tmp': Is a directory" -- check "$tmp"
printf 'model t {\0}\n' >"$tmp/nul.hsa"
expect 1 "contains NUL bytes"     -- check "$tmp/nul.hsa"
: >"$tmp/empty.hsa"
expect 1 "no model is defined"    -- check "$tmp/empty.hsa"
expect 0 "^paper_swa_hsa: ok: "   -- check "$src/examples/paper_swa_hsa.hsa"
expect 0 "^model paper_swa_hsa {" -- check -v "$src/examples/paper_swa_hsa.hsa"
expect 0 "^func @paper_swa_hsa(%tokens: i32\[L\])" -- ir "$src/examples/paper_swa_hsa.hsa"
expect 0 "^LLVM 19\.1"            -- version
expect 0 "^usage: hsac"           -- help
expect 0 "| \`chunk\` |"          -- params

# Every parameter `hsac params` lists is documented in docs/language.md.
"$hsac" params | sed -n 's/^| `\([a-z_]*\).*/\1/p' | sort -u >"$tmp/names"
missing=0
while read -r name; do
  grep -q "\`$name\`" "$src/docs/language.md" || { echo "docs/language.md lacks \`$name\`"; missing=1; }
done <"$tmp/names"
if [ "$missing" -eq 0 ] && [ -s "$tmp/names" ]; then pass=$((pass + 1)); else fail=$((fail + 1)); fi
echo "cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
