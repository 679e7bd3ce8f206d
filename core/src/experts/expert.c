/* The experts of expert.h: plan construction (Gramian, DARE, backward Riccati recursion) and
 * the per-sample solve. Plans are immutable after creation, so one plan serves many threads. */
#include "trc/expert.h"
#include "trc/error.h"
#include "base/linalg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum expert_kind { EXPERT_MIN_ENERGY, EXPERT_LQR, EXPERT_LQR_FINITE };

static const char *const expert_names[] = {"min_energy", "lqr", "lqr_finite"};
#define NEXPERTS (sizeof expert_names / sizeof expert_names[0])

#define MAX_T 100000          /* horizon bound: keeps plan sizes sane */
#define DARE_MAX_ITERS 200000 /* value iteration on the Riccati map */
#define DARE_TOL 1e-13        /* relative change of P at convergence */

struct trc_expert_plan {
    enum expert_kind kind;
    const trc_system *sys;
    int s, m, T;
    double dt, bound;
    trc_expert_weights w;
    double *A, *B; /* [s*s], [s*m] */
    double *AT;    /* min_energy: A^T (matrix power) [s*s] */
    double *M;     /* min_energy: u = M (target - A^T x0), [T*m, s] */
    double *W;     /* min_energy: Gramian [s*s] */
    double *P;     /* lqr: [s*s]; lqr_finite: [(T+1)*s*s] */
    double *K;     /* lqr: [m*s]; lqr_finite: [T*m*s] */
    double *F;     /* lqr_finite: feed-forward on c = (A - I) target, [T*m*s] */
};

size_t trc_expert_count(void) {
    return NEXPERTS;
}

const char *trc_expert_name_at(size_t i) {
    return i < NEXPERTS ? expert_names[i] : NULL;
}

static int find_kind(const char *name) {
    for (size_t i = 0; i < NEXPERTS; i++)
        if (name && strcmp(name, expert_names[i]) == 0)
            return (int)i;
    return -1;
}

int trc_expert_check_name(const char *name) {
    if (find_kind(name) >= 0)
        return TRC_OK;
    return trc_fail(TRC_ENOTFOUND, "unknown expert '%s' (known: min_energy, lqr, lqr_finite)",
                    name ? name : "(null)");
}

int trc_expert_uses_weights(const char *name) {
    int k = find_kind(name);
    return k == EXPERT_LQR || k == EXPERT_LQR_FINITE;
}

void trc_expert_plan_free(trc_expert_plan *p) {
    if (!p)
        return;
    free(p->A);
    free(p->B);
    free(p->AT);
    free(p->M);
    free(p->W);
    free(p->P);
    free(p->K);
    free(p->F);
    free(p);
}

static double *alloc_d(size_t n) {
    return calloc(n ? n : 1, sizeof(double));
}

static int resolve_weight(const char *what, double v, double def, double *out) {
    if (isnan(v) || isinf(v))
        return trc_fail(TRC_EINVAL, "LQR weight %s must be finite, got %g", what, v);
    *out = v > 0.0 ? v : def;
    return TRC_OK;
}

static void symmetrize(int s, double *P) {
    for (int i = 0; i < s; i++)
        for (int j = i + 1; j < s; j++) {
            double a = 0.5 * (P[i * s + j] + P[j * s + i]);
            P[i * s + j] = P[j * s + i] = a;
        }
}

/* One Riccati step: given P' (next), returns K = (R + B'P'B)^-1 B'P'A and
 * P = Q + A'P'A - (B'P'A)' K. Also S^-1 B' for the caller's feed-forward when SinvBt != NULL. */
