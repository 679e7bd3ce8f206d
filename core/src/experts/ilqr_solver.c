/* The iLQR solver of trc/ilqr.h (experts/ilqr.c is its face in the experts table): a plan
 * (problem + options, immutable), per-thread work buffers, and one solve = a few warm starts,
 * each iterated by backward pass + line search. Shapes: states x [T+1, s], controls u [T, m],
 * Jacobians A [T, s, s] and B [T, s, m], gains K [T, m, s], feed-forward k [T, m], gradient
 * g [T, m]. */
#include "trc/ilqr.h"
#include "trc/error.h"
#include "boxqp.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_MAX TRC_SYSTEM_MAX_S
#define M_MAX TRC_SYSTEM_MAX_M
#define MAX_T 100000
#define LS_STEPS 12    /* line search: alpha = 1, 1/2, ..., 1/2^11 */
#define LS_ACCEPT 1e-4 /* accept when the actual decrease is this fraction of the model's */
#define REG_GROW 10.0  /* regularisation factor up on failure, down on success */
#define PSD_TOL 1e-12  /* relative tolerance of the Q / Qf semi-definiteness check */

struct trc_ilqr {
    const trc_system *sys;
    int s, m, T;
    double dt, bound;
    double Q[S_MAX * S_MAX], R[M_MAX * M_MAX], Qf[S_MAX * S_MAX];
    trc_ilqr_options opt;
};

struct trc_ilqr_work {
    double *x, *u;   /* the current iterate */
    double *xn, *un; /* a line-search candidate */
    double *A, *B;   /* Jacobians along (x, u) */
    double *k, *K;   /* feed-forward and feedback of the last backward pass (or the LQR's) */
    double *g;       /* gradient dJ/du at (x, u) */
    double *best;    /* the best controls over the warm starts */
    double *block;   /* the one allocation the pointers above live in */
};

void trc_ilqr_options_default(trc_ilqr_options *o) {
    o->max_iters = 100;
    o->tol_grad = 1e-7;
    o->tol_cost = 1e-12;
    o->reg_init = 0.0;
    o->reg_min = 1e-6;
    o->reg_max = 1e10;
    o->starts = TRC_ILQR_START_ZERO | TRC_ILQR_START_LQR | TRC_ILQR_START_GIVEN;
}

/* ---- plan ---- */

static int check_matrix(const char *name, int n, const double *M, int definite) {
    double scale = 0.0;
    for (int i = 0; i < n * n; i++) {
        if (!isfinite(M[i]))
            return trc_fail(TRC_EINVAL, "ilqr: %s has a non-finite entry", name);
        scale = fmax(scale, fabs(M[i]));
    }
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (fabs(M[i * n + j] - M[j * n + i]) > 1e-12 * (1.0 + scale))
                return trc_fail(TRC_EINVAL, "ilqr: %s must be symmetric", name);
    double S[S_MAX * S_MAX], L[S_MAX * S_MAX];
    memcpy(S, M, sizeof(double) * (size_t)(n * n));
    if (definite) {
        if (trc_chol(n, S, L, 1e-12))
            return trc_fail(TRC_EINVAL, "ilqr: %s must be positive definite", name);
        return TRC_OK;
    }
    /* Semi-definite: positive definite after a shift far below its own scale. */
    for (int i = 0; i < n; i++)
        S[i * n + i] += PSD_TOL * (1.0 + scale);
    if (trc_chol(n, S, L, 0.0))
        return trc_fail(TRC_EINVAL, "ilqr: %s must be positive semi-definite (no negative weight)",
                        name);
    return TRC_OK;
}

