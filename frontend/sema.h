/* sema.h - semantic analysis: from syntax trees to a resolved model. */
#ifndef HSAC_FRONTEND_SEMA_H
#define HSAC_FRONTEND_SEMA_H

#include "frontend/ast.h"
#include "frontend/model.h"

/* The parsed files of one compilation: the root file's statements with the
 * statements of its includes spliced in place of each include (see
 * frontend.c).  Returns the model, or NULL when there were errors. */
fe_model *fe_sema(ut_arena *arena, ut_diags *diags, fe_stmt *items);

#endif
