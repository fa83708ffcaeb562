/* sema.c - semantic analysis of a model description.
 *
 * Three steps, each reporting every error it can rather than stopping at
 * the first: collect the top-level constants and blocks; read the model's
 * settings; then walk its stacks and memories in order, expanding `repeat`
 * and blocks into layers, resolving names and checking each parameter
 * against the tables in params.c.  Cross-layer rules (window versus chunk,
 * sparsity of top-k, unused results) are checked last. */
#include "frontend/sema.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>

#include "frontend/params.h"
#include "util/map.h"

enum { FE_MAX_LAYERS = 4096, FE_MAX_REPEAT = 4096, FE_MAX_BLOCK_DEPTH = 32 };

typedef enum { V_ERR, V_INT, V_FLOAT, V_WORD, V_STRING, V_CALL } fe_vkind;

/* A value after constant folding. */
typedef struct fe_value {
  fe_vkind kind;
  int64_t i;
  double f;
  const char *s;        /* V_WORD, V_STRING, V_CALL: the word */
  const fe_expr *expr;  /* V_CALL: the call, for its arguments */
  ut_loc loc;
} fe_value;

typedef struct fe_const {
  const char *name;
  ut_loc loc;
  fe_value value;
} fe_const;

typedef struct fe_block_def {
  const char *name;
  ut_loc loc;
  const fe_stmt *body;
  bool expanding;       /* on the expansion stack: a recursive use */
  struct fe_block_def *next;
} fe_block_def;

/* Names bound in one body ({ ... }); lookups walk outwards. */
typedef struct fe_binding {
  const char *name;
  ut_loc loc;
  int layer;
  struct fe_binding *next;
} fe_binding;

typedef struct fe_scope {
  fe_binding *names;
  struct fe_scope *parent;
} fe_scope;

typedef struct fe_checker {
  ut_arena *arena;
  ut_diags *d;
  fe_block_def *blocks; /* newest first: the names a misspelling is matched to */
  ut_map const_by_name; /* name -> fe_const: lookups stay O(1) for 100k constants */
  ut_map block_by_name; /* name -> fe_block_def */
  fe_model *m;
  fe_layer *layers;     /* grows to FE_MAX_LAYERS */
  int nlayers;
  bool too_many_layers;
  fe_stack_def stacks[64];
  int nstacks;
  fe_memory_def memories[16];
  int nmemories;
  int block_depth;
  int eval_depth;       /* recursion depth of eval(), bounded */
  bool *retrieval_used; /* per layer */
  fe_binding *all_bindings;   /* every binding made, for "not visible here" */
  const fe_stmt *mem_stmts[64]; /* the model's memory statements, in order */
  int nmem_stmts;
} fe_checker;

enum { FE_MAX_EXPR_DEPTH = 256 };

static const char *const reserved_names[] = {"embed", "norm", "lm_head", "layers", NULL};

/* ------------------------------------------------------------------ */
/* constants and expressions                                          */

static fe_const *find_const(fe_checker *s, const char *name) {
  return ut_map_get(&s->const_by_name, name);
}

static fe_value eval(fe_checker *s, const fe_expr *e);

static fe_value verr(void) { return (fe_value){.kind = V_ERR}; }

static bool is_num(fe_value v) { return v.kind == V_INT || v.kind == V_FLOAT; }
static double as_f(fe_value v) { return v.kind == V_INT ? (double)v.i : v.f; }

static const char *vkind_name(fe_vkind k) {
  switch (k) {
  case V_INT: return "an integer";
  case V_FLOAT: return "a number";
  case V_WORD: return "a word";
  case V_STRING: return "a string";
  case V_CALL: return "a call";
  default: return "an invalid value";
  }
}

static fe_value eval_binary(fe_checker *s, const fe_expr *e) {
  fe_value a = eval(s, e->u.bin.lhs);
  if (a.kind == V_ERR) return a;
  fe_value b = eval(s, e->u.bin.rhs);
  if (b.kind == V_ERR) return b;
  int op = e->u.bin.op;
  if (!is_num(a) || !is_num(b)) {
    const fe_value *bad = is_num(a) ? &b : &a;
    if (bad->kind == V_WORD)
      ut_error(s->d, bad->loc, "unknown constant '%s' in arithmetic", bad->s);
    else
      ut_error(s->d, bad->loc, "arithmetic needs numbers, not %s", vkind_name(bad->kind));
    return verr();
  }
  fe_value r = {.loc = e->loc};
  if (a.kind == V_INT && b.kind == V_INT) {
    r.kind = V_INT;
    bool ovf = false;
    switch (op) {
    case '+': ovf = __builtin_add_overflow(a.i, b.i, &r.i); break;
    case '-': ovf = __builtin_sub_overflow(a.i, b.i, &r.i); break;
    case '*': ovf = __builtin_mul_overflow(a.i, b.i, &r.i); break;
    case '/':
    case 'f':
    case '%':
      if (b.i == 0) {
        ut_error(s->d, e->u.bin.rhs->loc, "division by zero");
        return verr();
      }
      if (a.i == INT64_MIN && b.i == -1 && op != '%') {
        ovf = true;
        break;
      }
      if (op == '%') {
        r.i = b.i == -1 ? 0 : a.i % b.i;
      } else if (op == 'f') {
        r.i = a.i / b.i - ((a.i % b.i != 0) && ((a.i < 0) != (b.i < 0)));
      } else if (a.i % b.i != 0) {
        ut_error(s->d, e->loc,
                 "%lld / %lld is not a whole number; sizes must divide exactly "
                 "(use // to round down)",
                 (long long)a.i, (long long)b.i);
        return verr();
      } else {
        r.i = a.i / b.i;
      }
      break;
    }
    if (ovf) {
      ut_error(s->d, e->loc, "integer overflow: the result does not fit in 64 bits");
      return verr();
    }
    return r;
  }
  if (op == '%' || op == 'f') {
    ut_error(s->d, e->loc, "'%s' needs integers", op == '%' ? "%" : "//");
    return verr();
  }
  double x = as_f(a), y = as_f(b);
  r.kind = V_FLOAT;
  switch (op) {
  case '+': r.f = x + y; break;
  case '-': r.f = x - y; break;
  case '*': r.f = x * y; break;
  case '/':
    if (y == 0) {
      ut_error(s->d, e->u.bin.rhs->loc, "division by zero");
      return verr();
    }
    r.f = x / y;
    break;
  }
  if (!isfinite(r.f)) {
    ut_error(s->d, e->loc, "the result is not a finite number");
    return verr();
  }
  return r;
}

