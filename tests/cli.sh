#!/bin/sh
# cli.sh HSAC SOURCE_DIR - the command line: exit codes, usage errors, and
# that docs/language.md documents every parameter the compiler knows.
set -u
hsac=$1 src=$2
pass=0 fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# expect CODE PATTERN -- ARGS...: exit code and a pattern in stdout+stderr;
# expect_t: the same under `timeout 20`, for what used to hang (exit 124)
expect_within() {
  limit=$1 code=$2 pat=$3; shift 4
  timeout "$limit" "$hsac" "$@" >"$tmp/out" 2>&1; rc=$?
  if [ "$rc" -ne "$code" ]; then
    echo "FAIL hsac $*: exit $rc, expected $code"; cat "$tmp/out"; fail=$((fail + 1))
  elif [ -n "$pat" ] && ! grep -q -- "$pat" "$tmp/out"; then
    echo "FAIL hsac $*: output lacks '$pat'"; cat "$tmp/out"; fail=$((fail + 1))
  else
    pass=$((pass + 1))
  fi
}
expect() { expect_within 600 "$@"; }
expect_t() { expect_within 20 "$@"; }
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

# init-weights and run
tiny="$src/examples/tiny/paper_swa_hsa.hsa"
expect 2 "no output file"         -- init-weights "$tiny"
expect 2 "--seed expects"         -- init-weights "$tiny" -o "$tmp/w.st" --seed x
expect 0 ""                       -- init-weights "$tiny" -o "$tmp/w.st" --seed 3
"$hsac" init-weights "$tiny" -o "$tmp/w2.st" --seed 3 && cmp -s "$tmp/w.st" "$tmp/w2.st" &&
  pass=$((pass + 1)) || { echo "FAIL init-weights is not deterministic"; fail=$((fail + 1)); }
ls "$tmp" | grep -q tmp- && { echo "FAIL init-weights left a temporary file"; fail=$((fail + 1)); }
expect 1 "cannot"                 -- init-weights "$tiny" -o /nonexistent-dir/w.st
expect 2 "no weights"             -- run "$tiny" --prompt hi
expect 2 "exactly one of --prompt" -- run "$tiny" --weights "$tmp/w.st"
expect 2 "--temperature expects"  -- run "$tiny" --weights "$tmp/w.st" --prompt hi --temperature -1
expect 2 "--cache expects"        -- run "$tiny" --weights "$tmp/w.st" --prompt hi --cache f8
expect 1 "the prompt is empty"    -- run "$tiny" --weights "$tmp/w.st" --prompt ""
expect 1 "cannot read '$tmp/none'" -- run "$tiny" --weights "$tmp/w.st" --prompt-file "$tmp/none"
expect 1 "is missing"             -- run "$src/examples/tiny/dense.hsa" --weights "$tmp/w.st" --prompt hi
expect 1 "cannot open"            -- run "$tiny" --weights "$tmp/none.st" --prompt hi
# greedy generation is deterministic; segment size does not change it
"$hsac" run "$tiny" --weights "$tmp/w.st" --prompt "hello, world" --max-new 12 >"$tmp/a" 2>&1
"$hsac" run "$tiny" --weights "$tmp/w.st" --prompt "hello, world" --max-new 12 --segment 3 >"$tmp/b" 2>&1
if [ -s "$tmp/a" ] && cmp -s "$tmp/a" "$tmp/b"; then pass=$((pass + 1)); else
  echo "FAIL run: output differs between segment sizes"; fail=$((fail + 1)); fi
# sampling with a seed is reproducible
"$hsac" run "$tiny" --weights "$tmp/w.st" --prompt "abc" --max-new 20 --temperature 1 --top-p 0.9 --seed 5 >"$tmp/c" 2>&1
"$hsac" run "$tiny" --weights "$tmp/w.st" --prompt "abc" --max-new 20 --temperature 1 --top-p 0.9 --seed 5 >"$tmp/d" 2>&1
if cmp -s "$tmp/c" "$tmp/d"; then pass=$((pass + 1)); else
  echo "FAIL run: seeded sampling is not reproducible"; fail=$((fail + 1)); fi
