/* test_ir.c - types, shape rules, builder, verifier and printer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static void test_dim_strings(void) {
  char buf[64];
  ir_dim_str(ir_const_dim(64), buf, sizeof buf);
  CU_ASSERT_STRING_EQUAL(buf, "64");
  ir_dim_str(ir_seq_dim(0, 1), buf, sizeof buf);
  CU_ASSERT_STRING_EQUAL(buf, "L");
  ir_dim_str(ir_seq_dim(0, 16), buf, sizeof buf);
  CU_ASSERT_STRING_EQUAL(buf, "L/16");
  ir_dim_str(ir_seq_dim(-16, 16), buf, sizeof buf);
  CU_ASSERT_STRING_EQUAL(buf, "(L-16)/16");
  ir_dim_str(ir_seq_dim(-3, 1), buf, sizeof buf);
  CU_ASSERT_STRING_EQUAL(buf, "L-3");
  CU_ASSERT(ir_dim_eq(ir_seq_dim(0, 16), ir_seq_dim(0, 16)));
  CU_ASSERT(!ir_dim_eq(ir_seq_dim(0, 16), ir_const_dim(16)));
}

/* Parameter count of a one-layer dense model, counted by hand. */
static void test_dense_weights_and_count(void) {
  hsac_compilation c;
  char *d = NULL;
  CU_ASSERT_EQUAL_FATAL(
      tu_compile(&c,
                 "model t { vocab = 10, width = 8, heads = 2, kv_heads = 1\n"
                 "  mlp = swiglu(hidden = 16)\n  stack s { attn } }\n",
                 HSAC_STAGE_IR, &d),
      HSAC_OK);
  /* embed 80, norms 3 x 8, q 64, k 32, v 32, o 64, mlp 3 x 128, head 80 */
  CU_ASSERT_EQUAL(ir_param_count(c.graph), 80 + 24 + 64 + 32 + 32 + 64 + 384 + 80);
  CU_ASSERT_EQUAL(ir_weight_count(c.graph), 12);
  char *ir = tu_print_ir(c.graph);
  CU_ASSERT(tu_contains(ir, "  @s.0.attn.k_proj.weight : f32[4, 8]\n"));
  CU_ASSERT(tu_contains(ir, "  @lm_head.weight : f32[10, 8]\n"));
  CU_ASSERT(tu_contains(ir, "  @norm.weight : f32[8]\n"));
  CU_ASSERT(tu_contains(ir, "func @t(%tokens: i32[L]) -> f32[L, 10] {\n"));
  CU_ASSERT(tu_contains(ir, "    %0 = embed(%tokens, @embed.weight) : f32[L, 8]  # all rows\n"));
  CU_ASSERT(tu_contains(ir, "attention(%4, %7, %9) {causal = 1, window = 0} : f32[L, 2, 4]"));
  /* Printing is stable. */
  char *again = tu_print_ir(c.graph);
  CU_ASSERT_STRING_EQUAL(ir, again);
  free(ir);
  free(again);
  free(d);
  hsac_free(&c);

  /* Tied embeddings drop the LM head. */
  CU_ASSERT_EQUAL_FATAL(tu_compile(&c,
                                   "model t { vocab = 10, width = 8, heads = 2\n"
                                   "  tie_embeddings = true, mlp = none\n"
                                   "  stack s { attn } }\n",
                                   HSAC_STAGE_IR, NULL),
                        HSAC_OK);
  CU_ASSERT_EQUAL(ir_param_count(c.graph), 80 + 8 + 4 * 64 + 8);
  hsac_free(&c);
}

static const char memory_hsa[] =
    "model t {\n"
    "  vocab = 260, width = 64, heads = 4, kv_heads = 2\n"
    "  stack lower { swa(window = 32) }\n"
    "  memory mem from lower { chunk = 16, encoder = transformer(layers = 1)\n"
    "    landmark = LMK, landmark_dim = 8 }\n"
    "  stack upper { r = retrieve(mem, topk = 3, score_offset = learned(-2))\n"
    "                hsa(r, residual = bypass) }\n"
    "}\n";

static char *compile_ir(const char *text) {
  hsac_compilation c;
  char *d = NULL;
  hsac_status st = tu_compile(&c, text, HSAC_STAGE_IR, &d);
  if (st != HSAC_OK) fprintf(stderr, "%s", d);
  CU_ASSERT_EQUAL(st, HSAC_OK);
  char *ir = st == HSAC_OK ? tu_print_ir(c.graph) : NULL;
  free(d);
  hsac_free(&c);
  return ir;
}

static char *with_landmark(const char *lmk) {
  static char buf[1024];
  const char *at = strstr(memory_hsa, "LMK");
  snprintf(buf, sizeof buf, "const LMK = 0\n%.*s%s%s", (int)(at - memory_hsa), memory_hsa,
           lmk, at + 3);
  return buf;
}