static fe_value eval_node(fe_checker *s, const fe_expr *e);

/* Bounded recursion: a machine-made 50,000-term sum must not overflow the
 * C stack. */
static fe_value eval(fe_checker *s, const fe_expr *e) {
  if (s->eval_depth >= FE_MAX_EXPR_DEPTH) {
    ut_error(s->d, e->loc, "expression nested more than %d levels deep", FE_MAX_EXPR_DEPTH);
    return verr();
  }
  s->eval_depth++;
  fe_value v = eval_node(s, e);
  s->eval_depth--;
  return v;
}

static fe_value eval_node(fe_checker *s, const fe_expr *e) {
  fe_value v = {.loc = e->loc};
  switch (e->kind) {
  case FE_INT: v.kind = V_INT; v.i = e->u.i; return v;
  case FE_FLOAT: v.kind = V_FLOAT; v.f = e->u.f; return v;
  case FE_STRING: v.kind = V_STRING; v.s = e->u.s; return v;
  case FE_IDENT: {
    fe_const *c = find_const(s, e->u.s);
    if (c) {
      v = c->value;
      v.loc = e->loc;
      return v;
    }
    v.kind = V_WORD;
    v.s = e->u.s;
    return v;
  }
  case FE_CALL: v.kind = V_CALL; v.s = e->u.call.name; v.expr = e; return v;
  case FE_NEG: {
    fe_value a = eval(s, e->u.operand);
    if (a.kind == V_ERR) return a;
    if (a.kind == V_INT) {
      if (a.i == INT64_MIN) {
        ut_error(s->d, e->loc, "integer overflow: the result does not fit in 64 bits");
        return verr();
      }
      a.i = -a.i;
    } else if (a.kind == V_FLOAT) {
      a.f = -a.f;
    } else {
      if (a.kind == V_WORD)
        ut_error(s->d, a.loc, "unknown constant '%s' in arithmetic", a.s);
      else
        ut_error(s->d, e->loc, "'-' needs a number, not %s", vkind_name(a.kind));
      return verr();
    }
    a.loc = e->loc;
    return a;
  }
  case FE_BINARY: return eval_binary(s, e);
  }
  return verr();
}

static void define_const(fe_checker *s, const fe_stmt *st) {
  fe_const *old = find_const(s, st->name);
  if (old) {
    ut_error(s->d, st->name_loc, "duplicate definition of constant '%s'", st->name);
    ut_note(s->d, old->loc, "'%s' was first defined here", st->name);
    return;
  }
  fe_value v = eval(s, st->value);
  if (v.kind == V_ERR) v = (fe_value){.kind = V_ERR};
  else if (v.kind == V_CALL) {
    ut_error(s->d, st->value->loc, "a constant must be a number or a word, not a call");
    v.kind = V_ERR;
  }
  fe_const *c = ut_alloc(s->arena, sizeof *c);
  c->name = st->name;
  c->loc = st->name_loc;
  c->value = v;
  ut_map_put(&s->const_by_name, c->name, c);
}

/* ------------------------------------------------------------------ */
/* parameters                                                          */

static void suggest_word(fe_checker *s, ut_loc loc, const char *what, const char *word,
                         const char *const *words) {
  const char *best = NULL;
  int best_d = 3;
  for (int i = 0; words[i]; i++) {
    int dd = ut_edit_distance(words[i], word);
    if (dd < best_d) {
      best_d = dd;
      best = words[i];
    }
  }
  char list[256];
  size_t n = 0;
  list[0] = 0;
  for (int i = 0; words[i] && n < sizeof list; i++)
    n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", i ? ", " : "", words[i]);
  if (best)
    ut_error(s->d, loc, "unknown %s '%s'; did you mean '%s'?", what, word, best);
  else
    ut_error(s->d, loc, "unknown %s '%s' (expected one of: %s)", what, word, list);
}

static void unknown_param(fe_checker *s, ut_loc loc, const char *name,
                          const fe_param_table *t, const fe_param *rows) {
  const char *best = fe_param_suggest(rows, name);
  if (best)
    ut_error(s->d, loc, "unknown parameter '%s' for %s; did you mean '%s'?", name,
             t->what, best);
  else
    ut_error(s->d, loc, "unknown parameter '%s' for %s", name, t->what);
}

static bool set_params(fe_checker *s, void *base, const fe_param_table *t,
                       const fe_param *rows, const fe_arg *args, ut_loc *locs);

