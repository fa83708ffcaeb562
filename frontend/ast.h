/* ast.h - the syntax tree of a model description (.hsa file).
 *
 * The parser builds it in the compilation's arena; semantic analysis
 * (sema.c) reads it and never changes it.  Statements and top-level items
 * share one node type: a file is a list of statements whose bodies are
 * lists of statements. */
#ifndef HSAC_FRONTEND_AST_H
#define HSAC_FRONTEND_AST_H

#include <stdbool.h>
#include <stdint.h>

#include "util/diag.h"

typedef enum fe_expr_kind {
  FE_INT,     /* 42 */
  FE_FLOAT,   /* 1e-6, 0.5 */
  FE_STRING,  /* "text" */
  FE_IDENT,   /* a constant, an enumeration word or a name */
  FE_CALL,    /* word(args): a variant with its own parameters */
  FE_BINARY,  /* a op b with op one of + - * / // % */
  FE_NEG,     /* -a */
} fe_expr_kind;

typedef struct fe_expr fe_expr;
typedef struct fe_arg fe_arg;

/* One argument of a call: `value` (positional) or `name = value`. */
struct fe_arg {
  const char *name;   /* NULL for a positional argument */
  ut_loc name_loc;
  fe_expr *value;
  ut_loc loc;         /* the whole argument */
  fe_arg *next;
};

struct fe_expr {
  fe_expr_kind kind;
  ut_loc loc;
  union {
    int64_t i;          /* FE_INT */
    double f;           /* FE_FLOAT */
    const char *s;      /* FE_STRING (unescaped), FE_IDENT */
    struct {
      const char *name;
      ut_loc name_loc;
      fe_arg *args;
    } call;             /* FE_CALL */
    struct {
      int op;           /* '+', '-', '*', '/', '%', 'f' (floor division //) */
      fe_expr *lhs, *rhs;
    } bin;              /* FE_BINARY */
    fe_expr *operand;   /* FE_NEG */
  } u;
};

typedef enum fe_stmt_kind {
  FE_CONST,    /* const NAME = expr                (top level) */
  FE_INCLUDE,  /* include "path"                   (top level) */
  FE_MODEL,    /* model NAME { body }              (top level) */
  FE_BLOCK,    /* block NAME { body }              (top level) */
  FE_SET,      /* NAME = expr: a setting, or a binding of a layer result */
  FE_LAYER,    /* NAME, or NAME(args): a layer or a use of a block */
  FE_REPEAT,   /* repeat expr { body } */
  FE_STACK,    /* stack NAME { body } */
  FE_MEMORY,   /* memory NAME from SOURCE { body } */
} fe_stmt_kind;

typedef struct fe_stmt fe_stmt;
struct fe_stmt {
  fe_stmt_kind kind;
  ut_loc loc;          /* the keyword or the first name */
  const char *name;    /* defined or used name (FE_INCLUDE: the path) */
  ut_loc name_loc;
  fe_expr *value;      /* FE_CONST, FE_SET: the value; FE_REPEAT: the count */
  fe_arg *args;        /* FE_LAYER */
  bool has_parens;     /* FE_LAYER written as NAME(...) */
  const char *from;    /* FE_MEMORY: the source stack */
  ut_loc from_loc;
  fe_stmt *body;       /* FE_MODEL, FE_BLOCK, FE_REPEAT, FE_STACK, FE_MEMORY */
  fe_stmt *next;
};

/* A list under construction (the parser appends in source order). */
typedef struct fe_list {
  fe_stmt *head, *tail;
} fe_list;

typedef struct fe_arglist {
  fe_arg *head, *tail;
} fe_arglist;

/* State shared by the scanner and the parser for one file. */
typedef struct fe_parse_state {
  ut_arena *arena;
  ut_diags *diags;
  int file;            /* index in the compilation's sources */
  fe_stmt *result;     /* the file's statements once parsed */
  int paren_depth;     /* newlines inside ( ) do not end statements */
  int last_token;      /* decides whether a newline ends a statement */
  int line, col;       /* scanner position of the next character */
  const char *text;    /* the file's text, for quoting tokens in errors */
} fe_parse_state;

/* Parses one file's text (already in sources) into state->result.  Returns
 * false when there were syntax errors (they are in state->diags). */
bool fe_parse(fe_parse_state *state, const char *text, long len);

const char *fe_stmt_kind_name(fe_stmt_kind k);

#endif
