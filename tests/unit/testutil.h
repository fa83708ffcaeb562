/* testutil.h - helpers shared by the CUnit suites. */
#ifndef HSAC_TESTS_TESTUTIL_H
#define HSAC_TESTS_TESTUTIL_H

#include <CUnit/CUnit.h>
#include <math.h>

#include "passes/pipeline.h"
#include "runtime/hsa_runtime.h"

/* Compiles text named "t.hsa" up to `stop`; diagnostics are rendered into
 * *diag_text (malloc'ed, caller frees). */
hsac_status tu_compile(hsac_compilation *c, const char *text, hsac_stage stop,
                       char **diag_text);
/* Renders a graph's printed IR into a malloc'ed string. */
char *tu_print_ir(ir_graph *g);
/* The source tree the tests read examples from: $HSAC_SOURCE_DIR when set
 * (a test binary carried to another machine), else the build's. */
const char *tu_src(void);
/* True when `needle` occurs in `hay`. */
int tu_contains(const char *hay, const char *needle);

/* Allocator hooks (alloc.c). */
void tu_alloc_reset_largest(void);
size_t tu_alloc_largest(void);
/* The n-th allocation from now fails (0: the next one), once; -1: none. */
void tu_alloc_fail_after(long n);
long tu_alloc_count(void);

/* Logits of every position of tok[0..n) of a model on a backend (cpu: its
 * target, or NULL): a prefill in segments of `segment`, or (segment 0) the
 * first token then decode.  *out is malloc'd (n x vocab). */
bool tu_model_logits(const char *model, const char *weights, hsart_backend be, const char *cpu,
                     const int32_t *tok, int64_t n, int64_t segment, float **out, int64_t *vocab,
                     hsart_weights_dtype wd);
/* The same with the model options given. */
bool tu_model_logits_mo(const char *model, const char *weights, const hsart_model_options *mo,
                        const int32_t *tok, int64_t n, int64_t segment, float **out,
                        int64_t *vocab);
/* The larger of two differences, NaN sticky: a NaN (a kernel or model
 * that produced one) must fail the comparison, not be replaced by the
 * next finite difference as `if (!(d <= m)) m = d` would. */
static inline double tu_worse(double m, double d) {
  return m != m || d != d ? (double)NAN : d > m ? d : m;
}
/* |a - b|, 0 where they are equal (equal infinities included: -inf
 * scores of ineligible landmarks), NaN where either is NaN. */
static inline double tu_absdiff(double a, double b) { return a == b ? 0 : fabs(a - b); }
/* Whether every examples/tiny/NAME.hsa of the source tree is among the n
 * names (a suite that runs "every example" by a list: a new example must
 * join it); the missing ones are printed. */
bool tu_lists_every_example(const char *const *names, size_t n);
/* |a - b| / |a| over n values. */
double tu_norm_err(const float *a, const float *b, int64_t n);

void tu_add_frontend_suite(void);
void tu_add_ir_suite(void);
void tu_add_runtime_suite(void);
void tu_add_ops_suite(void);
void tu_add_weights_suite(void);
void tu_add_passes_suite(void);
void tu_add_oom_suite(void);
void tu_add_tasks_suite(void);
void tu_add_backend_suite(void);
void tu_add_cache_suite(void);
void tu_add_pool_suite(void);
void tu_add_cuda_suite(void);
void tu_add_gpu_suite(void);

#endif
