/* emit.c - CUDA C for each kernel (see cuda.h).
 *
 * A kernel is one instantiation of a prelude.cuh template: the generator's
 * work is choosing the template and writing the op's constants as its
 * arguments, so NVRTC specializes every loop bound, head count and vector
 * width.  Floating-point constants are written as hexadecimal literals
 * (exact).  Layers with equal shapes give equal text: the runtime then
 * keeps one kernel for all of them. */
#include "codegen/cuda/cuda.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/cuda/sources.h"

#define DIMN(v, i) ((v)->type.dims[i].n)
#define LAST(v) DIMN(v, (v)->type.rank - 1)

enum { NT = 128 };

typedef struct sb {
  char **buf;
  size_t *len;
  bool oom;
} sb;

static void put(sb *s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char tmp[4096];
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0 || s->oom) return;
  if ((size_t)n >= sizeof tmp) {
    s->oom = true; /* cannot happen: no line is this long */
    return;
  }
  char *p = realloc(*s->buf, *s->len + (size_t)n + 1);
  if (!p) {
    s->oom = true;
    return;
  }
  *s->buf = p;
  memcpy(p + *s->len, tmp, (size_t)n + 1);
  *s->len += (size_t)n;
}

static void put_text(sb *s, const char *text) {
  size_t n = strlen(text);
  char *p = s->oom ? NULL : realloc(*s->buf, *s->len + n + 1);
  if (!p) {
    s->oom = true;
    return;
  }
  *s->buf = p;
  memcpy(p + *s->len, text, n + 1);
  *s->len += n;
}

/* "H, RE" of input i */
static const char *hre(const cg_kernel_req *q, int i, char *b, size_t n) {
  snprintf(b, n, "%d, %lldll", (int)q->hist[i], (long long)q->row_elems[i]);
  return b;
}

static const ir_op *src_of(const cg_kernel_req *q) { return q->scores ? q->scores : q->op; }

/* Blocks that share one row of v (elementwise, rope, norm: gridDim.y) so
 * that each has about 8 elements per thread, `units` at most (a norm's
 * vectors): a chunk's row of an encoder's value holds P tokens' values,
 * and one block per chunk row left all but a few SMs idle. */
static int64_t row_blocks(const ir_value *v, int64_t units) {
  int64_t n = 1;
  for (int i = 1; i < v->type.rank; i++) n *= DIMN(v, i);
  int64_t b = (n + NT * 8 - 1) / (NT * 8);
  if (b > units) b = units;
  if (b > 65535) b = 65535;
  return b < 1 ? 1 : b;
}

bool cg_cuda_supported(const cg_kernel_req *q, char *why, size_t size) {
  const ir_op *op = q->op;
  for (int i = 0; i < IR_MAX_INPUTS; i++)
    if (q->hist16[i] && !(cg_cuda_sparse_mma(q, CG_CUDA_BF16) && (i == 1 || i == 2))) {
      snprintf(why, size, "only the tensor-core sparse attention reads bf16 history pages");
      return false;
    }
  if (q->fused || q->fused_up || q->prenorm) {
    snprintf(why, size, "the CUDA backend compiles no fused GEMM epilogues");
    return false;
  }
  if (q->wtype != CG_W_F32) {
    snprintf(why, size, "the CUDA backend reads f32 weights only (use --weights-dtype f32)");
    return false;
  }
  switch (op->code) {
  case IR_EMBED: case IR_RMSNORM: case IR_LAYERNORM: case IR_LINEAR: case IR_SPLIT_HEADS:
  case IR_MERGE_HEADS: case IR_ROPE: case IR_ADD: case IR_BIAS_ADD: case IR_SILU_MUL:
  case IR_QUANTIZE: case IR_SIGMOID: case IR_CHUNK: case IR_APPEND_ROW: case IR_ROWS:
  case IR_ROW: case IR_ZERO_ROW: case IR_MEAN_ROWS: case IR_BLOCK_LANDMARK:
  case IR_LANDMARK_SCORES: case IR_TOPK: case IR_STICKBREAK: case IR_SOFTMAX:
  case IR_ATTENTION: case IR_CHUNK_ATTENTION: case IR_LANDMARK_ATTENTION:
  case IR_MOBA_ATTENTION: case IR_NSA_COMPRESS: case IR_NSA_ATTENTION:
    break;
  default:
    snprintf(why, size, "the CUDA backend has no kernel for %s yet", ir_ops[op->code].name);
    return false;
  }
  if (op->code == IR_ATTENTION && op->in[0]->type.rank == 3 && !ir_attr_i(op, "causal", 1)) {
    snprintf(why, size, "bidirectional attention over the sequence cannot run incrementally");
    return false;
  }
  if (op->code == IR_TOPK && ir_attr_i(op, "k", 1) > 64) {
    snprintf(why, size, "top-k above 64 is not supported by the CUDA retrieval kernel");
    return false;
  }
  (void)src_of;
  return true;
}

