/* hsa_runtime.h - the public interface of libhsart, the hsac runtime.
 *
 * Every name starts with hsart_.  The library keeps no global state and
 * never prints or exits: each call returns an hsart_status, and the message
 * of the last failure is kept in the object it concerns (the session), or in
 * an hsart_error the caller passes (loading, where no object exists yet).
 *
 * Typical use:
 *
 *   hsart_model *m;  hsart_error e;
 *   if (hsart_model_load("model.hsa", "w.safetensors", NULL, &m, &e)) { ... e.message ... }
 *   hsart_session *s;
 *   hsart_session_create(m, NULL, &s, &e);
 *   hsart_prefill(s, tokens, n, NULL);           // logits of the last token
 *   for (...) { int32_t t; hsart_sample(s, &sampler, &t); hsart_decode(s, t); }
 *   hsart_session_free(s);  hsart_model_free(m);
 */
#ifndef HSA_RUNTIME_H
#define HSA_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum hsart_status {
  HSART_OK = 0,
  HSART_EINVAL,      /* an argument is invalid (a token outside the vocabulary, ...) */
  HSART_ENOMEM,      /* out of memory */
  HSART_EIO,         /* a file could not be read or written */
  HSART_EFORMAT,     /* a file is malformed (weights, model description) */
  HSART_EMISMATCH,   /* the weights do not match the model */
  HSART_EUNSUPPORTED,
  HSART_ECANCELED,   /* a progress callback asked to stop */
  HSART_ENUMERIC,    /* a result is not finite (NaN or infinity) */
} hsart_status;

/* Where a load or create reports what went wrong. */
typedef struct hsart_error {
  hsart_status status;
  char message[1024];
  /* 1 when message holds the model description's diagnostics, each line
   * already "file:line:col: error: ..." with the source line and a caret;
   * 0 for a one-line message (a CLI prefixes "hsac: error: ") */
  int diagnostics;
} hsart_error;

/* "major.minor.patch" of the runtime library. */
const char *hsart_version(void);
/* A short, constant description of a status code. */
const char *hsart_status_string(hsart_status s);

/* ---- models ------------------------------------------------------------ */

typedef struct hsart_model hsart_model;

/* Who computes the kernels. */
typedef enum hsart_backend {
  HSART_BACKEND_AUTO = 0,  /* cpu when it compiles every op of the model,
                              else ref (hsart_model_backend says which) */
  HSART_BACKEND_REF,       /* the reference interpreter: plain C, one thread */
  HSART_BACKEND_CPU,       /* kernels compiled through MLIR/LLVM for this CPU */
  HSART_BACKEND_CUDA,      /* CUDA C kernels through NVRTC on the first GPU
                              of the CUDA driver (loading a model without one
                              fails, saying why) */
  HSART_BACKEND_CUDA_EMU,  /* the same CUDA C run on this CPU by the emulator
                              (codegen/cuda/emu.h): slow, for checking */
} hsart_backend;

/* How the linear layers' weight matrices are held (docs/runtime.md,
 * "Weights in bf16"). */
typedef enum hsart_weights_dtype {
  HSART_WEIGHTS_KEEP = 0, /* bf16 or f16 where the file stores them so, else f32 */
  HSART_WEIGHTS_F32,      /* f32 (widened from bf16 or f16 files) */
  HSART_WEIGHTS_BF16,     /* every linear matrix rounded to bf16 (to nearest
                             even) at load: the cpu backend keeps them as
                             bf16 and widens them as it reads them; the ref
                             backend computes with the same rounded values */
} hsart_weights_dtype;

