/* tasks.c - deterministic synthetic long-context tasks and `hsac gen-task`
 * (docs/tasks.md).
 *
 * An item is built in two independent random streams, both splitmix64
 * seeded from (seed, task, needle kind, count, chains):
 *  - the content stream picks the keys, values, variable names, the depth
 *    (a fraction of the filler) of every needle, and the question; it never
 *    sees the length, so a seed asks the same question at every length;
 *  - the filler stream picks the filler's style (how often fixed sentences
 *    appear, a small pool of random-word sentences that repeat, how often a
 *    fresh random-word sentence or a paragraph break appears) and then the
 *    sentences one by one.
 *
 * Layout: header "\n"-terminated, then units (filler sentences and needle
 * sentences) joined by one separator byte each (a space, or a newline for a
 * paragraph break), then the question, which starts with "\n" and ends where
 * the answer begins.  With H, Q the header and question bytes and N the
 * needles' bytes plus one separator each, the filler units (sentence plus
 * separator) must fill exactly F = length + 1 - H - Q - N bytes.  Whole
 * sentences are taken while they leave 0 or at least 3 bytes; the last is
 * a random-word sentence built to the exact remaining size (any size >= 2
 * can be built: the word list has words of every length 1..9).  A needle of
 * depth d goes before the first filler unit that starts at or after
 * floor(d * F) bytes of filler; depth 1 puts it right before the question.
 * Hence the least length is H + Q + N + 2: one filler sentence of 2 bytes.
 *
 * The same bytes everywhere: integer arithmetic only (depths are fractions
 * of 2^32), and every random draw is a statement of its own (the order in
 * which a call's arguments are evaluated is unspecified: two draws in one
 * argument list differ between gcc and clang).  tests/unit/test_tasks.c
 * pins the bytes of a few items. */
#include "cli/tasks.h"
#include "cli/args.h"
#include "cli/commands.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- word lists ------------------------------------------------------------
 * Invariant (tk_self_check): no value word occurs inside any other text the
 * generator writes, so a value is found in a prompt only where it was put.
 * Filler words are lowercase, have no digits or hyphens, and cover every
 * length 1..9. */

static const char *const filler_words[] = {
    "a",
    "an", "as", "at", "by", "do", "go", "he", "if", "in", "is", "it", "me", "my", "no", "of",
    "on", "or", "so", "to", "up", "we",
    "and", "are", "but", "can", "day", "far", "few", "for", "had", "has", "her", "his", "how",
    "its", "new", "not", "now", "old", "one", "our", "out", "own", "saw", "say", "see", "she",
    "sky", "sun", "the", "too", "two", "way", "who", "why", "yes", "yet", "you",
    "also", "away", "back", "been", "best", "both", "came", "city", "cold", "come", "dark",
    "does", "down", "each", "even", "ever", "face", "fact", "feel", "find", "fire", "from",
    "full", "gave", "give", "good", "half", "hand", "hard", "have", "here", "high", "hill",
    "hold", "home", "hope", "just", "keep", "kind", "knew", "know", "land", "last", "late",
    "left", "life", "like", "line", "long", "look", "made", "make", "many", "mind", "more",
    "most", "move", "much", "must", "name", "near", "need", "next", "once", "only", "open",
    "over", "part", "past", "plan", "play", "read", "real", "rest", "road", "room", "said",
    "same", "seen", "ship", "show", "side", "slow", "some", "soon", "stay", "such", "sure",
    "take", "talk", "tell", "than", "that", "them", "then", "they", "this", "time", "told",
    "took", "town", "tree", "true", "turn", "upon", "very", "wait", "walk", "wall", "want",
    "warm", "well", "went", "were", "what", "when", "wide", "wind", "with", "work", "year",
    "about", "above", "after", "again", "along", "began", "being", "below", "bring", "built",
    "carry", "clear", "close", "could", "early", "earth", "every", "field", "first", "found",
    "given", "great", "green", "group", "heard", "heavy", "horse", "house", "large", "later",
    "learn", "light", "might", "never", "night", "often", "order", "other", "place", "plain",
    "quiet", "quite", "ready", "right", "river", "round", "small", "sound", "south", "stand",
    "still", "stone", "story", "study", "their", "there", "these", "thing", "think", "those",
    "three", "under", "until", "water", "where", "which", "while", "white", "whole", "world",
    "would", "young",
    "across", "always", "around", "before", "behind", "better", "beyond", "change", "corner",
    "during", "enough", "family", "father", "follow", "forest", "garden", "ground", "little",
    "market", "moment", "mother", "nature", "people", "person", "rather", "reason", "second",
    "should", "simple", "spring", "summer", "though", "toward", "travel", "valley", "window",
    "winter", "within",
    "against", "another", "because", "between", "brought", "certain", "country", "evening",
    "example", "morning", "nothing", "perhaps", "picture", "present", "problem", "several",
    "student", "through", "without",
    "although", "children", "complete", "continue", "distance", "everyone", "finished",
    "mountain", "together",
    "afternoon", "beautiful", "different", "direction", "important", "knowledge", "something",
    "sometimes", "wonderful", "yesterday",
};

static const char *const fixed_sentences[] = {
    "The grass is green.",
    "The sky is blue.",
    "The sun is yellow.",
    "Here we go.",
    "There and back again.",
    "The river flows to the sea.",
    "Birds sing in the morning.",
    "The road goes ever on and on.",
    "Rain falls on the quiet town.",
    "The wind moves through the trees.",
    "A small boat drifts on the lake.",
    "The old clock ticks in the hall.",
    "Snow covers the distant hills.",
    "The market opens at dawn.",
    "Leaves turn gold in the autumn.",
    "Children play in the park.",
    "The train leaves at noon.",
    "Stars shine over the valley.",
    "The bread is warm and fresh.",
    "A cat sleeps by the window.",
    "The door is painted red.",
    "Waves break on the shore.",
    "The lamp glows in the dark.",
    "Smoke rises from the chimney.",
};

