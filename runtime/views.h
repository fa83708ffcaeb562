/* views.h - the slot array of codegen/cpu/kernels.h, filled from the
 * runtime's stores: what every compiled backend (cpu, cuda) passes its
 * kernels, so the layout is written down once. */
#ifndef HSAC_RUNTIME_VIEWS_H
#define HSAC_RUNTIME_VIEWS_H

#include <stdint.h>

#include "codegen/cpu/kernels.h"
#include "runtime/interp.h"

/* How value v is held: a weight, segment rows only, a ring, or pages. */
cg_hist rt_hist_of(const rt_exec *x, const ir_value *v);

/* The view of v (seg, seg_r0, stride, history, keep) at slots base... */
void rt_put_view(int64_t *a, int base, const rt_exec *x, const ir_value *v);

/* Every slot of a call computing op's rows of the current segment: the
 * rows, the segment's end, the results' views, the inputs' views (ins;
 * w[i], when not NULL, is input i's data as the kernel reads it: a weight
 * or its packed form), and for a streamed retrieve (scores: its
 * landmark_scores op) the complete chunks, and which inputs' rings hold
 * bf16 rows (CG_A_RING16).  a has CG_A_COUNT slots, zeroed first. */
void rt_kernel_slots(int64_t *a, const rt_exec *x, const ir_op *op, const ir_value *const *ins,
                     int nins, const void *const *w, const ir_op *scores);

#endif
