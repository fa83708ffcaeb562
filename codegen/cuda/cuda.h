/* cuda.h - the CUDA code generator and its two ways to run what it writes.
 *
 * cg_cuda_emit writes one kernel: an `extern "C" __global__` function that
 * instantiates a template of prelude.cuh with the op's constants (widths,
 * heads, chunk size, top-k, window, how each input is held).  A module is
 * cg_cuda_emit_head's text + the kernels; it compiles
 *   - with NVRTC for a GPU architecture (cg_cuda_nvrtc: PTX or a CUBIN,
 *     with ptxas's register and spill report), or
 *   - with the system C++ compiler for this CPU under the emulator of emu.h
 *     (cg_cuda_emu_load), so CI checks the generated code's logic against
 *     the reference interpreter without a GPU.
 * Kernels take the runtime's slot array (codegen/cpu/kernels.h) by value as
 * `hs_args`, and compute output rows [r0, r1) of the current segment. */
#ifndef HSAC_CODEGEN_CUDA_CUDA_H
#define HSAC_CODEGEN_CUDA_CUDA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codegen/cpu/kernels.h"

struct cg_cache;

/* How the runtime launches a kernel for rows [r0, r1) of a segment. */
typedef struct cg_cuda_info {
  int block;                 /* threads per block */
  int64_t grid_y;            /* blocks along y: heads, groups, column tiles */
  int64_t tile_m;            /* a linear: logical rows per block along x (x
                                counts tiles of tile_m logical rows); 0 for
                                the others: one segment row per block */
  int64_t vecs;              /* linear: logical rows per segment row */
  int64_t scratch_fixed;     /* floats of global scratch per block ... */
  int64_t scratch_per_t1;    /* ... plus this many per token of context */
  bool one_row;              /* also NAME_1, the decode version (GEMV) */
  int block1;                /* its threads per block */
  int per1;                  /* its outputs per block (0: block1) */
  int64_t outs1;             /* its outputs (vecs x O); NAME_1 covers them
                                with block1 per block */
  bool wt;                   /* a linear: input 1 (W [O, I]) is passed
                                transposed, [I][O] (cg_cuda_transpose) */
  bool split1;               /* a retrieve: also NAME_s and NAME_m, a one-row
                                step's scan split over CG_A_P0 blocks per
                                group (grid nsplit x G, each leaving its list
                                in split_scratch floats of scratch), then
                                merged (grid 1 x G); same block size; and
                                NAME_sb, NAME_mb for a batch (blockIdx.z) */
  int64_t split_scratch;
} cg_cuda_info;

/* The arithmetic of the generated kernels. */
typedef enum cg_cuda_math {
  CG_CUDA_F32 = 0,   /* f32 everywhere (CUDA cores): within 1e-6 of the reference */
  CG_CUDA_BF16 = 1,  /* linears and the sparse attention on tensor cores
                        (mma.sync m16n8k16: bf16 inputs, f32 accumulation) */
} cg_cuda_math;

/* ---- launch configurations: what `hsac tune` chooses ----------------------
 *
 * A kernel has up to two knobs, each with a few candidate configurations
 * (candidate 0 is the default):
 *   CG_KNOB_MAIN  the kernel's own launch: a linear's tile (f32: 64, 128 or
 *                 32 rows by 64 columns, 256 threads; tensor cores: 2 x 2,
 *                 4 x 2, 2 x 4 or 1 x 2 warps of 32 x 32), the warps of the
 *                 tensor-core attentions (HSA's sparse one, the one over
 *                 the sequence) and their buffers (1 warp, 2, 1 with two
 *                 stages, 4, ...: the first four that fit in 48 KB of
 *                 shared memory), or the threads per
 *                 block of attention, HSA's f32 sparse attention, retrieval
 *                 and top-k;
 *   CG_KNOB_GEMV  a linear's decode GEMV: threads per block (an output
 *                 each), or split16: 16 warps per 32 outputs, the inputs
 *                 split among them (not prefill's sum order).
 * The other kernels have no knob.  Every candidate computes the same
 * function; the runtime's tests check each one against the reference. */
typedef enum cg_cuda_knob { CG_KNOB_MAIN = 0, CG_KNOB_GEMV = 1, CG_KNOB_COUNT = 2 } cg_cuda_knob;
enum { CG_CUDA_MAX_CANDIDATES = 4 };

/* The candidate picked for each knob (0: the default). */
typedef struct cg_cuda_cfg {
  int pick[CG_KNOB_COUNT];
} cg_cuda_cfg;

