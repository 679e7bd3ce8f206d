/* The experts table (table.h; each expert in its own file) and what is common to every expert:
 * lookup, parameter resolution against the expert's descriptors, the checks of plan creation
 * and the dispatch to the expert's ops. Plans are immutable after creation, so one plan serves
 * many threads. */
#include "expert_impl.h"
#include "trc/error.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define MAX_T 100000 /* horizon bound: keeps plan sizes sane */

#define TRC_EXPERT(name) extern const trc_expert trc_expert_##name;
#include "table.h"
#undef TRC_EXPERT

static const trc_expert *const experts[] = {
#define TRC_EXPERT(name) &trc_expert_##name,
#include "table.h"
#undef TRC_EXPERT
};

#define NEXPERTS (sizeof experts / sizeof experts[0])

size_t trc_expert_count(void) {
    return NEXPERTS;
}

const trc_expert *trc_expert_at(size_t i) {
    return i < NEXPERTS ? experts[i] : NULL;
}

const char *trc_expert_name_at(size_t i) {
    return i < NEXPERTS ? experts[i]->name : NULL;
}

const trc_expert *trc_expert_find(const char *name) {
    char known[256] = "";
    for (size_t i = 0; i < NEXPERTS; i++) {
        if (name && strcmp(name, experts[i]->name) == 0)
            return experts[i];
        size_t len = strlen(known);
        snprintf(known + len, sizeof known - len, "%s%s", i ? ", " : "", experts[i]->name);
    }
    trc_fail(TRC_ENOTFOUND, "unknown expert '%s' (known: %s)", name ? name : "(null)", known);
    return NULL;
}

int trc_expert_check_name(const char *name) {
    return trc_expert_find(name) ? TRC_OK : TRC_ENOTFOUND;
}

const trc_option *trc_expert_param_find(const trc_expert *e, const char *name) {
    for (size_t i = 0; e && name && i < e->nparams; i++)
        if (strcmp(e->params[i].name, name) == 0)
            return &e->params[i];
    return NULL;
}

void trc_expert_params_default(const trc_expert *e, double *params) {
    memset(params, 0, TRC_EXPERT_MAX_PARAMS * sizeof *params);
    trc_options_default(e->params, e->nparams, params);
}

int trc_expert_params_resolve(const trc_expert *e, const double *in, double *out) {
    double v[TRC_EXPERT_MAX_PARAMS];
    trc_expert_params_default(e, v);
    for (size_t i = 0; i < e->nparams; i++) {
        const trc_option *o = &e->params[i];
        size_t k = o->offset / sizeof(double);
        if (!in || in[k] == 0.0)
            continue;
        if (!isfinite(in[k]))
            return trc_fail(TRC_EINVAL, "%s: parameter %s must be finite, got %g", e->name, o->name,
                            in[k]);
        v[k] = in[k];
    }
    int rc = trc_options_validate(e->params, e->nparams, v);
    if (rc)
        return trc_fail_prefix(rc, "%s: ", e->name);
    memcpy(out, v, sizeof v);
    return TRC_OK;
}

void trc_expert_plan_free(trc_expert_plan *p) {
    if (!p)
        return;
    if (p->ops->free)
        p->ops->free(p->state);
    free(p);
}

int trc_expert_plan_create(const char *name, const trc_system *sys, double dt, int T, double bound,
                           const double *params, trc_expert_plan **out) {
    *out = NULL;
    const trc_expert *e = trc_expert_find(name);
    if (!e)
        return TRC_ENOTFOUND;
    if (!sys)
        return trc_fail(TRC_EINVAL, "%s: no system", name);
    if (!(dt > 0.0) || !isfinite(dt))
        return trc_fail(TRC_EINVAL, "%s: time step must be positive and finite, got %g", name, dt);
    if (T <= 0 || T > MAX_T)
        return trc_fail(TRC_EINVAL, "%s: horizon must be in 1..%d, got %d", name, MAX_T, T);
    if (!(bound > 0.0) || !isfinite(bound))
        return trc_fail(TRC_EINVAL, "%s: control bound must be positive and finite, got %g", name,
                        bound);
    int rc = e->accepts(sys);
    if (rc)
        return rc;
    if (sys->s > TRC_SYSTEM_MAX_S || sys->m > TRC_SYSTEM_MAX_M)
        return trc_fail(TRC_EUNSUPPORTED, "%s: system %s is too large", name, sys->name);
    trc_expert_plan *p = calloc(1, sizeof *p);
    if (!p)
        return trc_fail(TRC_ENOMEM, "%s: cannot allocate the plan", name);
    p->ops = e;
    p->sys = sys;
    p->s = sys->s;
    p->m = sys->m;
    p->T = T;
    p->dt = dt;
    p->bound = bound;
    if ((rc = trc_expert_params_resolve(e, params, p->params)) || (rc = e->plan(p))) {
        trc_expert_plan_free(p);
        return rc;
    }
    *out = p;
    return TRC_OK;
}

int trc_expert_solve(const trc_expert_plan *p, const double *x0, const double *target, double *u,
                     trc_expert_cost *cost) {
    if (cost) /* what a direct expert leaves unsaid: one solve, converged */
        *cost = (trc_expert_cost){.converged = 1, .start_objective = NAN};
    return p->ops->solve(p, x0, target, u, cost);
}

int trc_expert_solve_from(const trc_expert_plan *p, const double *x0, const double *target,
                          const double *u_init, double *u, trc_expert_cost *cost) {
    if (!p->ops->solve_from)
        return trc_fail(TRC_EUNSUPPORTED, "expert %s cannot start from a guess (polish: ilqr)",
                        p->ops->name);
    if (cost)
        *cost = (trc_expert_cost){.converged = 1, .start_objective = NAN};
    return p->ops->solve_from(p, x0, target, u_init, u, cost);
}

void trc_expert_plan_info(const trc_expert_plan *p, trc_expert_info *o) {
    memset(o, 0, sizeof *o);
    o->name = p->ops->name;
    o->s = p->s;
    o->m = p->m;
    o->T = p->T;
    o->dt = p->dt;
    o->bound = p->bound;
    o->params = p->params;
    o->nparams = p->ops->nparams;
    if (p->ops->info)
        p->ops->info(p, o);
}