int trc_ilqr_create(const trc_ilqr_problem *pb, const trc_ilqr_options *opt, trc_ilqr **out) {
    *out = NULL;
    const trc_system *sys = pb ? pb->sys : NULL;
    if (!sys)
        return trc_fail(TRC_EINVAL, "ilqr: no system");
    if (!sys->jacobian || !sys->step)
        return trc_fail(TRC_EUNSUPPORTED, "ilqr: system %s has no Jacobians", sys->name);
    if (sys->s > S_MAX || sys->m > M_MAX || sys->m > TRC_BOXQP_MAX)
        return trc_fail(TRC_EUNSUPPORTED, "ilqr: system %s is too large", sys->name);
    if (!(pb->dt > 0.0) || !isfinite(pb->dt))
        return trc_fail(TRC_EINVAL, "ilqr: time step must be positive and finite, got %g", pb->dt);
    if (pb->T <= 0 || pb->T > MAX_T)
        return trc_fail(TRC_EINVAL, "ilqr: horizon must be in 1..%d, got %d", MAX_T, pb->T);
    if (!(pb->bound > 0.0) || !isfinite(pb->bound))
        return trc_fail(TRC_EINVAL, "ilqr: control bound must be positive and finite, got %g",
                        pb->bound);
    if (!pb->Q || !pb->R || !pb->Qf)
        return trc_fail(TRC_EINVAL, "ilqr: missing weight matrix");
    int rc;
    if ((rc = check_matrix("R", sys->m, pb->R, 1)) || (rc = check_matrix("Q", sys->s, pb->Q, 0)) ||
        (rc = check_matrix("Qf", sys->s, pb->Qf, 0)))
        return rc;
    trc_ilqr_options o;
    trc_ilqr_options_default(&o);
    if (opt)
        o = *opt;
    if (o.max_iters < 0 || o.max_iters > 100000)
        return trc_fail(TRC_EINVAL, "ilqr: max_iters must be in 0..100000, got %d", o.max_iters);
    if (!(o.tol_grad >= 0.0) || !(o.tol_cost >= 0.0) || !isfinite(o.tol_grad) ||
        !isfinite(o.tol_cost))
        return trc_fail(TRC_EINVAL, "ilqr: tolerances must be finite and >= 0");
    if (!(o.reg_init >= 0.0) || !(o.reg_min > 0.0) || !(o.reg_max >= o.reg_min) ||
        !isfinite(o.reg_max))
        return trc_fail(TRC_EINVAL, "ilqr: regularisation needs 0 <= init, 0 < min <= max");
    if (!(o.starts & (TRC_ILQR_START_ZERO | TRC_ILQR_START_LQR | TRC_ILQR_START_GIVEN)))
        return trc_fail(TRC_EINVAL, "ilqr: no warm start selected");
    trc_ilqr *p = calloc(1, sizeof *p);
    if (!p)
        return trc_fail(TRC_ENOMEM, "ilqr: cannot allocate the plan");
    p->sys = sys;
    p->s = sys->s;
    p->m = sys->m;
    p->T = pb->T;
    p->dt = pb->dt;
    p->bound = pb->bound;
    memcpy(p->Q, pb->Q, sizeof(double) * (size_t)(p->s * p->s));
    memcpy(p->R, pb->R, sizeof(double) * (size_t)(p->m * p->m));
    memcpy(p->Qf, pb->Qf, sizeof(double) * (size_t)(p->s * p->s));
    p->opt = o;
    *out = p;
    return TRC_OK;
}

void trc_ilqr_free(trc_ilqr *p) {
    free(p);
}

trc_ilqr_work *trc_ilqr_work_create(const trc_ilqr *p) {
    const size_t s = (size_t)p->s, m = (size_t)p->m, T = (size_t)p->T;
    const size_t nx = (T + 1) * s, nu = T * m;
    const size_t total = 2 * nx + 2 * nu + T * s * s + T * s * m + nu + T * m * s + nu + nu;
    trc_ilqr_work *w = calloc(1, sizeof *w);
    double *b = calloc(total, sizeof(double));
    if (!w || !b) {
        free(w);
        free(b);
        trc_fail(TRC_ENOMEM, "ilqr: cannot allocate the work buffers (T=%zu)", T);
        return NULL;
    }
    w->block = b;
    w->x = b, b += nx;
    w->xn = b, b += nx;
    w->u = b, b += nu;
    w->un = b, b += nu;
    w->A = b, b += T * s * s;
    w->B = b, b += T * s * m;
    w->k = b, b += nu;
    w->K = b, b += T * m * s;
    w->g = b, b += nu;
    w->best = b;
    return w;
}

