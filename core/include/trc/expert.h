/* Experts: optimal-control solvers that produce the controls the network imitates. Each expert
 * is an ops table (core/src/experts/<name>.c, registered by one line in experts/table.h): its
 * name, the meaning of the costs it records, which systems it accepts, its own parameter
 * descriptors (trc/option.h) and plan/solve/free. A plan holds everything that depends only on
 * (system, dt, T, bound, parameters) and is computed once; solving a sample is then cheap.
 *   min_energy  exact discrete minimum-energy controls through the reachability Gramian
 *   lqr         infinite-horizon LQR (DARE), u = -K (x - target), the original's generator
 *   lqr_finite  finite-horizon LQR, time-varying gains from the backward Riccati recursion; on a
 *               nonlinear system the LQR of its Euler linearisation at the target, applied as
 *               feedback through the true dynamics (the original project's Van der Pol expert)
 *   ilqr        box-constrained iterative LQR on the true dynamics (trc/ilqr.h), any system
 *               with Jacobians: the optimum of the lqr_finite cost under |u| <= b
 * min_energy and lqr accept linear systems only (trc_system.linear); for a nonlinear one plan
 * creation fails with TRC_EUNSUPPORTED. Controls are within [-b, b].
 * Adding an expert: docs/extending.md. */
#ifndef TRC_EXPERT_H
#define TRC_EXPERT_H

#include <stddef.h>

#include "trc/option.h"
#include "trc/system.h"

/* Most parameters an expert may have; their values travel as double[TRC_EXPERT_MAX_PARAMS] in
 * the order of the expert's descriptors (each descriptor's offset is its index * sizeof(double);
 * TRC_OPT_DOUBLE or TRC_OPT_INT stored as double is not supported: use TRC_OPT_DOUBLE). A value of
 * 0 means the descriptor's default. */
#define TRC_EXPERT_MAX_PARAMS 8

/* Per-sample costs of a solution. */
typedef struct trc_expert_cost {
    double effort; /* sum over steps of |u_t|^2 */
    /* The cost the expert minimizes (what a dataset's `costs` hold; its meaning is the expert's
     * cost_label), e.g. with e_t = x_t - target:
     *   lqr:        sum_{t<T} e_t' Q e_t + u_t' R u_t
     *   lqr_finite, ilqr: the same + e_T' Qf e_T
     *   min_energy: equal to effort (its objective is sum |u_t|^2). */
    double objective;
    int clipped; /* control entries that hit the bound */
    /* Iterative experts (trc_expert.iterative: ilqr): backward passes, whether the relative
     * projected gradient met the tolerance, its value, and the solve's wall time in ms.
     * Others: 0, converged 1. */
    int iterations, converged;
    double grad, solve_ms;
    /* solve_from only: the objective at the guess (clipped to the bound), where it started;
     * NAN otherwise. */
    double start_objective;
} trc_expert_cost;

typedef struct trc_expert_plan trc_expert_plan;
typedef struct trc_expert_info trc_expert_info;

/* One expert. Plans are immutable after plan(): solve must be thread-safe on a shared plan. */
typedef struct trc_expert {
    const char *name;
    const char *about;      /* one line */
    const char *cost_label; /* what its costs are: "sum_u2", "lqr_quadratic", ... */
    /* 0 when the expert can solve problems of sys, else a trc_fail status (TRC_EUNSUPPORTED)
     * whose message says why. */
    int (*accepts)(const trc_system *sys);
    const trc_option *params; /* descriptors over double[TRC_EXPERT_MAX_PARAMS], nparams */
    size_t nparams;
    /* Builds p->state from p's generic fields (sys, s, m, T, dt, bound, params resolved). */
    int (*plan)(trc_expert_plan *p);
    /* x0, target: [s] -> u: [T*m] (clipped) and its costs. TRC_ENUMERIC if not finite. */
    int (*solve)(const trc_expert_plan *p, const double *x0, const double *target, double *u,
                 trc_expert_cost *cost);
    void (*free)(void *state);
    /* Optional: fills the matrices of trc_expert_info it has (NULL = none). */
    void (*info)(const trc_expert_plan *p, trc_expert_info *out);
    int iterative; /* 1: solves iterate and report iterations/converged (datasets record them) */
    /* Optional: iterates from the guess u_init [T*m] only (e.g. a network's answer, "polish"),
     * at most the plan's max_iters. NULL: the expert cannot start from a guess. */
    int (*solve_from)(const trc_expert_plan *p, const double *x0, const double *target,
                      const double *u_init, double *u, trc_expert_cost *cost);
} trc_expert;

