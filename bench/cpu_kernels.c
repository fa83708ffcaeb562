/* cpu_kernels.c - the CPU backend's kernels against the machine and a peer,
 * measured in one run so the ratios mean something on a noisy machine.
 *
 *   bench_cpu_kernels [--threads N] [--quick] [--only SECTION]
 *                     [--prefetch sparse|dense|attention] [MODEL.hsa ...]
 *
 * SECTION (gemm, gemm16, gemv, attention, attention4, joint, swa, encoder, scan) runs the
 * peaks and that section; `peaks` the peaks alone.  An unknown option or
 * section is an error (exit 2).
 *
 * 1. peaks: the fp32 FMA rate of one core (a JIT-compiled loop of
 *    independent vector FMAs) and the memory read bandwidth (a summing
 *    loop over 1 GiB, also JIT-compiled);
 * 2. GEMM: the linear kernel at every distinct [out, in] shape of each
 *    model, 512 rows (one prefill segment), against OpenBLAS's
 *    cblas_sgemm (loaded with dlopen from libopenblas0-pthread) with the
 *    same number of threads;
 * 2b. GEMM under bf16 math: the same shapes in f32 and with each bf16
 *    arithmetic the CPU has (f32 FMAs on rounded inputs, AVX512-BF16,
 *    AMX), in the same run;
 * 3. GEMV: the linear kernel at decode (one token), its one-row version
 *    against the prefill kernel called with one row and OpenBLAS's
 *    cblas_sgemv;
 * 4. the HSA sparse-attention layer (chunk_attention, S = 64, K = 8,
 *    d = 64, G = 16 query heads per KV head, stick-breaking weights), the
 *    selected chunks random among the eligible ones of a context of L
 *    tokens, chunk K/V read from the runtime's chunk pages; GFLOP/s over
 *    the queries of the last 4096 positions (the per-token work does not
 *    depend on L; the working set of K/V does);
 * 4b. the same layer with 4 query heads per KV head (16 query heads, 4 KV
 *    heads; the examples' G), f32, uniform and clustered selections;
 * 4c. the same layer with the joint merge (one softmax over every selected
 *    chunk's rows), f32 and under bf16 math;
 * 5. the landmark scan (retrieve at decode): one query row streaming over
 *    the landmarks of C chunks, against the bandwidth of step 1;
 * 6. sliding-window attention (d = 64, G = 16, windows 128, 512, 2048):
 *    the f32 kernel against the tile one under bf16 math (AMX, or
 *    AVX512-BF16 dot products), its K/V ring in
 *    f32 and in bf16 (--cache bf16);
 * 7. attention inside chunk rows (the chunk encoder's, bidirectional):
 *    64 chunk rows of 65 and 129 rows (a CLS row appended), G 16 and 4,
 *    the f32 kernel against the tile one under bf16 math.
 *
 * Prints Markdown tables; bench/cpu_backend.sh records them with the CPU's
 * model and flags in bench/RESULTS.md. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BENCH_NAME "bench_cpu_kernels"
#include "bench/bench_ir.h"
#include "codegen/cpu/jit.h"
#include "codegen/cpu/kernels.h"
#include "ir/ir.h"
#include "passes/pipeline.h"
#include "runtime/pool.h"
#include "util/half.h"


static cg_target target;
/* the bf16 kind of the attentions' tile kernels (cg_bf16_tiles: AMX, or
 * AVX512-BF16 dot products), 0 where the CPU has neither */
static int tiles;
static rt_pool *pool;
static int nthreads = 1;

typedef void (*kfn)(const int64_t *);

static kfn jit1(const char *text, const char *name, cg_jit **keep) {
  char err[2048];
  if (cg_jit_compile(text, &target, 1, NULL, keep, NULL, err, sizeof err)) die(name, err);
  kfn f = (kfn)cg_jit_lookup(*keep, name);
  if (!f) die(name, "not found");
  return f;
}

/* ---- peaks -------------------------------------------------------------- */

/* a[0] iterations of 12 independent FMA chains on vectors; the sum is
 * stored to a[1] so nothing is dead. */
static double fma_peak_gflops(void) {
  int vl = target.vec_bits / 32;
  char vt[32], text[8192];
  snprintf(vt, sizeof vt, "vector<%dxf32>", vl);
  size_t n = 0;
  n += (size_t)snprintf(text + n, sizeof text - n,
      "func.func @peak(%%a: !llvm.ptr) {\n"
      "  %%n = llvm.load %%a : !llvm.ptr -> i64\n"
      "  %%p1 = llvm.getelementptr %%a[1] : (!llvm.ptr) -> !llvm.ptr, i64\n"
      "  %%c0 = arith.constant 0 : i64\n  %%c1 = arith.constant 1 : i64\n"
      "  %%x = arith.constant dense<0.999> : %s\n  %%y = arith.constant dense<0.001> : %s\n",
      vt, vt);
  n += (size_t)snprintf(text + n, sizeof text - n, "  %%r:12 = scf.for %%i = %%c0 to %%n step %%c1 iter_args(");
  for (int i = 0; i < 12; i++)
    n += (size_t)snprintf(text + n, sizeof text - n, "%s%%s%d = %%y", i ? ", " : "", i);
  n += (size_t)snprintf(text + n, sizeof text - n, ") -> (");
  for (int i = 0; i < 12; i++) n += (size_t)snprintf(text + n, sizeof text - n, "%s%s", i ? ", " : "", vt);
  n += (size_t)snprintf(text + n, sizeof text - n, ") : i64 {\n");
  for (int i = 0; i < 12; i++)
    n += (size_t)snprintf(text + n, sizeof text - n, "    %%t%d = vector.fma %%s%d, %%x, %%y : %s\n", i, i, vt);
  n += (size_t)snprintf(text + n, sizeof text - n, "    scf.yield ");
  for (int i = 0; i < 12; i++) n += (size_t)snprintf(text + n, sizeof text - n, "%s%%t%d", i ? ", " : "", i);
  n += (size_t)snprintf(text + n, sizeof text - n, " : ");
  for (int i = 0; i < 12; i++) n += (size_t)snprintf(text + n, sizeof text - n, "%s%s", i ? ", " : "", vt);
  n += (size_t)snprintf(text + n, sizeof text - n, "\n  }\n  %%z0 = arith.addf %%r#0, %%r#1 : %s\n", vt);
  for (int i = 2; i < 12; i++)
    n += (size_t)snprintf(text + n, sizeof text - n, "  %%z%d = arith.addf %%z%d, %%r#%d : %s\n", i - 1, i - 2, i, vt);
  n += (size_t)snprintf(text + n, sizeof text - n,
      "  %%s = vector.reduction <add>, %%z10 : %s into f32\n"
      "  llvm.store %%s, %%p1 : f32, !llvm.ptr\n  return\n}\n", vt);
  cg_jit *j;
  kfn f = jit1(text, "peak", &j);
  int64_t a[2] = {1 << 20, 0};
  f(a); /* warm up, settle the clock */
  double best = 0;
  for (int rep = 0; rep < 5; rep++) {
    a[0] = 1 << 23;
    double t0 = now();
    f(a);
    double g = (double)a[0] * 12 * vl * 2 / (now() - t0) * 1e-9;
    if (g > best) best = g;
  }
  cg_jit_free(j);
  return best;
}

