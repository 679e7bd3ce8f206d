/* Polishing: a network's control sequence as the warm start of an iterative expert (ilqr), a
 * bounded number of iterations towards that expert's optimum. One implementation for every
 * caller: `trc eval/compare --polish` and trcd's /v1/control "polish" both come here.
 *
 *   trc_polish_check        can `expert` polish on `sys`? (names the reason when not)
 *   trc_polish_plan_create  the expert's plan with an iteration budget
 *   trc_polish_run          one sample: guess -> polished controls, iterations, J before/after */
#ifndef TRC_POLISH_H
#define TRC_POLISH_H

#include "trc/expert.h"
#include "trc/system.h"

/* Largest iteration budget a polish may ask for (the expert's own max_iters bound). */
#define TRC_POLISH_MAX_ITERS 100000

typedef struct trc_polish_result {
    int iterations;     /* backward passes used (<= the plan's budget) */
    int converged;      /* the expert's convergence test held at the returned controls */
    double cost_before; /* the expert's objective J at the guess (clipped to the bound) */
    double cost_after;  /* J at the polished controls: never above cost_before */
    double ms;          /* wall time of the polish (reporting only) */
} trc_polish_result;

/* 0 when `expert` can polish on sys (sys NULL: checks the expert alone), else TRC_ENOTFOUND
 * (unknown expert: the message lists the known ones) or TRC_EUNSUPPORTED (an expert that cannot
 * start from a guess, or a system it does not accept, e.g. one without Jacobians). */
int trc_polish_check(const char *expert, const trc_system *sys);

/* The plan of `expert` for (sys, dt, T, bound) with params (descriptor order, 0 = default; NULL =
 * all defaults) and the iteration budget max_iters (1..TRC_POLISH_MAX_ITERS, else TRC_EINVAL
 * naming max_iters); trc_polish_check's failures first. Free with trc_expert_plan_free. */
int trc_polish_plan_create(const char *expert, const trc_system *sys, double dt, int T,
                           double bound, const double *params, int max_iters,
                           trc_expert_plan **out);

/* One sample: x0, target [s], the guess u_init [T*m] -> u [T*m] (may alias nothing), res (may
 * be NULL). Thread-safe on a shared plan. TRC_ENUMERIC when the guess's cost is not finite. */
int trc_polish_run(const trc_expert_plan *plan, const double *x0, const double *target,
                   const double *u_init, double *u, trc_polish_result *res);

#endif
