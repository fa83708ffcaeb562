/* ir.h - the hsac IR: a graph of typed tensor ops.
 *
 * Values are produced by ops (weights and the token input are ops too) and
 * every value has a static type: an element type and up to IR_MAX_RANK
 * dimensions, each either a constant or a function of the symbolic
 * sequence length L.  Ops are kept in execution order, so a valid graph
 * never uses a value before the op that defines it.  All memory belongs to
 * the compilation's arena. */
#ifndef HSAC_IR_IR_H
#define HSAC_IR_IR_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "util/arena.h"
#include "util/diag.h"

typedef enum ir_opcode {
#define X(e, name, minin, maxin, nres, doc) e,
#include "ir/ops.def"
#undef X
  IR_OPCODE_COUNT
} ir_opcode;

typedef struct ir_opinfo {
  const char *name;
  int min_inputs, max_inputs, results;
  const char *doc;
} ir_opinfo;

extern const ir_opinfo ir_ops[IR_OPCODE_COUNT];

enum { IR_MAX_RANK = 5, IR_MAX_INPUTS = 6, IR_MAX_RESULTS = 2 };

/* A dimension: the constant n when div == 0, otherwise
 * max(0, floor((L + off) / div)) with L the sequence length. */
typedef struct ir_dim {
  int64_t n;
  int64_t off;
  int64_t div;
} ir_dim;

typedef enum ir_dtype { IR_F32, IR_I32 } ir_dtype;

typedef struct ir_type {
  ir_dtype dtype;
  int rank;
  ir_dim dims[IR_MAX_RANK];
} ir_type;

typedef struct ir_op ir_op;

typedef struct ir_value {
  ir_type type;
  ir_op *def;          /* the op that produces it */
  int result;          /* which of def's results */
  int id;              /* printing number, assigned by ir_print() */
  int64_t demand;      /* rows needed for "logits at the last position", in
                          this value's row space, counted from the end; -1:
                          all (set by the demand pass; -1 before it) */
  int index;           /* 0..n-1 over all values, assigned by ir_index_values() */
} ir_value;

typedef enum ir_attr_kind { IR_ATTR_INT, IR_ATTR_FLOAT, IR_ATTR_STR } ir_attr_kind;

typedef struct ir_attr {
  const char *key;
  ir_attr_kind kind;
  int64_t i;
  double f;
  const char *s;
} ir_attr;

enum { IR_MAX_ATTRS = 12 };

struct ir_op {
  ir_opcode code;
  ir_value *in[IR_MAX_INPUTS];
  int nin;
  ir_value *out[IR_MAX_RESULTS];
  int nout;
  ir_attr attrs[IR_MAX_ATTRS];
  int nattrs;
  const char *name;    /* IR_WEIGHT: the weight's name */
  const char *origin;  /* the layer it came from, e.g. "upper.1 hsa" */
  int pos;             /* position in the graph, set by the verifier */
  struct ir_kernel *kernel; /* the fused kernel it belongs to (NULL: none) */
  ir_op *next;
};

/* A fused kernel: a contiguous run of ops that later stages compile as one
 * unit.  Its reference semantics are its member ops; a kernel may also have
 * a dedicated reference implementation (retrieve streams over landmarks
 * with a K-entry top-k instead of scoring every chunk at once). */
typedef enum ir_kernel_kind {
  IR_K_EMBED,            /* token embedding */
  IR_K_ATTN_BLOCK,       /* norm, q/k/v, (windowed) attention, o_proj, residual */
  IR_K_MLP_BLOCK,        /* norm, SwiGLU, residual */
  IR_K_CHUNK_ENCODE,     /* encoder over S(+1) rows, K/V projections, landmark */
  IR_K_RETRIEVE,         /* retrieval query, scores, mask, streaming top-k, weights */
  IR_K_SPARSE_ATTENTION, /* gather + per-chunk softmax(+n) + merge, o_proj, residual */
  IR_K_BLOCK_SPARSE,     /* Landmark Attention, MoBA, NSA blocks */
  IR_K_LM_HEAD,          /* final norm and LM head */
  IR_K_COUNT
} ir_kernel_kind;

