/* kernels.h - the contract between the CPU code generator (emit.c) and the
 * runtime's CPU backend (runtime/backend_cpu.c): how a compiled kernel is
 * called and where it finds its tensors.
 *
 * Every kernel is `void k(const int64_t *a)`: one array of 64-bit slots,
 * pointers stored as integers.  A kernel computes output rows [r0, r1) of
 * the current segment (and, where the op allows it, only heads or column
 * panels [n0, n1)), so the runtime's thread pool can split any kernel by
 * handing each thread its own copy of the slots with its own ranges.
 *
 * Each tensor is passed as a view of CG_VIEW_SLOTS slots, the runtime's one
 * documented layout for a growing value (docs/runtime.md, "Tensor layout"):
 *   seg     rows of the current segment, f32, contiguous, `stride` floats
 *           apart; row r is at seg + (r - seg_r0) * stride
 *   seg_r0  the first row held in seg
 *   stride  floats per row in seg
 *   hist    rows before seg_r0: a ring (keep > 0: row r in slot r % keep,
 *           row_elems floats each) or a page table (keep < 0: page
 *           r / CG_PAGE_ROWS holds CG_PAGE_ROWS rows of row_elems floats;
 *           the chunk memory is such a table of chunk pages); 0 when the
 *           value keeps no history
 *   keep    as in hist
 * A weight's view has only seg (its data; for linear, the packed panels).
 * row_elems and the history's kind are constants of the kernel. */
#ifndef HSAC_CODEGEN_CPU_KERNELS_H
#define HSAC_CODEGEN_CPU_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ir/ir.h"

/* Tokens per block of the chunk-major sparse attention (emit.c): 16 keep
 * a block's queries and sums (12 KiB per token with AVX-512) in L2 and
 * already share each chunk about 10 ways in a trained model; the bench
 * counts the bytes it reads by the same blocks.  The f32 kernel for G
 * heads in part of a vector and the bf16 tile kernels take longer blocks
 * where they fit (emit.c, block_tokens). */
enum { CG_ATTN_TB = 16 };

enum {
  CG_PAGE_ROWS = 64,  /* rows per history page (must match the runtime) */
  CG_VIEW_SLOTS = 5,
  CG_V_SEG = 0, CG_V_R0 = 1, CG_V_STRIDE = 2, CG_V_HIST = 3, CG_V_KEEP = 4,
  /* the slots */
  CG_A_R0 = 0,        /* first output row */
  CG_A_R1 = 1,        /* end of the output rows */
  CG_A_SCRATCH = 2,   /* this thread's scratch floats (cg_kernel_info.scratch) */
  CG_A_N0 = 3,        /* first head / column panel (split kernels) */
  CG_A_N1 = 4,
  CG_A_T1 = 5,        /* the segment's end token */
  CG_A_C = 6,         /* complete chunks at t1 (retrieve) */
  CG_A_PART = 7,      /* retrieve: 0, or where a partial scan of landmarks
                         [n0, n1) leaves its lists (CG_SPLIT_CHUNKS) */
  CG_A_PARTS = 8,     /* retrieve's NAME_merge: an array of CG_A_NPARTS
                         pointers to partial lists */
  CG_A_NPARTS = 9,
  CG_A_RING16 = 10,   /* bit i set: input i's history is a ring of 2-byte
                         rows (bf16; the session's cache type), which only a
                         kernel that reads such rings is given
                         (cg_attention_ring16) */
  /* the kernel's parameters (cg_kernel_info.params): values the code reads
   * at run time rather than bakes in, so that kernels differing only in
   * them (a linear's output width, its rows per token) share one compiled
   * function; loop bounds and strides only, never a vector shape or an
   * unroll count */
  CG_A_P0 = 11,
  CG_NPARAMS = 4,
  CG_A_OUT0 = CG_A_P0 + CG_NPARAMS, /* view of result 0 */
  CG_A_OUT1 = CG_A_OUT0 + CG_VIEW_SLOTS,  /* view of result 1 */
  CG_A_IN0 = CG_A_OUT1 + CG_VIEW_SLOTS,   /* views of the inputs, in order */
  CG_A_COUNT = CG_A_IN0 + CG_VIEW_SLOTS * IR_MAX_INPUTS,
};

/* How an input is held. */
typedef enum cg_hist {
  CG_H_WEIGHT,  /* a weight: seg only */
  CG_H_SEG,     /* rows of the current segment only */
  CG_H_RING,    /* plus a ring of the last `keep` rows */
  CG_H_PAGES,   /* plus pages of every earlier row */
} cg_hist;