/* Sum of a[1] floats at a[0] (vector loads, 4 chains). */
static double bandwidth_gbs(float *buf, int64_t n) {
  int vl = target.vec_bits / 32;
  char text[4096];
  snprintf(text, sizeof text,
      "func.func @bw(%%a: !llvm.ptr) {\n"
      "  %%pp = llvm.load %%a : !llvm.ptr -> i64\n  %%p = llvm.inttoptr %%pp : i64 to !llvm.ptr\n"
      "  %%q = llvm.getelementptr %%a[1] : (!llvm.ptr) -> !llvm.ptr, i64\n"
      "  %%n = llvm.load %%q : !llvm.ptr -> i64\n"
      "  %%o = llvm.getelementptr %%a[2] : (!llvm.ptr) -> !llvm.ptr, i64\n"
      "  %%c0 = arith.constant 0 : i64\n  %%st = arith.constant %d : i64\n"
      "  %%z = arith.constant dense<0.0> : vector<%dxf32>\n"
      "  %%r = scf.for %%i = %%c0 to %%n step %%st iter_args(%%s = %%z) -> (vector<%dxf32>) : i64 {\n"
      "    %%g = llvm.getelementptr %%p[%%i] : (!llvm.ptr, i64) -> !llvm.ptr, f32\n"
      "    %%v = llvm.load %%g {alignment = 64 : i64} : !llvm.ptr -> vector<%dxf32>\n"
      "    %%t = arith.addf %%s, %%v fastmath<fast> : vector<%dxf32>\n"
      "    scf.yield %%t : vector<%dxf32>\n  }\n"
      "  %%x = vector.reduction <add>, %%r fastmath<fast> : vector<%dxf32> into f32\n"
      "  llvm.store %%x, %%o : f32, !llvm.ptr\n  return\n}\n",
      vl, vl, vl, vl, vl, vl, vl);
  cg_jit *j;
  kfn f = jit1(text, "bw", &j);
  int64_t a[3] = {(int64_t)(intptr_t)buf, n, 0};
  f(a);
  double best = 0;
  for (int rep = 0; rep < 3; rep++) {
    double t0 = now();
    f(a);
    double g = (double)n * 4 / (now() - t0) * 1e-9;
    if (g > best) best = g;
  }
  cg_jit_free(j);
  return best;
}

/* ---- a one-op graph and its kernel --------------------------------------- */


static kfn kernel_of(cg_kernel_req *req, const char *name, cg_kernel_info *info, cg_jit **keep) {
  char *text = NULL, err[1024];
  size_t len = 0;
  req->vec_bits = target.vec_bits;
  req->prefetch = target.prefetch;
  if (cg_cpu_emit(req, name, &text, &len, info, err, sizeof err)) die(name, err);
  char *mod = malloc(len + 32);
  snprintf(mod, len + 32, "module {\n%s}\n", text);
  kfn f = jit1(mod, name, keep);
  free(text);
  free(mod);
  return f;
}

typedef struct split {
  kfn f;
  const int64_t *a;
  float **scratch;
  bool rows;
} split;

static void run_part(void *ctx, int64_t b, int64_t e, int thread) {
  const split *s = ctx;
  int64_t a[CG_A_COUNT];
  memcpy(a, s->a, sizeof a);
  if (s->rows) {
    a[CG_A_R1] = a[CG_A_R0] + e;
    a[CG_A_R0] += b;
  } else {
    a[CG_A_N0] = b;
    a[CG_A_N1] = e;
  }
  a[CG_A_SCRATCH] = (int64_t)(intptr_t)s->scratch[thread];
  s->f(a);
}

/* The best of reps calls of kernel f (slots a) over its n rows, split over
 * the pool in ranges of at least grain rows, each thread with its own
 * zeroed scratch of scratch_floats (plus slack); seconds. */
static double time_rows(kfn f, const int64_t *a, int64_t scratch_floats, int64_t n,
                        int64_t grain, int reps) {
  float *scr[256] = {0};
  for (int t = 0; t < nthreads && t < 256; t++)
    scr[t] = calloc((size_t)scratch_floats + 64, sizeof(float));
  split s = {.f = f, .a = a, .scratch = scr, .rows = true};
  double best = 1e30;
  for (int r = 0; r < reps; r++) {
    double t0 = now();
    rt_pool_run(pool, n, grain, run_part, &s);
    double t = now() - t0;
    if (t < best) best = t;
  }
  for (int t = 0; t < nthreads && t < 256; t++) free(scr[t]);
  return best;
}

/* ---- GEMM against OpenBLAS ----------------------------------------------- */

/* Packed weights on a cache line, as the runtime allocates them. */
static void *packed_alloc(size_t bytes) {
  void *p = aligned_alloc(64, (bytes + 63) / 64 * 64);
  if (!p) die("packed weights", "out of memory");
  return p;
}

typedef void (*sgemm_fn)(int, int, int, int, int, int, float, const float *, int, const float *,
                         int, float, float *, int);

typedef void (*sgemv_fn)(int, int, int, int, float, const float *, int, const float *, int,
                         float, float *, int);

static void *blas;
static sgemm_fn sgemm;
static sgemv_fn sgemv;

static void load_blas(void) {
  blas = dlopen("libopenblas.so.0", RTLD_NOW);
  if (!blas) return;
  sgemm = (sgemm_fn)dlsym(blas, "cblas_sgemm");
  sgemv = (sgemv_fn)dlsym(blas, "cblas_sgemv");
  void (*set)(int) = (void (*)(int))dlsym(blas, "openblas_set_num_threads");
  if (set) set(nthreads);
}


/* The linear kernel [O, I] compiled as `name` (and name_1, its one-row
 * version) in o's graph. */
static kfn linear_kernel_math(one *o, int64_t O, int64_t I, const char *name,
                              cg_kernel_info *info, cg_jit **j, int bf16) {
  one_init(o);
  ir_value *x = val(o, "x", 2, (ir_dim[]){ir_seq_dim(0, 1), ir_const_dim(I)}, IR_F32);
  ir_value *w = val(o, "w", 2, (ir_dim[]){ir_const_dim(O), ir_const_dim(I)}, IR_F32);
  ir_op *op = emit_op(o, IR_LINEAR, (ir_value *[]){x, w}, 2, NULL, 0);
  cg_kernel_req req = {.op = op, .hist = {CG_H_SEG, CG_H_WEIGHT}, .bf16 = bf16};
  if (bf16 == CG_BF16_DOT || bf16 == CG_BF16_AMX) req.wtype = CG_W_BF16P;
  else if (bf16) req.wtype = CG_W_BF16;
  return kernel_of(&req, name, info, j);
}

static kfn linear_kernel(one *o, int64_t O, int64_t I, const char *name, cg_kernel_info *info,
                         cg_jit **j) {
  return linear_kernel_math(o, O, I, name, info, j, CG_BF16_OFF);
}

/* The slots of a linear kernel call: rows [0, M) of A [M, I] times the
 * packed weights P into C [M, O], every panel. */
static void linear_slots(int64_t *a, int64_t M, int64_t O, int64_t I, const float *A,
                         const float *P, float *C, const cg_kernel_info *info) {
  int64_t nsplit = info->nsplit;
  memset(a, 0, CG_A_COUNT * sizeof *a);
  cg_put_params(a, info);
  a[CG_A_R1] = M;
  a[CG_A_N1] = nsplit;
  a[CG_A_OUT0 + CG_V_SEG] = (int64_t)(intptr_t)C;
  a[CG_A_OUT0 + CG_V_STRIDE] = O;
  a[CG_A_IN0 + CG_V_SEG] = (int64_t)(intptr_t)A;
  a[CG_A_IN0 + CG_V_STRIDE] = I;
  a[CG_A_IN0 + CG_VIEW_SLOTS + CG_V_SEG] = (int64_t)(intptr_t)P;
}