# a long prompt shows the progress bar on stderr
head -c 3000 /dev/zero | tr '\0' 'a' >"$tmp/long.txt"
"$hsac" run "$tiny" --weights "$tmp/w.st" --prompt-file "$tmp/long.txt" --max-new 1 2>"$tmp/err" >/dev/null
if grep -q "prefill \[.*3000/3000 tokens" "$tmp/err"; then pass=$((pass + 1)); else
  echo "FAIL run: no progress bar for a long prompt"; cat "$tmp/err"; fail=$((fail + 1)); fi

# gen-task: deterministic items of the requested length
"$hsac" gen-task --task passkey --length 400 --seed 3 --format prompt >"$tmp/p1"
"$hsac" gen-task --task passkey --length 400 --seed 3 --format prompt >"$tmp/p2"
if cmp -s "$tmp/p1" "$tmp/p2" && [ "$(wc -c <"$tmp/p1")" -eq 400 ]; then pass=$((pass + 1)); else
  echo "FAIL gen-task: not deterministic or not 400 bytes"; fail=$((fail + 1)); fi
expect 0 '"task"'                 -- gen-task --task multiquery --needle uuid --length 2K --items 2 --format jsonl
expect 2 "--task expects passkey" -- gen-task --task frob --length 400
expect 2 ""                       -- gen-task --task passkey --length 10

# --- files that are not regular (docs/security.md, "Files") -----------------
# Inputs: a FIFO with no writer is refused at once, not waited on (each
# command runs under expect_t's timeout: exit 124 is the hang caught here).
mkfifo "$tmp/fifo"
expect_t 1 "cannot read '$tmp/fifo': not a regular file" -- check "$tmp/fifo"
expect_t 1 "'$tmp/fifo' is not a regular file" -- run "$tiny" --weights "$tmp/fifo" --prompt hi
expect_t 1 "cannot read '$tmp/fifo': not a regular file" -- run "$tiny" --weights "$tmp/w.st" --prompt-file "$tmp/fifo"
mkdir "$tmp/inc"
mkfifo "$tmp/inc/part.hsa"
printf 'include "part.hsa"\n' >"$tmp/inc/main.hsa"
expect_t 1 'cannot include "part.hsa": not a regular file' -- check "$tmp/inc/main.hsa"
# Outputs: what is at the path must be absent or a regular file; a FIFO
# or a symbolic link there is refused and left as it was.
expect_t 1 "cannot write '$tmp/fifo': not a regular file" -- init-weights "$tiny" -o "$tmp/fifo"
expect_t 1 "cannot write '$tmp/fifo': not a regular file" -- export --json "$tiny" -o "$tmp/fifo"
[ -p "$tmp/fifo" ] && pass=$((pass + 1)) || { echo "FAIL the FIFO was replaced"; fail=$((fail + 1)); }
echo keep >"$tmp/target"
ln -s "$tmp/target" "$tmp/link"
expect_t 1 "cannot write '$tmp/link': not a regular file" -- init-weights "$tiny" -o "$tmp/link"
[ -L "$tmp/link" ] && [ "$(cat "$tmp/target")" = keep ] && pass=$((pass + 1)) ||
  { echo "FAIL the symlink or its target was replaced"; fail=$((fail + 1)); }
# Replacing a regular file keeps its permission bits; temporaries a killed
# writer left for the same output are removed, a running writer's are not.
cp "$tmp/w.st" "$tmp/mode.st" && chmod 600 "$tmp/mode.st"
: >"$tmp/mode.st.tmp-99999999-1-0"
: >"$tmp/mode.st.tmp-$$-1-0"
expect 0 "" -- init-weights "$tiny" -o "$tmp/mode.st" --seed 3
[ "$(stat -c %a "$tmp/mode.st")" = 600 ] && pass=$((pass + 1)) ||
  { echo "FAIL -o changed the permissions to $(stat -c %a "$tmp/mode.st")"; fail=$((fail + 1)); }
[ ! -e "$tmp/mode.st.tmp-99999999-1-0" ] && [ -e "$tmp/mode.st.tmp-$$-1-0" ] &&
  pass=$((pass + 1)) || { echo "FAIL stale temporaries: $(ls "$tmp" | grep mode.st.tmp)"; fail=$((fail + 1)); }