/* Values of word needles (at least TK_MAX_COUNT of them). */
static const char *const value_words[] = {
    "apricot", "avocado", "blackberry", "blueberry", "cantaloupe", "cherimoya", "clementine",
    "coconut", "cranberry", "durian", "elderberry", "grapefruit", "huckleberry", "jackfruit",
    "kumquat", "lychee", "mandarin", "mulberry", "nectarine", "papaya", "persimmon",
    "pineapple", "plantain", "pomegranate", "quince", "raspberry", "rambutan", "tamarind",
    "tangerine", "watermelon",
    "amethyst", "aquamarine", "citrine", "emerald", "garnet", "jasper", "malachite", "obsidian",
    "peridot", "quartz", "sapphire", "topaz", "tourmaline", "turquoise", "zircon",
    "albatross", "armadillo", "axolotl", "badger", "barracuda", "chameleon", "cheetah",
    "chinchilla", "cormorant", "coyote", "flamingo", "gazelle", "giraffe", "hedgehog", "iguana",
    "jaguar", "kangaroo", "kingfisher", "leopard", "lobster", "meerkat", "mongoose", "narwhal",
    "ocelot", "octopus", "pangolin", "pelican", "penguin", "platypus", "porcupine", "raccoon",
    "salamander", "scorpion", "starfish", "tortoise", "toucan", "walrus", "wolverine", "wombat",
    "accordion", "bagpipe", "bassoon", "clarinet", "harmonica", "harpsichord", "mandolin",
    "marimba", "piccolo", "saxophone", "trombone", "ukulele", "xylophone",
    "cardamom", "cinnamon", "coriander", "fennel", "nutmeg", "oregano", "paprika", "saffron",
    "turmeric", "vanilla",
};

/* Keys are "adjective-noun". */
static const char *const key_adjectives[] = {
    "amber", "brave", "bright", "calm", "clever", "crimson", "curious", "daring", "dusty",
    "eager", "fancy", "fierce", "gentle", "gloomy", "golden", "grumpy", "happy", "hollow",
    "humble", "icy", "jolly", "lively", "lucky", "mellow", "misty", "noble", "polite", "proud",
    "quick", "rapid", "rusty", "shiny", "silent", "sleepy", "smooth", "snowy", "sturdy", "sunny",
    "swift", "tender", "tiny", "vivid", "wandering", "wise", "witty", "zealous",
};
static const char *const key_nouns[] = {
    "anchor", "arrow", "bridge", "candle", "castle", "cloud", "comet", "compass", "crown",
    "desert", "engine", "feather", "glacier", "hammer", "harbor", "island", "jungle", "kettle",
    "ladder", "lantern", "meadow", "mirror", "needle", "orbit", "palace", "pebble", "pillow",
    "planet", "prism", "rocket", "saddle", "shadow", "signal", "spiral", "summit", "teapot",
    "thunder", "tower", "tunnel", "velvet", "violin", "wagon", "whistle", "willow",
};

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

/* The headers; the other fixed texts are formats in build_content. */
static const char passkey_header[] =
    "There is a passkey hidden inside a lot of irrelevant text. Find it and memorize it. "
    "I will quiz you about it afterwards.\n";
static const char niah_header[] =
    "Some special magic %ss are hidden within the following text. Make sure to memorize "
    "them. I will quiz you about them afterwards.\n";
static const char vartrack_header[] =
    "Memorize and track the chains of variable assignments hidden in the following text.\n";

/* Every fixed text with its %s holes removed, for tk_self_check. */
static const char *const templates[] = {
    passkey_header, niah_header, vartrack_header,
    "The passkey is . Remember it.  is the passkey.",
    "The special magic  for  is: .",
    "One of the special magic s for  is: .",
    "VAR  = .", "VAR  = VAR .",
    "\nWhat is the passkey? The passkey is ",
    "\nWhat is the special magic  for ? The special magic  for  is: ",
    "\nWhat are all the special magic s for ? The special magic s for  are: ",
    "\nWhat are the special magic s for  and ? The special magic s for , and  are: ",
    "\nFind all variables that are assigned the value  in the text above. "
    "The variables assigned the value  are: ",
    "number", "word", "uuid",
};

static const char *const task_names[TK_NTASKS] = {"passkey", "multikey", "multivalue",
                                                  "multiquery", "vartrack"};
static const char *const needle_names[TK_NNEEDLES] = {"number", "word", "uuid"};

const char *tk_task_name(tk_task t) {
  return (unsigned)t < TK_NTASKS ? task_names[t] : "?";
}

const char *tk_needle_name(tk_needle n) {
  return (unsigned)n < TK_NNEEDLES ? needle_names[n] : "?";
}

int tk_task_parse(const char *s) {
  for (int i = 0; i < TK_NTASKS; i++)
    if (s && !strcmp(s, task_names[i])) return i;
  return -1;
}

int tk_needle_parse(const char *s) {
  for (int i = 0; i < TK_NNEEDLES; i++)
    if (s && !strcmp(s, needle_names[i])) return i;
  return -1;
}

void tk_options_init(tk_options *o, tk_task task) {
  memset(o, 0, sizeof *o);
  o->task = task;
  o->needle = TK_NUMBER;
}

/* ---- random numbers: splitmix64 --------------------------------------------- */

typedef struct rng {
  uint64_t s;
} rng;

static uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

static uint64_t rng_next(rng *r) {
  r->s += 0x9E3779B97F4A7C15ULL;
  return mix64(r->s);
}

/* Uniform in [0, n) up to a bias below 2^-40 for the n used here. */
static uint64_t rng_below(rng *r, uint64_t n) { return rng_next(r) % n; }

/* Depths are fixed-point fractions of the filler: 0 .. DEPTH_ONE.  No
 * floating point touches an item (a fused multiply-add or another rounding
 * would change the bytes from one compiler or machine to another); only
 * the caller's depth option is converted, exactly, by a power of two. */
#define DEPTH_ONE ((uint64_t)1 << 32)

/* A probability as a threshold out of 1024: true with probability p/1024. */
static bool rng_chance(rng *r, uint64_t p) { return rng_below(r, 1024) < p; }

/* ---- growable strings ------------------------------------------------------- */

typedef struct sbuf {
  char *p;
  size_t n, cap;
  bool oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
  if (b->oom) return;
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->n + n + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
      b->oom = true;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  if (n) memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = 0;
}

