/* frontend.h - reading a model description: files, includes, parsing. */
#ifndef HSAC_FRONTEND_FRONTEND_H
#define HSAC_FRONTEND_FRONTEND_H

#include "frontend/ast.h"
#include "frontend/model.h"

enum {
  FE_MAX_INCLUDE_DEPTH = 16,
  FE_MAX_FILE_BYTES = 16 << 20, /* a model file larger than this is refused */
  FE_MAX_FILES = 256,
};

/* Reads `path` and every file it includes, parses them, and returns the
 * root's top-level statements with each include replaced by the included
 * file's statements (NULL for an empty file).  An include is looked up in
 * the including file's folder, then in each of include_dirs (a
 * NULL-terminated list, or NULL: none), and must stay inside the folder it
 * was found in.  Errors are reported to diags; the caller checks
 * diags->nerrors. */
fe_stmt *fe_load(ut_arena *arena, ut_sources *sources, ut_diags *diags,
                 const char *path, const char *const *include_dirs);

/* The same for text already in memory (tests, fuzzing); includes are
 * resolved relative to the current directory. */
fe_stmt *fe_load_text(ut_arena *arena, ut_sources *sources, ut_diags *diags,
                      const char *name, const char *text, long len,
                      const char *const *include_dirs);

#endif
