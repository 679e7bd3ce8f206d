/* Experts: optimal-control solvers that produce the controls the network imitates, chosen by
 * name. A plan holds everything that depends only on (system, dt, T, bound, weights) and is
 * computed once; solving a sample is then a few small matrix-vector products.
 *   min_energy  exact discrete minimum-energy controls through the reachability Gramian
 *   lqr         infinite-horizon LQR (DARE), u = -K (x - target), the original's generator
 *   lqr_finite  finite-horizon LQR, time-varying gains from the backward Riccati recursion
 * All three need a linear system (trc_system.linear); for a nonlinear one plan creation fails
 * with TRC_EUNSUPPORTED rather than silently linearizing. Controls are clipped to [-b, b]. */
#ifndef TRC_EXPERT_H
#define TRC_EXPERT_H

#include <stddef.h>

#include "trc/system.h"

/* Quadratic weights of the LQR experts: Q = q I (s x s), R = r I (m x m), Qf = qf Q.
 * A field <= 0 in trc_expert_plan_create's input means "default" (q 1, r 0.1, qf 100). */
typedef struct trc_expert_weights {
    double q, r, qf;
} trc_expert_weights;

#define TRC_EXPERT_DEFAULT_Q 1.0
#define TRC_EXPERT_DEFAULT_R 0.1
#define TRC_EXPERT_DEFAULT_QF 100.0

/* Per-sample costs of a solution. */
typedef struct trc_expert_cost {
    double effort; /* sum over steps of |u_t|^2 */
    /* The quadratic cost the expert minimizes, with e_t = x_t - target:
     *   lqr:        sum_{t<T} e_t' Q e_t + u_t' R u_t
     *   lqr_finite: the same + e_T' Qf e_T
     *   min_energy: equal to effort (its objective is sum |u_t|^2). */
    double objective;
    int clipped; /* control entries that hit the bound */
} trc_expert_cost;

typedef struct trc_expert_plan trc_expert_plan;

size_t trc_expert_count(void);
const char *trc_expert_name_at(size_t i);
/* 0 when known, else TRC_ENOTFOUND with a message listing the known experts. */
int trc_expert_check_name(const char *name);
/* 1 when the expert reads the LQR weights. */
int trc_expert_uses_weights(const char *name);

/* Builds the plan. weights may be NULL (defaults). Fails with TRC_ENOTFOUND (unknown name),
 * TRC_EINVAL (bad dt, T, bound, weights), TRC_EUNSUPPORTED (nonlinear system, or a target not
 * reachable in T steps for min_energy) or TRC_ENUMERIC (Riccati iteration did not converge). */
int trc_expert_plan_create(const char *name, const trc_system *sys, double dt, int T, double bound,
                           const trc_expert_weights *weights, trc_expert_plan **out);
void trc_expert_plan_free(trc_expert_plan *plan);

/* Solves one sample. x0, target: [s] -> u: [T*m] (clipped), cost may be NULL.
 * Thread-safe on a shared plan. Returns TRC_ENUMERIC if a result is not finite. */
int trc_expert_solve(const trc_expert_plan *plan, const double *x0, const double *target, double *u,
                     trc_expert_cost *cost);

/* Read-only view of a plan's matrices (for tests and reports). Pointers live with the plan. */
typedef struct trc_expert_info {
    const char *name;
    int s, m, T;
    double dt, bound;
    trc_expert_weights weights; /* resolved (defaults filled) */
    const double *A, *B;        /* discrete dynamics [s*s], [s*m] */
    const double *W; /* min_energy: reachability Gramian sum_k A^k B B' A'^k [s*s], else NULL */
    const double *P; /* lqr: DARE solution [s*s]; lqr_finite: P_0..P_T [(T+1)*s*s]; else NULL */
    const double *K; /* lqr: gain [m*s]; lqr_finite: K_0..K_{T-1} [T*m*s]; else NULL */
} trc_expert_info;

void trc_expert_plan_info(const trc_expert_plan *plan, trc_expert_info *out);

#endif