static void sb_puts(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }
static void sb_putc(sbuf *b, char c) { sb_put(b, &c, 1); }

__attribute__((format(printf, 2, 3))) static void sb_printf(sbuf *b, const char *fmt, ...) {
  char small[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0) {
    b->oom = true;
    return;
  }
  if ((size_t)n < sizeof small) {
    sb_put(b, small, (size_t)n);
    return;
  }
  char *big = malloc((size_t)n + 1);
  if (!big) {
    b->oom = true;
    return;
  }
  va_start(ap, fmt);
  vsnprintf(big, (size_t)n + 1, fmt, ap);
  va_end(ap);
  sb_put(b, big, (size_t)n);
  free(big);
}

/* ---- the content of an item --------------------------------------------------- */

typedef struct unit {
  sbuf text;
  uint64_t depth; /* fraction of the filler, 0..DEPTH_ONE */
} unit;

typedef struct content {
  sbuf header, question;
  unit *needles; /* in prompt order (depths nondecreasing) */
  int nneedles;
  sbuf *answers;
  int nanswers;
  bool oom;
} content;

static void content_free(content *c) {
  free(c->header.p);
  free(c->question.p);
  for (int i = 0; i < c->nneedles; i++) free(c->needles[i].text.p);
  free(c->needles);
  for (int i = 0; i < c->nanswers; i++) free(c->answers[i].p);
  free(c->answers);
  memset(c, 0, sizeof *c);
}

static bool content_oom(content *c) {
  bool oom = c->oom || c->header.oom || c->question.oom;
  for (int i = 0; i < c->nneedles; i++) oom |= c->needles[i].text.oom;
  for (int i = 0; i < c->nanswers; i++) oom |= c->answers[i].oom;
  return oom;
}

/* Whether s is one of the n strings in prev. */
static bool in_list(const sbuf *prev, int n, const char *s) {
  for (int i = 0; i < n; i++)
    if (!strcmp(prev[i].p, s)) return true;
  return false;
}

/* A value of the given kind into out (emptied first), distinct from the
 * n values in prev. */
static void gen_value(rng *r, tk_needle kind, sbuf *out, const sbuf *prev, int n) {
  static const char hex[] = "0123456789abcdef";
  for (;;) {
    out->n = 0;
    if (kind == TK_NUMBER) {
      sb_printf(out, "%07llu", (unsigned long long)(1000000 + rng_below(r, 9000000)));
    } else if (kind == TK_WORD) {
      sb_puts(out, value_words[rng_below(r, COUNT_OF(value_words))]);
    } else {
      for (int i = 0; i < 32; i++) {
        if (i == 8 || i == 12 || i == 16 || i == 20) sb_putc(out, '-');
        char c = hex[rng_below(r, 16)];
        if (i == 12) c = '4';                       /* version 4 */
        if (i == 16) c = "89ab"[rng_below(r, 4)];   /* RFC 4122 variant */
        sb_putc(out, c);
      }
    }
    if (out->oom) return;
    if (!in_list(prev, n, out->p)) return;
  }
}

/* An "adjective-noun" key distinct from the n keys in prev. */
static void gen_key(rng *r, sbuf *out, const sbuf *prev, int n) {
  for (;;) {
    out->n = 0;
    /* two statements: the order of a call's arguments is unspecified */
    const char *adjective = key_adjectives[rng_below(r, COUNT_OF(key_adjectives))];
    const char *noun = key_nouns[rng_below(r, COUNT_OF(key_nouns))];
    sb_printf(out, "%s-%s", adjective, noun);
    if (out->oom) return;
    if (!in_list(prev, n, out->p)) return;
  }
}

/* Five uppercase letters, not starting with "VAR" (the filler templates'
 * placeholder), distinct from the n names in prev. */
static void gen_var(rng *r, sbuf *out, const sbuf *prev, int n) {
  for (;;) {
    out->n = 0;
    for (int i = 0; i < 5; i++) sb_putc(out, (char)('A' + rng_below(r, 26)));
    if (out->oom) return;
    if (strncmp(out->p, "VAR", 3) && !in_list(prev, n, out->p)) return;
  }
}

static void shuffle(rng *r, int *a, int n) {
  for (int i = n - 1; i > 0; i--) {
    int j = (int)rng_below(r, (uint64_t)i + 1);
    int t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
}

/* n depths, one uniform in each of n equal strata of [0, DEPTH_ONE): sorted. */
static void stratified(rng *r, uint64_t *d, int n) {
  for (int i = 0; i < n; i++)
    d[i] = ((uint64_t)i * DEPTH_ONE + rng_below(r, DEPTH_ONE)) / (uint64_t)n;
}

typedef struct resolved {
  tk_task task;
  tk_needle needle;
  int count, chains;
  bool fixed_depth;
  uint64_t depth; /* when fixed_depth */
} resolved;

static bool fail(char *err, size_t errsize, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool fail(char *err, size_t errsize, const char *fmt, ...) {
  if (err && errsize) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errsize, fmt, ap);
    va_end(ap);
  }
  return false;
}

static bool resolve(const tk_options *o, resolved *v, char *err, size_t errsize) {
  if (!o) return fail(err, errsize, "no options");
  if ((unsigned)o->task >= TK_NTASKS) return fail(err, errsize, "unknown task %d", (int)o->task);
  if ((unsigned)o->needle >= TK_NNEEDLES)
    return fail(err, errsize, "unknown needle kind %d", (int)o->needle);
  v->task = o->task;
  v->needle = o->needle;
  v->count = o->count;
  v->chains = o->chains;
  if (v->task == TK_PASSKEY) {
    if (v->count != 0 && v->count != 1)
      return fail(err, errsize, "passkey has exactly one needle (count 1), not %d", v->count);
    v->count = 1;
  } else {
    if (v->count == 0) v->count = v->task == TK_VARTRACK ? 5 : 4;
    if (v->count < 1 || v->count > TK_MAX_COUNT)
      return fail(err, errsize, "count must be 1..%d, not %d", TK_MAX_COUNT, v->count);
  }
  if (v->task == TK_VARTRACK) {
    if (v->chains == 0) v->chains = 2;
    if (v->chains < 1 || v->chains > TK_MAX_CHAINS)
      return fail(err, errsize, "chains must be 1..%d, not %d", TK_MAX_CHAINS, v->chains);
  } else if (v->chains != 0) {
    return fail(err, errsize, "chains applies to vartrack only");
  }
  v->fixed_depth = o->has_depth;
  v->depth = 0;
  if (o->has_depth) {
    double d = o->depth;
    if (!(d >= 0 && d <= 1)) return fail(err, errsize, "depth must be 0..1");
    if (v->task != TK_PASSKEY && v->task != TK_MULTIKEY)
      return fail(err, errsize,
                  "depth applies to passkey and multikey only (%s spreads its needles)",
                  task_names[v->task]);
    v->depth = (uint64_t)(d * (double)DEPTH_ONE); /* exact: a power of two */
  }
  return true;
}

