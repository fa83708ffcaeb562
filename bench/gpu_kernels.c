/* gpu_kernels.c - the CUDA backend's kernels against the GPU's roofline,
 * measured in one run (issue 12's benchmark, hsac's side).
 *
 *   bench_gpu_kernels [--emulate] [--lengths 16K,64K,256K,1M] [--contexts 1M,8M,32M]
 *
 * 1. the roofline: the device memory read bandwidth (a kernel summing a
 *    4 GiB buffer) and the tensor cores' bf16 rate as mma.sync reaches it
 *    (m16n8k16, eight independent accumulators per warp; Hopper's wgmma
 *    peak is higher: hsac does not generate wgmma yet);
 * 2. the HSA sparse-attention layer forward (chunk_attention: S = 64,
 *    K = 8, d = 64, G = 16 query heads per KV head, weighted merge), every
 *    one of L query positions, the K chunks of each drawn among the
 *    eligible ones (bench_ir.h: the CPU benchmark's selection), K/V read
 *    from chunk pages in device memory through the runtime's page table:
 *    hsac's generated kernel on the tensor cores (chunk_attention_mma, the
 *    default of --gpu-math bf16) with pages of f32 rows and of bf16 rows (a
 *    chunk memory kept in bf16), and in f32; TFLOP/s counted as L * 16 *
 *    K * 4 * S * d, the fraction of the mma.sync rate, tokens/s; sampled
 *    rows checked against a float64 loop on the host;
 * 3. the SWA layers' windowed attention (window 512, d = 64, G = 16,
 *    causal, every one of L queries, K/V rows in the segment): the
 *    tensor-core kernel (attention_mma) and the f32 one, checked the same
 *    way; TFLOP/s counted as 4 d per query head and key in its window;
 * 4. the landmark scan of a decode step (retrieve: one query row streamed
 *    over the landmarks of C chunks, top-8) at the given contexts: GB/s
 *    and the fraction of the bandwidth of step 1, timed one step at a time
 *    (each with a sync's round trip) and 50 steps back to back.
 *
 * --emulate runs the same harness on the emulated device (codegen/cuda/
 * emu.h) at small sizes, to check it without a GPU; its times mean
 * nothing.  Prints Markdown tables; scripts/gpu_session.sh runs it on a
 * lent GPU next to PyTorch's SDPA and FlexAttention (bench/
 * torch_gpu_attention.py), and the tables go to bench/RESULTS.md with the
 * device's name. */
#define _GNU_SOURCE
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BENCH_NAME "bench_gpu_kernels"
#include "bench/bench_ir.h"
#include "codegen/cpu/kernels.h"
#include "codegen/cuda/cuda.h"
#include "runtime/gpu.h"
#include "util/half.h"

static rt_gpu *dev;
static int wrong; /* results that differ from their reference */
static rt_gpu_stream *stream;
static bool emulate;

/* The benchmark's own kernels, after the module's prelude: a read of n
 * floats (each block sums its grid-stride share), and a loop of mma.sync
 * on registers. */
static const char *const peak_src =
    "extern \"C\" __global__ void __launch_bounds__(256) bench_read(const __grid_constant__ "
    "hs_args a) {\n"
    "  const float *p = (const float *)a.s[0];\n"
    "  hs_i64 n = a.s[1];\n"
    "  float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;\n"
    "  hs_i64 stride = (hs_i64)gridDim.x * 256;\n"
    "  for (hs_i64 i = (hs_i64)blockIdx.x * 256 + threadIdx.x; i + 3 * stride < n; "
    "i += 4 * stride) {\n"
    "    s0 += p[i]; s1 += p[i + stride]; s2 += p[i + 2 * stride]; s3 += p[i + 3 * stride];\n"
    "  }\n"
    "  __shared__ float red[33];\n"
    "  float s = hs::block_sum<256>(s0 + s1 + s2 + s3, red);\n"
    "  if (threadIdx.x == 0) ((float *)a.s[2])[blockIdx.x] = s;\n"
    "}\nHS_EMU_ENTRY(bench_read)\n"
    "extern \"C\" __global__ void __launch_bounds__(128) bench_mma(const __grid_constant__ "
    "hs_args a) {\n"
    "  unsigned af[4] = {0x3f803f80u, 0x3f803f80u, 0x3f803f80u, 0x3f803f80u};\n"
    "  unsigned bf[2] = {0x3f803f80u, 0x3f803f80u};\n"
    "  float d[8][4];\n"
    "  for (int c = 0; c < 8; c++) for (int j = 0; j < 4; j++) d[c][j] = 0.0f;\n"
    "  for (hs_i64 i = 0; i < a.s[0]; i++)\n"
    "    for (int c = 0; c < 8; c++) hs::mma16816(d[c], af, bf);\n"
    "  float s = 0.0f;\n"
    "  for (int c = 0; c < 8; c++) for (int j = 0; j < 4; j++) s += d[c][j];\n"
    "  if (s == 1.5f) ((float *)a.s[1])[0] = s;\n"
    "}\nHS_EMU_ENTRY(bench_mma)\n";

