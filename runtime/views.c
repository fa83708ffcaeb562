/* views.c - kernel slots from the runtime's stores (see views.h). */
#include "runtime/views.h"

#include <string.h>

cg_hist rt_hist_of(const rt_exec *x, const ir_value *v) {
  const rt_val *rv = &x->vals[v->index];
  if (rv->is_weight) return CG_H_WEIGHT;
  if (!rv->rows || rv->st.keep == 0) return CG_H_SEG;
  return rv->st.keep > 0 ? CG_H_RING : CG_H_PAGES;
}

void rt_put_view(int64_t *a, int base, const rt_exec *x, const ir_value *v) {
  const rt_store *st = &x->vals[v->index].st;
  a[base + CG_V_SEG] = (int64_t)(intptr_t)st->seg;
  a[base + CG_V_R0] = st->seg_r0;
  a[base + CG_V_STRIDE] = st->seg_elems;
  a[base + CG_V_HIST] =
      st->keep > 0 ? (int64_t)(intptr_t)st->ring : (int64_t)(intptr_t)st->pages;
  a[base + CG_V_KEEP] = st->keep;
}

void rt_kernel_slots(int64_t *a, const rt_exec *x, const ir_op *op, const ir_value *const *ins,
                     int nins, const void *const *w, const ir_op *scores) {
  memset(a, 0, CG_A_COUNT * sizeof *a);
  const rt_store *o = &x->vals[op->out[0]->index].st;
  a[CG_A_R0] = o->comp_r0;
  a[CG_A_R1] = o->seg_r1;
  a[CG_A_T1] = x->t1;
  for (int i = 0; i < op->nout; i++) rt_put_view(a, CG_A_OUT0 + CG_VIEW_SLOTS * i, x, op->out[i]);
  for (int i = 0; i < nins; i++) {
    int base = CG_A_IN0 + CG_VIEW_SLOTS * i;
    if (w[i]) {
      a[base + CG_V_SEG] = (int64_t)(intptr_t)w[i];
      continue;
    }
    rt_put_view(a, base, x, ins[i]);
    const rt_store *s = &x->vals[ins[i]->index].st;
    if (s->keep > 0 && s->hquant != RT_Q_F32) a[CG_A_RING16] |= (int64_t)1 << i;
  }
  if (scores) a[CG_A_C] = rt_dim_at(scores->in[1]->type.dims[0], x->t1);
}