static int riccati_step(const trc_expert_plan *p, const double *Pn, double *K, double *P,
                        double *SinvBt) {
    const int s = p->s, m = p->m;
    double PB[TRC_SYSTEM_MAX_S * TRC_SYSTEM_MAX_M], PA[TRC_SYSTEM_MAX_S * TRC_SYSTEM_MAX_S];
    double S[TRC_SYSTEM_MAX_M * TRC_SYSTEM_MAX_M];
    double rhs[TRC_SYSTEM_MAX_M * (2 * TRC_SYSTEM_MAX_S)];
    trc_la_mul(s, s, m, Pn, p->B, PB);   /* P'B: [s, m] */
    trc_la_mul_tn(m, s, m, p->B, PB, S); /* B'P'B: [m, m] */
    for (int i = 0; i < m; i++)
        S[i * m + i] += p->w.r;
    trc_la_mul(s, s, s, Pn, p->A, PA); /* P'A: [s, s] */
    /* rhs = [B'P'A | B'] so one solve gives K and S^-1 B'. */
    const int w = SinvBt ? 2 * s : s;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < s; j++) {
            double acc = 0.0;
            for (int l = 0; l < s; l++)
                acc += p->B[l * m + i] * PA[l * s + j];
            rhs[i * w + j] = acc;
            if (SinvBt)
                rhs[i * w + s + j] = p->B[j * m + i];
        }
    int rc = trc_la_solve(m, w, S, rhs);
    if (rc)
        return rc;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < s; j++) {
            K[i * s + j] = rhs[i * w + j];
            if (SinvBt)
                SinvBt[i * s + j] = rhs[i * w + s + j];
        }
    /* P = Q + A'P'A - (P'B)(K) ... written as A'(P'A) - (A'P'B) K with A'P'B = (B'P'A)'. */
    trc_la_mul_tn(s, s, s, p->A, PA, P);
    for (int i = 0; i < s; i++)
        for (int j = 0; j < s; j++) {
            double acc = 0.0;
            for (int l = 0; l < m; l++) {
                double btpa_li = 0.0; /* (B'P'A)[l, i] */
                for (int r = 0; r < s; r++)
                    btpa_li += p->B[r * m + l] * PA[r * s + i];
                acc += btpa_li * K[l * s + j];
            }
            P[i * s + j] += (i == j ? p->w.q : 0.0) - acc;
        }
    symmetrize(s, P);
    return TRC_OK;
}

static int plan_min_energy(trc_expert_plan *p) {
    const int s = p->s, m = p->m, T = p->T;
    double *G = alloc_d((size_t)T * s * m), *Apow = alloc_d((size_t)s * s),
           *tmp = alloc_d((size_t)s * s), *Winv = alloc_d((size_t)s * s),
           *Wc = alloc_d((size_t)s * s);
    p->AT = alloc_d((size_t)s * s);
    p->W = alloc_d((size_t)s * s);
    p->M = alloc_d((size_t)T * m * s);
    int rc = TRC_OK;
    if (!G || !Apow || !tmp || !Winv || !Wc || !p->AT || !p->W || !p->M) {
        rc = trc_fail(TRC_ENOMEM, "min_energy: cannot allocate the plan");
        goto out;
    }
    /* G_k = A^(T-1-k) B, built from k = T-1 down with a running power of A. */
    for (int i = 0; i < s; i++)
        Apow[i * s + i] = 1.0;
    for (int k = T - 1; k >= 0; k--) {
        trc_la_mul(s, s, m, Apow, p->B, G + (size_t)k * s * m);
        trc_la_mul(s, s, s, Apow, p->A, tmp);
        memcpy(Apow, tmp, sizeof(double) * s * s);
    }
    memcpy(p->AT, Apow, sizeof(double) * s * s);
    /* W = sum_k G_k G_k' */
    for (int k = 0; k < T; k++) {
        trc_la_mul_nt(s, m, s, G + (size_t)k * s * m, G + (size_t)k * s * m, tmp);
        for (int i = 0; i < s * s; i++)
            p->W[i] += tmp[i];
    }
    symmetrize(s, p->W);
    memcpy(Wc, p->W, sizeof(double) * s * s);
    for (int i = 0; i < s; i++)
        Winv[i * s + i] = 1.0;
    if (trc_la_solve(s, s, Wc, Winv) != TRC_OK) {
        rc = trc_fail(TRC_EUNSUPPORTED,
                      "min_energy: %s is not controllable in %d step%s (singular reachability "
                      "Gramian); use a longer horizon",
                      p->sys->name, T, T == 1 ? "" : "s");
        goto out;
    }
    /* M_k = G_k' W^-1: [m, s] */
    for (int k = 0; k < T; k++)
        trc_la_mul_tn(m, s, s, G + (size_t)k * s * m, Winv, p->M + (size_t)k * m * s);
out:
    free(G);
    free(Apow);
    free(tmp);
    free(Winv);
    free(Wc);
    return rc;
}

