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
expect 2 "--weights-dtype expects keep, f32 or bf16, not 'f64'" -- run x.hsa --weights w --prompt a --weights-dtype f64
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
# weights of another model: which model the file was written for, and how
# many tensors are missing and extra, not only the first
expect 1 "the file was written for model 'paper_swa_hsa'" -- run "$src/examples/tiny/dense.hsa" --weights "$tmp/w.st" --prompt hi
grep -q "hsac: error: .*: the weights do not match model 'dense'.*: [0-9]* missing (first: '.*' \[.*\]); [0-9]* not in the model (first: '" "$tmp/out" \
  && pass=$((pass + 1)) || { echo "FAIL weights mismatch lacks its counts"; cat "$tmp/out"; fail=$((fail + 1)); }
expect 1 "cannot open"            -- run "$tiny" --weights "$tmp/none.st" --prompt hi
# greedy generation is deterministic; segment size does not change it
"$hsac" run "$tiny" --weights "$tmp/w.st" --prompt "hello, world" --max-new 12 -q >"$tmp/a" 2>&1
"$hsac" run "$tiny" --weights "$tmp/w.st" --prompt "hello, world" --max-new 12 --segment 3 -q >"$tmp/b" 2>&1
if [ -s "$tmp/a" ] && cmp -s "$tmp/a" "$tmp/b"; then pass=$((pass + 1)); else
  echo "FAIL run: output differs between segment sizes"; fail=$((fail + 1)); fi
# sampling with a seed is reproducible
"$hsac" run "$tiny" --weights "$tmp/w.st" --prompt "abc" --max-new 20 --temperature 1 --top-p 0.9 --seed 5 >"$tmp/c" 2>/dev/null; rc1=$?
"$hsac" run "$tiny" --weights "$tmp/w.st" --prompt "abc" --max-new 20 --temperature 1 --top-p 0.9 --seed 5 >"$tmp/d" 2>/dev/null; rc2=$?
if [ "$rc1" -eq 0 ] && [ "$rc2" -eq 0 ] && [ -s "$tmp/c" ] && cmp -s "$tmp/c" "$tmp/d"; then pass=$((pass + 1)); else
  echo "FAIL run: seeded sampling is not reproducible"; fail=$((fail + 1)); fi
# progress of a long prompt: with stderr in a file, plain lines (no \r) at
# 10% steps and a summary line; on a terminal (script(1) gives one), the bar
head -c 3000 /dev/zero | tr '\0' 'a' >"$tmp/long.txt"
"$hsac" run "$tiny" --weights "$tmp/w.st" --prompt-file "$tmp/long.txt" --max-new 1 2>"$tmp/err" >/dev/null
lines=$(grep -c "^hsac: prefill [0-9]*%: .*/3000 tokens" "$tmp/err")
if ! grep -q "$(printf '\r')" "$tmp/err" && grep -q "^hsac: prefill 100%: 3000/3000 tokens" "$tmp/err" \
   && [ "$lines" -ge 2 ] && [ "$lines" -le 10 ] \
   && grep -q "^hsac: prompt 3000 tokens in .* generated 1 tokens in .*stopped at --max-new; peak memory [0-9.]* MiB" "$tmp/err"; then
  pass=$((pass + 1)); else
  echo "FAIL run: progress to a file is not plain lines and a summary"; od -c "$tmp/err" | head; fail=$((fail + 1)); fi
"$hsac" run "$tiny" --weights "$tmp/w.st" --prompt-file "$tmp/long.txt" --max-new 1 -q 2>"$tmp/err" >/dev/null
if [ ! -s "$tmp/err" ]; then pass=$((pass + 1)); else
  echo "FAIL run -q printed on stderr"; cat "$tmp/err"; fail=$((fail + 1)); fi
if command -v script >/dev/null 2>&1; then
  script -qec "'$hsac' run '$tiny' --weights '$tmp/w.st' --prompt-file '$tmp/long.txt' --max-new 1" "$tmp/tty" >/dev/null 2>&1
  if grep -q "prefill \[.*3000/3000 tokens" "$tmp/tty" && grep -q "$(printf '\r')prefill" "$tmp/tty"; then
    pass=$((pass + 1)); else echo "FAIL run: no progress bar on a terminal"; cat "$tmp/tty"; fail=$((fail + 1)); fi
else
  echo "skipped: the progress bar on a terminal (no script(1) to make one)"
fi

# gen-task: deterministic items of the requested length
"$hsac" gen-task --task passkey --length 400 --seed 3 --format prompt >"$tmp/p1"
"$hsac" gen-task --task passkey --length 400 --seed 3 --format prompt >"$tmp/p2"
if cmp -s "$tmp/p1" "$tmp/p2" && [ "$(wc -c <"$tmp/p1")" -eq 400 ]; then pass=$((pass + 1)); else
  echo "FAIL gen-task: not deterministic or not 400 bytes"; fail=$((fail + 1)); fi
