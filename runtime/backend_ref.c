/* backend_ref.c - the reference backend: every op by its plain C reference
 * function (ref_ops.c), single-threaded, fp32 with double accumulation.
 * It is the oracle the other backends are tested against. */
#include "runtime/backend.h"

#include <stdio.h>

static bool ref_run(void *state, rt_exec *x, const ir_op *op) {
  (void)state;
  return rt_ref_run(x, op);
}

static void ref_describe(const void *program, char *buf, size_t size) {
  (void)program;
  snprintf(buf, size, "backend ref: the reference interpreter (plain C, one thread)");
}

const rt_backend rt_backend_ref = {
    .name = "ref",
    .describe = ref_describe,
    .run = ref_run,
};