typedef struct hsart_model_options {
  int opt_level;   /* 1 (default): every pass, fused kernels; 0: the IR as
                      built, op by op (the unfused reference) */
  hsart_backend backend;
  int threads;     /* cpu backend: threads per session (0: every core) */
  const char *cpu; /* cpu backend: target CPU, an LLVM name such as
                      "haswell" (NULL: $HSAC_CPU, else the host) */
  int no_cache;    /* cpu backend: neither read nor write the kernel cache
                      (HSAC_NO_CACHE=1 does the same) */
  hsart_weights_dtype weights_dtype; /* the linear weights (KEEP by default) */
  int gpu_bf16;    /* cuda backends: the linears and the sparse attention on
                      tensor cores (bf16 inputs, f32 accumulation) instead
                      of f32 arithmetic (docs/cuda.md) */
  int cpu_bf16;    /* cpu and ref backends: every linear rounds its input
                      rows and its matrix to bf16 and sums the exact
                      products in f32: AMX tiles, AVX512-BF16 dot products
                      or f32 FMAs, by what the CPU has; with AMX, HSA's
                      sparse attention rounds its q, K, V and probabilities
                      too (docs/runtime.md, "bf16 arithmetic"); the ref
                      computes the same rounding */
  const char *const *include_dirs; /* folders searched for includes after the
                      including file's own (-I), NULL-terminated (or NULL) */
  int64_t gpu_page_bytes; /* cuda backends: the most bytes of history pages
                      (the chunk memory's) one session keeps in device
                      memory; older pages move to pinned host memory that
                      kernels read over the bus (0: as many as fit) */
  const char *tuning_db; /* cuda backends: the tuning database whose winners
                      configure the kernels' launches (NULL: $HSAC_TUNING_DB,
                      else tuning.tsv in the kernel cache's directory;
                      "none": every kernel in its default configuration);
                      a malformed database fails the load, naming the line */
  int tune_round;  /* hsart_tune's: 0 (use the database); N > 0 runs every
                      tunable kernel in its candidate configuration N-1 */
} hsart_model_options;

/* Compiles the model description and binds the weights to it: every tensor
 * the model needs must be in the file with the right shape (F32, F16 or
 * BF16; converted to f32), and the file may hold nothing else.  opts may be
 * NULL. */
hsart_status hsart_model_load(const char *model_path, const char *weights_path,
                              const hsart_model_options *opts, hsart_model **out,
                              hsart_error *err);
void hsart_model_free(hsart_model *m);
int64_t hsart_model_vocab(const hsart_model *m);
/* "ref" or "cpu": the backend the model runs on. */
const char *hsart_model_backend(const hsart_model *m);
/* One line: the backend, its target, kernels and compile time. */
void hsart_model_describe(const hsart_model *m, char *buf, size_t size);
const char *hsart_model_name(const hsart_model *m);

/* The GPU a model of the cuda backends runs on. */
typedef struct hsart_gpu_info {
  char name[128];     /* "NVIDIA H200"; "emulator" for cuda-emu */
  char arch[16];      /* "sm_90"; "host" */
  char driver[32];    /* the CUDA driver's version; "-" */
  char compiler[64];  /* "NVRTC 13.0"; "emu.h" */
  char desc[256];     /* one line: name, architecture, driver, free memory */
} hsart_gpu_info;
/* 1 with *out for a model on a cuda backend; 0 (out untouched) otherwise. */
int hsart_model_gpu(const hsart_model *m, hsart_gpu_info *out);

/* Writes deterministic random weights for a model description: every
 * matrix N(0, 1/fan_in), norm gains 1, embeddings and learned rows N(0, 1),
 * learned score offsets at their declared initial value.  The file is
 * written under a temporary name and renamed into place. */
hsart_status hsart_init_weights(const char *model_path, const char *out_path,
                                uint64_t seed, hsart_error *err);
/* The same with model options (only include_dirs is read; opts may be
 * NULL). */
hsart_status hsart_init_weights_opts(const char *model_path, const char *out_path,
                                     uint64_t seed, const hsart_model_options *opts,
                                     hsart_error *err);
