/* Datasets in memory and their generation: uniform box sampling with trc_rng, one expert plan
 * for the whole set, trajectories by the system's own step function. The .npz form lives in
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
    g->lqr_q = TRC_EXPERT_DEFAULT_Q;
    g->lqr_r = TRC_EXPERT_DEFAULT_R;
    g->lqr_qf = TRC_EXPERT_DEFAULT_QF;
    return TRC_OK;
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
    const double w[3] = {g->lqr_q, g->lqr_r, g->lqr_qf};
    const char *wn[3] = {"lqr_q", "lqr_r", "lqr_qf"};
    for (int i = 0; i < 3; i++)
        if (!(w[i] >= 0.0) || !isfinite(w[i]))
            return trc_fail(TRC_EINVAL,
                            "LQR weight %s must be finite and >= 0 (0 = default), got %g", wn[i],
                            w[i]);
    return TRC_OK;
}

int trc_dataset_generate(const trc_gen_settings *g, size_t n, trc_dataset *out) {
    memset(out, 0, sizeof *out);
    int rc = trc_gen_settings_validate(g);
    if (rc)
        return rc;
    if (n == 0 || n > MAX_SAMPLES)
        return trc_fail(TRC_EINVAL, "number of samples must be in 1..%u, got %zu", MAX_SAMPLES, n);
    const trc_system *sys = trc_system_find(g->system);
    trc_expert_weights w = {g->lqr_q, g->lqr_r, g->lqr_qf};
    trc_expert_plan *plan;
    if ((rc = trc_expert_plan_create(g->expert, sys, g->dt, g->T, g->bound, &w, &plan)))
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
    trc_rng rng;
    trc_rng_seed(&rng, g->seed);
    double x0[TRC_SYSTEM_MAX_S], xt[TRC_SYSTEM_MAX_S];
    for (size_t i = 0; i < n && rc == TRC_OK; i++) {
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
    free(u);
    trc_expert_plan_free(plan);
    if (rc == TRC_OK) /* the trajectories of the stored (float32) controls */
        rc = trc_simulate(sys, g->dt, T, n, out->initial_states, out->control_sequences,
                          out->state_trajectories);
    if (rc) {
        trc_dataset_free(out);
        return rc;
    }
    out->has_settings = 1;
    out->settings = *g;
    out->settings.lqr_q = w.q > 0 ? w.q : TRC_EXPERT_DEFAULT_Q;
    out->settings.lqr_r = w.r > 0 ? w.r : TRC_EXPERT_DEFAULT_R;
    out->settings.lqr_qf = w.qf > 0 ? w.qf : TRC_EXPERT_DEFAULT_QF;
    snprintf(out->settings.system, sizeof out->settings.system, "%s", sys->name);
    return TRC_OK;
}
