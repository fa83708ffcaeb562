/* nvrtc.c - loading NVRTC with dlopen (see nvrtc.h). */
#include "codegen/cuda/nvrtc.h"

#include <dlfcn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* dlsym's object pointer as a function pointer (POSIX guarantees the
 * conversion works; ISO C does not define it, hence the memcpy). */
#define SYM(field, name)                                           \
  do {                                                             \
    void *p_ = dlsym(n->lib, name);                                \
    if (!p_) {                                                     \
      missing = name;                                              \
      break;                                                       \
    }                                                              \
    memcpy(&n->field, &p_, sizeof p_);                             \
  } while (0)

static int bind(cg_nvrtc *n, char *err, size_t errsize) {
  const char *missing = NULL;
  SYM(create, "nvrtcCreateProgram");
  if (!missing) SYM(compile, "nvrtcCompileProgram");
  if (!missing) SYM(log_size, "nvrtcGetProgramLogSize");
  if (!missing) SYM(log, "nvrtcGetProgramLog");
  if (!missing) SYM(cubin_size, "nvrtcGetCUBINSize");
  if (!missing) SYM(cubin, "nvrtcGetCUBIN");
  if (!missing) SYM(ptx_size, "nvrtcGetPTXSize");
  if (!missing) SYM(ptx, "nvrtcGetPTX");
  if (!missing) SYM(destroy, "nvrtcDestroyProgram");
  if (!missing) SYM(error_string, "nvrtcGetErrorString");
  if (!missing) SYM(version, "nvrtcVersion");
  if (!missing) return 0;
  snprintf(err, errsize, "%s has no %s (NVRTC 11.1 or newer is needed)", n->path, missing);
  return -1;
}

/* RTLD_NODELETE: the library stays mapped after dlclose (the loader
 * counts the opens), so its own allocations stay reachable, and later
 * opens are cheap. */
static int try_open(cg_nvrtc *n, const char *path) {
  n->lib = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  if (n->lib) snprintf(n->path, sizeof n->path, "%s", path);
  return n->lib ? 0 : -1;
}

int cg_nvrtc_open(cg_nvrtc *n, char *err, size_t errsize) {
  memset(n, 0, sizeof *n);
#ifdef HSAC_NO_NVRTC
  snprintf(err, errsize, "this hsac was built without NVRTC (-DHSAC_WITH_NVRTC=OFF)");
  return -1;
#else
  const char *env = getenv("HSAC_NVRTC");
  if (env && env[0]) {
    if (try_open(n, env)) {
      const char *why = dlerror();
      snprintf(err, errsize, "NVRTC could not be loaded from $HSAC_NVRTC (%s): %s", env,
               why ? why : "unknown error");
      return -1;
    }
  } else {
    char dirs[3][300] = {"", "", "/usr/local/cuda/lib64"};
#ifdef HSAC_NVRTC_HINT
    snprintf(dirs[0], sizeof dirs[0], "%s", HSAC_NVRTC_HINT);
#endif
    const char *home = getenv("CUDA_HOME");
    if (home && home[0]) snprintf(dirs[1], sizeof dirs[1], "%s/lib64", home);
    static const char *const names[] = {"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"};
    bool found = false;
    for (size_t i = 0; i < 3 && !found; i++) found = try_open(n, names[i]) == 0;
    for (size_t d = 0; d < 3 && !found; d++)
      for (size_t i = 0; i < 3 && !found && dirs[d][0]; i++) {
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dirs[d], names[i]);
        found = try_open(n, p) == 0;
      }
    if (!found) {
      snprintf(err, errsize, "NVRTC (libnvrtc.so.13 or .so.12, from the CUDA toolkit) was not "
               "found on the loader's path, in $CUDA_HOME/lib64 or /usr/local/cuda/lib64; set "
               "HSAC_NVRTC to its path");
      return -1;
    }
  }
  if (bind(n, err, errsize)) {
    cg_nvrtc_close(n);
    return -1;
  }
  return 0;
#endif
}

void cg_nvrtc_close(cg_nvrtc *n) {
  if (n->lib) dlclose(n->lib);
  memset(n, 0, sizeof *n);
}