/* What the runtime must know to call a kernel. */
typedef enum cg_split {
  CG_SPLIT_ROWS,    /* threads take rows */
  CG_SPLIT_HEADS,   /* rows, or heads [n0, n1) when there are few rows */
  CG_SPLIT_PANELS,  /* rows, or column panels [n0, n1) when there are few rows */
  CG_SPLIT_CHUNKS,  /* rows, or for one row the landmarks [n0, n1) in partial
                       mode, then the function NAME_merge (retrieve) */
} cg_split;

typedef struct cg_kernel_info {
  cg_split split;
  int64_t nsplit;         /* heads or panels (split != ROWS) */
  int64_t scratch_fixed;  /* scratch floats per thread ... */
  int64_t scratch_per_t1; /* ... plus this many per token of context (dense attention) */
  int64_t panel;          /* linear: columns per packed panel (NR) */
  int64_t part_floats;    /* retrieve: floats of one partial list set */
  int64_t row_grain;      /* split by rows: a thread's range should hold at
                             least this many rows (a chunk-major kernel's
                             block of tokens, whose chunks it reads once)
                             while every thread still gets rows; 0: any */
  bool one_row;           /* also NAME_1: the decode version, for a call
                             of one row (r1 = r0 + 1), same slots */
  int nparams;            /* what each call passes in CG_A_P0 ... */
  int64_t params[CG_NPARAMS];
} cg_kernel_info;

/* A call's parameter slots, from the kernel's info. */
static inline void cg_put_params(int64_t *args, const cg_kernel_info *info) {
  for (int i = 0; i < info->nparams; i++) args[CG_A_P0 + i] = info->params[i];
}

/* A kernel request: the op and how each input is held. */
typedef struct cg_kernel_req {
  const ir_op *op;               /* for a streamed retrieve: the topk op */
  const ir_op *scores;           /* a streamed retrieve: its landmark_scores op */
  const ir_op *fused;            /* op is an add ending this linear's GEMM:
                                    inputs x, W (packed), then the residual;
                                    or op is a silu_mul of this (gate)
                                    linear and fused_up: */
  const ir_op *fused_up;         /* inputs x, W gate, W up (both packed) */
  const ir_op *prenorm;          /* an RMSNorm folded into this linear (or
                                    fused linear): input x is the norm's
                                    input, the packed weights carry its
                                    gain, the kernel scales each row by
                                    its 1/rms */
  cg_hist hist[IR_MAX_INPUTS];   /* per input (of `scores` when streaming) */
  bool hist16[IR_MAX_INPUTS];    /* the input's history pages hold bf16 rows
                                    (row_elems 2-byte numbers; the segment's
                                    rows stay f32): only K and V of a sparse
                                    attention whose kernel reads them so
                                    (cg_chunk_attention_pages16); the packed
                                    f32 kernel needs K and V both or neither */
  int64_t row_elems[IR_MAX_INPUTS];
  int vec_bits;                  /* 512, 256 or 128 */
  int wtype;                     /* linear: the packed weights' type
                                    (cg_wtype): f32, or bf16 / f16 panels
                                    (cg_linear_pack_16) widened to f32 as
                                    they are read, or bf16 in k-pairs
                                    (CG_W_BF16P, with bf16 math); 16-bit
                                    never with prenorm */
  int bf16;                      /* linear: how it computes (cg_bf16): f32
                                    arithmetic, or bf16 inputs and f32 sums */
  int prefetch;                  /* sparse attentions: cg_prefetch */
} cg_kernel_req;

/* How densely the sparse-attention kernels prefetch the chunks they read
 * next (a chunk-major block reads its distinct chunks one after another:
 * the next into L1 while this one's scores are computed, the one three
 * ahead into L2 during its weighted sum).  Which pays depends on the core's
 * hardware prefetchers and miss queues, so the target decides
 * (cg_target.prefetch); measured in bench/RESULTS.md. */
typedef enum cg_prefetch {
  CG_PF_SPARSE = 0, /* every other line of the next chunk's rows and one row
                       in four of the far chunk (one KV head; every row
                       with four or more), the L2 streamer bringing the
                       rest: best on Sapphire Rapids-class cores */
  CG_PF_DENSE = 1,  /* every line of the next chunk and every row of the far
                       one: Zen 5, whose streamer left chunks of a 256K-token
                       context half fetched (f32, uniform selections: 40-46%
                       -> 63-72% of the FMA peak); and the landmark scan
                       prefetches 32 rows ahead (2x at 8M tokens) */
  CG_PF_DENSE_ATTN = 2, /* the sparse-attention kernels as CG_PF_DENSE, the
                           landmark scan as CG_PF_SPARSE: Zen 4 (f32,
                           uniform selections at 256K: 47-59% -> 74-77% of
                           the FMA peak; the scan ahead lost a third of its
                           read rate at 8M tokens there) */
} cg_prefetch;

