/* test_cuda.c - the CUDA backend without a GPU (ctest -L cuda-emu).
 *
 *  - every example model's logits from the generated CUDA C, run by the
 *    emulator (codegen/cuda/emu.h), against the reference interpreter:
 *    prefill in uneven segments, and decoded token by token;
 *  - every example's kernels compiled by NVRTC for sm_80 and sm_90 into
 *    CUBINs, with ptxas's report read: no register spills in the attention
 *    and retrieval kernels (skipped, saying so, without NVRTC);
 *  - the emulator itself: barriers, warp shuffles, votes, atomics, and a
 *    barrier some threads never reach reported as a deadlock (mma.sync and
 *    ldmatrix are checked by the tensor-core kernels' results);
 *  - `--backend cuda` without a GPU is refused with a message that names
 *    `--backend cuda-emu` (the `gpu` suite holds the checks for a GPU).
 * (The per-op checks on ragged shapes run the CUDA kernels too: see
 * check() in test_backend.c.) */
#define _GNU_SOURCE /* nftw's FTW_DEPTH/FTW_PHYS */
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "codegen/cache.h"
#include "codegen/cuda/cuda.h"
#include "runtime/backend.h"
#include "runtime/hsa_runtime.h"
#include "testutil.h"
#include "util/fileio.h"

static const char *const models[] = {"dense",       "swa",         "drt_gca",
                                     "hsa_ramba",   "paper_swa_hsa", "passkey_hsa",
                                     "passkey_hsa_standard", "moba", "landmark_attention",
                                     "nsa", "ruler_hsa", "authors_swa_hsa"};
enum { NMODELS = sizeof models / sizeof *models };

static void model_path(const char *name, char *out, size_t size) {
  snprintf(out, size, "%s/examples/tiny/%s.hsa", tu_src(), name);
}

/* The tiny example `name`'s path, and random weights for it (seed) in a
 * new temporary file named in weights (a "...XXXXXX" template; the caller
 * removes it). */
static bool model_weights(const char *name, uint64_t seed, char *model, size_t size,
                          char *weights) {
  model_path(name, model, size);
  int fd = mkstemp(weights);
  if (fd < 0) return false;
  close(fd);
  hsart_error e;
  return hsart_init_weights(model, weights, seed, &e) == HSART_OK;
}

/* The tensor-core kernels (--gpu-math bf16: bf16 inputs, f32 sums) against
 * the f32 reference: whole-model logits, normalized error.  bf16 rounding of
 * every linear's inputs compounds over the layers (the CPU backend's bf16
 * weights are held to the same 3e-2). */
#define TOL_TC 3e-2

/* Every example: cuda-emu logits == ref (prefill in segments of 29) and
 * decode == prefill on cuda-emu with f32 arithmetic; and the prefill on
 * the tensor cores (bf16 inputs, TOL_TC; their decode versions are checked
 * per kernel in test_backend.c).  The tolerances are the CPU backend's:
 * fp32 kernels against the double-accumulating reference, looser where a
 * model rounds values to bf16 stores (a kernel's last-bit difference can
 * move a rounded value by one bf16 step). */
static void example_models(hsart_backend be) {
  enum { N = 90 };
  int32_t tok[N];
  uint64_t r = 9;
  for (int i = 0; i < N; i++) {
    r = r * 6364136223846793005ull + 1442695040888963407ull;
    tok[i] = (int32_t)((r >> 33) % 256);
  }
  CU_ASSERT(tu_lists_every_example(models, NMODELS));
  char dir[] = "/tmp/hsac-test-cuda-XXXXXX";
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
  for (int i = 0; i < NMODELS; i++) {
#ifdef HSAC_SANITIZED
    /* under the sanitizers what is checked is the host side (the emulated
     * kernels are not instrumented): three models with f32 arithmetic */
    if (strcmp(models[i], "paper_swa_hsa") && strcmp(models[i], "nsa") &&
        strcmp(models[i], "landmark_attention"))
      continue;
    bool tcs = false;
#else
    bool tcs = true;
#endif
    char model[512], weights[600];
    model_path(models[i], model, sizeof model);
    snprintf(weights, sizeof weights, "%s/%s.safetensors", dir, models[i]);
    hsart_error e;
    CU_ASSERT_EQUAL_FATAL(hsart_init_weights(model, weights, 21, &e), HSART_OK);
    float *ref = NULL, *pre = NULL, *dec = NULL, *tc = NULL;
    int64_t V = 0;
    hsart_model_options mo = {.opt_level = 1, .backend = be};
    hsart_model_options mt = {.opt_level = 1, .backend = be, .gpu_bf16 = 1};
    bool ok =
        tu_model_logits(model, weights, HSART_BACKEND_REF, NULL, tok, N, N, &ref, &V, 0) &&
        tu_model_logits_mo(model, weights, &mo, tok, N, 29, &pre, &V) &&
        tu_model_logits_mo(model, weights, &mo, tok, N, 0, &dec, &V) &&
        (!tcs || tu_model_logits_mo(model, weights, &mt, tok, N, 29, &tc, &V));
    CU_ASSERT(ok);
    if (ok) {
      bool bf16 = strstr(models[i], "paper") || strstr(models[i], "passkey") ||
                  strstr(models[i], "authors_swa") || strstr(models[i], "ruler");
      double tol = bf16 ? 2e-3 : 1e-5;
      double e1 = tu_norm_err(ref, pre, N * V), e2 = tu_norm_err(pre, dec, N * V);
      double e3 = tcs ? tu_norm_err(ref, tc, N * V) : 0;
      printf("\n    %-22s f32: vs ref %.2e, decode vs prefill %.2e; tensor cores: vs ref %.2e",
             models[i], e1, e2, e3);
      CU_ASSERT(e1 <= tol);
      CU_ASSERT(e2 <= tol);
      CU_ASSERT(e3 <= TOL_TC);
    }
    free(ref), free(pre), free(dec), free(tc);
    remove(weights);
  }
  rmdir(dir);
}

static void test_example_models(void) { example_models(HSART_BACKEND_CUDA_EMU); }

/* Whether the CUDA driver sees a GPU; if not, the test says it is skipped
 * and why. */
static bool have_gpu(void) {
  char desc[256], why[256];
  if (rt_cuda_probe(desc, sizeof desc, why, sizeof why) > 0) {
    printf("\n    on %s", desc);
    return true;
  }
  printf("\n    SKIPPED: %s\n    ", why);
  return false;
}

/* ctest -L gpu: the same checks on the GPU (skipped, saying why, without one). */
static void test_gpu_example_models(void) {
  if (have_gpu()) example_models(HSART_BACKEND_CUDA);
}

/* The functions of a ptxas -v report whose names start with one of the
 * prefixes and that spill: their count (and the first, in first). */
static int spills(const char *log, const char *const *prefixes, int nprefixes, char *first,
                  size_t size) {
  int n = 0;
  const char *fn = NULL;
  for (const char *l = log; l && *l;) {
    const char *end = strchr(l, '\n');
    size_t len = end ? (size_t)(end - l) : strlen(l);
    const char *p = strstr(l, "Function properties for ");
    if (p && p < l + len) fn = p + strlen("Function properties for ");
    const char *s = strstr(l, "bytes spill stores");
    if (s && s < l + len && fn) {
      /* "N bytes stack frame, S bytes spill stores, L bytes spill loads" */
      const char *c = s;
      while (c > l && c[-1] == ' ') c--;
      while (c > l && c[-1] >= '0' && c[-1] <= '9') c--;
      long stores = strtol(c, NULL, 10);
      const char *lo = strstr(s, "spill stores, ");
      long loads = lo ? strtol(lo + strlen("spill stores, "), NULL, 10) : 0;
      for (int i = 0; i < nprefixes; i++)
        if (!strncmp(fn, prefixes[i], strlen(prefixes[i])) && (stores || loads)) {
          if (!n++) {
            size_t fl = strcspn(fn, "\n");
            snprintf(first, size, "%.*s (%ld bytes spilled, %ld reloaded)", (int)fl, fn, stores,
                     loads);
          }
        }
    }
    l = end ? end + 1 : l + len;
  }
  return n;
}

