#!/bin/sh
# backend_cli.sh HSAC SOURCE_DIR - the CPU backend from the command line:
# --backend and its errors, `ir --emit`, a forced AVX2 target, and the
# kernel cache (hits, corrupt entries rebuilt, two processes at once,
# HSAC_NO_CACHE, `hsac cache ls|clear`).
set -u
hsac=$1 src=$2
pass=0 fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export HSAC_CACHE_DIR="$tmp/cache"
unset HSAC_NO_CACHE HSAC_CPU
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }
# expect CODE PATTERN -- ARGS...: exit code and a pattern in stdout+stderr
expect() {
  code=$1 pat=$2; shift 3
  "$hsac" "$@" >"$tmp/out" 2>&1; rc=$?
  if [ "$rc" -ne "$code" ]; then
    bad "hsac $*: exit $rc, expected $code"; cat "$tmp/out"
  elif [ -n "$pat" ] && ! grep -q -- "$pat" "$tmp/out"; then
    bad "hsac $*: output lacks '$pat'"; cat "$tmp/out"
  else
    ok
  fi
}
tiny="$src/examples/tiny/paper_swa_hsa.hsa"
"$hsac" init-weights "$tiny" -o "$tmp/w.st" --seed 5 || bad "init-weights"
"$hsac" init-weights "$src/examples/tiny/nsa.hsa" -o "$tmp/nsa.st" --seed 5 || bad "init-weights nsa"
run() { "$hsac" run "$tiny" --weights "$tmp/w.st" --prompt "The passkey is 4711. The" --max-new 8 "$@"; }

expect 2 "--backend expects ref, cpu, cuda, cuda-emu or auto" -- run "$tiny" --weights "$tmp/w.st" --prompt x --backend gpu
expect 2 "--threads expects"      -- run "$tiny" --weights "$tmp/w.st" --prompt x --threads 0
expect 0 "backend cpu"            -- run "$src/examples/tiny/nsa.hsa" --weights "$tmp/nsa.st" --prompt x --max-new 1 -v
expect 0 "backend ref"            -- run "$src/examples/tiny/nsa.hsa" --weights "$tmp/nsa.st" --prompt x --max-new 1 -v --backend ref
expect 1 "unknown CPU 'pentium9'" -- run "$tiny" --weights "$tmp/w.st" --prompt x --cpu pentium9
expect 0 "func.func @hsac_linear_" -- ir --emit=mlir "$tiny"
expect 0 "define void @hsac_chunk_attention_" -- ir --emit=llvm "$tiny"
expect 0 "vfmadd"                 -- ir --emit=asm "$tiny"
expect 0 "func.func @hsac_nsa_attention_" -- ir --emit=mlir "$src/examples/tiny/nsa.hsa"
expect 2 "--emit expects"         -- ir --emit=wasm "$tiny"
expect 2 "give it with -o FILE"   -- ir --emit=obj "$tiny"
expect 0 ""                       -- ir --emit=obj "$tiny" -o "$tmp/k.o"
# the object holds every kernel as a global function
if command -v nm >/dev/null; then
  nm "$tmp/k.o" | grep -q " T hsac_chunk_attention_" && nm "$tmp/k.o" | grep -q " T hsac_retrieve_.*_merge" &&
    ok || bad "the object lacks the kernels"
else
  echo "  skipped: the object's symbols (no nm: binutils is not installed)"
fi
# a forced AVX2 target: 256-bit code only
"$hsac" ir --emit=asm --cpu haswell "$tiny" >"$tmp/hsw.s" 2>&1 || bad "ir --emit=asm --cpu haswell"
if grep -q "vfmadd.*%ymm" "$tmp/hsw.s" && ! grep -q "%zmm" "$tmp/hsw.s"; then ok; else bad "haswell code uses zmm or no ymm FMA"; fi

# each named CPU's prefetch density (cg_prefetch): Zen 4's sparse attention
# is Zen 5's (dense), its landmark scan Sapphire Rapids' (sparse)
func() { # func FILE NAME: the text of the kernel function NAME_<hash> in FILE
  awk -v n="$2" '/func.func @/ { split($2, a, "("); f = a[1]; sub(/_[0-9a-f]+$/, "", f) }
                 f == "@" n' "$1"
}
for c in znver4 znver5 sapphirerapids; do
  "$hsac" ir --emit=mlir --cpu $c "$tiny" >"$tmp/pf_$c.mlir" 2>&1 || bad "ir --emit=mlir --cpu $c"
  for k in hsac_chunk_attention hsac_retrieve; do func "$tmp/pf_$c.mlir" $k >"$tmp/pf_${c}_$k"; done
