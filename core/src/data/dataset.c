/* Datasets in memory and their generation: uniform box sampling with one trc_rng stream, one
 * expert plan for the whole set, trajectories by the system's own step function, in chunks
 * that check a cancel flag (the same bytes whatever the chunk size). The .npz form lives in
 * dataset_io.c. */
#include "trc/dataset.h"
#include "trc/error.h"
#include "trc/expert.h"
#include "trc/rng.h"
#include "trc/system.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SAMPLES 100000000u /* 1e8 samples; beyond that memory, not the math, is the limit */
#define MAX_T 100000
#define DEFAULT_CHUNK 16384 /* samples between cancel checks */

void trc_dataset_free(trc_dataset *ds) {
    if (!ds)
        return;
    free(ds->initial_states);
    free(ds->target_states);
    free(ds->control_sequences);
    free(ds->state_trajectories);
    free(ds->costs);
    memset(ds, 0, sizeof *ds);
}

/* a * b * c * sizeof(float) without overflow, or 0 when it would overflow. */
static size_t bytes3(size_t a, size_t b, size_t c) {
    if (b && a > SIZE_MAX / b)
        return 0;
    size_t ab = a * b;
    if (c && ab > SIZE_MAX / c)
        return 0;
    size_t abc = ab * c;
    if (abc > SIZE_MAX / sizeof(float))
        return 0;
    return abc * sizeof(float);
}

int trc_dataset_alloc(trc_dataset *ds, size_t n, int s, int m, int T) {
    memset(ds, 0, sizeof *ds);
    if (n == 0 || s <= 0 || m <= 0 || T <= 0)
        return trc_fail(TRC_EINVAL, "dataset: sizes must be positive (n=%zu, s=%d, m=%d, T=%d)", n,
                        s, m, T);
    size_t bs = bytes3(n, (size_t)s, 1), bu = bytes3(n, (size_t)T, (size_t)m),
           bx = bytes3(n, (size_t)T + 1, (size_t)s), bc = bytes3(n, 1, 1);
    if (!bs || !bu || !bx || !bc)
        return trc_fail(TRC_EINVAL, "dataset: %zu samples are too many", n);
    ds->initial_states = calloc(1, bs);
    ds->target_states = calloc(1, bs);
    ds->control_sequences = calloc(1, bu);
    ds->state_trajectories = calloc(1, bx);
    ds->costs = calloc(1, bc);
    if (!ds->initial_states || !ds->target_states || !ds->control_sequences ||
        !ds->state_trajectories || !ds->costs) {
        trc_dataset_free(ds);
        return trc_fail(TRC_ENOMEM, "dataset: cannot allocate %zu samples", n);
    }
    ds->n = n;
    ds->s = s;
    ds->m = m;
    ds->T = T;
    return TRC_OK;
}

int trc_gen_settings_default(const char *system, trc_gen_settings *g) {
    memset(g, 0, sizeof *g);
    const trc_system *sys = trc_system_find(system);
    if (!sys)
        return TRC_ENOTFOUND;
    snprintf(g->system, sizeof g->system, "%s", sys->name);
    snprintf(g->expert, sizeof g->expert, "min_energy");
    g->T = sys->T;
    g->dt = sys->dt;
    g->bound = sys->bound;
    g->seed = 42;
    g->box_lo = sys->box_lo;
    g->box_hi = sys->box_hi;
    return TRC_OK; /* expert_params all 0: the defaults */
}

int trc_gen_settings_set_param(trc_gen_settings *g, const char *name, double value) {
    const trc_expert *e = trc_expert_find(g->expert);
    if (!e)
        return TRC_ENOTFOUND;
    const trc_option *o = trc_expert_param_find(e, name);
    if (o) {
        g->expert_params[o->offset / sizeof(double)] = value;
        return TRC_OK;
    }
    char have[256] = "";
    size_t len = 0, count = 0;
    for (size_t i = 0; i < trc_expert_count(); i++)
        if (trc_expert_param_find(trc_expert_at(i), name) && len < sizeof have)
            count++;
    for (size_t i = 0, k = 0; i < trc_expert_count() && len < sizeof have; i++)
        if (trc_expert_param_find(trc_expert_at(i), name)) {
            k++;
            len += (size_t)snprintf(have + len, sizeof have - len, "%s%s",
                                    k == 1       ? ""
                                    : k == count ? " and "
                                                 : ", ",
                                    trc_expert_at(i)->name);
        }
    if (!count)
        return trc_fail(TRC_EINVAL, "no expert has a parameter %s", name);
    return trc_fail(TRC_EINVAL, "%s applies to the %s expert%s only", name, have,
                    count > 1 ? "s" : "");
}

double trc_gen_settings_param(const trc_gen_settings *g, const char *name) {
    const trc_expert *e = trc_expert_find(g->expert);
    const trc_option *o = e ? trc_expert_param_find(e, name) : NULL;
    return o ? g->expert_params[o->offset / sizeof(double)] : NAN;
}