/* The candidates of the kernel's knob: their number (0: the kernel has no
 * such knob), and their names ("64x64", "nt128", ...; static storage) in
 * names (may be NULL). */
int cg_cuda_candidates(const cg_kernel_req *req, cg_cuda_math math, cg_cuda_knob knob,
                       const char *names[CG_CUDA_MAX_CANDIDATES]);
/* The shape bucket of the kernel's knob, the key under which a tuning
 * database keeps its winner: the kernel's kind, its arithmetic and the
 * constants that decide which configuration is fastest (a linear's widths
 * rounded up to powers of two; the others' head width, chunk size, top-k
 * and heads per group), e.g. "linear f32 in<=512 out<=2048".  false if the
 * knob does not apply. */
bool cg_cuda_bucket(const cg_kernel_req *req, cg_cuda_math math, cg_cuda_knob knob, char *buf,
                    size_t size);

/* ---- the tuning database (tuning.c) ---------------------------------------
 *
 * What `hsac tune` measured: per device and shape bucket, the fastest
 * candidate of a knob.  A text file, one entry per line, eight fields
 * separated by tabs:
 *   device  arch  driver  compiler  bucket  config  us  default_us
 * (the GPU's name, "sm_90", the driver's version, "NVRTC 13.0", the
 * bucket of cg_cuda_bucket, the winner's candidate name, and the time per
 * run of the bucket's kernels with the winner and with the default, in
 * microseconds).  Lines starting with '#' and empty lines are comments.
 * The file lives at $HSAC_TUNING_DB, else tuning.tsv in the kernel cache's
 * directory (which `hsac cache clear` leaves alone). */
typedef struct cg_tuning_device {
  char name[128];     /* "NVIDIA H200", or "emulator" */
  char arch[16];      /* "sm_90", or "host" */
  char driver[32];    /* "13.0", or "-" */
  char compiler[64];  /* "NVRTC 13.0", or the emulator's C++ compiler */
} cg_tuning_device;

typedef struct cg_tuning_entry {
  cg_tuning_device dev;
  char bucket[160];
  char config[16];
  double us, default_us;
} cg_tuning_entry;

typedef struct cg_tuning {
  cg_tuning_entry *e;
  int n, cap;
} cg_tuning;

/* The database's path: $HSAC_TUNING_DB if set and non-empty, else
 * tuning.tsv in the kernel cache's directory.  0, or -1 with err. */
int cg_tuning_path(char *buf, size_t size, char *err, size_t errsize);
/* Reads the database at path into *t (zeroed first; a missing file is an
 * empty database).  0, or -1 with err: "PATH:LINE: what is wrong" for a
 * malformed line (the file is left as it is). */
int cg_tuning_load(cg_tuning *t, const char *path, char *err, size_t errsize);
/* The entry of bucket on dev, or NULL. */
const cg_tuning_entry *cg_tuning_find(const cg_tuning *t, const cg_tuning_device *dev,
                                      const char *bucket);
/* Adds e to *t, replacing the entry of the same device and bucket.  0, or
 * -1 out of memory. */
int cg_tuning_set(cg_tuning *t, const cg_tuning_entry *e);
/* Merges n entries into the database at path: under an exclusive lock
 * (PATH.lock), the file is read again, the entries set, and the result
 * written to a temporary and renamed over it; the directory is made if
 * needed.  A malformed file is an error and is not replaced.  0, or -1
 * with err. */
int cg_tuning_save(const char *path, const cg_tuning_entry *e, int n, char *err,
                   size_t errsize);
/* Whether entries could be saved at path: its folder made, its lock file
 * created (hsac tune checks before it measures).  0, or -1 with err. */
int cg_tuning_writable(const char *path, char *err, size_t errsize);
void cg_tuning_free(cg_tuning *t);

/* Wt[i][o] = w[o][i] for a linear's weights [O, I]. */
void cg_cuda_transpose(const float *w, int64_t O, int64_t I, float *wt);

/* Whether HSA's sparse attention of req runs on the tensor cores
 * (chunk_attention_mma): the only kernel that reads history pages of bf16
 * rows (req->hist16[1], [2]: its K and V). */
bool cg_cuda_sparse_mma(const cg_kernel_req *req, cg_cuda_math math);

/* Whether the generator writes this op; if not, why (naming the op). */
bool cg_cuda_supported(const cg_kernel_req *req, char *why, size_t size);

