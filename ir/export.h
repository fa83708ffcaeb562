/* export.h - the model's structure as JSON (docs/export.md). */
#ifndef HSAC_IR_EXPORT_H
#define HSAC_IR_EXPORT_H

#include "frontend/model.h"
#include "ir/ir.h"

/* The JSON text (malloc'ed; free() it), or NULL when out of memory.  Use
 * the graph as built (opt_level 0): the export describes primitive ops. */
char *ir_export_json(ir_graph *g, const fe_model *m);

#endif
