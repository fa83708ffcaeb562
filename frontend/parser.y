/* parser.y - the grammar of the model language.
 *
 * A pure, reentrant LALR(1) parser with locations.  It only builds the
 * syntax tree (ast.h); names, types, ranges and structure are checked by
 * semantic analysis (sema.c).  Errors are recovered at statement
 * boundaries (newline or ';') so one run reports several of them. */
%define api.pure full
%define api.prefix {fe_yy}
%define api.location.type {ut_loc}
%define parse.error custom
%define parse.lac full
%locations
%param {void *scanner}
%parse-param {fe_parse_state *st}

%code requires {
#include "frontend/ast.h"
}

%code provides {
int fe_yylex(FE_YYSTYPE *lval, ut_loc *lloc, void *scanner);
}

%code {
#include <string.h>

/* Spans run from the first symbol's start to the last symbol's end. */
#define YYLLOC_DEFAULT(Cur, Rhs, N)                          \
  do {                                                       \
    if (N) {                                                 \
      (Cur).file = YYRHSLOC(Rhs, 1).file;                    \
      (Cur).line = YYRHSLOC(Rhs, 1).line;                    \
      (Cur).col = YYRHSLOC(Rhs, 1).col;                      \
      (Cur).end_line = YYRHSLOC(Rhs, N).end_line;            \
      (Cur).end_col = YYRHSLOC(Rhs, N).end_col;              \
    } else {                                                 \
      (Cur).file = YYRHSLOC(Rhs, 0).file;                    \
      (Cur).line = (Cur).end_line = YYRHSLOC(Rhs, 0).end_line; \
      (Cur).col = (Cur).end_col = YYRHSLOC(Rhs, 0).end_col;  \
    }                                                        \
  } while (0)

static fe_stmt *mkstmt(fe_parse_state *st, fe_stmt_kind kind, ut_loc loc) {
  fe_stmt *s = ut_alloc(st->arena, sizeof *s);
  s->kind = kind;
  s->loc = loc;
  return s;
}

static fe_expr *mkexpr(fe_parse_state *st, fe_expr_kind kind, ut_loc loc) {
  fe_expr *e = ut_alloc(st->arena, sizeof *e);
  e->kind = kind;
  e->loc = loc;
  return e;
}

static fe_list append(fe_list l, fe_stmt *s) {
  if (!s) return l;
  if (l.tail) l.tail->next = s; else l.head = s;
  l.tail = s;
  return l;
}

static fe_arglist append_arg(fe_arglist l, fe_arg *a) {
  if (l.tail) l.tail->next = a; else l.head = a;
  l.tail = a;
  return l;
}

static void fe_yyerror(ut_loc *loc, void *scanner, fe_parse_state *st,
                       const char *msg) {
  (void)scanner;
  /* bison's only other message: its stack is full */
  if (!strcmp(msg, "memory exhausted"))
    msg = "nested too deeply (parentheses, expressions or braces)";
  ut_error(st->diags, *loc, "%s", msg);
}
}

%union {
  int64_t i;
  double f;
  const char *str;
  fe_expr *expr;
  fe_arg *arg;
  fe_arglist args;
  fe_stmt *stmt;
  fe_list list;
}

%token <str> IDENT "name"
%token <str> STRING "string"
%token <i> INT "integer"
%token <f> FLOAT "number"
%token SEP "end of line"
%token CONST "'const'" INCLUDE "'include'" MODEL "'model'"
%token FLOORDIV "'//'"
%token STACK "'stack'" MEMORY "'memory'" FROM "'from'" REPEAT "'repeat'"

%type <list> items stmts body
%type <stmt> item stmt
%type <expr> expr
%type <args> args arglist
%type <arg> arg

%left '+' '-'
%left '*' '/' '%' FLOORDIV
%precedence NEG

%%

/* file: top-level items, each ended by a newline or ';' (or the end) */
file
  : items                         { st->result = $1.head; }
  | items item                    { st->result = append($1, $2).head; }
  ;

items
  : %empty                        { $$ = (fe_list){0}; }
  | items SEP                     { $$ = $1; }
  | items item SEP                { $$ = append($1, $2); }
  | items error SEP               { $$ = $1; yyerrok; }
  ;

item
  : CONST IDENT '=' expr          { $$ = mkstmt(st, FE_CONST, @1); $$->name = $2;
                                    $$->name_loc = @2; $$->value = $4; }
  | INCLUDE STRING                { $$ = NULL;
                                    if ($2) { /* NULL: a string the scanner rejected */
                                      $$ = mkstmt(st, FE_INCLUDE, @1); $$->name = $2;
                                      $$->name_loc = @2;
                                    } }
  | MODEL IDENT body              { $$ = mkstmt(st, FE_MODEL, @1); $$->name = $2;
                                    $$->name_loc = @2; $$->body = $3.head; }
  | IDENT '=' expr                { $$ = NULL;
                                    ut_error(st->diags, @1, "'%s = ...' outside a model: "
                                             "settings belong in `model NAME { ... }`", $1); }
  /* `block` is not a keyword, so layers can still take a `block` size */
  | IDENT IDENT body              { $$ = mkstmt(st, FE_BLOCK, @1); $$->name = $2;
                                    $$->name_loc = @2; $$->body = $3.head;
                                    if (strcmp($1, "block") != 0)
                                      ut_error(st->diags, @1, "unknown definition '%s' "
                                               "(expected const, include, model or block)",
                                               $1); }
  ;