static void bench_gemm(int64_t M, int64_t O, int64_t I, double peak) {
  one o;
  cg_kernel_info info;
  cg_jit *j;
  kfn f = linear_kernel(&o, O, I, "gemm", &info, &j);
  float *A = randbuf((size_t)(M * I), 1), *W = randbuf((size_t)(O * I), 2);
  float *C = calloc((size_t)(M * O), sizeof *C), *C2 = calloc((size_t)(M * O), sizeof *C2);
  float *P = packed_alloc(cg_linear_packed_floats(O, I, target.vec_bits) * sizeof *P);
  cg_linear_pack(W, O, I, target.vec_bits, P);
  int64_t a[CG_A_COUNT];
  linear_slots(a, M, O, I, A, P, C, &info);
  double flops = 2.0 * (double)M * (double)O * (double)I;
  int reps = (int)(2e9 / flops) + 3;
  double bbest = 1e30;
  /* OpenBLAS's threads spin for a while after a call: let them go to
   * sleep before timing hsac, or they take the cores from its pool */
  struct timespec pause = {1, 0};
  nanosleep(&pause, NULL);
  /* rows split as the runtime does; the scratch holds the partial sums of
   * a GEMM blocked over k */
  double best = time_rows(f, a, info.scratch_fixed, M, (M + nthreads - 1) / nthreads, reps);
  for (int r = 0; sgemm && r < reps; r++) {
    double t0 = now();
    /* row major, C = A W^T */
    sgemm(101, 111, 112, (int)M, (int)O, (int)I, 1.0f, A, (int)I, W, (int)I, 0.0f, C2, (int)O);
    double t = now() - t0;
    if (t < bbest) bbest = t;
  }
  double maxd = 0;
  if (sgemm)
    for (int64_t i = 0; i < M * O; i++) maxd = fmax(maxd, fabs((double)C[i] - C2[i]));
  double g = flops / best * 1e-9, gb = sgemm ? flops / bbest * 1e-9 : 0;
  printf("| %lld x %lld x %lld | %.1f | %.1f | %.2f | %.0f%% | %.1e |\n", (long long)M,
         (long long)O, (long long)I, g, gb, sgemm ? g / gb : 0.0, 100 * g / (peak * nthreads),
         maxd);
  fflush(stdout);
  free(A), free(W), free(C), free(C2), free(P);
  cg_jit_free(j);
  ut_arena_free(&o.arena);
}

/* ---- GEMM in bf16 (--cpu-math bf16) against the f32 kernel --------------- */

/* Seconds of the best of reps calls of kernel f on M rows split over the
 * pool as the runtime splits them (scratch per thread as info asks). */
static double time_linear(kfn f, const cg_kernel_info *info, int64_t M, int64_t O, int64_t I,
                          const float *A, const void *P, float *C, int reps) {
  int64_t a[CG_A_COUNT];
  linear_slots(a, M, O, I, A, P, C, info);
  return time_rows(f, a, info->scratch_fixed, M, (M + nthreads - 1) / nthreads, reps);
}

/* The linear kernel at [M, O, I] in f32 and under bf16 math with each
 * arithmetic the target has (the f32 FMAs on rounded inputs, AVX512-BF16
 * dot products, AMX tiles), in the same run; the bf16 results against
 * the f32 kernel's (normalized error: the rounding of the inputs). */
static void bench_gemm_bf16(int64_t M, int64_t O, int64_t I) {
  float *A = randbuf((size_t)(M * I), 1), *W = randbuf((size_t)(O * I), 2);
  float *C32 = calloc((size_t)(M * O), sizeof *C32), *C = calloc((size_t)(M * O), sizeof *C);
  double flops = 2.0 * (double)M * (double)O * (double)I;
  int reps = (int)(4e9 / flops) + 3;
  int best = cg_target_bf16(&target);
  double g[4] = {0}, err[4] = {0};
  for (int k = CG_BF16_OFF; k <= best; k++) {
    one o;
    cg_kernel_info info;
    cg_jit *j;
    char name[32];
    snprintf(name, sizeof name, "gemm_b%d", k);
    kfn f = linear_kernel_math(&o, O, I, name, &info, &j, k);
    bool pairs = k == CG_BF16_DOT || k == CG_BF16_AMX;
    size_t n = pairs ? cg_linear_bf16p_elems(O, I) : cg_linear_packed_floats(O, I, target.vec_bits);
    void *P = packed_alloc(n * (k ? 2 : 4));
    if (pairs) cg_linear_pack_bf16p(W, O, I, P);
    else if (k) cg_linear_pack_16(W, O, I, target.vec_bits, CG_W_BF16, P);
    else cg_linear_pack(W, O, I, target.vec_bits, P);
    float *out = k ? C : C32;
    g[k] = flops / time_linear(f, &info, M, O, I, A, P, out, reps) * 1e-9;
    if (k) {
      double num = 0, den = 0;
      for (int64_t i = 0; i < M * O; i++) {
        num += ((double)C[i] - C32[i]) * ((double)C[i] - C32[i]);
        den += (double)C32[i] * C32[i];
      }
      err[k] = sqrt(num / (den > 0 ? den : 1));
    }
    free(P);
    cg_jit_free(j);
    ut_arena_free(&o.arena);
  }
  printf("| %lld x %lld x %lld | %.1f |", (long long)M, (long long)O, (long long)I, g[0]);
  for (int k = 1; k < 4; k++) {
    if (k <= best) printf(" %.1f (%.2fx, err %.1e) |", g[k], g[k] / g[0], err[k]);
    else printf(" - |");
  }
  printf("\n");
  fflush(stdout);
  free(A), free(W), free(C), free(C32);
}

/* ---- GEMV: the linear kernel at decode ---------------------------------- */

/* One token through the linear kernel (M = 1, threads split the column
 * panels, as the runtime does at decode): its one-row version (NAME_1,
 * a GEMV over several panels at a time) against the prefill
 * kernel called with one row, and OpenBLAS's cblas_sgemv.  Rates are of
 * the weights read per call, in GB/s; best of batches of calls. */