done
grep -q "znver4 (512-bit vectors, dense prefetches in sparse attention)" "$tmp/pf_znver4.mlir" &&
  grep -q "znver5 (512-bit vectors, dense prefetches)" "$tmp/pf_znver5.mlir" &&
  grep -q "sapphirerapids (512-bit vectors)" "$tmp/pf_sapphirerapids.mlir" && ok ||
  bad "ir --emit's header does not name the prefetch densities"
for k in hsac_chunk_attention hsac_retrieve; do
  [ -s "$tmp/pf_znver4_$k" ] && grep -q "llvm.intr.prefetch" "$tmp/pf_znver5_$k" && ok ||
    bad "no $k kernel with prefetches in the emitted MLIR"
done
cmp -s "$tmp/pf_znver4_hsac_chunk_attention" "$tmp/pf_znver5_hsac_chunk_attention" &&
  ! cmp -s "$tmp/pf_znver4_hsac_chunk_attention" "$tmp/pf_sapphirerapids_hsac_chunk_attention" &&
  ok || bad "znver4's sparse attention is not znver5's dense one"
cmp -s "$tmp/pf_znver4_hsac_retrieve" "$tmp/pf_sapphirerapids_hsac_retrieve" &&
  ! cmp -s "$tmp/pf_znver4_hsac_retrieve" "$tmp/pf_znver5_hsac_retrieve" &&
  ok || bad "znver4's landmark scan is not the sparse one"

# greedy text: the same on ref, cpu, cpu forced to AVX2 (HSAC_CPU), 1 thread
run --backend ref >"$tmp/ref.txt" 2>/dev/null || bad "run ref"
run --backend cpu >"$tmp/cpu.txt" 2>/dev/null || bad "run cpu"
HSAC_CPU=haswell run --backend cpu -v >"$tmp/hsw.txt" 2>"$tmp/hsw.err" || bad "run HSAC_CPU=haswell"
run --backend cpu --threads 1 >"$tmp/t1.txt" 2>/dev/null || bad "run --threads 1"
[ -s "$tmp/ref.txt" ] && ok || bad "run ref printed no text"
for f in cpu hsw t1; do cmp -s "$tmp/ref.txt" "$tmp/$f.txt" && ok || bad "greedy text of $f differs from ref"; done
grep -q "target haswell (forced) (256-bit" "$tmp/hsw.err" && ok || { bad "HSAC_CPU not used"; cat "$tmp/hsw.err"; }

