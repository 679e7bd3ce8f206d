/* The linear experts' common parts (linear.h): capability, matrices, Riccati step, feedback. */
#include "linear.h"
#include "base/linalg.h"
#include "trc/error.h"
#include "trc/ilqr.h"

#include <math.h>
#include <string.h>

int trc_linear_accepts(const char *expert, const trc_system *sys) {
    if (!sys->linear)
        return trc_fail(TRC_EUNSUPPORTED, "expert %s needs a linear system; %s is nonlinear",
                        expert, sys->name);
    return TRC_OK;
}

void trc_linear_free(void *state) {
    trc_linear_state *ls = state;
    if (!ls)
        return;
    free(ls->A);
    free(ls->B);
    free(ls->AT);
    free(ls->M);
    free(ls->W);
    free(ls->P);
    free(ls->K);
    free(ls->F);
    trc_ilqr_free(ls->nl);
    free(ls);
}

int trc_linear_begin(trc_expert_plan *p) {
    trc_linear_state *ls = calloc(1, sizeof *ls);
    if (!ls)
        return trc_fail(TRC_ENOMEM, "%s: cannot allocate the plan", p->ops->name);
    p->state = ls;
    ls->A = trc_expert_alloc((size_t)p->s * p->s);
    ls->B = trc_expert_alloc((size_t)p->s * p->m);
    if (!ls->A || !ls->B)
        return trc_fail(TRC_ENOMEM, "%s: cannot allocate the plan", p->ops->name);
    double zero[TRC_SYSTEM_MAX_S + TRC_SYSTEM_MAX_M] = {0}, x1[TRC_SYSTEM_MAX_S];
    p->sys->jacobian(zero, zero, p->dt, ls->A, ls->B);
    p->sys->step(zero, zero, p->dt, x1);
    if (trc_la_maxabs(p->s, x1) > 1e-12) /* the experts assume x+ = A x + B u exactly */
        return trc_fail(TRC_EUNSUPPORTED, "expert %s: %s has an affine drift term", p->ops->name,
                        p->sys->name);
    return TRC_OK;
}

void trc_linear_info(const trc_expert_plan *p, trc_expert_info *o) {
    const trc_linear_state *ls = p->state;
    o->A = ls->A;
    o->B = ls->B;
    o->W = ls->W;
    o->P = ls->P;
    o->K = ls->K;
}

void trc_symmetrize(int s, double *P) {
    for (int i = 0; i < s; i++)
        for (int j = i + 1; j < s; j++) {
            double a = 0.5 * (P[i * s + j] + P[j * s + i]);
            P[i * s + j] = P[j * s + i] = a;
        }
}

int trc_riccati_step(const trc_expert_plan *p, const trc_linear_state *ls, const double *Pn,
                     double *K, double *P, double *SinvBt) {
    const int s = p->s, m = p->m;
    double PB[TRC_SYSTEM_MAX_S * TRC_SYSTEM_MAX_M], PA[TRC_SYSTEM_MAX_S * TRC_SYSTEM_MAX_S];
    double S[TRC_SYSTEM_MAX_M * TRC_SYSTEM_MAX_M];
    double rhs[TRC_SYSTEM_MAX_M * (2 * TRC_SYSTEM_MAX_S)];
    trc_la_mul(s, s, m, Pn, ls->B, PB);   /* P'B: [s, m] */
    trc_la_mul_tn(m, s, m, ls->B, PB, S); /* B'P'B: [m, m] */
    for (int i = 0; i < m; i++)
        S[i * m + i] += ls->r;
    trc_la_mul(s, s, s, Pn, ls->A, PA); /* P'A: [s, s] */
    /* rhs = [B'P'A | B'] so one solve gives K and S^-1 B'. */
    const int w = SinvBt ? 2 * s : s;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < s; j++) {
            double acc = 0.0;
            for (int l = 0; l < s; l++)
                acc += ls->B[l * m + i] * PA[l * s + j];
            rhs[i * w + j] = acc;
            if (SinvBt)
                rhs[i * w + s + j] = ls->B[j * m + i];
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
    trc_la_mul_tn(s, s, s, ls->A, PA, P);
    for (int i = 0; i < s; i++)
        for (int j = 0; j < s; j++) {
            double acc = 0.0;
            for (int l = 0; l < m; l++) {
                double btpa_li = 0.0; /* (B'P'A)[l, i] */
                for (int r = 0; r < s; r++)
                    btpa_li += ls->B[r * m + l] * PA[r * s + i];
                acc += btpa_li * K[l * s + j];
            }
            P[i * s + j] += (i == j ? ls->q * trc_system_cost_q(p->sys, i) : 0.0) - acc;
        }
    trc_symmetrize(s, P);
    return TRC_OK;
}