static rng stream(const resolved *v, uint64_t seed, uint64_t which) {
  uint64_t h = mix64(seed ^ 0x6873616374736b73ULL); /* "hsactsks" */
  h = mix64(h ^ ((uint64_t)v->task << 40) ^ ((uint64_t)v->needle << 32));
  h = mix64(h ^ ((uint64_t)(unsigned)v->count << 16) ^ (uint64_t)(unsigned)v->chains);
  return (rng){mix64(h ^ which)};
}

/* Sorts needles by depth; ties keep their order (insertion sort). */
static void sort_needles(unit *u, int n) {
  for (int i = 1; i < n; i++) {
    unit x = u[i];
    int j = i;
    while (j > 0 && u[j - 1].depth > x.depth) {
      u[j] = u[j - 1];
      j--;
    }
    u[j] = x;
  }
}

/* "a", "a and b", "a, b and c". */
static void join_and(sbuf *out, const sbuf *s, int n) {
  for (int i = 0; i < n; i++) {
    if (i) sb_puts(out, i == n - 1 ? " and " : ", ");
    sb_put(out, s[i].p, s[i].n);
  }
}

static bool build_content(const resolved *v, uint64_t seed, content *c) {
  memset(c, 0, sizeof *c);
  rng r = stream(v, seed, 1);
  const char *noun = needle_names[v->needle];
  /* needles; distinct keys; distinct values; variable names */
  int nn = v->task == TK_VARTRACK ? v->count * v->chains : v->count;
  int nkeys = v->task == TK_MULTIVALUE ? 1 : v->task == TK_VARTRACK ? 0 : v->count;
  int nvals = v->task == TK_VARTRACK ? v->chains : v->count;
  int nnames = v->task == TK_VARTRACK ? nn : 0;
  int nans = v->task == TK_PASSKEY || v->task == TK_MULTIKEY ? 1 : v->count;
  c->needles = calloc((size_t)nn, sizeof *c->needles);
  c->answers = calloc((size_t)nans, sizeof *c->answers);
  sbuf *keys = calloc((size_t)nkeys + 1, sizeof *keys);
  sbuf *vals = calloc((size_t)nvals, sizeof *vals);
  sbuf *names = calloc((size_t)nnames + 1, sizeof *names);
  uint64_t *d = malloc((size_t)nn * sizeof *d);
  int *perm = malloc((size_t)nn * sizeof *perm);
  if (!c->needles || !c->answers || !keys || !vals || !names || !d || !perm) {
    c->oom = true;
    goto done;
  }
  c->nneedles = nn;
  c->nanswers = nans;
  for (int i = 0; i < nn; i++) perm[i] = i;
  /* Draw every key, name and value first (gen_* compare with the earlier
   * ones, so stop at the first failure). */
  for (int i = 0; i < nkeys && !c->oom; i++) {
    gen_key(&r, &keys[i], keys, i);
    c->oom = keys[i].oom;
  }
  for (int i = 0; i < nnames && !c->oom; i++) {
    gen_var(&r, &names[i], names, i);
    c->oom = names[i].oom;
  }
  for (int i = 0; i < nvals && !c->oom; i++) {
    gen_value(&r, v->needle, &vals[i], vals, i);
    c->oom = vals[i].oom;
  }
  if (c->oom) goto done;

  switch (v->task) {
  case TK_PASSKEY:
    d[0] = rng_below(&r, DEPTH_ONE + 1);
    if (v->fixed_depth) d[0] = v->depth;
    sb_puts(&c->header, passkey_header);
    sb_printf(&c->needles[0].text, "The passkey is %s. Remember it. %s is the passkey.",
              vals[0].p, vals[0].p);
    c->needles[0].depth = d[0];
    sb_puts(&c->question, "\nWhat is the passkey? The passkey is ");
    sb_puts(&c->answers[0], vals[0].p);
    break;
  case TK_MULTIKEY:
  case TK_MULTIQUERY: {
    stratified(&r, d, nn);
    shuffle(&r, perm, nn); /* key i lies at depth d[perm[i]] */
    int target = (int)rng_below(&r, (uint64_t)nn);
    sb_printf(&c->header, niah_header, noun);
    for (int i = 0; i < nn; i++) {
      sb_printf(&c->needles[i].text, "The special magic %s for %s is: %s.", noun, keys[i].p,
                vals[i].p);
      c->needles[i].depth = d[perm[i]];
    }
    if (v->task == TK_MULTIKEY) {
      if (v->fixed_depth) c->needles[target].depth = v->depth;
      sb_printf(&c->question,
                "\nWhat is the special magic %s for %s? The special magic %s for %s is: ", noun,
                keys[target].p, noun, keys[target].p);
      sb_puts(&c->answers[0], vals[target].p);
    } else {
      sb_printf(&c->question, "\nWhat are the special magic %ss for ", noun);
      join_and(&c->question, keys, nn);
      sb_printf(&c->question, "? The special magic %ss for ", noun);
      join_and(&c->question, keys, nn);
      sb_puts(&c->question, " are: ");
      for (int i = 0; i < nn; i++) sb_puts(&c->answers[i], vals[i].p);
    }
    break;
  }
  case TK_MULTIVALUE:
    stratified(&r, d, nn); /* value i at depth d[i]: answers in prompt order */
    sb_printf(&c->header, niah_header, noun);
    for (int i = 0; i < nn; i++) {
      sb_printf(&c->needles[i].text, "One of the special magic %ss for %s is: %s.", noun,
                keys[0].p, vals[i].p);
      c->needles[i].depth = d[i];
      sb_puts(&c->answers[i], vals[i].p);
    }
    sb_printf(&c->question,
              "\nWhat are all the special magic %ss for %s? The special magic %ss for %s are: ",
              noun, keys[0].p, noun, keys[0].p);
    break;
  case TK_VARTRACK: {
    /* Chain k has the names k*nv .. k*nv + nv - 1 and the value vals[k];
     * chain 0 is asked.  Its statements keep their order: the s-th slot
     * takes the next statement of chain perm[s]. */
    int nv = v->count;
    stratified(&r, d, nn);
    for (int i = 0; i < nn; i++) perm[i] = i / nv;
    shuffle(&r, perm, nn);
    int next[TK_MAX_CHAINS] = {0};
    for (int s = 0; s < nn; s++) {
      int k = perm[s], j = next[k]++;
      const sbuf *name = &names[k * nv + j];
      if (j == 0)
        sb_printf(&c->needles[s].text, "VAR %s = %s.", name->p, vals[k].p);
      else
        sb_printf(&c->needles[s].text, "VAR %s = VAR %s.", name->p, names[k * nv + j - 1].p);
      c->needles[s].depth = d[s];
    }
    sb_puts(&c->header, vartrack_header);
    sb_printf(&c->question,
              "\nFind all variables that are assigned the value %s in the text above. "
              "The variables assigned the value %s are: ",
              vals[0].p, vals[0].p);
    for (int j = 0; j < nv; j++) sb_puts(&c->answers[j], names[j].p);
    break;
  }
  default:
    break;
  }
  sort_needles(c->needles, nn);

done:
  for (int i = 0; keys && i < nkeys; i++) free(keys[i].p);
  for (int i = 0; vals && i < nvals; i++) free(vals[i].p);
  for (int i = 0; names && i < nnames; i++) free(names[i].p);
  free(keys);
  free(vals);
  free(names);
  free(d);
  free(perm);
  if (content_oom(c)) {
    content_free(c);
    return false;
  }
  return true;
}