static void bench_gemv(int64_t O, int64_t I) {
  one o;
  cg_kernel_info info;
  cg_jit *j;
  kfn f = linear_kernel(&o, O, I, "gemv", &info, &j);
  kfn f1 = (kfn)cg_jit_lookup(j, "gemv_1");
  if (!f1) die("gemv_1", "not found");
  float *A = randbuf((size_t)I, 1), *W = randbuf((size_t)(O * I), 2);
  float *C = calloc((size_t)O, sizeof *C), *C1 = calloc((size_t)O, sizeof *C1),
        *C2 = calloc((size_t)O, sizeof *C2);
  float *P = packed_alloc(cg_linear_packed_floats(O, I, target.vec_bits) * sizeof *P);
  cg_linear_pack(W, O, I, target.vec_bits, P);
  int64_t a[CG_A_COUNT], a1[CG_A_COUNT];
  linear_slots(a, 1, O, I, A, P, C, &info);
  linear_slots(a1, 1, O, I, A, P, C1, &info);
  float *scr[256] = {0};
  for (int t = 0; t < nthreads && t < 256; t++)
    scr[t] = calloc((size_t)info.scratch_fixed + 64, sizeof(float));
  split s = {.f = f, .a = a, .scratch = scr}, s1 = {.f = f1, .a = a1, .scratch = scr};
  double bytes = 4.0 * (double)O * (double)I;
  int batch = (int)(2e8 / bytes) + 5;
  double best[3] = {1e30, 1e30, 1e30};
  /* as the runtime splits panels: one contiguous range per thread */
  int64_t grain = (info.nsplit + nthreads - 1) / nthreads;
  struct timespec pause = {0, 300000000};
  for (int round = 0; round < 20; round++)
    for (int which = 0; which < 3; which++) {
      if (which == 2 && !sgemv) continue;
      if (which == 2) nanosleep(&pause, NULL);
      /* a first, untimed pass: after a pause the cores wake slowly */
      double t0 = 0;
      for (int pass = 0; pass < 2; pass++) {
        t0 = now();
        for (int r = 0; r < batch; r++) {
          if (which == 0) rt_pool_run(pool, info.nsplit, grain, run_part, &s1);
          else if (which == 1) rt_pool_run(pool, info.nsplit, grain, run_part, &s);
          else sgemv(101, 111, (int)O, (int)I, 1.0f, W, (int)I, A, 1, 0.0f, C2, 1);
        }
      }
      double t = (now() - t0) / batch;
      if (t < best[which]) best[which] = t;
      if (which == 2) nanosleep(&pause, NULL);
    }
  double maxd = 0;
  for (int64_t i = 0; i < O; i++) {
    maxd = fmax(maxd, fabs((double)C[i] - C1[i]));
    if (sgemv) maxd = fmax(maxd, fabs((double)C1[i] - C2[i]));
  }
  char blas_rate[32] = "-", blas_ratio[32] = "-";
  if (sgemv) {
    snprintf(blas_rate, sizeof blas_rate, "%.1f", bytes / best[2] * 1e-9);
    snprintf(blas_ratio, sizeof blas_ratio, "%.2f", best[2] / best[0]);
  }
  printf("| %lld x %lld | %.1f | %.1f | %.2f | %s | %s | %.1e |\n", (long long)O, (long long)I,
         bytes / best[0] * 1e-9, bytes / best[1] * 1e-9, best[1] / best[0], blas_rate,
         blas_ratio, maxd);
  fflush(stdout);
  free(A), free(W), free(C), free(C1), free(C2), free(P);
  for (int t = 0; t < 256; t++) free(scr[t]);
  cg_jit_free(j);
  ut_arena_free(&o.arena);
}

/* ---- the HSA sparse-attention layer -------------------------------------- */

/* Rewrites n floats as n bf16 numbers packed at the start of the same
 * buffer (a history page of bf16 rows). */
static void pack_bf16_rows(float *p, size_t n) {
  uint16_t *h = (uint16_t *)p;
  for (size_t i = 0; i < n; i++) h[i] = ut_f32_to_bf16(p[i]);
}

/* GFLOP/s of the layer at context L, f32 or (bf16 = tiles) on AMX tiles
 * or their vdpbf16ps form, with chunk pages of bf16 rows (pages16: a chunk memory kept in
 * bf16, which the f32 kernel widens and the AMX one reads as it is) or
 * f32, selections (kind) uniform (hsa_selection, 0) or clustered
 * (hsa_selection_clustered, 1), the same for every KV head or (kind + 2)
 * each head's chunk numbers rotated by 7919 h modulo its eligible chunks,
 * as models whose KV heads retrieve on their own (`groups = kv`) select;
 * *tps: query tokens per second; *kvb: f32
 * K/V bytes per query token when each distinct chunk of a block of
 * CG_ATTN_TB tokens is read once (the f32 kernel's reads). */
static double sparse_attention_gflops_hk(int64_t L, int bf16, bool pages16, int kind,
                                         int64_t Hk, bool joint, double *tps, double *kvb) {
  bool clustered = kind & 1, per_head = kind & 2;
  enum { S = 64, K = 8, d = 64, Hq = 16, Lq = 4096 };
  int64_t C = L / S;
  one o;
  one_init(&o);
  ir_dim seq = ir_seq_dim(0, 1), ch = ir_seq_dim(0, S);
  ir_value *q = val(&o, "q", 3, (ir_dim[]){seq, ir_const_dim(Hq), ir_const_dim(d)}, IR_F32);
  ir_value *kv = val(&o, "k", 4, (ir_dim[]){ch, ir_const_dim(S), ir_const_dim(Hk), ir_const_dim(d)}, IR_F32);
  ir_value *I = val(&o, "i", 3, (ir_dim[]){seq, ir_const_dim(Hk), ir_const_dim(K)}, IR_I32);
  ir_value *W = val(&o, "w", 3, (ir_dim[]){seq, ir_const_dim(Hk), ir_const_dim(K)}, IR_F32);
  ir_op *op = emit_op(&o, IR_CHUNK_ATTENTION, (ir_value *[]){q, kv, kv, I, W}, 5,
                      (ir_attr[]){ir_int_attr("softmax_plus", 0),
                                  ir_str_attr("merge", joint ? "joint" : "weighted")}, 2);
  cg_kernel_req req = {.op = op,
                       .hist = {CG_H_SEG, CG_H_PAGES, CG_H_PAGES, CG_H_SEG, CG_H_SEG},
                       .row_elems = {Hq * d, S * Hk * d, S * Hk * d, Hk * K, Hk * K},
                       .hist16 = {false, pages16, pages16},
                       .bf16 = bf16};
  cg_kernel_info info;
  cg_jit *j;
  kfn f = kernel_of(&req, bf16 ? "hsa_amx" : "hsa", &info, &j);
  /* chunk pages: the layout of the runtime's chunk memory */
  int64_t npages = (C + CG_PAGE_ROWS - 1) / CG_PAGE_ROWS;
  float **pages = calloc((size_t)npages, sizeof *pages);
  for (int64_t p = 0; p < npages; p++) {
    pages[p] = randbuf((size_t)CG_PAGE_ROWS * S * Hk * d, (uint64_t)p + 7);
    if (pages16) /* the same numbers in bf16, in the first half */
      pack_bf16_rows(pages[p], (size_t)CG_PAGE_ROWS * S * Hk * d);
  }
  float *Q = randbuf((size_t)(Lq * Hq * d), 3), *O = calloc((size_t)(Lq * Hq * d), sizeof *O);
  int32_t *sel = malloc((size_t)(Lq * Hk * K) * sizeof *sel);
  float *wt = malloc((size_t)(Lq * Hk * K) * sizeof *wt);
  /* (the generator's selection for every KV head, or rotated per head:
   * each head's rows, which makes K entries per token) */
  {
    int32_t *s1 = malloc((size_t)(Lq * K) * sizeof *s1);
    float *w1 = malloc((size_t)(Lq * K) * sizeof *w1);
    if (clustered) hsa_selection_clustered(L - Lq, Lq, S, K, s1, w1);
    else hsa_selection(L - Lq, Lq, S, K, s1, w1);
    for (int64_t t = 0; t < Lq; t++)
      for (int64_t h = 0; h < Hk; h++)
        for (int64_t k = 0; k < K; k++) {
          int32_t c = s1[t * K + k], own = (int32_t)((L - Lq + t) / S);
          if (per_head && c >= 0) c = (int32_t)((c + 7919 * h) % own);
          sel[(t * Hk + h) * K + k] = c, wt[(t * Hk + h) * K + k] = w1[t * K + k];
        }
    free(s1);
    free(w1);
  }
  int64_t ndistinct = 0; /* (one KV head's: the table reports it for Hk 1) */
  for (int64_t b = 0; b < Lq && Hk == 1; b += CG_ATTN_TB)
    for (int64_t i = b * K; i < (b + CG_ATTN_TB) * K && i < Lq * K; i++) {
      bool seen = sel[i] < 0;
      for (int64_t j = b * K; j < i && !seen; j++) seen = sel[j] == sel[i];
      ndistinct += !seen;
    }
  *kvb = (double)ndistinct / Lq * S * d * 2 * 4;
  int64_t a[CG_A_COUNT] = {0};
  int64_t t0r = L - Lq;
  a[CG_A_R0] = t0r;
  a[CG_A_R1] = L;
  a[CG_A_N0] = 0;
  a[CG_A_N1] = info.nsplit;
  cg_put_params(a, &info);
  a[CG_A_T1] = L;
  a[CG_A_OUT0 + CG_V_SEG] = (int64_t)(intptr_t)O;
  a[CG_A_OUT0 + CG_V_R0] = t0r;
  a[CG_A_OUT0 + CG_V_STRIDE] = Hq * d;
  int in = CG_A_IN0;
  a[in + CG_V_SEG] = (int64_t)(intptr_t)Q, a[in + CG_V_R0] = t0r, a[in + CG_V_STRIDE] = Hq * d;
  for (int v = 1; v <= 2; v++) {
    int b = in + v * CG_VIEW_SLOTS;
    /* every chunk is history: segment rows start past the last chunk */
    a[b + CG_V_SEG] = 0, a[b + CG_V_R0] = C, a[b + CG_V_STRIDE] = S * Hk * d;
    a[b + CG_V_HIST] = (int64_t)(intptr_t)pages, a[b + CG_V_KEEP] = -1;
  }
  a[in + 3 * CG_VIEW_SLOTS + CG_V_SEG] = (int64_t)(intptr_t)sel;
  a[in + 3 * CG_VIEW_SLOTS + CG_V_R0] = t0r, a[in + 3 * CG_VIEW_SLOTS + CG_V_STRIDE] = Hk * K;
  a[in + 4 * CG_VIEW_SLOTS + CG_V_SEG] = (int64_t)(intptr_t)wt;
  a[in + 4 * CG_VIEW_SLOTS + CG_V_R0] = t0r, a[in + 4 * CG_VIEW_SLOTS + CG_V_STRIDE] = Hk * K;
  double flops = (double)Lq * Hq * K * (4.0 * S * d);
  double best = time_rows(f, a, info.scratch_fixed, Lq, 16, 5);
  for (int64_t p = 0; p < npages; p++) free(pages[p]);
  free(pages), free(Q), free(O), free(sel), free(wt);
  cg_jit_free(j);
  ut_arena_free(&o.arena);
  *tps = (double)Lq / best;
  return flops / best * 1e-9;
}

