/* What the expert files share: the plan every expert fills (generic fields set by expert.c,
 * `state` owned by the expert) and small helpers. Internal to libtrc. */
#ifndef TRC_EXPERT_IMPL_H
#define TRC_EXPERT_IMPL_H

#include <stddef.h>
#include <stdlib.h>

#include "trc/expert.h"

struct trc_expert_plan {
    const trc_expert *ops;
    const trc_system *sys;
    int s, m, T;
    double dt, bound;
    double params[TRC_EXPERT_MAX_PARAMS]; /* resolved: defaults filled, checked */
    void *state;                          /* the expert's own, freed by ops->free */
};

struct trc_ilqr;
/* Q = lqr_q diag(cost_q) [s*s], R = lqr_r I [m*m], Qf = lqr_qf Q [s*s] from a plan whose
 * params are (lqr_q, lqr_r, lqr_qf, ...). */
int trc_expert_quadratic_weights(const trc_expert_plan *p, double *Q, double *R, double *Qf);
/* The ilqr solver (trc/ilqr.h) of such a plan (lqr_qf 0 resolved to the system's first);
 * max_iters 0 = the solver's default. In ilqr.c; lqr_finite uses it on nonlinear systems. */
int trc_expert_ilqr_begin(trc_expert_plan *p, int max_iters, struct trc_ilqr **out);

/* n zeroed doubles (at least one). */
static inline double *trc_expert_alloc(size_t n) {
    return calloc(n ? n : 1, sizeof(double));
}

/* v clipped to [-b, b], counting clips. */
static inline double trc_expert_clip(double v, double b, int *clipped) {
    if (v > b) {
        (*clipped)++;
        return b;
    }
    if (v < -b) {
        (*clipped)++;
        return -b;
    }
    return v;
}

#endif