expect 0 '"task"'                 -- gen-task --task multiquery --needle uuid --length 2K --items 2 --format jsonl
expect 2 "--task expects passkey" -- gen-task --task frob --length 400
# the needles' wording is reported apart from the question's (and drawn
# apart under --phrasing train); babi's facts draw theirs one by one
expect 0 '"variant":20,"needle_variant":18,' -- gen-task --task multikey --length 1K --seed 5 --phrasing train --format jsonl
expect 0 '"variant":5,"needle_variant":5,' -- gen-task --task multiquery --length 1K --seed 0 --phrasing heldout --format jsonl
if "$hsac" gen-task --task babi --length 1K --phrasing train --format jsonl | grep -q needle_variant; then
  echo "FAIL gen-task: babi has no needle_variant"; fail=$((fail + 1)); else pass=$((pass + 1)); fi
# babi's training question: one variant's question, another's answer lead
expect 0 '"variant":7,"lead_variant":23,' -- gen-task --task babi --length 1K --seed 0 --phrasing train --format jsonl
expect 0 'Which room is Sandra in now? Currently in the' -- gen-task --task babi --length 1K --seed 0 --phrasing train
if "$hsac" gen-task --task babi --length 1K --phrasing heldout --format jsonl | grep -q lead_variant; then
  echo "FAIL gen-task: held-out babi has no lead_variant"; fail=$((fail + 1)); else pass=$((pass + 1)); fi
expect 2 "is too short for passkey with seed 0: it needs at least" -- gen-task --task passkey --length 10
# vartrack reports the asked value (train.py's retrieval targets need its place)
expect 0 '"answer":"MTVIE, FKPJI, NERCH, XAVTJ, YVMNX","value":"citrine",' -- gen-task --task vartrack --length 1K --seed 3 --needle word --format jsonl
if "$hsac" gen-task --task multikey --length 1K --format jsonl | grep -q '"value"'; then
  echo "FAIL gen-task: multikey has a value"; fail=$((fail + 1)); else pass=$((pass + 1)); fi
# filler styles: the prose ones read Debian's packages (scripts/deps.sh)
for f in synthetic noise fortunes sayings devil jargon; do
  expect 0 '"filler":"'$f'"' -- gen-task --task babi --length 1K --filler $f --phrasing heldout --format jsonl
done
expect 1 "no such file: the 'devil' filler reads it from Debian's package dict-devil" -- gen-task --task passkey --length 1K --filler devil --corpus-dir "$tmp"
expect 2 "--corpus-dir applies to the prose fillers" -- gen-task --task passkey --length 1K --corpus-dir "$tmp"
expect 2 "--needle does not apply to babi" -- gen-task --task babi --length 1K --needle word
expect 2 "--filler expects synthetic, noise" -- gen-task --task babi --length 1K --filler essays

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
expect 2 "unknown option '--bogus' for version" -- version --bogus
expect 2 "'passes' takes no arguments" -- passes x
expect 2 "unknown command 'x'" -- help x
expect 0 "usage: hsac run FILE --weights W" -- help run
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
expect 2 "from 1 to 16M" -- plan "$tiny" --context 4096 --segment 1G
# plan counts linear matrices in bf16 when asked, and cannot know what keep would keep
expect 0 "(bf16 linear matrices, the rest f32)" -- plan "$tiny" --context 4096 --weights-dtype bf16
expect 2 "plan does not read: give f32 or bf16" -- plan "$tiny" --context 4096 --weights-dtype keep
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
expect 2 "option '-I' expects a value: -I DIR" -- check "$tmp/proj/m.hsa" -I

# --- help from the option tables (issue 15) ---------------------------------
# For every command `hsac help` lists: `hsac CMD --help` exits 0; every
# option it lists is in `hsac help` too, and the parser accepts it (given a
# value where it takes one): no "unknown option", no internal error (an
# option in a table that the command's code does not handle exits 4).
"$hsac" help >"$tmp/help" 2>&1 || { echo "FAIL hsac help"; fail=$((fail + 1)); }
cmds=$(sed -n 's/^  hsac \([a-z-]*\).*/\1/p' "$tmp/help")
[ "$(echo "$cmds" | wc -w)" -ge 13 ] && pass=$((pass + 1)) || { echo "FAIL hsac help lists: $cmds"; fail=$((fail + 1)); }
nopts=0
for c in $cmds; do
  if ! "$hsac" "$c" --help >"$tmp/h" 2>&1 || ! grep -q "^usage: hsac $c" "$tmp/h"; then
    echo "FAIL hsac $c --help"; cat "$tmp/h"; fail=$((fail + 1)); continue
  fi
  # "  --name ARG, -a  help" -> "--name ARG"
  sed -n 's/^  \(-[^ ,]*\)\( [^ ,]*\)\{0,1\}\(, -[a-z]\)\{0,1\}  .*/\1\2/p; s/^  \(-[^ ,]*\)\( [^ ,]*\)\{0,1\}\(, -[a-z]\)\{0,1\}$/\1\2/p' "$tmp/h" \
    | grep -v '^-h' >"$tmp/opts"
  while read -r opt arg; do
    nopts=$((nopts + 1))
    # listed under the command in `hsac help`
    awk -v c="  hsac $c" -v o="      $opt" 'index($0, "  hsac ") == 1 { on = (index($0, c " ") == 1 || $0 == c) }
      on && index($0, o) == 1 { found = 1 } END { exit !found }' "$tmp/help" ||
      { echo "FAIL hsac help lacks $c $opt"; fail=$((fail + 1)); }
    if [ -n "$arg" ]; then set -- "$opt" 1; else set -- "$opt"; fi
    timeout 60 "$hsac" "$c" "$@" >"$tmp/o" 2>&1 </dev/null; rc=$?
    if [ "$rc" -eq 4 ] || grep -q "unknown option\|internal error" "$tmp/o"; then
      echo "FAIL hsac $c $*: the parser does not take an option its help lists (exit $rc)"
      cat "$tmp/o"; fail=$((fail + 1))
    else pass=$((pass + 1)); fi
  done <"$tmp/opts"