/* The memory's shapes follow the landmark variant. */
static void test_memory_shapes(void) {
  char *ir = compile_ir(with_landmark("cls"));
  CU_ASSERT_PTR_NOT_NULL_FATAL(ir);
  CU_ASSERT(tu_contains(ir, "chunk(%"));
  CU_ASSERT(tu_contains(ir, "{size = 16} : f32[L/16, 16, 64]"));
  CU_ASSERT(tu_contains(ir, "append_row(%"));
  CU_ASSERT(tu_contains(ir, ", @mem.cls) : f32[L/16, 17, 64]"));
  CU_ASSERT(tu_contains(ir, "{row = 16} : f32[L/16, 64]"));
  CU_ASSERT(tu_contains(ir, "{begin = 0, end = 16} : f32[L/16, 16, 64]"));
  CU_ASSERT(tu_contains(ir, "{heads = 2} : f32[L/16, 16, 2, 16]"));
  CU_ASSERT(tu_contains(ir, "@upper.0.score_offset : f32[1]"));
  CU_ASSERT(tu_contains(ir, "{chunk = 16, per = \"token\", exclude_window = 0} : "
                            "f32[L, 2, L/16]"));
  CU_ASSERT(tu_contains(ir, "{k = 3} : i32[L, 2, 3], f32[L, 2, 3]"));
  CU_ASSERT(tu_contains(ir, "stickbreak(%"));
  CU_ASSERT(tu_contains(ir, "{softmax_plus = 0, merge = \"weighted\"} : f32[L, 4, 16]"));
  free(ir);

  ir = compile_ir(with_landmark("token"));
  CU_ASSERT_PTR_NOT_NULL_FATAL(ir);
  CU_ASSERT(tu_contains(ir, "@mem.landmark_token : f32[64]"));
  CU_ASSERT(tu_contains(ir, "zero_row(%"));
  CU_ASSERT(tu_contains(ir, "{heads = 2} : f32[L/16, 17, 2, 16]"));
  free(ir);

  ir = compile_ir(with_landmark("mean"));
  CU_ASSERT_PTR_NOT_NULL_FATAL(ir);
  CU_ASSERT(tu_contains(ir, "mean_rows(%"));
  CU_ASSERT(!tu_contains(ir, "append_row"));
  free(ir);
}

/* Bypass: the MLP reads x + o but adds its output to x. */
static void test_bypass_residual(void) {
  char *ir = compile_ir(with_landmark("cls"));
  CU_ASSERT_PTR_NOT_NULL_FATAL(ir);
  const char *hsa = strstr(ir, "kernel @upper.1.sparse_attention");
  CU_ASSERT_PTR_NOT_NULL_FATAL(hsa);
  /* find "%A = add(%X, %O)" then the final "add(%X, %DOWN)" */
  int x = -1, o = -1, a = -1, x2 = -1, down = -1;
  const char *p = strstr(hsa, " = add(%");
  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  sscanf(p - 4, "%%%d = add(%%%d, %%%d)", &a, &x, &o);
  if (a < 0) sscanf(p - 3, "%%%d = add(%%%d, %%%d)", &a, &x, &o);
  const char *q = strstr(p + 1, " = add(%");
  CU_ASSERT_PTR_NOT_NULL_FATAL(q);
  CU_ASSERT_EQUAL(sscanf(strstr(q, "add("), "add(%%%d, %%%d)", &x2, &down), 2);
  CU_ASSERT(x >= 0);
  CU_ASSERT_EQUAL(x2, x); /* the stream skips the attention output */
  CU_ASSERT_NOT_EQUAL(x2, a);
  free(ir);
}

static void test_shape_rule_rejects(void) {
  ut_arena a;
  ut_arena_init(&a);
  ut_diags d;
  ut_diags_init(&d, &a);
  ir_graph *g = ir_graph_new(&a, "g");
  ir_value *x = ir_weight(g, "x", (ir_type){IR_F32, 2, {ir_seq_dim(0, 1), ir_const_dim(8)}});
  ir_value *w = ir_weight(g, "w", (ir_type){IR_F32, 2, {ir_const_dim(4), ir_const_dim(6)}});
  CU_ASSERT_PTR_NULL(ir_emit(g, &d, IR_LINEAR, (ir_value *[]){x, w}, 2, NULL, 0));
  CU_ASSERT_EQUAL(d.nerrors, 1);
  CU_ASSERT(tu_contains(d.items[0].msg, "input width does not match"));
  ir_value *w2 = ir_weight(g, "w2", (ir_type){IR_F32, 2, {ir_const_dim(4), ir_const_dim(8)}});
  ir_op *lin = ir_emit(g, &d, IR_LINEAR, (ir_value *[]){x, w2}, 2, NULL, 0);
  CU_ASSERT_PTR_NOT_NULL_FATAL(lin);
  CU_ASSERT(ir_dim_eq(lin->out[0]->type.dims[0], ir_seq_dim(0, 1)));
  CU_ASSERT(ir_dim_eq(lin->out[0]->type.dims[1], ir_const_dim(4)));
  /* chunk of a chunked axis is refused */
  ir_op *ch = ir_emit(g, &d, IR_CHUNK, (ir_value *[]){lin->out[0]}, 1,
                      (ir_attr[]){ir_int_attr("size", 2)}, 1);
  CU_ASSERT_PTR_NOT_NULL_FATAL(ch);
  CU_ASSERT_PTR_NULL(ir_emit(g, &d, IR_SPLIT_HEADS, (ir_value *[]){lin->out[0]}, 1,
                             (ir_attr[]){ir_int_attr("heads", 3)}, 1));
  ut_arena_free(&a);
}

