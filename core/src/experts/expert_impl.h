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