/* Checks one value against its row and stores it in base. */
static bool set_param(fe_checker *s, void *base, const fe_param *p, fe_value v) {
  char *field = (char *)base + p->field;
  if (v.kind == V_ERR) return false;
  switch (p->type) {
  case FE_P_INT:
    if (v.kind != V_INT) {
      if (v.kind == V_WORD)
        ut_error(s->d, v.loc, "'%s' expects an integer; '%s' is not a known constant",
                 p->name, v.s);
      else if (v.kind == V_FLOAT)
        ut_error(s->d, v.loc, "'%s' expects an integer, not %g", p->name, v.f);
      else
        ut_error(s->d, v.loc, "'%s' expects an integer, not %s", p->name,
                 vkind_name(v.kind));
      return false;
    }
    if (v.i < p->min || v.i > p->max) {
      ut_error(s->d, v.loc, "'%s' is %lld, out of range [%lld, %lld]", p->name,
               (long long)v.i, (long long)p->min, (long long)p->max);
      return false;
    }
    *(int64_t *)field = v.i;
    return true;
  case FE_P_FLOAT:
    if (!is_num(v)) {
      ut_error(s->d, v.loc, "'%s' expects a number, not %s", p->name, vkind_name(v.kind));
      return false;
    }
    if (as_f(v) < p->fmin || as_f(v) > p->fmax) {
      ut_error(s->d, v.loc, "'%s' is %g, out of range [%g, %g]", p->name, as_f(v),
               p->fmin, p->fmax);
      return false;
    }
    *(double *)field = as_f(v);
    return true;
  case FE_P_BOOL:
    if (v.kind == V_WORD && (!strcmp(v.s, "true") || !strcmp(v.s, "false"))) {
      *(bool *)field = v.s[0] == 't';
      return true;
    }
    ut_error(s->d, v.loc, "'%s' expects true or false", p->name);
    return false;
  case FE_P_ROPE:
    if (v.kind == V_WORD && !strcmp(v.s, "none")) {
      *(double *)field = 0;
      return true;
    }
    if (!is_num(v)) {
      ut_error(s->d, v.loc, "'%s' expects a rotary base (a number) or none", p->name);
      return false;
    }
    if (as_f(v) < p->fmin || as_f(v) > p->fmax) {
      ut_error(s->d, v.loc, "'%s' is %g; a rotary base is between %g and %g (or none, "
               "for no rotary embedding)", p->name, as_f(v), p->fmin, p->fmax);
      return false;
    }
    *(double *)field = as_f(v);
    return true;
  case FE_P_OFFSET: {
    int *kind = (int *)((char *)base + p->field2);
    if (v.kind == V_WORD && !strcmp(v.s, "none")) {
      *kind = FE_OFFSET_NONE;
      *(double *)field = 0;
      return true;
    }
    double x;
    int k;
    if (is_num(v)) {
      x = as_f(v);
      k = FE_OFFSET_FIXED;
    } else if (v.kind == V_CALL && !strcmp(v.s, "learned")) {
      const fe_arg *a = v.expr->u.call.args;
      if (!a || a->next || a->name) {
        ut_error(s->d, v.loc, "learned(...) takes one number: its initial value");
        return false;
      }
      fe_value iv = eval(s, a->value);
      if (iv.kind == V_ERR) return false;
      if (!is_num(iv)) {
        ut_error(s->d, iv.loc, "learned(...) takes a number, not %s", vkind_name(iv.kind));
        return false;
      }
      x = as_f(iv);
      k = FE_OFFSET_LEARNED;
    } else {
      ut_error(s->d, v.loc, "'%s' expects none, a number or learned(number)", p->name);
      return false;
    }
    if (x < p->fmin || x > p->fmax) {
      ut_error(s->d, v.loc, "'%s' is %g, out of range [%g, %g]", p->name, x, p->fmin,
               p->fmax);
      return false;
    }
    *kind = k;
    *(double *)field = x;
    return true;
  }
  case FE_P_ENUM: {
    if (v.kind != V_WORD && v.kind != V_CALL) {
      ut_error(s->d, v.loc, "'%s' expects a word, not %s", p->name, vkind_name(v.kind));
      return false;
    }
    int idx = -1;
    for (int i = 0; p->words[i]; i++)
      if (!strcmp(p->words[i], v.s)) idx = i;
    if (idx < 0) {
      ut_loc loc = v.kind == V_CALL ? v.expr->u.call.name_loc : v.loc;
      suggest_word(s, loc, p->name, v.s, p->words);
      return false;
    }
    *(int *)field = idx;
    if (v.kind == V_CALL) {
      if (!p->sub || (p->sub_word && strcmp(p->sub_word, v.s))) {
        ut_error(s->d, v.loc, "'%s' takes no parameters", v.s);
        return false;
      }
      fe_param_table t = {v.s, p->sub, ""};
      return set_params(s, base, &t, p->sub, v.expr->u.call.args, NULL);
    }
    return true;
  }
  case FE_P_REF: break;
  }
  return false;
}

/* Applies named arguments; rejects unknown and repeated names.  When locs
 * is given, records where each row's value was written. */
static bool set_params(fe_checker *s, void *base, const fe_param_table *t,
                       const fe_param *rows, const fe_arg *args, ut_loc *locs) {
  bool ok = true;
  bool seen[32] = {0};
  const fe_arg *first[32] = {0};
  for (const fe_arg *a = args; a; a = a->next) {
    if (!a->name) {
      ut_error(s->d, a->loc, "unexpected positional argument for %s; write name = value",
               t->what);
      ok = false;
      continue;
    }
    const fe_param *p = fe_param_find(rows, a->name);
    if (!p || p->type == FE_P_REF) {
      unknown_param(s, a->name_loc, a->name, t, rows);
      ok = false;
      continue;
    }
    int row = (int)(p - rows);
    if (seen[row]) {
      ut_error(s->d, a->name_loc, "duplicate parameter '%s'", a->name);
      if (first[row]) ut_note(s->d, first[row]->name_loc, "first given here");
      ok = false;
      continue;
    }
    seen[row] = true;
    first[row] = a;
    if (locs && row < FE_MAX_PARAM_ROWS) locs[row] = a->value->loc;
    if (!set_param(s, base, p, eval(s, a->value))) ok = false;
  }
  return ok;
}

/* ------------------------------------------------------------------ */
/* layers, stacks and memories                                         */

static fe_binding *lookup(fe_scope *sc, const char *name) {
  for (; sc; sc = sc->parent)
    for (fe_binding *b = sc->names; b; b = b->next)
      if (!strcmp(b->name, name)) return b;
  return NULL;
}

static fe_block_def *find_block(fe_checker *s, const char *name) {
  return ut_map_get(&s->block_by_name, name);
}

static int find_layer_kind(const char *name) {
  for (int k = 0; k < FE_L_COUNT; k++)
    if (!strcmp(fe_layer_params[k].what, name)) return k;
  return -1;
}

static void unknown_layer(fe_checker *s, ut_loc loc, const char *name) {
  const char *best = NULL;
  int best_d = 3;
  for (int k = 0; k < FE_L_COUNT; k++) {
    int dd = ut_edit_distance(fe_layer_params[k].what, name);
    if (dd < best_d) best_d = dd, best = fe_layer_params[k].what;
  }
  for (fe_block_def *b = s->blocks; b; b = b->next) {
    int dd = ut_edit_distance(b->name, name);
    if (dd < best_d) best_d = dd, best = b->name;
  }
  if (best)
    ut_error(s->d, loc, "unknown layer '%s'; did you mean '%s'?", name, best);
  else
    ut_error(s->d, loc,
             "unknown layer '%s' (layers: attn, swa, retrieve, hsa, landmark_attn, "
             "moba, nsa, or a block)",
             name);
}

