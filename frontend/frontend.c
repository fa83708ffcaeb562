/* frontend.c - files, includes and names for the front end.
 *
 * An include is resolved relative to the directory of the file that names
 * it, parsed once per occurrence, and spliced in place of the include
 * statement.  Depth is bounded and a file that includes itself, directly or
 * not, is an error rather than a hang. */
#include "frontend/frontend.h"
#include "util/fileio.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct fe_loader {
  ut_arena *arena;
  ut_sources *sources;
  ut_diags *diags;
  const char *stack[FE_MAX_INCLUDE_DEPTH + 2]; /* canonical paths being read */
  int depth;
  const char *const *include_dirs; /* -I folders, NULL-terminated (or NULL) */
} fe_loader;

static fe_stmt *load_file(fe_loader *ld, int file, bool is_root);

static const char *dir_of(ut_arena *a, const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash) return ".";
  if (slash == path) return "/";
  return ut_strndup(a, path, (size_t)(slash - path));
}

static const char *canonical(ut_arena *a, const char *path) {
  char buf[PATH_MAX];
  if (realpath(path, buf)) return ut_strdup(a, buf);
  return ut_strdup(a, path);
}

/* An include path names a file in or below the including file's folder:
 * relative, with no ".." component. */
static bool inside_relative(const char *name) {
  if (name[0] == '/') return false;
  for (const char *p = name; *p;) {
    const char *e = strchr(p, '/');
    size_t n = e ? (size_t)(e - p) : strlen(p);
    if (n == 2 && p[0] == '.' && p[1] == '.') return false;
    if (!e) break;
    p = e + 1;
  }
  return true;
}

/* Replaces each include in `items` by the statements of the named file. */
static fe_stmt *splice_includes(fe_loader *ld, int file, fe_stmt *items) {
  fe_stmt head = {.next = items};
  fe_stmt *prev = &head;
  for (fe_stmt *it = items; it; it = prev->next) {
    if (it->kind != FE_INCLUDE) {
      prev = it;
      continue;
    }
    fe_stmt *inc = NULL;
    const char *name = it->name;
    if (name[0] == 0) {
      ut_error(ld->diags, it->name_loc, "include of an empty path");
    } else if (ld->depth >= FE_MAX_INCLUDE_DEPTH) {
      ut_error(ld->diags, it->name_loc, "includes nest more than %d deep",
               FE_MAX_INCLUDE_DEPTH);
    } else if (ld->sources->nfiles >= FE_MAX_FILES) {
      ut_error(ld->diags, it->name_loc, "more than %d files included", FE_MAX_FILES);
    } else if (!inside_relative(name)) {
      /* never opened: an include reads only files in (or below) the
       * including file's folder, so a model cannot make hsac read, and
       * quote in a diagnostic, /etc/shadow or ../../secret */
      ut_error(ld->diags, it->name_loc, "include \"%s\" leaves the including file's folder: "
               "an include is a relative path without '..' (docs/language.md)", name);
    } else {
      const char *dir = dir_of(ld->arena, ld->sources->files[file]->path);
      const char *path = !strcmp(dir, ".") ? name : ut_sprintf(ld->arena, "%s/%s", dir, name);
      /* not next to the including file: the first -I folder that has it */
      struct stat sb;
      for (int k = 0; ld->include_dirs && ld->include_dirs[k] && lstat(path, &sb) != 0; k++) {
        const char *cand = ut_sprintf(ld->arena, "%s/%s", ld->include_dirs[k], name);
        if (lstat(cand, &sb) == 0) {
          dir = ld->include_dirs[k];
          path = cand;
        }
      }
      const char *canon = canonical(ld->arena, path);
      const char *cdir = canonical(ld->arena, dir);
      size_t cl = strlen(cdir);
      bool escapes = canon[0] == '/' && cdir[0] == '/' &&
                     !(strncmp(canon, cdir, cl) == 0 && (canon[cl] == '/' || cl == 1));
      bool cycle = false;
      for (int i = 0; i <= ld->depth; i++)
        if (ld->stack[i] && !strcmp(ld->stack[i], canon)) cycle = true;
      if (escapes) {
        /* a symbolic link inside the folder that points out of it */
        ut_error(ld->diags, it->name_loc, "include \"%s\" leaves the including file's folder "
                 "(through a symbolic link)", name);
      } else if (cycle) {
        ut_error(ld->diags, it->name_loc, "include cycle: \"%s\" is already being read",
                 name);
      } else {
        int id = ut_sources_read(ld->sources, path, FE_MAX_FILE_BYTES, it->name_loc);
        if (id < 0 && errno == ENOMEM) ut_arena_oom(ld->arena);
        if (id < 0) {
          ut_error(ld->diags, it->name_loc, "cannot include \"%s\": %s", name,
                   errno == EFBIG ? "file is larger than 16 MiB"
                   : errno == EILSEQ ? "file contains NUL bytes"
                                     : ut_file_strerror(errno));
        } else {
          ld->depth++;
          ld->stack[ld->depth] = canon;
          inc = load_file(ld, id, false);
          ld->stack[ld->depth] = NULL;
          ld->depth--;
        }
      }
    }
    /* Splice: prev -> inc ... inc_tail -> it->next */
    if (inc) {
      prev->next = inc;
      fe_stmt *tail = inc;
      while (tail->next) tail = tail->next;
      tail->next = it->next;
      prev = tail;
    } else {
      prev->next = it->next;
    }
  }
  return head.next;
}