static int plan_lqr(trc_expert_plan *p) {
    const int s = p->s, m = p->m;
    p->P = alloc_d((size_t)s * s);
    p->K = alloc_d((size_t)m * s);
    double *Pn = alloc_d((size_t)s * s);
    int rc = TRC_OK;
    if (!p->P || !p->K || !Pn) {
        rc = trc_fail(TRC_ENOMEM, "lqr: cannot allocate the plan");
        goto out;
    }
    /* Value iteration on the Riccati map from P = Q; converges for stabilizable (A, B). */
    for (int i = 0; i < s; i++)
        p->P[i * s + i] = p->w.q;
    int it;
    for (it = 0; it < DARE_MAX_ITERS; it++) {
        if ((rc = riccati_step(p, p->P, p->K, Pn, NULL)) != TRC_OK) {
            rc = trc_fail(TRC_ENUMERIC, "lqr: Riccati iteration failed: %s", trc_errmsg());
            goto out;
        }
        double diff = 0.0;
        for (int i = 0; i < s * s; i++)
            diff = fmax(diff, fabs(Pn[i] - p->P[i]));
        memcpy(p->P, Pn, sizeof(double) * s * s);
        double scale = trc_la_maxabs(s * s, p->P);
        if (!isfinite(scale)) {
            rc = trc_fail(TRC_ENUMERIC, "lqr: Riccati iteration diverged");
            goto out;
        }
        if (diff <= DARE_TOL * (1.0 + scale))
            break;
    }
    if (it == DARE_MAX_ITERS) {
        rc = trc_fail(TRC_ENUMERIC, "lqr: Riccati equation did not converge in %d iterations",
                      DARE_MAX_ITERS);
        goto out;
    }
    rc = riccati_step(p, p->P, p->K, Pn, NULL); /* K from the converged P */
out:
    free(Pn);
    return rc;
}

static int plan_lqr_finite(trc_expert_plan *p) {
    const int s = p->s, m = p->m, T = p->T;
    const size_t ss = (size_t)s * s, ms = (size_t)m * s;
    p->P = alloc_d((size_t)(T + 1) * ss);
    p->K = alloc_d((size_t)T * ms);
    p->F = alloc_d((size_t)T * ms);
    double *G = alloc_d(ss), *H = alloc_d(ss), *ABK = alloc_d(ss), *SinvBt = alloc_d(ms);
    int rc = TRC_OK;
    if (!p->P || !p->K || !p->F || !G || !H || !ABK || !SinvBt) {
        rc = trc_fail(TRC_ENOMEM, "lqr_finite: cannot allocate the plan");
        goto out;
    }
    /* P_T = Qf; G_T = 0. Backward: K_t, P_t from the Riccati step on P_{t+1};
     * the feed-forward handles the affine error dynamics e+ = A e + B u + c, c = (A - I) x*:
     * F_t = S^-1 B' (P_{t+1} + G_{t+1}), G_t = (A - B K_t)' (P_{t+1} + G_{t+1}). */
    double *PT = p->P + (size_t)T * ss;
    for (int i = 0; i < s; i++)
        PT[i * s + i] = p->w.qf * p->w.q;
    for (int t = T - 1; t >= 0; t--) {
        const double *Pn = p->P + (size_t)(t + 1) * ss;
        double *Kt = p->K + (size_t)t * ms;
        if ((rc = riccati_step(p, Pn, Kt, p->P + (size_t)t * ss, SinvBt)) != TRC_OK) {
            rc = trc_fail(TRC_ENUMERIC, "lqr_finite: Riccati recursion failed at t=%d: %s", t,
                          trc_errmsg());
            goto out;
        }
        for (size_t i = 0; i < ss; i++)
            H[i] = Pn[i] + G[i];
        trc_la_mul(m, s, s, SinvBt, H, p->F + (size_t)t * ms);
        trc_la_mul(s, m, s, p->B, Kt, ABK);
        for (size_t i = 0; i < ss; i++)
            ABK[i] = p->A[i] - ABK[i];
        trc_la_mul_tn(s, s, s, ABK, H, G);
    }
    if (!isfinite(trc_la_maxabs((int)((T + 1) * ss), p->P)))
        rc = trc_fail(TRC_ENUMERIC, "lqr_finite: Riccati recursion overflowed");
out:
    free(G);
    free(H);
    free(ABK);
    free(SinvBt);
    return rc;
}