/* What hsart_init_weights_report wrote. */
typedef struct hsart_weights_info {
  char model[128];    /* the model's name, also in the file's metadata */
  int tensors;
  int64_t parameters; /* elements over all tensors */
  int64_t file_bytes; /* the file's size */
} hsart_weights_info;
/* hsart_init_weights_opts, and a description of the file into *info. */
hsart_status hsart_init_weights_report(const char *model_path, const char *out_path,
                                       uint64_t seed, const hsart_model_options *opts,
                                       hsart_weights_info *info, hsart_error *err);

/* ---- tuning (cuda backends) ---------------------------------------------- */

/* hsart_tune times every tunable kernel launch of a model (docs/cuda.md,
 * "Tuning") in each of its candidate configurations, on the model's own
 * shapes: one prefill of `length` tokens and `decode` steps, run `reps`
 * times after a warm-up, the fastest run kept; each round compiles the
 * whole model with every knob at its next candidate.  Each round's logits
 * must agree with the first's (normalized error <= 1e-3), or its
 * configurations are rejected.  The winner of each shape bucket (a
 * candidate other than the default only when it is at least 3% faster)
 * goes to the tuning database, keyed by the device. */
typedef struct hsart_tune_options {
  const char *weights_path; /* NULL: deterministic random weights (only the
                               shapes matter) */
  int64_t length;           /* prompt tokens per run (0: 4096) */
  int decode;               /* decode steps after it (0: 32; -1: none) */
  int reps;                 /* timed runs per round (0: 3) */
  const char *db_path;      /* NULL: the default database (hsart_model_options) */
  int dry_run;              /* measure, write nothing */
  void (*progress)(void *user, const char *line); /* a line per round, or NULL */
  void *user;
} hsart_tune_options;

typedef struct hsart_tune_result {
  char bucket[160];         /* the shape bucket */
  int ops;                  /* the model's ops in it */
  int candidates;
  char default_config[16], best[16];
  double default_us, best_us; /* its kernels' time per run */
  int rejected;             /* candidates whose logits disagreed */
} hsart_tune_result;

typedef struct hsart_tune_report {
  hsart_gpu_info gpu;
  char db_path[4096];       /* "" with dry_run */
  int rounds;
  double max_err;           /* the largest error of a round's logits */
  hsart_tune_result *results; /* malloc'd (hsart_tune_report_free) */
  int nresults;
} hsart_tune_report;

/* opts: the model's options (backend cuda, or cuda-emu to check the
 * procedure without a GPU: its entries are keyed "emulator" and never
 * configure a GPU).  *rep is filled (free it) on success. */
hsart_status hsart_tune(const char *model_path, const hsart_model_options *opts,
                        const hsart_tune_options *t, hsart_tune_report *rep, hsart_error *err);
void hsart_tune_report_free(hsart_tune_report *rep);

/* ---- sessions ----------------------------------------------------------- */

typedef struct hsart_session hsart_session;

typedef enum hsart_cache_type {
  HSART_CACHE_F32 = 0,
  HSART_CACHE_BF16,
  HSART_CACHE_F16,
} hsart_cache_type;

/* Called after each prefill segment; return non-zero to stop (the tokens
 * processed so far stay in the session). */
typedef int (*hsart_progress_fn)(void *user, int64_t done, int64_t total);

/* Called with the logits of every position a prefill or decode computes. */
typedef void (*hsart_logits_fn)(void *user, int64_t position, const float *logits,
                                int64_t vocab);

typedef struct hsart_session_options {
  int64_t segment;           /* tokens per prefill segment (0: the backend's
                                default, 512 on the CPU, 4096 on the GPU) */
  hsart_cache_type cache;    /* element type of attention caches */
  int all_positions;         /* compute every position of a prefill, not only
                                what the last position's logits need (implied
                                by on_logits) */
  int check_numerics;        /* scan every op's new rows for NaN and infinity
                                and fail (HSART_ENUMERIC) naming the first op
                                that produced one; logits are always checked */
  int profile;               /* time every op (hsart_session_profile); a backend
                                that queues work (cuda) is synced around
                                each op, and batched decode runs op by op */
  hsart_progress_fn progress;
  hsart_logits_fn on_logits;
  void *user;                /* passed to the callbacks */
} hsart_session_options;