void trc_ilqr_work_free(trc_ilqr_work *w) {
    if (!w)
        return;
    free(w->block);
    free(w);
}

/* ---- cost, rollout, gradient ---- */

/* e' M e for e = x - target. M: [n*n]. */
static double quad(int n, const double *M, const double *x, const double *target) {
    double e[S_MAX], v = 0.0;
    for (int i = 0; i < n; i++)
        e[i] = target ? x[i] - target[i] : x[i];
    for (int i = 0; i < n; i++) {
        double r = 0.0;
        for (int j = 0; j < n; j++)
            r += M[i * n + j] * e[j];
        v += e[i] * r;
    }
    return v;
}

/* x: [(T+1)*s] from x0 and u: [T*m]; returns J. */
static double rollout(const trc_ilqr *p, const double *x0, const double *target, const double *u,
                      double *x) {
    const int s = p->s, m = p->m;
    memcpy(x, x0, sizeof(double) * (size_t)s);
    double J = 0.0;
    for (int t = 0; t < p->T; t++) {
        const double *xt = x + (size_t)t * s, *ut = u + (size_t)t * m;
        J += quad(s, p->Q, xt, target) + quad(m, p->R, ut, NULL);
        p->sys->step(xt, ut, p->dt, x + (size_t)(t + 1) * s);
    }
    return J + quad(s, p->Qf, x + (size_t)p->T * s, target);
}

double trc_ilqr_cost(const trc_ilqr *p, trc_ilqr_work *w, const double *x0, const double *target,
                     const double *u) {
    return rollout(p, x0, target, u, w->xn);
}

static double clip(double v, double b) {
    return v > b ? b : (v < -b ? -b : v);
}

static void jacobians(const trc_ilqr *p, trc_ilqr_work *w) {
    const int s = p->s, m = p->m;
    for (int t = 0; t < p->T; t++)
        p->sys->jacobian(w->x + (size_t)t * s, w->u + (size_t)t * m, p->dt,
                         w->A + (size_t)t * s * s, w->B + (size_t)t * s * m);
}

/* Gradient of J at (x, u) by the adjoint recursion lambda_T = 2 Qf e_T,
 * g_t = 2 R u_t + B_t' lambda_{t+1}, lambda_t = 2 Q e_t + A_t' lambda_{t+1}; returns the
 * relative projected gradient max |u - clip(u - g)| / (1 + J). */
static double gradient(const trc_ilqr *p, trc_ilqr_work *w, const double *target, double J) {
    const int s = p->s, m = p->m, T = p->T;
    double lam[S_MAX], e[S_MAX], nl[S_MAX];
    for (int i = 0; i < s; i++)
        e[i] = w->x[(size_t)T * s + i] - target[i];
    for (int i = 0; i < s; i++) {
        double v = 0.0;
        for (int j = 0; j < s; j++)
            v += 2.0 * p->Qf[i * s + j] * e[j];
        lam[i] = v;
    }
    double pg = 0.0;
    for (int t = T - 1; t >= 0; t--) {
        const double *A = w->A + (size_t)t * s * s, *B = w->B + (size_t)t * s * m;
        const double *ut = w->u + (size_t)t * m;
        for (int q = 0; q < m; q++) {
            double v = 0.0;
            for (int r = 0; r < m; r++)
                v += 2.0 * p->R[q * m + r] * ut[r];
            for (int i = 0; i < s; i++)
                v += B[i * m + q] * lam[i];
            w->g[(size_t)t * m + q] = v;
            pg = fmax(pg, fabs(ut[q] - clip(ut[q] - v, p->bound)));
        }
        for (int i = 0; i < s; i++)
            e[i] = w->x[(size_t)t * s + i] - target[i];
        for (int i = 0; i < s; i++) {
            double v = 0.0;
            for (int j = 0; j < s; j++)
                v += 2.0 * p->Q[i * s + j] * e[j] + A[j * s + i] * lam[j];
            nl[i] = v;
        }
        memcpy(lam, nl, sizeof(double) * (size_t)s);
    }
    return pg / (1.0 + fabs(J));
}