/* The kernels that must not spill: attention and retrieval. */
static const char *const hot[] = {"hsac_attention_", "hsac_chunk_attention_", "hsac_retrieve_",
                                  "hsac_topk_", "hsac_landmark_scores_"};
enum { NHOT = sizeof hot / sizeof *hot };
/* what the full-size examples' check compiles: those, and the baselines'
 * attentions, which are reported, not failed, like every other kernel
 * (the tiny MoBA kernel spills 12 bytes on sm_90, the full-size NSA
 * kernel's batched entry 4) */
static const char *const full_hot[] = {"hsac_attention_",      "hsac_chunk_attention_",
                                       "hsac_retrieve_",       "hsac_topk_",
                                       "hsac_landmark_scores_", "hsac_nsa_attention_",
                                       "hsac_moba_attention_", "hsac_landmark_attention_"};
enum { NFULL_HOT = sizeof full_hot / sizeof *full_hot };

/* Appends to *all the kernels of module text `src` (after the common
 * head) whose names are not in it (nor in `also`, if given) yet, only
 * those of full_hot[] if only_hot; counts them in *nk. */
static bool add_kernels_only(char **all, size_t *len, const char *head, const char *src, int *nk,
                             const char *also, bool only_hot) {
  size_t hl = strlen(head);
  if (strncmp(src, head, hl)) return false;
  const char *p = src + hl;
  while (*p) {
    const char *next = strstr(p + 1, "extern \"C\"");
    size_t n = next ? (size_t)(next - p) : strlen(p);
    const char *nm = strstr(p, ") hsac_");
    char name[96] = "";
    if (nm && nm < p + n) sscanf(nm + 2, "%95[A-Za-z0-9_]", name);
    char key[100];
    snprintf(key, sizeof key, " %s(", name);
    bool wanted = !only_hot;
    for (int i = 0; i < NFULL_HOT && !wanted; i++)
      wanted = !strncmp(name, full_hot[i], strlen(full_hot[i]));
    if (name[0] && wanted && !strstr(*all, key) && !(also && strstr(also, key))) {
      char *q = realloc(*all, *len + n + 1);
      if (!q) return false;
      *all = q;
      memcpy(*all + *len, p, n);
      *len += n;
      (*all)[*len] = 0;
      (*nk)++;
    }
    p += n;
  }
  return true;
}

static bool add_kernels_but(char **all, size_t *len, const char *head, const char *src, int *nk,
                            const char *also) {
  return add_kernels_only(all, len, head, src, nk, also, false);
}

static bool add_kernels(char **all, size_t *len, const char *head, const char *src, int *nk) {
  return add_kernels_but(all, len, head, src, nk, NULL);
}

/* The kernels of `mod` (nk of them) through NVRTC for arch: compiled, each
 * reported by ptxas, none of those named by the nfail prefixes spilling. */
static void nvrtc_check(const char *mod, const char *arch, int nk, const char *what,
                        const char *const *fail, int nfail) {
  char *bin = NULL, *log = NULL, err[1024];
  size_t blen = 0;
  int rc = cg_cuda_nvrtc(mod, arch, true, &bin, &blen, &log, err, sizeof err);
  if (rc) fprintf(stderr, "\n%s: %s\n%s\n", arch, err, log ? log : "");
  CU_ASSERT_EQUAL(rc, 0);
  CU_ASSERT(blen > 0);
  /* ptxas reported on every kernel */
  int reported = 0;
  for (const char *p = log; p && (p = strstr(p, "Function properties for ")); p++) reported++;
  CU_ASSERT(reported >= nk);
  char first[256] = "";
  int n = spills(log, fail, nfail, first, sizeof first);
  if (n) fprintf(stderr, "\n%s: %d attention or retrieval kernels spill, first %s\n", arch, n,
                 first);
  CU_ASSERT_EQUAL(n, 0);
  /* the others are reported, not failed (docs/cuda.md) */
  static const char *const any[] = {"hsac_"};
  int others = spills(log, any, 1, first, sizeof first);
  printf("\n    %s, %s: %d kernels, %d spilling%s%s", what, arch, reported, others,
         others ? ", first " : "", others ? first : "");
  free(bin);
  free(log);
}

static void test_nvrtc(void) {
  if (!cg_cuda_have_nvrtc()) {
    printf("\n  SKIPPED: this hsac was built without NVRTC (no CUDA toolkit found), so the "
           "generated kernels are not compiled for sm_80 and sm_90 here ");
    return;
  }
#ifdef HSAC_SANITIZED
  printf("\n  SKIPPED under ASan + UBSan: NVRTC and ptxas are not instrumented, and the "
         "same kernels are compiled in the plain build's run ");
  return;
#endif
  /* one module holding every distinct kernel of every example in the
   * default launch configurations, for sm_80 and sm_90; one of hsac tune's
   * other candidates (rounds 2..), for sm_80 (the code is the same) */
  char *head = NULL, *all = NULL, *cand = NULL;
  size_t hlen = 0, len = 0, clen = 0;
  CU_ASSERT_EQUAL_FATAL(cg_cuda_emit_head(&head, &hlen), 0);
  all = strdup(head);
  cand = strdup(head);
  len = clen = hlen;
  int nk = 0, nc = 0;
  for (int i = 0; i < NMODELS; i++) {
    char model[512];
    model_path(models[i], model, sizeof model);
    hsac_compilation c;
    hsac_init(&c);
    CU_ASSERT_EQUAL_FATAL(hsac_compile(&c, model, NULL, 0, HSAC_STAGE_IR), HSAC_OK);
    /* f32, and the tensor-core kernels */
    for (int tc = 0; tc < 2; tc++)
      for (int round = 0; round <= CG_CUDA_MAX_CANDIDATES; round += round ? 1 : 2) {
        char *src = NULL, err[1024];
        int mk = 0;
        CU_ASSERT_EQUAL_FATAL(
            rt_cuda_module_text(c.graph, tc, round, &src, &mk, err, sizeof err), HSART_OK);
        CU_ASSERT(mk > 0);
        bool added = round == 0 ? add_kernels(&all, &len, head, src, &nk)
                                : add_kernels_but(&cand, &clen, head, src, &nc, all);
        CU_ASSERT(added);
        if (tc)
          CU_ASSERT(tu_contains(src, "hs::chunk_attention_mma<") ||
                    !strstr(src, "hs::chunk_attention<"));
        free(src);
      }
    hsac_free(&c);
  }
  CU_ASSERT(tu_contains(all, "hs::linear_mma<"));
  CU_ASSERT(tu_contains(all, "hs::chunk_attention_mma<"));
  /* hsac tune's candidates */
  CU_ASSERT(tu_contains(cand, "hs::linear<128, ") && tu_contains(cand, "hs::linear<32, "));
  CU_ASSERT(tu_contains(cand, "hs::linear_mma<4, 2, ") &&
            tu_contains(cand, "hs::linear_mma<2, 4, ") &&
            tu_contains(cand, "hs::linear_mma<1, 2, "));
  CU_ASSERT(tu_contains(cand, "hs::gemv<256, ") && tu_contains(cand, "hs::attention<64, "));
  CU_ASSERT(nk > 40 && nc > 40);
  nvrtc_check(all, "sm_80", nk, "defaults", hot, NHOT);
  nvrtc_check(all, "sm_90", nk, "defaults", hot, NHOT);
  nvrtc_check(cand, "sm_80", nc, "hsac tune's candidates", hot, NHOT);
  /* the attention and retrieval kernels of the full-size examples too:
   * their constants (head widths, windows, top-k, chunk sizes) set the
   * register pressure */
  char *full = strdup(head);
  size_t flen = hlen;
  int nf = 0;
  for (int i = 0; i < NMODELS; i++) {
    char model[512];
    snprintf(model, sizeof model, "%s/examples/%s.hsa", tu_src(), models[i]);
    hsac_compilation c;
    hsac_init(&c);
    CU_ASSERT_EQUAL_FATAL(hsac_compile(&c, model, NULL, 0, HSAC_STAGE_IR), HSAC_OK);
    for (int tc = 0; tc < 2; tc++) {
      char *src = NULL, err[1024];
      int mk = 0;
      CU_ASSERT_EQUAL_FATAL(rt_cuda_module_text(c.graph, tc, 0, &src, &mk, err, sizeof err),
                            HSART_OK);
      CU_ASSERT(add_kernels_only(&full, &flen, head, src, &nf, all, true));
      free(src);
    }
    hsac_free(&c);
  }
  CU_ASSERT(nf > 20);
  CU_ASSERT(tu_contains(full, " hsac_nsa_attention_") &&
            tu_contains(full, " hsac_moba_attention_"));
  nvrtc_check(full, "sm_80", nf, "full-size examples' attention and retrieval", hot, NHOT);
  nvrtc_check(full, "sm_90", nf, "full-size examples' attention and retrieval", hot, NHOT);
  free(full);
  free(all);
  free(cand);
  free(head);
  /* the spill reader reads a report with spills */
  char first[256];
  const char *log = "ptxas info    : Function properties for hsac_attention_1\n"
                    "ptxas         .     16 bytes stack frame, 8 bytes spill stores, 12 bytes "
                    "spill loads\n"
                    "ptxas info    : Function properties for hsac_add_2\n"
                    "ptxas         .     0 bytes stack frame, 4 bytes spill stores, 4 bytes "
                    "spill loads\n";
  static const char *const attn[] = {"hsac_attention_"};
  CU_ASSERT_EQUAL(spills(log, attn, 1, first, sizeof first), 1);
  CU_ASSERT(tu_contains(first, "hsac_attention_1 (8 bytes spilled, 12 reloaded)"));
}

