/* Metrics of control sequences (see eval.h): one double-precision rollout per sample through
 * the system's step function, the same one data generation used. */
#include "trc/eval.h"
#include "trc/error.h"
#include "trc/rng.h"

#include <math.h>
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
    const int s = sys->s, m = sys->m;
    double x[TRC_SYSTEM_MAX_S], xn[TRC_SYSTEM_MAX_S], uu[TRC_SYSTEM_MAX_M];
    double sum = 0, sumsq = 0, csum = 0, csumsq = 0, mn = INFINITY, mx = 0;
    double comp[TRC_SYSTEM_MAX_S] = {0};
    size_t ok = 0;
    for (size_t i = 0; i < n; i++) {
        const float *ui = u + i * (size_t)T * m;
        double cost = 0;
        for (int r = 0; r < s; r++)
            x[r] = x0[i * s + r];
        for (int t = 0; t < T; t++) {
            for (int q = 0; q < m; q++) {
                uu[q] = ui[t * m + q];
                cost += uu[q] * uu[q];
            }
            sys->step(x, uu, dt, xn);
            memcpy(x, xn, sizeof(double) * s);
        }
        double e2 = 0;
        for (int r = 0; r < s; r++) {
            double d = x[r] - target[i * s + r];
            comp[r] += fabs(d);
            e2 += d * d;
        }
        double err = sqrt(e2);
        if (!isfinite(err) || !isfinite(cost))
            return trc_fail(TRC_ENUMERIC, "eval: sample %zu: controls or trajectory not finite", i);
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
    const char *name = system && system[0] ? system
                       : ds->has_settings  ? ds->settings.system
                                           : "double_integrator";
    const trc_system *sys = trc_system_find(name);
    if (!sys)
        return TRC_ENOTFOUND;
    if (sys->s != ds->s || sys->m != ds->m)
        return trc_fail(TRC_EINVAL, "data has s=%d, m=%d but system %s has s=%d, m=%d", ds->s,
                        ds->m, sys->name, sys->s, sys->m);
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
