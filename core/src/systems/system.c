/* The systems table: each entry names a system, its dimensions and defaults, and its one step
 * function with Jacobians. Data generation, experts, evaluation and serving all step through
 * these functions, so a dataset and its evaluation can never disagree on the dynamics. */
#include "trc/system.h"
#include "trc/error.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- double_integrator: x = [p, v], u = [a]; exact zero-order hold ---- */

static void di_step(const double *x, const double *u, double dt, double *xn) {
    xn[0] = x[0] + x[1] * dt + 0.5 * u[0] * dt * dt;
    xn[1] = x[1] + u[0] * dt;
}

static void di_jacobian(const double *x, const double *u, double dt, double *A, double *B) {
    (void)x;
    (void)u;
    A[0] = 1.0, A[1] = dt;
    A[2] = 0.0, A[3] = 1.0;
    B[0] = 0.5 * dt * dt;
    B[1] = dt;
}

/* ---- RK4 over a continuous-time field, with the exact Jacobian of the RK4 map ----
 * k1 = f(x), k2 = f(x + h/2 k1), k3 = f(x + h/2 k2), k4 = f(x + h k3) (u held over the step),
 * x+ = x + h/6 (k1 + 2 k2 + 2 k3 + k4). Differentiating each stage by the chain rule gives
 * dk_i = Fx(y_i) dy_i + Fu(y_i) du with dy_i the derivative of the stage's argument, so the
 * Jacobians are exact for the discrete map (not a finite-difference approximation). */

#define RK_MAX 16 /* largest s + m the RK4 helper handles (checked against the table below) */

typedef struct rk_field {
    int s, m;
    void (*f)(const double *x, const double *u, double *dx);
    /* Fx: [s*s], Fu: [s*m] at (x, u). */
    void (*jac)(const double *x, const double *u, double *Fx, double *Fu);
} rk_field;

/* x: [s], u: [m] -> xn: [s]; A: [s*s], B: [s*m] when not NULL. */
static void rk4(const rk_field *F, const double *x, const double *u, double h, double *xn,
                double *A, double *B) {
    const int s = F->s, m = F->m, w = s + m; /* derivatives w.r.t. (x, u): [s, s+m] */
    double k[4][RK_MAX], y[RK_MAX], dk[4][RK_MAX * RK_MAX], dy[RK_MAX * RK_MAX];
    double Fx[RK_MAX * RK_MAX], Fu[RK_MAX * RK_MAX];
    const double c[4] = {0.0, 0.5, 0.5, 1.0};
    const int want = A != NULL || B != NULL;
    for (int i = 0; i < 4; i++) {
        for (int r = 0; r < s; r++)
            y[r] = x[r] + (i ? c[i] * h * k[i - 1][r] : 0.0);
        F->f(y, u, k[i]);
        if (!want)
            continue;
        /* dy = [I 0] + c h dk_{i-1}: [s, s+m] */
        for (int r = 0; r < s; r++)
            for (int q = 0; q < w; q++)
                dy[r * w + q] = (q == r ? 1.0 : 0.0) + (i ? c[i] * h * dk[i - 1][r * w + q] : 0.0);
        F->jac(y, u, Fx, Fu);
        for (int r = 0; r < s; r++)
            for (int q = 0; q < w; q++) {
                double acc = q >= s ? Fu[r * m + (q - s)] : 0.0;
                for (int l = 0; l < s; l++)
                    acc += Fx[r * s + l] * dy[l * w + q];
                dk[i][r * w + q] = acc;
            }
    }
    for (int r = 0; r < s; r++)
        xn[r] = x[r] + h / 6.0 * (k[0][r] + 2.0 * k[1][r] + 2.0 * k[2][r] + k[3][r]);
    if (!want)
        return;
    for (int r = 0; r < s; r++)
        for (int q = 0; q < w; q++) {
            double d = (q == r ? 1.0 : 0.0) + h / 6.0 *
                                                  (dk[0][r * w + q] + 2.0 * dk[1][r * w + q] +
                                                   2.0 * dk[2][r * w + q] + dk[3][r * w + q]);
            if (q < s && A)
                A[r * s + q] = d;
            else if (q >= s && B)
                B[r * m + (q - s)] = d;
        }
}

/* ---- van_der_pol: x1' = x2, x2' = mu (1 - x1^2) x2 - x1 + u, mu = 1 ---- */

#define VDP_MU 1.0