int trc_expert_plan_create(const char *name, const trc_system *sys, double dt, int T, double bound,
                           const trc_expert_weights *weights, trc_expert_plan **out) {
    *out = NULL;
    int kind = find_kind(name);
    if (kind < 0)
        return trc_expert_check_name(name);
    if (!sys)
        return trc_fail(TRC_EINVAL, "%s: no system", name);
    if (!(dt > 0.0) || !isfinite(dt))
        return trc_fail(TRC_EINVAL, "%s: time step must be positive and finite, got %g", name, dt);
    if (T <= 0 || T > MAX_T)
        return trc_fail(TRC_EINVAL, "%s: horizon must be in 1..%d, got %d", name, MAX_T, T);
    if (!(bound > 0.0) || !isfinite(bound))
        return trc_fail(TRC_EINVAL, "%s: control bound must be positive and finite, got %g", name,
                        bound);
    if (!sys->linear)
        return trc_fail(TRC_EUNSUPPORTED,
                        "expert %s needs a linear system; %s is nonlinear (no expert for it yet)",
                        name, sys->name);
    if (sys->s > TRC_SYSTEM_MAX_S || sys->m > TRC_SYSTEM_MAX_M)
        return trc_fail(TRC_EUNSUPPORTED, "%s: system %s is too large", name, sys->name);
    trc_expert_weights w = {0, 0, 0};
    if (weights)
        w = *weights;
    int rc;
    if ((rc = resolve_weight("q", w.q, TRC_EXPERT_DEFAULT_Q, &w.q)) ||
        (rc = resolve_weight("r", w.r, TRC_EXPERT_DEFAULT_R, &w.r)) ||
        (rc = resolve_weight("qf", w.qf, TRC_EXPERT_DEFAULT_QF, &w.qf)))
        return rc;

    trc_expert_plan *p = calloc(1, sizeof *p);
    if (!p)
        return trc_fail(TRC_ENOMEM, "%s: cannot allocate the plan", name);
    p->kind = (enum expert_kind)kind;
    p->sys = sys;
    p->s = sys->s;
    p->m = sys->m;
    p->T = T;
    p->dt = dt;
    p->bound = bound;
    p->w = w;
    p->A = alloc_d((size_t)p->s * p->s);
    p->B = alloc_d((size_t)p->s * p->m);
    if (!p->A || !p->B) {
        trc_expert_plan_free(p);
        return trc_fail(TRC_ENOMEM, "%s: cannot allocate the plan", name);
    }
    double zero[TRC_SYSTEM_MAX_S + TRC_SYSTEM_MAX_M] = {0}, x1[TRC_SYSTEM_MAX_S];
    sys->jacobian(zero, zero, dt, p->A, p->B);
    sys->step(zero, zero, dt, x1);
    if (trc_la_maxabs(p->s, x1) > 1e-12) { /* the experts assume x+ = A x + B u exactly */
        trc_expert_plan_free(p);
        return trc_fail(TRC_EUNSUPPORTED, "expert %s: %s has an affine drift term", name,
                        sys->name);
    }
    switch (p->kind) {
    case EXPERT_MIN_ENERGY:
        rc = plan_min_energy(p);
        break;
    case EXPERT_LQR:
        rc = plan_lqr(p);
        break;
    case EXPERT_LQR_FINITE:
        rc = plan_lqr_finite(p);
        break;
    }
    if (rc) {
        trc_expert_plan_free(p);
        return rc;
    }
    *out = p;
    return TRC_OK;
}