/* The emulator on hand-written CUDA: a block sum through shared memory and
 * __syncthreads, a warp butterfly through __shfl_xor_sync, blocks along
 * x and y; then a barrier only some threads reach. */
static void test_emulator(void) {
  const char *src =
      "struct hs_args { long long s[4]; };\n"
      "extern \"C\" __global__ void sums(const __grid_constant__ hs_args a) {\n"
      "  __shared__ float part[64];\n"
      "  float *out = (float *)a.s[0];\n"
      "  float v = (float)(threadIdx.x + 1);\n"
      "  part[threadIdx.x] = v;\n"
      "  __syncthreads();\n"
      "  float s = 0;\n"
      "  for (int i = 0; i < 64; i++) s += part[i];\n"
      "  float w = v;\n"
      "  for (int o = 16; o > 0; o >>= 1) w += __shfl_xor_sync(0xffffffffu, w, o);\n"
      "  int b = blockIdx.y * gridDim.x + blockIdx.x;\n"
      /* votes and atomics */
      "  unsigned odd = __ballot_sync(0xffffffffu, threadIdx.x & 1);\n"
      "  int all = __all_sync(0xffffffffu, threadIdx.x < 64), any = __any_sync(0xffffffffu, "
      "threadIdx.x == 40);\n"
      "  int *cnt = (int *)a.s[1];\n"
      "  atomicAdd(cnt, 1);\n"
      "  atomicMax(cnt + 1, (int)(threadIdx.x + 100 * b));\n"
      "  if (threadIdx.x == 33) { cnt[2 + 2 * b] = (int)odd; cnt[3 + 2 * b] = all * 10 + any; }\n"
      "  if (threadIdx.x == 0) out[3 * b] = s;\n"
      "  if (threadIdx.x == 32) out[3 * b + 1] = w;\n"
      "  if (threadIdx.x == 5) out[3 * b + 2] = (float)(blockIdx.x + 10 * blockIdx.y);\n"
      "}\n"
      "HS_EMU_ENTRY(sums)\n"
      /* warp 0 waits at one barrier while warp 1 shuffles and then arrives
       * at another: both count for the block (as on sm_70 and later) */
      "extern \"C\" __global__ void two(const __grid_constant__ hs_args a) {\n"
      "  if (threadIdx.x < 32) __syncthreads();\n"
      "  else { __shfl_xor_sync(0xffffffffu, 1.0f, 1); __syncthreads(); }\n"
      "}\n"
      "HS_EMU_ENTRY(two)\n"
      /* lane 0 waits at the block's barrier for lanes 1..31, which wait in
       * a shuffle for lane 0: a deadlock (warp 1 shuffles and returns) */
      "extern \"C\" __global__ void stuck(const __grid_constant__ hs_args a) {\n"
      "  if (threadIdx.x == 0) __syncthreads();\n"
      "  else __shfl_xor_sync(0xffffffffu, 1.0f, 1);\n"
      "}\n"
      "HS_EMU_ENTRY(stuck)\n";
  cg_cuda_emu *m = NULL;
  cg_cuda_emu_stats st;
  char err[2048];
  int rc = cg_cuda_emu_load(src, NULL, &m, &st, err, sizeof err);
  if (rc) fprintf(stderr, "\n%s\n", err);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  cg_cuda_emu_fn sums = cg_cuda_emu_lookup(m, "sums"), stuck = cg_cuda_emu_lookup(m, "stuck");
  CU_ASSERT_PTR_NOT_NULL_FATAL(sums);
  CU_ASSERT_PTR_NOT_NULL_FATAL(stuck);
  CU_ASSERT_PTR_NULL(cg_cuda_emu_lookup(m, "nothing"));
  float out[3 * 6] = {0};
  int cnt[2 + 2 * 6] = {0};
  long long args[4] = {(long long)(intptr_t)out, (long long)(intptr_t)cnt};
  cg_cuda_emu_launch l = {{3, 2, 1}, {64, 1, 1}};
  CU_ASSERT_EQUAL(sums(args, &l, err, sizeof err), 0);
  CU_ASSERT_EQUAL(cnt[0], 6 * 64);          /* atomicAdd by every thread */
  CU_ASSERT_EQUAL(cnt[1], 63 + 100 * 5);     /* atomicMax */
  for (int b = 0; b < 6; b++) {
    CU_ASSERT_EQUAL((unsigned)cnt[2 + 2 * b], 0xaaaaaaaau); /* warp 1's odd lanes */
    CU_ASSERT_EQUAL(cnt[3 + 2 * b], 11);                    /* all, and any (lane 40) */
    CU_ASSERT_EQUAL(out[3 * b], 64.0f * 65.0f / 2);       /* 1 + ... + 64 */
    CU_ASSERT_EQUAL(out[3 * b + 1], (33 + 64) * 32 / 2.0f); /* lanes 33 .. 64 */
    CU_ASSERT_EQUAL(out[3 * b + 2], (float)(b % 3 + 10 * (b / 3)));
  }
  /* a block that is not a multiple of 32 threads is refused */
  cg_cuda_emu_launch bad = {{1, 1, 1}, {48, 1, 1}};
  CU_ASSERT_EQUAL(sums(args, &bad, err, sizeof err), -1);
  CU_ASSERT(tu_contains(err, "multiple of 32"));
  cg_cuda_emu_fn two = cg_cuda_emu_lookup(m, "two");
  CU_ASSERT_PTR_NOT_NULL_FATAL(two);
  CU_ASSERT_EQUAL(two(args, &l, err, sizeof err), 0);
  CU_ASSERT_EQUAL(stuck(args, &l, err, sizeof err), -1);
  CU_ASSERT(tu_contains(err, "deadlock in block (0, 0, 0)"));
  /* the next launch starts over */
  CU_ASSERT_EQUAL(sums(args, &l, err, sizeof err), 0);
  CU_ASSERT_EQUAL(out[0], 64.0f * 65.0f / 2);
  cg_cuda_emu_free(m);
  cg_cuda_emu *m2 = NULL;
  /* a compile error names the compiler and shows its message */
  rc = cg_cuda_emu_load("this is not C++;\n", NULL, &m2, &st, err, sizeof err);
  CU_ASSERT_EQUAL(rc, -1);
  CU_ASSERT(tu_contains(err, "failed on the generated kernels"));
}

/* --backend cuda: without a GPU, refused plainly (with one, it loads);
 * cuda-emu says what it is in its description. */