static void test_verifier_catches_broken_graphs(void) {
  hsac_compilation c;
  CU_ASSERT_EQUAL_FATAL(tu_compile(&c,
                                   "model t { vocab = 10, width = 8, heads = 2\n"
                                   "  stack s { attn } }\n",
                                   HSAC_STAGE_IR, NULL),
                        HSAC_OK);
  ir_graph *g = c.graph;
  ut_diags d;
  ut_diags_init(&d, &c.arena);
  CU_ASSERT(ir_verify(g, &d));

  /* 1. a wrong stored type */
  ir_op *emb = NULL;
  for (ir_op *op = g->first; op; op = op->next)
    if (op->code == IR_EMBED) emb = op;
  CU_ASSERT_PTR_NOT_NULL_FATAL(emb);
  emb->out[0]->type.dims[1] = ir_const_dim(9);
  CU_ASSERT(!ir_verify(g, &d));
  emb->out[0]->type.dims[1] = ir_const_dim(8);

  /* 2. a use before its definition: move the embedding to the end */
  ir_op *prev = NULL;
  for (ir_op *op = g->first; op->next != emb; op = op->next) prev = op->next;
  (void)prev;
  ir_op *before = g->first;
  while (before->next != emb) before = before->next;
  ir_op *ret = g->last;
  before->next = emb->next;
  ir_op *pre_ret = g->first;
  while (pre_ret->next != ret) pre_ret = pre_ret->next;
  pre_ret->next = emb;
  emb->next = ret;
  int errs = d.nerrors;
  CU_ASSERT(!ir_verify(g, &d));
  int found = 0;
  for (int i = errs; i < d.len; i++) found |= tu_contains(d.items[i].msg, "not defined before");
  CU_ASSERT(found);

  /* 3. a duplicate weight name */
  hsac_free(&c);
  CU_ASSERT_EQUAL_FATAL(tu_compile(&c,
                                   "model t { vocab = 10, width = 8, heads = 2\n"
                                   "  stack s { attn } }\n",
                                   HSAC_STAGE_IR, NULL),
                        HSAC_OK);
  ut_diags_init(&d, &c.arena);
  ir_op *w1 = NULL, *w2 = NULL;
  for (ir_op *op = c.graph->first; op; op = op->next)
    if (op->code == IR_WEIGHT) {
      if (!w1)
        w1 = op;
      else if (!w2)
        w2 = op;
    }
  w2->name = w1->name;
  CU_ASSERT(!ir_verify(c.graph, &d));
  CU_ASSERT(tu_contains(d.items[0].msg, "defined twice"));
  hsac_free(&c);
}

static void test_every_op_has_a_name(void) {
  for (int i = 0; i < IR_OPCODE_COUNT; i++) {
    CU_ASSERT_PTR_NOT_NULL(ir_ops[i].name);
    CU_ASSERT(ir_ops[i].min_inputs <= ir_ops[i].max_inputs);
    CU_ASSERT(ir_ops[i].max_inputs <= IR_MAX_INPUTS);
    for (int j = 0; j < i; j++) CU_ASSERT(strcmp(ir_ops[i].name, ir_ops[j].name) != 0);
  }
}

void tu_add_ir_suite(void) {
  CU_pSuite s = CU_add_suite("ir", NULL, NULL);
  CU_add_test(s, "dimension strings", test_dim_strings);
  CU_add_test(s, "dense weights and parameter count", test_dense_weights_and_count);
  CU_add_test(s, "memory shapes per landmark variant", test_memory_shapes);
  CU_add_test(s, "bypass residual wiring", test_bypass_residual);
  CU_add_test(s, "shape rules reject bad inputs", test_shape_rule_rejects);
  CU_add_test(s, "verifier catches broken graphs", test_verifier_catches_broken_graphs);
  CU_add_test(s, "op table", test_every_op_has_a_name);
}
