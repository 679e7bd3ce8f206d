/* Training objectives: what a trainer's iterates are scored by. A trainer computes the network's
 * iterates (the controls after the initial generator and after each outer cycle); an objective
 * turns them into a loss and the gradient of that loss at every iterate, which the trainer's
 * backward then carries through the network. One ops table per objective
 * (core/src/train/<name>.c, registered by one line in core/src/train/objectives.h); "mse" (the
 * original's imitation loss on the last iterate) is the default. Adding one: docs/extending.md. */
#ifndef TRC_OBJECTIVE_H
#define TRC_OBJECTIVE_H

#include <stddef.h>

#include "trc/system.h"

/* One batch as an objective sees it. Arrays are row-major; iterates is [(K+1), B, U]. */
typedef struct trc_objective_batch {
    size_t B;
    int K, U, s, m, T;
    float bound;
    const float *x0, *target; /* [B, s] */
    const float *u_expert;    /* [B, U]: the dataset's controls */
    const trc_system *system; /* may be NULL when the data name no system */
    double dt;
} trc_objective_batch;

typedef struct trc_objective {
    const char *name;
    const char *about; /* one line */
    /* Rows [r0, r1) of the batch: returns their share of the loss (summed in row order, before
     * finish) and writes their rows of grad [(K+1), B, U], d loss / d iterate. Called from the
     * trainer's threads on disjoint rows. */
    double (*rows)(const trc_objective_batch *b, const float *iterates, size_t r0, size_t r1,
                   float *grad);
    /* The loss from the sum of every row's share. */
    double (*finish)(const trc_objective_batch *b, double sum);
    int final_only; /* 1 when only the last iterate has a gradient */
    /* 1 when the gradient is by design not the loss's derivative (stop-gradients: "process");
     * its own tests check it (test_process_parity) */
    int surrogate_gradient;
} trc_objective;

size_t trc_objective_count(void);
const trc_objective *trc_objective_at(size_t i);
/* NULL with trc_errmsg listing the known ones (TRC_ENOTFOUND) when unknown. */
const trc_objective *trc_objective_find(const char *name);

/* The objective a trainer (model.h) scores its iterates with ("mse" until set), with the system
 * and time step of the data (NULL and 0 when unknown; objectives that simulate need them). */
struct trc_trainer;
int trc_trainer_set_objective(struct trc_trainer *tr, const trc_objective *objective,
                              const trc_system *system, double dt);

#endif