static void test_backend_errors(void) {
  char model[512], weights[] = "/tmp/hsac-test-cuda-w-XXXXXX";
  CU_ASSERT_FATAL(model_weights("dense", 3, model, sizeof model, weights));
  hsart_error e;
  hsart_model_options mo = {.opt_level = 1, .backend = HSART_BACKEND_CUDA};
  hsart_model *m = NULL;
  char desc[256], why[256];
  if (rt_cuda_probe(desc, sizeof desc, why, sizeof why) <= 0) {
    CU_ASSERT_EQUAL(hsart_model_load(model, weights, &mo, &m, &e), HSART_EUNSUPPORTED);
    CU_ASSERT(tu_contains(e.message, "cannot start: no GPU"));
    CU_ASSERT(tu_contains(e.message, "--backend cuda-emu"));
    CU_ASSERT_PTR_NULL(m);
  } else {
    CU_ASSERT_EQUAL(hsart_model_load(model, weights, &mo, &m, &e), HSART_OK);
    hsart_model_free(m);
    m = NULL;
  }
  /* NVRTC is loaded when needed: one that is not there is named, not a
   * crash (and the emulator does not need it) */
  const char *saved = getenv("HSAC_NVRTC");
  char *keep = saved ? strdup(saved) : NULL;
  setenv("HSAC_NVRTC", "/nonexistent/libnvrtc.so", 1);
  CU_ASSERT(!cg_cuda_have_nvrtc());
  char *bin = NULL, err[512];
  size_t blen = 0;
  CU_ASSERT_EQUAL(cg_cuda_nvrtc("extern \"C\" __global__ void k() {}", "sm_80", true, &bin,
                                &blen, NULL, err, sizeof err),
                  -1);
  CU_ASSERT(tu_contains(err, "$HSAC_NVRTC (/nonexistent/libnvrtc.so)"));
  CU_ASSERT_PTR_NULL(bin);
  char ver[64];
  cg_cuda_nvrtc_version(ver, sizeof ver);
  CU_ASSERT_STRING_EQUAL(ver, "NVRTC not available");
  mo.backend = HSART_BACKEND_CUDA_EMU;
  CU_ASSERT_EQUAL(hsart_model_load(model, weights, &mo, &m, &e), HSART_OK);
  hsart_model_free(m);
  m = NULL;
  if (keep) setenv("HSAC_NVRTC", keep, 1);
  else unsetenv("HSAC_NVRTC");
  free(keep);
  CU_ASSERT_EQUAL(hsart_model_load(model, weights, &mo, &m, &e), HSART_OK);
  if (m) {
    CU_ASSERT_STRING_EQUAL(hsart_model_backend(m), "cuda-emu");
    char d[512];
    hsart_model_describe(m, d, sizeof d);
    CU_ASSERT(tu_contains(d, "emulator"));
  }
  hsart_model_free(m);
  remove(weights);
}

/* A kernel cache of the suite's own, removed afterwards. */
static char cache_root[64];
static char *saved_dir;

static int remove_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(path);
}

/* The CUBIN cache (cg_cuda_cubin, what --backend cuda loads): the second
 * request is a hit with the same bytes; another arch or driver version
 * (salt) is another entry; a corrupt entry is rebuilt, never loaded. */
static int corrupt_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)ftw;
  if (flag != FTW_F || sb->st_size < 128 || strstr(path, "lock")) return 0;
  FILE *f = fopen(path, "r+b");
  if (!f) return 0;
  long at = (long)sb->st_size / 2;
  int c = fseek(f, at, SEEK_SET) == 0 ? fgetc(f) : EOF;
  if (c != EOF && fseek(f, at, SEEK_SET) == 0) fputc(c ^ 0x5a, f);
  fclose(f);
  return 0;
}

