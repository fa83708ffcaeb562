/* footprint.c - cache size per token of context (for `hsac check`).
 *
 * Counts, from the model description alone, what a decoding session keeps
 * between segments, by the rule the runtime and `hsac plan` derive from the
 * IR (ir_history_rows), so the two agree (a unit test holds them to it):
 *  - K and V for every past token of a dense or block-sparse layer, plus a
 *    Landmark Attention layer's landmark key per block and NSA's compressed
 *    K and V per stride; MoBA's block means are recomputed, not kept;
 *  - a ring of the last W - 1 positions' K and V for a window of W;
 *  - a Landmark Attention layer's incomplete block: the last B - 1 rows of
 *    its normalized input;
 *  - for a chunk memory read by an hsa layer: its K/V rows (in its storage
 *    type) and one landmark per chunk, the incomplete chunk (the last S - 1
 *    rows of the stack it is built from, once per stack), and per-chunk
 *    retrieval's queries of the last S positions.
 * Attention caches count in f32 (`hsac plan --cache` can halve them);
 * activations are not counted. */
#include "passes/pipeline.h"

/* A memory is built only when an hsa layer reads it (DCE removes the rest). */
static bool memory_read(const fe_model *m, int j) {
  for (int i = 0; i < m->nlayers; i++)
    if (m->layers[i].kind == FE_L_HSA && m->layers[m->layers[i].retrieval].memory == j)
      return true;
  return false;
}

static bool retrieval_read(const fe_model *m, int r) {
  for (int i = 0; i < m->nlayers; i++)
    if (m->layers[i].kind == FE_L_HSA && m->layers[i].retrieval == r) return true;
  return false;
}

void hsac_cache_footprint(const fe_model *m, double *per_token, double *fixed) {
  double k = (double)m->kv_heads * (double)m->head_dim * 4.0; /* one f32 K (or V) row */
  double x = (double)m->width * 4.0;                           /* one f32 stream row */
  double pt = 0, fx = 0;
  for (int i = 0; i < m->nlayers; i++) {
    const fe_layer *l = &m->layers[i];
    /* attn and swa layers may have their own number of K/V heads */
    double kl = (double)l->kv_heads * (double)m->head_dim * 4.0;
    switch (l->kind) {
    case FE_L_ATTN: pt += 2.0 * kl; break;
    case FE_L_MOBA: pt += 2.0 * k; break;
    case FE_L_SWA: fx += 2.0 * kl * (double)(l->window > 1 ? l->window - 1 : 0); break;
    case FE_L_LANDMARK:
      pt += 2.0 * k + k / (double)l->block;
      fx += x * (double)(l->block - 1);
      break;
    case FE_L_NSA: pt += 2.0 * k + 2.0 * k / (double)l->cmp_stride; break;
    case FE_L_RETRIEVE:
      if (l->per == FE_PER_CHUNK && retrieval_read(m, i)) {
        const fe_memory_def *md = &m->memories[l->memory];
        double groups = l->groups == FE_GROUPS_KV ? (double)m->kv_heads : 1.0;
        fx += (double)md->chunk * groups * (double)md->landmark_dim * 4.0;
      }
      break;
    default: break;
    }
  }
  for (int s = 0; s < m->nstacks; s++) {
    int64_t ring = 0; /* one ring of the stack's output serves all its memories */
    for (int j = 0; j < m->nmemories; j++) {
      const fe_memory_def *md = &m->memories[j];
      if (md->source != s || !memory_read(m, j)) continue;
      if (md->chunk - 1 > ring) ring = md->chunk - 1;
      double bytes = md->store == FE_DT_F32 ? 4.0 : 2.0;
      double rows = (double)md->chunk + (md->landmark == FE_LMK_TOKEN ? 1.0 : 0.0);
      double lmk_groups = md->landmark_groups == FE_GROUPS_KV ? (double)m->kv_heads : 1.0;
      double per_chunk = 2.0 * rows * (double)m->kv_heads * (double)m->head_dim * bytes +
                         lmk_groups * (double)md->landmark_dim * 4.0;
      pt += per_chunk / (double)md->chunk;
    }
    fx += x * (double)ring;
  }
  *per_token = pt;
  *fixed = fx;
}