static fe_layer *new_layer(fe_checker *s, fe_layer_kind kind, ut_loc loc, int stack) {
  if (s->nlayers >= FE_MAX_LAYERS) {
    if (!s->too_many_layers)
      ut_error(s->d, loc, "the model has more than %d layers", FE_MAX_LAYERS);
    s->too_many_layers = true;
    return NULL;
  }
  fe_layer *l = &s->layers[s->nlayers++];
  memset(l, 0, sizeof *l);
  l->kind = kind;
  l->loc = loc;
  l->stack = stack;
  l->index = s->nlayers - 1 - s->stacks[stack].first_layer;
  l->mlp = s->m->mlp != FE_MLP_NONE;
  l->residual = FE_RES_STANDARD;
  l->rope_theta = 10000;
  l->memory = l->retrieval = -1;
  l->kv_heads = s->m->kv_heads;
  for (int i = 0; i < FE_MAX_PARAM_ROWS; i++) l->arg_loc[i] = loc;
  switch (kind) {
  case FE_L_RETRIEVE:
    l->topk = 8;
    l->mlp = false;
    l->rope_theta = 0;
    break;
  case FE_L_HSA: l->rope_theta = 0; break;
  case FE_L_LANDMARK: l->block = 64; l->topk = 4; break;
  case FE_L_MOBA: l->block = 64; l->topk = 3; break;
  case FE_L_NSA:
    l->cmp_block = 32;
    l->cmp_stride = 16;
    l->block = 64;
    l->topk = 16;
    l->init_blocks = 1;
    l->local_blocks = 2;
    l->window = 512;
    break;
  default: break;
  }
  return l;
}

static int find_memory(fe_checker *s, const char *name) {
  for (int i = 0; i < s->nmemories; i++)
    if (!strcmp(s->memories[i].name, name)) return i;
  return -1;
}

/* Resolves the positional reference of retrieve (a memory) or hsa (a
 * retrieval binding). */
static void resolve_ref(fe_checker *s, fe_layer *l, const fe_arg *a, fe_scope *sc) {
  if (!a || a->name) {
    ut_error(s->d, l->loc, "%s",
             l->kind == FE_L_RETRIEVE
                 ? "retrieve needs a memory as its first argument: retrieve(mem, ...)"
                 : "hsa needs a retrieval as its first argument: hsa(r, ...)");
    return;
  }
  if (a->value->kind != FE_IDENT) {
    ut_error(s->d, a->loc, "expected the name of a %s",
             l->kind == FE_L_RETRIEVE ? "memory" : "retrieval");
    return;
  }
  const char *name = a->value->u.s;
  if (l->kind == FE_L_RETRIEVE) {
    int m = find_memory(s, name);
    if (m < 0) {
      bool is_stack = false;
      for (int i = 0; i < s->nstacks; i++)
        if (!strcmp(s->stacks[i].name, name)) is_stack = true;
      const fe_stmt *later = NULL;
      for (int i = 0; i < s->nmem_stmts; i++)
        if (!strcmp(s->mem_stmts[i]->name, name)) later = s->mem_stmts[i];
      const char *best = NULL;
      int best_d = 3;
      for (int i = 0; i < s->nmem_stmts; i++) {
        int dd = ut_edit_distance(s->mem_stmts[i]->name, name);
        if (dd < best_d) best_d = dd, best = s->mem_stmts[i]->name;
      }
      if (is_stack) {
        ut_error(s->d, a->loc, "'%s' is a stack, not a memory; declare "
                 "`memory NAME from %s { ... }` and retrieve from it", name, name);
      } else if (later && !strcmp(later->from, s->stacks[l->stack].name)) {
        ut_error(s->d, a->loc,
                 "memory '%s' is built from stack '%s', which this layer belongs to; "
                 "retrieve from it in a later stack",
                 name, s->stacks[l->stack].name);
      } else if (later && later->loc.line > l->loc.line) {
        ut_error(s->d, a->loc, "memory '%s' is defined later (line %d); define it before "
                 "the stack that retrieves from it", name, later->loc.line);
      } else if (later) {
        /* defined, but with errors already reported */
      } else if (best) {
        ut_error(s->d, a->loc, "unknown memory '%s'; did you mean '%s'?", name, best);
      } else if (s->nmem_stmts == 0) {
        ut_error(s->d, a->loc, "retrieval from '%s', but the model defines no chunk "
                 "memory (`memory NAME from STACK { chunk = ... }`)", name);
      } else {
        ut_error(s->d, a->loc, "unknown memory '%s'", name);
      }
      return;
    }
    if (s->memories[m].source == l->stack) {
      ut_error(s->d, a->loc,
               "memory '%s' is built from stack '%s', which this layer belongs to; "
               "retrieve from it in a later stack",
               name, s->stacks[l->stack].name);
      return;
    }
    l->memory = m;
  } else {
    fe_binding *b = lookup(sc, name);
    if (!b) {
      fe_binding *elsewhere = NULL;
      for (fe_binding *o = s->all_bindings; o; o = o->next)
        if (!strcmp(o->name, name)) elsewhere = o;
      if (elsewhere)
        ut_error(s->d, a->loc, "retrieval '%s' (bound at line %d) is not visible here: "
                 "a binding is seen only later in its own body and in bodies inside it",
                 name, elsewhere->loc.line);
      else
        ut_error(s->d, a->loc, "unknown retrieval '%s'; bind one first with "
                 "`%s = retrieve(MEMORY, ...)`", name, name);
      return;
    }
    l->retrieval = b->layer;
    s->retrieval_used[b->layer] = true;
  }
}

static void expand_body(fe_checker *s, const fe_stmt *body, int stack, fe_scope *parent);