/* The rows of a table of the layer with Hk KV heads (joint: the joint
 * merge) at 4K and 64K tokens, uniform and clustered selections: f32
 * GFLOP/s, its share of peak_all (0: no such column), and where the CPU
 * has bf16 tiles their GFLOP/s and the ratio. */
static void sparse_f32_bf16_rows(int64_t Hk, bool joint, double peak_all) {
  static const int64_t Ls[] = {4096, 65536};
  static const char *const kinds[] = {"uniform", "clustered", "uniform, own per head",
                                      "clustered, own per head"};
  for (int i = 0; i < 2; i++)
    for (int c = 0; c < (Hk > 1 ? 4 : 2); c++) {
      double tps, kvb;
      double g = sparse_attention_gflops_hk(Ls[i], CG_BF16_OFF, false, c, Hk, joint, &tps, &kvb);
      printf("| %lldK | %s | %.1f |", (long long)(Ls[i] / 1024), kinds[c], g);
      if (peak_all > 0) printf(" %.0f%% |", 100 * g / peak_all);
      if (tiles) {
        double g16 = sparse_attention_gflops_hk(Ls[i], tiles, false, c, Hk, joint, &tps, &kvb);
        printf(" %.1f | **%.2fx** |\n", g16, g16 / g);
      } else {
        printf(" - | - |\n");
      }
      fflush(stdout);
    }
}

static double sparse_attention_gflops(int64_t L, int bf16, bool pages16, bool clustered,
                                      double *tps, double *kvb) {
  return sparse_attention_gflops_hk(L, bf16, pages16, clustered, 1, false, tps, kvb);
}

/* The layer in f32 (chunk pages in f32, then in bf16) and, on a CPU with
 * AMX, under bf16 math (the same two), in one run; the rate at which the
 * f32 kernel reads K and V (64 rows of 64 floats each per distinct chunk
 * of a block of tokens) against the memory read rate measured in the same
 * run. */
static void bench_sparse_attention(int64_t L, bool clustered, double peak, double bw) {
  double tps, tps16 = 0, tpp = 0, tp32, kvb;
  double g = sparse_attention_gflops(L, CG_BF16_OFF, false, clustered, &tps, &kvb);
  double g32 = sparse_attention_gflops(L, CG_BF16_OFF, true, clustered, &tp32, &kvb);
  double g16 = 0, gp = 0;
  if (tiles) {
    g16 = sparse_attention_gflops(L, tiles, false, clustered, &tps16, &kvb);
    gp = sparse_attention_gflops(L, tiles, true, clustered, &tpp, &kvb);
  }
  double kv = tps * kvb * 1e-9;
  printf("| %lldK | %.1f | %.0f%% | %.0f | %.1f (%.0f%%) | %.1f | **%.2fx** |",
         (long long)(L / 1024), g, 100 * g / (peak * nthreads), tps, kv, 100 * kv / bw, g32,
         g32 / g);
  if (tiles)
    printf(" %.1f | %.0f | **%.2fx** | %.1f | **%.2fx** |\n", g16, tps16, g16 / g, gp, gp / g);
  else printf(" - | - | - | - | - |\n");
  fflush(stdout);
}

/* ---- sliding-window attention ------------------------------------------------ */

/* GFLOP/s of the windowed attention (window W, d 64, G 16 query heads per
 * KV head) over Lq query tokens that follow Lh earlier ones: keys of the
 * segment from its rows, earlier ones from a ring of W rows (the runtime's
 * layout), f32 or bf16 (ring16: the AMX kernel reads its rows in place,
 * the f32 one widens those it reads); f32 arithmetic (the packed kernel)
 * or bf16 = tiles (AMX, or AVX512-BF16).  Counts 4 W d flops per query head and
 * token. */