/* body: '{' statements '}' -- the brace may follow on the next line;
 * statements end with a newline, ';' or ',' (the last one may end at '}') */
body
  : seps '{' stmts '}'            { $$ = $3; }
  | seps '{' stmts stmt '}'       { $$ = append($3, $4); }
  | seps '{' stmts error '}'      { $$ = $3; yyerrok; }
  ;

seps
  : %empty
  | seps SEP
  ;

stmts
  : %empty                        { $$ = (fe_list){0}; }
  | stmts sep                     { $$ = $1; }
  | stmts stmt sep                { $$ = append($1, $2); }
  | stmts error sep               { $$ = $1; yyerrok; }
  ;

sep
  : SEP
  | ','
  ;

/* stmt: a setting or binding, a layer, or a nested construct */
stmt
  : IDENT '=' expr                { $$ = mkstmt(st, FE_SET, @1); $$->name = $1;
                                    $$->name_loc = @1; $$->value = $3; }
  | IDENT                         { $$ = mkstmt(st, FE_LAYER, @1); $$->name = $1;
                                    $$->name_loc = @1; }
  | IDENT '(' args ')'            { $$ = mkstmt(st, FE_LAYER, @1); $$->name = $1;
                                    $$->name_loc = @1; $$->args = $3.head;
                                    $$->has_parens = true; }
  | REPEAT expr body              { $$ = mkstmt(st, FE_REPEAT, @1); $$->value = $2;
                                    $$->body = $3.head; }
  | STACK IDENT body              { $$ = mkstmt(st, FE_STACK, @1); $$->name = $2;
                                    $$->name_loc = @2; $$->body = $3.head; }
  | MEMORY IDENT FROM IDENT body  { $$ = mkstmt(st, FE_MEMORY, @1); $$->name = $2;
                                    $$->name_loc = @2; $$->from = $4;
                                    $$->from_loc = @4; $$->body = $5.head; }
  | CONST IDENT '=' expr          { $$ = mkstmt(st, FE_CONST, @1); $$->name = $2;
                                    $$->name_loc = @2; $$->value = $4; }
  ;

/* args: comma-separated, positional or name = value */
args
  : %empty                        { $$ = (fe_arglist){0}; }
  | arglist                       { $$ = $1; }
  | arglist ','                   { $$ = $1; }
  ;

arglist
  : arg                           { $$ = append_arg((fe_arglist){0}, $1); }
  | arglist ',' arg               { $$ = append_arg($1, $3); }
  ;

arg
  : expr                          { $$ = ut_alloc(st->arena, sizeof *$$);
                                    $$->value = $1; $$->loc = @1; }
  | IDENT '=' expr                { $$ = ut_alloc(st->arena, sizeof *$$);
                                    $$->name = $1; $$->name_loc = @1;
                                    $$->value = $3; $$->loc = @$; }
  ;

expr
  : INT                           { $$ = mkexpr(st, FE_INT, @1); $$->u.i = $1; }
  | FLOAT                         { $$ = mkexpr(st, FE_FLOAT, @1); $$->u.f = $1; }
  | STRING                        { $$ = mkexpr(st, FE_STRING, @1); $$->u.s = $1 ? $1 : ""; }
  | IDENT                         { $$ = mkexpr(st, FE_IDENT, @1); $$->u.s = $1; }
  | IDENT '(' args ')'            { $$ = mkexpr(st, FE_CALL, @$); $$->u.call.name = $1;
                                    $$->u.call.name_loc = @1;
                                    $$->u.call.args = $3.head; }
  | '(' expr ')'                  { $$ = $2; }
  | '-' expr %prec NEG            { $$ = mkexpr(st, FE_NEG, @$); $$->u.operand = $2; }
  | expr '+' expr                 { $$ = mkexpr(st, FE_BINARY, @$); $$->u.bin.op = '+';
                                    $$->u.bin.lhs = $1; $$->u.bin.rhs = $3; }
  | expr '-' expr                 { $$ = mkexpr(st, FE_BINARY, @$); $$->u.bin.op = '-';
                                    $$->u.bin.lhs = $1; $$->u.bin.rhs = $3; }
  | expr '*' expr                 { $$ = mkexpr(st, FE_BINARY, @$); $$->u.bin.op = '*';
                                    $$->u.bin.lhs = $1; $$->u.bin.rhs = $3; }
  | expr '/' expr                 { $$ = mkexpr(st, FE_BINARY, @$); $$->u.bin.op = '/';
                                    $$->u.bin.lhs = $1; $$->u.bin.rhs = $3; }
  | expr FLOORDIV expr            { $$ = mkexpr(st, FE_BINARY, @$); $$->u.bin.op = 'f';
                                    $$->u.bin.lhs = $1; $$->u.bin.rhs = $3; }
  | expr '%' expr                 { $$ = mkexpr(st, FE_BINARY, @$); $$->u.bin.op = '%';
                                    $$->u.bin.lhs = $1; $$->u.bin.rhs = $3; }
  ;

