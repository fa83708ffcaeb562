/* footprint.c - cache size per token of context (for `hsac check`).
 *
 * Counts what a decoding session keeps: K and V for every past token of a
 * dense or block-sparse layer, a window of W tokens for a sliding-window
 * layer, and for a chunk memory its K/V rows (in its storage type) and one
 * landmark per chunk.  Activations are not counted. */
#include "passes/pipeline.h"

void hsac_cache_footprint(const fe_model *m, double *per_token, double *fixed) {
  double kv = 2.0 * (double)m->kv_heads * (double)m->head_dim * 4.0; /* f32 K+V */
  double pt = 0, fx = 0;
  for (int i = 0; i < m->nlayers; i++) {
    const fe_layer *l = &m->layers[i];
    switch (l->kind) {
    case FE_L_ATTN: pt += kv; break;
    case FE_L_SWA: fx += kv * (double)l->window; break;
    case FE_L_LANDMARK:
    case FE_L_MOBA:
      /* every key, plus one landmark or mean key per block */
      pt += kv + kv / 2.0 / (double)l->block;
      break;
    case FE_L_NSA: pt += kv + kv / (double)l->cmp_stride; break;
    default: break;
    }
  }
  for (int j = 0; j < m->nmemories; j++) {
    const fe_memory_def *md = &m->memories[j];
    double bytes = md->store == FE_DT_F32 ? 4.0 : 2.0;
    double rows = (double)md->chunk + (md->landmark == FE_LMK_TOKEN ? 1.0 : 0.0);
    double per_chunk = 2.0 * rows * (double)m->kv_heads * (double)m->head_dim * bytes +
                       (double)md->landmark_dim * 4.0;
    pt += per_chunk / (double)md->chunk;
  }
  *per_token = pt;
  *fixed = fx;
}