static void expand_layer(fe_checker *s, const fe_stmt *st, int stack, fe_scope *sc,
                         const char *bind, ut_loc bind_loc, const char *name,
                         ut_loc name_loc, const fe_arg *args, bool has_parens) {
  fe_block_def *blk = find_block(s, name);
  if (blk) {
    if (bind) {
      ut_error(s->d, bind_loc, "a block produces no value to bind");
      return;
    }
    if (has_parens && args) {
      ut_error(s->d, args->loc, "blocks take no arguments");
      return;
    }
    if (blk->expanding) {
      ut_error(s->d, name_loc, "block '%s' uses itself", name);
      return;
    }
    if (s->block_depth >= FE_MAX_BLOCK_DEPTH) {
      ut_error(s->d, name_loc, "blocks nest more than %d deep", FE_MAX_BLOCK_DEPTH);
      return;
    }
    blk->expanding = true;
    s->block_depth++;
    fe_scope inner = {NULL, sc};
    expand_body(s, blk->body, stack, &inner);
    s->block_depth--;
    blk->expanding = false;
    return;
  }
  int kind = find_layer_kind(name);
  if (kind < 0) {
    unknown_layer(s, name_loc, name);
    return;
  }
  if (kind == FE_L_RETRIEVE && !bind) {
    ut_error(s->d, name_loc, "bind the retrieval to a name: `r = retrieve(...)`");
    return;
  }
  if (kind != FE_L_RETRIEVE && bind) {
    ut_error(s->d, bind_loc, "%s produces no value to bind; only retrieve does", name);
    return;
  }
  fe_layer *l = new_layer(s, kind, st->loc, stack);
  if (!l) return;
  const fe_param_table *t = &fe_layer_params[kind];
  const fe_arg *rest = args;
  if (kind == FE_L_RETRIEVE || kind == FE_L_HSA) {
    resolve_ref(s, l, args, sc);
    if (args && !args->name) rest = args->next;
  }
  bool args_ok = set_params(s, l, t, t->params, rest, l->arg_loc);
  for (const fe_param *p = t->params; args_ok && p->name; p++) {
    int row = (int)(p - t->params);
    bool given = row < FE_MAX_PARAM_ROWS &&
                 memcmp(&l->arg_loc[row], &l->loc, sizeof l->loc) != 0;
    if (!p->def && p->type != FE_P_REF && !given)
      ut_error(s->d, name_loc, "%s needs '%s': %s(%s = ...)", name, p->name, name, p->name);
  }
  if (bind) {
    l->binding = bind;
    for (fe_binding *b = sc->names; b; b = b->next) {
      if (!strcmp(b->name, bind)) {
        ut_error(s->d, bind_loc, "duplicate definition of '%s' in this block", bind);
        ut_note(s->d, b->loc, "'%s' was first defined here", bind);
        s->retrieval_used[l - s->layers] = true; /* no follow-on warning */
        return;
      }
    }
    fe_binding *b = ut_alloc(s->arena, sizeof *b);
    b->name = bind;
    b->loc = bind_loc;
    b->layer = (int)(l - s->layers);
    b->next = sc->names;
    sc->names = b;
    fe_binding *all = ut_alloc(s->arena, sizeof *all);
    *all = *b;
    all->next = s->all_bindings;
    s->all_bindings = all;
  }
}

static void expand_body(fe_checker *s, const fe_stmt *body, int stack, fe_scope *sc) {
  for (const fe_stmt *st = body; st; st = st->next) {
    if (s->too_many_layers) return;
    switch (st->kind) {
    case FE_LAYER:
      expand_layer(s, st, stack, sc, NULL, ut_noloc, st->name, st->name_loc, st->args,
                   st->has_parens);
      break;
    case FE_SET:
      if (st->value->kind == FE_CALL)
        expand_layer(s, st, stack, sc, st->name, st->name_loc, st->value->u.call.name,
                     st->value->u.call.name_loc, st->value->u.call.args, true);
      else if (st->value->kind == FE_IDENT && (find_layer_kind(st->value->u.s) >= 0 ||
                                               find_block(s, st->value->u.s)))
        expand_layer(s, st, stack, sc, st->name, st->name_loc, st->value->u.s,
                     st->value->loc, NULL, false);
      else
        ut_error(s->d, st->name_loc,
                 "a stack holds layers, not settings; '%s = ...' belongs in the model "
                 "or a memory",
                 st->name);
      break;
    case FE_REPEAT: {
      fe_value n = eval(s, st->value);
      if (n.kind == V_ERR) break;
      if (n.kind != V_INT) {
        ut_error(s->d, n.loc, "repeat expects an integer count, not %s",
                 vkind_name(n.kind));
        break;
      }
      if (n.i < 1 || n.i > FE_MAX_REPEAT) {
        ut_error(s->d, n.loc, "repeat count %lld is out of range [1, %d]",
                 (long long)n.i, FE_MAX_REPEAT);
        break;
      }
      int errors = s->d->nraised;
      for (int64_t i = 0; i < n.i && !s->too_many_layers; i++) {
        fe_scope inner = {NULL, sc};
        expand_body(s, st->body, stack, &inner);
        if (s->d->nraised > errors) break; /* report a body's errors once */
      }
      break;
    }
    case FE_STACK:
    case FE_MEMORY:
      ut_error(s->d, st->loc, "%s cannot be nested in a stack or block",
               st->kind == FE_STACK ? "a stack" : "a memory");
      break;
    case FE_CONST:
      ut_error(s->d, st->loc, "constants are defined at the top level or in the model");
      if (!find_const(s, st->name)) define_const(s, st); /* avoid follow-on errors */
      break;
    default:
      ut_error(s->d, st->loc, "unexpected %s here", fe_stmt_kind_name(st->kind));
      break;
    }
  }
}

static bool name_taken(fe_checker *s, const char *name, ut_loc loc) {
  for (int i = 0; reserved_names[i]; i++) {
    if (!strcmp(reserved_names[i], name)) {
      ut_error(s->d, loc, "'%s' is reserved for weight names; choose another name", name);
      return true;
    }
  }
  for (int i = 0; i < s->nstacks; i++) {
    if (!strcmp(s->stacks[i].name, name)) {
      ut_error(s->d, loc, "duplicate definition of '%s'", name);
      ut_note(s->d, s->stacks[i].loc, "'%s' was first defined here as a stack", name);
      return true;
    }
  }
  for (int i = 0; i < s->nmemories; i++) {
    if (!strcmp(s->memories[i].name, name)) {
      ut_error(s->d, loc, "duplicate definition of '%s'", name);
      ut_note(s->d, s->memories[i].loc, "'%s' was first defined here as a memory", name);
      return true;
    }
  }
  return false;
}

static void define_stack(fe_checker *s, const fe_stmt *st) {
  if (name_taken(s, st->name, st->name_loc)) return;
  if (s->nstacks >= (int)(sizeof s->stacks / sizeof s->stacks[0])) {
    ut_error(s->d, st->loc, "too many stacks (at most 64)");
    return;
  }
  int idx = s->nstacks++;
  fe_stack_def *sd = &s->stacks[idx];
  sd->name = st->name;
  sd->loc = st->name_loc;
  sd->first_layer = s->nlayers;
  fe_scope sc = {0};
  int errors = s->d->nraised;
  expand_body(s, st->body, idx, &sc);
  sd->nlayers = s->nlayers - sd->first_layer;
  if (sd->nlayers == 0 && s->d->nraised == errors)
    ut_error(s->d, st->name_loc, "stack '%s' has no layers", st->name);
  for (int i = sd->first_layer; i < s->nlayers; i++)
    if (s->layers[i].kind != FE_L_RETRIEVE) return;
  if (sd->nlayers > 0)
    ut_error(s->d, st->name_loc, "stack '%s' only retrieves; add a layer that uses it",
             st->name);
}

/* Applies one `name = value` of a settings body (the model's, a memory's):
 * unknown names and repeated settings are errors.  Returns the row it set,
 * or -1. */
