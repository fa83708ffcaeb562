/* backend.h - the one seam between the runtime and whoever computes the
 * ops (rt_backend).
 *
 * The runtime (interp.c) owns every tensor: the rows of the current
 * segment, the rings of windowed histories and the pages of the chunk
 * memory (the layout is documented in codegen/cpu/kernels.h and
 * docs/runtime.md).  It walks the plan op by op and asks its backend to
 * compute each op's rows of the segment.  A backend is a table of
 * functions, as ggml's are: `ref` runs the reference functions of
 * ref_ops.c (the oracle); `cpu` runs kernels generated through MLIR and
 * LLVM for this CPU and split over a thread pool.  A backend that cannot
 * compute some op of a model says so when the model is compiled, naming
 * the op; it never falls back silently. */
#ifndef HSAC_RUNTIME_BACKEND_H
#define HSAC_RUNTIME_BACKEND_H

#include <stdbool.h>
#include <stddef.h>

#include "runtime/hsa_runtime.h"
#include "runtime/interp.h"

typedef struct rt_backend_config {
  int threads;         /* <= 0: every online CPU */
  const char *cpu;     /* code generation target: NULL/"host" or an LLVM CPU name */
  bool no_cache;       /* neither read nor write the kernel cache */
  int prefetch;        /* cpu: the sparse kernels' prefetch density: 0 the
                          target's (cg_target.prefetch), else 1 + a
                          cg_prefetch (tests run both on any CPU) */
  int64_t scan_split_min; /* decode: share one token's landmark scan among the
                             threads from this many chunks (0: 16384) */
  const unsigned char *wtype; /* per weight op (graph order), or NULL: a cg_wtype: f32,
                          or the weight is a linear matrix whose values are
                          bf16 or f16 numbers, to be kept in that type
                          (hsart_weights_dtype) */
  const struct st_tensor *const *raw; /* per weight op, or NULL: for a weight
                          whose f32 data is NULL, its tensor in the weights
                          file (mapped during compile only), to pack from */
  const struct st_file *raw_file; /* the file raw points into: each tensor's
                          pages are released once it is packed */
  bool gpu_bf16;       /* cuda: tensor-core kernels (cg_cuda_math) */
  bool cpu_bf16;       /* cpu and ref: every linear rounds its inputs to
                          bf16 and sums the exact products in f32 (the
                          matrices are bf16 already: the runtime rounds
                          them); the cpu backend picks the instructions
                          (cg_bf16) */
  int64_t gpu_page_bytes; /* cuda: the most bytes of history pages a session
                          keeps in device memory before it moves the oldest
                          to pinned host memory (0: as many as fit) */
  int64_t gpu_scratch_floats; /* cuda: the most per-block scratch floats of one
                          launch before its rows run in batches (0: 16M) */
  const char *tuning_db; /* cuda: the tuning database (NULL: cg_tuning_path's;
                          "none": none, every kernel in its default
                          configuration) */
  int tune_round;      /* cuda, for hsac tune: 0 reads the database; N > 0
                          gives every knob its candidate N-1 where it has
                          one (its default where not) */
} rt_backend_config;

/* What computed an op (rt_backend.op_label): the kernel and, where it has
 * a tunable knob, the knob's shape bucket and the configuration it runs. */
typedef struct rt_op_label {
  char kernel[80];
  char bucket[160];    /* "" when the kernel has no knob */
  char config[16];
  int candidates;      /* the knob's configurations (0: no knob) */
} rt_op_label;

struct cg_tuning_device;