size_t trc_expert_count(void);
const trc_expert *trc_expert_at(size_t i);
/* The expert named `name`, or NULL with trc_errmsg listing the known ones (TRC_ENOTFOUND). */
const trc_expert *trc_expert_find(const char *name);
const char *trc_expert_name_at(size_t i);
/* 0 when known, else TRC_ENOTFOUND with a message listing the known experts. */
int trc_expert_check_name(const char *name);
/* The parameter of expert `e` named `name` ("lqr_q"), or NULL. Its value lives at index
 * offset / sizeof(double) of the params array. */
const trc_option *trc_expert_param_find(const trc_expert *e, const char *name);
/* Fills params (TRC_EXPERT_MAX_PARAMS) with the expert's defaults (unused entries 0). */
void trc_expert_params_default(const trc_expert *e, double *params);
/* Resolves 0 to the default and checks every parameter against its descriptor (TRC_EINVAL with
 * a message naming it); in may be NULL (all defaults), out may alias in. */
int trc_expert_params_resolve(const trc_expert *e, const double *in, double *out);

/* Builds the plan. params (values in descriptor order, 0 = default) may be NULL. Fails with
 * TRC_ENOTFOUND (unknown name), TRC_EINVAL (bad dt, T, bound, parameters), TRC_EUNSUPPORTED
 * (a system the expert does not accept, or e.g. a target not reachable in T steps for
 * min_energy) or TRC_ENUMERIC (e.g. a Riccati iteration that did not converge). */
int trc_expert_plan_create(const char *name, const trc_system *sys, double dt, int T, double bound,
                           const double *params, trc_expert_plan **out);
void trc_expert_plan_free(trc_expert_plan *plan);

/* Solves one sample. x0, target: [s] -> u: [T*m] (clipped), cost may be NULL.
 * Thread-safe on a shared plan. Returns TRC_ENUMERIC if a result is not finite. */
int trc_expert_solve(const trc_expert_plan *plan, const double *x0, const double *target, double *u,
                     trc_expert_cost *cost);

/* As trc_expert_solve, iterating from u_init [T*m] alone (ops->solve_from); TRC_EUNSUPPORTED
 * for an expert that cannot start from a guess. */
int trc_expert_solve_from(const trc_expert_plan *plan, const double *x0, const double *target,
                          const double *u_init, double *u, trc_expert_cost *cost);

/* Read-only view of a plan (for tests and reports). Pointers live with the plan. */
struct trc_expert_info {
    const char *name;
    int s, m, T;
    double dt, bound;
    const double *params; /* resolved, in descriptor order */
    size_t nparams;
    const double *A, *B; /* linear experts: discrete dynamics [s*s], [s*m], else NULL */
    const double *W;     /* min_energy: reachability Gramian sum_k A^k B B' A'^k [s*s], else NULL */
    const double *P;     /* lqr: DARE solution [s*s]; lqr_finite: P_0..P_T [(T+1)*s*s]; else NULL */
    const double *K;     /* lqr: gain [m*s]; lqr_finite: K_0..K_{T-1} [T*m*s]; else NULL */
};

void trc_expert_plan_info(const trc_expert_plan *plan, trc_expert_info *out);

#endif