static int apply_setting(fe_checker *s, void *base, const fe_param_table *t, const fe_stmt *b,
                         bool *seen, const fe_stmt **first) {
  const fe_param *p = fe_param_find(t->params, b->name);
  if (!p) {
    unknown_param(s, b->name_loc, b->name, t, t->params);
    return -1;
  }
  int row = (int)(p - t->params);
  if (seen[row]) {
    ut_error(s->d, b->name_loc, "duplicate setting '%s'", b->name);
    ut_note(s->d, first[row]->name_loc, "first set here");
    return -1;
  }
  seen[row] = true;
  first[row] = b;
  return set_param(s, base, p, eval(s, b->value)) ? row : -1;
}

static void define_memory(fe_checker *s, const fe_stmt *st) {
  if (name_taken(s, st->name, st->name_loc)) return;
  if (s->nmemories >= (int)(sizeof s->memories / sizeof s->memories[0])) {
    ut_error(s->d, st->loc, "too many memories (at most 16)");
    return;
  }
  int source = -1;
  for (int i = 0; i < s->nstacks; i++)
    if (!strcmp(s->stacks[i].name, st->from)) source = i;
  if (source < 0) {
    const char *best = NULL;
    int best_d = 3;
    for (int i = 0; i < s->nstacks; i++) {
      int dd = ut_edit_distance(s->stacks[i].name, st->from);
      if (dd < best_d) best_d = dd, best = s->stacks[i].name;
    }
    if (find_memory(s, st->from) >= 0)
      ut_error(s->d, st->from_loc, "'%s' is a memory, not a stack; a memory reads the "
               "output of a stack", st->from);
    else if (best)
      ut_error(s->d, st->from_loc, "memory '%s' reads unknown stack '%s'; did you mean "
               "'%s'?", st->name, st->from, best);
    else
      ut_error(s->d, st->from_loc,
               "memory '%s' reads stack '%s', which is not defined before it", st->name,
               st->from);
    return;
  }
  fe_memory_def *md = &s->memories[s->nmemories++];
  memset(md, 0, sizeof *md);
  md->name = st->name;
  md->loc = st->name_loc;
  md->source = source;
  md->encoder = FE_ENC_NONE;
  md->enc_mask = FE_ATTN_BIDIRECTIONAL;
  md->enc_rope_theta = 10000;
  md->enc_heads = md->enc_kv_heads = md->enc_head_dim = md->enc_mlp_hidden = -1;
  md->landmark = FE_LMK_MEAN;
  md->landmark_dim = s->m->head_dim;
  md->landmark_groups = FE_GROUPS_SHARED;
  md->store = FE_DT_F32;
  md->enc_layers = -1; /* "not given" until set */
  bool seen[32] = {0};
  const fe_stmt *first[32] = {0};
  bool has_chunk = false;
  for (const fe_stmt *b = st->body; b; b = b->next) {
    if (b->kind != FE_SET) {
      ut_error(s->d, b->loc, "a memory holds settings such as `chunk = 64`, not %s",
               fe_stmt_kind_name(b->kind));
      continue;
    }
    if (apply_setting(s, md, &fe_memory_params, b, seen, first) == 0) has_chunk = true;
  }
  if (!seen[0]) {
    ut_error(s->d, st->name_loc, "memory '%s' needs a chunk size: `chunk = 64`", st->name);
  } else if (has_chunk && md->chunk % 8 != 0) {
    ut_error(s->d, first[0]->value->loc,
             "chunk size %lld is not a multiple of 8, the kernel tile", (long long)md->chunk);
  }
  if (md->encoder == FE_ENC_NONE) {
    if (md->enc_layers > 0)
      ut_error(s->d, seen[1] ? first[1]->value->loc : st->name_loc,
               "encoder layers given but encoder is none");
    md->enc_layers = 0;
  } else if (md->enc_layers < 0) {
    md->enc_layers = 1;
  }
  /* the encoder's heads default to the model's: kv_heads to the model's
   * only when heads is not given either (else to the encoder's heads) */
  const fe_model *m = s->m;
  bool own_heads = md->enc_heads > 0;
  if (md->enc_heads < 0) md->enc_heads = m->heads;
  if (md->enc_kv_heads < 0) md->enc_kv_heads = own_heads ? md->enc_heads : m->kv_heads;
  if (md->enc_head_dim < 0) md->enc_head_dim = m->head_dim;
  if (md->enc_mlp_hidden > 0 && m->mlp == FE_MLP_NONE)
    ut_error(s->d, md->loc, "memory '%s': the encoder's mlp_hidden is given but the model "
             "has mlp = none, so its layers have no MLP", md->name);
  if (md->enc_mlp_hidden < 0) md->enc_mlp_hidden = m->mlp_hidden;
  if (md->encoder == FE_ENC_NONE && md->landmark != FE_LMK_MEAN) {
    ut_loc loc = seen[2] ? first[2]->value->loc : st->name_loc;
    ut_error(s->d, loc,
             "landmark = %s needs an encoder: with encoder = none every chunk "
             "would get the same landmark; use landmark = mean or add "
             "encoder = transformer(...)",
             md->landmark == FE_LMK_CLS ? "cls" : "token");
  }
}

/* Reads the model's settings (pass 1 over its body). */
static void model_settings(fe_checker *s, const fe_stmt *model) {
  fe_model *m = s->m;
  const fe_param *rows = fe_model_params.params;
  bool seen[32] = {0};
  const fe_stmt *first[32] = {0};
  m->norm = FE_NORM_RMS;
  m->norm_eps = 1e-6;
  m->mlp = FE_MLP_SWIGLU;
  m->mlp_hidden = -1;
  m->head_dim = -1;
  m->kv_heads = -1;
  for (const fe_stmt *b = model->body; b; b = b->next) {
    if (b->kind == FE_CONST) {
      define_const(s, b);
      continue;
    }
    if (b->kind != FE_SET) continue;
    const fe_param *p = fe_param_find(rows, b->name);
    if (!p && b->value->kind == FE_CALL && find_layer_kind(b->value->u.call.name) >= 0) {
      ut_error(s->d, b->loc, "layers belong in a stack: `stack NAME { %s = %s(...) }`",
               b->name, b->value->u.call.name);
      continue;
    }
    apply_setting(s, m, &fe_model_params, b, seen, first);
  }
  static const char *const required[] = {"vocab", "width", "heads"};
  for (int i = 0; i < 3; i++)
    if (!seen[i])
      ut_error(s->d, model->name_loc, "model '%s' must set '%s'", model->name,
               required[i]);
  if (m->kv_heads < 0) m->kv_heads = m->heads;
  if (m->width > 0 && m->heads > 0) {
    if (m->width % m->heads != 0)
      ut_error(s->d, first[2]->value->loc, "heads (%lld) must divide width (%lld)",
               (long long)m->heads, (long long)m->width);
    else if (m->head_dim < 0)
      m->head_dim = m->width / m->heads;
  }
  if (m->head_dim < 0) m->head_dim = 1;
  if (m->heads > 0 && m->kv_heads > 0 && m->heads % m->kv_heads != 0)
    ut_error(s->d, first[3]->value->loc, "kv_heads (%lld) must divide heads (%lld)",
             (long long)m->kv_heads, (long long)m->heads);
  if (m->mlp_hidden < 0) m->mlp_hidden = 4 * (m->width > 0 ? m->width : 1);
  if (m->mlp == FE_MLP_NONE) m->mlp_hidden = 0;
}