/* ---- backward pass ---- */

/* Gauss-Newton backward pass along (x, u) with Quu + reg I; fills k, K and the model's
 * predicted change dJ(alpha) = alpha d1 + alpha^2 d2. Returns -1 when Quu is not positive
 * definite on the free controls of some step. */
static int backward(const trc_ilqr *p, trc_ilqr_work *w, const double *target, double reg,
                    double *d1, double *d2) {
    const int s = p->s, m = p->m, T = p->T;
    double Vx[S_MAX], Vxx[S_MAX * S_MAX], e[S_MAX];
    double Qx[S_MAX], Qu[M_MAX], Qxx[S_MAX * S_MAX], Quu[M_MAX * M_MAX], Qux[M_MAX * S_MAX];
    double VA[S_MAX * S_MAX], VB[S_MAX * M_MAX], H[M_MAX * M_MAX], L[M_MAX * M_MAX];
    double lo[M_MAX], hi[M_MAX], du[M_MAX], col[M_MAX];
    int fr[M_MAX];
    for (int i = 0; i < s; i++)
        e[i] = w->x[(size_t)T * s + i] - target[i];
    for (int i = 0; i < s; i++) {
        double v = 0.0;
        for (int j = 0; j < s; j++)
            v += 2.0 * p->Qf[i * s + j] * e[j];
        Vx[i] = v;
    }
    for (int i = 0; i < s * s; i++)
        Vxx[i] = 2.0 * p->Qf[i];
    *d1 = *d2 = 0.0;
    for (int t = T - 1; t >= 0; t--) {
        const double *A = w->A + (size_t)t * s * s, *B = w->B + (size_t)t * s * m;
        const double *ut = w->u + (size_t)t * m;
        double *kt = w->k + (size_t)t * m, *Kt = w->K + (size_t)t * m * s;
        for (int i = 0; i < s; i++)
            e[i] = w->x[(size_t)t * s + i] - target[i];
        /* VA = Vxx A: [s, s], VB = Vxx B: [s, m] */
        for (int i = 0; i < s; i++) {
            for (int j = 0; j < s; j++) {
                double v = 0.0;
                for (int l = 0; l < s; l++)
                    v += Vxx[i * s + l] * A[l * s + j];
                VA[i * s + j] = v;
            }
            for (int q = 0; q < m; q++) {
                double v = 0.0;
                for (int l = 0; l < s; l++)
                    v += Vxx[i * s + l] * B[l * m + q];
                VB[i * m + q] = v;
            }
        }
        for (int i = 0; i < s; i++) {
            double v = 0.0;
            for (int j = 0; j < s; j++)
                v += 2.0 * p->Q[i * s + j] * e[j] + A[j * s + i] * Vx[j];
            Qx[i] = v;
            for (int j = 0; j < s; j++) {
                double a = 2.0 * p->Q[i * s + j];
                for (int l = 0; l < s; l++)
                    a += A[l * s + i] * VA[l * s + j];
                Qxx[i * s + j] = a;
            }
        }
        for (int q = 0; q < m; q++) {
            double v = 0.0;
            for (int r = 0; r < m; r++)
                v += 2.0 * p->R[q * m + r] * ut[r];
            for (int l = 0; l < s; l++)
                v += B[l * m + q] * Vx[l];
            Qu[q] = v;
            for (int r = 0; r < m; r++) {
                double a = 2.0 * p->R[q * m + r];
                for (int l = 0; l < s; l++)
                    a += B[l * m + q] * VB[l * m + r];
                Quu[q * m + r] = a;
            }
            for (int j = 0; j < s; j++) {
                double a = 0.0;
                for (int l = 0; l < s; l++)
                    a += B[l * m + q] * VA[l * s + j];
                Qux[q * s + j] = a;
            }
        }
        /* Control step: min 0.5 du' H du + Qu' du on -b - u <= du <= b - u, from the last k. */
        for (int q = 0; q < m; q++) {
            for (int r = 0; r < m; r++)
                H[q * m + r] = 0.5 * (Quu[q * m + r] + Quu[r * m + q]) + (q == r ? reg : 0.0);
            lo[q] = -p->bound - ut[q];
            hi[q] = p->bound - ut[q];
            du[q] = kt[q];
        }
        int nf = trc_boxqp(m, H, Qu, lo, hi, du, fr, L);
        if (nf < 0)
            return -1;
        /* Feedback only on the free controls: K_f = -H_ff^-1 Qux_f, zero rows elsewhere. */
        memset(Kt, 0, sizeof(double) * (size_t)(m * s));
        for (int j = 0; j < s && nf > 0; j++) {
            int c = 0;
            for (int q = 0; q < m; q++)
                if (fr[q])
                    col[c++] = -Qux[q * s + j];
            trc_chol_solve(nf, L, col);
            c = 0;
            for (int q = 0; q < m; q++)
                if (fr[q])
                    Kt[q * s + j] = col[c++];
        }
        memcpy(kt, du, sizeof(double) * (size_t)m);
        /* Predicted change and the value function at t (Tassa 2012, eq. 11). */
        for (int q = 0; q < m; q++) {
            double hk = 0.0;
            for (int r = 0; r < m; r++)
                hk += Quu[q * m + r] * kt[r];
            *d1 += kt[q] * Qu[q];
            *d2 += 0.5 * kt[q] * hk;
        }
        for (int i = 0; i < s; i++) {
            double v = Qx[i];
            for (int q = 0; q < m; q++) {
                double hk = 0.0;
                for (int r = 0; r < m; r++)
                    hk += Quu[q * m + r] * kt[r];
                v += Kt[q * s + i] * (hk + Qu[q]) + Qux[q * s + i] * kt[q];
            }
            Vx[i] = v;
        }
        for (int i = 0; i < s; i++)
            for (int j = 0; j < s; j++) {
                double v = Qxx[i * s + j];
                for (int q = 0; q < m; q++) {
                    double hK = 0.0;
                    for (int r = 0; r < m; r++)
                        hK += Quu[q * m + r] * Kt[r * s + j];
                    v += Kt[q * s + i] * hK + Kt[q * s + i] * Qux[q * s + j] +
                         Qux[q * s + i] * Kt[q * s + j];
                }
                Vxx[i * s + j] = v;
            }
        for (int i = 0; i < s; i++)
            for (int j = i + 1; j < s; j++)
                Vxx[i * s + j] = Vxx[j * s + i] = 0.5 * (Vxx[i * s + j] + Vxx[j * s + i]);
    }
    return 0;
}

