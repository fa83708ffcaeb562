/* interp.h - the reference interpreter: runs an IR graph segment by segment.
 *
 * Every value whose first axis grows with the sequence (tokens L, chunks
 * L/S, blocks, compressed blocks) is a "row store": the rows of the current
 * segment, plus as many earlier rows as its consumers need (none for a
 * plain activation, W-1 for the keys of a sliding window: a ring buffer,
 * all of them for the chunk memory's K/V: pages that grow without copying).
 * Running a segment of new tokens [t0, t1) computes, op by op, exactly the
 * new rows of every value, so one-shot prefill, prefill in segments and
 * token-by-token decoding run the same arithmetic.
 *
 * Plain C and fp32 throughout: this is the oracle other backends are
 * checked against, and it favours being obviously right over being fast. */
#ifndef HSAC_RUNTIME_INTERP_H
#define HSAC_RUNTIME_INTERP_H

#include <stdbool.h>
#include <stdint.h>

#include "ir/ir.h"
#include "runtime/hsa_runtime.h"

/* How a value is stored once it is computed. */
typedef enum rt_quant { RT_Q_F32, RT_Q_BF16, RT_Q_F16 } rt_quant;

typedef struct rt_store {
  /* rows of the current segment: [seg_r0, seg_r1), seg_elems floats each */
  float *seg;
  size_t seg_cap;        /* floats allocated */
  int64_t seg_r0, seg_r1;
  int64_t seg_elems;     /* floats per row in this segment */
  /* history: rows [hist_r0, seg_r0) */
  int64_t keep;          /* rows of history kept: 0, a count, or -1 (all) */
  int64_t comp_r0;       /* first row the current segment computes (demand) */
  int64_t valid_r0;      /* rows below this were skipped by demand: never read */
  int64_t hist_r0;
  rt_quant quant;        /* element type of the values (rounded to it) */
  rt_quant hquant;       /* element type the history is stored in: quant, or
                            f32 for a backend that reads only f32 (its values
                            are still rounded to quant) */
  bool hist_narrow;      /* the backend reads this value's history in quant
                            even though it is wide_history (its session_init
                            says so before rt_exec_set_backend) */
  int64_t row_elems;     /* floats per row (history needs a fixed row size) */
  /* ring (keep > 0): slot r % keep; pages (keep < 0): page r / page_rows */
  void *ring;
  void **pages;
  int64_t npages, page_rows;
} rt_store;

/* Per value of the graph. */
typedef struct rt_val {
  const ir_value *v;
  bool is_weight;
  const float *w;        /* weights: their f32 data */
  bool rows;             /* has a growing first axis */
  bool virt;             /* never stored: a fused kernel computes through it
                            (the score matrix of a streaming retrieve) */
  const ir_op *stream;   /* topk results: the landmark_scores op to stream */
  rt_store st;
} rt_val;

typedef struct rt_exec rt_exec;
typedef struct rt_backend rt_backend;

/* One reference function per op (ref_ops.c); it computes the op's output
 * rows of the current segment.  Returns false with x->err set. */
typedef bool (*rt_op_fn)(rt_exec *x, const ir_op *op);

struct rt_exec {
  const ir_graph *g;
  rt_val *vals;          /* indexed by value id (see rt_exec_init) */
  int nvals;
  int64_t t0, t1;        /* the segment being computed: tokens [t0, t1) */
  const int32_t *tokens; /* the segment's tokens */
  char err[512];
  const rt_backend *be;  /* who computes the ops (backend.h); NULL: reference */
  void *be_state;        /* the backend's per-session state */
  bool check_numerics;   /* scan each op's new f32 rows (hsart_session_options) */
  bool host_mirror;      /* a backend that keeps its tensors in device memory
                            (rt_backend.device_resident) copies every op's new
                            rows back to the host stores, as check_numerics
                            does (for tests that read any value's rows) */
  /* the profiler (hsart_session_options.profile), or NULL: per value index
   * v of an op's first result, the time and the runs of the op, at [2v] for
   * segments of several rows and [2v+1] for one-row steps; rt_exec_free
   * frees them, rt_exec_reset keeps them */
  double *prof_ms;
  int64_t *prof_calls;
  /* scratch for reading converted rows; grown on demand */
  float *scratch[4];
  size_t scratch_cap[4];
};