/* H + Q + N: the bytes of the header, the question, and the needles with
 * one separator each. */
static size_t fixed_bytes(const content *c) {
  size_t n = c->header.n + c->question.n;
  for (int i = 0; i < c->nneedles; i++) n += c->needles[i].text.n + 1;
  return n;
}

/* The least length: the fixed bytes and one filler unit of 3 bytes (a
 * 2-byte sentence and its separator), less the first unit's separator. */
static size_t least_length(const content *c) { return fixed_bytes(c) + 2; }

/* ---- filler ----------------------------------------------------------------- */

enum { MAX_POOL = 6 };

typedef struct filler {
  rng r;
  uint64_t p_fixed, p_fresh; /* out of 1024 */
  uint64_t par;              /* a paragraph break once in par separators */
  int fixed[COUNT_OF(fixed_sentences)];
  int nfixed;
  sbuf pool[MAX_POOL];
  int npool;
} filler;

static const char *random_word(rng *r) {
  return filler_words[rng_below(r, COUNT_OF(filler_words))];
}

/* A random filler word of exactly n letters (1 <= n <= 9). */
static const char *word_of_length(rng *r, size_t n) {
  uint64_t k = 0;
  for (size_t i = 0; i < COUNT_OF(filler_words); i++) k += strlen(filler_words[i]) == n;
  uint64_t pick = rng_below(r, k ? k : 1);
  for (size_t i = 0; i < COUNT_OF(filler_words); i++)
    if (strlen(filler_words[i]) == n && pick-- == 0) return filler_words[i];
  return "a"; /* unreachable: the list covers 1..9 */
}

static void capitalize_from(sbuf *b, size_t start) {
  if (!b->oom && start < b->n && b->p[start] >= 'a' && b->p[start] <= 'z')
    b->p[start] = (char)(b->p[start] - 'a' + 'A');
}

/* 4..12 random words, the first capitalized, and a period. */
static void random_sentence(rng *r, sbuf *out) {
  size_t start = out->n;
  int n = 4 + (int)rng_below(r, 9);
  for (int i = 0; i < n; i++) {
    if (i) sb_putc(out, ' ');
    sb_puts(out, random_word(r));
  }
  sb_putc(out, '.');
  capitalize_from(out, start);
}

/* A random-word sentence of exactly n >= 2 bytes. */
static void exact_sentence(rng *r, sbuf *out, size_t n) {
  size_t start = out->n, m = n - 1; /* bytes before the period */
  while (m >= 12) {
    const char *w = random_word(r); /* at most 9 letters: m stays >= 2 */
    sb_puts(out, w);
    sb_putc(out, ' ');
    m -= strlen(w) + 1;
  }
  if (m <= 9) {
    sb_puts(out, word_of_length(r, m));
  } else { /* 10 or 11: two words */
    sb_puts(out, word_of_length(r, 5));
    sb_putc(out, ' ');
    sb_puts(out, word_of_length(r, m - 6));
  }
  sb_putc(out, '.');
  capitalize_from(out, start);
}

static bool filler_init(filler *f, const resolved *v, uint64_t seed) {
  memset(f, 0, sizeof *f);
  f->r = stream(v, seed, 2);
  f->p_fixed = 150 + rng_below(&f->r, 725); /* 15% .. 85% fixed sentences */
  f->p_fresh = rng_below(&f->r, 310);        /* 0 .. 30% of the rest fresh */
  f->par = 4 + rng_below(&f->r, 12);
  int all = (int)COUNT_OF(fixed_sentences);
  int idx[COUNT_OF(fixed_sentences)];
  for (int i = 0; i < all; i++) idx[i] = i;
  shuffle(&f->r, idx, all);
  f->nfixed = 3 + (int)rng_below(&f->r, (uint64_t)all - 2);
  memcpy(f->fixed, idx, sizeof f->fixed);
  f->npool = 1 + (int)rng_below(&f->r, MAX_POOL);
  bool oom = false;
  for (int i = 0; i < f->npool; i++) {
    random_sentence(&f->r, &f->pool[i]);
    oom |= f->pool[i].oom;
  }
  return !oom;
}

