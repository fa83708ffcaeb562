/* build.h - lowering a resolved model to the IR. */
#ifndef HSAC_IR_BUILD_H
#define HSAC_IR_BUILD_H

#include "frontend/model.h"
#include "ir/ir.h"

/* Builds the forward graph: token ids i32[L] -> logits f32[L, vocab].
 * Weight names follow docs/language.md ("Weight names").  Returns NULL
 * with diagnostics if a shape rule fails (which means a compiler bug, since
 * semantic analysis has already checked the model). */
ir_graph *ir_build(ut_arena *arena, ut_diags *diags, const fe_model *m);

#endif