static void check(int rc, const char *what, const char *err) {
  if (rc) die(what, err);
}

static rt_dptr dalloc(size_t bytes) {
  rt_dptr p;
  char err[512];
  check(dev->ops->alloc(dev, bytes, RT_GPU_DEVICE, &p, err, sizeof err), "device memory", err);
  return p;
}

static void up(rt_dptr dst, const void *src, size_t n) {
  char err[512];
  check(dev->ops->h2d(dev, stream, dst, src, n, err, sizeof err), "copy to the device", err);
}

static void down(void *dst, rt_dptr src, size_t n) {
  char err[512];
  check(dev->ops->d2h(dev, stream, dst, src, n, err, sizeof err), "copy from the device", err);
  check(dev->ops->sync(dev, stream, err, sizeof err), "sync", err);
}

/* Seconds per iteration of the fastest of reps runs (after one warm-up;
 * reps 0: the one run), a run being `iters` times n launches in a row
 * (kernel i on grid gx[i] x gy), then a sync.  Host timing: one iteration
 * includes a launch and a sync's round trip (some microseconds), which
 * iters > 1 spreads over the back-to-back launches a decode loop makes. */
static double time_launches_n(int n, rt_gpu_kernel *const *k, const unsigned *gx, unsigned gy,
                              unsigned block, const int64_t *a, int reps, int iters) {
  char err[512];
  unsigned blk[3] = {block, 1, 1};
  double best = 1e30;
  for (int r = 0; r <= reps; r++) {
    check(dev->ops->sync(dev, stream, err, sizeof err), "sync", err);
    double t0 = now();
    for (int it = 0; it < iters; it++)
      for (int i = 0; i < n; i++) {
        unsigned grid[3] = {gx[i], gy, 1};
        check(dev->ops->launch(dev, stream, k[i], grid, blk, a, CG_A_COUNT * sizeof *a, err,
                               sizeof err),
              "launch", err);
      }
    check(dev->ops->sync(dev, stream, err, sizeof err), "sync", err);
    double t = (now() - t0) / iters;
    if ((r > 0 || reps == 0) && t < best) best = t;
  }
  return best;
}

static double time_launches(int n, rt_gpu_kernel *const *k, const unsigned *gx, unsigned gy,
                            unsigned block, const int64_t *a, int reps) {
  return time_launches_n(n, k, gx, gy, block, a, reps, 1);
}

static double time_launch(rt_gpu_kernel *k, unsigned gx, unsigned gy, unsigned block,
                          const int64_t *a, int reps) {
  return time_launches(1, &k, &gx, gy, block, a, reps);
}

/* ---- kernels: one module holding the generated ones and the peaks ---------- */

typedef struct gen {
  char *src;
  size_t len;
  cg_cuda_info info[12];
  int n;
} gen;

/* Appends kernel `name` in launch configuration cfg (NULL: the defaults);
 * how to launch it. */
static const cg_cuda_info *add_kernel_cfg(gen *g, const cg_kernel_req *req, cg_cuda_math math,
                                          const cg_cuda_cfg *cfg, const char *name) {
  char err[512];
  if (g->n == (int)(sizeof g->info / sizeof *g->info)) die(name, "too many kernels");
  cg_cuda_info *info = &g->info[g->n++];
  if (cg_cuda_emit(req, math, cfg, name, &g->src, &g->len, info, err, sizeof err))
    die(name, err);
  return info;
}

static const cg_cuda_info *add_kernel(gen *g, const cg_kernel_req *req, cg_cuda_math math,
                                      const char *name) {
  return add_kernel_cfg(g, req, math, NULL, name);
}

/* The same with the main knob's candidate named `cand` (hsac tune's
 * choice), to time the candidates side by side. */
static const cg_cuda_info *add_kernel_cand(gen *g, const cg_kernel_req *req, cg_cuda_math math,
                                           const char *name, const char *cand) {
  const char *names[CG_CUDA_MAX_CANDIDATES];
  int n = cg_cuda_candidates(req, math, CG_KNOB_MAIN, names);
  cg_cuda_cfg cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.pick[CG_KNOB_MAIN] = -1;
  for (int i = 0; i < n; i++)
    if (!strcmp(names[i], cand)) cfg.pick[CG_KNOB_MAIN] = i;
  if (cfg.pick[CG_KNOB_MAIN] < 0) die(name, "no such launch configuration");
  return add_kernel_cfg(g, req, math, &cfg, name);
}

/* Device rows [0, L) of `row` floats each: the host's pat rows [0, np)
 * repeated. */
static void up_repeat(rt_dptr dst, const float *pat, int64_t np, size_t row, int64_t L) {
  for (int64_t r = 0; r < L; r += np) {
    int64_t n = L - r < np ? L - r : np;
    up(dst + (rt_dptr)r * row * 4, pat, (size_t)n * row * 4);
  }
}