int trc_linear_feedback(const trc_expert_plan *p, int finite, const double *x0,
                        const double *target, double *u, trc_expert_cost *cost) {
    const trc_linear_state *ls = p->state;
    const int s = p->s, m = p->m, T = p->T;
    double x[TRC_SYSTEM_MAX_S], xn[TRC_SYSTEM_MAX_S], e[TRC_SYSTEM_MAX_S];
    double c[TRC_SYSTEM_MAX_S];
    double effort = 0.0, objective = 0.0;
    int clipped = 0;
    /* Closed loop through the system's own step function, so clipping is felt. */
    if (finite)
        for (int i = 0; i < s; i++) {
            double acc = -target[i];
            for (int j = 0; j < s; j++)
                acc += ls->A[i * s + j] * target[j];
            c[i] = acc;
        }
    memcpy(x, x0, sizeof(double) * s);
    for (int t = 0; t < T; t++) {
        const double *K = finite ? ls->K + (size_t)t * m * s : ls->K;
        double ee = 0.0;
        for (int i = 0; i < s; i++) {
            e[i] = x[i] - target[i];
            ee += trc_system_cost_q(p->sys, i) * e[i] * e[i];
        }
        double uu = 0.0;
        for (int q = 0; q < m; q++) {
            double acc = 0.0;
            for (int j = 0; j < s; j++)
                acc -= K[q * s + j] * e[j];
            if (finite)
                for (int j = 0; j < s; j++)
                    acc -= ls->F[(size_t)t * m * s + q * s + j] * c[j];
            double v = trc_expert_clip(acc, p->bound, &clipped);
            u[t * m + q] = v;
            uu += v * v;
        }
        effort += uu;
        objective += ls->q * ee + ls->r * uu;
        p->sys->step(x, u + (size_t)t * m, p->dt, xn);
        memcpy(x, xn, sizeof(double) * s);
    }
    if (finite) {
        double ee = 0.0;
        for (int i = 0; i < s; i++)
            ee += trc_system_cost_q(p->sys, i) * (x[i] - target[i]) * (x[i] - target[i]);
        objective += ls->qf * ls->q * ee;
    }
    if (!isfinite(effort) || !isfinite(objective))
        return trc_fail(TRC_ENUMERIC, "%s: non-finite controls", p->ops->name);
    if (cost) {
        cost->effort = effort;
        cost->objective = objective;
        cost->clipped = clipped;
    }
    return TRC_OK;
}

int trc_linear_open_loop(const trc_expert_plan *p, const double *x0, const double *target,
                         double *u, trc_expert_cost *cost) {
    const trc_linear_state *ls = p->state;
    const int s = p->s, m = p->m, T = p->T;
    double effort = 0.0;
    int clipped = 0;
    /* d = x* - A^T x0; u_k = M_k d (all T steps at once, open loop). */
    double d[TRC_SYSTEM_MAX_S];
    for (int i = 0; i < s; i++) {
        double acc = target[i];
        for (int j = 0; j < s; j++)
            acc -= ls->AT[i * s + j] * x0[j];
        d[i] = acc;
    }
    for (int k = 0; k < T * m; k++) {
        double acc = 0.0;
        for (int j = 0; j < s; j++)
            acc += ls->M[(size_t)k * s + j] * d[j];
        u[k] = trc_expert_clip(acc, p->bound, &clipped);
        effort += u[k] * u[k];
    }
    if (!isfinite(effort))
        return trc_fail(TRC_ENUMERIC, "%s: non-finite controls", p->ops->name);
    if (cost) {
        cost->effort = effort;
        cost->objective = effort; /* their objective is the effort */
        cost->clipped = clipped;
    }
    return TRC_OK;
}