/* Candidate un = clip(u + alpha k + K (xn - x)) rolled out into xn; returns its J. */
static double forward(const trc_ilqr *p, trc_ilqr_work *w, const double *target, double alpha) {
    const int s = p->s, m = p->m;
    memcpy(w->xn, w->x, sizeof(double) * (size_t)s);
    double J = 0.0;
    for (int t = 0; t < p->T; t++) {
        const double *x = w->x + (size_t)t * s, *xn = w->xn + (size_t)t * s;
        const double *Kt = w->K + (size_t)t * m * s;
        double *un = w->un + (size_t)t * m;
        for (int q = 0; q < m; q++) {
            double v = w->u[(size_t)t * m + q] + alpha * w->k[(size_t)t * m + q];
            for (int j = 0; j < s; j++)
                v += Kt[q * s + j] * (xn[j] - x[j]);
            un[q] = clip(v, p->bound);
        }
        J += quad(s, p->Q, xn, target) + quad(m, p->R, un, NULL);
        p->sys->step(xn, un, p->dt, w->xn + (size_t)(t + 1) * s);
    }
    return J + quad(s, p->Qf, w->xn + (size_t)p->T * s, target);
}

/* Iterates from the controls in w->u (already within the bound). *iters += backward passes;
 * returns J at the final w->u, *grad its relative projected gradient. */
