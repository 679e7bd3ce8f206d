/* trc/polish.h: the expert's solve_from with an iteration budget, timed, with J before/after. */
#include "trc/polish.h"
#include "trc/error.h"

#include <math.h>
#include <string.h>
#include <time.h>

int trc_polish_check(const char *expert, const trc_system *sys) {
    const trc_expert *e = trc_expert_find(expert);
    if (!e)
        return TRC_ENOTFOUND;
    if (!e->solve_from || !trc_expert_param_find(e, "max_iters"))
        return trc_fail(TRC_EUNSUPPORTED, "expert %s cannot start from a guess (ilqr can)", expert);
    return sys ? e->accepts(sys) : TRC_OK;
}

int trc_polish_plan_create(const char *expert, const trc_system *sys, double dt, int T,
                           double bound, const double *params, int max_iters,
                           trc_expert_plan **out) {
    *out = NULL;
    int rc = trc_polish_check(expert, sys);
    if (rc)
        return rc;
    if (max_iters < 1 || max_iters > TRC_POLISH_MAX_ITERS)
        return trc_fail(TRC_EINVAL, "max_iters must be in 1..%d, got %d", TRC_POLISH_MAX_ITERS,
                        max_iters);
    const trc_expert *e = trc_expert_find(expert);
    double p[TRC_EXPERT_MAX_PARAMS] = {0};
    if (params)
        memcpy(p, params, sizeof p);
    p[trc_expert_param_find(e, "max_iters")->offset / sizeof(double)] = max_iters;
    return trc_expert_plan_create(expert, sys, dt, T, bound, p, out);
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + 1e-6 * (double)ts.tv_nsec;
}

int trc_polish_run(const trc_expert_plan *plan, const double *x0, const double *target,
                   const double *u_init, double *u, trc_polish_result *res) {
    const double t0 = now_ms();
    trc_expert_cost c;
    int rc = trc_expert_solve_from(plan, x0, target, u_init, u, &c);
    if (rc)
        return rc;
    if (!isfinite(c.start_objective) || !isfinite(c.objective))
        return trc_fail(TRC_ENUMERIC, "polish: the cost of the guess is not finite");
    if (res)
        *res = (trc_polish_result){.iterations = c.iterations,
                                   .converged = c.converged,
                                   .cost_before = c.start_objective,
                                   .cost_after = c.objective,
                                   .ms = now_ms() - t0};
    return TRC_OK;
}