struct rt_backend {
  const char *name;
  /* Compiles what a model needs (once per model; NULL: nothing to do).
   * weights[i] is the i-th weight op's f32 data, or NULL for a matrix
   * read only by linears that the CPU backend packs from cfg->raw[i]. */
  hsart_status (*compile)(const ir_graph *g, const float *const *weights,
                          const rt_backend_config *cfg, void **program, char *err,
                          size_t errsize);
  void (*program_free)(void *program);
  /* A one-line description of the compiled program (target, kernels,
   * compile time, cache), for `hsac run -v`. */
  void (*describe)(const void *program, char *buf, size_t size);
  /* Per session: state next to the session's rt_exec. */
  hsart_status (*session_init)(void *program, rt_exec *x, void **state, char *err,
                               size_t errsize);
  void (*session_free)(void *state);
  /* Computes op's output rows of the current segment (rt_exec's t0, t1 and
   * the stores' comp_r0 .. seg_r1).  false with x->err set on failure. */
  bool (*run)(void *state, rt_exec *x, const ir_op *op);
  /* The same for n sessions of one program at once (a decode step of a
   * batch: rt_exec_decode_batch), or NULL: run is called for each.  false
   * with *bad the session whose err says why. */
  bool (*run_batch)(void *const *states, rt_exec *const *xs, int n, const ir_op *op, int *bad);
  bool wide_history;   /* reads histories only in f32 (rt_exec_set_backend) */
  /* A backend that holds every tensor in its own (device) memory: the
   * runtime's host stores then hold only the tokens and the logits, and
   * the backend rounds 16-bit values itself and keeps the histories.
   * segment_begin runs after the stores are sized for a segment and the
   * tokens written; segment_end after its last op, to keep the histories
   * and copy the logits (rows of the output value) back.  With the
   * session's check_numerics or host_mirror, run also copies each op's new
   * rows back to the host stores. */
  bool device_resident;
  int64_t default_segment; /* tokens per prefill segment where the session's
                              options leave it at 0 (0: 512, the CPU backends':
                              a segment's activations stay in the caches) */
  /* Waits for the session's queued work (NULL: run is synchronous); the
   * runtime's profiler calls it around each op. */
  bool (*sync)(void *state, rt_exec *x);
  /* The kernel that computes op, for one-row steps (decode) or longer
   * segments (NULL: the backend names no kernels). */
  void (*op_label)(const void *program, const ir_op *op, bool one_row, rt_op_label *out);
  /* The device the program runs on, as the tuning database names it (NULL:
   * not a GPU backend). */
  const struct cg_tuning_device *(*device)(const void *program, const char **desc);
  /* A line on the session's state (NULL: nothing to say). */
  void (*session_describe)(const void *state, char *buf, size_t size);
  bool (*segment_begin)(void *state, rt_exec *x);
  bool (*segment_end)(void *state, rt_exec *x);
};

extern const rt_backend rt_backend_ref;
extern const rt_backend rt_backend_cpu;
extern const rt_backend rt_backend_cuda;     /* generated CUDA C on a GPU */
extern const rt_backend rt_backend_cuda_emu; /* the same source under the emulator */

/* The GPUs the CUDA driver sees (runtime/cuda_driver.c; the driver is
 * loaded with dlopen): their number, with desc = the first one's name,
 * architecture and the driver's version; 0 with err saying why there is
 * none (no driver, no device); -1 with err on a driver hsac cannot use. */
int rt_cuda_probe(char *desc, size_t size, char *err, size_t errsize);

/* Whether the CUDA backend generates every op of g; if not, why. */
bool rt_cuda_supports(const ir_graph *g, char *why, size_t size);
/* The CUDA C module of g's kernels as the CUDA backend compiles it, in
 * the default launch configurations (round 0) or in hsac tune's round N
 * (rt_backend_config.tune_round); *text malloc'd, *nkernels its kernels. */
hsart_status rt_cuda_module_text(const ir_graph *g, bool bf16, int round, char **text,
                                 int *nkernels, char *err, size_t errsize);

/* Whether the CPU backend compiles every op of g; if not, why (naming the
 * first op it does not). */
bool rt_cpu_supports(const ir_graph *g, char *why, size_t size);
/* The arithmetic the cpu backend gives bf16 math on the target cfg names
 * (cg_bf16: its cpu, else $HSAC_CPU, else the host; CG_BF16_FMA where no
 * target can be made), so that the reference rounds as those kernels do. */
int rt_cpu_bf16_arith(const rt_backend_config *cfg);

/* The MLIR module of every kernel of g as the CPU backend compiles it, and
 * its target (for `hsac ir --emit=...`).  *text is malloc'd. */
struct cg_target;
hsart_status rt_cpu_module_text(const ir_graph *g, const rt_backend_config *cfg, char **text,
                                struct cg_target *target, char *err, size_t errsize);

#endif
