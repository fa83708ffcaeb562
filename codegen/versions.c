/* versions.c - versions of LLVM and NVRTC (see versions.h). */
#include "codegen/versions.h"

#include <stdio.h>

#ifndef HSAC_NO_LLVM
#include <llvm-c/Core.h>
#endif

#ifdef HSAC_HAVE_NVRTC
#include <nvrtc.h>
#endif

void cg_llvm_version(char *buf, size_t size) {
#ifdef HSAC_NO_LLVM
  snprintf(buf, size, "not built in");
#else
  unsigned major = 0, minor = 0, patch = 0;
  LLVMGetVersion(&major, &minor, &patch);
  snprintf(buf, size, "%u.%u.%u", major, minor, patch);
#endif
}

void cg_nvrtc_version(char *buf, size_t size) {
#ifdef HSAC_HAVE_NVRTC
  int major = 0, minor = 0;
  if (nvrtcVersion(&major, &minor) == NVRTC_SUCCESS) {
    snprintf(buf, size, "%d.%d", major, minor);
    return;
  }
#endif
  snprintf(buf, size, "not available");
}