/* Appends kernel `name` (and, for a linear, name_1) to *buf (malloc'd,
 * *len bytes, grown as needed), in the configuration cfg picks (NULL: the
 * defaults; a pick past a knob's candidates is an error).  0, or -1 with
 * err. */
int cg_cuda_emit(const cg_kernel_req *req, cg_cuda_math math, const cg_cuda_cfg *cfg,
                 const char *name, char **buf, size_t *len, cg_cuda_info *info, char *err,
                 size_t errsize);

/* Appends the text every module starts with: the slot numbers of
 * kernels.h as macros, prelude.cuh, then the module's one fixed kernel,
 * CG_CUDA_ROUND: it rounds output rows [r0, r1) of the view at CG_A_OUT0
 * to bf16 (CG_A_P0 = 1) or f16 (2) in place, one block of
 * CG_CUDA_ROUND_BLOCK threads per row.  0, or -1 out of memory. */
#define CG_CUDA_ROUND "hsac_round"
enum { CG_CUDA_ROUND_BLOCK = 128 };
/* ... and CG_CUDA_PACK16: n rows of RE f32 (src_stride apart) packed into
 * bf16 rows, one block of CG_CUDA_ROUND_BLOCK threads per row; slots 0
 * src, 1 dst, 2 n, 3 RE, 4 src_stride (a chunk memory's history pages in
 * bf16: cg_kernel_req.hist16). */
#define CG_CUDA_PACK16 "hsac_pack16"
/* Every kernel also has a batched entry, NAME_b (a linear: NAME_1b, its
 * decode GEMV), whose one parameter is `hs_batch`: the slots of up to
 * CG_CUDA_BATCH sessions, one per blockIdx.z (8 KB of parameter space,
 * which sm_70 and later take since CUDA 12.1). */
enum { CG_CUDA_BATCH = 16 };
int cg_cuda_emit_head(char **buf, size_t *len);
/* emu.h's text (the emulator's header), static storage. */
const char *cg_cuda_emu_header(void);

/* ---- NVRTC -------------------------------------------------------------- */

/* Whether this build has NVRTC. */
bool cg_cuda_have_nvrtc(void);
/* Compiles source for arch ("sm_80", "sm_90") into a CUBIN (cubin) or PTX.
 * *log gets NVRTC's log (with ptxas's -v report for a CUBIN), malloc'd, or
 * NULL.  0, or -1 with err (the log then says why). */
int cg_cuda_nvrtc(const char *source, const char *arch, bool cubin, char **out, size_t *len,
                  char **log, char *err, size_t errsize);

/* "NVRTC X.Y" (or "NVRTC not available"). */
void cg_cuda_nvrtc_version(char *buf, size_t size);
/* A CUBIN of source for arch from the kernel cache, or compiled by NVRTC
 * and put there.  The key holds the source, arch, NVRTC's and hsac's
 * versions and salt (the driver's version).  *hit: it came from the cache.
 * 0, or -1 with err (NVRTC's log included). */
int cg_cuda_cubin(const char *source, const char *arch, const char *salt,
                  const struct cg_cache *cache, char **out, size_t *len, bool *hit, char *err,
                  size_t errsize);

/* ---- the emulator --------------------------------------------------------- */

typedef struct cg_cuda_emu cg_cuda_emu;
typedef struct cg_cuda_emu_launch {
  unsigned grid[3], block[3];
} cg_cuda_emu_launch;
typedef int (*cg_cuda_emu_fn)(const void *args, const cg_cuda_emu_launch *l, char *err,
                              size_t errsize);

typedef struct cg_cuda_emu_stats {
  bool cache_hit;
  double ms;                 /* compiling (or reading the cache) and loading */
  char compiler[128];        /* the C++ compiler's name and version */
} cg_cuda_emu_stats;

/* Compiles a module's source for this CPU with the C++ compiler ($CXX, else
 * c++) under emu.h and loads it; the shared object is kept in the kernel
 * cache (cache may be NULL).  0, or -1 with err (the compiler's messages
 * included). */
int cg_cuda_emu_load(const char *source, const struct cg_cache *cache, cg_cuda_emu **out,
                     cg_cuda_emu_stats *stats, char *err, size_t errsize);
/* Kernel `name`'s entry point, or NULL. */
cg_cuda_emu_fn cg_cuda_emu_lookup(cg_cuda_emu *m, const char *name);
void cg_cuda_emu_free(cg_cuda_emu *m);

#endif
