/* tasks.h - deterministic synthetic long-context tasks (docs/tasks.md).
 *
 * RULER-style evaluation items over byte-level text: a passkey (single
 * needle in a haystack), multi-key, multi-value and multi-query needles,
 * and variable tracking.  Each item is a prompt of exactly the requested
 * number of bytes (context + question, printable ASCII and newlines) that
 * ends where the answer begins, and the expected answer: the bytes the
 * model must generate next.
 *
 * An item depends only on (options, length, seed): the generator uses its
 * own splitmix64 streams and integer arithmetic only, so the
 * bytes are the same on every machine.  The needles, keys, values, depths
 * and question depend on the options and the seed but not on the length,
 * so one seed at several lengths asks the same question.
 *
 * Library code: nothing is printed, nothing exits; errors come back as a
 * status and a message.  tk_cmd_gen_task is the `hsac gen-task` command. */
#ifndef HSAC_CLI_TASKS_H
#define HSAC_CLI_TASKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum tk_task {
  TK_PASSKEY,    /* one needle: "The passkey is V. ..." */
  TK_MULTIKEY,   /* count needles with distinct keys; one key is asked */
  TK_MULTIVALUE, /* count needles, one key, distinct values; all are asked */
  TK_MULTIQUERY, /* count needles with distinct keys; all are asked */
  TK_VARTRACK,   /* chains of "VAR X = V." / "VAR Y = VAR X."; one is asked */
  TK_BABI,       /* a story of people moving and carrying objects; where is one? */
  TK_NTASKS
} tk_task;

typedef enum tk_needle {
  TK_NUMBER, /* 7 decimal digits, the first not 0 */
  TK_WORD,   /* a lowercase word that nothing else in the prompt contains */
  TK_UUID,   /* 8-4-4-4-12 lowercase hexadecimal digits (a version 4 UUID) */
  TK_CODE,   /* 8 random lowercase letters: a word no vocabulary can complete */
  TK_NNEEDLES
} tk_needle;

/* The haystack's text (docs/tasks.md, "Filler").  Training styles come
 * first; TK_FILLER_DEVIL and after are held out: train.py refuses them. */
typedef enum tk_filler {
  TK_FILLER_SYNTHETIC, /* fixed and random-word sentences, mixed as the seed draws */
  TK_FILLER_NOISE,     /* five fixed sentences repeated in order (RULER's noise) */
  TK_FILLER_FORTUNES,  /* prose: fortunes-min's fortunes, literature, riddles */
  TK_FILLER_SAYINGS,   /* prose: the fortunes package's people, wisdom, science */
  TK_FILLER_DEVIL,     /* prose: The Devil's Dictionary (dict-devil); held out */
  TK_FILLER_JARGON,    /* prose: The Jargon File (dict-jargon); held out */
  TK_NFILLERS
} tk_filler;
#define TK_FIRST_HELD_OUT_FILLER TK_FILLER_DEVIL

/* The wording of the needles and the question (docs/tasks.md, "Phrasings").
 * Every task has TK_NVARIANTS wordings: variant 0 is the default, variants
 * 4 and 5 are held out, the other 22 (0..3, 6..23) are for training. */
typedef enum tk_phrasing {
  TK_PHRASING_DEFAULT, /* variant 0 only: the original wording */
  TK_PHRASING_TRAIN,   /* one of variants 0..3 and 6..23, by the seed */
  TK_PHRASING_HELDOUT, /* variant 4 or 5, by the seed */
  TK_PHRASING_VARIED,  /* a training variant, each needle and the question
                          also with a lead-in (and a needle with a tail)
                          drawn from tables of their own */
  TK_PHRASING_COMPOSED, /* train's, but half of vartrack's items word their
                           assignments by a grammar of many verbs, orders
                           and leads (needle_variant -1) */
  TK_PHRASING_NONCE,    /* composed's, but two in five of its grammar items
                           use a made-up verb in either order, so that only
                           the chain tells which name is assigned */
  TK_NPHRASINGS
} tk_phrasing;
enum { TK_NVARIANTS = 24, TK_FIRST_HELDOUT_VARIANT = 4, TK_HELDOUT_VARIANTS = 2 };
/* Whether variant v is one training uses. */
static inline int tk_training_variant(int v) {
  return v < TK_FIRST_HELDOUT_VARIANT || v >= TK_FIRST_HELDOUT_VARIANT + TK_HELDOUT_VARIANTS;
}

typedef enum tk_status {
  TK_OK = 0,
  TK_EINVAL,    /* options out of range */
  TK_ETOOSHORT, /* the length cannot hold the needles, the question and one filler sentence */
  TK_ENOMEM,
} tk_status;

/* Limits of the options. */
enum { TK_MAX_COUNT = 100, TK_MAX_CHAINS = 10 };
#define TK_MAX_LENGTH ((size_t)2147483647) /* 2^31 - 1, as the runtime's sessions */

typedef struct tk_options {
  tk_task task;
  tk_needle needle; /* the kind of the values (vartrack: the chains' values) */
  /* 0 means the task's default.  passkey: 1 (the only value allowed);
   * multikey: needles (keys), 4; multivalue: values of the one key, 4;
   * multiquery: keys, all asked, 4; vartrack: variables per chain, 5;
   * babi: moves in the story, 6 (2..TK_MAX_COUNT).  babi ignores needle. */
  int count;
  int chains;   /* vartrack: chains, one asked and the rest distractors; 0: 2 */
  /* passkey, multikey: when has_depth, the asked needle lies at depth, 0
   * (the filler's start) .. 1 (its end); else the seed chooses. */
  bool has_depth;
  double depth;
  tk_filler filler;
  tk_phrasing phrasing;
  /* The sentences of a prose style (cli/corpus.h), loaded by the caller
   * and not owned; NULL for the synthetic styles. */
  const struct tk_corpus *corpus;
} tk_options;

