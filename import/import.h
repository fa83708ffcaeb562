/* import.h - turning a checkpoint of the paper authors' SWA + HSA model
 * into an hsac model file and weights (`hsac import`, docs/import.md).
 *
 * The checkpoint is a folder in the layout Hugging Face's save_pretrained
 * writes for the authors' DRTForCausalLM (model/modeling_swa_hsa.py in the
 * RamstorageAI long-context-modeling repository): a config.json and either
 * model.safetensors or model.safetensors.index.json with its shards.
 * hsac_import reads the config, writes the equivalent .hsa, compiles it,
 * and places every checkpoint tensor on the hsac weight that takes it.  It
 * writes nothing unless every weight of the model found its tensor, with
 * the right shape, and every tensor of the checkpoint found its place (or
 * is one the authors' code never reads, listed in the notes). */
#ifndef HSAC_IMPORT_IMPORT_H
#define HSAC_IMPORT_IMPORT_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/hsa_runtime.h"
#include "util/arena.h"

typedef struct hsac_import_opts {
  const char *dir;     /* the checkpoint folder */
  const char *out_dir; /* written: OUT_DIR/model.hsa, OUT_DIR/weights.safetensors
                          (the folder is created if it does not exist) */
  const char *name;    /* the model's name in the .hsa; NULL: "imported" */
  const char *version; /* hsac's version, recorded in the .hsa's header */
} hsac_import_opts;

typedef struct hsac_import_report {
  ut_arena arena;            /* owns every string below */
  const char *model_path;    /* what was written (set on success) */
  const char *weights_path;
  int ntensors;              /* tensors in the checkpoint */
  int nplaced;               /* of them, placed on an hsac weight */
  int64_t params;            /* parameters of the imported model */
  /* How config fields were read: one line each for every field that is
   * ignored (training-only, inference settings) or not known to the
   * importer, and every tensor deliberately left out. */
  const char **notes;
  int nnotes;
  /* On HSART_EMISMATCH: every problem with the tensors, one line each (a
   * tensor no weight takes, a weight whose tensor is missing, a shape that
   * differs). */
  const char **problems;
  int nproblems;
} hsac_import_report;

void hsac_import_report_init(hsac_import_report *r);
void hsac_import_report_free(hsac_import_report *r);

/* Imports o->dir.  HSART_OK, or a status with err filled (the file and the
 * field or tensor at fault): HSART_EIO (a file cannot be read or written),
 * HSART_EFORMAT (config.json or a safetensors file is malformed),
 * HSART_EUNSUPPORTED (a config hsac cannot represent, naming the field),
 * HSART_EMISMATCH (the tensors do not fit the config: r->problems lists
 * them all), HSART_ENOMEM. */
hsart_status hsac_import(const hsac_import_opts *o, hsac_import_report *r, char *err,
                         size_t errsize);

#endif
