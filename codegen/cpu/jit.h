/* jit.h - from MLIR text to callable machine code, for the host CPU or a
 * named one (cg_jit_).
 *
 * The text is parsed into an MLIR module, lowered to the LLVM dialect
 * (scf, vector, math, arith, func, memref -> llvm), translated to LLVM IR,
 * optimized with default<O3> for the target and emitted as object code,
 * loaded into an ORC LLJIT instance.  cg_jit_compile splits the module's
 * functions into parts compiled on parallel threads, one object each; the
 * bundle of objects is what the kernel cache stores (codegen/cache.h): a
 * cached bundle skips everything but the load.  cg_jit_emit writes one
 * object (ahead-of-time builds). */
#ifndef HSAC_CODEGEN_CPU_JIT_H
#define HSAC_CODEGEN_CPU_JIT_H

#include <stdbool.h>
#include <stddef.h>

#include "codegen/cache.h"

/* The machine code generates for. */
typedef struct cg_target {
  char triple[128];
  char cpu[64];          /* LLVM's CPU name ("znver4", "haswell", ...) */
  char features[4096];   /* "+avx2,+fma,..." (host) or "" (a named CPU's own) */
  int vec_bits;          /* widest float vector the code uses: 512, 256 or 128 */
  bool avx512bf16;       /* has vdpbf16ps (AVX512-BF16) */
  bool amx;              /* has AMX-BF16 tiles (the process must also be
                            allowed to use them: cg_amx_permit) */
  bool forced;           /* named by HSAC_CPU / an option, not the host */
  int prefetch;          /* the sparse kernels' prefetch density (cg_prefetch):
                            dense on Zen 5 (znver5), dense in the sparse
                            attention on Zen 4, sparse elsewhere */
} cg_target;

/* The host CPU, or the CPU named by `name` (NULL or "" or "host": the
 * host).  A named CPU that LLVM does not know is an error. */
int cg_target_init(cg_target *t, const char *name, char *err, size_t errsize);

typedef struct cg_jit cg_jit;

typedef struct cg_jit_stats {
  bool cache_hit;        /* the object came from the kernel cache */
  bool cache_rebuilt;    /* a corrupt cache entry was found and replaced */
  int jobs;              /* parts compiled in parallel (0: from the cache) */
  double ms_lower;       /* parse + MLIR passes + translation (the slowest part's) */
  double ms_opt;         /* LLVM O3 + object emission (the slowest part's) */
  double ms_load;        /* loading the object into the JIT */
  size_t object_bytes;
  char key[33];          /* the cache key */
} cg_jit_stats;

/* Compiles (or loads from the cache) a module of kernels, on up to
 * `threads` threads (<= 0: one per online CPU).  `cache` may be NULL (no
 * cache).  Returns 0, or -1 with err. */
int cg_jit_compile(const char *mlir, const cg_target *t, int threads, const cg_cache *cache,
                   cg_jit **out, cg_jit_stats *stats, char *err, size_t errsize);
/* The address of a function of the module, or NULL. */
void *cg_jit_lookup(cg_jit *j, const char *name);
void cg_jit_free(cg_jit *j);
/* Asks the kernel, once per process, to let it use AMX tile data
 * (arch_prctl ARCH_REQ_XCOMP_PERM, XTILEDATA): without it the first tile
 * instruction kills the process.  Returns 0, or -1 with err saying why. */
int cg_amx_permit(char *err, size_t errsize);

/* The arithmetic the target gives a linear under bf16 math (cg_bf16). */
int cg_target_bf16(const cg_target *t);

/* Whether this CPU can run code generated for t with bf16 math of kind
 * bf16 (cg_bf16; CG_BF16_OFF for f32): a named (forced) CPU may need
 * wider vectors, AVX512-BF16 or AMX tiles than the host has, and running
 * such code would die of an illegal instruction.  The check is by those
 * three levels only (a named CPU's other extensions are not compared).
 * Returns 0, or -1 with err naming what the host lacks. */
int cg_target_runnable(const cg_target *t, int bf16, char *err, size_t errsize);

/* Whether this build generates CPU code (false: built with
 * HSAC_WITH_LLVM=OFF, jit_none.c, whose functions all refuse). */
bool cg_jit_available(void);

/* What `hsac ir --emit=...` shows: the module lowered to LLVM IR (after
 * O3), to the target's assembly, or an ELF object file with every kernel
 * (for ahead-of-time builds).  *out is malloc'd, *len bytes (text is also
 * NUL-terminated). */
typedef enum cg_emit_kind { CG_EMIT_LLVM, CG_EMIT_ASM, CG_EMIT_OBJ } cg_emit_kind;
int cg_jit_emit(const char *mlir, const cg_target *t, cg_emit_kind kind, char **out,
                size_t *len, char *err, size_t errsize);

#endif