static double window_attention_gflops(int64_t W, int bf16, bool ring16, int64_t Lq) {
  enum { d = 64, Hq = 16, Hk = 1 };
  int64_t Lh = W, t0 = Lh;
  one o;
  one_init(&o);
  ir_dim seq = ir_seq_dim(0, 1);
  ir_value *q = val(&o, "q", 3, (ir_dim[]){seq, ir_const_dim(Hq), ir_const_dim(d)}, IR_F32);
  ir_value *k = val(&o, "k", 3, (ir_dim[]){seq, ir_const_dim(Hk), ir_const_dim(d)}, IR_F32);
  ir_op *op = emit_op(&o, IR_ATTENTION, (ir_value *[]){q, k, k}, 3,
                      (ir_attr[]){ir_int_attr("causal", 1), ir_int_attr("window", W)}, 2);
  cg_kernel_req req = {.op = op, .hist = {CG_H_SEG, CG_H_RING, CG_H_RING},
                       .row_elems = {Hq * d, Hk * d, Hk * d}, .bf16 = bf16};
  cg_kernel_info info;
  cg_jit *j;
  kfn f = kernel_of(&req, bf16 ? "swa_amx" : "swa", &info, &j);
  float *Q = randbuf((size_t)(Lq * Hq * d), 3), *Kseg = randbuf((size_t)(Lq * Hk * d), 5);
  float *ring = randbuf((size_t)(W * Hk * d), 9), *O = calloc((size_t)(Lq * Hq * d), sizeof *O);
  if (ring16) pack_bf16_rows(ring, (size_t)(W * Hk * d));
  int64_t a[CG_A_COUNT] = {0};
  a[CG_A_R0] = t0;
  a[CG_A_R1] = t0 + Lq;
  a[CG_A_N0] = 0;
  a[CG_A_N1] = info.nsplit;
  a[CG_A_RING16] = ring16 ? 6 : 0;
  cg_put_params(a, &info);
  a[CG_A_T1] = t0 + Lq;
  a[CG_A_OUT0 + CG_V_SEG] = (int64_t)(intptr_t)O;
  a[CG_A_OUT0 + CG_V_R0] = t0;
  a[CG_A_OUT0 + CG_V_STRIDE] = Hq * d;
  int in = CG_A_IN0;
  a[in + CG_V_SEG] = (int64_t)(intptr_t)Q, a[in + CG_V_R0] = t0, a[in + CG_V_STRIDE] = Hq * d;
  for (int v = 1; v <= 2; v++) {
    int b = in + v * CG_VIEW_SLOTS;
    a[b + CG_V_SEG] = (int64_t)(intptr_t)Kseg, a[b + CG_V_R0] = t0, a[b + CG_V_STRIDE] = Hk * d;
    a[b + CG_V_HIST] = (int64_t)(intptr_t)ring, a[b + CG_V_KEEP] = W;
  }
  double best = time_rows(f, a, info.scratch_fixed + info.scratch_per_t1 * (t0 + Lq), Lq, 32,
                          Lq == 1 ? 400 : 5);
  free(Q), free(Kseg), free(ring), free(O);
  cg_jit_free(j);
  ut_arena_free(&o.arena);
  return (double)Lq * Hq * 4.0 * (double)W * d / best * 1e-9;
}

/* Prefill (4,096 tokens after a ring of W) or decode (one token: decode,
 * reported in microseconds per token). */
static void bench_window_attention(int64_t W, double peak, bool decode) {
  int64_t Lq = decode ? 1 : 4096;
  double g = window_attention_gflops(W, CG_BF16_OFF, false, Lq);
  double g16 = window_attention_gflops(W, CG_BF16_OFF, true, Lq);
  /* one token: 4 W d G flops */
  double us = 4.0 * (double)W * 64 * 16 * 1e-3;
  if (decode)
    printf("| %lld | %.2f | %.2f | **%.2fx** |", (long long)W, us / g, us / g16, g16 / g);
  else
    printf("| %lld | %.1f | %.0f%% | %.1f | **%.2fx** |", (long long)W, g,
           100 * g / (peak * nthreads), g16, g16 / g);
  if (tiles) {
    double ga = window_attention_gflops(W, tiles, false, Lq);
    double gr = window_attention_gflops(W, tiles, true, Lq);
    if (decode) printf(" %.2f | %.2f | **%.2fx** |\n", us / ga, us / gr, gr / g);
    else printf(" %.1f | **%.2fx** | %.1f | **%.2fx** |\n", ga, ga / g, gr, gr / g);
  } else {
    printf(" - | - | - |%s\n", decode ? "" : " - |");
  }
  fflush(stdout);
}

/* ---- attention inside chunk rows (the chunk encoder's) -------------------- */

/* Bidirectional attention inside C = 64 chunk rows of P rows each (4,096
 * tokens of chunks of P - 1 with a CLS row), d 64, 16 query heads and Hk
 * KV heads, in f32 or under bf16 math (tiles); GFLOP/s. */
static double rows_attention_gflops(int64_t P, int64_t Hk, int bf16) {
  enum { d = 64, Hq = 16, C = 64 };
  one o;
  one_init(&o);
  ir_dim ch = ir_seq_dim(0, P - 1);
  ir_value *q = val(&o, "q", 4,
                    (ir_dim[]){ch, ir_const_dim(P), ir_const_dim(Hq), ir_const_dim(d)}, IR_F32);
  ir_value *k = val(&o, "k", 4,
                    (ir_dim[]){ch, ir_const_dim(P), ir_const_dim(Hk), ir_const_dim(d)}, IR_F32);
  ir_op *op = emit_op(&o, IR_ATTENTION, (ir_value *[]){q, k, k}, 3,
                      (ir_attr[]){ir_int_attr("causal", 0), ir_int_attr("window", 0)}, 2);
  cg_kernel_req req = {.op = op, .hist = {CG_H_SEG, CG_H_SEG, CG_H_SEG},
                       .row_elems = {P * Hq * d, P * Hk * d, P * Hk * d}, .bf16 = bf16};
  cg_kernel_info info;
  cg_jit *j;
  kfn f = kernel_of(&req, bf16 ? "rows_attention_amx" : "rows_attention", &info, &j);
  float *Q = randbuf((size_t)(C * P * Hq * d), 3), *Kv = randbuf((size_t)(C * P * Hk * d), 5);
  float *O = calloc((size_t)(C * P * Hq * d), sizeof *O);
  int64_t a[CG_A_COUNT] = {0};
  a[CG_A_R1] = C;
  a[CG_A_N1] = info.nsplit;
  cg_put_params(a, &info);
  a[CG_A_T1] = C;
  a[CG_A_OUT0 + CG_V_SEG] = (int64_t)(intptr_t)O;
  a[CG_A_OUT0 + CG_V_STRIDE] = P * Hq * d;
  int in = CG_A_IN0;
  a[in + CG_V_SEG] = (int64_t)(intptr_t)Q, a[in + CG_V_STRIDE] = P * Hq * d;
  for (int v = 1; v <= 2; v++) {
    int b = in + v * CG_VIEW_SLOTS;
    a[b + CG_V_SEG] = (int64_t)(intptr_t)Kv, a[b + CG_V_STRIDE] = P * Hk * d;
  }
  double best = time_rows(f, a, info.scratch_fixed + info.scratch_per_t1 * C, C, 1, 5);
  free(Q), free(Kv), free(O);
  cg_jit_free(j);
  ut_arena_free(&o.arena);
  return (double)C * P * P * Hq * 4.0 * d / best * 1e-9;
}

static void bench_rows_attention(int64_t P, int64_t Hk, double peak) {
  double g = rows_attention_gflops(P, Hk, CG_BF16_OFF);
  printf("| %lld | %lld | %.1f | %.0f%% |", (long long)P, (long long)(16 / Hk), g,
         100 * g / (peak * nthreads));
  if (tiles) {
    double g16 = rows_attention_gflops(P, Hk, tiles);
    printf(" %.1f | **%.2fx** |\n", g16, g16 / g);
  } else {
    printf(" - | - |\n");
  }
  fflush(stdout);
}

/* ---- the landmark scan at decode ------------------------------------------ */