static void filler_free(filler *f) {
  for (int i = 0; i < MAX_POOL; i++) free(f->pool[i].p);
}

/* The next filler sentence, as the style draws it, into out (emptied). */
static void filler_next(filler *f, sbuf *out) {
  out->n = 0;
  if (rng_chance(&f->r, f->p_fixed)) {
    sb_puts(out, fixed_sentences[f->fixed[rng_below(&f->r, (uint64_t)f->nfixed)]]);
  } else if (rng_chance(&f->r, f->p_fresh)) {
    random_sentence(&f->r, out);
  } else {
    const sbuf *s = &f->pool[rng_below(&f->r, (uint64_t)f->npool)];
    sb_put(out, s->p, s->n);
  }
}

/* ---- items ------------------------------------------------------------------ */

void tk_item_free(tk_item *it) {
  if (!it) return;
  free(it->prompt);
  free(it->answer);
  for (int i = 0; i < it->n_answers; i++) free(it->answers ? it->answers[i] : NULL);
  free(it->answers);
  free(it->needle_offsets);
  memset(it, 0, sizeof *it);
}

tk_status tk_min_length(const tk_options *o, uint64_t seed, size_t *min_length, char *err,
                        size_t errsize) {
  resolved v;
  if (!resolve(o, &v, err, errsize)) return TK_EINVAL;
  content c;
  if (!build_content(&v, seed, &c)) {
    fail(err, errsize, "out of memory");
    return TK_ENOMEM;
  }
  *min_length = least_length(&c);
  content_free(&c);
  return TK_OK;
}

typedef struct emitter {
  sbuf *out;
  filler *f;
  bool first;
} emitter;

static void emit(emitter *e, const sbuf *s, size_t *offset) {
  if (!e->first) sb_putc(e->out, rng_below(&e->f->r, e->f->par) == 0 ? '\n' : ' ');
  e->first = false;
  if (offset) *offset = e->out->n;
  sb_put(e->out, s->p, s->n);
}

tk_status tk_generate(const tk_options *o, size_t length, uint64_t seed, tk_item *it,
                      char *err, size_t errsize) {
  if (!it) {
    fail(err, errsize, "no item");
    return TK_EINVAL;
  }
  memset(it, 0, sizeof *it);
  resolved v;
  if (!resolve(o, &v, err, errsize)) return TK_EINVAL;
  if (length > TK_MAX_LENGTH) {
    fail(err, errsize, "length %zu is more than %zu", length, TK_MAX_LENGTH);
    return TK_EINVAL;
  }
  content c;
  if (!build_content(&v, seed, &c)) {
    fail(err, errsize, "out of memory");
    return TK_ENOMEM;
  }
  size_t least = least_length(&c);
  if (length < least) {
    fail(err, errsize,
         "length %zu is too short for %s (seed %llu): it needs at least %zu bytes", length,
         task_names[v.task], (unsigned long long)seed, least);
    content_free(&c);
    return TK_ETOOSHORT;
  }
  size_t F = length + 1 - fixed_bytes(&c); /* >= 3 */
  size_t *t = malloc((size_t)c.nneedles * sizeof *t);
  it->needle_offsets = malloc((size_t)c.nneedles * sizeof *it->needle_offsets);
  it->answers = calloc((size_t)c.nanswers, sizeof *it->answers);
  sbuf out = {.p = malloc(length + 1), .cap = length + 1};
  sbuf cand = {0}, ans = {0};
  filler f;
  bool ok = filler_init(&f, &v, seed) && t && it->needle_offsets && it->answers && out.p;
  if (ok) {
    out.p[0] = 0;
    it->n_answers = c.nanswers;
    it->n_needles = c.nneedles;
    for (int i = 0; i < c.nneedles; i++) {
      /* F < 2^31 and depth <= 2^32: the product fits */
      t[i] = (size_t)(((uint64_t)F * c.needles[i].depth) >> 32);
    }
    sb_put(&out, c.header.p, c.header.n);
    emitter e = {&out, &f, true};
    int ni = 0;
    size_t r = F;
    while (r > 0 && !out.oom && !cand.oom) {
      size_t off = F - r;
      while (ni < c.nneedles && t[ni] <= off) {
        emit(&e, &c.needles[ni].text, &it->needle_offsets[ni]);
        ni++;
      }
      filler_next(&f, &cand);
      size_t u = cand.n + 1;
      if (!(u == r || (u < r && r - u >= 3))) {
        cand.n = 0;
        exact_sentence(&f.r, &cand, r - 1);
        u = r;
      }
      emit(&e, &cand, NULL);
      r -= u;
    }
    for (; ni < c.nneedles; ni++) emit(&e, &c.needles[ni].text, &it->needle_offsets[ni]);
    sb_put(&out, c.question.p, c.question.n);
    for (int i = 0; i < c.nanswers; i++) {
      if (i) sb_puts(&ans, ", ");
      sb_put(&ans, c.answers[i].p, c.answers[i].n);
      it->answers[i] = strdup(c.answers[i].p);
      ok &= it->answers[i] != NULL;
    }
    ok &= !out.oom && !cand.oom && !ans.oom && ans.p;
  }
  filler_free(&f);
  free(cand.p);
  free(t);
  content_free(&c);
  if (!ok) {
    free(out.p);
    free(ans.p);
    tk_item_free(it);
    fail(err, errsize, "out of memory");
    return TK_ENOMEM;
  }
  if (out.n != length) { /* the layout's arithmetic is wrong: never expected */
    free(out.p);
    free(ans.p);
    tk_item_free(it);
    fail(err, errsize, "internal error: built %zu bytes, not %zu", out.n, length);
    return TK_EINVAL;
  }
  it->prompt = out.p;
  it->prompt_len = out.n;
  it->answer = ans.p;
  return TK_OK;
}