/* Where a layer's parameter was written, or the layer itself. */
static ut_loc arg_loc(const fe_layer *l, const char *name) {
  const fe_param *rows = fe_layer_params[l->kind].params;
  const fe_param *p = fe_param_find(rows, name);
  return p && p - rows < FE_MAX_PARAM_ROWS ? l->arg_loc[p - rows] : l->loc;
}

/* Rules between layers, memories and the model. */
static void cross_checks(fe_checker *s) {
  fe_model *m = s->m;
  for (int i = 0; i < s->nmemories; i++) {
    const fe_memory_def *md = &s->memories[i];
    if (md->encoder == FE_ENC_NONE) continue;
    if (md->enc_heads > 0 && md->enc_kv_heads > 0 && md->enc_heads % md->enc_kv_heads != 0)
      ut_error(s->d, md->loc, "memory '%s': the encoder's kv_heads (%lld) must divide its "
               "heads (%lld)", md->name, (long long)md->enc_kv_heads, (long long)md->enc_heads);
    if (md->enc_rope_theta > 0 && md->enc_head_dim > 0 && md->enc_head_dim % 2 != 0)
      ut_error(s->d, md->loc, "memory '%s': its encoder's rope needs an even head_dim (it is "
               "%lld); use an even head_dim or rope = none in the encoder",
               md->name, (long long)md->enc_head_dim);
  }
  for (int i = 0; i < s->nlayers; i++) {
    fe_layer *l = &s->layers[i];
    const char *kname = fe_layer_kind_name(l->kind);
    if (l->residual == FE_RES_BYPASS && !l->mlp)
      ut_error(s->d, arg_loc(l, "residual"), "residual = bypass needs the MLP block: without it the "
               "attention output would never reach the residual stream");
    if (l->kind != FE_L_RETRIEVE && l->mlp && m->mlp == FE_MLP_NONE)
      l->mlp = false;
    /* RoPE rotates pairs of a head's elements (its two halves): an odd
     * head width has no such split */
    if (l->rope_theta > 0 && m->head_dim > 0 && m->head_dim % 2 != 0)
      ut_error(s->d, arg_loc(l, "rope"), "%s: rope needs an even head_dim (the model's is %lld); "
               "use an even head_dim or rope = none", kname, (long long)m->head_dim);
    if ((l->kind == FE_L_ATTN || l->kind == FE_L_SWA) && m->heads > 0 && l->kv_heads > 0 &&
        m->heads % l->kv_heads != 0)
      ut_error(s->d, arg_loc(l, "kv_heads"), "%s: kv_heads (%lld) must divide the model's "
               "heads (%lld)", kname, (long long)l->kv_heads, (long long)m->heads);
    if (l->kind == FE_L_RETRIEVE) {
      if (!s->retrieval_used[i] && s->d->nraised == 0)
        ut_warning(s->d, l->loc, "retrieval '%s' is never used by an hsa layer",
                   l->binding ? l->binding : "?");
      if (l->memory < 0) continue;
      fe_memory_def *md = &s->memories[l->memory];
      if (md->chunk <= 0) continue;
      if (m->context > 0 && m->context < md->chunk)
        ut_error(s->d, arg_loc(l, "topk"), "the %lld-token context is shorter than one "
                 "chunk (%lld tokens): nothing could ever be retrieved",
                 (long long)m->context, (long long)md->chunk);
      else if (m->context > 0 && l->topk >= m->context / md->chunk)
        ut_error(s->d, arg_loc(l, "topk"),
                 "topk = %lld is not sparse: a %lld-token context has only %lld chunks "
                 "of %lld; choose topk < %lld",
                 (long long)l->topk, (long long)m->context,
                 (long long)(m->context / md->chunk), (long long)md->chunk,
                 (long long)(m->context / md->chunk));
      if (l->groups == FE_GROUPS_KV && m->kv_heads > 0 && md->landmark_dim <= 0)
        ut_error(s->d, l->loc, "landmark_dim must be positive");
      if (l->length_offset && l->weights != FE_W_STICKBREAK)
        ut_error(s->d, arg_loc(l, "length_offset"),
                 "length_offset needs weights = stickbreak: a softmax does not change when "
                 "every score of a token moves by the same amount");
      if (l->pos_decay && l->weights != FE_W_SOFTMAX)
        ut_error(s->d, arg_loc(l, "pos_decay"),
                 "pos_decay needs weights = softmax: it shifts the scores of the selected "
                 "chunks by their rank before the softmax");
      if (l->groups == FE_GROUPS_SHARED && md->landmark_groups == FE_GROUPS_KV)
        ut_error(s->d, arg_loc(l, "groups"),
                 "a retrieval with groups = shared cannot read memory '%s': its "
                 "landmark_groups = kv gives each KV group its own landmark slice; "
                 "use groups = kv here or landmark_groups = shared in the memory",
                 md->name);
    }
    if (l->kind == FE_L_LANDMARK || l->kind == FE_L_MOBA || l->kind == FE_L_NSA) {
      if (l->block % 8 != 0)
        ut_error(s->d, arg_loc(l, "block"), "%s block %lld is not a multiple of 8, the kernel tile",
                 kname, (long long)l->block);
      int64_t nb = m->context / l->block;
      if (m->context > 0 && l->topk >= nb)
        ut_error(s->d, arg_loc(l, "topk"),
                 "topk = %lld is not sparse: a %lld-token context has only %lld block%s "
                 "of %lld%s",
                 (long long)l->topk, (long long)m->context, (long long)nb, nb == 1 ? "" : "s",
                 (long long)l->block, nb > 1 ? "; choose a smaller topk" : "");
    }
    if (l->kind == FE_L_NSA) {
      if (l->cmp_block % l->cmp_stride != 0)
        ut_error(s->d, arg_loc(l, "cmp_stride"), "nsa cmp_stride (%lld) must divide cmp_block (%lld)",
                 (long long)l->cmp_stride, (long long)l->cmp_block);
      if (l->block % l->cmp_stride != 0)
        ut_error(s->d, arg_loc(l, "block"), "nsa block (%lld) must be a multiple of cmp_stride (%lld)",
                 (long long)l->block, (long long)l->cmp_stride);
      if (l->init_blocks + l->local_blocks > l->topk)
        ut_error(s->d, arg_loc(l, "topk"),
                 "nsa forces %lld blocks (init_blocks + local_blocks) but topk is %lld",
                 (long long)(l->init_blocks + l->local_blocks), (long long)l->topk);
    }
    if (l->kind == FE_L_HSA && l->retrieval >= 0) {
      fe_layer *r = &s->layers[l->retrieval];
      if (r->memory < 0) continue;
      fe_memory_def *md = &s->memories[r->memory];
      if (r->groups == FE_GROUPS_KV && m->kv_heads <= 0) continue;
      (void)md;
    }
  }
  /* A retrieval skips the token's own, incomplete chunk: the sliding window
   * must cover it, so no SWA window may be smaller than a chunk. */
  for (int j = 0; j < s->nmemories; j++) {
    fe_memory_def *md = &s->memories[j];
    bool used = false;
    for (int i = 0; i < s->nlayers; i++)
      if (s->layers[i].kind == FE_L_RETRIEVE && s->layers[i].memory == j) used = true;
    if (!used) {
      if (s->d->nraised == 0)
        ut_warning(s->d, md->loc, "memory '%s' is never retrieved from", md->name);
      continue;
    }
    if (md->chunk <= 0) continue;
    for (int i = 0; i < s->nlayers; i++) {
      fe_layer *l = &s->layers[i];
      if (l->kind != FE_L_SWA || l->window <= 0) continue;
      if (l->window < md->chunk) {
        ut_error(s->d, arg_loc(l, "window"),
                 "window %lld is smaller than the chunk size %lld of memory '%s': a "
                 "token's own, incomplete chunk would be seen by neither the window "
                 "nor retrieval",
                 (long long)l->window, (long long)md->chunk, md->name);
        break;
      }
    }
  }
}