static double iterate(const trc_ilqr *p, trc_ilqr_work *w, const double *x0, const double *target,
                      int *iters, double *grad) {
    const trc_ilqr_options *o = &p->opt;
    const size_t nx = (size_t)(p->T + 1) * p->s, nu = (size_t)p->T * p->m;
    double J = rollout(p, x0, target, w->u, w->x);
    double reg = o->reg_init;
    int stalled = 0;
    memset(w->k, 0, sizeof(double) * nu);
    for (int it = 0;; it++) {
        if (!isfinite(J)) {
            *grad = INFINITY;
            return J;
        }
        jacobians(p, w);
        *grad = gradient(p, w, target, J);
        if (*grad <= o->tol_grad || stalled || it >= o->max_iters)
            return J;
        /* Backward pass, raising the regularisation until Quu is positive definite. */
        double d1, d2;
        int ok = 0;
        while (!ok) {
            (*iters)++;
            ok = backward(p, w, target, reg, &d1, &d2) == 0;
            if (!ok && (reg = fmax(reg * REG_GROW, o->reg_min)) > o->reg_max)
                return J;
        }
        /* Line search on the actual cost. */
        double alpha = 1.0, Jn = J;
        int accepted = 0;
        for (int ls = 0; ls < LS_STEPS; ls++, alpha *= 0.5) {
            Jn = forward(p, w, target, alpha);
            double expected = -(alpha * d1 + alpha * alpha * d2);
            if (!(Jn < J))
                continue;
            if (expected <= 1e-15 * (1.0 + fabs(J)) || (J - Jn) >= LS_ACCEPT * expected) {
                accepted = 1;
                break;
            }
        }
        if (!accepted) { /* the model was poor: trust it less, and stop when it cannot help */
            reg = fmax(reg * REG_GROW, o->reg_min);
            if (reg > o->reg_max || d1 > -1e-15 * (1.0 + fabs(J)))
                stalled = 1;
            continue;
        }
        stalled = (J - Jn) <= o->tol_cost * (1.0 + fabs(J));
        memcpy(w->x, w->xn, sizeof(double) * nx);
        memcpy(w->u, w->un, sizeof(double) * nu);
        J = Jn;
        reg = reg / REG_GROW < o->reg_min ? 0.0 : reg / REG_GROW;
    }
}

/* ---- the linearised LQR ---- */

/* Linear model e+ = A e + B u + c at (target, 0) as documented in ilqr.h. */
static void linearise(const trc_ilqr *p, const double *target, double *A, double *B, double *c) {
    const trc_system *sys = p->sys;
    const int s = p->s, m = p->m;
    double zero[M_MAX] = {0};
    if (sys->field_jacobian && sys->field) {
        double f[S_MAX];
        sys->field_jacobian(target, zero, A, B);
        sys->field(target, zero, f);
        for (int i = 0; i < s; i++) {
            for (int j = 0; j < s; j++)
                A[i * s + j] = (i == j ? 1.0 : 0.0) + p->dt * A[i * s + j];
            for (int q = 0; q < m; q++)
                B[i * m + q] *= p->dt;
            c[i] = p->dt * f[i];
        }
    } else {
        double xn[S_MAX];
        sys->jacobian(target, zero, p->dt, A, B);
        sys->step(target, zero, p->dt, xn);
        for (int i = 0; i < s; i++)
            c[i] = xn[i] - target[i];
    }
}