# --- standard output must arrive (a full disk, /dev/full, a closed fd) ----
expect 2 "'version' takes no arguments" -- version --bogus
expect 2 "'passes' takes no arguments" -- passes x
expect 2 "'help' takes no arguments" -- help x
for args in "version" "params" "passes" "help" "export --json $tiny" "ir $tiny" \
            "check -v $tiny" "plan $tiny --context 4096" \
            "run $tiny --weights $tmp/w.st --prompt hi --max-new 2"; do
  # shellcheck disable=SC2086
  "$hsac" $args >/dev/full 2>"$tmp/err"; rc=$?
  if [ "$rc" -ne 1 ] || ! grep -q "cannot write" "$tmp/err"; then
    echo "FAIL hsac $args >/dev/full: exit $rc"; cat "$tmp/err"; fail=$((fail + 1))
  else pass=$((pass + 1)); fi
  # shellcheck disable=SC2086
  "$hsac" $args >&- 2>"$tmp/err"; rc=$?
  if [ "$rc" -ne 1 ]; then
    echo "FAIL hsac $args with stdout closed: exit $rc"; cat "$tmp/err"; fail=$((fail + 1))
  else pass=$((pass + 1)); fi
done

# --- plan at the limits: the same limits as run, sizes that never wrap ----
expect 2 "at most 2147483647" -- plan "$tiny" --context 1T
expect 2 "at most 16M" -- plan "$tiny" --context 4096 --segment 1G
sed 's/^const D = 64 .*/const D = 262144/; s/head_dim = 16/head_dim = 4096/; s/hidden = 3 \* D/hidden = D/' \
  "$tiny" >"$tmp/wide.hsa"
expect 0 "plan for model" -- plan "$tmp/wide.hsa" --context 2047M --segment 16M
grep -q "runtime error" "$tmp/out" && { echo "FAIL plan overflowed"; fail=$((fail + 1)); }

# --- many constants and blocks: looked up by hash, not by scanning a list
# (100k constants took over 60 s, 100k blocks about as long); the timeout is a hang
# guard, the timing itself is in the closing notes (about 0.2 s here)
awk 'BEGIN { for (i = 0; i < 100000; i++) printf "const c%d = %d\n", i, i;
             print "model m {\n  vocab = 1000\n  width = c64\n  heads = 4\n  stack s { attn }\n}" }' \
  >"$tmp/consts.hsa"
expect_t 0 "m: ok:" -- check "$tmp/consts.hsa"
awk 'BEGIN { for (i = 0; i < 100000; i++) printf "block b%d { attn }\n", i;
             print "model m {\n  vocab = 1000\n  width = 64\n  heads = 4\n  stack s { b99999 }\n}" }' \
  >"$tmp/blocks.hsa"
expect_t 0 "m: ok:" -- check "$tmp/blocks.hsa"

# --- non-finite results are errors, not answers: finite but huge weights
# (3e38 in every norm gain) make every logit NaN
python3 - "$tmp/w.st" "$tmp/huge.st" <<'PY'
import json, struct, sys
b = bytearray(open(sys.argv[1], 'rb').read())
n = struct.unpack('<Q', b[:8])[0]
for name, t in json.loads(b[8:8 + n]).items():
    if name != '__metadata__' and 'norm' in name:
        s, e = t['data_offsets']
        for o in range(8 + n + s, 8 + n + e, 4):
            b[o:o + 4] = struct.pack('<f', 3e38)
open(sys.argv[2], 'wb').write(b)
PY
for be in ref cpu; do
  expect 1 "the logits at position 4 are not finite (NaN at index 0)" -- run "$tiny" --weights "$tmp/huge.st" --prompt hello --backend $be
  expect 1 "(lower.0 swa) produced infinity at row 0" -- run "$tiny" --weights "$tmp/huge.st" --prompt hello --backend $be --check-numerics
  expect 1 "the logits at position 0 are not finite" -- logits "$tiny" --weights "$tmp/huge.st" --prompt hello -o "$tmp/nan.st" --backend $be