static void bench_scan(int64_t C, double bw) {
  enum { S = 64, G = 1, dr = 64, K = 8 };
  one o;
  one_init(&o);
  ir_dim seq = ir_seq_dim(0, 1), ch = ir_seq_dim(0, S);
  ir_value *q = val(&o, "q", 3, (ir_dim[]){seq, ir_const_dim(G), ir_const_dim(dr)}, IR_F32);
  ir_value *l = val(&o, "l", 2, (ir_dim[]){ch, ir_const_dim(dr)}, IR_F32);
  ir_op *sc = emit_op(&o, IR_LANDMARK_SCORES, (ir_value *[]){q, l}, 2,
                      (ir_attr[]){ir_int_attr("chunk", S), ir_str_attr("per", "token"),
                                  ir_int_attr("exclude_window", 0)}, 3);
  ir_op *tk = emit_op(&o, IR_TOPK, (ir_value *[]){sc->out[0]}, 1, (ir_attr[]){ir_int_attr("k", K)}, 1);
  cg_kernel_req req = {.op = tk, .scores = sc, .hist = {CG_H_SEG, CG_H_PAGES}, .row_elems = {G * dr, dr}};
  cg_kernel_info info;
  cg_jit *j;
  kfn f = kernel_of(&req, "scan", &info, &j);
  int64_t npages = (C + CG_PAGE_ROWS - 1) / CG_PAGE_ROWS;
  float **pages = calloc((size_t)npages, sizeof *pages);
  for (int64_t p = 0; p < npages; p++) pages[p] = randbuf((size_t)CG_PAGE_ROWS * dr, (uint64_t)p + 5);
  float *Q = randbuf(G * dr, 4), *scr = malloc((size_t)(info.scratch_fixed + 64) * sizeof(float));
  int32_t oi[G * K];
  float ov[G * K];
  int64_t t = C * S; /* the token right after the last chunk */
  int64_t a[CG_A_COUNT] = {0};
  a[CG_A_R0] = t, a[CG_A_R1] = t + 1, a[CG_A_T1] = t + 1, a[CG_A_C] = C;
  cg_put_params(a, &info);
  a[CG_A_SCRATCH] = (int64_t)(intptr_t)scr;
  a[CG_A_OUT0 + CG_V_SEG] = (int64_t)(intptr_t)oi, a[CG_A_OUT0 + CG_V_R0] = t;
  a[CG_A_OUT1 + CG_V_SEG] = (int64_t)(intptr_t)ov, a[CG_A_OUT1 + CG_V_R0] = t;
  a[CG_A_IN0 + CG_V_SEG] = (int64_t)(intptr_t)Q, a[CG_A_IN0 + CG_V_R0] = t;
  int b = CG_A_IN0 + CG_VIEW_SLOTS;
  a[b + CG_V_R0] = C, a[b + CG_V_STRIDE] = dr, a[b + CG_V_HIST] = (int64_t)(intptr_t)pages;
  a[b + CG_V_KEEP] = -1;
  f(a);
  double best = 1e30;
  for (int rep = 0; rep < 5; rep++) {
    double t0 = now();
    f(a);
    double tt = now() - t0;
    if (tt < best) best = tt;
  }
  double gbs = (double)C * dr * 4 / best * 1e-9;
  printf("| %lld chunks (%lldM tokens) | %.2f ms | %.1f GB/s | %.0f%% |\n", (long long)C,
         (long long)(C * S >> 20), best * 1e3, gbs, 100 * gbs / bw);
  fflush(stdout);
  for (int64_t p = 0; p < npages; p++) free(pages[p]);
  free(pages), free(Q), free(scr);
  cg_jit_free(j);
  ut_arena_free(&o.arena);
}

/* The distinct [out, in] shapes of a model's linear ops. */
static int model_shapes(const char *path, int64_t (*shapes)[2], int cap) {
  hsac_compilation c;
  hsac_init(&c);
  int n = 0;
  if (hsac_compile(&c, path, NULL, 0, HSAC_STAGE_IR) != HSAC_OK) die(path, "does not compile");
  for (ir_op *op = c.graph->first; op; op = op->next) {
    if (op->code != IR_LINEAR) continue;
    int64_t O = op->in[1]->type.dims[0].n, I = op->in[1]->type.dims[1].n;
    bool seen = false;
    for (int i = 0; i < n && !seen; i++) seen = shapes[i][0] == O && shapes[i][1] == I;
    if (!seen && n < cap) shapes[n][0] = O, shapes[n][1] = I, n++;
  }
  hsac_free(&c);
  return n;
}

/* fn at every distinct [out, in] shape of each model (a row naming the
 * model first, in a table of ncols columns), or at 1024 x 1024. */
typedef void (*shape_fn)(int64_t O, int64_t I, double peak);
static void each_shape(const char *const *models, int nm, int ncols, shape_fn fn, double peak) {
  for (int mi = 0; mi < nm; mi++) {
    int64_t shapes[32][2];
    int ns = model_shapes(models[mi], shapes, 32);
    printf("| **%s** |", models[mi]);
    for (int c = 1; c < ncols; c++) printf(" |");
    printf("\n");
    for (int i = 0; i < ns; i++) fn(shapes[i][0], shapes[i][1], peak);
  }
  if (!nm) fn(1024, 1024, peak);
}

/* 512 rows: one prefill segment */
static void gemm_at(int64_t O, int64_t I, double peak) { bench_gemm(512, O, I, peak); }
static void gemm16_at(int64_t O, int64_t I, double peak) {
  (void)peak;
  bench_gemm_bf16(512, O, I);
}
static void gemv_at(int64_t O, int64_t I, double peak) {
  (void)peak;
  bench_gemv(O, I);
}

/* --only's sections, in the order they run ("peaks": the peaks alone) */
static const char *const sections[] = {"peaks",      "gemm",  "gemm16", "gemv",    "attention",
                                       "attention4", "joint", "swa",    "encoder", "scan"};
enum { NSECTIONS = sizeof sections / sizeof *sections };

static void usage(FILE *f) {
  fputs("usage: bench_cpu_kernels [--threads N] [--quick] [--only SECTION] "
        "[--prefetch sparse|dense|attention] [MODEL.hsa ...] (up to 8 models)\nSECTION:", f);
  for (int i = 0; i < NSECTIONS; i++) fprintf(f, "%s %s", i ? "," : "", sections[i]);
  fputs(" (peaks: the peaks alone)\n--prefetch: the sparse kernels' prefetch density "
        "(default: the target's; attention: dense in the sparse attention, sparse in the "
        "landmark scan)\n", f);
}

