/* versions.h - versions of the code generators hsac links against.
 *
 * They are part of every kernel cache key, and `hsac --version` prints them. */
#ifndef HSAC_CODEGEN_VERSIONS_H
#define HSAC_CODEGEN_VERSIONS_H

#include <stddef.h>

/* "19.1.7" from the LLVM library actually loaded. */
void cg_llvm_version(char *buf, size_t size);
/* "13.0" from NVRTC, or "not available" when built without it. */
void cg_nvrtc_version(char *buf, size_t size);

#endif
