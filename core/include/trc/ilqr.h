/* Box-constrained iterative LQR for any system of the table that has Jacobians, and the
 * finite-horizon LQR on the system's linearisation at the target (its warm start, and the
 * lqr_finite expert on a nonlinear system). Both minimise, with e_t = x_t - x*,
 *
 *   J(u) = sum_{t<T} [ e_t' Q e_t + u_t' R u_t ] + e_T' Qf e_T,   -b <= u_t <= b,
 *
 * where x_{t+1} = sys->step(x_t, u_t, dt) exactly (the true dynamics, never the model).
 *
 * The solver (Tassa, Mansard, Todorov 2014, "Control-limited differential dynamic
 * programming"): a Gauss-Newton backward pass whose control step solves a small box QP by
 * projected Newton (so the feedback only acts on the controls off their bounds), a forward
 * rollout with a backtracking line search on the actual cost, and a Levenberg-style
 * regularisation of Quu raised on a failed pass and lowered on a good one. It stops when the
 * projected gradient of J (from an adjoint pass, so it is the true gradient of the true J)
 * is small, or when a step no longer lowers J measurably. Several warm starts are run and
 * the lowest cost kept; everything is deterministic (no randomness, no timing in the math).
 *
 * A plan (trc_ilqr) is immutable and shared by threads; each thread owns a trc_ilqr_work. */
#ifndef TRC_ILQR_H
#define TRC_ILQR_H

#include "trc/system.h"

/* Warm starts (bits of trc_ilqr_options.starts). */
enum {
    TRC_ILQR_START_ZERO = 1,  /* u = 0 */
    TRC_ILQR_START_LQR = 2,   /* the linearised-LQR feedback rollout (trc_ilqr_lqr_rollout) */
    TRC_ILQR_START_GIVEN = 4, /* the caller's u_init (a previous solution, a network's guess) */
};

typedef struct trc_ilqr_options {
    int max_iters;   /* iterations per warm start (default 100) */
    double tol_grad; /* converged when the relative projected gradient is <= this (1e-7) */
    double tol_cost; /* stop when a step lowers J by less than this, relative (1e-12) */
    /* Quu + reg I: starts at reg_init (0), x10 on a failed pass or line search (at least
     * reg_min, 1e-6), /10 on success (0 below reg_min); gives up above reg_max (1e10) */
    double reg_init, reg_min, reg_max;
    int starts; /* TRC_ILQR_START_* bits (default all three) */
} trc_ilqr_options;

/* The problem; Q, R, Qf are copied at plan creation. R must be positive definite, Q and Qf
 * positive semi-definite (symmetric). */
typedef struct trc_ilqr_problem {
    const trc_system *sys;
    double dt;
    int T;
    double bound;
    const double *Q;  /* [s*s] */
    const double *R;  /* [m*m] */
    const double *Qf; /* [s*s] */
} trc_ilqr_problem;

typedef struct trc_ilqr_result {
    double cost;    /* J at the returned controls */
    double grad;    /* relative projected gradient there: max_i |u_i - clip(u_i - g_i)| / (1 + J) */
    int iterations; /* backward passes, summed over the warm starts run */
    int converged;  /* grad <= tol_grad at the returned controls */
    int start;      /* the TRC_ILQR_START_* that gave them */
    double solve_ms; /* wall time of the whole solve (reporting only) */
} trc_ilqr_result;

typedef struct trc_ilqr trc_ilqr;
typedef struct trc_ilqr_work trc_ilqr_work;

/* Fills the defaults. */
void trc_ilqr_options_default(trc_ilqr_options *opt);

/* Validates and builds the plan (opt NULL = defaults). TRC_EINVAL names the bad field (dt, T,
 * bound, R not positive definite, Q or Qf not positive semi-definite or not symmetric, an
 * option out of range); TRC_EUNSUPPORTED for a system without Jacobians or too large. */
int trc_ilqr_create(const trc_ilqr_problem *pb, const trc_ilqr_options *opt, trc_ilqr **out);
void trc_ilqr_free(trc_ilqr *plan);

/* Scratch for one thread (NULL on allocation failure, with trc_errmsg set). */
trc_ilqr_work *trc_ilqr_work_create(const trc_ilqr *plan);
void trc_ilqr_work_free(trc_ilqr_work *w);

/* Solves one problem. x0, target: [s]; u_init: [T*m] or NULL (START_GIVEN is skipped when
 * NULL) -> u: [T*m] (within the bound), res (may be NULL). TRC_ENUMERIC when no warm start
 * gives a finite cost. */
int trc_ilqr_solve(const trc_ilqr *plan, trc_ilqr_work *w, const double *x0, const double *target,
                   const double *u_init, double *u, trc_ilqr_result *res);

/* Finite-horizon LQR on the linearisation at the target, applied as time-varying feedback
 * u_t = clip(-K_t e_t - F_t c) through the true dynamics. The linear model is
 * e_{t+1} = A e_t + B u_t + c:
 *   - a system with a continuous-time field (sys->field_jacobian): explicit Euler at (x*, 0),
 *     A = I + dt Fx, B = dt Fu, c = dt f(x*, 0), as the original project linearised Van der
 *     Pol (at the origin, its only target);
 *   - a discrete-time system: A, B = sys->jacobian at (x*, 0), c = step(x*, 0) - x* (exact for
 *     a linear system, where this is the lqr_finite expert).
 * x0, target: [s] -> u: [T*m]; cost (may be NULL) = J(u). */
int trc_ilqr_lqr_rollout(const trc_ilqr *plan, trc_ilqr_work *w, const double *x0,
                         const double *target, double *u, double *cost);

/* J(u) by a rollout through the true dynamics. */
double trc_ilqr_cost(const trc_ilqr *plan, trc_ilqr_work *w, const double *x0, const double *target,
                     const double *u);

#endif