static const char *hexf(double v, char *b, size_t n) {
  snprintf(b, n, "%a", v);
  return b;
}

/* Shared memory of the tensor-core attentions (chunk_attention_mma over
 * chunks of P keys, attention_mma over blocks of P = 64) with nw warps of
 * `stages` buffers, bytes: prelude.cuh's mma_attn_shape (Q in bf16; per
 * warp and stage, a block's K and V rows in bf16, or in the merge its
 * partial output, maxima and sums in f32; the selection). */
static int64_t sparse_mma_smem(int64_t grp, int64_t d, int64_t P, int64_t KS, int nw,
                               int stages) {
  int64_t MR = (grp + 15) / 16 * 16, DP = (d + 15) / 16 * 16, PP = (P + 15) / 16 * 16;
  int64_t LD = DP + 8, wbuf = stages * 2 * PP * LD, outf = MR * DP + 2 * MR;
  int64_t sbuf = nw * wbuf > (nw > 1 ? 2 * nw * outf : 0) ? nw * wbuf : 2 * nw * outf;
  return 2 * MR * LD + 2 * sbuf + 4 * KS + 8;
}

enum { SMEM_STATIC = 48 * 1024 };

static void sparse_shape(const ir_op *op, int64_t *grp, int64_t *d, int64_t *P, int64_t *KS) {
  *d = DIMN(op->in[0], 2), *P = DIMN(op->in[1], 1);
  *grp = DIMN(op->in[0], 1) / DIMN(op->in[1], 2), *KS = DIMN(op->in[3], 2);
}

/* A GEMV knob value with this bit: gemv_split with (value & 0xff) warps. */
enum { GEMV_SPLIT = 0x1000 };

/* attention_mma's block of keys. */
enum { WINDOW_KEYS = 64 };

/* Whether attention over the sequence runs on the tensor cores
 * (attention_mma): bf16 math, causal, at least 4 query heads per KV head
 * (fewer would leave most of a 16-row tile empty), one warp's buffers in
 * static shared memory. */
static bool attention_mma_ok(const ir_op *op, cg_cuda_math math) {
  if (op->code != IR_ATTENTION || math != CG_CUDA_BF16 || op->in[0]->type.rank != 3 ||
      !ir_attr_i(op, "causal", 1))
    return false;
  int64_t grp = DIMN(op->in[0], 1) / DIMN(op->in[1], 1), d = LAST(op->in[0]);
  return grp >= 4 && grp <= 64 && sparse_mma_smem(grp, d, WINDOW_KEYS, 1, 1, 1) <= SMEM_STATIC;
}

/* A tensor-core attention's knob value: its warps + 16 * (stages - 1). */
static int mma_warps(int v) { return v & 15; }
static int mma_stages(int v) { return v >> 4 ? 2 : 1; }

/* The warps (+ 16 * (stages - 1)) of a tensor-core attention's knob: the
 * first four of these that fit. */
static int mma_warp_cands(int64_t grp, int64_t d, int64_t P, int64_t KS, int vals[],
                          const char *names[]) {
  static const int nws[] = {1, 2, 1 + 16, 4, 2 + 16, 8};
  static const char *const nwn[] = {"1 warp",  "2 warps",           "1 warp, 2 stages",
                                    "4 warps", "2 warps, 2 stages", "8 warps"};
  int n = 0;
  for (int i = 0; i < 6 && n < CG_CUDA_MAX_CANDIDATES; i++)
    if (sparse_mma_smem(grp, d, P, KS, mma_warps(nws[i]), mma_stages(nws[i])) <= SMEM_STATIC) {
      vals[n] = nws[i];
      names[n++] = nwn[i];
    }
  return n;
}

/* Whether chunk_attention runs on the tensor cores (chunk_attention_mma):
 * bf16 math, and one warp's buffers fit in static shared memory. */
bool cg_cuda_sparse_mma(const cg_kernel_req *q, cg_cuda_math math) {
  const ir_op *op = q->op;
  if (op->code != IR_CHUNK_ATTENTION || math != CG_CUDA_BF16) return false;
  int64_t grp, d, P, KS;
  sparse_shape(op, &grp, &d, &P, &KS);
  return grp <= 64 && sparse_mma_smem(grp, d, P, KS, 1, 1) <= SMEM_STATIC;
}

/* Threads per block of the top-k lists (retrieve, topk): the default
 * halves 64 while the lists' shared memory (nt * K * 8 bytes) passes 32 KB. */
static int lists_nt(int64_t K) {
  int nt = 64;
  while (nt > 32 && nt * K * 8 > 32768) nt /= 2;
  return nt;
}

/* The candidates of a knob (see cuda.h): their values (a linear's f32 tile
 * rows; its tensor-core warps as 16 * rows + columns; the tensor-core
 * attentions' warps + 16 * (stages - 1); else threads per block) and
 * names.  Candidate 0 is the default. */
