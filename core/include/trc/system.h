/* The table of dynamical systems: dimensions, labels, defaults, one step function used everywhere
 * (data generation, evaluation, serving), and its Jacobians. Adding a system = one new file
 * (core/src/systems/<name>.c) and one line in core/src/systems/table.h (docs/extending.md). */
#ifndef TRC_SYSTEM_H
#define TRC_SYSTEM_H

#include <stddef.h>

/* Largest state and control dimensions a table entry may have (stack buffers size on these). */
#define TRC_SYSTEM_MAX_S 16
#define TRC_SYSTEM_MAX_M 8

/* A named constant of a system's dynamics (e.g. Van der Pol's mu), listed for reports and the
 * catalogue. */
typedef struct trc_system_param {
    const char *name;
    double value;
    const char *help;
} trc_system_param;

/* One system: a descriptor in its own file (systems/<name>.c, designated initialisers),
 * registered by one line in systems/table.h. */
typedef struct trc_system {
    const char *name;
    const char *about;                /* one line: the dynamics */
    int s;                            /* state dimension */
    int m;                            /* control dimension */
    const char *const *state_names;   /* [s] labels, e.g. {"position", "velocity"} */
    const char *const *control_names; /* [m] labels */
    double dt;                        /* default time step */
    int T;                            /* default horizon (control steps) */
    double bound;                     /* control bound b: controls live in [-b, b] */
    double box_lo, box_hi;    /* default uniform sampling box for initial and target states */
    double success_threshold; /* default: success when the final L2 error is below this */
    int linear;               /* 1 when step() is linear in (x, u): A and B do not depend on x, u */
    /* For a linear time-invariant system, its continuous-time form x' = ct_A x + ct_B u
     * ([s*s], [s*m], row-major), which continuous-time experts (min_energy_ct) need; NULL
     * otherwise. */
    const double *ct_A, *ct_B;
    const trc_system_param *params; /* constants of the dynamics, nparams entries */
    size_t nparams;
    /* x_next = f(x, u) over one step of length dt. x: [s], u: [m], x_next: [s] (may not alias x).
     */
    void (*step)(const double *x, const double *u, double dt, double *x_next);
    /* A = df/dx [s*s], B = df/du [s*m], row-major, at (x, u). NULL: no Jacobians (ilqr and
     * lqr_finite then refuse the system). */
    void (*jacobian)(const double *x, const double *u, double dt, double *A, double *B);
    /* Continuous-time field of a system defined by an ODE (NULL for a discrete-time one):
     * dx = f(x, u) [s]; Fx = df/dx [s*s], Fu = df/du [s*m]. lqr_finite linearises it by Euler. */
    void (*field)(const double *x, const double *u, double *dx);
    void (*field_jacobian)(const double *x, const double *u, double *Fx, double *Fu);
    /* Default sampling box of the targets, {lo, hi}; NULL = the states' box. Van der Pol's
     * {0, 0} is the origin. */
    const double *target_box;
    /* Default weights of the quadratic cost of lqr, lqr_finite and ilqr: Q = lqr_q diag(cost_q)
     * (an entry 0 counts as 1), Qf = lqr_qf Q with lqr_qf defaulting to cost_qf (0: 100). */
    double cost_q[TRC_SYSTEM_MAX_S];
    double cost_qf;
    /* Optional per-component sampling boxes ([s] each, NULL = none), for states whose
     * components live on different scales (rocket_landing: km, m/s, kg). With them, the scalar
     * boxes above and a dataset's box_lo/box_hi/target_lo/target_hi are fractions: a draw r is
     * mapped by trc_system_draw from [box_lo, box_hi] onto [lo_k, hi_k] per component. The
     * targets use target_lo_k/hi_k when a target box applies, else the states' arrays. */
    const double *box_lo_k, *box_hi_k;
    const double *target_lo_k, *target_hi_k;
    /* Components counted in the final error (the first error_s; 0 = all s): rocket_landing's
     * last component, the mass, is free at the target. */
    int error_s;
    /* Optional task metrics of one sample, which evaluation reports as means over the samples
     * (a 0/1 metric is a rate): nmetrics names (snake_case with the unit, e.g. "fuel_kg") and
     * metrics(x0, xT, target, out[nmetrics]) from the initial and final states and the target.
     * rocket_landing: the original's landing and its parts, and the fuel burnt. */
    int nmetrics;
    const char *const *metric_names;
    void (*metrics)(const double *x0, const double *xT, const double *target, double *out);
} trc_system;

/* Most task metrics a system may have. */
#define TRC_SYSTEM_MAX_METRICS 8

/* Component k of a state drawn at r (from the scalar box): r itself, or with per-component
 * boxes, r mapped affinely from [sys->box_lo, sys->box_hi] onto the state's (target = 0) or
 * the target's (target = 1) box of component k. */
double trc_system_draw(const trc_system *sys, int target, int k, double r);

/* Entry i of sys->cost_q (1 when unset). */
double trc_system_cost_q(const trc_system *sys, int i);
/* sys->cost_qf (100 when unset). */
double trc_system_cost_qf(const trc_system *sys);

/* Looks a system up by name; NULL (with trc_errmsg naming the known ones) when unknown. */
const trc_system *trc_system_find(const char *name);
size_t trc_system_count(void);
const trc_system *trc_system_at(size_t i);

/* The one rule that decides which system a model or dataset of shape (s, m, T) is simulated
 * with (trc predict, trc eval, trcd): `name` (a flag, a sidecar, the metadata; NULL or "" =
 * none) names it, and it must have s and m (else TRC_EINVAL: "<what> has s=.., m=.. but system
 * X has ..."; an unknown name is TRC_ENOTFOUND); without a name, the one system of the table
 * whose s, m and default horizon T match. None or several: TRC_EINVAL saying so (the candidates
 * named), for the caller to add how to name one. `what` is "model" or "data". */
int trc_system_resolve(const char *name, const char *what, int s, int m, int T,
                       const trc_system **out);

/* Rolls one sample forward in double precision. x0: [s], u: [T*m], traj: [(T+1)*s]. */
void trc_system_rollout(const trc_system *sys, double dt, int T, const double *x0, const double *u,
                        double *traj);

/* Batch simulation in float32 storage, double arithmetic.
 * x0: [n, s], u: [n, T, m] -> traj: [n, T+1, s]. Returns 0 or TRC_EINVAL. */
int trc_simulate(const trc_system *sys, double dt, int T, size_t n, const float *x0, const float *u,
                 float *traj);

#endif