static void test_cubin_cache(void) {
  if (!cg_cuda_have_nvrtc()) {
    printf("\n  SKIPPED: this hsac was built without NVRTC (no CUDA toolkit found) ");
    return;
  }
#ifdef HSAC_SANITIZED
  printf("\n  SKIPPED under ASan + UBSan: NVRTC is not instrumented; the plain build runs it ");
  return;
#endif
  static const char src[] =
      "extern \"C\" __global__ void k(float *x) { x[threadIdx.x] += 1.0f; }\n";
  char dir[] = "/tmp/hsac-test-cubin-XXXXXX";
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
  cg_cache c = {0};
  snprintf(c.dir, sizeof c.dir, "%s", dir);
  enum { N = 6 };
  /* 0 and 1 the same request; 2 another arch; 3 another driver; 4 and 5
   * the first again after every entry was corrupted */
  static const char *const arch[N] = {"sm_80", "sm_80", "sm_90", "sm_80", "sm_80", "sm_80"};
  static const char *const salt[N] = {"driver 1", "driver 1", "driver 1",
                                      "driver 2", "driver 1", "driver 1"};
  char *bin[N] = {0}, err[2048];
  size_t len[N] = {0};
  bool hit[N] = {0};
  for (int i = 0; i < N; i++) {
    if (i == 4) nftw(dir, corrupt_entry, 16, FTW_PHYS);
    int rc = cg_cuda_cubin(src, arch[i], salt[i], &c, &bin[i], &len[i], &hit[i], err, sizeof err);
    if (rc) fprintf(stderr, "\n%s\n", err);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT(len[i] > 0);
  }
  CU_ASSERT(!hit[0] && hit[1] && !hit[2] && !hit[3] && !hit[4] && hit[5]);
  for (int i = 1; i < N; i += i == 1 ? 3 : 1)
    CU_ASSERT(len[i] == len[0] && !memcmp(bin[i], bin[0], len[0]));
  for (int i = 0; i < N; i++) free(bin[i]);
  nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A device fault through a session (HSAC_EMU_FAIL, runtime/gpu.h): a
 * failed launch and a failed sync are errors naming the kernel, its grid
 * and rows (at a sync: the last launch); nothing aborts, the session is
 * reset, and it then computes what a fresh session computes, to the bit.
 * A malformed HSAC_EMU_FAIL is refused at load. */
static void test_device_fault(void) {
  enum { N = 40 };
  int32_t tok[N];
  for (int i = 0; i < N; i++) tok[i] = (int32_t)((i * 37 + 5) % 256);
  char model[512], weights[] = "/tmp/hsac-test-fault-XXXXXX";
  CU_ASSERT_FATAL(model_weights("paper_swa_hsa", 4, model, sizeof model, weights));
  hsart_model_options mo = {.opt_level = 1, .backend = HSART_BACKEND_CUDA_EMU};
  hsart_error e;
  hsart_model *m = NULL;
  hsart_session *s = NULL;
  /* a fresh session's logits */
  CU_ASSERT_EQUAL_FATAL(hsart_model_load(model, weights, &mo, &m, &e), HSART_OK);
  int64_t V = hsart_model_vocab(m);
  float *ref = malloc((size_t)V * sizeof *ref);
  CU_ASSERT_PTR_NOT_NULL_FATAL(ref);
  CU_ASSERT_EQUAL_FATAL(hsart_session_create(m, NULL, &s, &e), HSART_OK);
  CU_ASSERT_EQUAL_FATAL(hsart_prefill(s, tok, N), HSART_OK);
  memcpy(ref, hsart_logits(s), (size_t)V * sizeof *ref);
  hsart_session_free(s);
  hsart_model_free(m);
  static const char *const faults[][2] = {{"launch:9", "kernel hsac_"},
                                          {"sync:1", "(the last launch: kernel hsac_"}};
  for (int f = 0; f < 2; f++) {
    setenv("HSAC_EMU_FAIL", faults[f][0], 1);
    m = NULL;
    s = NULL;
    hsart_status st = hsart_model_load(model, weights, &mo, &m, &e);
    unsetenv("HSAC_EMU_FAIL");
    if (st != HSART_OK) fprintf(stderr, "\n%s: %s\n", faults[f][0], e.message);
    CU_ASSERT_EQUAL_FATAL(st, HSART_OK);
    CU_ASSERT_EQUAL_FATAL(hsart_session_create(m, NULL, &s, &e), HSART_OK);
    CU_ASSERT_NOT_EQUAL(hsart_prefill(s, tok, N), HSART_OK);
    const char *msg = hsart_session_error(s);
    if (!tu_contains(msg, faults[f][1]) || !tu_contains(msg, "grid") ||
        !tu_contains(msg, "injected device fault") || !tu_contains(msg, "session was reset"))
      fprintf(stderr, "\n%s: %s\n", faults[f][0], msg);
    CU_ASSERT(tu_contains(msg, faults[f][1]) && tu_contains(msg, "grid"));
    CU_ASSERT(tu_contains(msg, "injected device fault") && tu_contains(msg, "session was reset"));
    CU_ASSERT_EQUAL(hsart_session_position(s), 0);
    /* the same session again: the fault was once */
    CU_ASSERT_EQUAL(hsart_prefill(s, tok, N), HSART_OK);
    const float *l = hsart_logits(s);
    CU_ASSERT(l && !memcmp(l, ref, (size_t)V * sizeof *ref));
    hsart_session_free(s);
    hsart_model_free(m);
  }
  setenv("HSAC_EMU_FAIL", "launch:x", 1);
  m = NULL;
  CU_ASSERT_NOT_EQUAL(hsart_model_load(model, weights, &mo, &m, &e), HSART_OK);
  CU_ASSERT(tu_contains(e.message, "HSAC_EMU_FAIL='launch:x'"));
  unsetenv("HSAC_EMU_FAIL");
  hsart_model_free(m);
  free(ref);
  remove(weights);
}

static int suite_init(void) {
  const char *d = getenv("HSAC_CACHE_DIR");
  saved_dir = d ? strdup(d) : NULL;
  snprintf(cache_root, sizeof cache_root, "/tmp/hsac-cuda-test-XXXXXX");
  if (!mkdtemp(cache_root)) return -1;
  setenv("HSAC_CACHE_DIR", cache_root, 1);
  return 0;
}

static int suite_cleanup(void) {
  nftw(cache_root, remove_one, 16, FTW_DEPTH | FTW_PHYS);
  if (saved_dir) setenv("HSAC_CACHE_DIR", saved_dir, 1);
  else unsetenv("HSAC_CACHE_DIR");
  free(saved_dir);
  saved_dir = NULL;
  return 0;
}

/* Logits of tok[0..n) on cuda-emu with a history-page budget (prefill in
 * segments of 37, then decode from position n - 6), and the session's
 * count of pages moved to host memory. */
static bool paged_run_math(const char *model, const char *weights, int64_t budget,
                           const int32_t *tok, int64_t n, float *out, int64_t *moved,
                           int64_t *landmarks, bool bf16) {
  hsart_model_options mo = {.opt_level = 1, .backend = HSART_BACKEND_CUDA_EMU,
                            .gpu_page_bytes = budget, .gpu_bf16 = bf16};
  hsart_model *m;
  hsart_error e;
  if (hsart_model_load(model, weights, &mo, &m, &e) != HSART_OK) {
    fprintf(stderr, "\n%s\n", e.message);
    return false;
  }
  int64_t V = hsart_model_vocab(m);
  hsart_session_options so = {.segment = 37};
  hsart_session *s;
  bool ok = hsart_session_create(m, &so, &s, &e) == HSART_OK;
  if (ok) ok = hsart_prefill(s, tok, n - 6) == HSART_OK;
  for (int64_t i = n - 6; ok && i < n; i++) ok = hsart_decode(s, tok[i]) == HSART_OK;
  if (ok) memcpy(out, hsart_logits(s), (size_t)V * sizeof *out);
  char d[512] = "";
  if (ok) hsart_session_describe(s, d, sizeof d);
  const char *at = strstr(d, "history pages; ");
  *moved = at ? strtoll(at + strlen("history pages; "), NULL, 10) : -1;
  at = strstr(d, "there now, ");
  *landmarks = at ? strtoll(at + strlen("there now, "), NULL, 10) : -1;
  if (!ok) fprintf(stderr, "\n%s\n", s ? hsart_session_error(s) : e.message);
  if (s) hsart_session_free(s);
  hsart_model_free(m);
  return ok;
}

static bool paged_run(const char *model, const char *weights, int64_t budget, const int32_t *tok,
                      int64_t n, float *out, int64_t *moved, int64_t *landmarks) {
  return paged_run_math(model, weights, budget, tok, n, out, moved, landmarks, false);
}

/* A session whose history pages pass its device budget moves the oldest
 * to pinned host memory, which the kernels then read in place: the logits
 * do not change by a bit, whatever the budget (one byte: one page on the
 * device); the landmarks' pages go last. */
static void test_page_offload(void) {
  static const char *const names[] = {"dense", "paper_swa_hsa"};
  enum { N = 300 };
  int32_t tok[N];
  for (int i = 0; i < N; i++) tok[i] = (int32_t)((i * 37 + 11) % 256);
  for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
    char model[512], weights[] = "/tmp/hsac-test-pages-XXXXXX";
    CU_ASSERT_FATAL(model_weights(names[k], 4, model, sizeof model, weights));
    float base[512] = {0}, got[512] = {0};
    int64_t moved0 = -1, moved = -1, moved2 = -1, lm0 = -1, lm = -1, lm2 = -1;
    CU_ASSERT_FATAL(paged_run(model, weights, 0, tok, N, base, &moved0, &lm0));
    CU_ASSERT_EQUAL(moved0, 0);
    CU_ASSERT(paged_run(model, weights, 1, tok, N, got, &moved, &lm));
    CU_ASSERT(memcmp(base, got, sizeof base) == 0);
    CU_ASSERT(moved > 0);
    CU_ASSERT(paged_run(model, weights, 64 << 10, tok, N, got, &moved2, &lm2));
    CU_ASSERT(memcmp(base, got, sizeof base) == 0);
    CU_ASSERT(moved2 <= moved);
    if (!strcmp(names[k], "paper_swa_hsa")) {
      /* its 0.13 MiB of history pages at this length are three: two of
       * the chunk memory and a small one of landmarks; a budget of 70,000
       * bytes keeps two.  A chunk-memory page leaves, not the landmarks'
       * (every step scans them), though oldest first would take that one
       * (checked by disabling the preference: 2 pages moved, 1 of them) */
      int64_t m3 = -1, lm3 = -1;
      CU_ASSERT(paged_run(model, weights, 70000, tok, N, got, &m3, &lm3));
      CU_ASSERT(memcmp(base, got, sizeof base) == 0);
      CU_ASSERT_EQUAL(m3, 1);
      CU_ASSERT_EQUAL(lm3, 0);
      /* on the tensor cores its chunk memory's K and V (store = bf16) keep
       * history pages of bf16 rows: moved to host memory the same way */
      float b16[512] = {0}, g16[512] = {0};
      int64_t mv16 = -1, lm16 = -1;
      CU_ASSERT(paged_run_math(model, weights, 0, tok, N, b16, &mv16, &lm16, true));
      CU_ASSERT(paged_run_math(model, weights, 1, tok, N, g16, &mv16, &lm16, true));
      CU_ASSERT(memcmp(b16, g16, sizeof b16) == 0);
      CU_ASSERT(mv16 > 0);
    }
    printf("\n    %-14s pages moved to host memory: %lld (budget 1 byte; %lld of landmarks), "
           "%lld (64 KiB; %lld of landmarks)", names[k], (long long)moved, (long long)lm,
           (long long)moved2, (long long)lm2);
    remove(weights);
  }
}

/* Batched decode: three sessions with prompts of 5, 40 and 77 tokens, then
 * six steps of hsart_decode_batch, give the logits of the same sessions
 * decoded one by one, to the bit, on cuda-emu (each op of a step one
 * launch for all three) and on ref (the runtime's loop); a batch refuses
 * mixed models and a session given twice. */
