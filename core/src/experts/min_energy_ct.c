/* min_energy_ct: the continuous-time minimum-energy control sampled at interval midpoints, as
 * the original project's later version generates its double-integrator data, so its datasets
 * can be regenerated and compared. Over tf = T dt the least-energy u(t) reaching the target is
 *   u(t) = Bc' e^{Ac'(tf - t)} Wc^-1 (x* - e^{Ac tf} x0),  Wc = int_0^tf e^{Ac s} Bc Bc' e^{Ac' s}
 * ds and u_k = u((k + 1/2) dt) is held over step k. Held through the exact discrete dynamics this
 * does not land exactly: on the double integrator u(t) = c1 + c2 t, the velocity is exact and the
 * position misses by c2 T dt^3 / 12 (the midpoint rule's error), which tests/unit/core/
 * test_min_energy_ct.c asserts. Needs the system's continuous-time form (trc_system.ct_A). */
#include "base/linalg.h"
#include "linear.h"
#include "trc/error.h"

#include <math.h>
#include <string.h>

#define MAX_N (2 * TRC_SYSTEM_MAX_S)

/* E = exp(M) for an n x n matrix (n <= MAX_N): scaling and squaring over a Taylor series, exact
 * to rounding for the small, mildly scaled matrices of control problems. */
static void expm(int n, const double *M, double *E) {
    double norm = 0.0; /* max row sum */
    for (int i = 0; i < n; i++) {
        double r = 0.0;
        for (int j = 0; j < n; j++)
            r += fabs(M[i * n + j]);
        norm = r > norm ? r : norm;
    }
    int squarings = 0;
    while (norm > 0.25 && squarings < 60) {
        norm /= 2.0;
        squarings++;
    }
    const double scale = ldexp(1.0, -squarings);
    double A[MAX_N * MAX_N], term[MAX_N * MAX_N], tmp[MAX_N * MAX_N];
    for (int i = 0; i < n * n; i++)
        A[i] = M[i] * scale;
    memset(E, 0, sizeof(double) * n * n);
    memset(term, 0, sizeof(double) * n * n);
    for (int i = 0; i < n; i++)
        E[i * n + i] = term[i * n + i] = 1.0;
    for (int k = 1; k <= 20; k++) { /* ||A|| <= 1/4: 20 terms are far below rounding */
        trc_la_mul(n, n, n, term, A, tmp);
        for (int i = 0; i < n * n; i++) {
            term[i] = tmp[i] / k;
            E[i] += term[i];
        }
    }
    for (int q = 0; q < squarings; q++) {
        trc_la_mul(n, n, n, E, E, tmp);
        memcpy(E, tmp, sizeof(double) * n * n);
    }
}

static int mect_plan(trc_expert_plan *p) {
    int rc = trc_linear_begin(p);
    if (rc)
        return rc;
    trc_linear_state *ls = p->state;
    const int s = p->s, m = p->m, T = p->T, n = 2 * s;
    const double *Ac = p->sys->ct_A, *Bc = p->sys->ct_B, tf = T * p->dt;
    ls->AT = trc_expert_alloc((size_t)s * s); /* e^{Ac tf} */
    ls->W = trc_expert_alloc((size_t)s * s);  /* Wc */
    ls->M = trc_expert_alloc((size_t)T * m * s);
    if (!ls->AT || !ls->W || !ls->M)
        return trc_fail(TRC_ENOMEM, "min_energy_ct: cannot allocate the plan");
    /* Van Loan: exp([[-Ac, Bc Bc'], [0, Ac']] tf) = [[., G], [0, F]] with F = e^{Ac' tf} and
     * Wc = F' G. */
    double V[MAX_N * MAX_N] = {0}, E[MAX_N * MAX_N], F[TRC_SYSTEM_MAX_S * TRC_SYSTEM_MAX_S],
                     G[TRC_SYSTEM_MAX_S * TRC_SYSTEM_MAX_S];
    for (int i = 0; i < s; i++)
        for (int j = 0; j < s; j++) {
            double bb = 0.0;
            for (int k = 0; k < m; k++)
                bb += Bc[i * m + k] * Bc[j * m + k];
            V[i * n + j] = -Ac[i * s + j] * tf;
            V[i * n + s + j] = bb * tf;
            V[(s + i) * n + s + j] = Ac[j * s + i] * tf;
        }
    expm(n, V, E);
    for (int i = 0; i < s; i++)
        for (int j = 0; j < s; j++) {
            F[i * s + j] = E[(s + i) * n + s + j];
            G[i * s + j] = E[i * n + s + j];
            ls->AT[j * s + i] = F[i * s + j]; /* e^{Ac tf} = F' */
        }
    trc_la_mul_tn(s, s, s, F, G, ls->W);
    trc_symmetrize(s, ls->W);
    double Wc[TRC_SYSTEM_MAX_S * TRC_SYSTEM_MAX_S], Winv[TRC_SYSTEM_MAX_S * TRC_SYSTEM_MAX_S] = {0};
    memcpy(Wc, ls->W, sizeof(double) * s * s);
    for (int i = 0; i < s; i++)
        Winv[i * s + i] = 1.0;
    if (trc_la_solve(s, s, Wc, Winv) != TRC_OK)
        return trc_fail(TRC_EUNSUPPORTED,
                        "min_energy_ct: %s is not controllable over %g s (singular Gramian)",
                        p->sys->name, tf);
    /* M_k = Bc' e^{Ac'(tf - t_k)} Wc^-1 at the midpoint t_k = (k + 1/2) dt: [m, s] */
    double Ph[MAX_N * MAX_N], Phi[TRC_SYSTEM_MAX_S * TRC_SYSTEM_MAX_S],
        BtPhiT[TRC_SYSTEM_MAX_S * TRC_SYSTEM_MAX_M];
    for (int k = 0; k < T; k++) {
        const double tau = tf - (k + 0.5) * p->dt;
        double Acs[TRC_SYSTEM_MAX_S * TRC_SYSTEM_MAX_S];
        for (int i = 0; i < s * s; i++)
            Acs[i] = Ac[i] * tau;
        expm(s, Acs, Ph);
        memcpy(Phi, Ph, sizeof(double) * s * s);
        /* (e^{Ac tau} Bc)' = Bc' e^{Ac' tau}: [m, s] */
        double PB[TRC_SYSTEM_MAX_S * TRC_SYSTEM_MAX_M];
        trc_la_mul(s, s, m, Phi, Bc, PB);
        for (int i = 0; i < s; i++)
            for (int j = 0; j < m; j++)
                BtPhiT[j * s + i] = PB[i * m + j];
        trc_la_mul(m, s, s, BtPhiT, Winv, ls->M + (size_t)k * m * s);
    }
    return TRC_OK;
}

static int mect_accepts(const trc_system *sys) {
    int rc = trc_linear_accepts("min_energy_ct", sys);
    if (rc)
        return rc;
    if (!sys->ct_A || !sys->ct_B)
        return trc_fail(TRC_EUNSUPPORTED,
                        "min_energy_ct needs a system with a continuous-time linear form; %s has "
                        "none",
                        sys->name);
    return 0;
}

const trc_expert trc_expert_min_energy_ct = {
    .name = "min_energy_ct",
    .about = "continuous-time minimum-energy control sampled at interval midpoints (the "
             "original's later generator; not exact in discrete time)",
    .cost_label = "sum_u2",
    .accepts = mect_accepts,
    .plan = mect_plan,
    .solve = trc_linear_open_loop,
    .free = trc_linear_free,
    .info = trc_linear_info,
};
