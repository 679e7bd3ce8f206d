/* Metrics of control sequences (see eval.h) from trc_rollout_score's per-sample final states,
 * errors and costs; the system a dataset is evaluated with (the one resolution rule). */
#include "trc/eval.h"
#include "trc/error.h"
#include "trc/rng.h"
#include "trc/rollout.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int trc_eval_controls(const trc_system *sys, double dt, int T, size_t n, const float *x0,
                      const float *target, const float *u, double threshold, trc_eval_stats *out,
                      float *final_err) {
    memset(out, 0, sizeof *out);
    if (!sys || sys->s > TRC_SYSTEM_MAX_S || sys->m > TRC_SYSTEM_MAX_M)
        return trc_fail(TRC_EINVAL, "eval: no or unsupported system");
    if (!(dt > 0.0) || !isfinite(dt))
        return trc_fail(TRC_EINVAL, "eval: time step must be positive and finite, got %g", dt);
    if (T <= 0)
        return trc_fail(TRC_EINVAL, "eval: horizon must be positive, got %d", T);
    if (n == 0 || !x0 || !target || !u)
        return trc_fail(TRC_EINVAL, "eval: no samples");
    if (!(threshold > 0.0) || !isfinite(threshold))
        return trc_fail(TRC_EINVAL, "eval: threshold must be positive, got %g", threshold);
    const int s = sys->s;
    double *xf = malloc(n * (size_t)s * sizeof *xf), *errs = malloc(n * sizeof *errs),
           *costs = malloc(n * sizeof *costs);
    if (!xf || !errs || !costs) {
        free(xf);
        free(errs);
        free(costs);
        return trc_fail(TRC_ENOMEM, "eval: cannot allocate for %zu samples", n);
    }
    trc_rollout_out ro = {.final_state = xf, .final_error = errs, .cost = costs};
    int rc = trc_rollout_score(sys, dt, T, n, x0, target, u, &ro);
    double sum = 0, sumsq = 0, csum = 0, csumsq = 0, mn = INFINITY, mx = 0;
    double comp[TRC_SYSTEM_MAX_S] = {0};
    size_t ok = 0;
    for (size_t i = 0; i < n && rc == TRC_OK; i++) {
        for (int r = 0; r < s; r++)
            comp[r] += fabs(xf[i * s + r] - target[i * s + r]);
        double err = errs[i], cost = costs[i];
        if (final_err)
            final_err[i] = (float)err;
        sum += err;
        sumsq += err * err;
        csum += cost;
        csumsq += cost * cost;
        mn = fmin(mn, err);
        mx = fmax(mx, err);
        ok += err < threshold;
    }
    free(xf);
    free(errs);
    free(costs);
    if (rc)
        return trc_fail_prefix(rc, "eval: ");
    out->n = n;
    out->s = s;
    out->threshold = threshold;
    out->err_mean = sum / (double)n;
    out->cost_mean = csum / (double)n;
    if (n > 1) { /* sample variance, guarded against rounding below zero */
        out->err_std = sqrt(fmax(0.0, (sumsq - sum * sum / (double)n) / (double)(n - 1)));
        out->cost_std = sqrt(fmax(0.0, (csumsq - csum * csum / (double)n) / (double)(n - 1)));
    }
    out->err_min = mn;
    out->err_max = mx;
    for (int r = 0; r < s; r++)
        out->comp_mean_abs[r] = comp[r] / (double)n;
    out->successes = ok;
    out->success_rate = (double)ok / (double)n;
    return TRC_OK;
}

int trc_eval_resolve(const trc_dataset *ds, const char *system, double dt,
                     const trc_system **sys_out, double *dt_out) {
    /* the flag, then the data's own settings, then the one system of the data's shape */
    const char *name = system && system[0] ? system : ds->has_settings ? ds->settings.system : NULL;
    const trc_system *sys;
    int rc = trc_system_resolve(name, "data", ds->s, ds->m, ds->T, &sys);
    if (rc)
        return rc;
    double d = dt > 0.0                                                          ? dt
               : ds->has_settings && strcmp(ds->settings.system, sys->name) == 0 ? ds->settings.dt
                                                                                 : sys->dt;
    if (!(d > 0.0) || !isfinite(d))
        return trc_fail(TRC_EINVAL, "time step must be positive and finite, got %g", d);
    *sys_out = sys;
    *dt_out = d;
    return TRC_OK;
}

int trc_eval_random_controls(uint64_t seed, double sigma, size_t count, float *u) {
    if (!(sigma >= 0.0) || !isfinite(sigma))
        return trc_fail(TRC_EINVAL, "random controls: sigma must be finite and >= 0, got %g",
                        sigma);
    trc_rng rng;
    trc_rng_seed(&rng, seed);
    for (size_t i = 0; i < count; i++)
        u[i] = (float)(sigma * trc_rng_normal(&rng));
    return TRC_OK;
}

double trc_eval_rel(double a, double b) {
    return b != 0.0 ? (a - b) / fabs(b) : NAN;
}
