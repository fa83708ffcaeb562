/* plan.h - memory planning and work estimates for a request (plan.c). */
#ifndef HSAC_PASSES_PLAN_H
#define HSAC_PASSES_PLAN_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "frontend/model.h"
#include "ir/ir.h"

typedef struct hsac_plan_opts {
  int64_t context;       /* N: tokens of context */
  int64_t segment;       /* prefill segment (0: 512) */
  int cache_bytes;       /* bytes per element of attention caches: 4 or 2 */
  bool weights_bf16;     /* linear matrices held in bf16 (2 bytes; the CPU
                            backend's --weights-dtype bf16), the rest f32 */
  bool json;             /* write one JSON object instead of the text */
} hsac_plan_opts;

typedef struct hsac_plan_result {
  double flops, flops_all_rows;  /* of a prefill: with demand analysis, and all rows */
  double cache_bytes;            /* every cache at this context */
  double cache_per_token;        /* bytes per token of context (rows kept for all) */
  double cache_fixed;            /* bytes of the rings, whatever the context */
  double activation_bytes;       /* the arena of one segment, buffers reused */
  double weight_bytes, peak_bytes;
} hsac_plan_result;

/* Plans a request on a compiled graph (after the passes); writes the report
 * (text, or JSON with o->json) to out when it is not NULL.  Returns false
 * when out of memory; prints no errors. */
bool hsac_plan(const ir_graph *g, const fe_model *m, const hsac_plan_opts *o,
               hsac_plan_result *res, FILE *out);

#endif
