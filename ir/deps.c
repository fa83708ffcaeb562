/* deps.c - how an op's output rows depend on its inputs' rows.
 *
 * Two questions, answered in one place because the runtime's caches, the
 * demand analysis and the memory planner must agree on them:
 *  - history: how many rows of an input before the current segment does the
 *    op read to compute the segment's rows (0, a count, or all)?
 *  - demand: if the last n rows of the output are needed, which last rows of
 *    each input are? */
#include <string.h>

#include "ir/ir.h"

int64_t ir_history_rows(const ir_op *op, int i) {
  switch (op->code) {
  case IR_ATTENTION:
    if (op->in[0]->type.rank != 3 || i == 0) return 0;
    return ir_attr_i(op, "window", 0) > 0 ? ir_attr_i(op, "window", 0) - 1 : IR_ALL_ROWS;
  case IR_CHUNK: return ir_attr_i(op, "size", 1) - 1;
  case IR_BLOCK_LANDMARK: return ir_attr_i(op, "block", 1) - 1;
  case IR_NSA_COMPRESS: return ir_attr_i(op, "block", 1) - 1;
  case IR_LANDMARK_SCORES: {
    if (i == 1) return IR_ALL_ROWS;
    const ir_attr *per = ir_get_attr(op, "per");
    if (i == 0 && per && !strcmp(per->s, "chunk")) return ir_attr_i(op, "chunk", 1);
    return 0;
  }
  case IR_CHUNK_ATTENTION: return i == 1 || i == 2 ? IR_ALL_ROWS : 0;
  case IR_LANDMARK_ATTENTION: return i >= 1 ? IR_ALL_ROWS : 0;
  case IR_MOBA_ATTENTION: return i >= 1 ? IR_ALL_ROWS : 0;
  case IR_NSA_ATTENTION: return i >= 1 && i <= 4 ? IR_ALL_ROWS : 0;
  default: return 0;
  }
}

int64_t ir_input_demand(const ir_op *op, int i, int64_t out_rows) {
  if (out_rows == 0) return 0;
  const ir_value *in = op->in[i];
  if (in->type.rank == 0 || in->type.dims[0].div == 0) return 0; /* weights */
  if (out_rows == IR_ALL_ROWS) return IR_ALL_ROWS;
  switch (op->code) {
  case IR_CHUNK: {
    /* the last n complete chunks, and the partial chunk after them */
    int64_t s = ir_attr_i(op, "size", 1);
    return out_rows * s + s - 1;
  }
  case IR_BLOCK_LANDMARK: {
    int64_t b = ir_attr_i(op, "block", 1);
    return out_rows * b + b - 1;
  }
  case IR_NSA_COMPRESS: {
    int64_t b = ir_attr_i(op, "block", 1), s = ir_attr_i(op, "stride", 1);
    return out_rows * s + b + s;
  }
  default: break;
  }
  /* everything else is row for row, plus the history it reads */
  int64_t h = ir_history_rows(op, i);
  if (h == IR_ALL_ROWS) return IR_ALL_ROWS;
  return out_rows + h;
}