static rt_gpu_kernel *kernel(const char *name) {
  rt_gpu_kernel *k = dev->ops->kernel(dev, name);
  if (!k) die(name, "not in the module");
  return k;
}

/* ---- 1. the roofline ------------------------------------------------------- */

static double bandwidth_gbs(void) {
  size_t n = emulate ? (size_t)1 << 20 : (size_t)1 << 30; /* floats: 4 GiB */
  rt_dptr buf = dalloc(n * 4), out = dalloc(4096 * 4);
  float *h = calloc(1 << 20, sizeof *h);
  for (size_t off = 0; off < n; off += 1 << 20) up(buf + off * 4, h, (size_t)4 << 20);
  free(h);
  int64_t a[CG_A_COUNT] = {(int64_t)buf, (int64_t)n, (int64_t)out};
  unsigned blocks = emulate ? 8 : 4096;
  double t = time_launch(kernel("bench_read"), blocks, 1, 256, a, emulate ? 0 : 5);
  dev->ops->free(dev, buf, RT_GPU_DEVICE);
  dev->ops->free(dev, out, RT_GPU_DEVICE);
  return (double)n * 4 / t * 1e-9;
}

static double mma_tflops(void) {
  int64_t iters = emulate ? 4 : 1 << 16;
  unsigned blocks = emulate ? 2 : 132 * 16;
  rt_dptr out = dalloc(64);
  int64_t a[CG_A_COUNT] = {iters, (int64_t)out};
  double t = time_launch(kernel("bench_mma"), blocks, 1, 128, a, emulate ? 0 : 3);
  dev->ops->free(dev, out, RT_GPU_DEVICE);
  double flops = (double)blocks * 4 * (double)iters * 8 * (2.0 * 16 * 8 * 16);
  return flops / t * 1e-12;
}

/* The normalized error of 8 output rows (of `row` floats, spread over L)
 * against ref(r, ctx, want) in float64. */