int main(int argc, char **argv) {
  bool quick = false;
  const char *only = NULL, *pf = NULL;
  const char *models[8];
  int nm = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--threads") && i + 1 < argc) nthreads = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--quick")) quick = true;
    else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
    else if (!strcmp(argv[i], "--prefetch") && i + 1 < argc) pf = argv[++i];
    else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
      usage(stdout);
      return 0;
    } else if (argv[i][0] == '-' || nm == 8) {
      fprintf(stderr, "bench_cpu_kernels: %s: %s\n", argv[i],
              argv[i][0] == '-' ? "unknown option, or one without its value" : "more than 8 models");
      usage(stderr);
      return 2;
    } else models[nm++] = argv[i];
  }
  bool known = !only;
  for (int i = 0; only && i < NSECTIONS; i++) known |= !strcmp(only, sections[i]);
  if (!known) {
    fprintf(stderr, "bench_cpu_kernels: --only %s: no such section\n", only);
    usage(stderr);
    return 2;
  }
  if (pf && strcmp(pf, "sparse") && strcmp(pf, "dense") && strcmp(pf, "attention")) {
    fprintf(stderr, "bench_cpu_kernels: --prefetch %s: expects sparse, dense or attention\n",
            pf);
    return 2;
  }
  char err[1024];
  if (cg_target_init(&target, getenv("HSAC_CPU"), err, sizeof err)) die("target", err);
  if (pf)
    target.prefetch = !strcmp(pf, "dense")       ? CG_PF_DENSE
                      : !strcmp(pf, "attention") ? CG_PF_DENSE_ATTN
                                                 : CG_PF_SPARSE;
  if (target.amx && cg_amx_permit(err, sizeof err)) die("AMX", err);
  if (cg_bf16_tiles(cg_target_bf16(&target))) tiles = cg_target_bf16(&target);
  const char *tn = target.amx ? "AMX" : tiles ? "AVX512-BF16" : "AMX or AVX512-BF16";
  pool = rt_pool_create(nthreads);
  nthreads = rt_pool_threads(pool);
  load_blas();
  printf("target: %s, %d-bit vectors, %s prefetches; threads: %d\n\n", target.cpu,
         target.vec_bits,
         target.prefetch == CG_PF_DENSE        ? "dense"
         : target.prefetch == CG_PF_DENSE_ATTN ? "dense (sparse attention) and sparse (scan)"
                                               : "sparse",
         nthreads);
  double peak = fma_peak_gflops();
  int64_t nbw = quick ? (64 << 20) / 4 : (1024 << 20) / 4;
  float *buf = randbuf((size_t)nbw, 11);
  double bw = bandwidth_gbs(buf, nbw);
  free(buf);
  printf("| peak | value |\n|---|---|\n| fp32 FMA, one core | %.1f GFLOP/s |\n"
         "| memory read, one core | %.1f GB/s |\n\n", peak, bw);
#define SECTION(name) if (!only || !strcmp(only, name))
  SECTION("gemm") {
  printf("### GEMM (linear kernel) vs OpenBLAS sgemm, %d thread(s)\n\n"
         "| M x N x K | hsac GFLOP/s | OpenBLAS GFLOP/s | hsac / OpenBLAS | of FMA peak | max abs diff |\n"
         "|---|---|---|---|---|---|\n", nthreads);
  each_shape(models, nm, 6, gemm_at, peak);
  }
  SECTION("gemm16") {
  printf("\n### GEMM under bf16 math (--cpu-math bf16) against f32, %d thread(s)\n\n"
         "GFLOP/s; in brackets the ratio to the f32 kernel and the normalized error\n"
         "against it (the inputs' rounding to bf16).\n\n"
         "| M x N x K | f32 | bf16, f32 FMAs | bf16, AVX512-BF16 | bf16, AMX |\n"
         "|---|---|---|---|---|\n", nthreads);
  each_shape(models, nm, 5, gemm16_at, peak);
  }
  SECTION("gemv") {
  printf("\n### GEMV (linear kernel at decode, one token) vs OpenBLAS sgemv, %d thread(s)\n\n"
         "Weights read per call, GB/s (small matrices are read from cache).\n\n"
         "| N x K | hsac one-row kernel | prefill kernel, one row | one-row / prefill | "
         "OpenBLAS sgemv | one-row / OpenBLAS | max abs diff |\n"
         "|---|---|---|---|---|---|---|\n", nthreads);
  each_shape(models, nm, 7, gemv_at, peak);
  }
  SECTION("attention") {
  static const int64_t Ls[] = {4096, 16384, 65536, 262144};
  for (int c = 0; c < 2; c++) {
    printf("\n### HSA sparse attention (S 64, K 8, d 64, G 16), %d thread(s), %s\n\n"
           "| context L | GFLOP/s | of FMA peak | query tokens/s | K/V read, GB/s (of memory "
           "read) | f32, bf16 pages: GFLOP/s | / f32 | bf16 on %s: GFLOP/s | "
           "query tokens/s | bf16 / f32 | %s, bf16 pages: GFLOP/s | / f32 |\n"
           "|---|---|---|---|---|---|---|---|---|---|---|---|\n", nthreads,
           c ? "clustered selections (a chunk kept from the previous token with "
               "probability 0.925: 7.5x reuse per 16 tokens, as trained models select)"
             : "uniform random selections (no reuse between tokens)", tn, tn);
    for (int i = 0; i < (quick ? 2 : 4); i++)
      bench_sparse_attention(Ls[i], c == 1, peak, bw * nthreads);
  }
  }
  SECTION("attention4") {
  printf("\n### HSA sparse attention with 4 query heads per KV head (S 64, K 8, d 64, "
         "16 query heads, 4 KV heads), %d thread(s): f32, and bf16 on %s (4 pairs per tile "
         "column block)\n\n"
         "| context L | selections | f32 GFLOP/s | of FMA peak | bf16 GFLOP/s | bf16 / f32 |\n"
         "|---|---|---|---|---|---|\n", nthreads, tn);
  sparse_f32_bf16_rows(4, false, peak * nthreads);
  }
  SECTION("joint") {
  printf("\n### HSA sparse attention with the joint merge (one softmax over the 8 selected "
         "chunks' rows; S 64, K 8, d 64, G 16), %d thread(s): f32, and bf16 on %s\n\n"
         "| context L | selections | f32 GFLOP/s | bf16 GFLOP/s | bf16 / f32 |\n"
         "|---|---|---|---|---|\n", nthreads, tn);
  sparse_f32_bf16_rows(1, true, 0);
  }
  SECTION("swa") {
  printf("\n### Sliding-window attention (d 64, G 16), %d thread(s), 4096 query tokens\n\n"
         "| window | f32 GFLOP/s | of FMA peak | f32, bf16 ring: GFLOP/s | / f32 | bf16 on "
         "%s: GFLOP/s | / f32 | %s, bf16 ring: GFLOP/s | / f32 |\n"
         "|---|---|---|---|---|---|---|---|---|\n", nthreads, tn, tn);
  static const int64_t Ws[] = {128, 512, 2048};
  for (int i = 0; i < (quick ? 2 : 3); i++) bench_window_attention(Ws[i], peak, false);
  printf("\n### Sliding-window attention at decode (one token after a full window; "
         "d 64, G 16, one KV head: one thread)\n\n"
         "| window | f32: us/token | f32, bf16 ring: us/token | / f32 | bf16 on %s: "
         "us/token | %s, bf16 ring: us/token | / f32 |\n|---|---|---|---|---|---|---|\n", tn, tn);
  for (int i = 0; i < (quick ? 2 : 3); i++) bench_window_attention(Ws[i], peak, true);
  }
  SECTION("encoder") {
  printf("\n### Attention inside chunk rows (the chunk encoder's: bidirectional, d 64, 16 "
         "query heads), %d thread(s), 64 chunk rows: f32, and bf16 on %s\n\n"
         "| rows per chunk | G | f32 GFLOP/s | of FMA peak | bf16 GFLOP/s | bf16 / f32 |\n"
         "|---|---|---|---|---|---|\n", nthreads, tn);
  static const int64_t Ps[][2] = {{65, 1}, {65, 4}, {129, 1}};
  for (int i = 0; i < (quick ? 2 : 3); i++) bench_rows_attention(Ps[i][0], Ps[i][1], peak);
  }
  SECTION("scan") {
  printf("\n### Landmark scan at decode (one query, d_r 64, top-8)\n\n"
         "| memory | time | read rate | of bandwidth |\n|---|---|---|---|\n");
  static const int64_t Cs[] = {1024, 16384, 131072};
  for (int i = 0; i < (quick ? 2 : 3); i++) bench_scan(Cs[i], bw);
  }
#undef SECTION
  rt_pool_free(pool);
  return 0;
}
