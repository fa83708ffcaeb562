/* backend_ref.c - the reference backend: every op by its plain C reference
 * function (ref_ops.c), single-threaded, fp32 with double accumulation.
 * It is the oracle the other backends are tested against. */
#include "runtime/backend.h"
#include "codegen/cpu/kernels.h"

#include <stdio.h>
#include <stdlib.h>

/* What a model asks of the reference: bf16 math for its linears
 * (rt_backend_config.cpu_bf16), so that it is the oracle of the cpu
 * backend's bf16 kernels too. */
typedef struct ref_prog {
  int bf16; /* cg_bf16 of the cpu backend on the same target (OFF: f32) */
} ref_prog;

static hsart_status ref_compile(const ir_graph *g, const float *const *weights,
                                const rt_backend_config *cfg, void **program, char *err,
                                size_t errsize) {
  (void)g;
  (void)weights;
  ref_prog *p = calloc(1, sizeof *p);
  if (!p) {
    snprintf(err, errsize, "out of memory");
    return HSART_ENOMEM;
  }
  p->bf16 = cfg && cfg->cpu_bf16 ? rt_cpu_bf16_arith(cfg) : CG_BF16_OFF;
  *program = p;
  return HSART_OK;
}

static hsart_status ref_session_init(void *program, rt_exec *x, void **state, char *err,
                                     size_t errsize) {
  (void)x;
  (void)err;
  (void)errsize;
  *state = program; /* read only */
  return HSART_OK;
}

static bool ref_run(void *state, rt_exec *x, const ir_op *op) {
  const ref_prog *p = state;
  if (p && p->bf16 && !rt_val_of(x, op->out[0])->stream) {
    if (op->code == IR_LINEAR) return rt_op_linear_bf16(x, op);
    if (cg_bf16_tiles(p->bf16) &&
        (cg_chunk_attention_amx(op) || cg_chunk_attention_joint_amx(op)))
      return rt_op_chunk_attention_bf16(x, op);
    if (cg_bf16_tiles(p->bf16) && cg_attention_amx(op)) return rt_op_attention_bf16(x, op);
    if (cg_bf16_tiles(p->bf16) && cg_landmark_attention_amx(op))
      return rt_op_landmark_attention_bf16(x, op);
    if (cg_bf16_tiles(p->bf16) && cg_moba_amx(op)) return rt_op_moba_attention_bf16(x, op);
    if (cg_bf16_tiles(p->bf16) && cg_nsa_amx(op)) return rt_op_nsa_attention_bf16(x, op);
  }
  return rt_ref_run(x, op);
}

static void ref_describe(const void *program, char *buf, size_t size) {
  const ref_prog *p = program;
  snprintf(buf, size, "backend ref: the reference interpreter (plain C, one thread)%s",
           !p || !p->bf16 ? ""
           : cg_bf16_tiles(p->bf16) ? ", bf16 math as the cpu backend's on AMX or AVX512-BF16 "
                                        "(the linears and every attention with a tile kernel "
                                        "round their inputs), double sums"
                                    : ", bf16 math as the cpu backend's (the linears round their "
                                      "inputs), double sums");
}

const rt_backend rt_backend_ref = {
    .name = "ref",
    .compile = ref_compile,
    .program_free = free,
    .describe = ref_describe,
    .session_init = ref_session_init,
    .run = ref_run,
};
