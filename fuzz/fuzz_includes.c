/* fuzz_includes.c - libFuzzer target: the include resolver on real files.
 *
 * The input is a small tree of model files.  Sections are separated by a
 * line "%%"; the first section is the root file, each later one starts
 * with a line naming where it goes ("sub/x.hsa"; a name with "..", a
 * leading "/" or an empty part is skipped: the target writes only inside
 * its scratch folder).  A section named "@link NAME TARGET" makes a
 * symbolic link NAME -> TARGET instead (any target: the resolver must
 * refuse what leads out of the folder without opening it).  The tree is
 * written under ./t, the root compiled from disk through every stage, its
 * diagnostics rendered, and the tree removed.
 *
 * What it checks, besides the sanitizers: no include outside ./t is ever
 * read (a root that names ../x, /etc/... or a link out must fail with a
 * diagnostic, and no source file of the compilation may lie outside ./t),
 * cycles and depth limits end, and nothing leaks. */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "passes/pipeline.h"
#include "util/diag.h"

static FILE *sink;
static char top[PATH_MAX]; /* the canonical path of ./t */

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  sink = fopen("/dev/null", "w");
  if (!sink) abort();
  return 0;
}

/* A name to write under ./t: relative, no "..", no empty part. */
static int safe_name(const char *n) {
  if (!*n || n[0] == '/') return 0;
  for (const char *p = n; *p;) {
    const char *e = strchr(p, '/');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (len == 0 || (len == 2 && p[0] == '.' && p[1] == '.') || (len == 1 && p[0] == '.'))
      return 0;
    if (!e) break;
    p = e + 1;
  }
  return strlen(n) < 200;
}

/* mkdir -p for the folders of t/NAME */
static void make_dirs(const char *path) {
  char buf[PATH_MAX];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *p = buf + 1; *p; p++)
    if (*p == '/') {
      *p = 0;
      mkdir(buf, 0700);
      *p = '/';
    }
}

static int remove_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  remove(path); /* links themselves (FTW_PHYS), never what they point to */
  return 0;
}

static void remove_tree(const char *path) {
  nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 16384) return 0;
  char *text = malloc(size + 1);
  memcpy(text, data, size);
  text[size] = 0;
  remove_tree("t");
  if (mkdir("t", 0700) != 0 || !realpath("t", top)) abort();
  /* split into sections at lines "%%" */
  int section = 0;
  char *p = text;
  while (p) {
    char *sep = strstr(p, "\n%%\n");
    if (sep) *sep = 0;
    const char *body = p;
    char name[256] = "root.hsa";
    if (section > 0) {
      char *nl = strchr(p, '\n');
      size_t n = nl ? (size_t)(nl - p) : strlen(p);
      if (n >= sizeof name) n = sizeof name - 1;
      memcpy(name, p, n);
      name[n] = 0;
      body = nl ? nl + 1 : "";
    }
    char path[PATH_MAX];
    if (!strncmp(name, "@link ", 6)) {
      char *target = strchr(name + 6, ' ');
      if (target) {
        *target++ = 0;
        if (safe_name(name + 6)) {
          snprintf(path, sizeof path, "t/%s", name + 6);
          make_dirs(path);
          if (symlink(target, path) != 0 && errno != EEXIST) { /* a bad name is fine */ }
        }
      }
    } else if (safe_name(name)) {
      snprintf(path, sizeof path, "t/%s", name);
      make_dirs(path);
      FILE *f = fopen(path, "wb");
      if (f) {
        fwrite(body, 1, strlen(body), f);
        fclose(f);
      }
    }
    section++;
    p = sep ? sep + 4 : NULL;
  }
  hsac_compilation c;
  hsac_init(&c);
  hsac_compile(&c, "t/root.hsa", NULL, 0, HSAC_STAGE_IR);
  ut_diags_render(&c.diags, &c.sources, sink);
  /* every file the compilation read lies inside ./t */
  size_t tl = strlen(top);
  for (int i = 0; i < c.sources.nfiles; i++) {
    char real[PATH_MAX];
    if (!realpath(c.sources.files[i]->path, real)) continue; /* removed meanwhile: no */
    if (strncmp(real, top, tl) != 0 || (real[tl] != '/' && real[tl] != 0)) {
      fprintf(stderr, "fuzz_includes: read %s, outside %s\n", real, top);
      abort();
    }
  }
  hsac_free(&c);
  remove_tree("t");
  free(text);
  return 0;
}
