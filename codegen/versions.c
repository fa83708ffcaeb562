/* versions.c - versions of LLVM and NVRTC (see versions.h). */
#include "codegen/versions.h"

#include <stdbool.h>
#include <stdio.h>

#ifndef HSAC_NO_LLVM
#include <llvm-c/Core.h>
#endif

#include "codegen/cuda/nvrtc.h"

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
  cg_nvrtc n;
  char err[512];
  int major = 0, minor = 0;
  bool ok = cg_nvrtc_open(&n, err, sizeof err) == 0 && n.version(&major, &minor) == 0;
  if (n.lib) cg_nvrtc_close(&n);
  if (ok) snprintf(buf, size, "%d.%d", major, minor);
  else snprintf(buf, size, "not available");
}