static void define_block(fe_checker *s, const fe_stmt *st) {
  fe_block_def *old = find_block(s, st->name);
  if (old) {
    ut_error(s->d, st->name_loc, "duplicate definition of block '%s'", st->name);
    ut_note(s->d, old->loc, "'%s' was first defined here", st->name);
    return;
  }
  if (find_layer_kind(st->name) >= 0) {
    ut_error(s->d, st->name_loc, "block '%s' has the name of a layer kind", st->name);
    return;
  }
  fe_block_def *b = ut_alloc(s->arena, sizeof *b);
  b->name = st->name;
  b->loc = st->name_loc;
  b->body = st->body;
  b->next = s->blocks;
  s->blocks = b;
  ut_map_put(&s->block_by_name, b->name, b);
}

fe_model *fe_sema(ut_arena *arena, ut_diags *diags, fe_stmt *items) {
  fe_checker s = {.arena = arena, .d = diags};
  ut_map_init(&s.const_by_name, arena);
  ut_map_init(&s.block_by_name, arena);
  int errors = diags->nraised;
  const fe_stmt *model = NULL;
  for (const fe_stmt *it = items; it; it = it->next) {
    switch (it->kind) {
    case FE_CONST: define_const(&s, it); break;
    case FE_BLOCK: define_block(&s, it); break;
    case FE_MODEL:
      if (model) {
        ut_error(diags, it->name_loc, "a file describes one model; '%s' is a second one",
                 it->name);
        ut_note(diags, model->name_loc, "the first model is '%s'", model->name);
      } else {
        model = it;
      }
      break;
    case FE_INCLUDE: break; /* already spliced by the driver */
    default:
      ut_error(diags, it->loc, "%s belongs inside a model", fe_stmt_kind_name(it->kind));
      break;
    }
  }
  if (!model) {
    if (diags->nraised == errors)
      ut_error(diags, ut_noloc, "no model is defined (expected `model NAME { ... }`)");
    return NULL;
  }
  s.m = ut_alloc(arena, sizeof *s.m);
  s.m->name = model->name;
  s.m->loc = model->name_loc;
  s.layers = ut_alloc_array(arena, FE_MAX_LAYERS, sizeof *s.layers);
  s.retrieval_used = ut_alloc_array(arena, FE_MAX_LAYERS, sizeof *s.retrieval_used);
  model_settings(&s, model);
  if (diags->nraised > errors) return NULL; /* sizes are needed below */
  for (const fe_stmt *b = model->body; b; b = b->next)
    if (b->kind == FE_MEMORY && s.nmem_stmts < 64) s.mem_stmts[s.nmem_stmts++] = b;
  for (const fe_stmt *b = model->body; b; b = b->next) {
    switch (b->kind) {
    case FE_STACK: define_stack(&s, b); break;
    case FE_MEMORY: define_memory(&s, b); break;
    case FE_SET:
    case FE_CONST: break;
    case FE_LAYER:
      ut_error(diags, b->loc, "layers belong in a stack: `stack NAME { %s(...) }`",
               b->name);
      break;
    default:
      ut_error(diags, b->loc, "%s must be inside a stack", fe_stmt_kind_name(b->kind));
      break;
    }
  }
  if (s.nstacks == 0 && diags->nraised == errors)
    ut_error(diags, model->name_loc, "model '%s' has no stack of layers", model->name);
  cross_checks(&s);
  if (diags->nraised > errors) return NULL;
  fe_model *m = s.m;
  m->layers = s.layers;
  m->nlayers = s.nlayers;
  m->stacks = ut_alloc_array(arena, (size_t)s.nstacks, sizeof *m->stacks);
  memcpy(m->stacks, s.stacks, (size_t)s.nstacks * sizeof *m->stacks);
  m->nstacks = s.nstacks;
  m->memories = ut_alloc_array(arena, (size_t)s.nmemories + 1, sizeof *m->memories);
  memcpy(m->memories, s.memories, (size_t)s.nmemories * sizeof *m->memories);
  m->nmemories = s.nmemories;
  return m;
}
