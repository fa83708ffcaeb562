/* nvrtc.h - NVRTC, loaded with dlopen when it is needed (nvrtc.c).
 *
 * hsac links no CUDA library: a binary built where the CUDA toolkit is
 * installed still starts where it is not, and one carried to a machine
 * with another toolkit (NVRTC 12 or 13) uses that machine's.  The entry
 * points are declared here with the types of NVRTC's C API (stable since
 * CUDA 11.1, when CUBIN output came), so no NVRTC header is needed either.
 *
 * Where it is looked for, first found wins: $HSAC_NVRTC (a path), then
 * libnvrtc.so.13, .so.12 and libnvrtc.so on the loader's path, then the
 * directory where the build found the toolkit, $CUDA_HOME/lib64 and
 * /usr/local/cuda/lib64.  Every open is its own (dlopen counts them): no
 * state outlives a call. */
#ifndef HSAC_CODEGEN_CUDA_NVRTC_H
#define HSAC_CODEGEN_CUDA_NVRTC_H

#include <stddef.h>

typedef int cg_nvrtc_result; /* NVRTC_SUCCESS is 0 */
typedef struct cg_nvrtc_prog_ *cg_nvrtc_prog;

typedef struct cg_nvrtc {
  void *lib;
  char path[1024];           /* the library that was loaded */
  cg_nvrtc_result (*create)(cg_nvrtc_prog *, const char *src, const char *name, int nheaders,
                            const char *const *headers, const char *const *include_names);
  cg_nvrtc_result (*compile)(cg_nvrtc_prog, int nopts, const char *const *opts);
  cg_nvrtc_result (*log_size)(cg_nvrtc_prog, size_t *);
  cg_nvrtc_result (*log)(cg_nvrtc_prog, char *);
  cg_nvrtc_result (*cubin_size)(cg_nvrtc_prog, size_t *);
  cg_nvrtc_result (*cubin)(cg_nvrtc_prog, char *);
  cg_nvrtc_result (*ptx_size)(cg_nvrtc_prog, size_t *);
  cg_nvrtc_result (*ptx)(cg_nvrtc_prog, char *);
  cg_nvrtc_result (*destroy)(cg_nvrtc_prog *);
  const char *(*error_string)(cg_nvrtc_result);
  cg_nvrtc_result (*version)(int *major, int *minor);
} cg_nvrtc;

/* Loads NVRTC into *n.  0, or -1 with err saying where it was looked for
 * (and, with HSAC_NO_NVRTC built in, that this hsac does without). */
int cg_nvrtc_open(cg_nvrtc *n, char *err, size_t errsize);
void cg_nvrtc_close(cg_nvrtc *n);

#endif