extern const char *const ir_kernel_kind_names[IR_K_COUNT];

typedef struct ir_kernel {
  const char *name;      /* e.g. "upper.1.sparse_attention" */
  ir_kernel_kind kind;
  ir_op *first, *last;   /* its ops, contiguous in the graph (weights excluded) */
  int nops;
  struct ir_kernel *next;
} ir_kernel;

typedef struct ir_graph {
  ut_arena *arena;
  const char *name;    /* the model's name */
  ir_op *first, *last; /* execution order */
  ir_value *input;     /* token ids */
  ir_value *output;    /* logits */
  int nops;
  const char *origin;  /* stamped on ops as they are appended */
  ir_kernel *kernels;  /* after fusion, in order (NULL before) */
  int nkernels;
  bool demand_done;    /* the demand pass has set value demands */
} ir_graph;

ir_graph *ir_graph_new(ut_arena *arena, const char *name);

/* Dimensions and types. */
ir_dim ir_const_dim(int64_t n);
ir_dim ir_seq_dim(int64_t off, int64_t div);
bool ir_dim_eq(ir_dim a, ir_dim b);
/* Writes "64", "L", "L/16" or "(L-16)/16". */
int ir_dim_str(ir_dim d, char *buf, size_t size);
void ir_type_print(const ir_type *t, FILE *out);
bool ir_type_eq(const ir_type *a, const ir_type *b);
/* Elements of a type with only constant dimensions; -1 if symbolic. */
int64_t ir_type_numel(const ir_type *t);

/* Building.  ir_emit appends an op, infers its result types and returns the
 * op; on a shape error it records a diagnostic and returns NULL. */
ir_op *ir_emit(ir_graph *g, ut_diags *d, ir_opcode code, ir_value *const *in,
               int nin, const ir_attr *attrs, int nattrs);
ir_value *ir_weight(ir_graph *g, const char *name, ir_type type);
ir_attr ir_int_attr(const char *key, int64_t v);
ir_attr ir_float_attr(const char *key, double v);
ir_attr ir_str_attr(const char *key, const char *v);
const ir_attr *ir_get_attr(const ir_op *op, const char *key);
int64_t ir_attr_i(const ir_op *op, const char *key, int64_t dflt);

/* Shape inference (infer.c): fills out[]'s types from inputs and attrs.
 * Returns false with a message in msg when the inputs do not fit. */
bool ir_infer(ir_op *op, ir_type *out, char *msg, size_t msgsize);

/* Checks every structural and type rule; reports through d.  Returns true
 * when the graph is valid. */
bool ir_verify(const ir_graph *g, ut_diags *d);

/* Numbers the values and writes the graph as text. */
void ir_print(ir_graph *g, FILE *out);

/* Edits (rewrite.c): redirect every use of a value (returns how many), and
 * unlink an op (its results must be unused). */
int ir_replace_uses(ir_graph *g, const ir_value *from, ir_value *to);
void ir_remove_op(ir_graph *g, ir_op *op);

/* Row dependences (deps.c).  IR_ALL_ROWS stands for "every row". */
#define IR_ALL_ROWS ((int64_t)-1)
/* Rows of input i from before the current segment that op reads. */
int64_t ir_history_rows(const ir_op *op, int i);
/* Last rows of input i needed when the last out_rows rows of op's output are. */
int64_t ir_input_demand(const ir_op *op, int i, int64_t out_rows);

/* Numbers every value (weights and the input included) in graph order;
 * returns how many there are. */
int ir_index_values(ir_graph *g);

/* Whether some linear op reads weight w as its matrix (input 1); _only:
 * and nothing reads w otherwise (bf16 weights, docs/runtime.md). */
bool ir_linear_matrix(const ir_graph *g, const ir_value *w);
bool ir_linear_matrix_only(const ir_graph *g, const ir_value *w);

/* Totals for summaries. */
int64_t ir_param_count(const ir_graph *g);
int ir_weight_count(const ir_graph *g);

#endif