%%

/* "unexpected X, expected A, B or C" with the parser's own token names. */
static int yyreport_syntax_error(const yypcontext_t *ctx, void *scanner,
                                 fe_parse_state *st) {
  (void)scanner;
  enum { MAX_EXPECTED = 32, MAX_SHOWN = 6 };
  yysymbol_kind_t all[MAX_EXPECTED], expected[MAX_EXPECTED];
  int nall = yypcontext_expected_tokens(ctx, all, MAX_EXPECTED), n = 0;
  /* Operators can follow almost any value; listing them drowns the
   * alternatives that matter (',' or ')', say). */
  bool value_expected = false;
  for (int i = 0; i < nall; i++) value_expected |= all[i] == YYSYMBOL_INT;
  for (int i = 0; i < nall; i++) {
    yysymbol_kind_t k = all[i];
    const char *nm = yysymbol_name(k);
    /* '-' is worth showing only where it would start a value */
    bool op = k == YYSYMBOL_FLOORDIV ||
              (nm[0] == '\'' && nm[1] && strchr(value_expected ? "+*/%" : "+-*/%", nm[1]) &&
               nm[2] == '\'');
    if (!op) expected[n++] = k;
  }
  /* A long list: keep the closers and '=', which are what is usually
   * missing; otherwise say nothing rather than everything. */
  if (n > MAX_SHOWN) {
    int m = 0;
    for (int i = 0; i < n; i++) {
      const char *nm = yysymbol_name(expected[i]);
      if (!strcmp(nm, "'='") || !strcmp(nm, "'}'") || !strcmp(nm, "')'"))
        expected[m++] = expected[i];
    }
    n = m;
  }
  yysymbol_kind_t got = yypcontext_token(ctx);
  const ut_loc *at = yypcontext_location(ctx);
  char buf[512];
  size_t len = 0;
  len += (size_t)snprintf(buf + len, sizeof buf - len, "syntax error: unexpected %s",
                          got == YYSYMBOL_YYEOF ? "end of file" : yysymbol_name(got));
  /* Quote names and numbers: "unexpected name 'topk'" says more. */
  if ((got == YYSYMBOL_IDENT || got == YYSYMBOL_INT || got == YYSYMBOL_FLOAT) &&
      at->line == at->end_line && at->end_col > at->col && at->end_col - at->col <= 40) {
    const char *p = st->text;
    for (int line = 1; p && line < at->line; line++) {
      p = strchr(p, '\n');
      if (p) p++;
    }
    if (p)
      len += (size_t)snprintf(buf + len, sizeof buf - len, " '%.*s'",
                              at->end_col - at->col, p + at->col - 1);
  }
  /* A long list of alternatives helps nobody; show it only when short. */
  if (n > 0) {
    len += (size_t)snprintf(buf + len, sizeof buf - len, ", expected ");
    for (int i = 0; i < n && len < sizeof buf; i++) {
      const char *sep = i == 0 ? "" : (i == n - 1 ? " or " : ", ");
      const char *name = expected[i] == YYSYMBOL_YYEOF ? "end of file"
                                                       : yysymbol_name(expected[i]);
      len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s", sep, name);
    }
  }
  ut_error(st->diags, *yypcontext_location(ctx), "%s", buf);
  return 0;
}

typedef void *yyscan_t;
int fe_yylex_init_extra(fe_parse_state *extra, yyscan_t *scanner);
int fe_yylex_destroy(yyscan_t scanner);
void *fe_yy_scan_bytes(const char *bytes, int len, yyscan_t scanner);

bool fe_parse(fe_parse_state *st, const char *text, long len) {
  yyscan_t scanner;
  if (len > 0x7fffffffL) {
    ut_error(st->diags, (ut_loc){st->file, 1, 1, 1, 1}, "file is too large");
    return false;
  }
  int errors_before = st->diags->nerrors;
  st->line = 1;
  st->col = 1;
  st->paren_depth = 0;
  st->last_token = 0;
  st->result = NULL;
  st->text = text;
  if (fe_yylex_init_extra(st, &scanner)) ut_arena_oom(st->arena); /* its only failure */
  /* The scanner allocates from the arena (lexer.l), so running out of
   * memory anywhere in here can go straight to the compilation's handler. */
  fe_yy_scan_bytes(text, (int)len, scanner);
  int rc = fe_yyparse(scanner, st);
  fe_yylex_destroy(scanner);
  return rc == 0 && st->diags->nerrors == errors_before;
}
