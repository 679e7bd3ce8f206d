/* ilqr: box-constrained iterative LQR on the true dynamics (the solver: trc/ilqr.h,
 * ilqr_solver.c), for any system with Jacobians. It minimises the lqr_finite cost
 * sum e'Qe + u'Ru + e_T'Qf e_T under |u| <= b, with Q = lqr_q diag(the system's cost_q),
 * R = lqr_r I, Qf = lqr_qf Q (lqr_qf 0: the system's cost_qf). Warm starts: lqr_finite's
 * rollout and u = 0, the lowest cost kept; each sample reports iterations and convergence. */
#include "expert_impl.h"
#include "trc/error.h"
#include "trc/ilqr.h"

#include <math.h>

static const trc_option ilqr_params[] = {
    {.name = "lqr_q",
     .type = TRC_OPT_DOUBLE,
     .offset = 0 * sizeof(double),
     .def = 1.0,
     .max = HUGE_VAL,
     .min_open = 1,
     .help = "state weight, Q = q diag(the system's cost_q)",
     .metavar = "Q",
     .where = TRC_OPT_ALL},
    {.name = "lqr_r",
     .type = TRC_OPT_DOUBLE,
     .offset = 1 * sizeof(double),
     .def = 0.1,
     .max = HUGE_VAL,
     .min_open = 1,
     .help = "control weight, R = r I (positive definite)",
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
    {.name = "max_iters",
     .type = TRC_OPT_DOUBLE,
     .offset = 3 * sizeof(double),
     .def = 100.0,
     .min = 1.0,
     .max = 100000.0,
     .help = "ilqr iterations (backward passes) per warm start",
     .metavar = "N",
     .where = TRC_OPT_ALL},
};

/* The plan's parameters as the solver's problem: Q, R, Qf. */
int trc_expert_quadratic_weights(const trc_expert_plan *p, double *Q, double *R, double *Qf) {
    const int s = p->s, m = p->m;
    for (int i = 0; i < s * s; i++)
        Q[i] = Qf[i] = 0.0;
    for (int i = 0; i < m * m; i++)
        R[i] = 0.0;
    for (int i = 0; i < s; i++) {
        Q[i * s + i] = p->params[0] * trc_system_cost_q(p->sys, i);
        Qf[i * s + i] = p->params[2] * Q[i * s + i];
    }
    for (int i = 0; i < m; i++)
        R[i * m + i] = p->params[1];
    return TRC_OK;
}

/* The solver from the resolved parameters (lqr_qf 0 resolved to the system's here), with the
 * given warm starts (0: all). */
static int ilqr_begin(trc_expert_plan *p, int max_iters, int starts, trc_ilqr **out) {
    if (p->params[2] == 0.0)
        p->params[2] = trc_system_cost_qf(p->sys);
    double Q[TRC_SYSTEM_MAX_S * TRC_SYSTEM_MAX_S], Qf[TRC_SYSTEM_MAX_S * TRC_SYSTEM_MAX_S];
    double R[TRC_SYSTEM_MAX_M * TRC_SYSTEM_MAX_M];
    trc_expert_quadratic_weights(p, Q, R, Qf);
    const trc_ilqr_problem pb = {p->sys, p->dt, p->T, p->bound, Q, R, Qf};
    trc_ilqr_options o;
    trc_ilqr_options_default(&o);
    if (max_iters > 0)
        o.max_iters = max_iters;
    if (starts)
        o.starts = starts;
    int rc = trc_ilqr_create(&pb, &o, out);
    return rc ? trc_fail_prefix(rc, "%s: ", p->ops->name) : TRC_OK;
}

int trc_expert_ilqr_begin(trc_expert_plan *p, int max_iters, trc_ilqr **out) {
    return ilqr_begin(p, max_iters, 0, out);
}

/* The plan's state: the solver with every warm start, and the one that starts from a guess. */
typedef struct ilqr_state {
    trc_ilqr *all, *given;
} ilqr_state;

static int ilqr_accepts(const trc_system *sys) {
    if (!sys->jacobian)
        return trc_fail(TRC_EUNSUPPORTED, "expert ilqr needs Jacobians; %s has no Jacobians",
                        sys->name);
    return TRC_OK;
}

static int ilqr_plan(trc_expert_plan *p) {
    const double it = p->params[3];
    if (it != floor(it))
        return trc_fail(TRC_EINVAL, "ilqr: max_iters must be a whole number, got %g", it);
    ilqr_state *st = calloc(1, sizeof *st);
    if (!st)
        return trc_fail(TRC_ENOMEM, "ilqr: cannot allocate the plan");
    p->state = st;
    int rc = ilqr_begin(p, (int)it, 0, &st->all);
    if (rc == TRC_OK)
        rc = ilqr_begin(p, (int)it, TRC_ILQR_START_GIVEN, &st->given);
    return rc;
}

/* One solve with `plan`, from u_init when given; fills cost. */
static int run(const trc_expert_plan *p, const trc_ilqr *plan, const double *x0,
               const double *target, const double *u_init, double *u, trc_expert_cost *cost) {
    trc_ilqr_work *w = trc_ilqr_work_create(plan);
    if (!w)
        return TRC_ENOMEM;
    trc_ilqr_result res;
    double start = NAN;
    if (u_init) { /* J where the solver starts: the guess as it clips it */
        const int U = p->T * p->m;
        double *uc = malloc(sizeof(double) * (size_t)U);
        if (!uc) {
            trc_ilqr_work_free(w);
            return trc_fail(TRC_ENOMEM, "ilqr: out of memory");
        }
        for (int k = 0; k < U; k++)
            uc[k] = isfinite(u_init[k]) ? fmin(fmax(u_init[k], -p->bound), p->bound) : 0.0;
        start = trc_ilqr_cost(plan, w, x0, target, uc);
        free(uc);
    }
    int rc = trc_ilqr_solve(plan, w, x0, target, u_init, u, &res);
    trc_ilqr_work_free(w);
    if (rc)
        return rc;
    if (cost) {
        double effort = 0.0;
        int clipped = 0;
        for (int k = 0; k < p->T * p->m; k++) {
            effort += u[k] * u[k];
            clipped += fabs(u[k]) >= p->bound;
        }
        cost->effort = effort;
        cost->objective = res.cost;
        cost->clipped = clipped;
        cost->iterations = res.iterations;
        cost->converged = res.converged;
        cost->grad = res.grad;
        cost->solve_ms = res.solve_ms;
        cost->start_objective = start;
    }
    return TRC_OK;
}

static int ilqr_solve(const trc_expert_plan *p, const double *x0, const double *target, double *u,
                      trc_expert_cost *cost) {
    return run(p, ((const ilqr_state *)p->state)->all, x0, target, NULL, u, cost);
}

static int ilqr_solve_from(const trc_expert_plan *p, const double *x0, const double *target,
                           const double *u_init, double *u, trc_expert_cost *cost) {
    return run(p, ((const ilqr_state *)p->state)->given, x0, target, u_init, u, cost);
}

static void ilqr_free(void *state) {
    ilqr_state *st = state;
    if (!st)
        return;
    trc_ilqr_free(st->all);
    trc_ilqr_free(st->given);
    free(st);
}

const trc_expert trc_expert_ilqr = {
    .name = "ilqr",
    .about = "box-constrained iterative LQR on the true dynamics (any system with Jacobians)",
    .cost_label = "lqr_quadratic",
    .accepts = ilqr_accepts,
    .params = ilqr_params,
    .nparams = sizeof ilqr_params / sizeof ilqr_params[0],
    .plan = ilqr_plan,
    .solve = ilqr_solve,
    .free = ilqr_free,
    .iterative = 1,
    .solve_from = ilqr_solve_from,
};
