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
  bool json;             /* write the report as one JSON object */
} hsac_plan_opts;

typedef struct hsac_plan_result {
  double flops, flops_all_rows;
  double cache_bytes, activation_bytes, weight_bytes;
} hsac_plan_result;

/* Plans a request on a compiled graph (after the passes); writes the report
 * to out when it is not NULL. */
bool hsac_plan(const ir_graph *g, const fe_model *m, const hsac_plan_opts *o,
               hsac_plan_result *res, FILE *out);

#endif
