/* trc_rollout_score (rollout.h): one double-precision rollout per sample through the system's
 * step function, the same one data generation used, then the final error and the cost. */
#include "trc/rollout.h"
#include "trc/error.h"

#include <math.h>
#include <string.h>

int trc_rollout_score(const trc_system *sys, double dt, int T, size_t n, const float *x0,
                      const float *target, const float *u, const trc_rollout_out *out) {
    if (!sys || sys->s > TRC_SYSTEM_MAX_S || sys->m > TRC_SYSTEM_MAX_M)
        return trc_fail(TRC_EINVAL, "rollout: no or unsupported system");
    if (!(dt > 0.0) || !isfinite(dt))
        return trc_fail(TRC_EINVAL, "rollout: time step must be positive and finite, got %g", dt);
    if (T <= 0)
        return trc_fail(TRC_EINVAL, "rollout: horizon must be positive, got %d", T);
    if (n > 0 && (!x0 || !target || !u || !out))
        return trc_fail(TRC_EINVAL, "rollout: NULL array");
    const int s = sys->s, m = sys->m;
    const size_t S = (size_t)s, T1 = (size_t)T + 1;
    double x[TRC_SYSTEM_MAX_S], xn[TRC_SYSTEM_MAX_S], uu[TRC_SYSTEM_MAX_M];
    for (size_t i = 0; i < n; i++) {
        const float *ui = u + i * (size_t)T * m;
        float *tr = out->traj ? out->traj + i * T1 * S : NULL;
        double *td = out->traj_d ? out->traj_d + i * T1 * S : NULL;
        double cost = 0;
        for (int r = 0; r < s; r++) {
            x[r] = x0[i * S + r];
            if (tr)
                tr[r] = x0[i * S + r];
            if (td)
                td[r] = x[r];
        }
        for (int t = 0; t < T; t++) {
            for (int q = 0; q < m; q++) {
                uu[q] = ui[t * m + q];
                cost += uu[q] * uu[q];
            }
            sys->step(x, uu, dt, xn);
            memcpy(x, xn, sizeof(double) * S);
            for (int r = 0; tr && r < s; r++)
                tr[(size_t)(t + 1) * S + r] = (float)x[r];
            if (td)
                memcpy(td + (size_t)(t + 1) * S, x, sizeof(double) * S);
        }
        double e2 = 0; /* over the components the target fixes (system.h error_s) */
        for (int r = 0; r < (sys->error_s ? sys->error_s : s); r++) {
            double d = x[r] - target[i * S + r];
            e2 += d * d;
        }
        double err = sqrt(e2);
        if (out->final_state)
            memcpy(out->final_state + i * S, x, sizeof(double) * S);
        if (out->final_error)
            out->final_error[i] = err;
        if (out->cost)
            out->cost[i] = cost;
        if (!isfinite(err) || !isfinite(cost))
            return trc_fail(TRC_ENUMERIC, "sample %zu: controls or trajectory not finite", i);
    }
    return TRC_OK;
}