/* "", ", dense prefetches" or ", dense prefetches in sparse attention":
 * how `hsac run -v` and `hsac ir --emit` name a cg_prefetch. */
const char *cg_prefetch_note(int prefetch);

/* How a linear's packed weights are held. */
typedef enum cg_wtype {
  CG_W_F32 = 0,
  CG_W_BF16 = 1,
  CG_W_F16 = 2,
  CG_W_BF16P = 3, /* bf16 in k-pairs (cg_linear_pack_bf16p), for bf16 dot
                     products and AMX tiles */
  CG_W_COUNT
} cg_wtype;

/* A linear's arithmetic (--cpu-math, docs/runtime.md "Precision").  With
 * anything but CG_BF16_OFF the input rows and the matrix are rounded to
 * bf16 (to nearest even) and the exact products summed in f32; the ISA
 * decides how, per target (cg_target): */
typedef enum cg_bf16 {
  CG_BF16_OFF = 0,   /* f32 arithmetic on the weights as held */
  CG_BF16_FMA,       /* f32 FMAs on the rounded inputs (any x86-64) */
  CG_BF16_DOT,       /* AVX512-BF16 dot products (vdpbf16ps) */
  CG_BF16_AMX,       /* AMX tiles (tdpbf16ps) for blocks of rows, the dot
                        products for one row (decode) */
} cg_bf16;

/* Whether bf16 math of kind bf16 runs the tile kernels of the attentions
 * below (cg_chunk_attention_amx, cg_attention_amx): on AMX tiles, or
 * with AVX512-BF16 their tile products as vdpbf16ps. */
static inline bool cg_bf16_tiles(int bf16) {
  return bf16 == CG_BF16_AMX || bf16 == CG_BF16_DOT;
}

/* Whether a chunk_attention op has the tile kernel under bf16 math (on
 * AMX, or as dot products: cg_bf16_tiles): the weighted merge with G
 * query heads per KV head, G a divisor of 16, head width and chunk size
 * multiples of 32.
 * Its q (scaled), K and V are then rounded to bf16 and so are its
 * probabilities times the chunk's weight, with f32 sums (the reference
 * does the same: rt_op_chunk_attention_bf16). */
bool cg_chunk_attention_amx(const ir_op *op);

/* Whether a chunk_attention op with the joint merge has the tile kernel
 * under bf16 math (on AMX, or as dot products): head width and chunk
 * size multiples of 32.  Its q (scaled), K and V are then rounded to bf16
 * and so are its probabilities exp(s - max) over every selected chunk's
 * rows, with f32 sums, the sum (plus n exp(-max) for softmax_plus n)
 * dividing at the end (the reference does the same:
 * rt_op_chunk_attention_bf16).  The chunk memory's pages stay f32 for it. */
bool cg_chunk_attention_joint_amx(const ir_op *op);

/* Whether an attention op has the tile kernel under bf16 math (on AMX, or
 * as dot products: cg_bf16_tiles): causal sliding-window attention over
 * the sequence (rank 3, window > 0) with G query heads per KV head, G a
 * divisor of 16, and a head width a multiple of 32 (at most 256).  Its q
 * (scaled), K and V are rounded to bf16 and so are its unnormalized
 * probabilities exp(s - max), with f32 sums, the sum of the probabilities
 * dividing at the end (the reference does the same:
 * rt_op_attention_bf16). */
bool cg_attention_amx(const ir_op *op);

/* Whether a landmark_attention op (Landmark Attention) has the tile
 * kernel under bf16 math (on AMX, or as dot products: cg_bf16_tiles):
 * head width and block size multiples of 32 (head width at most 256).
 * Its past blocks' part then rounds q (scaled), K, V and each probability
 * times the block's share to bf16, with f32 sums; the local keys and the
 * selection stay f32 (the reference does the same:
 * rt_op_landmark_attention_bf16). */
bool cg_landmark_attention_amx(const ir_op *op);

/* Whether a moba_attention op (MoBA) has the tile kernel under bf16 math
 * (on AMX, or as dot products: cg_bf16_tiles): head width and block size
 * multiples of 32 (head width at most 256).  Its q (scaled), K and V are
 * then rounded to bf16 and so are its probabilities exp(s - max) over
 * all of a query's selected keys, with f32 sums, the sum of the
 * unrounded probabilities dividing at the end; the blocks' gates and the
 * selection stay f32 (the reference does the same:
 * rt_op_moba_attention_bf16). */