int tk_self_check(char *err, size_t errsize) {
  for (size_t n = 1; n <= 9; n++) {
    bool found = false;
    for (size_t i = 0; i < COUNT_OF(filler_words); i++) found |= strlen(filler_words[i]) == n;
    if (!found) return fail(err, errsize, "no filler word of %zu letters", n), 1;
  }
  if (COUNT_OF(value_words) < TK_MAX_COUNT)
    return fail(err, errsize, "fewer value words than TK_MAX_COUNT"), 1;
  for (size_t i = 0; i < COUNT_OF(value_words); i++) {
    const char *w = value_words[i];
    const char *const *lists[] = {filler_words, fixed_sentences, key_adjectives, key_nouns,
                                  templates, value_words};
    size_t sizes[] = {COUNT_OF(filler_words), COUNT_OF(fixed_sentences),
                      COUNT_OF(key_adjectives), COUNT_OF(key_nouns), COUNT_OF(templates),
                      COUNT_OF(value_words)};
    for (size_t l = 0; l < COUNT_OF(lists); l++)
      for (size_t j = 0; j < sizes[l]; j++)
        if (lists[l][j] != w && strstr(lists[l][j], w))
          return fail(err, errsize, "value word '%s' occurs in '%s'", w, lists[l][j]), 1;
  }
  return 0;
}

/* ---- the command ------------------------------------------------------------ */

enum {
  G_TASK = 1, G_LENGTH, G_SEED, G_NEEDLE, G_COUNT, G_CHAINS, G_DEPTH, G_ITEMS, G_FORMAT
};

static const cli_opt gen_task_opts[] = {
    {G_TASK, "--task", NULL, "TASK", "passkey, multikey, multivalue, multiquery or vartrack"},
    {G_LENGTH, "--length", NULL, "BYTES", "the prompt's size: 4096, 16K, 1M (binary multiples)"},
    {G_SEED, "--seed", NULL, "N", "the first item's seed (default 0); item i has seed N+i"},
    {G_NEEDLE, "--needle", NULL, "number|word|uuid", "the kind of the values (default number)"},
    {G_COUNT, "--count", NULL, "K", "multikey, multiquery: keys; multivalue: values (default\n"
                                    "4); vartrack: variables per chain (default 5)"},
    {G_CHAINS, "--chains", NULL, "C", "vartrack: chains, one asked (default 2)"},
    {G_DEPTH, "--depth", NULL, "D", "passkey, multikey: the asked needle's depth, 0..1\n"
                                    "(default: chosen by the seed)"},
    {G_ITEMS, "--items", NULL, "M", "items to print (default 1)"},
    {G_FORMAT, "--format", NULL, "text|jsonl|prompt",
     "text: each item's prompt, a newline and the answer line,\n"
     "items separated by an empty line; jsonl: one JSON object\n"
     "per item; prompt: the prompt's bytes only (one item)"},
    {0, NULL, NULL, NULL, NULL},
};

const cli_command tk_gen_task_command = {
    .name = "gen-task",
    .synopsis = "--task TASK --length BYTES [options]",
    .summary = "print deterministic synthetic long-context items (docs/tasks.md): a prompt\n"
               "of exactly BYTES bytes that ends where the expected answer begins",
    .groups = {gen_task_opts, NULL},
    .max_operands = 0,
};

#define gt_usage_error(...) cli_usage_error(&tk_gen_task_command, __VA_ARGS__)

static bool parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out) {
  if (!s || *s < '0' || *s > '9') return false;
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end || v < lo || v > hi) return false;
  *out = v;
  return true;
}

/* "4096", "16K", "1M", "1G" (binary multiples). */
static bool parse_length(const char *s, size_t *out) {
  if (!s || *s < '0' || *s > '9') return false;
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10), mul = 1;
  if (*end == 'K' || *end == 'k') mul = 1ULL << 10, end++;
  else if (*end == 'M' || *end == 'm') mul = 1ULL << 20, end++;
  else if (*end == 'G' || *end == 'g') mul = 1ULL << 30, end++;
  if (errno || *end || v < 1 || v > TK_MAX_LENGTH / mul) return false;
  *out = (size_t)(v * mul);
  return true;
}

static char *item_json(const tk_options *o, const tk_item *it, uint64_t seed, size_t length) {
  cJSON *j = cJSON_CreateObject();
  char num[32];
  bool ok = j != NULL;
  ok = ok && cJSON_AddStringToObject(j, "task", tk_task_name(o->task));
  ok = ok && cJSON_AddStringToObject(j, "needle", tk_needle_name(o->needle));
  snprintf(num, sizeof num, "%llu", (unsigned long long)seed);
  ok = ok && cJSON_AddRawToObject(j, "seed", num);
  snprintf(num, sizeof num, "%zu", length);
  ok = ok && cJSON_AddRawToObject(j, "length", num);
  resolved v;
  ok = ok && resolve(o, &v, NULL, 0);
  if (ok && o->task != TK_PASSKEY) ok = cJSON_AddNumberToObject(j, "count", v.count);
  if (ok && o->task == TK_VARTRACK) ok = cJSON_AddNumberToObject(j, "chains", v.chains);
  ok = ok && cJSON_AddStringToObject(j, "prompt", it->prompt);
  ok = ok && cJSON_AddStringToObject(j, "answer", it->answer);
  if (ok && (o->task == TK_MULTIVALUE || o->task == TK_MULTIQUERY || o->task == TK_VARTRACK)) {
    cJSON *a = cJSON_AddArrayToObject(j, "answers");
    ok = a != NULL;
    for (int i = 0; ok && i < it->n_answers; i++) {
      cJSON *s = cJSON_CreateString(it->answers[i]);
      ok = s && cJSON_AddItemToArray(a, s);
      if (!ok) cJSON_Delete(s);
    }
  }
  cJSON *offs = ok ? cJSON_AddArrayToObject(j, "needle_offsets") : NULL;
  ok = ok && offs;
  for (int i = 0; ok && i < it->n_needles; i++) {
    cJSON *n = cJSON_CreateNumber((double)it->needle_offsets[i]);
    ok = n && cJSON_AddItemToArray(offs, n);
    if (!ok) cJSON_Delete(n);
  }
  char *text = ok ? cJSON_PrintUnformatted(j) : NULL;
  cJSON_Delete(j);
  return text;
}

