/* Metrics of control sequences (see eval.h) from trc_rollout_score's per-sample final states,
 * errors and costs; the system a dataset is evaluated with (the one resolution rule). */
#include "trc/eval.h"
#include "trc/error.h"
#include "trc/rng.h"
#include "trc/rollout.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int check_args(const trc_system *sys, double dt, int T, size_t n, const float *x0,
                      const float *target, const void *u, double threshold) {
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
    return TRC_OK;
}

/* Means of the system's task metrics over the samples (x0, target [n, s]; xf [n, s]). */
static void task_metrics(const trc_system *sys, size_t n, const float *x0, const double *xf,
                         const float *target, trc_eval_stats *out) {
    int k = sys->metrics ? sys->nmetrics : 0, s = sys->s;
    if (k > TRC_SYSTEM_MAX_METRICS)
        k = TRC_SYSTEM_MAX_METRICS;
    out->nmetrics = k;
    out->metric_names = k ? sys->metric_names : NULL;
    double a[TRC_SYSTEM_MAX_S], b[TRC_SYSTEM_MAX_S], v[TRC_SYSTEM_MAX_METRICS];
    for (size_t i = 0; i < n && k; i++) {
        for (int r = 0; r < s; r++)
            a[r] = x0[i * s + r], b[r] = target[i * s + r];
        sys->metrics(a, xf + i * s, b, v);
        for (int j = 0; j < k; j++)
            out->metric_mean[j] += v[j];
    }
    for (int j = 0; j < k; j++)
        out->metric_mean[j] /= (double)n;
}

/* Fills `out` from each sample's final state xf [n, s], final error errs [n] and effort
 * costs [n]; final_err [n] may be NULL. */
static void summarize(int s, size_t n, const double *xf, const double *errs, const double *costs,
                      const float *target, double threshold, trc_eval_stats *out,
                      float *final_err) {
    double sum = 0, sumsq = 0, csum = 0, csumsq = 0, mn = INFINITY, mx = 0;
    double comp[TRC_SYSTEM_MAX_S] = {0};
    size_t ok = 0;
    for (size_t i = 0; i < n; i++) {
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
}

int trc_eval_controls(const trc_system *sys, double dt, int T, size_t n, const float *x0,
                      const float *target, const float *u, double threshold, trc_eval_stats *out,
                      float *final_err) {
    memset(out, 0, sizeof *out);
    int rc = check_args(sys, dt, T, n, x0, target, u, threshold);
    if (rc)
        return rc;
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
    rc = trc_rollout_score(sys, dt, T, n, x0, target, u, &ro);
    if (rc == TRC_OK) {
        summarize(s, n, xf, errs, costs, target, threshold, out, final_err);
        task_metrics(sys, n, x0, xf, target, out);
    }
    free(xf);
    free(errs);
    free(costs);
    return rc ? trc_fail_prefix(rc, "eval: ") : TRC_OK;
}

int trc_eval_closed_loop(const trc_system *sys, double dt, int T, size_t n, const float *x0,
                         const float *target, const trc_eval_loop *loop, double threshold,
                         trc_eval_stats *out, float *u_applied, float *final_err) {
    memset(out, 0, sizeof *out);
    int rc =
        check_args(sys, dt, T, n, x0, target, loop ? (const void *)loop->policy : NULL, threshold);
    if (rc)
        return rc;
    if (!(loop->noise_sigma >= 0.0) || !isfinite(loop->noise_sigma))
        return trc_fail(TRC_EINVAL, "eval: process noise must be finite and >= 0, got %g",
                        loop->noise_sigma);
    const int s = sys->s, m = sys->m;
    double *x = malloc(sizeof(double) * n * s), *effort = calloc(n, sizeof(double));
    double *errs = malloc(sizeof(double) * n);
    float *xf = malloc(sizeof(float) * n * s), *useq = malloc(sizeof(float) * n * T * m);
    if (!x || !effort || !errs || !xf || !useq) {
        rc = trc_fail(TRC_ENOMEM, "eval: cannot allocate the closed loop");
        goto out;
    }
    for (size_t k = 0; k < n * s; k++)
        x[k] = x0[k];
    trc_rng rng; /* one stream: step, then sample, then component */
    trc_rng_seed(&rng, loop->noise_seed);
    double xn[TRC_SYSTEM_MAX_S], uu[TRC_SYSTEM_MAX_M];
    for (int t = 0; t < T && rc == TRC_OK; t++) {
        for (size_t k = 0; k < n * s; k++)
            xf[k] = (float)x[k];
        if ((rc = loop->policy(loop->user, n, xf, target, T - t, useq)) != TRC_OK)
            break;
        for (size_t i = 0; i < n; i++) {
            for (int q = 0; q < m; q++) { /* the first control of the fresh sequence */
                uu[q] = useq[i * (size_t)T * m + q];
                effort[i] += uu[q] * uu[q];
                if (u_applied)
                    u_applied[(i * (size_t)T + t) * m + q] = (float)uu[q];
            }
            sys->step(x + i * s, uu, dt, xn);
            for (int r = 0; r < s; r++)
                x[i * s + r] =
                    xn[r] + (loop->noise_sigma > 0 ? loop->noise_sigma * trc_rng_normal(&rng) : 0);
        }
    }
    for (size_t i = 0; i < n && rc == TRC_OK; i++) {
        double e2 = 0; /* over the components the target fixes, as trc_rollout_score */
        for (int r = 0; r < (sys->error_s ? sys->error_s : s); r++)
            e2 += (x[i * s + r] - target[i * s + r]) * (x[i * s + r] - target[i * s + r]);
        errs[i] = sqrt(e2);
        if (!isfinite(errs[i]) || !isfinite(effort[i]))
            rc = trc_fail(TRC_ENUMERIC, "eval: sample %zu: controls or trajectory not finite", i);
    }
    if (rc == TRC_OK) {
        summarize(s, n, x, errs, effort, target, threshold, out, final_err);
        task_metrics(sys, n, x0, x, target, out);
    }
out:
    free(x);
    free(effort);
    free(errs);
    free(xf);
    free(useq);
    return rc;
}

int trc_eval_resolve(const trc_dataset *ds, const char *system, double dt,
                     const trc_system **sys_out, double *dt_out) {
    /* the flag, then the data's own settings, then the one system of the data's shape */
    if (ds->steps_left) /* a tail's controls end after its steps left: not one problem of T */
        return trc_fail(TRC_EINVAL, "the data holds tails (steps_left): evaluate on whole "
                                    "problems (trc generate)");
    const char *name = system && system[0] ? system : ds->system[0] ? ds->system : NULL;
    const trc_system *sys;
    int rc = trc_system_resolve(name, "data", ds->s, ds->m, ds->T, &sys);
    if (rc)
        return rc;
    /* the file's dt belongs to the file's system: another system needs its own --dt */
    int same = !ds->system[0] || strcmp(ds->system, sys->name) == 0;
    double d = dt > 0.0 ? dt : same ? ds->dt : 0.0;
    if (d == 0.0)
        return trc_fail(TRC_EINVAL,
                        "the data records no time step for %s: give it with --dt, or in a "
                        "sidecar <stem>.json beside the .npz: {\"dt\": ...} (the original "
                        "project used 5/15 in its first version and 0.33 later)",
                        sys->name);
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
