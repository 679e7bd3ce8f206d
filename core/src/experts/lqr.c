/* lqr: infinite-horizon LQR, u = -K (x - target) with K from the discrete algebraic Riccati
 * equation (value iteration on the Riccati map), applied in closed loop through the system's
 * step: the original project's generator. Weights Q = lqr_q diag(the system's cost_q), R = lqr_r I.
 */
#include "base/linalg.h"
#include "linear.h"
#include "trc/error.h"

#include <math.h>
#include <string.h>

#define DARE_MAX_ITERS 200000 /* value iteration on the Riccati map */
#define DARE_TOL 1e-13        /* relative change of P at convergence */

static const trc_option lqr_params[] = {
    {.name = "lqr_q",
     .type = TRC_OPT_DOUBLE,
     .offset = 0 * sizeof(double),
     .def = 1.0,
     .max = HUGE_VAL,
     .min_open = 1,
     .help = "LQR state weight, Q = q diag(the system's cost_q)",
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
};

static int lqr_plan(trc_expert_plan *p) {
    int rc = trc_linear_begin(p);
    if (rc)
        return rc;
    trc_linear_state *ls = p->state;
    ls->q = p->params[0];
    ls->r = p->params[1];
    const int s = p->s, m = p->m;
    ls->P = trc_expert_alloc((size_t)s * s);
    ls->K = trc_expert_alloc((size_t)m * s);
    double *Pn = trc_expert_alloc((size_t)s * s);
    rc = TRC_OK;
    if (!ls->P || !ls->K || !Pn) {
        rc = trc_fail(TRC_ENOMEM, "lqr: cannot allocate the plan");
        goto out;
    }
    /* Value iteration on the Riccati map from P = Q; converges for stabilizable (A, B). */
    for (int i = 0; i < s; i++)
        ls->P[i * s + i] = ls->q * trc_system_cost_q(p->sys, i);
    int it;
    for (it = 0; it < DARE_MAX_ITERS; it++) {
        if ((rc = trc_riccati_step(p, ls, ls->P, ls->K, Pn, NULL)) != TRC_OK) {
            rc = trc_fail(TRC_ENUMERIC, "lqr: Riccati iteration failed: %s", trc_errmsg());
            goto out;
        }
        double diff = 0.0;
        for (int i = 0; i < s * s; i++)
            diff = fmax(diff, fabs(Pn[i] - ls->P[i]));
        memcpy(ls->P, Pn, sizeof(double) * s * s);
        double scale = trc_la_maxabs(s * s, ls->P);
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
    rc = trc_riccati_step(p, ls, ls->P, ls->K, Pn, NULL); /* K from the converged P */
out:
    free(Pn);
    return rc;
}

static int lqr_solve(const trc_expert_plan *p, const double *x0, const double *target, double *u,
                     trc_expert_cost *cost) {
    return trc_linear_feedback(p, 0, x0, target, u, cost);
}

static int lqr_accepts(const trc_system *sys) {
    return trc_linear_accepts("lqr", sys);
}

const trc_expert trc_expert_lqr = {
    .name = "lqr",
    .about = "infinite-horizon LQR (DARE), u = -K (x - target), closed loop",
    .cost_label = "lqr_quadratic",
    .accepts = lqr_accepts,
    .params = lqr_params,
    .nparams = sizeof lqr_params / sizeof lqr_params[0],
    .plan = lqr_plan,
    .solve = lqr_solve,
    .free = trc_linear_free,
    .info = trc_linear_info,
};