static int knob_values(const cg_kernel_req *q, cg_cuda_math math, cg_cuda_knob knob,
                       int vals[CG_CUDA_MAX_CANDIDATES], const char *names[CG_CUDA_MAX_CANDIDATES]) {
  static const char *const nts[] = {"nt32", "nt64", "nt128", "nt256"};
  const ir_op *op = q->op;
  int n = 0;
#define CAND(v, nm) (vals[n] = (v), names[n] = (nm), n++)
  if (knob == CG_KNOB_GEMV) {
    if (op->code != IR_LINEAR) return 0;
    /* threads per block, an output each; or (GEMV_SPLIT | warps) gemv_split */
    CAND(128, nts[2]), CAND(64, nts[1]), CAND(256, nts[3]), CAND(GEMV_SPLIT | 16, "split16");
    return n;
  }
  switch (op->code) {
  case IR_LINEAR:
    if (math == CG_CUDA_BF16) {
      CAND(2 * 16 + 2, "64x64"), CAND(4 * 16 + 2, "128x64"), CAND(2 * 16 + 4, "64x128");
      CAND(1 * 16 + 2, "32x64");
    } else {
      CAND(64, "64x64"), CAND(128, "128x64"), CAND(32, "32x64");
    }
    return n;
  case IR_ATTENTION:
    if (attention_mma_ok(op, math)) /* attention_mma: warps, stages */
      return mma_warp_cands(DIMN(op->in[0], 1) / DIMN(op->in[1], 1), LAST(op->in[0]),
                            WINDOW_KEYS, 1, vals, names);
    CAND(128, nts[2]), CAND(64, nts[1]), CAND(256, nts[3]);
    return n;
  case IR_CHUNK_ATTENTION:
    if (cg_cuda_sparse_mma(q, math)) { /* chunk_attention_mma: warps, stages */
      int64_t grp, d, P, KS;
      sparse_shape(op, &grp, &d, &P, &KS);
      return mma_warp_cands(grp, d, P, KS, vals, names);
    }
    CAND(128, nts[2]), CAND(64, nts[1]), CAND(256, nts[3]);
    return n;
  case IR_TOPK: {
    int64_t K = ir_attr_i(op, "k", 1);
    int def = lists_nt(K);
    CAND(def, nts[def == 32 ? 0 : 1]);
    for (int nt = 32, i = 0; nt <= 128; nt *= 2, i++)
      if (nt != def && nt * K * 8 <= 32768) CAND(nt, nts[i]);
    return n;
  }
  default:
    return 0;
  }
#undef CAND
}

int cg_cuda_candidates(const cg_kernel_req *q, cg_cuda_math math, cg_cuda_knob knob,
                       const char *names[CG_CUDA_MAX_CANDIDATES]) {
  int vals[CG_CUDA_MAX_CANDIDATES];
  const char *nm[CG_CUDA_MAX_CANDIDATES];
  int n = knob_values(q, math, knob, vals, nm);
  if (names)
    for (int i = 0; i < n; i++) names[i] = nm[i];
  return n;
}

static long long pow2_up(int64_t v) {
  long long p = 1;
  while (p < v) p *= 2;
  return p;
}

bool cg_cuda_bucket(const cg_kernel_req *q, cg_cuda_math math, cg_cuda_knob knob, char *buf,
                    size_t size) {
  if (!cg_cuda_candidates(q, math, knob, NULL)) return false;
  const ir_op *op = q->op;
  const char *ar = math == CG_CUDA_BF16 ? "bf16" : "f32";
  switch (op->code) {
  case IR_LINEAR:
    snprintf(buf, size, "%s %s in<=%lld out<=%lld", knob == CG_KNOB_GEMV ? "gemv" : "linear", ar,
             pow2_up(DIMN(op->in[1], 1)), pow2_up(DIMN(op->in[1], 0)));
    return true;
  case IR_ATTENTION: {
    const ir_value *qv = op->in[0];
    int rank = qv->type.rank;
    if (rank == 3)
      snprintf(buf, size, "attention %s d=%lld heads/kv=%lld %s", ar, (long long)LAST(qv),
               (long long)(DIMN(qv, 1) / DIMN(op->in[1], 1)),
               ir_attr_i(op, "window", 0) > 0 ? "window" : "causal");
    else
      snprintf(buf, size, "attention %s d=%lld in-chunk rows=%lld", ar, (long long)LAST(qv),
               (long long)DIMN(qv, rank - 3));
    return true;
  }
  case IR_CHUNK_ATTENTION: {
    const ir_attr *merge = ir_get_attr(op, "merge");
    snprintf(buf, size, "chunk_attention %s d=%lld chunk=%lld k=%lld heads/kv=%lld %s", ar,
             (long long)DIMN(op->in[0], 2), (long long)DIMN(op->in[1], 1),
             (long long)DIMN(op->in[3], 2), (long long)(DIMN(op->in[0], 1) / DIMN(op->in[1], 2)),
             merge && !strcmp(merge->s, "joint") ? "joint" : "weighted");
    return true;
  }
  case IR_TOPK:
    if (q->scores)
      snprintf(buf, size, "retrieve %s k=%lld d=%lld", ar, (long long)ir_attr_i(op, "k", 1),
               (long long)DIMN(q->scores->in[0], 2));
    else
      snprintf(buf, size, "topk %s k=%lld", ar, (long long)ir_attr_i(op, "k", 1));
    return true;
  default:
    return false;
  }
}