/* Rows of a dimension after T tokens: the constant for a constant
 * dimension, max(0, floor((T + off) / div)) otherwise. */
int64_t rt_dim_at(ir_dim d, int64_t T);

/* Prepares the stores: which values keep how much history and in which
 * type.  weights[i] is the f32 data of the i-th weight op, in graph order.
 * kv_quant is the element type of attention caches; chunk memories use
 * their own `store` type, read from the memory's K/V consumers. */
hsart_status rt_exec_init(rt_exec *x, const ir_graph *g, const float *const *weights,
                          rt_quant kv_quant, const rt_quant *memory_quant, char *err,
                          size_t errsize);
void rt_exec_free(rt_exec *x);
void rt_exec_reset(rt_exec *x);

/* Makes a backend compute the ops from now on (NULL: the reference).
 * wide_history stores every history in f32 (the values stay rounded to
 * their cache type), but for values whose st.hist_narrow is set. */
void rt_exec_set_backend(rt_exec *x, const rt_backend *be, void *state, bool wide_history);

/* Runs tokens [t0, t0 + n).  Afterwards the output value's segment rows
 * hold the logits of those positions (see rt_exec_logits).  With final >= 0
 * (a prefill that ends at token `final` and wants only its last logits) and
 * a graph with demands, each value computes only the rows the demand
 * analysis says are needed. */
hsart_status rt_exec_prefill(rt_exec *x, const int32_t *tokens, int64_t t0, int64_t n,
                             int64_t final);
/* One token for each of n sessions of one graph and backend, at positions
 * pos[i], the ops run in lockstep: each op of the plan runs for every
 * session before the next, as one launch where the backend has run_batch
 * (sessions of different lengths alike).  On failure, *failed is the
 * session whose err says why (every session's caches may then hold a
 * partial step). */
hsart_status rt_exec_decode_batch(rt_exec *const *xs, int n, const int32_t *tokens,
                                  const int64_t *pos, int *failed);
/* Every row of every value (no demand). */
hsart_status rt_exec_segment(rt_exec *x, const int32_t *tokens, int64_t t0, int64_t n);
/* Logits row of position t, valid after the segment that computed it. */
const float *rt_exec_logits(rt_exec *x, int64_t t);

/* Row access for the op functions.  rt_row returns a pointer to row r of a
 * value (converted into scratch slot `slot` if stored in 16 bits), or NULL
 * when the row was not kept (a planning bug: reported as an error). */
const float *rt_row(rt_exec *x, const ir_value *v, int64_t r, int slot);
float *rt_out_row(rt_exec *x, const ir_value *v, int64_t r);
rt_val *rt_val_of(rt_exec *x, const ir_value *v);

/* The streaming reference of a retrieve kernel: top-k over the landmarks,
 * scored on the fly with a K-entry list per query (ref_ops.c). */
bool rt_stream_topk(rt_exec *x, const ir_op *scores, const ir_op *topk);

/* The reference computation of an op (a streamed retrieve included). */
bool rt_ref_run(rt_exec *x, const ir_op *op);
/* The reference linear under bf16 math (rt_backend_config.cpu_bf16). */
bool rt_op_linear_bf16(rt_exec *x, const ir_op *op);
/* The reference chunk_attention under bf16 math on AMX
 * (cg_chunk_attention_amx). */
bool rt_op_chunk_attention_bf16(rt_exec *x, const ir_op *op);
/* The reference windowed attention and attention inside chunk rows under
 * bf16 math on AMX (cg_attention_amx). */
bool rt_op_attention_bf16(rt_exec *x, const ir_op *op);
/* The reference Landmark Attention under bf16 math on AMX
 * (cg_landmark_attention_amx). */
bool rt_op_landmark_attention_bf16(rt_exec *x, const ir_op *op);
/* The reference MoBA under bf16 math on AMX (cg_moba_amx). */
bool rt_op_moba_attention_bf16(rt_exec *x, const ir_op *op);
/* The reference NSA under bf16 math on AMX (cg_nsa_amx). */
bool rt_op_nsa_attention_bf16(rt_exec *x, const ir_op *op);

/* The op table: rt_ops[code] is the reference function of that op. */
extern const rt_op_fn rt_ops[IR_OPCODE_COUNT];

#endif