static void vdp_f(const double *x, const double *u, double *dx) {
    dx[0] = x[1];
    dx[1] = VDP_MU * (1.0 - x[0] * x[0]) * x[1] - x[0] + u[0];
}

static void vdp_jac(const double *x, const double *u, double *Fx, double *Fu) {
    (void)u;
    Fx[0] = 0.0, Fx[1] = 1.0;
    Fx[2] = -2.0 * VDP_MU * x[0] * x[1] - 1.0, Fx[3] = VDP_MU * (1.0 - x[0] * x[0]);
    Fu[0] = 0.0, Fu[1] = 1.0;
}

static const rk_field vdp_field = {2, 1, vdp_f, vdp_jac};

static void vdp_step(const double *x, const double *u, double dt, double *xn) {
    rk4(&vdp_field, x, u, dt, xn, NULL, NULL);
}

static void vdp_jacobian(const double *x, const double *u, double dt, double *A, double *B) {
    double xn[2];
    rk4(&vdp_field, x, u, dt, xn, A, B);
}

/* ---- the table: adding a system is one entry here ---- */

static const trc_system systems[] = {
    {"double_integrator", 2, 1, 5.0 / 15.0, 15, 4.0, -2.0, 2.0, 1, di_step, di_jacobian},
    {"van_der_pol", 2, 1, 0.1, 20, 2.0, -2.0, 2.0, 0, vdp_step, vdp_jacobian},
};

#define NSYSTEMS (sizeof systems / sizeof systems[0])

_Static_assert(2 + 1 <= RK_MAX, "RK4 helper too small for van_der_pol");

size_t trc_system_count(void) {
    return NSYSTEMS;
}

const trc_system *trc_system_at(size_t i) {
    return i < NSYSTEMS ? &systems[i] : NULL;
}

const trc_system *trc_system_find(const char *name) {
    char known[256] = "";
    for (size_t i = 0; i < NSYSTEMS; i++) {
        if (name && strcmp(name, systems[i].name) == 0)
            return &systems[i];
        size_t len = strlen(known);
        snprintf(known + len, sizeof known - len, "%s%s", i ? ", " : "", systems[i].name);
    }
    trc_fail(TRC_ENOTFOUND, "unknown system '%s' (known: %s)", name ? name : "(null)", known);
    return NULL;
}

void trc_system_rollout(const trc_system *sys, double dt, int T, const double *x0, const double *u,
                        double *traj) {
    const int s = sys->s, m = sys->m;
    memcpy(traj, x0, (size_t)s * sizeof *traj);
    for (int t = 0; t < T; t++)
        sys->step(traj + (size_t)t * s, u + (size_t)t * m, dt, traj + (size_t)(t + 1) * s);
}

int trc_simulate(const trc_system *sys, double dt, int T, size_t n, const float *x0, const float *u,
                 float *traj) {
    if (!sys)
        return trc_fail(TRC_EINVAL, "simulate: no system");
    if (!(dt > 0.0) || !isfinite(dt))
        return trc_fail(TRC_EINVAL, "simulate: time step must be positive and finite, got %g", dt);
    if (T <= 0)
        return trc_fail(TRC_EINVAL, "simulate: horizon must be positive, got %d", T);
    if (sys->s > TRC_SYSTEM_MAX_S || sys->m > TRC_SYSTEM_MAX_M)
        return trc_fail(TRC_EINVAL, "simulate: system %s is too large", sys->name);
    if (n > 0 && (!x0 || !u || !traj))
        return trc_fail(TRC_EINVAL, "simulate: NULL array");
    const int s = sys->s, m = sys->m;
    double x[TRC_SYSTEM_MAX_S], xn[TRC_SYSTEM_MAX_S], uu[TRC_SYSTEM_MAX_M];
    for (size_t i = 0; i < n; i++) {
        const float *ui = u + i * (size_t)T * m;
        float *tr = traj + i * (size_t)(T + 1) * s;
        for (int r = 0; r < s; r++) {
            x[r] = x0[i * s + r];
            tr[r] = x0[i * s + r];
        }
        for (int t = 0; t < T; t++) {
            for (int q = 0; q < m; q++)
                uu[q] = ui[t * m + q];
            sys->step(x, uu, dt, xn);
            for (int r = 0; r < s; r++) {
                x[r] = xn[r];
                tr[(size_t)(t + 1) * s + r] = (float)xn[r];
            }
        }
    }
    return TRC_OK;
}
