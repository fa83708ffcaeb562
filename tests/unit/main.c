/* main.c - runs every CUnit suite, or (test_unit SUITE [TEST]) the suite
 * named SUITE or one test of it.
 * CUnit's basic runner reports success even when assertions fail, so the
 * exit code comes from the failure count. */
#include <CUnit/Basic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

hsac_status tu_compile(hsac_compilation *c, const char *text, hsac_stage stop,
                       char **diag_text) {
  hsac_init(c);
  hsac_status st = hsac_compile(c, "t.hsa", text, (long)strlen(text), stop);
  if (diag_text) {
    size_t n;
    FILE *f = open_memstream(diag_text, &n);
    ut_diags_render(&c->diags, &c->sources, f);
    fclose(f);
  }
  return st;
}

char *tu_print_ir(ir_graph *g) {
  char *buf;
  size_t n;
  FILE *f = open_memstream(&buf, &n);
  ir_print(g, f);
  fclose(f);
  return buf;
}

const char *tu_src(void) {
  const char *e = getenv("HSAC_SOURCE_DIR");
  return e && e[0] ? e : HSAC_SOURCE_DIR;
}

int tu_contains(const char *hay, const char *needle) {
  return hay && needle && strstr(hay, needle) != NULL;
}

int main(int argc, char **argv) {
  if (CU_initialize_registry() != CUE_SUCCESS) return 2;
  tu_add_frontend_suite();
  tu_add_ir_suite();
  tu_add_runtime_suite();
  tu_add_ops_suite();
  tu_add_weights_suite();
  tu_add_passes_suite();
  tu_add_oom_suite();
  tu_add_tasks_suite();
  tu_add_backend_suite();
  tu_add_cache_suite();
  tu_add_pool_suite();
  tu_add_cuda_suite();
  tu_add_gpu_suite();
  CU_basic_set_mode(CU_BRM_VERBOSE);
  if (argc > 1 && !strcmp(argv[1], "--check-suites")) {
    /* ctest runs the suites one by one (tests/CMakeLists.txt): every suite
     * of the registry must be in its list, argv[2..] */
    int missing = 0;
    for (CU_pSuite s = CU_get_registry()->pSuite; s; s = s->pNext) {
      bool found = false;
      for (int i = 2; i < argc && !found; i++) found = !strcmp(argv[i], s->pName);
      if (!found) fprintf(stderr, "test_unit: suite '%s' is not run by ctest\n", s->pName);
      missing += !found;
    }
    CU_cleanup_registry();
    return missing ? 1 : 0;
  }
  if (argc > 1) {
    CU_pSuite one = CU_get_suite(argv[1]);
    if (!one) {
      fprintf(stderr, "test_unit: no suite named '%s'\n", argv[1]);
      CU_cleanup_registry();
      return 2;
    }
    const char *only = argc > 2 ? argv[2] : NULL;
    /* "--part=K/N": the suite's tests K, K + N, K + 2N, ... (from 0), so
     * that ctest can run a long suite's parts side by side */
    unsigned part = 0, parts = 0;
    char end = 0;
    if (only && !strncmp(only, "--part=", 7)) {
      if (sscanf(only + 7, "%u/%u%c", &part, &parts, &end) != 2 || parts == 0 || part >= parts) {
        fprintf(stderr, "test_unit: --part expects K/N with 0 <= K < N, not '%s'\n", only + 7);
        CU_cleanup_registry();
        return 2;
      }
      unsigned i = 0;
      for (CU_pTest t = one->pTest; t; t = t->pNext, i++) CU_set_test_active(t, i % parts == part);
      CU_set_fail_on_inactive(CU_FALSE);
      only = NULL;
    }
    CU_pTest t = only ? CU_get_test(one, only) : NULL;
    if (only && !t) {
      fprintf(stderr, "test_unit: no test named '%s' in suite '%s'\n", only, argv[1]);
      CU_cleanup_registry();
      return 2;
    }
    if (t) CU_basic_run_test(one, t);
    else CU_basic_run_suite(one);
  } else {
    CU_basic_run_tests();
  }
  unsigned failures = CU_get_number_of_failures();
  unsigned run = CU_get_number_of_tests_run();
  CU_cleanup_registry();
  return failures == 0 && run > 0 ? 0 : 1;
}
