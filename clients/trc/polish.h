/* `--polish EXPERT[:ITERS]` of trc compare: a model's sequences as the warm start of an
 * iterative expert (trc_expert_solve_from), a few iterations to its optimum. */
#ifndef TRC_CLI_POLISH_H
#define TRC_CLI_POLISH_H

#include "trc/dataset.h"
#include "trc/system.h"

/* Parses "ilqr" or "ilqr:5" into name (size bytes) and *iters (default 5); prints the error. */
int cli_polish_parse(const char *cmd, const char *spec, char *name, size_t size, int *iters);

/* Polishes the model's controls u_model [n, T*m] of ds with `expert` for at most iters
 * iterations into *u_out (malloc'd), printing one line: iterations and time per problem from
 * the model's guess vs the dataset's recorded cold start, and the cost gap to the dataset's
 * costs after 1, 2, 5 and iters iterations; *row_json (malloc'd) holds the same. sys and dt:
 * what the data is evaluated with (trc_eval_resolve). */
int cli_polish(const char *cmd, const trc_dataset *ds, const trc_system *sys, double dt,
               const char *expert, int iters, const float *u_model, float **u_out, char **row_json);

#endif