static double sampled_err(int64_t L, rt_dptr dout, size_t row,
                          void (*ref)(int64_t, const void *, double *), const void *ctx) {
  double num = 0, den = 0;
  float *got = malloc(row * 4);
  double *want = malloc(row * sizeof *want);
  if (!got || !want) die("sampled rows", "out of memory");
  for (int i = 0; i < 8; i++) {
    int64_t r = (L - 1) * i / 7;
    down(got, dout + (rt_dptr)r * row * 4, row * 4);
    ref(r, ctx, want);
    for (size_t e = 0; e < row; e++) {
      num += (got[e] - want[e]) * (got[e] - want[e]);
      den += want[e] * want[e];
    }
  }
  free(got);
  free(want);
  return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* One row of an attention table: time, TFLOP/s (and their fraction of the
 * tensor cores' rate, when tc), tokens/s, the error, WRONG past tol. */
static void attention_row(const char *what, int64_t L, double t, double flops, bool tc,
                          double tflops_peak, double err, double tol) {
  bool ok = err <= tol;
  printf("| %s | %lld%s | %.3f ms | %.1f | %.0f%% | %.2fM | %.1e%s |\n", what,
         (long long)(L % 1024 ? L : L >> 10), L % 1024 ? "" : "K", t * 1e3, flops / t * 1e-12,
         tc ? 100 * flops / t * 1e-12 / tflops_peak : 0.0, (double)L / t * 1e-6, err,
         ok ? "" : " WRONG");
  fflush(stdout);
  if (!ok) wrong++; /* reported at the end: the other rows still tell */
}

/* ---- 2. the HSA sparse-attention layer ------------------------------------ */

enum { S = 64, K = 8, D = 64, HQ = 16, HK = 1, QPAT = 256 };

static void attention_req(one *o, cg_kernel_req *req) {
  one_init(o);
  ir_dim seq = ir_seq_dim(0, 1), ch = ir_seq_dim(0, S);
  ir_value *q = val(o, "q", 3, (ir_dim[]){seq, ir_const_dim(HQ), ir_const_dim(D)}, IR_F32);
  ir_value *kv =
      val(o, "k", 4, (ir_dim[]){ch, ir_const_dim(S), ir_const_dim(HK), ir_const_dim(D)}, IR_F32);
  ir_value *I = val(o, "i", 3, (ir_dim[]){seq, ir_const_dim(1), ir_const_dim(K)}, IR_I32);
  ir_value *W = val(o, "w", 3, (ir_dim[]){seq, ir_const_dim(1), ir_const_dim(K)}, IR_F32);
  ir_op *op = emit_op(o, IR_CHUNK_ATTENTION, (ir_value *[]){q, kv, kv, I, W}, 5,
                      (ir_attr[]){ir_int_attr("softmax_plus", 0), ir_str_attr("merge", "weighted")},
                      2);
  memset(req, 0, sizeof *req);
  req->op = op;
  req->hist[0] = CG_H_SEG, req->hist[1] = CG_H_PAGES, req->hist[2] = CG_H_PAGES;
  req->hist[3] = CG_H_SEG, req->hist[4] = CG_H_SEG;
  req->row_elems[0] = HQ * D, req->row_elems[1] = S * HK * D, req->row_elems[2] = S * HK * D;
  req->row_elems[3] = K, req->row_elems[4] = K;
}

typedef struct hsa_host {
  const float *qpat;
  float *const *pages;
  const int32_t *sel;
  const float *wt;
} hsa_host;

/* Output row t of the layer in float64, from the host copies. */
static void attention_ref(int64_t t, const void *ctx, double *o) {
  const hsa_host *hh = ctx;
  const float *qpat = hh->qpat, *wt = hh->wt;
  float *const *pages = hh->pages;
  const int32_t *sel = hh->sel;
  const float *q = qpat + (t % QPAT) * HQ * D;
  for (int h = 0; h < HQ; h++) {
    double acc[D] = {0};
    for (int k = 0; k < K; k++) {
      int32_t c = sel[t * K + k];
      if (c < 0) continue;
      const float *kr = pages[c / CG_PAGE_ROWS] + (int64_t)(c % CG_PAGE_ROWS) * S * HK * D;
      double s[S], m = -1e300, sum = 0;
      for (int j = 0; j < S; j++) {
        double dot = 0;
        for (int e = 0; e < D; e++) dot += (double)q[h * D + e] * kr[j * HK * D + e];
        s[j] = dot / sqrt((double)D);
        if (s[j] > m) m = s[j];
      }
      for (int j = 0; j < S; j++) sum += (s[j] = exp(s[j] - m));
      for (int j = 0; j < S; j++)
        for (int e = 0; e < D; e++) acc[e] += wt[t * K + k] * s[j] / sum * kr[j * HK * D + e];
    }
    for (int e = 0; e < D; e++) o[h * D + e] = acc[e];
  }
}

enum { NVAR = 5 };
static const char *const var_names[NVAR] = {"bench_hsa_tc", "bench_hsa_tc16", "bench_hsa_tc16_2w",
                                            "bench_hsa_tc16_1w2s", "bench_hsa_f32"};

static void bench_attention(int64_t L, double tflops_peak, const cg_cuda_info *const *infos) {
  int64_t C = L / S, npages = (C + CG_PAGE_ROWS - 1) / CG_PAGE_ROWS;
  size_t page_floats = (size_t)CG_PAGE_ROWS * S * HK * D, row = (size_t)HQ * D;
  /* chunk pages: one device buffer, a table of pointers into it */
  rt_dptr kvbuf = dalloc((size_t)npages * page_floats * 4);
  rt_dptr *table = malloc((size_t)npages * sizeof *table);
  float **hpages = malloc((size_t)npages * sizeof *hpages);
  for (int64_t p = 0; p < npages; p++) {
    hpages[p] = randbuf(page_floats, (uint64_t)p + 7);
    table[p] = kvbuf + (rt_dptr)p * page_floats * 4;
    up(table[p], hpages[p], page_floats * 4);
  }
  rt_dptr dtable = dalloc((size_t)npages * sizeof *table);
  up(dtable, table, (size_t)npages * sizeof *table);
  /* the same pages in bf16 rows (a chunk memory kept in bf16) */
  rt_dptr kv16 = dalloc((size_t)npages * page_floats * 2);
  uint16_t *h16 = malloc(page_floats * 2);
  for (int64_t p = 0; p < npages; p++) {
    for (size_t e = 0; e < page_floats; e++) h16[e] = ut_f32_to_bf16(hpages[p][e]);
    table[p] = kv16 + (rt_dptr)p * page_floats * 2;
    up(table[p], h16, page_floats * 2);
  }
  free(h16);
  rt_dptr dtable16 = dalloc((size_t)npages * sizeof *table);
  up(dtable16, table, (size_t)npages * sizeof *table);
  /* queries: QPAT rows repeated (the time does not depend on their values) */
  float *qpat = randbuf((size_t)QPAT * row, 3);
  rt_dptr dq = dalloc((size_t)L * row * 4), dout = dalloc((size_t)L * row * 4);
  up_repeat(dq, qpat, QPAT, row, L);
  int32_t *sel = malloc((size_t)L * K * sizeof *sel);
  float *wt = malloc((size_t)L * K * sizeof *wt);
  hsa_selection(0, L, S, K, sel, wt);
  rt_dptr dsel = dalloc((size_t)L * K * 4), dwt = dalloc((size_t)L * K * 4);
  up(dsel, sel, (size_t)L * K * 4);
  up(dwt, wt, (size_t)L * K * 4);
  int64_t a[CG_A_COUNT] = {0};
  a[CG_A_R0] = 0, a[CG_A_R1] = L, a[CG_A_T1] = L;
  a[CG_A_OUT0 + CG_V_SEG] = (int64_t)dout, a[CG_A_OUT0 + CG_V_STRIDE] = (int64_t)row;
  int in = CG_A_IN0;
  a[in + CG_V_SEG] = (int64_t)dq, a[in + CG_V_STRIDE] = (int64_t)row;
  for (int v = 1; v <= 2; v++) { /* every chunk is history */
    int b = in + v * CG_VIEW_SLOTS;
    a[b + CG_V_R0] = C, a[b + CG_V_STRIDE] = S * HK * D;
    a[b + CG_V_HIST] = (int64_t)dtable, a[b + CG_V_KEEP] = -1;
  }
  a[in + 3 * CG_VIEW_SLOTS + CG_V_SEG] = (int64_t)dsel;
  a[in + 3 * CG_VIEW_SLOTS + CG_V_STRIDE] = K;
  a[in + 4 * CG_VIEW_SLOTS + CG_V_SEG] = (int64_t)dwt;
  a[in + 4 * CG_VIEW_SLOTS + CG_V_STRIDE] = K;
  double flops = (double)L * HQ * K * (4.0 * S * D);
  const char *what[NVAR] = {"hsac, tensor cores (chunk_attention_mma, 1 warp), f32 pages",
                            "hsac, tensor cores (chunk_attention_mma, 1 warp), bf16 pages",
                            "hsac, tensor cores (chunk_attention_mma, 2 warps), bf16 pages",
                            "hsac, tensor cores (chunk_attention_mma, 1 warp, 2 stages), bf16 pages",
                            "hsac, f32 (chunk_attention)"};
  for (int v = 0; v < NVAR; v++) {
    bool tc = v < 4, p16 = v >= 1 && v <= 3;
    for (int i = 1; i <= 2; i++) /* the page table of the variant */
      a[in + i * CG_VIEW_SLOTS + CG_V_HIST] = (int64_t)(p16 ? dtable16 : dtable);
    double t = time_launch(kernel(var_names[v]), (unsigned)L, (unsigned)infos[v]->grid_y,
                           (unsigned)infos[v]->block, a, emulate ? 0 : 3);
    /* sampled rows against float64 */
    hsa_host hh = {qpat, hpages, sel, wt};
    double err = sampled_err(L, dout, row, attention_ref, &hh);
    attention_row(what[v], L, t, flops, tc, tflops_peak, err, tc ? 1e-2 : 1e-5);
  }
  for (int64_t p = 0; p < npages; p++) free(hpages[p]);
  free(hpages), free(table), free(qpat), free(sel), free(wt);
  rt_dptr bufs[] = {kvbuf, dtable, kv16, dtable16, dq, dout, dsel, dwt};
  for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
    dev->ops->free(dev, bufs[i], RT_GPU_DEVICE);
}

/* ---- 3. the SWA layers' windowed attention --------------------------------- */

enum { W = 512, KPAT = 1024 };

static void swa_req(one *o, cg_kernel_req *req) {
  one_init(o);
  ir_dim seq = ir_seq_dim(0, 1);
  ir_value *q = val(o, "q", 3, (ir_dim[]){seq, ir_const_dim(HQ), ir_const_dim(D)}, IR_F32);
  ir_value *k = val(o, "k", 3, (ir_dim[]){seq, ir_const_dim(HK), ir_const_dim(D)}, IR_F32);
  ir_value *v = val(o, "v", 3, (ir_dim[]){seq, ir_const_dim(HK), ir_const_dim(D)}, IR_F32);
  ir_op *op = emit_op(o, IR_ATTENTION, (ir_value *[]){q, k, v}, 3,
                      (ir_attr[]){ir_int_attr("causal", 1), ir_int_attr("window", W)}, 2);
  memset(req, 0, sizeof *req);
  req->op = op;
  for (int i = 0; i < 3; i++) req->hist[i] = CG_H_SEG;
  req->row_elems[0] = HQ * D, req->row_elems[1] = HK * D, req->row_elems[2] = HK * D;
}

/* Output row t of the windowed attention in float64 (queries repeat every
 * QPAT rows, keys and values every KPAT; ctx: the three patterns). */
static void swa_ref(int64_t t, const void *ctx, double *o) {
  const float *const *pat = ctx;
  const float *qpat = pat[0], *kpat = pat[1], *vpat = pat[2];
  int64_t lo = t - W + 1 > 0 ? t - W + 1 : 0, n = t - lo + 1;
  double *s = malloc((size_t)n * sizeof *s);
  for (int h = 0; h < HQ; h++) {
    const float *q = qpat + (t % QPAT) * HQ * D + h * D;
    double m = -1e300, sum = 0;
    for (int64_t j = 0; j < n; j++) {
      const float *k = kpat + ((lo + j) % KPAT) * D;
      double dot = 0;
      for (int e = 0; e < D; e++) dot += (double)q[e] * k[e];
      s[j] = dot / sqrt((double)D);
      if (s[j] > m) m = s[j];
    }
    for (int64_t j = 0; j < n; j++) sum += (s[j] = exp(s[j] - m));
    for (int e = 0; e < D; e++) {
      double acc = 0;
      for (int64_t j = 0; j < n; j++) acc += s[j] * vpat[((lo + j) % KPAT) * D + e];
      o[h * D + e] = acc / sum;
    }
  }
  free(s);
}

enum { NSWA = 2 };
static const char *const swa_names[NSWA] = {"bench_swa_tc", "bench_swa_f32"};

static void bench_swa(int64_t L, double tflops_peak, const cg_cuda_info *const *infos) {
  size_t row = (size_t)HQ * D, krow = (size_t)HK * D;
  float *qpat = randbuf((size_t)QPAT * row, 3), *kpat = randbuf((size_t)KPAT * krow, 4),
        *vpat = randbuf((size_t)KPAT * krow, 5);
  rt_dptr dq = dalloc((size_t)L * row * 4), dout = dalloc((size_t)L * row * 4);
  rt_dptr dk = dalloc((size_t)L * krow * 4), dv = dalloc((size_t)L * krow * 4);
  up_repeat(dq, qpat, QPAT, row, L);
  up_repeat(dk, kpat, KPAT, krow, L);
  up_repeat(dv, vpat, KPAT, krow, L);
  int64_t a[CG_A_COUNT] = {0};
  a[CG_A_R0] = 0, a[CG_A_R1] = L, a[CG_A_T1] = L;
  a[CG_A_OUT0 + CG_V_SEG] = (int64_t)dout, a[CG_A_OUT0 + CG_V_STRIDE] = (int64_t)row;
  int in = CG_A_IN0;
  a[in + CG_V_SEG] = (int64_t)dq, a[in + CG_V_STRIDE] = (int64_t)row;
  a[in + CG_VIEW_SLOTS + CG_V_SEG] = (int64_t)dk;
  a[in + CG_VIEW_SLOTS + CG_V_STRIDE] = (int64_t)krow;
  a[in + 2 * CG_VIEW_SLOTS + CG_V_SEG] = (int64_t)dv;
  a[in + 2 * CG_VIEW_SLOTS + CG_V_STRIDE] = (int64_t)krow;
  /* FLOPs: 4 d per query head and key of each token's window */
  double keys = L <= W ? (double)L * (L + 1) / 2 : (double)W * (W + 1) / 2 + (double)(L - W) * W;
  double flops = keys * HQ * 4.0 * D;
  const char *what[NSWA] = {"hsac, tensor cores (attention_mma, 1 warp)", "hsac, f32 (attention)"};
  for (int v = 0; v < NSWA; v++) {
    double t = time_launch(kernel(swa_names[v]), (unsigned)L, (unsigned)infos[v]->grid_y,
                           (unsigned)infos[v]->block, a, emulate ? 0 : 3);
    const float *pat[3] = {qpat, kpat, vpat};
    double err = sampled_err(L, dout, row, swa_ref, pat);
    attention_row(what[v], L, t, flops, v == 0, tflops_peak, err, v == 0 ? 1e-2 : 1e-5);
  }
  free(qpat), free(kpat), free(vpat);
  rt_dptr bufs[] = {dq, dout, dk, dv};
  for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
    dev->ops->free(dev, bufs[i], RT_GPU_DEVICE);
}

/* ---- 4. the landmark scan of a decode step --------------------------------- */

enum { G = 1, DR = 64, KR = 8 };

static void scan_req(one *o, cg_kernel_req *req) {
  one_init(o);
  ir_dim seq = ir_seq_dim(0, 1), ch = ir_seq_dim(0, S);
  ir_value *q = val(o, "q", 3, (ir_dim[]){seq, ir_const_dim(G), ir_const_dim(DR)}, IR_F32);
  ir_value *l = val(o, "l", 2, (ir_dim[]){ch, ir_const_dim(DR)}, IR_F32);
  ir_op *sc = emit_op(o, IR_LANDMARK_SCORES, (ir_value *[]){q, l}, 2,
                      (ir_attr[]){ir_int_attr("chunk", S), ir_str_attr("per", "token"),
                                  ir_int_attr("exclude_window", 0)},
                      3);
  ir_op *tk = emit_op(o, IR_TOPK, (ir_value *[]){sc->out[0]}, 1,
                      (ir_attr[]){ir_int_attr("k", KR)}, 1);
  memset(req, 0, sizeof *req);
  req->op = tk;
  req->scores = sc;
  req->hist[0] = CG_H_SEG, req->hist[1] = CG_H_PAGES;
  req->row_elems[0] = G * DR, req->row_elems[1] = DR;
}

static void bench_scan(int64_t C, double bw, const cg_cuda_info *info) {
  int64_t npages = (C + CG_PAGE_ROWS - 1) / CG_PAGE_ROWS;
  size_t page_floats = (size_t)CG_PAGE_ROWS * DR;
  rt_dptr buf = dalloc((size_t)npages * page_floats * 4);
  rt_dptr *table = malloc((size_t)npages * sizeof *table);
  float *h = randbuf(page_floats, 5);
  for (int64_t p = 0; p < npages; p++) {
    table[p] = buf + (rt_dptr)p * page_floats * 4;
    up(table[p], h, page_floats * 4);
  }
  rt_dptr dtable = dalloc((size_t)npages * sizeof *table), dq = dalloc(G * DR * 4);
  rt_dptr doi = dalloc(G * KR * 4), dov = dalloc(G * KR * 4);
  up(dtable, table, (size_t)npages * sizeof *table);
  up(dq, h, G * DR * 4);
  int64_t t = C * S; /* the token right after the last chunk */
  int64_t a[CG_A_COUNT] = {0};
  a[CG_A_R0] = t, a[CG_A_R1] = t + 1, a[CG_A_T1] = t + 1, a[CG_A_C] = C;
  a[CG_A_OUT0 + CG_V_SEG] = (int64_t)doi, a[CG_A_OUT0 + CG_V_R0] = t;
  a[CG_A_OUT0 + CG_V_STRIDE] = G * KR;
  a[CG_A_OUT1 + CG_V_SEG] = (int64_t)dov, a[CG_A_OUT1 + CG_V_R0] = t;
  a[CG_A_OUT1 + CG_V_STRIDE] = G * KR;
  a[CG_A_IN0 + CG_V_SEG] = (int64_t)dq, a[CG_A_IN0 + CG_V_R0] = t;
  a[CG_A_IN0 + CG_V_STRIDE] = G * DR;
  int b = CG_A_IN0 + CG_VIEW_SLOTS;
  a[b + CG_V_R0] = C, a[b + CG_V_STRIDE] = DR, a[b + CG_V_HIST] = (int64_t)dtable;
  a[b + CG_V_KEEP] = -1;
  double one = time_launch(kernel("bench_scan"), 1, (unsigned)info->grid_y,
                           (unsigned)info->block, a, emulate ? 0 : 5);
  /* split as the runtime splits it (backend_cuda.c: about 64 chunks per
   * block, 2 to 1024 blocks per group), then merged: both launches timed */
  int64_t nsplit = C / 64 < 2 ? 2 : C / 64 > 1024 ? 1024 : C / 64;
  rt_dptr scr = dalloc((size_t)nsplit * G * (size_t)info->split_scratch * 4);
  a[CG_A_SCRATCH] = (int64_t)scr, a[CG_A_P0] = nsplit;
  rt_gpu_kernel *parts[2] = {kernel("bench_scan_s"), kernel("bench_scan_m")};
  unsigned gxs[2] = {(unsigned)nsplit, 1};
  double split = time_launches(2, parts, gxs, G, (unsigned)info->block, a, emulate ? 0 : 5);
  int iters = emulate ? 2 : 50;
  double split_n =
      time_launches_n(2, parts, gxs, G, (unsigned)info->block, a, emulate ? 0 : 5, iters);
  /* the same slots either way */
  int32_t i1[G * KR], i2[G * KR];
  down(i2, doi, sizeof i2);
  time_launch(kernel("bench_scan"), 1, (unsigned)info->grid_y, (unsigned)info->block, a, 0);
  down(i1, doi, sizeof i1);
  if (memcmp(i1, i2, sizeof i1)) {
    printf("| | WRONG: the split scan's top-k differs from one block's | | | |\n");
    wrong++;
  }
  double bytes = (double)C * DR * 4;
  printf("| %lld chunks (%lldK tokens) | one block per group | %.3f ms | %.1f GB/s | %.1f%% |\n",
         (long long)C, (long long)(C * S >> 10), one * 1e3, bytes / one * 1e-9,
         100 * bytes / one * 1e-9 / bw);
  printf("| | split over %lld blocks + merge | %.3f ms | %.1f GB/s | %.1f%% |\n",
         (long long)nsplit, split * 1e3, bytes / split * 1e-9, 100 * bytes / split * 1e-9 / bw);
  printf("| | the same, per step of %d back to back | %.3f ms | %.1f GB/s | %.1f%% |\n", iters,
         split_n * 1e3, bytes / split_n * 1e-9, 100 * bytes / split_n * 1e-9 / bw);
  fflush(stdout);
  free(h), free(table);
  rt_dptr bufs[] = {buf, dtable, dq, doi, dov, scr};
  for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
    dev->ops->free(dev, bufs[i], RT_GPU_DEVICE);
}

/* "16K,64K,1M" into v (binary multiples); the count. */
static int sizes(const char *s, int64_t *v, int cap) {
  int n = 0;
  while (*s && n < cap) {
    char *end;
    double x = strtod(s, &end);
    if (end == s || x <= 0) die("a size list", s);
    if (*end == 'K') x *= 1024, end++;
    else if (*end == 'M') x *= 1024 * 1024, end++;
    v[n++] = (int64_t)x;
    s = *end == ',' ? end + 1 : end;
    if (*end && *end != ',') die("a size list", end);
  }
  return n;
}

int main(int argc, char **argv) {
  const char *lens = NULL, *ctxs = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--emulate")) emulate = true;
    else if (!strcmp(argv[i], "--lengths") && i + 1 < argc) lens = argv[++i];
    else if (!strcmp(argv[i], "--contexts") && i + 1 < argc) ctxs = argv[++i];
    else {
      fprintf(stderr, "usage: bench_gpu_kernels [--emulate] [--lengths 16K,64K,256K,1M] "
                      "[--contexts 1M,8M,32M]\n");
      return 2;
    }
  }
  if (!lens) lens = emulate ? "1K" : "16K,64K,256K,1M";
  if (!ctxs) ctxs = emulate ? "64K" : "1M,8M,32M";
  char err[1024];
  if ((emulate ? rt_gpu_emu_open : rt_gpu_cuda_open)(&dev, err, sizeof err))
    die("the device", err);
  check(dev->ops->stream_new(dev, &stream, err, sizeof err), "a stream", err);
  /* the module: the prelude, the generated kernels, the peaks */
  gen g = {0};
  check(cg_cuda_emit_head(&g.src, &g.len), "the module", "out of memory");
  one oa, os, ow;
  cg_kernel_req ra, rs, rw;
  attention_req(&oa, &ra);
  scan_req(&os, &rs);
  swa_req(&ow, &rw);
  /* in var_names' and swa_names' orders */
  const cg_cuda_info *infos[NVAR], *sinfos[NSWA], *scan;
  infos[0] = add_kernel(&g, &ra, CG_CUDA_BF16, var_names[0]);
  infos[4] = add_kernel(&g, &ra, CG_CUDA_F32, var_names[4]);
  scan = add_kernel(&g, &rs, CG_CUDA_F32, "bench_scan");
  ra.hist16[1] = ra.hist16[2] = true; /* K, V history pages of bf16 rows */
  infos[1] = add_kernel(&g, &ra, CG_CUDA_BF16, var_names[1]);
  infos[2] = add_kernel_cand(&g, &ra, CG_CUDA_BF16, var_names[2], "2 warps");
  infos[3] = add_kernel_cand(&g, &ra, CG_CUDA_BF16, var_names[3], "1 warp, 2 stages");
  sinfos[0] = add_kernel(&g, &rw, CG_CUDA_BF16, swa_names[0]);
  sinfos[1] = add_kernel(&g, &rw, CG_CUDA_F32, swa_names[1]);
  size_t pl = strlen(peak_src);
  char *all = realloc(g.src, g.len + pl + 1);
  if (!all) die("the module", "out of memory");
  memcpy(all + g.len, peak_src, pl + 1);
  g.src = all;
  double t0 = now();
  check(dev->ops->load(dev, g.src, NULL, err, sizeof err), "compiling the module", err);
  printf("## CUDA kernels on %s\n\nmodule: %s (%.1f s)\n\n", dev->desc, dev->module, now() - t0);
  double bw = bandwidth_gbs(), tc = mma_tflops();
  printf("### Roofline\n\n| what | measured |\n|---|---|\n| device memory read | %.0f GB/s |\n"
         "| tensor cores, mma.sync m16n8k16 bf16 (f32 sums) | %.1f TFLOP/s |\n\n",
         bw, tc);
  int64_t L[16], Cx[16];
  int nl = sizes(lens, L, 16), nc = sizes(ctxs, Cx, 16);
  printf("### HSA sparse attention forward (S 64, K 8, d 64, G 16, weighted), all L queries\n\n"
         "| implementation | L | time | TFLOP/s | of mma.sync | Mtokens/s | error vs float64 |\n"
         "|---|---|---|---|---|---|---|\n");
  for (int i = 0; i < nl; i++) bench_attention(L[i], tc, infos);
  printf("\n### SWA attention forward (window %d, d 64, G 16), all L queries\n\n"
         "| implementation | L | time | TFLOP/s | of mma.sync | Mtokens/s | error vs float64 |\n"
         "|---|---|---|---|---|---|---|\n",
         W);
  for (int i = 0; i < nl; i++) bench_swa(L[i], tc, sinfos);
  printf("\n### Landmark scan of one decode step (G 1, d 64, top-8)\n\n"
         "| context | kernel | time | read | of measured bandwidth |\n|---|---|---|---|---|\n");
  for (int i = 0; i < nc; i++) bench_scan(Cx[i] / S, bw, scan);
  dev->ops->stream_free(dev, stream);
  dev->ops->close(dev);
  free(g.src);
  ut_arena_free(&oa.arena);
  ut_arena_free(&os.arena);
  ut_arena_free(&ow.arena);
  if (wrong) {
    fprintf(stderr, "bench_gpu_kernels: %d results differ from their reference (WRONG above)\n",
            wrong);
    return 1;
  }
  return 0;
}
