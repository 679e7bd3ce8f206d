/* The systems table (table.h; each descriptor in its own file), lookup, and rollouts through a
 * system's one step function. Data generation, experts, evaluation and serving all step through
 * these functions, so a dataset and its evaluation can never disagree on the dynamics. */
#include "trc/system.h"
#include "trc/error.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* The table (systems/table.h): one line per system, its descriptor in its own file. */
#define TRC_SYSTEM(name) extern const trc_system trc_system_##name;
#include "table.h"
#undef TRC_SYSTEM

static const trc_system *const systems[] = {
#define TRC_SYSTEM(name) &trc_system_##name,
#include "table.h"
#undef TRC_SYSTEM
};

#define NSYSTEMS (sizeof systems / sizeof systems[0])

size_t trc_system_count(void) {
    return NSYSTEMS;
}

const trc_system *trc_system_at(size_t i) {
    return i < NSYSTEMS ? systems[i] : NULL;
}

const trc_system *trc_system_find(const char *name) {
    char known[256] = "";
    for (size_t i = 0; i < NSYSTEMS; i++) {
        if (name && strcmp(name, systems[i]->name) == 0)
            return systems[i];
        size_t len = strlen(known);
        snprintf(known + len, sizeof known - len, "%s%s", i ? ", " : "", systems[i]->name);
    }
    trc_fail(TRC_ENOTFOUND, "unknown system '%s' (known: %s)", name ? name : "(null)", known);
    return NULL;
}

int trc_system_resolve(const char *name, const char *what, int s, int m, int T,
                       const trc_system **out) {
    *out = NULL;
    if (name && name[0]) {
        const trc_system *sys = trc_system_find(name);
        if (!sys)
            return TRC_ENOTFOUND;
        if (sys->s != s || sys->m != m)
            return trc_fail(TRC_EINVAL, "%s has s=%d, m=%d but system %s has s=%d, m=%d", what, s,
                            m, sys->name, sys->s, sys->m);
        *out = sys;
        return TRC_OK;
    }
    char hits[256] = "";
    size_t count = 0, len = 0;
    for (size_t i = 0; i < NSYSTEMS; i++) {
        const trc_system *sys = systems[i];
        if (sys->s != s || sys->m != m || sys->T != T)
            continue;
        if (!count++)
            *out = sys;
        if (len < sizeof hits)
            len += (size_t)snprintf(hits + len, sizeof hits - len, "%s%s", count > 1 ? ", " : "",
                                    sys->name);
    }
    if (count == 1)
        return TRC_OK;
    *out = NULL;
    if (!count)
        return trc_fail(TRC_EINVAL, "%s names no system and no system has s=%d, m=%d, T=%d", what,
                        s, m, T);
    return trc_fail(TRC_EINVAL,
                    "%s names no system and more than one system has s=%d, m=%d, T=%d (%s)", what,
                    s, m, T, hits);
}

double trc_system_cost_q(const trc_system *sys, int i) {
    return sys->cost_q[i] > 0.0 ? sys->cost_q[i] : 1.0;
}

double trc_system_cost_qf(const trc_system *sys) {
    return sys->cost_qf > 0.0 ? sys->cost_qf : 100.0;
}

double trc_system_draw(const trc_system *sys, int target, int k, double r) {
    const double *lo = target && sys->target_lo_k ? sys->target_lo_k : sys->box_lo_k;
    const double *hi = target && sys->target_hi_k ? sys->target_hi_k : sys->box_hi_k;
    if (!lo || !hi)
        return r;
    const double f = (r - sys->box_lo) / (sys->box_hi - sys->box_lo);
    return lo[k] + f * (hi[k] - lo[k]);
}

void trc_system_rollout(const trc_system *sys, double dt, int T, const double *x0, const double *u,
                        double *traj) {
    const int s = sys->s, m = sys->m;
    memcpy(traj, x0, (size_t)s * sizeof *traj);
    for (int t = 0; t < T; t++)
        sys->step(traj + (size_t)t * s, u + (size_t)t * m, dt, traj + (size_t)(t + 1) * s);
}

int trc_simulate(const trc_system *sys, double dt, int T, size_t n, const float *x0, const float *u,
                 float *traj) {
    if (!sys)
        return trc_fail(TRC_EINVAL, "simulate: no system");
    if (!(dt > 0.0) || !isfinite(dt))
        return trc_fail(TRC_EINVAL, "simulate: time step must be positive and finite, got %g", dt);
    if (T <= 0)
        return trc_fail(TRC_EINVAL, "simulate: horizon must be positive, got %d", T);
    if (sys->s > TRC_SYSTEM_MAX_S || sys->m > TRC_SYSTEM_MAX_M)
        return trc_fail(TRC_EINVAL, "simulate: system %s is too large", sys->name);
    if (n > 0 && (!x0 || !u || !traj))
        return trc_fail(TRC_EINVAL, "simulate: NULL array");
    const int s = sys->s, m = sys->m;
    double x[TRC_SYSTEM_MAX_S], xn[TRC_SYSTEM_MAX_S], uu[TRC_SYSTEM_MAX_M];
    for (size_t i = 0; i < n; i++) {
        const float *ui = u + i * (size_t)T * m;
        float *tr = traj + i * (size_t)(T + 1) * s;
        for (int r = 0; r < s; r++) {
            x[r] = x0[i * s + r];
            tr[r] = x0[i * s + r];
        }
        for (int t = 0; t < T; t++) {
            for (int q = 0; q < m; q++)
                uu[q] = ui[t * m + q];
            sys->step(x, uu, dt, xn);
            for (int r = 0; r < s; r++) {
                x[r] = xn[r];
                tr[(size_t)(t + 1) * s + r] = (float)xn[r];
            }
        }
    }
    return TRC_OK;
}