/* The kind of an item's question, where a task asks several: babi's
 * "now" (where a person is: their last move), "object" (where an object
 * is: who picked it up, then that one's last move) and "before" (where a
 * person was before a place: two of their moves).  TK_KIND_NONE for the
 * tasks that ask one kind.  Results are reported per kind (hsac eval), as
 * BABILong reports its qa1-qa3 apart. */
typedef enum tk_kind {
  TK_KIND_NONE,
  TK_KIND_NOW,
  TK_KIND_OBJECT,
  TK_KIND_BEFORE,
  TK_NKINDS
} tk_kind;

/* One generated item.  Every pointer is malloc'ed; tk_item_free frees them. */
typedef struct tk_item {
  char *prompt; /* prompt_len bytes and a terminating NUL */
  size_t prompt_len;
  char *answer;  /* the expected continuation: the answers joined by ", " */
  char **answers;
  int n_answers; /* 1 for passkey and multikey */
  char *value; /* vartrack: the asked value, whose chain the answer names; else NULL */
  /* Byte offset in the prompt of each needle sentence, in prompt order
   * (vartrack: every assignment, distractor chains included). */
  size_t *needle_offsets;
  size_t *needle_lengths; /* the bytes of each needle sentence */
  int n_needles;
  /* The needles the answer depends on (indices into needle_offsets): the
   * asked needle (passkey, multikey), every needle (multivalue,
   * multiquery), the asked chain (vartrack), the facts that decide it
   * (babi: the person's last move; the pick-up and the holder's last move). */
  int *support;
  int n_support;
  int variant; /* the question's phrasing variant, 0..TK_NVARIANTS - 1 */
  int needle_variant; /* the needles' variant: the question's, but drawn apart
                       * under the training phrasings; -1 for babi and
                       * for composed's grammar-worded vartrack items */
  int lead_variant; /* babi under the training phrasings: the variant whose
                     * answer lead ends the question (drawn apart from the
                     * question sentence's), else -1 */
  tk_kind kind; /* the question's kind (babi), else TK_KIND_NONE */
} tk_item;

/* The options with every default: the task, number needles, depth by the
 * seed (a zeroed tk_options is the same, for TK_PASSKEY). */
void tk_options_init(tk_options *o, tk_task task);

/* Generates the item of (o, length, seed) into *it (zeroed first; on an
 * error it holds nothing to free).  length counts every byte of the prompt.
 * On an error, err (when not NULL) receives a message of at most errsize
 * bytes; TK_ETOOSHORT names the least length that works for this seed. */
tk_status tk_generate(const tk_options *o, size_t length, uint64_t seed, tk_item *it,
                      char *err, size_t errsize);

/* The least length tk_generate accepts for (o, seed), into *min_length. */
tk_status tk_min_length(const tk_options *o, uint64_t seed, size_t *min_length, char *err,
                        size_t errsize);

void tk_item_free(tk_item *it);

/* Names as the command spells them ("passkey", "multikey", "multivalue",
 * "multiquery", "vartrack", "babi"; "number", "word", "uuid", "code"); parse
 * returns -1 for an unknown name. */
const char *tk_task_name(tk_task t);
const char *tk_needle_name(tk_needle n);
const char *tk_kind_name(tk_kind k); /* "now", "object", "before"; "" for TK_KIND_NONE */
int tk_task_parse(const char *s);
int tk_needle_parse(const char *s);
const char *tk_filler_name(tk_filler f);   /* "synthetic", "noise", "fortunes", ... */
int tk_filler_parse(const char *s);
bool tk_filler_is_prose(tk_filler f);      /* needs a corpus */
bool tk_filler_held_out(tk_filler f);
/* "default", "train", "heldout", "varied", "composed", "nonce" */
const char *tk_phrasing_name(tk_phrasing p);
int tk_phrasing_parse(const char *s);

/* Whether n bytes of text contain, ignoring case, a word the tasks put in
 * needles or questions (a value word, a babi name, place or object,
 * "passkey", "magic"): prose holding one is not used as filler. */
bool tk_reserved_text(const char *s, size_t n);

/* Checks the generator's word lists (for the tests): returns 0 when no
 * value word occurs inside a filler word, a fixed sentence, a key word, a
 * fixed text or another value word, and the filler has words of every
 * length 1..9; else 1 and a message in err. */
int tk_self_check(char *err, size_t errsize);

/* `hsac gen-task OPTIONS`: argv holds the options only (main.c passes
 * argc - 2, argv + 2).  Prints items to stdout; returns the exit status:
 * 0, 1 (output error), 2 (usage error) or 3 (out of memory). */
int tk_cmd_gen_task(int argc, char **argv);

/* Its parse alone (what the fuzzer drives): the options into *g, every
 * value checked; returns -1 to go on, else the exit status (0 after
 * --help, 2 after a usage error, both printed).  Generates nothing. */
typedef enum tk_format { TK_FORMAT_TEXT, TK_FORMAT_JSONL, TK_FORMAT_PROMPT } tk_format;
typedef struct tk_gen_args {
  tk_options o;
  size_t length;
  uint64_t seed, items;
  tk_format format;
  const char *corpus_dir; /* --corpus-dir: where a prose style's files are */
} tk_gen_args;
int tk_gen_task_parse(int argc, char **argv, tk_gen_args *g);

/* Its options and help (cli/args.h), for `hsac help`. */
struct cli_command;
extern const struct cli_command tk_gen_task_command;

#endif