done
[ ! -e "$tmp/nan.st" ] && pass=$((pass + 1)) || { echo "FAIL logits wrote NaN logits"; fail=$((fail + 1)); }

# --- prompts beyond reason: refused before they are read in full ---------
expect 1 "more than --max-context 4" -- run "$tiny" --weights "$tmp/w.st" --prompt hello --max-context 4
truncate -s 40M "$tmp/big.txt"
expect_t 1 "holds more than 33554432 tokens" -- run "$tiny" --weights "$tmp/w.st" --prompt-file "$tmp/big.txt"
printf 'hello' >"$tmp/small.txt"
expect 0 "" -- run "$tiny" --weights "$tmp/w.st" --prompt-file "$tmp/small.txt" --max-context 5 --max-new 1
expect 1 "holds more than 4 tokens" -- run "$tiny" --weights "$tmp/w.st" --prompt-file "$tmp/small.txt" --max-context 4
expect 2 "--max-context expects" -- run "$tiny" --weights "$tmp/w.st" --prompt hi --max-context 4G

# --- -I: folders searched for includes after the including file's own ---
mkdir -p "$tmp/lib" "$tmp/proj"
printf 'block sb { attn }\n' >"$tmp/lib/shared.hsa"
printf 'include "shared.hsa"\nmodel m {\n  vocab = 300\n  width = 32\n  heads = 4\n  stack s { sb }\n}\n' \
  >"$tmp/proj/m.hsa"
expect 1 'cannot include "shared.hsa": No such file' -- check "$tmp/proj/m.hsa"
expect 0 "m: ok: .*, 1 layers" -- check -I "$tmp/lib" "$tmp/proj/m.hsa"
expect 0 "m: ok: .*, 1 layers" -- check "-I$tmp/lib" "$tmp/proj/m.hsa"
expect 0 "plan for model m" -- plan -I "$tmp/lib" "$tmp/proj/m.hsa" --context 1024
expect 0 '"name"' -- export --json -I "$tmp/lib" "$tmp/proj/m.hsa"
expect 0 "" -- init-weights -I "$tmp/lib" "$tmp/proj/m.hsa" -o "$tmp/m.st"
expect 0 "" -- run -I "$tmp/lib" "$tmp/proj/m.hsa" --weights "$tmp/m.st" --prompt hi --max-new 2
expect 0 "" -- logits -I "$tmp/lib" "$tmp/proj/m.hsa" --weights "$tmp/m.st" --prompt hi -o "$tmp/ml.st"
# the including file's folder comes first
printf 'block sb { attn\n attn }\n' >"$tmp/proj/shared.hsa"
expect 0 "m: ok: .*, 2 layers" -- check -I "$tmp/lib" "$tmp/proj/m.hsa"
rm "$tmp/proj/shared.hsa"
# a -I folder confines what is found in it, as the including folder does
ln -s /etc/passwd "$tmp/lib/out.hsa"
printf 'include "out.hsa"\n' >"$tmp/proj/o.hsa"
expect 1 'include "out.hsa" leaves the including file' -- check -I "$tmp/lib" "$tmp/proj/o.hsa"
expect 2 "-I expects a folder" -- check "$tmp/proj/m.hsa" -I

# Every parameter `hsac params` lists is documented in docs/language.md.
"$hsac" params | sed -n 's/^| `\([a-z_]*\).*/\1/p' | sort -u >"$tmp/names"
missing=0
while read -r name; do
  grep -q "\`$name\`" "$src/docs/language.md" || { echo "docs/language.md lacks \`$name\`"; missing=1; }
done <"$tmp/names"
if [ "$missing" -eq 0 ] && [ -s "$tmp/names" ]; then pass=$((pass + 1)); else fail=$((fail + 1)); fi
# Every op of the op table is documented in docs/ir.md.
missing=0
for op in $(sed -n 's/^X([A-Z_]*, *\([a-z_]*\),.*/\1/p' "$src/ir/ops.def"); do
  grep -q "| \`$op\` |" "$src/docs/ir.md" || { echo "docs/ir.md lacks op \`$op\`"; missing=1; }
done
if [ "$missing" -eq 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); fi
echo "cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
