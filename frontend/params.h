/* params.h - the parameter tables of the language.
 *
 * Each setting a model, a memory or a layer accepts is one row: its name,
 * type, range, default and a one-line meaning.  Semantic analysis checks
 * values against these rows, suggests names from them, and `hsac params`
 * prints them, so the reference in docs/language.md can be checked against
 * the compiler itself. */
#ifndef HSAC_FRONTEND_PARAMS_H
#define HSAC_FRONTEND_PARAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum fe_ptype {
  FE_P_INT,     /* integer in [min, max] */
  FE_P_FLOAT,   /* number in [fmin, fmax] */
  FE_P_BOOL,    /* true | false */
  FE_P_ENUM,    /* one word of `words`, or word(sub-params) */
  FE_P_ROPE,    /* a base (theta) > 0, or none */
  FE_P_OFFSET,  /* none | a number | learned(initial value) */
  FE_P_REF,     /* positional: the name of a memory or a retrieval */
} fe_ptype;

typedef struct fe_param fe_param;
struct fe_param {
  const char *name;
  fe_ptype type;
  size_t field;             /* offsetof the value in its struct */
  size_t field2;            /* FE_P_OFFSET: offsetof the kind */
  int64_t min, max;         /* FE_P_INT */
  double fmin, fmax;        /* FE_P_FLOAT, FE_P_ROPE */
  const char *const *words; /* FE_P_ENUM, NULL-terminated */
  const fe_param *sub;      /* FE_P_ENUM: parameters of word(...) */
  const char *sub_word;     /* the one word that takes them (NULL: every word) */
  const char *def;          /* default, as documentation; NULL: required */
  const char *doc;          /* meaning */
};

typedef struct fe_param_table {
  const char *what;         /* "model", "memory", "swa", ... */
  const fe_param *params;   /* terminated by a row with name NULL */
  const char *doc;
} fe_param_table;

extern const fe_param_table fe_model_params;
extern const fe_param_table fe_memory_params;
/* Indexed by fe_layer_kind. */
extern const fe_param_table fe_layer_params[];

const fe_param *fe_param_find(const fe_param *params, const char *name);
/* The closest name within a small edit distance, or NULL. */
const char *fe_param_suggest(const fe_param *params, const char *name);

/* Writes every table as Markdown (for docs/language.md). */
void fe_params_print_markdown(FILE *out);

#endif