int trc_gen_settings_validate(const trc_gen_settings *g) {
    if (strnlen(g->system, sizeof g->system) == sizeof g->system)
        return trc_fail(TRC_EINVAL, "system name is not terminated");
    if (strnlen(g->expert, sizeof g->expert) == sizeof g->expert)
        return trc_fail(TRC_EINVAL, "expert name is not terminated");
    if (!trc_system_find(g->system))
        return TRC_ENOTFOUND;
    int rc = trc_expert_check_name(g->expert);
    if (rc)
        return rc;
    if (g->T <= 0 || g->T > MAX_T)
        return trc_fail(TRC_EINVAL, "horizon must be in 1..%d, got %d", MAX_T, g->T);
    if (!(g->dt > 0.0) || !isfinite(g->dt))
        return trc_fail(TRC_EINVAL, "time step must be positive and finite, got %g", g->dt);
    if (!(g->bound > 0.0) || !isfinite(g->bound))
        return trc_fail(TRC_EINVAL, "control bound must be positive and finite, got %g", g->bound);
    if (!isfinite(g->box_lo) || !isfinite(g->box_hi))
        return trc_fail(TRC_EINVAL, "sampling box must be finite, got [%g, %g]", g->box_lo,
                        g->box_hi);
    if (!(g->box_lo < g->box_hi))
        return trc_fail(TRC_EINVAL, "sampling box needs lo < hi, got [%g, %g]", g->box_lo,
                        g->box_hi);
    double resolved[TRC_EXPERT_MAX_PARAMS];
    return trc_expert_params_resolve(trc_expert_find(g->expert), g->expert_params, resolved);
}

int trc_dataset_generate(const trc_gen_settings *g, size_t n, trc_dataset *out) {
    return trc_dataset_generate_chunked(g, n, 0, NULL, out);
}

int trc_dataset_generate_chunked(const trc_gen_settings *g, size_t n, size_t chunk,
                                 const atomic_int *cancel, trc_dataset *out) {
    memset(out, 0, sizeof *out);
    int rc = trc_gen_settings_validate(g);
    if (rc)
        return rc;
    if (n == 0 || n > MAX_SAMPLES)
        return trc_fail(TRC_EINVAL, "number of samples must be in 1..%u, got %zu", MAX_SAMPLES, n);
    if (chunk == 0)
        chunk = DEFAULT_CHUNK;
    const trc_system *sys = trc_system_find(g->system);
    trc_expert_plan *plan;
    if ((rc = trc_expert_plan_create(g->expert, sys, g->dt, g->T, g->bound, g->expert_params,
                                     &plan)))
        return rc;
    const int s = sys->s, m = sys->m, T = g->T;
    if ((rc = trc_dataset_alloc(out, n, s, m, T))) {
        trc_expert_plan_free(plan);
        return rc;
    }
    double *u = malloc(sizeof(double) * (size_t)T * m);
    if (!u) {
        trc_expert_plan_free(plan);
        trc_dataset_free(out);
        return trc_fail(TRC_ENOMEM, "dataset: cannot allocate");
    }
    trc_rng rng; /* one stream for the whole set, whatever the chunks */
    trc_rng_seed(&rng, g->seed);
    double x0[TRC_SYSTEM_MAX_S], xt[TRC_SYSTEM_MAX_S];
    for (size_t at = 0; at < n && rc == TRC_OK; at += chunk) {
        if (cancel && atomic_load(cancel)) {
            rc = trc_fail(TRC_ECANCELED, "cancelled while generating the dataset");
            break;
        }
        size_t end = n - at < chunk ? n : at + chunk;
        for (size_t i = at; i < end && rc == TRC_OK; i++) {
            /* Draw, round to the stored float32, and solve from the rounded values so the stored
             * controls are the expert's answer for exactly the stored states. */
            float *fx = out->initial_states + i * s, *ft = out->target_states + i * s;
            for (int k = 0; k < s; k++) {
                fx[k] = (float)trc_rng_range(&rng, g->box_lo, g->box_hi);
                x0[k] = fx[k];
            }
            for (int k = 0; k < s; k++) {
                ft[k] = (float)trc_rng_range(&rng, g->box_lo, g->box_hi);
                xt[k] = ft[k];
            }
            trc_expert_cost cost;
            if ((rc = trc_expert_solve(plan, x0, xt, u, &cost)))
                break;
            float *fu = out->control_sequences + i * (size_t)T * m;
            for (int k = 0; k < T * m; k++)
                fu[k] = (float)u[k];
            out->costs[i] = (float)cost.objective;
        }
        if (rc == TRC_OK) /* the trajectories of the stored (float32) controls */
            rc = trc_simulate(sys, g->dt, T, end - at, out->initial_states + at * s,
                              out->control_sequences + at * (size_t)T * m,
                              out->state_trajectories + at * (size_t)(T + 1) * s);
    }
    free(u);
    if (rc) {
        trc_expert_plan_free(plan);
        trc_dataset_free(out);
        return rc;
    }
    out->has_settings = 1;
    out->settings = *g;
    trc_expert_info info; /* the parameters as used (defaults filled) */
    trc_expert_plan_info(plan, &info);
    memcpy(out->settings.expert_params, info.params, sizeof out->settings.expert_params);
    trc_expert_plan_free(plan);
    snprintf(out->settings.system, sizeof out->settings.system, "%s", sys->name);
    return TRC_OK;
}