int tk_gen_task_parse(int argc, char **argv, tk_gen_args *g) {
  memset(g, 0, sizeof *g);
  tk_options_init(&g->o, TK_PASSKEY);
  g->items = 1;
  g->format = TK_FORMAT_TEXT;
  tk_options o = g->o;
  bool have_task = false, have_length = false;
  size_t length = 0;
  uint64_t seed = 0, items = 1, n;
  tk_format format = TK_FORMAT_TEXT;
  cli_args args;
  /* every command's tables, so that another command's option is named as
   * such */
  cli_args_init(&args, &tk_gen_task_command, hsac_commands, argc, argv);
  const char *val;
  int id;
  while ((id = cli_next(&args, &val)) != CLI_END) {
    switch (id) {
    case CLI_ERROR: return 2;
    case CLI_HELP: cli_print_help(&tk_gen_task_command, stdout); return 0;
    case CLI_OPERAND: return gt_usage_error("gen-task takes options only, not '%s'", val);
    case G_TASK: {
      int t = tk_task_parse(val);
      if (t < 0)
        return gt_usage_error(
            "--task expects passkey, multikey, multivalue, multiquery or vartrack, not '%s'", val);
      o.task = (tk_task)t;
      have_task = true;
      break;
    }
    case G_NEEDLE: {
      int k = tk_needle_parse(val);
      if (k < 0) return gt_usage_error("--needle expects number, word or uuid, not '%s'", val);
      o.needle = (tk_needle)k;
      break;
    }
    case G_LENGTH:
      if (!parse_length(val, &length))
        return gt_usage_error("--length expects a size from 1 to %zu such as 4096 or 16K, not '%s'",
                              TK_MAX_LENGTH, val);
      have_length = true;
      break;
    case G_SEED:
      if (!parse_u64(val, 0, INT64_MAX, &seed))
        return gt_usage_error("--seed expects a non-negative integer, not '%s'", val);
      break;
    case G_COUNT:
      if (!parse_u64(val, 1, TK_MAX_COUNT, &n))
        return gt_usage_error("--count expects 1..%d, not '%s'", TK_MAX_COUNT, val);
      o.count = (int)n;
      break;
    case G_CHAINS:
      if (!parse_u64(val, 1, TK_MAX_CHAINS, &n))
        return gt_usage_error("--chains expects 1..%d, not '%s'", TK_MAX_CHAINS, val);
      o.chains = (int)n;
      break;
    case G_DEPTH: {
      char *end;
      errno = 0;
      double d = strtod(val, &end);
      if (errno || end == val || *end || !(d >= 0 && d <= 1))
        return gt_usage_error("--depth expects a number from 0 to 1, not '%s'", val);
      o.depth = d;
      o.has_depth = true;
      break;
    }
    case G_ITEMS:
      if (!parse_u64(val, 1, 1000000, &items))
        return gt_usage_error("--items expects 1..1000000, not '%s'", val);
      break;
    case G_FORMAT:
      if (!strcmp(val, "text")) format = TK_FORMAT_TEXT;
      else if (!strcmp(val, "jsonl")) format = TK_FORMAT_JSONL;
      else if (!strcmp(val, "prompt")) format = TK_FORMAT_PROMPT;
      else return gt_usage_error("--format expects text, jsonl or prompt, not '%s'", val);
      break;
    default: return cli_unhandled(&args);
    }
  }
  if (!have_task)
    return gt_usage_error("%s", "no task: --task passkey|multikey|multivalue|multiquery|vartrack");
  if (!have_length) return gt_usage_error("%s", "no length: --length BYTES");
  if (format == TK_FORMAT_PROMPT && items != 1)
    return gt_usage_error("%s", "--format prompt prints one item (--items 1)");
  if (seed > (uint64_t)INT64_MAX - (items - 1))
    return gt_usage_error("%s", "--seed plus --items passes 2^63 - 1");
  g->o = o;
  g->length = length;
  g->seed = seed;
  g->items = items;
  g->format = format;
  return -1;
}

int tk_cmd_gen_task(int argc, char **argv) {
  tk_gen_args g;
  int rc = tk_gen_task_parse(argc, argv, &g);
  if (rc >= 0) return rc;
  const tk_options o = g.o;
  size_t length = g.length;
  uint64_t seed = g.seed, items = g.items;
  tk_format format = g.format;
  /* Check every item first, so that a usage error prints nothing. */
  char err[256];
  for (uint64_t k = 0; k < items; k++) {
    size_t least;
    tk_status st = tk_min_length(&o, seed + k, &least, err, sizeof err);
    if (st == TK_ENOMEM) {
      fputs("hsac: error: out of memory\n", stderr);
      return 3;
    }
    if (st != TK_OK) return gt_usage_error("%s", err);
    if (length < least)
      return gt_usage_error(
          "--length %zu is too short for %s with seed %llu: it needs at least %zu", length,
          task_names[o.task], (unsigned long long)(seed + k), least);
  }
  for (uint64_t k = 0; k < items; k++) {
    tk_item it;
    tk_status st = tk_generate(&o, length, seed + k, &it, err, sizeof err);
    if (st == TK_ENOMEM) {
      fputs("hsac: error: out of memory\n", stderr);
      return 3;
    }
    if (st != TK_OK) return gt_usage_error("%s", err);
    if (format == TK_FORMAT_PROMPT) {
      fwrite(it.prompt, 1, it.prompt_len, stdout);
    } else if (format == TK_FORMAT_TEXT) {
      if (k) fputc('\n', stdout);
      fwrite(it.prompt, 1, it.prompt_len, stdout);
      printf("\n%s\n", it.answer);
    } else {
      char *line = item_json(&o, &it, seed + k, length);
      if (!line) {
        tk_item_free(&it);
        fputs("hsac: error: out of memory\n", stderr);
        return 3;
      }
      fputs(line, stdout);
      fputc('\n', stdout);
      free(line);
    }
    tk_item_free(&it);
    if (ferror(stdout)) break;
  }
  if (fflush(stdout) != 0 || ferror(stdout)) {
    fprintf(stderr, "hsac: error: cannot write the output: %s\n", strerror(errno));
    return 1;
  }
  return 0;
}