# the cache: a miss, then a hit
rm -rf "$HSAC_CACHE_DIR"
run -v >/dev/null 2>"$tmp/e1"; run -v >/dev/null 2>"$tmp/e2"
grep -q ", compiled in" "$tmp/e1" && ok || bad "first run did not compile"
grep -q "loaded from the kernel cache" "$tmp/e2" && ok || bad "second run missed the cache"
n() { ls "$HSAC_CACHE_DIR"/*.o 2>/dev/null | wc -l; }
[ "$(n)" -eq 1 ] && ok || bad "expected 1 cache entry, found $(n)"
entry=$(ls "$HSAC_CACHE_DIR"/*.o)
# a truncated entry is rebuilt, never loaded
size=$(wc -c <"$entry")
head -c $((size - 100)) "$entry" >"$tmp/t" && cat "$tmp/t" >"$entry"
run -v >"$tmp/o3" 2>"$tmp/e3" || bad "run after truncation"
grep -q "corrupt cache entry was found and rebuilt" "$tmp/e3" && ok || { bad "truncated entry not rebuilt"; cat "$tmp/e3"; }
cmp -s "$tmp/o3" "$tmp/cpu.txt" && ok || bad "output after a rebuild differs"
[ "$(wc -c <"$entry")" -eq "$size" ] && ok || bad "rebuilt entry has another size"
# a flipped byte in the middle of the object is rebuilt (its bits
# inverted: writing a fixed value would change nothing where the byte
# already had it)
b=$(dd if="$entry" bs=1 skip=$((size / 2)) count=1 2>/dev/null | od -An -tu1 | tr -d ' ')
printf "\\$(printf %03o $((255 - b)))" | dd of="$entry" bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null
[ "$(dd if="$entry" bs=1 skip=$((size / 2)) count=1 2>/dev/null | od -An -tu1 | tr -d ' ')" -eq $((255 - b)) ] && ok || bad "the byte was not flipped"
run -v >"$tmp/o4" 2>"$tmp/e4" || bad "run after a flipped byte"
grep -q "corrupt cache entry was found and rebuilt" "$tmp/e4" && ok || bad "flipped entry not rebuilt"
cmp -s "$tmp/o4" "$tmp/cpu.txt" && ok || bad "output after a flip differs"
# two processes compiling the same model at once: both succeed, one entry
rm -rf "$HSAC_CACHE_DIR"
run -q >"$tmp/p1" 2>&1 & p1=$!
run -q >"$tmp/p2" 2>&1 & p2=$!
wait $p1; r1=$?; wait $p2; r2=$?
[ $r1 -eq 0 ] && [ $r2 -eq 0 ] && ok || bad "concurrent compiles failed ($r1, $r2)"
cmp -s "$tmp/p1" "$tmp/cpu.txt" && cmp -s "$tmp/p2" "$tmp/cpu.txt" && ok || bad "concurrent outputs differ"
[ "$(n)" -eq 1 ] && ok || bad "concurrent compiles left $(n) entries"
ls "$HSAC_CACHE_DIR" | grep -q tmp && bad "a temporary file was left" || ok
expect 0 "1 entry"                -- cache ls
expect 0 "removed"                -- cache clear
[ "$(n)" -eq 0 ] && ok || bad "cache clear left entries"
expect 2 "usage: hsac cache"      -- cache frob
# HSAC_NO_CACHE=1 writes nothing
rm -rf "$HSAC_CACHE_DIR"
HSAC_NO_CACHE=1 run -v >/dev/null 2>"$tmp/e5" || bad "run with HSAC_NO_CACHE"
[ ! -e "$HSAC_CACHE_DIR" ] || [ -z "$(ls -A "$HSAC_CACHE_DIR")" ] && ok || bad "HSAC_NO_CACHE wrote $(ls "$HSAC_CACHE_DIR")"
run --no-cache >/dev/null 2>&1 || bad "run --no-cache"
[ ! -e "$HSAC_CACHE_DIR" ] || [ -z "$(ls -A "$HSAC_CACHE_DIR")" ] && ok || bad "--no-cache wrote an entry"

# --- the CUDA backend without a GPU (codegen/cuda, docs/cuda.md) ---
expect 0 '__global__ void __launch_bounds__' -- ir --emit=cuda "$tiny"
expect 0 "hs::chunk_attention<"  -- ir --emit=cuda "$tiny"
expect 2 "give it with -o FILE"   -- ir --emit=cubin "$tiny"
expect 2 "--gpu-arch expects"     -- ir --emit=ptx --gpu-arch volta "$tiny"
expect 2 "--gpu-arch goes with"   -- ir --emit=cuda --gpu-arch sm_80 "$tiny"
if "$hsac" version | grep -q "NVRTC not available"; then
  echo "SKIPPED: NVRTC checks (this hsac was built without NVRTC)"
else
  expect 0 ".target sm_80"        -- ir --emit=ptx --gpu-arch sm_80 "$tiny"
  expect 0 "spill stores"         -- ir --emit=cubin --gpu-arch sm_90 "$tiny" -o "$tmp/k.cubin"
  [ -s "$tmp/k.cubin" ] && ok || bad "no CUBIN written"
fi
if "$hsac" version | grep -q "^GPU none"; then
  expect 1 "cannot start: no GPU"  -- run "$tiny" --weights "$tmp/w.st" --prompt x --backend cuda
else
  run --backend cuda >"$tmp/gpu.txt" 2>/dev/null || bad "run --backend cuda"
  cmp -s "$tmp/ref.txt" "$tmp/gpu.txt" && ok || bad "greedy text of cuda differs from ref"
fi
# hsac tune: without a GPU it says so and exits 1; under the emulator it
# runs its rounds, writes the database, and a run -v reads it; a malformed
# database is named with its line, by tune and by run
if "$hsac" version | grep -q "^GPU none"; then
  expect 1 "no GPU"                 -- tune "$tiny"
fi
expect 1 "cannot read"            -- tune "$tmp/missing.hsa"
expect 2 "hsac tune tunes the CUDA kernels" -- tune "$tiny" --backend cpu
expect 2 "--length expects"       -- tune "$tiny" --backend cuda-emu --length 0
expect 2 "--dry-run writes nothing" -- tune "$tiny" --backend cuda-emu --dry-run --tuning-db "$tmp/x.tsv"
expect 1 "no folder for the tuning database" -- tune "$tiny" --backend cuda-emu --tuning-db /proc/nonexistent/t.tsv
expect 2 "--tuning-db goes with --backend cuda" -- run "$tiny" --weights "$tmp/w.st" --prompt x --tuning-db "$tmp/x.tsv"
export HSAC_TUNING_DB="$tmp/tuning.tsv"
expect 0 "wrote [0-9]* entries to $tmp/tuning.tsv" -- tune "$tiny" --backend cuda-emu --length 40 --decode 2 --reps 1
grep -q "^emulator	host	-	emu.h	linear f32 in<=64 out<=64	" "$tmp/tuning.tsv" && ok || { bad "tuning database"; cat "$tmp/tuning.tsv"; }
expect 0 "tunable launches configured by $tmp/tuning.tsv" -- run "$tiny" --weights "$tmp/w.st" --prompt x --max-new 2 --backend cuda-emu -v
expect 0 "nothing written"        -- tune "$tiny" --backend cuda-emu --length 20 --decode 0 --reps 1 --dry-run
printf 'emulator\thost\t-\temu.h\tlinear f32 in<=64 out<=64\t64x64\tslow\t1\n' >>"$tmp/tuning.tsv"
cp "$tmp/tuning.tsv" "$tmp/tuning.bad"
n=$(wc -l <"$tmp/tuning.tsv")
expect 1 "tuning.tsv:$n: error: bad time" -- tune "$tiny" --backend cuda-emu --length 20 --reps 1
cmp -s "$tmp/tuning.tsv" "$tmp/tuning.bad" && ok || bad "tune replaced a malformed database"
expect 1 "tuning.tsv:$n: error: bad time" -- run "$tiny" --weights "$tmp/w.st" --prompt x --backend cuda-emu
expect 0 "default launch configurations (no tuning database)" -- run "$tiny" --weights "$tmp/w.st" --prompt x --max-new 2 --backend cuda-emu --tuning-db none -v
unset HSAC_TUNING_DB
# run --profile: every op's time, on any backend
expect 0 "hsac: profile: .* op entries"  -- run "$tiny" --weights "$tmp/w.st" --prompt x --max-new 2 --backend ref --profile
expect 0 "chunk_attention f32 d=16 chunk=16 k=4 heads/kv=4 weighted: nt128" -- run "$tiny" --weights "$tmp/w.st" --prompt "a longer prompt than one chunk of sixteen" --max-new 2 --backend cuda-emu --tuning-db none --profile
expect 0 "^GPU "                  -- version
# --cpu-math bf16: the arithmetic -v names (by what this CPU has), the ref
# rounding as it does, the forced AVX2 target's FMAs; what it refuses
expect 2 "--cpu-math expects f32 or bf16" -- run "$tiny" --weights "$tmp/w.st" --prompt x --cpu-math fp8
expect 1 "cannot keep them in f32" -- run "$tiny" --weights "$tmp/w.st" --prompt x --cpu-math bf16 --weights-dtype f32
expect 1 "the cuda backends' is --gpu-math" -- run "$tiny" --weights "$tmp/w.st" --prompt x --cpu-math bf16 --backend cuda-emu
expect 2 "--cpu-math goes with --emit" -- ir --cpu-math bf16 "$tiny"
expect 0 "linear math: bf16 inputs, f32 fma" -- ir --emit=mlir --cpu haswell --cpu-math bf16 "$tiny"
expect 0 "linear math: bf16 inputs" -- run "$tiny" --weights "$tmp/w.st" --prompt x --max-new 2 --cpu-math bf16 -v
expect 0 "linear math: bf16 inputs, f32 fma" -- run "$tiny" --weights "$tmp/w.st" --prompt x --max-new 2 --cpu-math bf16 --cpu haswell -v
expect 0 "bf16 math as the cpu backend" -- run "$tiny" --weights "$tmp/w.st" --prompt x --max-new 2 --cpu-math bf16 --backend ref -v
expect 2 "--gpu-math expects"     -- run "$tiny" --weights "$tmp/w.st" --prompt x --gpu-math fp8
# the AMX kernels lower and compile for a CPU with tiles on any machine
# (run only where the host has AMX): G = 16 (paper) and G = 4 (hsa_ramba)
for m in paper_swa_hsa hsa_ramba; do
  "$hsac" ir --emit=asm --cpu sapphirerapids --cpu-math bf16 "$src/examples/tiny/$m.hsa" \
    >"$tmp/spr.s" 2>"$tmp/spr.err" || { bad "ir --emit=asm --cpu sapphirerapids ($m)"; cat "$tmp/spr.err"; }
  grep -q "tdpbf16ps" "$tmp/spr.s" && grep -q "ldtilecfg" "$tmp/spr.s" && ok ||
    bad "sapphirerapids code for $m has no tile products"
done
# a forced target this CPU cannot run is refused, not run into an illegal
# instruction (what is refused depends on what the host has)
flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null)
case " $flags " in
  *" amx_bf16 "*) echo "  skipped: refusing a forced AMX target (this CPU has AMX)" ;;
  *" avx512_bf16 "*) expect 1 "uses AMX-BF16 tiles (bf16 math), which this CPU" -- run "$tiny" --weights "$tmp/w.st" --prompt x --cpu sapphirerapids --cpu-math bf16 ;;
  *" avx512f "*) expect 1 "uses AVX512-BF16 dot products (bf16 math), which this CPU" -- run "$tiny" --weights "$tmp/w.st" --prompt x --cpu cooperlake --cpu-math bf16 ;;
  *) HSAC_CPU=skylake-avx512 "$hsac" run "$tiny" --weights "$tmp/w.st" --prompt x >"$tmp/out" 2>&1; rc=$?
     [ "$rc" -eq 1 ] && grep -q "HSAC_CPU: code for the CPU 'skylake-avx512' uses AVX-512" "$tmp/out" && ok ||
       { bad "HSAC_CPU=skylake-avx512 on an AVX2 CPU: exit $rc"; cat "$tmp/out"; } ;;
esac
# f32 code for a CPU with AMX runs wherever AVX-512 does (no tiles in it)
case " $flags " in
  *" avx512f "*) expect 0 "target sapphirerapids (forced)" -- run "$tiny" --weights "$tmp/w.st" --prompt x --max-new 1 --cpu sapphirerapids -v ;;
  *) echo "  skipped: f32 code for sapphirerapids (this CPU has no AVX-512)" ;;
esac
run --backend cuda-emu --gpu-math bf16 -v >/dev/null 2>"$tmp/tc.err" || bad "run --gpu-math bf16"
grep -q "bf16 tensor-core (mma.sync) arithmetic" "$tmp/tc.err" && ok || { bad "--gpu-math bf16 -v"; cat "$tmp/tc.err"; }
# the tensor-core linears keep their matrices in bf16 on the device: fewer bytes than f32
run --backend cuda-emu -v >/dev/null 2>"$tmp/f32.err" || bad "run --backend cuda-emu -v"
w16=$(grep -o '[0-9.]* MiB of weights' "$tmp/tc.err" | cut -d' ' -f1)
w32=$(grep -o '[0-9.]* MiB of weights' "$tmp/f32.err" | cut -d' ' -f1)
awk -v a="$w16" -v b="$w32" 'BEGIN { exit !(a > 0 && a < 0.6 * b) }' && ok || bad "bf16 weights on the device: $w16 MiB, f32 $w32 MiB"
expect 0 "hs::linear_mma<"        -- ir --emit=cuda --gpu-math bf16 "$tiny"
run --backend cuda-emu -v >"$tmp/emu.txt" 2>"$tmp/emu.err" || { bad "run --backend cuda-emu"; cat "$tmp/emu.err"; }
cmp -s "$tmp/ref.txt" "$tmp/emu.txt" && ok || bad "greedy text of cuda-emu differs from ref"
grep -q "backend cuda-emu: the emulator (codegen/cuda/emu.h) on this CPU" "$tmp/emu.err" && ok || { bad "cuda-emu -v"; cat "$tmp/emu.err"; }
# history pages past --gpu-pages move to host memory; the text does not change
run --backend cuda-emu --gpu-pages 1K -v >"$tmp/pg.txt" 2>"$tmp/pg.err" || { bad "run --gpu-pages"; cat "$tmp/pg.err"; }
cmp -s "$tmp/ref.txt" "$tmp/pg.txt" && ok || bad "greedy text with --gpu-pages 1K differs from ref"
grep -q "pages\? moved to pinned host memory" "$tmp/pg.err" && ok || { bad "--gpu-pages -v"; cat "$tmp/pg.err"; }
expect 2 "--gpu-pages goes with --backend cuda" -- run "$tiny" --weights "$tmp/w.st" --prompt x --gpu-pages 1G
expect 2 "--gpu-pages expects a size"           -- run "$tiny" --weights "$tmp/w.st" --prompt x --backend cuda-emu --gpu-pages lots
# a broken C++ compiler for the emulator is reported, not hidden
export CXX=/nonexistent/c++
expect 1 "could not be run; set CXX" -- run "$tiny" --weights "$tmp/w.st" --prompt x --backend cuda-emu --no-cache -q
unset CXX
echo "backend_cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