static fe_stmt *load_file(fe_loader *ld, int file, bool is_root) {
  const ut_source *src = ld->sources->files[file];
  fe_parse_state st = {.arena = ld->arena, .diags = ld->diags, .file = file};
  fe_parse(&st, src->text, src->len);
  if (!is_root) {
    for (fe_stmt *it = st.result; it; it = it->next)
      if (it->kind == FE_MODEL)
        ut_error(ld->diags, it->loc,
                 "an included file holds constants and blocks, not a model");
  }
  return splice_includes(ld, file, st.result);
}

static fe_stmt *load_root(fe_loader *ld, int id) {
  ld->stack[0] = canonical(ld->arena, ld->sources->files[id]->path);
  return load_file(ld, id, true);
}

fe_stmt *fe_load(ut_arena *arena, ut_sources *sources, ut_diags *diags,
                 const char *path, const char *const *include_dirs) {
  fe_loader ld = {.arena = arena, .sources = sources, .diags = diags,
                  .include_dirs = include_dirs};
  int id = ut_sources_read(sources, path, FE_MAX_FILE_BYTES, ut_noloc);
  if (id < 0 && errno == ENOMEM) ut_arena_oom(arena);
  if (id < 0) {
    ut_error(diags, ut_noloc, "cannot read '%s': %s", path,
             errno == EFBIG ? "file is larger than 16 MiB"
             : errno == EILSEQ ? "file contains NUL bytes"
                               : ut_file_strerror(errno));
    return NULL;
  }
  return load_root(&ld, id);
}

fe_stmt *fe_load_text(ut_arena *arena, ut_sources *sources, ut_diags *diags,
                      const char *name, const char *text, long len,
                      const char *const *include_dirs) {
  fe_loader ld = {.arena = arena, .sources = sources, .diags = diags,
                  .include_dirs = include_dirs};
  if (len > FE_MAX_FILE_BYTES) {
    ut_error(diags, ut_noloc, "'%s' is larger than 16 MiB", name);
    return NULL;
  }
  if (memchr(text, 0, (size_t)len)) {
    ut_error(diags, ut_noloc, "'%s' contains NUL bytes", name);
    return NULL;
  }
  int id = ut_sources_add(sources, name, text, len, ut_noloc);
  return load_root(&ld, id);
}

const char *fe_stmt_kind_name(fe_stmt_kind k) {
  switch (k) {
  case FE_CONST: return "a constant";
  case FE_INCLUDE: return "an include";
  case FE_MODEL: return "a model";
  case FE_BLOCK: return "a block";
  case FE_SET: return "a setting";
  case FE_LAYER: return "a layer";
  case FE_REPEAT: return "a repeat";
  case FE_STACK: return "a stack";
  case FE_MEMORY: return "a memory";
  }
  return "a statement";
}

const char *fe_layer_kind_name(fe_layer_kind k) {
  static const char *const names[] = {
#define FE_X(e, w) w,
      FE_LAYER_KINDS(FE_X)
#undef FE_X
  };
  return k < FE_L_COUNT ? names[k] : "?";
}
