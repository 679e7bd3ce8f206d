/* lqr_finite: finite-horizon LQR, time-varying gains K_t from the backward Riccati recursion
 * from P_T = Qf, with a feed-forward for the affine error dynamics of a non-zero target, applied
 * in closed loop through the system's step. Weights Q = lqr_q diag(the system's cost_q),
 * R = lqr_r I, Qf = lqr_qf Q (lqr_qf 0: the system's cost_qf).
 * On a nonlinear system it is what the original project used for Van der Pol: the LQR of the
 * Euler linearisation at the target, applied as feedback through the true dynamics
 * (trc_ilqr_lqr_rollout in trc/ilqr.h). */
#include "base/linalg.h"
#include "linear.h"
#include "trc/error.h"
#include "trc/ilqr.h"

#include <math.h>
#include <string.h>

static const trc_option lqrf_params[] = {
    {.name = "lqr_q",
     .type = TRC_OPT_DOUBLE,
     .offset = 0 * sizeof(double),
     .def = 1.0,
     .max = HUGE_VAL,
     .min_open = 1,
     .help = "LQR state weight, Q = q I",
     .metavar = "Q",
     .where = TRC_OPT_ALL},
    {.name = "lqr_r",
     .type = TRC_OPT_DOUBLE,
     .offset = 1 * sizeof(double),
     .def = 0.1,
     .max = HUGE_VAL,
     .min_open = 1,
     .help = "LQR control weight, R = r I",
     .metavar = "R",
     .where = TRC_OPT_ALL},
    {.name = "lqr_qf",
     .type = TRC_OPT_DOUBLE,
     .offset = 2 * sizeof(double),
     .def = 0.0,
     .max = HUGE_VAL,
     .min_open = 1,
     .auto_text = "the system's (100 double_integrator, 20 van_der_pol, 1e10 rocket_landing)",
     .help = "terminal weight, Qf = qf Q",
     .metavar = "QF",
     .where = TRC_OPT_ALL},
};

static int lqrf_plan_nonlinear(trc_expert_plan *p) {
    trc_linear_state *ls = calloc(1, sizeof *ls);
    if (!ls)
        return trc_fail(TRC_ENOMEM, "lqr_finite: cannot allocate the plan");
    p->state = ls;
    return trc_expert_ilqr_begin(p, 0, &ls->nl);
}

static int lqrf_plan(trc_expert_plan *p) {
    if (!p->sys->linear)
        return lqrf_plan_nonlinear(p);
    if (p->params[2] == 0.0)
        p->params[2] = trc_system_cost_qf(p->sys);
    int rc = trc_linear_begin(p);
    if (rc)
        return rc;
    trc_linear_state *ls = p->state;
    ls->q = p->params[0];
    ls->r = p->params[1];
    ls->qf = p->params[2];
    const int s = p->s, m = p->m, T = p->T;
    const size_t ss = (size_t)s * s, ms = (size_t)m * s;
    ls->P = trc_expert_alloc((size_t)(T + 1) * ss);
    ls->K = trc_expert_alloc((size_t)T * ms);
    ls->F = trc_expert_alloc((size_t)T * ms);
    double *G = trc_expert_alloc(ss), *H = trc_expert_alloc(ss), *ABK = trc_expert_alloc(ss),
           *SinvBt = trc_expert_alloc(ms);
    rc = TRC_OK;
    if (!ls->P || !ls->K || !ls->F || !G || !H || !ABK || !SinvBt) {
        rc = trc_fail(TRC_ENOMEM, "lqr_finite: cannot allocate the plan");
        goto out;
    }
    /* P_T = Qf; G_T = 0. Backward: K_t, P_t from the Riccati step on P_{t+1};
     * the feed-forward handles the affine error dynamics e+ = A e + B u + c, c = (A - I) x*:
     * F_t = S^-1 B' (P_{t+1} + G_{t+1}), G_t = (A - B K_t)' (P_{t+1} + G_{t+1}). */
    double *PT = ls->P + (size_t)T * ss;
    for (int i = 0; i < s; i++)
        PT[i * s + i] = ls->qf * ls->q * trc_system_cost_q(p->sys, i);
    for (int t = T - 1; t >= 0; t--) {
        const double *Pn = ls->P + (size_t)(t + 1) * ss;
        double *Kt = ls->K + (size_t)t * ms;
        if ((rc = trc_riccati_step(p, ls, Pn, Kt, ls->P + (size_t)t * ss, SinvBt)) != TRC_OK) {
            rc = trc_fail(TRC_ENUMERIC, "lqr_finite: Riccati recursion failed at t=%d: %s", t,
                          trc_errmsg());
            goto out;
        }
        for (size_t i = 0; i < ss; i++)
            H[i] = Pn[i] + G[i];
        trc_la_mul(m, s, s, SinvBt, H, ls->F + (size_t)t * ms);
        trc_la_mul(s, m, s, ls->B, Kt, ABK);
        for (size_t i = 0; i < ss; i++)
            ABK[i] = ls->A[i] - ABK[i];
        trc_la_mul_tn(s, s, s, ABK, H, G);
    }
    if (!isfinite(trc_la_maxabs((int)((T + 1) * ss), ls->P)))
        rc = trc_fail(TRC_ENUMERIC, "lqr_finite: Riccati recursion overflowed");
out:
    free(G);
    free(H);
    free(ABK);
    free(SinvBt);
    return rc;
}

static int lqrf_solve(const trc_expert_plan *p, const double *x0, const double *target, double *u,
                      trc_expert_cost *cost) {
    const trc_linear_state *ls = p->state;
    if (!ls->nl)
        return trc_linear_feedback(p, 1, x0, target, u, cost);
    trc_ilqr_work *w = trc_ilqr_work_create(ls->nl);
    if (!w)
        return TRC_ENOMEM;
    double J;
    int rc = trc_ilqr_lqr_rollout(ls->nl, w, x0, target, u, &J);
    trc_ilqr_work_free(w);
    if (rc == TRC_OK && cost) {
        cost->effort = 0.0;
        cost->clipped = 0;
        for (int k = 0; k < p->T * p->m; k++) {
            cost->effort += u[k] * u[k];
            cost->clipped += fabs(u[k]) >= p->bound;
        }
        cost->objective = J;
    }
    return rc;
}

/* A linear system, or any system with Jacobians (linearised at the target). */
static int lqrf_accepts(const trc_system *sys) {
    if (sys->linear || sys->jacobian)
        return TRC_OK;
    return trc_fail(TRC_EUNSUPPORTED,
                    "expert lqr_finite needs a linear system or Jacobians; %s has neither",
                    sys->name);
}

const trc_expert trc_expert_lqr_finite = {
    .name = "lqr_finite",
    .about = "finite-horizon LQR, time-varying gains (backward Riccati recursion), closed loop",
    .cost_label = "lqr_quadratic",
    .accepts = lqrf_accepts,
    .params = lqrf_params,
    .nparams = sizeof lqrf_params / sizeof lqrf_params[0],
    .plan = lqrf_plan,
    .solve = lqrf_solve,
    .free = trc_linear_free,
    .info = trc_linear_info,
};