/* The value of cfg's pick for a knob (its default without cfg), or -1 with
 * err when the pick is not a candidate. */
static int knob_pick(const cg_kernel_req *q, cg_cuda_math math, const cg_cuda_cfg *cfg,
                     cg_cuda_knob knob, char *err, size_t errsize) {
  int vals[CG_CUDA_MAX_CANDIDATES];
  const char *names[CG_CUDA_MAX_CANDIDATES];
  int n = knob_values(q, math, knob, vals, names);
  int pick = cfg ? cfg->pick[knob] : 0;
  if (n == 0 && pick == 0) return 0;
  if (pick < 0 || pick >= n) {
    snprintf(err, errsize, "internal error: configuration %d of a %s kernel's %s knob (it has %d)",
             pick, ir_ops[q->op->code].name, knob == CG_KNOB_GEMV ? "gemv" : "main", n);
    return -1;
  }
  return vals[pick];
}

int cg_cuda_emit(const cg_kernel_req *q, cg_cuda_math math, const cg_cuda_cfg *cfg,
                 const char *name, char **buf, size_t *len, cg_cuda_info *info, char *err,
                 size_t errsize) {
  if (!cg_cuda_supported(q, err, errsize)) return -1;
  const ir_op *op = q->op;
  memset(info, 0, sizeof *info);
  info->block = NT;
  info->grid_y = 1;
  int main_v = knob_pick(q, math, cfg, CG_KNOB_MAIN, err, errsize);
  int gemv_v = knob_pick(q, math, cfg, CG_KNOB_GEMV, err, errsize);
  if (main_v < 0 || gemv_v < 0) return -1;
  sb s = {buf, len, false};
  char h0[48], h1[48], h2[48], h3[48], h4[48], f[64], call[1024];
  const ir_value *x = op->code == IR_TOPK && q->scores ? q->scores->in[0] : op->in[0];
  (void)x;
  int nt = NT;
  bool linear = false;
  switch (op->code) {
  case IR_EMBED:
    snprintf(call, sizeof call, "hs::embed<%d, %s, %lldll>(a)", nt, hre(q, 0, h0, sizeof h0),
             (long long)DIMN(op->in[1], 1));
    break;
  case IR_RMSNORM: case IR_LAYERNORM: {
    const ir_attr *e = ir_get_attr(op, "eps");
    int64_t nvec = 1; /* the D-vectors of a row */
    for (int i = 1; i + 1 < op->out[0]->type.rank; i++) nvec *= DIMN(op->out[0], i);
    info->grid_y = row_blocks(op->out[0], nvec);
    snprintf(call, sizeof call, "hs::norm<%d, %s, %s, %lldll>(a, (float)%s)", nt,
             op->code == IR_LAYERNORM ? "true" : "false", hre(q, 0, h0, sizeof h0),
             (long long)LAST(op->in[0]), hexf(e ? e->f : 1e-6, f, sizeof f));
    break;
  }
  case IR_ADD: case IR_SILU_MUL: case IR_SIGMOID: case IR_BIAS_ADD: case IR_SPLIT_HEADS:
  case IR_MERGE_HEADS: case IR_QUANTIZE: {
    int kind = op->code == IR_ADD ? 1 : op->code == IR_SILU_MUL ? 2 : op->code == IR_SIGMOID ? 3
               : op->code == IR_BIAS_ADD ? 4 : 0;
    bool two = kind == 1 || kind == 2;
    info->grid_y = row_blocks(op->out[0], INT64_MAX);
    snprintf(call, sizeof call, "hs::eltwise<%d, %d, %s, %s, %lldll>(a)", nt, kind,
             hre(q, 0, h0, sizeof h0), two ? hre(q, 1, h1, sizeof h1) : "0, 0ll",
             (long long)(kind == 4 ? LAST(op->in[0]) : 1));
    break;
  }
  case IR_ROPE: {
    const ir_value *v = op->in[0];
    int rank = v->type.rank;
    const ir_attr *ta = ir_get_attr(op, "theta");
    info->grid_y = row_blocks(op->out[0], INT64_MAX);
    snprintf(call, sizeof call, "hs::rope<%d, %d, %s, %lldll, %lldll, %lldll, %lldll>(a, %s)",
             nt, rank, hre(q, 0, h0, sizeof h0), (long long)LAST(v),
             (long long)(rank == 3 ? 1 : DIMN(v, rank - 3)), (long long)ir_attr_i(op, "pos_mul", 1),
             (long long)ir_attr_i(op, "pos_add", 0), hexf(ta ? ta->f : 10000.0, f, sizeof f));
    break;
  }
  case IR_CHUNK: case IR_APPEND_ROW: case IR_ROWS: case IR_ROW: case IR_ZERO_ROW:
  case IR_MEAN_ROWS: case IR_BLOCK_LANDMARK: {
    int kind = op->code == IR_CHUNK ? 0 : op->code == IR_APPEND_ROW ? 1 : op->code == IR_ROWS ? 2
               : op->code == IR_ROW ? 3 : op->code == IR_ZERO_ROW ? 4
               : op->code == IR_MEAN_ROWS ? 5 : 6;
    int64_t S = op->code == IR_CHUNK ? ir_attr_i(op, "size", 1)
                : op->code == IR_MEAN_ROWS ? DIMN(op->in[0], 1)
                : op->code == IR_BLOCK_LANDMARK ? ir_attr_i(op, "block", 1) : 1;
    int64_t at = op->code == IR_ROWS ? ir_attr_i(op, "begin", 0) : ir_attr_i(op, "row", 0);
    snprintf(call, sizeof call, "hs::chunk_rows<%d, %d, %s, %lldll, %lldll, %lldll>(a)", nt, kind,
             hre(q, 0, h0, sizeof h0), (long long)S, (long long)LAST(op->in[0]), (long long)at);
    break;
  }
  case IR_STICKBREAK: case IR_SOFTMAX:
    snprintf(call, sizeof call, "hs::slot_weights<%d, %d, %s, %s, %lldll, %lldll>(a)", nt,
             op->code == IR_SOFTMAX, op->nin == 2 ? "true" : "false", hre(q, 0, h0, sizeof h0),
             (long long)LAST(op->in[0]), (long long)ir_attr_i(op, "length_offset", 0));
    break;
  case IR_LINEAR: {
    int64_t O = DIMN(op->in[1], 0), I = DIMN(op->in[1], 1);
    const ir_type *t = &op->out[0]->type;
    int64_t V = 1;
    for (int i = 1; i < t->rank - 1; i++) V *= t->dims[i].n;
    bool tc = math == CG_CUDA_BF16;
    int wm = main_v / 16, wn = main_v % 16; /* tensor cores: warps */
    info->block = tc ? 32 * wm * wn : 256;
    info->tile_m = tc ? 32 * wm : main_v;
    info->vecs = V;
    info->grid_y = tc ? (O + 32 * wn - 1) / (32 * wn) : (O + 63) / 64;
    info->one_row = true;
    info->wt = true;
    bool split = gemv_v & GEMV_SPLIT;
    int nt1 = split ? 32 * (gemv_v & 0xff) : gemv_v;
    info->block1 = nt1;
    info->per1 = split ? 32 : nt1;
    info->outs1 = V * O;
    if (tc)
      snprintf(call, sizeof call, "hs::linear_mma<%d, %d, %s, %lldll, %lldll>(a)", wm, wn,
               hre(q, 0, h0, sizeof h0), (long long)I, (long long)O);
    else
      snprintf(call, sizeof call, "hs::linear<%d, %s, %lldll, %lldll>(a)", main_v,
               hre(q, 0, h0, sizeof h0), (long long)I, (long long)O);
    const char *gk = split ? "gemv_split" : "gemv";
    int gt = split ? gemv_v & 0xff : gemv_v;
    put(&s, "extern \"C\" __global__ void __launch_bounds__(%d) %s_1(const __grid_constant__ "
            "hs_args a) {\n  hs::%s<%d, %s, %s, %lldll, %lldll>(a);\n}\nHS_EMU_ENTRY(%s_1)\n",
        nt1, name, gk, gt, tc ? "true" : "false", h0, (long long)I, (long long)O, name);
    put(&s, "extern \"C\" __global__ void __launch_bounds__(%d) %s_1b(const __grid_constant__ "
            "hs_batch b) {\n  hs::%s<%d, %s, %s, %lldll, %lldll>(b.s[blockIdx.z]);\n}\n"
            "HS_EMU_ENTRY_BATCH(%s_1b)\n",
        nt1, name, gk, gt, tc ? "true" : "false", h0, (long long)I, (long long)O, name);
    linear = true;
    break;
  }
  case IR_ATTENTION: {
    const ir_value *qv = op->in[0], *kv = op->in[1];
    int rank = qv->type.rank;
    int64_t d = LAST(qv), Hq = DIMN(qv, rank - 2), Hk = DIMN(kv, rank - 2);
    int64_t P = rank == 3 ? 1 : DIMN(qv, rank - 3);
    if (attention_mma_ok(op, math)) {
      /* the query heads of a KV head as the rows of the mma tiles */
      info->grid_y = Hk;
      info->block = 32 * mma_warps(main_v);
      snprintf(call, sizeof call,
               "hs::attention_mma<%lld, %lld, %lldll, %lldll, %s, %s, %s, %d, %d>(a)",
               (long long)Hq, (long long)Hk, (long long)d, (long long)ir_attr_i(op, "window", 0),
               hre(q, 0, h0, sizeof h0), hre(q, 1, h1, sizeof h1), hre(q, 2, h2, sizeof h2),
               mma_warps(main_v), mma_stages(main_v));
      break;
    }
    info->grid_y = rank == 3 ? Hq : P * Hq;
    nt = info->block = main_v;
    snprintf(call, sizeof call,
             "hs::attention<%d, %d, %s, %lld, %lld, %lldll, %lldll, %lldll, %s, %s, %s>(a)", nt,
             rank, ir_attr_i(op, "causal", 1) ? "true" : "false", (long long)Hq, (long long)Hk,
             (long long)d, (long long)P, (long long)ir_attr_i(op, "window", 0),
             hre(q, 0, h0, sizeof h0), hre(q, 1, h1, sizeof h1), hre(q, 2, h2, sizeof h2));
    break;
  }
  case IR_CHUNK_ATTENTION: {
    const ir_value *qv = op->in[0], *K = op->in[1], *I = op->in[3];
    const ir_attr *merge = ir_get_attr(op, "merge");
    int64_t Hq = DIMN(qv, 1), d = DIMN(qv, 2), P = DIMN(K, 1), Hk = DIMN(K, 2);
    int64_t grp = Hq / Hk, KS = DIMN(I, 2);
    bool joint = merge && !strcmp(merge->s, "joint");
    (void)grp;
    if (cg_cuda_sparse_mma(q, math)) {
      /* the query heads of a KV head as the rows of the mma tiles */
      info->grid_y = Hk;
      info->block = 32 * mma_warps(main_v);
      snprintf(call, sizeof call,
               "hs::chunk_attention_mma<%s, %lld, %lld, %lld, %lldll, %lldll, %lldll, %s, %s, %s, "
               "%s, %s, %s, %s, %d, %d>(a, %d)",
               joint ? "true" : "false", (long long)Hq, (long long)Hk, (long long)DIMN(I, 1),
               (long long)KS, (long long)d, (long long)P, hre(q, 0, h0, sizeof h0),
               hre(q, 1, h1, sizeof h1), hre(q, 2, h2, sizeof h2), hre(q, 3, h3, sizeof h3),
               hre(q, 4, h4, sizeof h4), q->hist16[1] ? "true" : "false",
               q->hist16[2] ? "true" : "false", mma_warps(main_v), mma_stages(main_v),
               (int)ir_attr_i(op, "softmax_plus", 0));
      break;
    }
    info->grid_y = Hq;
    nt = info->block = main_v;
    snprintf(call, sizeof call,
             "hs::chunk_attention<%d, %s, %lld, %lld, %lld, %lldll, %lldll, %lldll, %s, %s, %s, "
             "%s, %s>(a, %d)",
             nt, merge && !strcmp(merge->s, "joint") ? "true" : "false", (long long)Hq,
             (long long)Hk, (long long)DIMN(I, 1), (long long)DIMN(I, 2), (long long)d,
             (long long)P, hre(q, 0, h0, sizeof h0), hre(q, 1, h1, sizeof h1),
             hre(q, 2, h2, sizeof h2), hre(q, 3, h3, sizeof h3), hre(q, 4, h4, sizeof h4),
             (int)ir_attr_i(op, "softmax_plus", 0));
    break;
  }
  case IR_LANDMARK_ATTENTION: case IR_MOBA_ATTENTION: {
    const ir_value *qv = op->in[0], *kv = op->in[1];
    int64_t Hq = DIMN(qv, 1), d = DIMN(qv, 2), Hk = DIMN(kv, 1);
    int64_t B = ir_attr_i(op, "block", 1), Ks = ir_attr_i(op, "topk", 1);
    bool lm = op->code == IR_LANDMARK_ATTENTION;
    info->grid_y = Hq;
    info->scratch_fixed = lm ? B * (Ks + 1) + 8 : (Ks + 1) * B + 8;
    info->scratch_per_t1 = 1;
    snprintf(call, sizeof call,
             "hs::%s<%d, %lldll, %lldll, %lld, %lld, %lldll, %lldll, %lldll, %s, %s, %s%s%s>(a)",
             lm ? "landmark_attention" : "moba_attention", nt, (long long)info->scratch_fixed,
             (long long)info->scratch_per_t1, (long long)Hq, (long long)Hk, (long long)d,
             (long long)B, (long long)Ks, hre(q, 0, h0, sizeof h0), hre(q, 1, h1, sizeof h1),
             hre(q, 2, h2, sizeof h2), lm ? ", " : "", lm ? hre(q, 3, h3, sizeof h3) : "");
    break;
  }
  case IR_NSA_COMPRESS: {
    const ir_value *kv = op->in[0];
    snprintf(call, sizeof call, "hs::nsa_compress<%d, %lldll, %lldll, %lldll, %lldll, %s>(a)", nt,
             (long long)DIMN(kv, 1), (long long)DIMN(kv, 2), (long long)ir_attr_i(op, "block", 1),
             (long long)ir_attr_i(op, "stride", 1), hre(q, 0, h0, sizeof h0));
    break;
  }
  case IR_NSA_ATTENTION: {
    const ir_value *qv = op->in[0], *kv = op->in[1];
    int64_t Hq = DIMN(qv, 1), d = DIMN(qv, 2), Hk = DIMN(kv, 1), grp = Hq / Hk;
    int64_t B = ir_attr_i(op, "block", 1), Ks = ir_attr_i(op, "topk", 1);
    int64_t W = ir_attr_i(op, "window", 1);
    char h5[48];
    info->grid_y = Hk;
    info->scratch_fixed = Ks * B + W + grp + 16;
    info->scratch_per_t1 = grp + 1;
    snprintf(call, sizeof call,
             "hs::nsa_attention<%d, %lldll, %lldll, %lld, %lld, %lldll, %lldll, %lldll, %lldll, "
             "%lldll, %lldll, %lldll, %lldll, %s, %s, %s, %s, %s, %s>(a)",
             nt, (long long)info->scratch_fixed, (long long)info->scratch_per_t1, (long long)Hq,
             (long long)Hk, (long long)d, (long long)ir_attr_i(op, "cmp_block", 1),
             (long long)ir_attr_i(op, "cmp_stride", 1), (long long)B, (long long)Ks,
             (long long)ir_attr_i(op, "init_blocks", 0), (long long)ir_attr_i(op, "local_blocks", 0),
             (long long)W, hre(q, 0, h0, sizeof h0), hre(q, 1, h1, sizeof h1),
             hre(q, 2, h2, sizeof h2), hre(q, 3, h3, sizeof h3), hre(q, 4, h4, sizeof h4),
             hre(q, 5, h5, sizeof h5));
    break;
  }
  case IR_LANDMARK_SCORES: case IR_TOPK: {
    const ir_op *sc = op->code == IR_LANDMARK_SCORES ? op : q->scores;
    if (op->code == IR_TOPK && !sc) {
      int64_t K = ir_attr_i(op, "k", 1), G = DIMN(op->in[0], 1);
      nt = info->block = main_v;
      info->grid_y = G;
      snprintf(call, sizeof call, "hs::topk<%d, %lld, %lldll, %s>(a)", nt, (long long)G,
               (long long)K, hre(q, 0, h0, sizeof h0));
      break;
    }
    const ir_value *qr = sc->in[0], *lmk = sc->in[1];
    const ir_attr *per = ir_get_attr(sc, "per"), *fixed = ir_get_attr(sc, "offset");
    int64_t G = DIMN(qr, 1), dr = DIMN(qr, 2);
    char consts[256];
    snprintf(consts, sizeof consts, "%lld, %lldll, %s, %lldll, %lldll, %s, %s", (long long)G,
             (long long)dr, lmk->type.rank == 3 ? "true" : "false",
             (long long)ir_attr_i(sc, "chunk", 1), (long long)ir_attr_i(sc, "exclude_window", 0),
             per && !strcmp(per->s, "chunk") ? "true" : "false", sc->nin == 3 ? "true" : "false");
    hexf(fixed ? fixed->f : 0.0, f, sizeof f);
    if (op->code == IR_LANDMARK_SCORES) {
      snprintf(call, sizeof call, "hs::landmark_scores<%d, %s, %s, %s>(a, (float)%s)", nt,
               consts, hre(q, 0, h0, sizeof h0), hre(q, 1, h1, sizeof h1), f);
    } else {
      int64_t K = ir_attr_i(op, "k", 1);
      nt = info->block = main_v;
      info->grid_y = G;
      snprintf(call, sizeof call, "hs::retrieve<%d, %s, %lldll, %s, %s>(a, (float)%s)", nt,
               consts, (long long)K, hre(q, 0, h0, sizeof h0), hre(q, 1, h1, sizeof h1), f);
      /* the decode step's scan, split over blocks, and its merge */
      info->split1 = true;
      info->split_scratch = 2 * K + 1;
      /* (and both for a batch of sessions: blockIdx.z) */
      for (int bt = 0; bt < 2; bt++) {
        const char *sfx = bt ? "b" : "", *par = bt ? "hs_batch b" : "hs_args a";
        const char *arg = bt ? "b.s[blockIdx.z]" : "a";
        const char *ent = bt ? "HS_EMU_ENTRY_BATCH" : "HS_EMU_ENTRY";
        put(&s, "extern \"C\" __global__ void __launch_bounds__(%d) %s_s%s(const "
                "__grid_constant__ %s) {\n  hs::retrieve_part<%d, %s, %lldll, %s, %s>(%s, "
                "(float)%s);\n}\n%s(%s_s%s)\n",
            nt, name, sfx, par, nt, consts, (long long)K, h0, h1, arg, f, ent, name, sfx);
        put(&s, "extern \"C\" __global__ void __launch_bounds__(%d) %s_m%s(const "
                "__grid_constant__ %s) {\n  hs::retrieve_merge<%d, %lld, %lldll>(%s);\n}\n"
                "%s(%s_m%s)\n",
            nt, name, sfx, par, nt, (long long)G, (long long)K, arg, ent, name, sfx);
      }
    }
    break;
  }
  default:
    snprintf(err, errsize, "the CUDA backend has no kernel for %s yet", ir_ops[op->code].name);
    return -1;
  }
  /* the tensor-core attentions: at least one block per multiprocessor,
   * which lifts the register cap ptxas otherwise chose for small blocks
   * (64 registers and a spill in a 64-thread chunk_attention_mma) */
  const char *minb = cg_cuda_sparse_mma(q, math) || attention_mma_ok(op, math) ? ", 1" : "";
  put(&s, "extern \"C\" __global__ void __launch_bounds__(%d%s) %s(const __grid_constant__ "
          "hs_args a) {\n  %s;\n}\nHS_EMU_ENTRY(%s)\n",
      info->block, minb, name, call, name);
  /* the batched entry (decode of up to HS_BATCH sessions: blockIdx.z picks
   * one's slots from the parameter, which stays in the constant bank as a
   * single hs_args does; slots read from global or shared memory instead
   * made ptxas keep them in registers and spill them around calls); a
   * linear's decode is its _1b GEMV */
  if (!linear)
    put(&s, "extern \"C\" __global__ void __launch_bounds__(%d%s) %s_b(const __grid_constant__ "
            "hs_batch b) {\n  const hs_args &a = b.s[blockIdx.z];\n  %s;\n}\n"
            "HS_EMU_ENTRY_BATCH(%s_b)\n",
        info->block, minb, name, call, name);
  if (s.oom) {
    snprintf(err, errsize, "out of memory");
    return -1;
  }
  return 0;
}