done
[ "$nopts" -ge 50 ] && pass=$((pass + 1)) || { echo "FAIL only $nopts options found in the help"; fail=$((fail + 1)); }
# the options the issue found missing from the help
for o in "gen-task" "--depth D" "--chains C" "--cache f32|bf16|f16" "--stop STRING" "--check-numerics"; do
  grep -q -- "$o" "$tmp/help" && pass=$((pass + 1)) || { echo "FAIL hsac help lacks '$o'"; fail=$((fail + 1)); }
done
# did-you-mean for commands and options; options of another command
expect 2 "unknown command 'chekc'; did you mean 'check'?" -- chekc x.hsa
expect 2 "unknown option '--weigths' for run; did you mean '--weights'?" -- run x.hsa --weigths w
expect 2 "unknown option '--contxt' for plan; did you mean '--context'?" -- plan x.hsa --contxt 4
expect 2 "unknown option '--weights' for check (it is an option of run, logits, eval, tune)" -- check x.hsa --weights w
expect 2 "unknown option '--lenght' for gen-task; did you mean '--length'?" -- gen-task --lenght 4
expect 2 "unknown pass 'demnad'; did you mean 'demand'?" -- ir x.hsa --print-after=demnad
expect 2 "option '--max-new' expects a value: --max-new N" -- run x.hsa --max-new
expect 2 "option '--verbose' takes no value" -- check --verbose=1 x.hsa
# --name=value and -IDIR spellings
expect 0 "plan for model" -- plan "$tiny" --context=4096 --cache=f16
expect 0 "usage: hsac gen-task" -- gen-task -h

# --- check -v prints a model file; check --json -------------------------------
"$hsac" check -v "$tiny" >"$tmp/resolved.hsa" 2>"$tmp/err"
if grep -q "^tiny_swa_hsa: ok\|: ok: " "$tmp/err" && ! grep -q ": ok: " "$tmp/resolved.hsa" &&
   "$hsac" check "$tmp/resolved.hsa" >/dev/null 2>&1; then pass=$((pass + 1)); else
  echo "FAIL check -v output does not check again"; cat "$tmp/err"; fail=$((fail + 1)); fi
"$hsac" check --json "$tiny" >"$tmp/check.json" 2>&1
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["ok"] and d["parameters"] > 0 and d["layers"] > 0 and d["cache_bytes_per_token"] > 0, d' "$tmp/check.json" \
  && pass=$((pass + 1)) || { echo "FAIL check --json"; cat "$tmp/check.json"; fail=$((fail + 1)); }

# plan --json parses and agrees with check --json on the cache
"$hsac" plan "$tiny" --context 4096 --json >"$tmp/plan.json" 2>&1
python3 -c '
import json, sys
p = json.load(open(sys.argv[1])); c = json.load(open(sys.argv[2]))
assert p["model"] == c["model"] and p["context"] == 4096 and p["caches"], p
assert abs(p["totals"]["per_token_bytes"] - c["cache_bytes_per_token"]) < 1e-6, (p["totals"], c)
assert p["totals"]["fixed_bytes"] == c["cache_bytes_fixed"], (p["totals"], c)
' "$tmp/plan.json" "$tmp/check.json" && pass=$((pass + 1)) || { echo "FAIL plan --json"; head -c 600 "$tmp/plan.json"; fail=$((fail + 1)); }
# the same at the paper's size, where the fixed cache (2.6 MB) has 7 digits
"$hsac" plan "$src/examples/paper_swa_hsa.hsa" --context 4096 --json >"$tmp/plan2.json" 2>&1
"$hsac" check --json "$src/examples/paper_swa_hsa.hsa" >"$tmp/check2.json" 2>&1
python3 -c '
import json, sys
p = json.load(open(sys.argv[1])); c = json.load(open(sys.argv[2]))
assert p["totals"]["fixed_bytes"] == c["cache_bytes_fixed"] == 2612736, (p["totals"], c)
assert c["parameters"] == 215123968, c
' "$tmp/plan2.json" "$tmp/check2.json" && pass=$((pass + 1)) || { echo "FAIL check --json at 7 digits"; cat "$tmp/check2.json"; fail=$((fail + 1)); }