static double clip(double v, double b, int *clipped) {
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

int trc_expert_solve(const trc_expert_plan *p, const double *x0, const double *target, double *u,
                     trc_expert_cost *cost) {
    const int s = p->s, m = p->m, T = p->T;
    double x[TRC_SYSTEM_MAX_S], xn[TRC_SYSTEM_MAX_S], e[TRC_SYSTEM_MAX_S];
    double c[TRC_SYSTEM_MAX_S];
    double effort = 0.0, objective = 0.0;
    int clipped = 0;
    if (p->kind == EXPERT_MIN_ENERGY) {
        /* d = x* - A^T x0; u_k = M_k d (all T steps at once, open loop). */
        double d[TRC_SYSTEM_MAX_S];
        for (int i = 0; i < s; i++) {
            double acc = target[i];
            for (int j = 0; j < s; j++)
                acc -= p->AT[i * s + j] * x0[j];
            d[i] = acc;
        }
        for (int k = 0; k < T * m; k++) {
            double acc = 0.0;
            for (int j = 0; j < s; j++)
                acc += p->M[(size_t)k * s + j] * d[j];
            u[k] = clip(acc, p->bound, &clipped);
            effort += u[k] * u[k];
        }
        objective = effort;
    } else {
        /* Closed loop through the system's own step function, so clipping is felt. */
        const int finite = p->kind == EXPERT_LQR_FINITE;
        if (finite)
            for (int i = 0; i < s; i++) {
                double acc = -target[i];
                for (int j = 0; j < s; j++)
                    acc += p->A[i * s + j] * target[j];
                c[i] = acc;
            }
        memcpy(x, x0, sizeof(double) * s);
        for (int t = 0; t < T; t++) {
            const double *K = finite ? p->K + (size_t)t * m * s : p->K;
            double ee = 0.0;
            for (int i = 0; i < s; i++) {
                e[i] = x[i] - target[i];
                ee += e[i] * e[i];
            }
            double uu = 0.0;
            for (int q = 0; q < m; q++) {
                double acc = 0.0;
                for (int j = 0; j < s; j++)
                    acc -= K[q * s + j] * e[j];
                if (finite)
                    for (int j = 0; j < s; j++)
                        acc -= p->F[(size_t)t * m * s + q * s + j] * c[j];
                double v = clip(acc, p->bound, &clipped);
                u[t * m + q] = v;
                uu += v * v;
            }
            effort += uu;
            objective += p->w.q * ee + p->w.r * uu;
            p->sys->step(x, u + (size_t)t * m, p->dt, xn);
            memcpy(x, xn, sizeof(double) * s);
        }
        if (finite) {
            double ee = 0.0;
            for (int i = 0; i < s; i++)
                ee += (x[i] - target[i]) * (x[i] - target[i]);
            objective += p->w.qf * p->w.q * ee;
        }
    }
    if (!isfinite(effort) || !isfinite(objective))
        return trc_fail(TRC_ENUMERIC, "%s: non-finite controls", expert_names[p->kind]);
    if (cost) {
        cost->effort = effort;
        cost->objective = objective;
        cost->clipped = clipped;
    }
    return TRC_OK;
}

void trc_expert_plan_info(const trc_expert_plan *p, trc_expert_info *o) {
    memset(o, 0, sizeof *o);
    o->name = expert_names[p->kind];
    o->s = p->s;
    o->m = p->m;
    o->T = p->T;
    o->dt = p->dt;
    o->bound = p->bound;
    o->weights = p->w;
    o->A = p->A;
    o->B = p->B;
    o->W = p->W;
    o->P = p->P;
    o->K = p->K;
}