static void batched_decode(const hsart_backend *bes, int nbes) {
  /* every example: each has its own batched (_b, _1b) kernels (under the
   * sanitizers, which check the host side, three of them) */
#ifdef HSAC_SANITIZED
  static const char *const names[] = {"paper_swa_hsa", "nsa", "dense"};
  enum { NNAMES = 3 };
#else
  const char *const *names = models;
  enum { NNAMES = NMODELS };
#endif
  enum { NS = 3, STEPS = 6 };
  static const int64_t plen[NS] = {5, 40, 77};
  int32_t tok[128];
  for (int i = 0; i < 128; i++) tok[i] = (int32_t)((i * 53 + 7) % 256);
  for (size_t k = 0; k < NNAMES; k++) {
    char model[512], weights[] = "/tmp/hsac-test-batch-XXXXXX";
    CU_ASSERT_FATAL(model_weights(names[k], 6, model, sizeof model, weights));
    hsart_error e;
    for (int b = 0; b < nbes; b++) {
      hsart_model_options mo = {.opt_level = 1, .backend = bes[b]};
      hsart_model *m = NULL;
      CU_ASSERT_EQUAL_FATAL(hsart_model_load(model, weights, &mo, &m, &e), HSART_OK);
      int64_t V = hsart_model_vocab(m);
      hsart_session *one[NS], *bat[NS];
      bool ok = true;
      for (int i = 0; i < NS; i++) {
        ok &= hsart_session_create(m, NULL, &one[i], &e) == HSART_OK;
        ok &= hsart_session_create(m, NULL, &bat[i], &e) == HSART_OK;
        ok &= hsart_prefill(one[i], tok + 10 * i, plen[i]) == HSART_OK;
        ok &= hsart_prefill(bat[i], tok + 10 * i, plen[i]) == HSART_OK;
      }
      CU_ASSERT_FATAL(ok);
      int same = 0;
      for (int t = 0; t < STEPS && ok; t++) {
        int32_t next[NS];
        for (int i = 0; i < NS; i++) {
          next[i] = tok[(t * 11 + i * 29) % 128];
          ok &= hsart_decode(one[i], next[i]) == HSART_OK;
        }
        ok &= hsart_decode_batch(bat, next, NS) == HSART_OK;
        for (int i = 0; i < NS && ok; i++)
          same += !memcmp(hsart_logits(one[i]), hsart_logits(bat[i]), (size_t)V * sizeof(float)) &&
                  hsart_session_position(bat[i]) == plen[i] + t + 1;
      }
      CU_ASSERT(ok);
      CU_ASSERT_EQUAL(same, NS * STEPS);
      char d[512] = "";
      hsart_session_describe(bat[0], d, sizeof d);
      const char *at = strstr(d, "); ");
      long long led = at ? strtoll(at + 3, NULL, 10) : -1;
      if (bes[b] != HSART_BACKEND_REF) {
        CU_ASSERT(led > 0);
        printf("\n    %-14s batched steps == one by one (%lld batched launches)", names[k], led);
      }
      /* refusals: the same session twice; a session of another model */
      hsart_session *twice[2] = {bat[0], bat[0]};
      int32_t two[2] = {1, 2};
      CU_ASSERT_EQUAL(hsart_decode_batch(twice, two, 2), HSART_EINVAL);
      CU_ASSERT(tu_contains(hsart_session_error(bat[0]), "same session"));
      hsart_model *m2 = NULL;
      CU_ASSERT_EQUAL_FATAL(hsart_model_load(model, weights, &mo, &m2, &e), HSART_OK);
      hsart_session *other = NULL;
      CU_ASSERT_EQUAL_FATAL(hsart_session_create(m2, NULL, &other, &e), HSART_OK);
      hsart_session *mixed[2] = {bat[1], other};
      CU_ASSERT_EQUAL(hsart_decode_batch(mixed, two, 2), HSART_EINVAL);
      CU_ASSERT(tu_contains(hsart_session_error(other), "another model"));
      hsart_session_free(other);
      hsart_model_free(m2);
      for (int i = 0; i < NS; i++) {
        hsart_session_free(one[i]);
        hsart_session_free(bat[i]);
      }
      hsart_model_free(m);
    }
    remove(weights);
  }
}

static void test_batched_decode(void) {
  static const hsart_backend bes[] = {HSART_BACKEND_CUDA_EMU, HSART_BACKEND_REF};
  batched_decode(bes, 2);
  /* again with every retrieval's decode scan split over blocks (from 2
   * chunks on), batched and not */
  setenv("HSAC_GPU_SCAN_SPLIT", "2", 1);
  batched_decode(bes, 1);
  unsetenv("HSAC_GPU_SCAN_SPLIT");
}

/* ---- launch configurations and hsac tune ------------------------------------ */

/* The tuning database: a missing file is empty; entries round-trip and
 * replace their own key; every malformed line is refused naming the file
 * and the line (and the file is never replaced); two processes saving at
 * once keep both their entries. */