# --- files that are not what they should be -----------------------------------
expect 1 "hsac: error: $tiny: not a safetensors file (it starts with \"" -- run "$tiny" --weights "$tiny" --prompt hi
expect 1 "not a safetensors file" -- logits "$tiny" --weights "$tiny" --prompt hi -o "$tmp/l.st"
expect 0 "hsac: wrote $tmp/rep.st: [0-9]* tensors, .* parameters (f32, .*) for model '.*', seed 4" -- init-weights "$tiny" -o "$tmp/rep.st" --seed 4
expect 0 "" -- init-weights "$tiny" -o "$tmp/rep.st" -q
[ ! -s "$tmp/out" ] && pass=$((pass + 1)) || { echo "FAIL init-weights -q printed"; fail=$((fail + 1)); }

# a 240-letter model name: init-weights writes its metadata (it overflowed a
# fixed buffer), and the same model loads the file again
long=$(printf 'm%.0s' $(seq 240))
sed "s/^model paper_swa_hsa {/model $long {/" "$tiny" >"$tmp/long.hsa"
expect 0 "" -- init-weights "$tmp/long.hsa" -o "$tmp/long.st" -q
expect 0 "" -- run "$tmp/long.hsa" --weights "$tmp/long.st" --prompt hi --max-new 2 -q
# ir: options that print different things, or need passes that -O0 skips
expect 2 "prints the IR and --emit the kernels: give one" -- ir "$tiny" --print-after=dce --emit=mlir
expect 2 "and -O0 runs none" -- ir "$tiny" -O0 --print-after-all
expect 2 "unknown option '--weights' for gen-task (it is an option of run, logits, eval, tune)" -- gen-task --weights w

# --- run: --stop, the summary, control bytes on a terminal --------------------
pk="$src/examples/passkey_hsa.hsa" pkw="$src/examples/trained/passkey_hsa/weights.safetensors"
"$hsac" gen-task --task passkey --length 512 --seed 3 --format prompt >"$tmp/pk.txt"
ans=$("$hsac" gen-task --task passkey --length 512 --seed 3 | tail -n 1)
stop=$(printf '%s' "$ans" | cut -c5-6)   # two digits inside the answer
want=$(printf '%s' "$ans" | awk -v s="$stop" '{ print substr($0, 1, index($0, s) - 1) }')
"$hsac" run "$pk" --weights "$pkw" --prompt-file "$tmp/pk.txt" --stop "$stop" --backend ref >"$tmp/o" 2>"$tmp/e"
if [ "$(cat "$tmp/o")" = "$want" ] && grep -q "stopped at --stop" "$tmp/e"; then pass=$((pass + 1)); else
  echo "FAIL --stop '$stop' (answer $ans): printed '$(cat "$tmp/o")', expected '$want'"; cat "$tmp/e"; fail=$((fail + 1)); fi
expect 2 "--stop expects a non-empty string" -- run "$pk" --weights "$pkw" --prompt x --stop ""
# a random model sampled at temperature 1 emits control bytes: raw into a
# file, escaped on a terminal
"$hsac" run "$tiny" --weights "$tmp/w.st" --prompt abc --temperature 1 --seed 9 --max-new 300 --backend ref -q >"$tmp/raw" 2>/dev/null
if LC_ALL=C grep -q "$(printf '[\001-\010\013\014\016-\037]')" "$tmp/raw"; then pass=$((pass + 1)); else
  echo "FAIL the sampled output holds no control bytes (test premise)"; fail=$((fail + 1)); fi
if command -v script >/dev/null 2>&1; then
  script -qec "'$hsac' run '$tiny' --weights '$tmp/w.st' --prompt abc --temperature 1 --seed 9 --max-new 300 --backend ref -q 2>/dev/null" "$tmp/ttyraw" >/dev/null 2>&1
  body=$(sed -n '2,$p' "$tmp/ttyraw" | head -c 100000)
  if grep -q '\\x[01][0-9a-f]' "$tmp/ttyraw" &&
     ! sed '1d;$d' "$tmp/ttyraw" | LC_ALL=C tr -d '\r\n\t' | LC_ALL=C grep -q "$(printf '[\001-\037\177]')"; then
    pass=$((pass + 1)); else echo "FAIL control bytes reach the terminal unescaped"; fail=$((fail + 1)); fi
  : "$body"
else
  echo "skipped: escaping on a terminal (no script(1) to make one)"
fi

