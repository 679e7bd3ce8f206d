/* DAgger for shrinking-horizon models (Ross, Gordon and Bagnell, 2011): the states a model's own
 * closed loop visits, labelled with the expert's plan for the steps left. A model trained only on
 * tails of expert solutions sees, in closed loop, states a little off those solutions, where it
 * was never taught; these samples teach it there. */
#ifndef TRC_DAGGER_H
#define TRC_DAGGER_H

#include <stddef.h>
#include <stdint.h>

#include "trc/dataset.h"
#include "trc/model.h"

typedef struct trc_dagger_opts {
    int per_sample; /* visited states labelled per problem (distinct steps of 1..T-1) */
    uint64_t seed;  /* which steps */
    int threads;    /* model and expert threads (the samples do not depend on it) */
} trc_dagger_opts;

typedef struct trc_dagger_summary {
    size_t labelled;    /* rows written */
    size_t unconverged; /* states whose expert solve did not converge (left out) */
    double landed_rate; /* of the closed loop that visited them (NAN: the system has no task
                           metric), and its mean final error */
    double err_mean;
} trc_dagger_summary;

/* Runs the closed loop of `model` (it must read the time left: cfg.time_left) from every problem
 * of ds (whole problems with generation settings: the expert, its parameters, dt and bound are
 * ds->settings'), then labels per_sample of the states it visited, at steps t drawn from
 * 1..T-1, with the expert solved from there for the T-t steps left: rows of initial state x_t,
 * the target, the expert's T-t controls followed by zeros, steps_left T-t (as
 * trc_dataset_add_tails' rows). out has no trajectories nor costs. summary may be NULL. */
int trc_dagger_collect(const trc_model *model, const trc_dataset *ds, const trc_dagger_opts *opts,
                       trc_dataset *out, trc_dagger_summary *summary);

/* The rows of a then the rows of b (same s, m, T): steps_left kept (T for the rows of a dataset
 * without it), trajectories and costs only when both have them; a's settings. */
int trc_dataset_concat(const trc_dataset *a, const trc_dataset *b, trc_dataset *out);

#endif
