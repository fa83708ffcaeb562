/* eval.h - `hsac eval`: scores a model on gen-task's tasks (docs/tasks.md,
 * "Evaluation").
 *
 * For every task, filler style and length, N items (seeds S..S+N-1) are
 * generated, prefilled into one session (reset between items) and answered
 * greedily; the output is scored by whether it starts with the answer
 * (docs/tasks.md, "the answer convention"), and multi-answer tasks
 * also by RULER's partial score (the share of answers the output holds).
 * The table goes to stdout with each score's 95% interval (Wilson's: the
 * true rates these items leave plausible), progress to
 * stderr; --csv writes every item, --json-out the table; --baseline
 * compares the items with those of an earlier --csv, item by item. */
#ifndef HSAC_CLI_EVAL_H
#define HSAC_CLI_EVAL_H

#include <stdbool.h>
#include <stddef.h>

#include "cli/commands.h"

struct hsart_model;

/* The score of one output against an item's answers: exact is 1 when the
 * output starts with the joined answer; score is exact for one answer, and
 * the share of answers that occur in the output for several. */
typedef struct hsac_eval_score {
  double score;
  bool exact;
} hsac_eval_score;
hsac_eval_score hsac_eval_score_output(const char *output, size_t n, const char *answer,
                                       char *const *answers, int n_answers);

/* The 95% Wilson score interval [*lo, *hi] of a share p (0..1) measured on
 * n >= 1 items: exact in form for scores of 0 or 1, and conservative for
 * RULER's partial scores (a score in [0, 1] with mean p has a variance of
 * at most p (1 - p), the binomial one it assumes).  n < 1 gives [0, 1]. */
void hsac_eval_wilson(double p, long long n, double *lo, double *hi);

/* The two-sided exact sign test: the chance that a fair coin over
 * better + worse items splits at least as unevenly as better : worse
 * (items scored alike carry no sign and are left out).  1 for none. */
double hsac_eval_sign_test(long long better, long long worse);

/* Runs the evaluation the options describe on a loaded model.  Returns the
 * exit status: 0; 1 (a file could not be read or written, a session failed,
 * or a row scored below --min-score); 2 (a length too short for an item);
 * 3 (out of memory).  Messages go to stderr. */
int hsac_eval_run(struct hsart_model *m, const hsac_cli *o);

#endif
