/* Rollout and score: the one function that simulates control sequences from their initial
 * states with a system's step (double arithmetic) and scores them against their targets. trcd's
 * /v1/control, `trc predict` and evaluation (trc_eval_controls) all call it, so a model's answer
 * is simulated and scored the same way everywhere. */
#ifndef TRC_ROLLOUT_H
#define TRC_ROLLOUT_H

#include <stddef.h>

#include "trc/system.h"

/* What to fill; every pointer may be NULL (not wanted). Per sample i: */
typedef struct trc_rollout_out {
    float *traj;         /* [n, T+1, s] states as float32 */
    double *traj_d;      /* [n, T+1, s] states in double */
    double *final_state; /* [n, s] x_T */
    double *final_error; /* [n] |x_T - target| (L2; system.h error_s) */
    double *cost;        /* [n] control effort sum_t |u_t|^2 */
} trc_rollout_out;

/* x0, target: [n, s]; u: [n, T, m] (float32, used as given). TRC_EINVAL for bad arguments,
 * TRC_ENUMERIC naming the first sample whose trajectory or cost is not finite (the outputs
 * before it are filled). */
int trc_rollout_score(const trc_system *sys, double dt, int T, size_t n, const float *x0,
                      const float *target, const float *u, const trc_rollout_out *out);

#endif
