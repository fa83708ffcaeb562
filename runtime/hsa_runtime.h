/* hsa_runtime.h - the public interface of libhsart, the hsac runtime.
 *
 * Every name starts with hsart_.  The library has no global state and never
 * prints or exits: each call returns an hsart_status, and a session keeps
 * the message of its last error.
 *
 * Status of this header: the error model and version query are in place;
 * loading models, weights, sessions, prefill, decode and sampling arrive
 * with the reference interpreter (see the issue "Reference execution"). */
#ifndef HSA_RUNTIME_H
#define HSA_RUNTIME_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum hsart_status {
  HSART_OK = 0,
  HSART_EINVAL,    /* an argument is invalid */
  HSART_ENOMEM,    /* out of memory */
  HSART_EIO,       /* a file could not be read or written */
  HSART_EFORMAT,   /* a file is malformed (weights, compiled model) */
  HSART_EMISMATCH, /* weights do not match the model */
  HSART_EUNSUPPORTED,
} hsart_status;

/* "major.minor.patch" of the runtime library. */
const char *hsart_version(void);

/* A short, constant description of a status code. */
const char *hsart_status_string(hsart_status s);

#ifdef __cplusplus
}
#endif

#endif
