/* fuse.c - grouping ops into kernels.
 *
 * A kernel is a run of consecutive ops that the code generators compile as
 * one unit.  The builder emits each block of a layer contiguously and
 * stamps its ops with where they came from ("upper.1 hsa", "upper.1 mlp",
 * "memory mem ..."); a kernel is a maximal run of one origin (all of a
 * memory's ops form one), and its kind follows from the ops inside:
 *
 *   chunk_encode      encoder over the S(+1) rows, K/V projections, landmark
 *   retrieve          retrieval query, landmark scores + mask, top-k, weights
 *   sparse_attention  norm, q, gather + per-chunk softmax + merge, o_proj, add
 *   attn_block        norm, q/k/v, RoPE, (windowed) attention, o_proj, add
 *   block_sparse      the same around Landmark Attention, MoBA or NSA
 *   mlp_block         norm, SwiGLU, residual
 *   embed, lm_head
 *
 * The ops stay in the graph: they are each kernel's reference semantics.
 * The interpreter runs retrieve kernels with a streaming top-k over the
 * landmarks (a K-entry list per query) and never materializes their
 * [L, G, C] score matrix. */
#include <string.h>

#include "ir/ir.h"
#include "passes/passes.h"

/* "memory mem encoder 0" and "memory mem" are one kernel. */
static size_t group_len(const char *origin) {
  if (!strncmp(origin, "memory ", 7)) {
    const char *sp = strchr(origin + 7, ' ');
    return sp ? (size_t)(sp - origin) : strlen(origin);
  }
  return strlen(origin);
}

static bool same_group(const char *a, const char *b) {
  if (!a || !b) return a == b;
  size_t la = group_len(a), lb = group_len(b);
  return la == lb && !strncmp(a, b, la);
}

static ir_kernel_kind kind_of(const ir_kernel *k) {
  bool has[IR_OPCODE_COUNT] = {0};
  for (ir_op *op = k->first;; op = op->next) {
    has[op->code] = true;
    if (op == k->last) break;
  }
  const char *o = k->first->origin ? k->first->origin : "";
  if (!strncmp(o, "memory ", 7)) return IR_K_CHUNK_ENCODE;
  if (has[IR_EMBED]) return IR_K_EMBED;
  if (has[IR_LANDMARK_SCORES]) return IR_K_RETRIEVE;
  if (has[IR_CHUNK_ATTENTION]) return IR_K_SPARSE_ATTENTION;
  if (has[IR_LANDMARK_ATTENTION] || has[IR_MOBA_ATTENTION] || has[IR_NSA_ATTENTION])
    return IR_K_BLOCK_SPARSE;
  if (has[IR_ATTENTION]) return IR_K_ATTN_BLOCK;
  if (has[IR_SILU_MUL]) return IR_K_MLP_BLOCK;
  return IR_K_LM_HEAD;
}

static const char *kernel_name(ir_graph *g, const ir_kernel *k) {
  const char *o = k->first->origin ? k->first->origin : "model";
  size_t n = group_len(o);
  char base[256];
  snprintf(base, sizeof base, "%.*s", (int)n, o);
  if (!strncmp(base, "memory ", 7)) memmove(base, base + 7, strlen(base + 7) + 1);
  char *sp = strchr(base, ' ');
  if (sp) *sp = 0; /* "upper.1 hsa" -> "upper.1" */
  if (k->kind == IR_K_EMBED || k->kind == IR_K_LM_HEAD)
    return ut_strdup(g->arena, ir_kernel_kind_names[k->kind]);
  return ut_sprintf(g->arena, "%s.%s", base, ir_kernel_kind_names[k->kind]);
}

bool pass_fuse(hsac_pass_ctx *c) {
  ir_graph *g = c->g;
  g->kernels = NULL;
  g->nkernels = 0;
  ir_kernel *tail = NULL, *cur = NULL;
  int counts[IR_K_COUNT] = {0};
  for (ir_op *op = g->first; op; op = op->next) {
    op->kernel = NULL;
    if (op->code == IR_WEIGHT || op->code == IR_INPUT || op->code == IR_RETURN) continue;
    if (!cur || !same_group(cur->first->origin, op->origin)) {
      cur = ut_alloc(g->arena, sizeof *cur);
      cur->first = op;
      if (tail)
        tail->next = cur;
      else
        g->kernels = cur;
      tail = cur;
      g->nkernels++;
    }
    cur->last = op;
    cur->nops++;
    op->kernel = cur;
  }
  for (ir_kernel *k = g->kernels; k; k = k->next) {
    k->kind = kind_of(k);
    k->name = kernel_name(g, k);
    counts[k->kind]++;
  }
  int n = snprintf(c->summary, sizeof c->summary, "%d kernels:", g->nkernels);
  for (int i = 0; i < IR_K_COUNT && n < (int)sizeof c->summary; i++)
    if (counts[i])
      n += snprintf(c->summary + n, sizeof c->summary - (size_t)n, " %d %s", counts[i],
                    ir_kernel_kind_names[i]);
  return true;
}