/* Backward Riccati recursion of the affine model: V_t(e) = e'P_t e + 2 p_t'e + const,
 * P_T = Qf, p_T = 0; S = R + B'P'B, K_t = S^-1 B'P'A, k_t = S^-1 B'(P'c + p'),
 * P_t = Q + A'P'(A - B K_t), p_t = (A - B K_t)'(P'c + p'). Gains into w->K, w->k. */
static int lqr_gains(const trc_ilqr *p, trc_ilqr_work *w, const double *target) {
    const int s = p->s, m = p->m;
    double A[S_MAX * S_MAX], B[S_MAX * M_MAX], c[S_MAX];
    double P[S_MAX * S_MAX], pv[S_MAX], PB[S_MAX * M_MAX], PA[S_MAX * S_MAX], h[S_MAX];
    double Sm[M_MAX * M_MAX], L[M_MAX * M_MAX], col[M_MAX], Acl[S_MAX * S_MAX];
    double Pn[S_MAX * S_MAX];
    linearise(p, target, A, B, c);
    memcpy(P, p->Qf, sizeof(double) * (size_t)(s * s));
    memset(pv, 0, sizeof pv);
    for (int t = p->T - 1; t >= 0; t--) {
        double *Kt = w->K + (size_t)t * m * s, *kt = w->k + (size_t)t * m;
        for (int i = 0; i < s; i++) {
            for (int q = 0; q < m; q++) {
                double v = 0.0;
                for (int l = 0; l < s; l++)
                    v += P[i * s + l] * B[l * m + q];
                PB[i * m + q] = v;
            }
            for (int j = 0; j < s; j++) {
                double v = 0.0;
                for (int l = 0; l < s; l++)
                    v += P[i * s + l] * A[l * s + j];
                PA[i * s + j] = v;
            }
            double v = pv[i];
            for (int l = 0; l < s; l++)
                v += P[i * s + l] * c[l];
            h[i] = v; /* P'c + p' */
        }
        for (int q = 0; q < m; q++)
            for (int r = 0; r < m; r++) {
                double v = p->R[q * m + r];
                for (int l = 0; l < s; l++)
                    v += B[l * m + q] * PB[l * m + r];
                Sm[q * m + r] = v;
            }
        if (trc_chol(m, Sm, L, 1e-14))
            return trc_fail(TRC_ENUMERIC, "lqr: R + B'PB is not positive definite at t=%d", t);
        for (int j = 0; j <= s; j++) { /* columns of B'P'A, then B'h */
            for (int q = 0; q < m; q++) {
                double v = 0.0;
                for (int l = 0; l < s; l++)
                    v += B[l * m + q] * (j < s ? PA[l * s + j] : h[l]);
                col[q] = v;
            }
            trc_chol_solve(m, L, col);
            for (int q = 0; q < m; q++) {
                if (j < s)
                    Kt[q * s + j] = col[q];
                else
                    kt[q] = col[q];
            }
        }
        for (int i = 0; i < s; i++)
            for (int j = 0; j < s; j++) {
                double v = A[i * s + j];
                for (int q = 0; q < m; q++)
                    v -= B[i * m + q] * Kt[q * s + j];
                Acl[i * s + j] = v;
            }
        for (int i = 0; i < s; i++) {
            for (int j = 0; j < s; j++) {
                double v = p->Q[i * s + j];
                for (int l = 0; l < s; l++) /* A'(P Acl) */
                    for (int r = 0; r < s; r++)
                        v += A[l * s + i] * P[l * s + r] * Acl[r * s + j];
                Pn[i * s + j] = v;
            }
        }
        for (int i = 0; i < s; i++) {
            double v = 0.0;
            for (int l = 0; l < s; l++)
                v += Acl[l * s + i] * h[l];
            pv[i] = v;
        }
        for (int i = 0; i < s; i++)
            for (int j = 0; j < s; j++)
                P[i * s + j] = 0.5 * (Pn[i * s + j] + Pn[j * s + i]);
    }
    double mx = 0.0;
    for (int i = 0; i < s * s; i++)
        mx = fmax(mx, fabs(P[i]));
    if (!isfinite(mx))
        return trc_fail(TRC_ENUMERIC, "lqr: Riccati recursion overflowed");
    return TRC_OK;
}