void cg_cuda_transpose(const float *w, int64_t O, int64_t I, float *wt) {
  for (int64_t o = 0; o < O; o++)
    for (int64_t i = 0; i < I; i++) wt[i * O + o] = w[o * I + i];
}

int cg_cuda_emit_head(char **buf, size_t *len) {
  sb s = {buf, len, false};
  put(&s, "// hsac: generated CUDA C (codegen/cuda).  Slots of codegen/cpu/kernels.h:\n");
  put(&s, "#define HS_NSLOTS %d\n#define HS_PAGE_ROWS %d\n", (int)CG_A_COUNT, (int)CG_PAGE_ROWS);
  put(&s, "#define HS_A_R0 %d\n#define HS_A_R1 %d\n#define HS_A_SCRATCH %d\n#define HS_A_C %d\n"
          "#define HS_A_T1 %d\n",
      (int)CG_A_R0, (int)CG_A_R1, (int)CG_A_SCRATCH, (int)CG_A_C, (int)CG_A_T1);
  put(&s, "#define HS_A_P0 %d\n#define HS_A_OUT0 %d\n#define HS_A_OUT1 %d\n#define HS_A_IN0 %d\n",
      (int)CG_A_P0, (int)CG_A_OUT0, (int)CG_A_OUT1, (int)CG_A_IN0);
  put(&s, "#define HS_V_SEG %d\n#define HS_V_R0 %d\n#define HS_V_STRIDE %d\n#define HS_V_HIST "
          "%d\n#define HS_V_KEEP %d\n",
      (int)CG_V_SEG, (int)CG_V_R0, (int)CG_V_STRIDE, (int)CG_V_HIST, (int)CG_V_KEEP);
  put(&s, "#define HS_VIEW_SLOTS %d\n#define HS_IN(i) (HS_A_IN0 + (i) * HS_VIEW_SLOTS)\n",
      (int)CG_VIEW_SLOTS);
  put(&s, "#define HS_BATCH %d\n", (int)CG_CUDA_BATCH);
  put(&s, "#ifndef HS_EMU\n#define HS_EMU_ENTRY(name)\n#define HS_EMU_ENTRY_BATCH(name)\n#endif\n");
  put_text(&s, cg_cuda_prelude_text);
  put(&s, "\n// rounding a value's new rows to its 16-bit type (the runtime's, on the device)\n"
          "extern \"C\" __global__ void __launch_bounds__(%d) %s(const __grid_constant__ hs_args "
          "a) {\n  hs::round_rows(a);\n}\nHS_EMU_ENTRY(%s)\n",
      CG_CUDA_ROUND_BLOCK, CG_CUDA_ROUND, CG_CUDA_ROUND);
  put(&s, "// rows into a history page of bf16 rows\n"
          "extern \"C\" __global__ void __launch_bounds__(%d) %s(const __grid_constant__ hs_args "
          "a) {\n  hs::pack_rows16(a);\n}\nHS_EMU_ENTRY(%s)\n",
      CG_CUDA_ROUND_BLOCK, CG_CUDA_PACK16, CG_CUDA_PACK16);
  return s.oom ? -1 : 0;
}

const char *cg_cuda_emu_header(void) { return cg_cuda_emu_text; }