# --- eval: usage, scoring, the floor, the files it writes -------------------------
expect 2 "no weights" -- eval "$pk" --task passkey --lengths 512
expect 2 "no task" -- eval "$pk" --weights "$pkw" --lengths 512
expect 2 "no lengths" -- eval "$pk" --weights "$pkw" --task passkey
expect 2 "unknown name 'pasky'" -- eval "$pk" --weights "$pkw" --task pasky --lengths 512
expect 2 "--task names 'babi' twice" -- eval "$pk" --weights "$pkw" --task babi,babi --lengths 512
expect 2 "'12Q' is not a length" -- eval "$pk" --weights "$pkw" --task passkey --lengths 512,12Q
expect 2 "more than --max-context" -- eval "$pk" --weights "$pkw" --task passkey --lengths 64K --max-context 4K
expect 2 "length 200 is too short for passkey" -- eval "$pk" --weights "$pkw" --task passkey --lengths 200,512
expect 2 "--corpus-dir goes with a prose --filler" -- eval "$pk" --weights "$pkw" --task passkey --lengths 512 --corpus-dir "$tmp"
expect 1 "dict-devil" -- eval "$pk" --weights "$pkw" --task passkey --lengths 512 --filler devil --corpus-dir "$tmp"
# the shipped passkey model answers passkeys; it was never taught multikey,
# so a floor on it fails (exit 1, naming the row)
# the 95% interval of 4 right of 4 (Wilson's): 4 / (4 + 1.96^2) to 1
expect 0 "passkey    synthetic     512      4  100.0%  51.0-100.0  100.0%" -- eval "$pk" --weights "$pkw" --task passkey --lengths 512 --n 4 --min-score 75 -q --csv "$tmp/e.csv" --json-out "$tmp/e.json"
expect 1 "multikey on synthetic at 512 scored 0.0%, below --min-score 50.0%" -- eval "$pk" --weights "$pkw" --task multikey --lengths 512 --n 2 --min-score 50 -q
# the multi-task model in training (examples/trained/ruler_hsa/README.md;
# session 52's weights): on these ten items at 1K it answers passkeys on
# training text (100%; 100% of 100) and on held-out filler with held-out
# wordings (100%; 98% of 100), the asked needle in multikey (100%; 92.5% of
# 100), and in the multi-answer tasks some of the asked values (partial
# scores: multivalue 55%, multiquery 90%); the passkey model copies no
# needle of them (0%, which the test also checks).  babi, on 20 items: 90%
# (90% of 100; "where is X" 5 of 5, objects 7 of 7, "before" 6 of 8), the
# passkey model 0%.  At 8K (16x its training length) multikey on ten items
# 100% and passkeys 80% (95% of 40 other items; the floor is 70% so that
# one item's change of backend rounding does not fail CI).  vartrack
# (since session 44; every earlier weights 0%): 62% of the names held out
# (78% of 100), 80% with training wordings.  Floors below what it does.
rh="$src/examples/ruler_hsa.hsa" rhw="$src/examples/trained/ruler_hsa/weights.safetensors"
expect 0 "passkey    fortunes       1K     10" -- eval "$rh" --weights "$rhw" --task passkey --lengths 1K --n 10 --filler fortunes --phrasing train --min-score 60 -q
expect 0 "passkey    devil          1K     10" -- eval "$rh" --weights "$rhw" --task passkey --lengths 1K --n 10 --filler devil --phrasing heldout --min-score 80 -q
expect 0 "multikey   devil          1K     10" -- eval "$rh" --weights "$rhw" --task multikey --lengths 1K --n 10 --filler devil --phrasing heldout --min-score 70 -q
expect 0 "multivalue devil          1K     10" -- eval "$rh" --weights "$rhw" --task multivalue --lengths 1K --n 10 --filler devil --phrasing heldout --min-score 20 -q
expect 0 "multiquery devil          1K     10" -- eval "$rh" --weights "$rhw" --task multiquery --lengths 1K --n 10 --filler devil --phrasing heldout --min-score 70 -q
expect 0 "multikey   devil          8K     10" -- eval "$rh" --weights "$rhw" --task multikey --lengths 8K --n 10 --filler devil --phrasing heldout --min-score 70 -q
expect 0 "passkey    devil          8K     10" -- eval "$rh" --weights "$rhw" --task passkey --lengths 8K --n 10 --filler devil --phrasing heldout --min-score 70 -q
# variables tracked (since session 44): the names of the asked chain
expect 0 "vartrack   devil          1K     10" -- eval "$rh" --weights "$rhw" --task vartrack --lengths 1K --n 10 --filler devil --phrasing heldout --min-score 40 -q
# the card's reference items (what these weights answered, eval --csv)
# are still the items gen-task makes: --baseline accepts them (it refuses an
# item whose answer differs) and reads their scores
expect 0 "vartrack   devil          1K     10" -- eval "$rh" --weights "$rhw" --task vartrack --lengths 1K --n 10 --filler devil --phrasing heldout -q --baseline "$src/examples/trained/ruler_hsa/items_vartrack_1k.csv" --json-out "$tmp/ref.json"
if python3 -c 'import csv, json, sys
b = json.load(open(sys.argv[1]))["rows"][0]["baseline"]
r = [float(x["score"]) for x in csv.DictReader(open(sys.argv[2])) if x["filler"] == "devil" and int(x["seed"]) < 10]
sys.exit(not (b["items"] == 10 and len(r) == 10 and abs(b["baseline_score"] - sum(r) / 10) < 1e-9))' "$tmp/ref.json" "$src/examples/trained/ruler_hsa/items_vartrack_1k.csv"; then
  pass=$((pass + 1)); else echo "FAIL eval --baseline on the card's reference items"; cat "$tmp/ref.json"; fail=$((fail + 1)); fi