/* The feedback rollout of the gains in w->K, w->k into u, x = w->x; returns J. */
static double lqr_apply(const trc_ilqr *p, trc_ilqr_work *w, const double *x0, const double *target,
                        double *u) {
    const int s = p->s, m = p->m;
    double *x = w->x;
    memcpy(x, x0, sizeof(double) * (size_t)s);
    double J = 0.0;
    for (int t = 0; t < p->T; t++) {
        const double *xt = x + (size_t)t * s, *Kt = w->K + (size_t)t * m * s;
        double *ut = u + (size_t)t * m;
        for (int q = 0; q < m; q++) {
            double v = -w->k[(size_t)t * m + q];
            for (int j = 0; j < s; j++)
                v -= Kt[q * s + j] * (xt[j] - target[j]);
            ut[q] = clip(v, p->bound);
        }
        J += quad(s, p->Q, xt, target) + quad(m, p->R, ut, NULL);
        p->sys->step(xt, ut, p->dt, x + (size_t)(t + 1) * s);
    }
    return J + quad(s, p->Qf, x + (size_t)p->T * s, target);
}

int trc_ilqr_lqr_rollout(const trc_ilqr *p, trc_ilqr_work *w, const double *x0,
                         const double *target, double *u, double *cost) {
    int rc = lqr_gains(p, w, target);
    if (rc)
        return rc;
    double J = lqr_apply(p, w, x0, target, u);
    if (!isfinite(J))
        return trc_fail(TRC_ENUMERIC, "lqr: the feedback rollout diverged");
    if (cost)
        *cost = J;
    return TRC_OK;
}

/* ---- solve ---- */

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return 1e3 * (double)ts.tv_sec + 1e-6 * (double)ts.tv_nsec;
}

int trc_ilqr_solve(const trc_ilqr *p, trc_ilqr_work *w, const double *x0, const double *target,
                   const double *u_init, double *u, trc_ilqr_result *res) {
    const double t0 = now_ms();
    const size_t nu = (size_t)p->T * p->m;
    static const int order[3] = {TRC_ILQR_START_GIVEN, TRC_ILQR_START_LQR, TRC_ILQR_START_ZERO};
    trc_ilqr_result best = {INFINITY, INFINITY, 0, 0, 0, 0.0};
    int iters = 0;
    for (int i = 0; i < 3; i++) {
        const int start = order[i];
        if (!(p->opt.starts & start) || (start == TRC_ILQR_START_GIVEN && !u_init))
            continue;
        if (start == TRC_ILQR_START_GIVEN) {
            for (size_t j = 0; j < nu; j++)
                w->u[j] = isfinite(u_init[j]) ? clip(u_init[j], p->bound) : 0.0;
        } else if (start == TRC_ILQR_START_LQR) {
            if (lqr_gains(p, w, target) != TRC_OK)
                continue; /* a singular linearisation: the other starts still run */
            lqr_apply(p, w, x0, target, w->u);
        } else {
            memset(w->u, 0, sizeof(double) * nu);
        }
        double grad;
        double J = iterate(p, w, x0, target, &iters, &grad);
        if (!isfinite(J))
            continue;
        /* Lowest cost wins; on a tie the earlier start (deterministic). */
        if (J < best.cost) {
            best.cost = J;
            best.grad = grad;
            best.converged = grad <= p->opt.tol_grad;
            best.start = start;
            memcpy(w->best, w->u, sizeof(double) * nu);
        }
    }
    if (!isfinite(best.cost))
        return trc_fail(TRC_ENUMERIC, "ilqr: no warm start gives a finite cost");
    memcpy(u, w->best, sizeof(double) * nu);
    best.iterations = iters;
    best.solve_ms = now_ms() - t0;
    if (res)
        *res = best;
    return TRC_OK;
}
