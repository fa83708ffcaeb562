/* runtime.c - libhsart: version and error model (see hsa_runtime.h). */
#include "runtime/hsa_runtime.h"

#include "hsac_version.h"

const char *hsart_version(void) { return HSAC_VERSION; }

const char *hsart_status_string(hsart_status s) {
  switch (s) {
  case HSART_OK: return "success";
  case HSART_EINVAL: return "invalid argument";
  case HSART_ENOMEM: return "out of memory";
  case HSART_EIO: return "input/output error";
  case HSART_EFORMAT: return "malformed file";
  case HSART_EMISMATCH: return "weights do not match the model";
  case HSART_EUNSUPPORTED: return "not supported";
  }
  return "unknown status";
}
