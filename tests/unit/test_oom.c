/* test_oom.c - running out of memory anywhere is an error, not a crash.
 *
 * The whole path of a run (compile the description, load the weights,
 * create a session, prefill, decode, sample) is repeated with the n-th
 * allocation failing, for every n until the run needs no more than n
 * allocations.  Each attempt must end in HSART_OK or HSART_ENOMEM (or a
 * message saying so), and under the sanitizers nothing may leak. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/hsa_runtime.h"
#include "testutil.h"

static hsart_status attempt(const char *model, const char *weights, bool *oom_seen) {
  hsart_error e;
  hsart_model *m = NULL;
  hsart_session *s = NULL;
  hsart_status st = hsart_model_load(model, weights, NULL, &m, &e);
  if (st != HSART_OK) {
    *oom_seen = strstr(e.message, "out of memory") != NULL;
    if (!*oom_seen && getenv("TU_SHOW_MESSAGES")) fprintf(stderr, "\n%s\n", e.message);
    return st;
  }
  st = hsart_session_create(m, NULL, &s, &e);
  if (st == HSART_OK) {
    int32_t tok[40];
    for (int i = 0; i < 40; i++) tok[i] = (int32_t)(i * 7 % 256);
    st = hsart_prefill(s, tok, 40);
    int32_t t;
    if (st == HSART_OK) st = hsart_sample(s, NULL, &t);
    if (st == HSART_OK) st = hsart_decode(s, t);
    if (st != HSART_OK) *oom_seen = strstr(hsart_session_error(s), "out of memory") != NULL;
  } else {
    *oom_seen = strstr(e.message, "out of memory") != NULL;
  }
  hsart_session_free(s);
  hsart_model_free(m);
  return st;
}

static void test_every_allocation_can_fail(void) {
  char model[512], weights[256];
  snprintf(model, sizeof model, "%s/examples/tiny/paper_swa_hsa.hsa", tu_src());
  snprintf(weights, sizeof weights, "/tmp/hsac-oom-%d.safetensors", (int)getpid());
  hsart_error e;
  CU_ASSERT_EQUAL_FATAL(hsart_init_weights(model, weights, 1, &e), HSART_OK);
  /* how many allocations a successful run makes */
  long before = tu_alloc_count();
  bool oom = false;
  CU_ASSERT_EQUAL_FATAL(attempt(model, weights, &oom), HSART_OK);
  long need = tu_alloc_count() - before;
  CU_ASSERT(need > 10);
  /* fail each one in turn (every one up to 400, then every 7th) */
  int failures = 0, bad = 0;
  for (long n = 0; n < need; n += n < 400 ? 1 : 7) {
    tu_alloc_fail_after(n);
    oom = false;
    hsart_status st = attempt(model, weights, &oom);
    tu_alloc_fail_after(-1);
    if (st == HSART_OK) continue; /* the failed allocation had a fallback */
    failures++;
    if (st != HSART_ENOMEM && !oom) {
      if (bad++ < 5)
        fprintf(stderr, "\nallocation %ld failing gave status %d without saying out of memory\n",
                n, (int)st);
    }
  }
  CU_ASSERT(failures > 0);
  CU_ASSERT_EQUAL(bad, 0);
  unlink(weights);
}

void tu_add_oom_suite(void) {
  CU_pSuite s = CU_add_suite("out of memory", NULL, NULL);
  CU_add_test(s, "every allocation of a run can fail", test_every_allocation_can_fail);
}
