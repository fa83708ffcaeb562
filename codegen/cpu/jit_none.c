/* jit_none.c - jit.h in a build without LLVM and MLIR (cmake
 * -DHSAC_WITH_LLVM=OFF): every entry point refuses with one message, so
 * the cpu backend and `hsac ir --emit=llvm|asm|obj` say why, and the
 * other backends (ref, cuda, cuda-emu) work as in a full build.  This is
 * the build for a machine that has the CUDA toolkit but no LLVM
 * (docs/cuda.md, "A build for a GPU machine"). */
#include "codegen/cpu/jit.h"
#include "codegen/cpu/kernels.h"

#include <stdio.h>
#include <string.h>

static int refuse(char *err, size_t errsize) {
  snprintf(err, errsize, "this hsac was built without LLVM (cmake -DHSAC_WITH_LLVM=OFF), so it "
           "generates no CPU code: use --backend ref, cuda or cuda-emu");
  return -1;
}

int cg_target_bf16(const cg_target *t) {
  (void)t;
  return CG_BF16_FMA;
}

int cg_amx_permit(char *err, size_t errsize) { return refuse(err, errsize); }

int cg_target_runnable(const cg_target *t, int bf16, char *err, size_t errsize) {
  (void)t, (void)bf16;
  return refuse(err, errsize);
}

bool cg_jit_available(void) { return false; }


int cg_target_init(cg_target *t, const char *name, char *err, size_t errsize) {
  (void)name;
  memset(t, 0, sizeof *t);
  return refuse(err, errsize);
}

int cg_jit_compile(const char *mlir, const cg_target *t, int threads, const cg_cache *cache,
                   cg_jit **out, cg_jit_stats *stats, char *err, size_t errsize) {
  (void)mlir, (void)t, (void)threads, (void)cache;
  *out = NULL;
  if (stats) memset(stats, 0, sizeof *stats);
  return refuse(err, errsize);
}

void *cg_jit_lookup(cg_jit *j, const char *name) {
  (void)j, (void)name;
  return NULL;
}

void cg_jit_free(cg_jit *j) { (void)j; }

int cg_jit_emit(const char *mlir, const cg_target *t, cg_emit_kind kind, char **out,
                size_t *len, char *err, size_t errsize) {
  (void)mlir, (void)t, (void)kind;
  *out = NULL;
  *len = 0;
  return refuse(err, errsize);
}
