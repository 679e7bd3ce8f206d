/* The table of dynamical systems: dimensions, defaults, one step function used everywhere
 * (data generation, evaluation, serving), and its Jacobians. Adding a system = one table entry. */
#ifndef TRC_SYSTEM_H
#define TRC_SYSTEM_H

#include <stddef.h>

/* Largest state and control dimensions a table entry may have (stack buffers size on these). */
#define TRC_SYSTEM_MAX_S 16
#define TRC_SYSTEM_MAX_M 8

typedef struct trc_system {
    const char *name;
    int s;                 /* state dimension */
    int m;                 /* control dimension */
    double dt;             /* default time step */
    int T;                 /* default horizon (control steps) */
    double bound;          /* control bound b: controls live in [-b, b] */
    double box_lo, box_hi; /* default uniform sampling box for initial and target states */
    int linear;            /* 1 when step() is linear in (x, u): A and B do not depend on x, u */
    /* x_next = f(x, u) over one step of length dt. x: [s], u: [m], x_next: [s] (may not alias x).
     */
    void (*step)(const double *x, const double *u, double dt, double *x_next);
    /* A = df/dx [s*s], B = df/du [s*m], row-major, at (x, u). */
    void (*jacobian)(const double *x, const double *u, double dt, double *A, double *B);
} trc_system;

/* Looks a system up by name; NULL (with trc_errmsg naming the known ones) when unknown. */
const trc_system *trc_system_find(const char *name);
size_t trc_system_count(void);
const trc_system *trc_system_at(size_t i);

/* Rolls one sample forward in double precision. x0: [s], u: [T*m], traj: [(T+1)*s]. */
void trc_system_rollout(const trc_system *sys, double dt, int T, const double *x0, const double *u,
                        double *traj);

/* Batch simulation in float32 storage, double arithmetic.
 * x0: [n, s], u: [n, T, m] -> traj: [n, T+1, s]. Returns 0 or TRC_EINVAL. */
int trc_simulate(const trc_system *sys, double dt, int T, size_t n, const float *x0, const float *u,
                 float *traj);

#endif