static void test_tuning_db(void) {
  char dir[] = "/tmp/hsac-test-tdb-XXXXXX";
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
  char path[256], err[1024];
  snprintf(path, sizeof path, "%s/sub/tuning.tsv", dir);
  cg_tuning t;
  CU_ASSERT_EQUAL(cg_tuning_load(&t, path, err, sizeof err), 0);
  CU_ASSERT_EQUAL(t.n, 0);
  cg_tuning_entry e[2] = {{.dev = {"NVIDIA H200", "sm_90", "13.0", "NVRTC 13.0"},
                           .bucket = "linear f32 in<=512 out<=2048", .config = "128x64",
                           .us = 10.5, .default_us = 12.25},
                          {.dev = {"NVIDIA A100", "sm_80", "12.4", "NVRTC 12.4"},
                           .bucket = "linear f32 in<=512 out<=2048", .config = "32x64",
                           .us = 20, .default_us = 21}};
  CU_ASSERT_EQUAL(cg_tuning_save(path, e, 2, err, sizeof err), 0);
  CU_ASSERT_EQUAL_FATAL(cg_tuning_load(&t, path, err, sizeof err), 0);
  CU_ASSERT_EQUAL(t.n, 2);
  const cg_tuning_entry *f = cg_tuning_find(&t, &e[0].dev, "linear f32 in<=512 out<=2048");
  CU_ASSERT(f && !strcmp(f->config, "128x64") && fabs(f->us - 10.5) < 1e-9);
  CU_ASSERT_PTR_NULL(cg_tuning_find(&t, &e[0].dev, "linear f32 in<=512 out<=1024"));
  cg_tuning_free(&t);
  /* the same key again: replaced, not added */
  snprintf(e[0].config, sizeof e[0].config, "64x64");
  CU_ASSERT_EQUAL(cg_tuning_save(path, e, 1, err, sizeof err), 0);
  CU_ASSERT_EQUAL_FATAL(cg_tuning_load(&t, path, err, sizeof err), 0);
  CU_ASSERT_EQUAL(t.n, 2);
  f = cg_tuning_find(&t, &e[0].dev, "linear f32 in<=512 out<=2048");
  CU_ASSERT(f && !strcmp(f->config, "64x64"));
  cg_tuning_free(&t);
  /* malformed databases */
  static const char *const bad[][2] = {
      {"# ok\na\tb\tc\td\te\tf\t1\n", ":2: error: fewer than 8"},
      {"a\tb\tc\td\te\tf\t1\t2\t3\n", ":1: error: more than 8"},
      {"\n\na\tb\tc\td\te\tf\tfast\t2\n", ":3: error: bad time"},
      {"a\tb\tc\td\te\tf\t1\t-2\n", ":1: error: bad default time"},
      {"a\t\tc\td\te\tf\t1\t2\n", ":1: error: bad architecture"},
      {"a\tb\tc\td\te\tf\t1\tnan\n", ":1: error: bad default time"},
  };
  char badp[256];
  snprintf(badp, sizeof badp, "%s/bad.tsv", dir);
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    FILE *fp = fopen(badp, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
    fputs(bad[i][0], fp);
    fclose(fp);
    CU_ASSERT_EQUAL(cg_tuning_load(&t, badp, err, sizeof err), -1);
    CU_ASSERT(tu_contains(err, badp) && tu_contains(err, bad[i][1]));
    /* a save does not replace it */
    CU_ASSERT_EQUAL(cg_tuning_save(badp, e, 1, err, sizeof err), -1);
    size_t len = 0;
    char *now = ut_read_regular(badp, 1 << 20, &len);
    CU_ASSERT(now && !strcmp(now, bad[i][0]));
    free(now);
  }
  FILE *fp = fopen(badp, "w");
  fwrite("a\0b\n", 1, 4, fp);
  fclose(fp);
  CU_ASSERT_EQUAL(cg_tuning_load(&t, badp, err, sizeof err), -1);
  CU_ASSERT(tu_contains(err, "NUL bytes"));
  /* two writers at once: each saves its own buckets 30 times */
  char racep[256];
  snprintf(racep, sizeof racep, "%s/race.tsv", dir);
  pid_t kid[2];
  for (int k = 0; k < 2; k++) {
    kid[k] = fork();
    if (kid[k] == 0) {
      int rc = 0;
      for (int i = 0; i < 30; i++) {
        cg_tuning_entry x = e[k];
        snprintf(x.bucket, sizeof x.bucket, "bucket %d.%d", k, i);
        rc |= cg_tuning_save(racep, &x, 1, NULL, 0);
      }
      _exit(rc ? 1 : 0);
    }
  }
  for (int k = 0; k < 2; k++) {
    int status = -1;
    waitpid(kid[k], &status, 0);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  CU_ASSERT_EQUAL(cg_tuning_load(&t, racep, err, sizeof err), 0);
  CU_ASSERT_EQUAL(t.n, 60);
  cg_tuning_free(&t);
  nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Every launch configuration hsac tune may pick computes what the
 * defaults compute: for models that hold every tunable kernel (linear,
 * GEMV, attention over the sequence and in chunks, HSA's f32 sparse
 * attention, retrieval, top-k), each round's logits on cuda-emu against
 * the reference, prefill in ragged segments of 29 (tiles cut short), f32
 * and on the tensor cores, and decode in f32.  The profile names the
 * kinds. */
static void test_candidates(void) {
  /* paper_swa_hsa unfused (-O0) too: its retrieval as a stored score
   * matrix and top-k */
#ifdef HSAC_SANITIZED
  static const char *const names[] = {"paper_swa_hsa"};
  static const int levels[] = {1};
#else
  static const char *const names[] = {"paper_swa_hsa", "hsa_ramba", "moba", "paper_swa_hsa"};
  static const int levels[] = {1, 1, 1, 0};
#endif
  enum { N = 48 };
  int32_t tok[N];
  for (int i = 0; i < N; i++) tok[i] = (int32_t)((i * 41 + 3) % 256);
  bool seen[6] = {false};
  static const char *const kinds[6] = {"linear ", "gemv ", "attention ", "chunk_attention ",
                                       "retrieve ", "topk "};
  for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
    char model[512], weights[] = "/tmp/hsac-test-cand-XXXXXX";
    CU_ASSERT_FATAL(model_weights(names[k], 8, model, sizeof model, weights));
    float *ref = NULL;
    int64_t V = 0;
    CU_ASSERT_FATAL(
        tu_model_logits(model, weights, HSART_BACKEND_REF, NULL, tok, N, N, &ref, &V, 0));
    bool bf16 = strstr(names[k], "paper") != NULL;
    for (int tc = 0; tc < 2; tc++)
      for (int round = 2; round <= CG_CUDA_MAX_CANDIDATES; round++) {
        hsart_model_options mo = {.opt_level = levels[k], .backend = HSART_BACKEND_CUDA_EMU,
                                  .gpu_bf16 = tc, .tune_round = round};
        float *pre = NULL, *dec = NULL;
        CU_ASSERT(tu_model_logits_mo(model, weights, &mo, tok, N, 29, &pre, &V));
        /* decode (the GEMV candidates): f32; the tensor cores' GEMV is the
         * same template with bf16 inputs */
        CU_ASSERT(tc || tu_model_logits_mo(model, weights, &mo, tok, N, 0, &dec, &V));
        if (pre && (dec || tc)) {
          double e1 = tu_norm_err(ref, pre, N * V), e2 = dec ? tu_norm_err(ref, dec, N * V) : 0;
          double tol = tc ? TOL_TC : bf16 ? 2e-3 : 1e-5;
          if (e1 > tol || e2 > tol)
            printf("\n    %s -O%d, %s, round %d: %.2e (prefill), %.2e (decode)", names[k],
                   levels[k], tc ? "tensor cores" : "f32", round, e1, e2);
          CU_ASSERT(e1 <= tol);
          CU_ASSERT(e2 <= tol);
        }
        free(pre), free(dec);
      }
    /* which kinds of knob the model has, from its profile */
    hsart_model_options mo = {.opt_level = levels[k], .backend = HSART_BACKEND_CUDA_EMU,
                              .tuning_db = "none"};
    hsart_model *m = NULL;
    hsart_error e;
    CU_ASSERT_EQUAL_FATAL(hsart_model_load(model, weights, &mo, &m, &e), HSART_OK);
    hsart_session_options so = {.segment = 29, .profile = 1};
    hsart_session *s = NULL;
    CU_ASSERT_EQUAL_FATAL(hsart_session_create(m, &so, &s, &e), HSART_OK);
    CU_ASSERT_EQUAL(hsart_prefill(s, tok, 40), HSART_OK);
    CU_ASSERT_EQUAL(hsart_decode(s, 5), HSART_OK);
    int64_t np = hsart_session_profile(s, NULL, 0);
    hsart_op_time *pt = calloc((size_t)np + 1, sizeof *pt);
    CU_ASSERT_EQUAL(hsart_session_profile(s, pt, np), np);
    for (int64_t i = 0; i < np; i++) {
      CU_ASSERT(pt[i].calls > 0 && pt[i].ms >= 0 && !strncmp(pt[i].kernel, "hsac_", 5));
      for (int j = 0; j < 6; j++)
        if (!strncmp(pt[i].bucket, kinds[j], strlen(kinds[j]))) {
          seen[j] = true;
          CU_ASSERT(pt[i].candidates >= 2 && pt[i].config[0]);
        }
    }
    free(pt);
    hsart_session_free(s);
    hsart_model_free(m);
    free(ref);
    remove(weights);
  }
#ifndef HSAC_SANITIZED
  for (int j = 0; j < 6; j++) {
    if (!seen[j]) printf("\n    no %skernel among the models", kinds[j]);
    CU_ASSERT(seen[j]);
  }
#else
  CU_ASSERT(seen[0]); /* one model: its linears, at least */
#endif
}

/* hsart_tune under the emulator: every round runs, each bucket's winner
 * is one of its candidates and no slower than the default, the database
 * gets an entry per bucket and configures a later load (whose profile
 * shows the winners); a malformed database stops the tuner before it
 * measures and fails a load, naming the line; the cpu backend and the
 * profile of a session without it are refused. */
static void test_tune(void) {
  char model[512], weights[] = "/tmp/hsac-test-tune-XXXXXX";
  CU_ASSERT_FATAL(model_weights("paper_swa_hsa", 5, model, sizeof model, weights));
  char dir[] = "/tmp/hsac-test-tunedb-XXXXXX";
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
  char db[256];
  snprintf(db, sizeof db, "%s/tuning.tsv", dir);
  hsart_model_options mo = {.opt_level = 1, .backend = HSART_BACKEND_CUDA_EMU};
  hsart_tune_options to = {.weights_path = weights, .length = 48, .decode = 3, .reps = 1,
                           .db_path = db};
  hsart_tune_report rep;
  hsart_error e;
  CU_ASSERT_EQUAL_FATAL(hsart_tune(model, &mo, &to, &rep, &e), HSART_OK);
  CU_ASSERT_EQUAL(rep.rounds, 4); /* f32: the GEMV's three thread counts and its split */
  CU_ASSERT(rep.max_err <= 1e-3);
  CU_ASSERT_STRING_EQUAL(rep.gpu.name, "emulator");
  CU_ASSERT_STRING_EQUAL(rep.db_path, db);
  CU_ASSERT(rep.nresults >= 8);
  for (int i = 0; i < rep.nresults; i++) {
    const hsart_tune_result *r = &rep.results[i];
    CU_ASSERT(r->ops > 0 && r->candidates >= 2 && r->default_us > 0);
    CU_ASSERT(r->best_us <= r->default_us);
    CU_ASSERT_EQUAL(r->rejected, 0);
  }
  cg_tuning t;
  char err[1024];
  CU_ASSERT_EQUAL_FATAL(cg_tuning_load(&t, db, err, sizeof err), 0);
  CU_ASSERT_EQUAL(t.n, rep.nresults);
  hsart_tune_report_free(&rep);
  /* bf16 arithmetic: rounds checked against an f32 run's logits; every
   * candidate computes the same function, so none is rejected */
  hsart_model_options mb = mo;
  mb.gpu_bf16 = 1;
  hsart_tune_options tb = to;
  tb.dry_run = 1;
  tb.db_path = NULL;
  CU_ASSERT_EQUAL_FATAL(hsart_tune(model, &mb, &tb, &rep, &e), HSART_OK);
  CU_ASSERT_EQUAL(rep.rounds, 4); /* the tensor-core linears' four tiles, the GEMV's four */
  bool saw_sparse = false;
  for (int i = 0; i < rep.nresults; i++) {
    CU_ASSERT_EQUAL(rep.results[i].rejected, 0);
    saw_sparse |= !strncmp(rep.results[i].bucket, "chunk_attention bf16", 20);
  }
  CU_ASSERT(saw_sparse);
  hsart_tune_report_free(&rep);
  /* a later load reads the winners */
  mo.tuning_db = db;
  hsart_model *m = NULL;
  CU_ASSERT_EQUAL_FATAL(hsart_model_load(model, weights, &mo, &m, &e), HSART_OK);
  char d[1024];
  hsart_model_describe(m, d, sizeof d);
  CU_ASSERT(tu_contains(d, "configured by") && tu_contains(d, db));
  hsart_session_options so = {.profile = 1};
  hsart_session *s = NULL;
  CU_ASSERT_EQUAL_FATAL(hsart_session_create(m, &so, &s, &e), HSART_OK);
  int32_t tok[48];
  for (int i = 0; i < 48; i++) tok[i] = (int32_t)(i * 7 % 256);
  CU_ASSERT_EQUAL(hsart_prefill(s, tok, 48), HSART_OK);
  hsart_op_time pt[512];
  int64_t np = hsart_session_profile(s, pt, 512);
  CU_ASSERT(np > 0 && np <= 512);
  cg_tuning_device dev = {"emulator", "host", "-", "emu.h"};
  int checked = 0;
  for (int64_t i = 0; i < np && i < 512; i++) {
    if (!pt[i].bucket[0]) continue;
    const cg_tuning_entry *x = cg_tuning_find(&t, &dev, pt[i].bucket);
    if (x) checked += !strcmp(x->config, pt[i].config);
    CU_ASSERT(!x || !strcmp(x->config, pt[i].config));
  }
  CU_ASSERT(checked > 0);
  cg_tuning_free(&t);
  hsart_session_free(s);
  hsart_model_free(m);
  /* the same model on ref: a profile without kernels; none when not asked */
  hsart_model_options mr = {.opt_level = 1, .backend = HSART_BACKEND_REF};
  CU_ASSERT_EQUAL_FATAL(hsart_model_load(model, weights, &mr, &m, &e), HSART_OK);
  CU_ASSERT_EQUAL_FATAL(hsart_session_create(m, &so, &s, &e), HSART_OK);
  CU_ASSERT_EQUAL(hsart_prefill(s, tok, 20), HSART_OK);
  np = hsart_session_profile(s, pt, 512);
  CU_ASSERT(np > 0 && pt[0].calls > 0 && pt[0].kernel[0] == 0 && pt[0].op[0]);
  hsart_session_free(s);
  CU_ASSERT_EQUAL_FATAL(hsart_session_create(m, NULL, &s, &e), HSART_OK);
  CU_ASSERT_EQUAL(hsart_session_profile(s, pt, 512), -1);
  hsart_session_free(s);
  hsart_model_free(m);
  CU_ASSERT_EQUAL(hsart_tune(model, &mr, &to, &rep, &e), HSART_EINVAL);
  /* a malformed database: refused before measuring, and by a load */
  FILE *fp = fopen(db, "a");
  fputs("emulator\thost\n", fp);
  fclose(fp);
  size_t len0 = 0;
  char *before = ut_read_regular(db, 1 << 20, &len0);
  CU_ASSERT_EQUAL(hsart_tune(model, &mo, &to, &rep, &e), HSART_EFORMAT);
  CU_ASSERT(tu_contains(e.message, db) && tu_contains(e.message, "fewer than 8"));
  size_t len1 = 0;
  char *after = ut_read_regular(db, 1 << 20, &len1);
  CU_ASSERT(before && after && len0 == len1 && !memcmp(before, after, len0));
  free(before), free(after);
  m = NULL;
  CU_ASSERT_EQUAL(hsart_model_load(model, weights, &mo, &m, &e), HSART_EFORMAT);
  CU_ASSERT(tu_contains(e.message, db) && tu_contains(e.message, ": error: "));
  CU_ASSERT_PTR_NULL(m);
  /* "none" reads nothing */
  mo.tuning_db = "none";
  CU_ASSERT_EQUAL(hsart_model_load(model, weights, &mo, &m, &e), HSART_OK);
  hsart_model_free(m);
  nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
  remove(weights);
}

/* ctest -L gpu: hsac tune's procedure on the GPU, into a database of the
 * test's own (skipped, saying why, without one). */
static void test_gpu_tune(void) {
  if (!have_gpu()) return;
  char model[512], weights[] = "/tmp/hsac-test-gtune-XXXXXX";
  CU_ASSERT_FATAL(model_weights("paper_swa_hsa", 5, model, sizeof model, weights));
  char db[] = "/tmp/hsac-test-gtune-db-XXXXXX";
  int fd = mkstemp(db);
  close(fd);
  remove(db);
  for (int tc = 0; tc < 2; tc++) {
    hsart_model_options mo = {.opt_level = 1, .backend = HSART_BACKEND_CUDA, .gpu_bf16 = tc};
    hsart_tune_options to = {.weights_path = weights, .length = 2048, .decode = 8, .reps = 2,
                             .db_path = db};
    hsart_tune_report rep;
    hsart_error e;
    CU_ASSERT_EQUAL_FATAL(hsart_tune(model, &mo, &to, &rep, &e), HSART_OK);
    CU_ASSERT(rep.max_err <= 1e-3);
    for (int i = 0; i < rep.nresults; i++) {
      const hsart_tune_result *r = &rep.results[i];
      printf("\n    %-60s %8s %9.1f us  %8s %9.1f us", r->bucket, r->default_config,
             r->default_us, r->best, r->best_us);
      CU_ASSERT_EQUAL(r->rejected, 0);
    }
    hsart_tune_report_free(&rep);
  }
  remove(db);
  remove(weights);
}

static void test_gpu_batched_decode(void) {
  static const hsart_backend bes[] = {HSART_BACKEND_CUDA};
  if (have_gpu()) batched_decode(bes, 1);
}

void tu_add_gpu_suite(void) {
  CU_pSuite s = CU_add_suite("gpu", suite_init, suite_cleanup);
  CU_add_test(s, "example models on the GPU: == ref, decode == prefill", test_gpu_example_models);
  CU_add_test(s, "batched decode on the GPU", test_gpu_batched_decode);
  CU_add_test(s, "hsac tune's procedure on the GPU", test_gpu_tune);
}

void tu_add_cuda_suite(void) {
  CU_pSuite s = CU_add_suite("cuda", suite_init, suite_cleanup);
  CU_add_test(s, "the emulator: barriers, shuffles, votes, atomics, deadlocks", test_emulator);
  CU_add_test(s, "every example's kernels through NVRTC for sm_80 and sm_90, no spills",
              test_nvrtc);
  CU_add_test(s, "CUBINs in the kernel cache: hits, keys, corrupt entries rebuilt",
              test_cubin_cache);
  CU_add_test(s, "a device fault through a session: named, reset, then == fresh",
              test_device_fault);
  CU_add_test(s, "--backend cuda and cuda-emu", test_backend_errors);
  CU_add_test(s, "history pages past the device budget move to host memory", test_page_offload);
  CU_add_test(s, "the tuning database: round trip, malformed lines, two writers",
              test_tuning_db);
  /* whole models and the tuner: a suite of their own, so that ctest runs
   * it beside the kernels' */
  s = CU_add_suite("cuda_models", suite_init, suite_cleanup);
  CU_add_test(s, "example models under the emulator: == ref, decode == prefill",
              test_example_models);
  CU_add_test(s, "batched decode of sessions of different lengths", test_batched_decode);
  CU_add_test(s, "every launch configuration of hsac tune == ref", test_candidates);
  CU_add_test(s, "hsart_tune under the emulator; profiles", test_tune);
}