hsart_status hsart_session_create(const hsart_model *m, const hsart_session_options *opts,
                                  hsart_session **out, hsart_error *err);
void hsart_session_free(hsart_session *s);
/* Forgets every token; the session can start again. */
hsart_status hsart_session_reset(hsart_session *s);
/* The message of the session's last failure ("" if none). */
const char *hsart_session_error(const hsart_session *s);
/* Tokens processed so far. */
int64_t hsart_session_position(const hsart_session *s);
/* One line on what the session holds where its backend has something to
 * say (cuda: device memory, pages moved to host memory); "" otherwise. */
void hsart_session_describe(const hsart_session *s, char *buf, size_t size);

/* One line of a session's profile: an op, for one kind of step. */
typedef struct hsart_op_time {
  char op[32];          /* the op's kind: "linear", "chunk_attention", ... */
  char origin[96];      /* where the model description made it ("" if unknown) */
  char kernel[80];      /* the kernel that ran it (cuda backends; "" elsewhere) */
  char bucket[160];     /* cuda: its tunable launch's shape bucket ("" if none) */
  char config[16];      /* ... and the configuration it ran in */
  int candidates;       /* ... of this many (hsac tune's choices; 0: none) */
  int one_row;          /* 1: steps of one row (decode); 0: segments of more */
  int64_t calls;
  double ms;            /* wall time, the device synced before and after */
} hsart_op_time;
/* The session's profile so far (created with opts.profile): an entry per
 * op and kind of step that ran, in plan order; at most cap go to out (may
 * be NULL).  Returns the number of entries, or -1 when the session does
 * not profile. */
int64_t hsart_session_profile(const hsart_session *s, hsart_op_time *out, int64_t cap);

/* Appends n tokens, in segments of opts.segment tokens. */
hsart_status hsart_prefill(hsart_session *s, const int32_t *tokens, int64_t n);
/* Appends one token. */
hsart_status hsart_decode(hsart_session *s, int32_t token);
/* Appends tokens[i] to session ss[i], for n sessions of one model (each at
 * its own position), computed together: on the cuda backends each op of
 * the step is one launch for all of them.  The logits are each session's
 * hsart_logits, the same as n hsart_decode calls would give.  On a
 * failure every session of the batch is reset, and each one's error says
 * which entry failed and why. */
hsart_status hsart_decode_batch(hsart_session *const *ss, const int32_t *tokens, int n);
/* Logits after the last token (vocab floats), or NULL before any token. */
const float *hsart_logits(const hsart_session *s);

typedef struct hsart_sampler {
  float temperature;         /* 0: greedy */
  int32_t top_k;             /* 0: no limit */
  float top_p;               /* 0 or 1: no limit */
  uint64_t seed;
} hsart_sampler;

/* Draws the next token from the current logits.  Sampling state (the
 * random stream) lives in the session and is seeded by the first call with
 * a given seed, so a run is reproducible. */
hsart_status hsart_sample(hsart_session *s, const hsart_sampler *p, int32_t *token);

/* ---- tokenizer ---------------------------------------------------------- */

/* Byte-level: bytes are tokens 0..255; 256 is BOS, 257 EOS, 258 PAD. */
enum { HSART_TOKEN_BOS = 256, HSART_TOKEN_EOS = 257, HSART_TOKEN_PAD = 258 };
/* Writes up to cap tokens for len bytes of text; returns the count. */
int64_t hsart_tokenize(const char *text, int64_t len, int32_t *tokens, int64_t cap);

#ifdef __cplusplus
}
#endif

#endif