bool cg_moba_amx(const ir_op *op);

/* Whether an nsa_attention op (NSA) has the tile kernel under bf16 math
 * (on AMX, or as dot products: cg_bf16_tiles): head width and selection
 * block multiples of 32 (head width at most 256).  Its selected and
 * window branches then round q (scaled), K, V and their probabilities
 * exp(s - max) to bf16, as MoBA's kernel; the compressed branch, the
 * selection and the gates stay f32 (the reference does the same:
 * rt_op_nsa_attention_bf16). */
bool cg_nsa_amx(const ir_op *op);

/* Whether an attention op has the f32 kernel with the query heads of a
 * KV head packed in vector lanes (rank 3, 4 or more query heads per KV
 * head, a head width of whole vectors of vec_bits); the AMX kernel's ops
 * are among them. */
bool cg_attention_packed(const ir_op *op, int vec_bits);

/* Whether the kernel of op (for vectors of vec_bits) reads its K and V
 * rings in bf16 when the session keeps them so (--cache bf16; CG_A_RING16
 * says which at each call): the windowed attentions with packed heads.
 * The AMX kernel copies the bf16 rows into its tiles' buffers as they
 * are; the f32 kernel widens each element as it loads it (exactly). */
bool cg_attention_ring16(const ir_op *op, int vec_bits);

/* Whether a chunk_attention op has the f32 kernel with the query heads of
 * a KV head packed in vector lanes (4 or more per KV head, the weighted
 * or stick-breaking merge). */
bool cg_chunk_attention_packed(const ir_op *op);

/* Whether the kernel of a chunk_attention op (under bf16 math `bf16`,
 * cg_bf16) reads K and V history pages of bf16 rows in place: the AMX
 * kernel (rows into tiles) and the packed f32 kernel (rows widened into
 * f32 tiles, exactly). */
bool cg_chunk_attention_pages16(const ir_op *op, int bf16);

/* The name of a cg_bf16 ("f32", "bf16 fma", "bf16 avx512-bf16", "bf16 amx"). */
const char *cg_bf16_name(int bf16);

/* Whether the CPU code generator compiles this op; if not, why (a sentence
 * naming the op and the option). */
int cg_cpu_supported(const ir_op *op, char *why, size_t size);

/* Appends the MLIR func.func of the kernel, named `name`, to *buf (a
 * malloc'd string of *len bytes, grown as needed).  Returns 0, or -1 with
 * err (unsupported or out of memory). */
int cg_cpu_emit(const cg_kernel_req *req, const char *name, char **buf, size_t *len,
                cg_kernel_info *info, char *err, size_t errsize);

/* Linear: how weights [O, I] are packed for the kernel: panels of NR
 * columns, each [I][NR] (zero-padded), so a panel is read contiguously. */
int64_t cg_linear_panel(int vec_bits, int64_t O);
size_t cg_linear_packed_floats(int64_t O, int64_t I, int vec_bits);
void cg_linear_pack(const float *w, int64_t O, int64_t I, int vec_bits, float *packed);
/* The same, for a linear with an RMSNorm folded in: column k of W is
 * multiplied by the norm's gain g[k] (NULL: as cg_linear_pack). */
void cg_linear_pack_gain(const float *w, const float *g, int64_t O, int64_t I, int vec_bits,
                         float *packed);
/* The same layout in bf16 or f16 (wtype; round to nearest even), for
 * kernels with that wtype: the same number of elements, 2 bytes each, no
 * folded gain. */
void cg_linear_pack_16(const float *w, int64_t O, int64_t I, int vec_bits, int wtype,
                       uint16_t *packed);
/* The layout of CG_W_BF16P: panels of CG_BF16P_NR columns (the last one
 * zero-padded), the input axis padded with zeros to a multiple of 32 (Kp);
 * in a panel, input pair k/2 is one row of NR (k, k+1) pairs:
 * element (o, k) at p*Kp*NR + (k/2)*2*NR + (o mod NR)*2 + k mod 2, p = o/NR.
 * A row of pairs is an AMX B tile row and a vdpbf16ps operand. */
enum { CG_BF16P_NR = 32 };
int64_t cg_bf16p_kpad(int64_t I);
size_t cg_linear_bf16p_elems(int64_t O, int64_t I);
void cg_linear_pack_bf16p(const float *w, int64_t O, int64_t I, uint16_t *packed);

#endif