expect 0 "vartrack   fortunes       1K     10" -- eval "$rh" --weights "$rhw" --task vartrack --lengths 1K --n 10 --filler fortunes --phrasing train --min-score 60 -q
# tools/torch/vartrack_swap.py scores its "as is" items as hsac eval does:
# its line equals the mean of eval's per-item scores on the same seeds
if python3 "$src/tools/torch/vartrack_swap.py" "$hsac" "$rh" "$rhw" --n 2 --seed 16 --forms asis >"$tmp/vs.txt" 2>&1 &&
   "$hsac" eval "$rh" --weights "$rhw" --task vartrack --lengths 1K --n 10 --seed 16 --filler devil --phrasing heldout -q --csv "$tmp/vs.csv" >/dev/null 2>&1 &&
   seeds=$(sed -n 's/.*(seeds \([0-9,]*\)).*/\1/p' "$tmp/vs.txt") && [ -n "$seeds" ] &&
   want=$(awk -F, -v s="$seeds" 'BEGIN { n = split(s, a, ","); for (i = 1; i <= n; i++) k[a[i]] = 1 }
            NR > 1 && ($6 in k) { t += $7; c++ } END { if (c == 2) printf "%.1f%%", 100 * t / c }' "$tmp/vs.csv") &&
   grep -q "^as is (Assign V to X) *$want\$" "$tmp/vs.txt"; then pass=$((pass + 1)); else
  echo "FAIL vartrack_swap.py: its score differs from hsac eval's"; cat "$tmp/vs.txt"; fail=$((fail + 1)); fi
python3 "$src/tools/torch/vartrack_swap.py" "$hsac" "$rh" "$rhw" --n 0 >/dev/null 2>"$tmp/vs.err"
if [ $? -eq 2 ] && grep -q -- "--n must be at least 1" "$tmp/vs.err"; then pass=$((pass + 1)); else
  echo "FAIL vartrack_swap.py --n 0 is not refused"; cat "$tmp/vs.err"; fail=$((fail + 1)); fi
# tools/torch/vartrack_errors.py classifies every row of eval's CSV (here
# the ten items above), and refuses a CSV whose answers are not gen-task's
if python3 "$src/tools/torch/vartrack_errors.py" "$hsac" "$tmp/vs.csv" >"$tmp/ve.txt" 2>&1 &&
   grep -q "^all  *10  exact [0-9]" "$tmp/ve.txt"; then pass=$((pass + 1)); else
  echo "FAIL vartrack_errors.py on eval's CSV"; cat "$tmp/ve.txt"; fail=$((fail + 1)); fi
sed '2s/"[A-Z]\{5\},/"QQQQQ,/' "$tmp/vs.csv" >"$tmp/ve.csv"
python3 "$src/tools/torch/vartrack_errors.py" "$hsac" "$tmp/ve.csv" >/dev/null 2>"$tmp/ve.err"
if [ $? -eq 1 ] && grep -q "ve.csv:2: the answer's QQQQQ is not in gen-task's prompt" "$tmp/ve.err"; then
  pass=$((pass + 1)); else
  echo "FAIL vartrack_errors.py: a CSV that is not gen-task's items is not refused"; cat "$tmp/ve.err"; fail=$((fail + 1)); fi
# letters copied (since session 42): passkeys whose values are 8 random letters
expect 0 "passkey    devil          1K     10" -- eval "$rh" --weights "$rhw" --task passkey --needle code --lengths 1K --n 10 --filler devil --phrasing heldout --min-score 60 -q
expect 1 "multikey on devil at 1K scored" -- eval "$pk" --weights "$pkw" --task multikey --lengths 1K --n 10 --filler devil --phrasing heldout --min-score 10 -q
expect 0 "babi       devil          1K     20" -- eval "$rh" --weights "$rhw" --task babi --lengths 1K --n 20 --filler devil --phrasing heldout --min-score 60 -q --csv "$tmp/k.csv" --json-out "$tmp/k.json"
# babi's results by the kind of question (now, object, before): a table
# line, a JSON entry and a CSV column each, adding up to the row
if python3 -c 'import csv, json, sys
r = json.load(open(sys.argv[1]))["rows"][0]; k = r["kinds"]
t = sum(v["items"] for v in k.values()); s = sum(v["items"] * v["score"] for v in k.values())
rows = list(csv.DictReader(open(sys.argv[2])))
c = [x["kind"] for x in rows]
v = [x["variant"] for x in rows]
sys.exit(not (sorted(k) == ["before", "now", "object"] and t == r["items"] == 20
              and abs(s - 20 * r["score"]) < 1e-9 and all(c.count(x) == k[x]["items"] for x in k)
              and set(v) == {"4", "5"}))' "$tmp/k.json" "$tmp/k.csv" &&
   # the CSV's variant is the wording gen-task gives the same seed
   [ "$(awk -F, 'NR == 4 { print $NF }' "$tmp/k.csv")" = "$("$hsac" gen-task --task babi --length 1K --filler devil --phrasing heldout --seed 2 --format jsonl | sed 's/.*"variant":\([0-9]*\).*/\1/')" ] &&
   "$hsac" eval "$pk" --weights "$pkw" --task babi,passkey --lengths 512 --n 12 -q >"$tmp/k.txt" 2>&1 &&
   [ "$(grep -c '^  now \|^  object \|^  before ' "$tmp/k.txt")" -eq 3 ] && [ "$(wc -l <"$tmp/k.txt")" -eq 6 ]; then
  pass=$((pass + 1)); else echo "FAIL eval: babi by kind of question"; cat "$tmp/k.csv" "$tmp/k.json" "$tmp/k.txt"; fail=$((fail + 1)); fi
expect 1 "babi on devil at 1K scored 0.0%" -- eval "$pk" --weights "$pkw" --task babi --lengths 1K --n 20 --filler devil --phrasing heldout --min-score 10 -q
if [ "$(wc -l <"$tmp/e.csv")" -eq 5 ] && grep -q '^passkey,synthetic,default,number,512,3,1.0000,1,' "$tmp/e.csv" &&
   grep -q '"score":[[:space:]]*1' "$tmp/e.json" &&
   python3 -c 'import json, sys
r = json.load(open(sys.argv[1]))["rows"][0]; lo, hi = r["score_ci95"]
sys.exit(not (abs(lo - 4 / (4 + 1.959963984540054 ** 2)) < 1e-9 and hi == 1 and r["exact_ci95"] == [lo, hi]))' "$tmp/e.json"; then pass=$((pass + 1)); else
  echo "FAIL eval --csv/--json-out"; cat "$tmp/e.csv" "$tmp/e.json"; fail=$((fail + 1)); fi
expect 1 "cannot write" -- eval "$pk" --weights "$pkw" --task passkey --lengths 512 --n 1 -q --csv /nonexistent/e.csv
# --baseline: the same items compared one by one with an earlier --csv.
# The same weights agree with themselves; against a copy whose scores were
# set to 0 this run is better on all 4 (sign test: 2 / 2^4); a different
# answer for a seed, a file that is not eval's CSV, a short line: errors
# naming the file and line
expect 0 "passkey    synthetic     512      4  100.0%    100.0%       0       0        1" -- eval "$pk" --weights "$pkw" --task passkey --lengths 512 --n 4 -q --baseline "$tmp/e.csv"
python3 -c 'import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
out = csv.writer(open(sys.argv[2], "w"), lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
bad = csv.writer(open(sys.argv[3], "w"), lineterminator="\n")
out.writerow(rows[0]); bad.writerow(rows[0])
for i, r in enumerate(rows[1:]):
    z = list(r); z[6], z[7] = "0.0000", "0"; out.writerow(z)
    b = list(r)
    if i == 2: b[8] = "1234567"
    bad.writerow(b)' "$tmp/e.csv" "$tmp/e0.csv" "$tmp/eb.csv"
expect 0 "passkey    synthetic     512      4  100.0%      0.0%       4       0    0.125" -- eval "$pk" --weights "$pkw" --task passkey --lengths 512 --n 4 -q --baseline "$tmp/e0.csv" --json-out "$tmp/e0.json"
if python3 -c 'import json, sys
j = json.load(open(sys.argv[1])); b = j["rows"][0]["baseline"]
sys.exit(not (j["baseline"].endswith("e0.csv") and b["items"] == 4 and b["better"] == 4 and b["worse"] == 0
              and b["baseline_score"] == 0 and b["score"] == 1 and abs(b["p"] - 0.125) < 1e-12))' "$tmp/e0.json"; then
  pass=$((pass + 1)); else echo "FAIL eval --baseline: JSON"; cat "$tmp/e0.json"; fail=$((fail + 1)); fi
expect 1 "eb.csv:4: passkey at 512, seed 2 answers '1234567' there" -- eval "$pk" --weights "$pkw" --task passkey --lengths 512 --n 4 -q --baseline "$tmp/eb.csv"
expect 0 "passkey    synthetic     512      0       -" -- eval "$pk" --weights "$pkw" --task passkey --lengths 512 --n 1 --seed 50 -q --baseline "$tmp/e.csv"
grep -q "no item of this run is in" "$tmp/out" && pass=$((pass + 1)) || { echo "FAIL eval --baseline: no warning without shared items"; fail=$((fail + 1)); }
printf 'task,score\npasskey,1\n' >"$tmp/nc.csv"
expect 1 "nc.csv:1: not an \`hsac eval --csv\` file" -- eval "$pk" --weights "$pkw" --task passkey --lengths 512 --n 1 -q --baseline "$tmp/nc.csv"
{ head -n 1 "$tmp/e.csv"; echo 'passkey,synthetic,default,number,512,0,1.0000'; } >"$tmp/short.csv"
expect 1 "short.csv:2: expected 15 fields, found 7" -- eval "$pk" --weights "$pkw" --task passkey --lengths 512 --n 1 -q --baseline "$tmp/short.csv"
{ head -n 1 "$tmp/e.csv"; echo 'passkey,synthetic,default,number,512,0,1.0000,1,"123,x,y,0.1,,,,'; } >"$tmp/q.csv"
expect 1 "q.csv:2: a quoted field does not end with a quote" -- eval "$pk" --weights "$pkw" --task passkey --lengths 512 --n 1 -q --baseline "$tmp/q.csv"
{ head -n 1 "$tmp/e.csv"; printf 'passkey,synthetic,default,number,512,0,1.0000,1,"66\t65257","6665257",0.01,,0.5,,0\n'; } >"$tmp/t.csv"
expect 1 "t.csv:2: the answer holds a byte eval does not write" -- eval "$pk" --weights "$pkw" --task passkey --lengths 512 --n 1 -q --baseline "$tmp/t.csv"
{ cat "$tmp/e.csv"; tail -n 1 "$tmp/e.csv"; } >"$tmp/twice.csv"
expect 1 "twice.csv:6: passkey at 512, seed 3 is also on line 5" -- eval "$pk" --weights "$pkw" --task passkey --lengths 512 --n 4 -q --baseline "$tmp/twice.csv"
expect 1 "cannot read '/nonexistent/b.csv'" -- eval "$pk" --weights "$pkw" --task passkey --lengths 512 --n 1 -q --baseline /nonexistent/b.csv
# --depths: a row per depth, the depth in the table, the JSON and the CSV,
# and the asked needle where the depth puts it (needle_at: its offset as a
# share of the prompt, after the header at 0, before the question at 1)
expect 0 "passkey    synthetic     512      1      2  100.0%" -- eval "$pk" --weights "$pkw" --task passkey --lengths 512 --depths 0,0.5,1 --n 2 -q --csv "$tmp/d.csv" --json-out "$tmp/d.json"
if [ "$(grep -c '^passkey,' "$tmp/d.csv")" -eq 6 ] && [ "$(grep -c '"depth"' "$tmp/d.json")" -eq 3 ] &&
   awk -F, 'NR > 1 { n++; if (($12 == 0 && $13 > 0.3) || ($12 == 1 && $13 < 0.7) || $13 == "") bad = 1 }
            END { exit !(n == 6 && !bad) }' "$tmp/d.csv"; then pass=$((pass + 1)); else
  echo "FAIL eval --depths: rows, JSON or needle_at"; cat "$tmp/d.csv" "$tmp/d.json"; fail=$((fail + 1)); fi
expect 1 "multikey on synthetic at 512, depth 0.25 scored 0.0%" -- eval "$pk" --weights "$pkw" --task multikey --lengths 512 --depths 0.25 --n 2 --min-score 10 -q
expect 2 "--depths places the asked needle of passkey and multikey; vartrack spreads" -- eval "$pk" --weights "$pkw" --task passkey,vartrack --lengths 512 --depths 0
expect 2 "--depths: '1.5' is not a depth from 0 to 1" -- eval "$pk" --weights "$pkw" --task passkey --lengths 512 --depths 0,1.5
expect 2 "--depths names 0.5 twice" -- eval "$pk" --weights "$pkw" --task passkey --lengths 512 --depths 0.5,0.50
expect 2 "--depths expects a list such as 0,0.5,1" -- eval "$pk" --weights "$pkw" --task passkey --lengths 512 --depths 0,,1
expect 2 "--lengths expects a list such as 512,8K,64K" -- eval "$pk" --weights "$pkw" --task passkey --lengths 512,
expect 2 "leaves no room for the answer" -- eval "$pk" --weights "$pkw" --task passkey --lengths 2147483647 --max-context 2147483647
expect 2 "--seed plus --n passes" -- eval "$pk" --weights "$pkw" --task passkey --lengths 512 --seed 9223372036854775807 --n 2
# babi has no needle kind: --needle must not change its stories
"$hsac" eval "$pk" --weights "$pkw" --task babi --lengths 512 --n 3 -q --csv "$tmp/b1.csv" >/dev/null 2>&1
"$hsac" eval "$pk" --weights "$pkw" --task babi --lengths 512 --n 3 -q --csv "$tmp/b2.csv" --needle uuid >/dev/null 2>&1
if [ -s "$tmp/b1.csv" ] && cut -d, -f9 "$tmp/b1.csv" | cmp -s - "$(cut -d, -f9 "$tmp/b2.csv" >"$tmp/b2a"; echo "$tmp/b2a")"; then
  pass=$((pass + 1)); else echo "FAIL eval --needle changed babi's answers"; fail=$((fail + 1)); fi

# Every parameter `hsac params` lists is documented in docs/language.md.
"$hsac" params | sed -n 's/^| `\([a-z_]*\).*/\1/p' | sort -u >"$tmp/names"
missing=0
while read -r name; do
  grep -q "\`$name\`" "$src/docs/language.md" || { echo "docs/language.md lacks \`$name\`"; missing=1; }
done <"$tmp/names"
if [ "$missing" -eq 0 ] && [ -s "$tmp/names" ]; then pass=$((pass + 1)); else fail=$((fail + 1)); fi
# Every op of the op table is documented in docs/ir.md.
missing=0 nops=0
for op in $(sed -n 's/^X([A-Z_]*, *\([a-z_]*\),.*/\1/p' "$src/ir/ops.def"); do
  nops=$((nops + 1))
  grep -q "| \`$op\` |" "$src/docs/ir.md" || { echo "docs/ir.md lacks op \`$op\`"; missing=1; }
done
# (as many ops as the table has lines: a pattern that stops matching fails)
if [ "$missing" -eq 0 ] && [ "$nops" -gt 0 ] && [ "$nops" -eq "$(grep -c '^X(' "$src/ir/ops.def")" ]; then
  pass=$((pass + 1)); else echo "FAIL ops documented ($nops ops read)"; fail=$((fail + 1)); fi
echo "cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
