/* min_energy: the exact discrete minimum-energy controls. With G_k = A^(T-1-k) B and the
 * reachability Gramian W = sum_k G_k G_k', the least-norm u reaching the target in T steps is
 * u_k = G_k' W^-1 (x* - A^T x0): open loop, all T steps at once, clipped to the bound. */
#include "base/linalg.h"
#include "linear.h"
#include "trc/error.h"

#include <math.h>
#include <string.h>

static int me_plan(trc_expert_plan *p) {
    int rc = trc_linear_begin(p);
    if (rc)
        return rc;
    trc_linear_state *ls = p->state;
    const int s = p->s, m = p->m, T = p->T;
    double *G = trc_expert_alloc((size_t)T * s * m), *Apow = trc_expert_alloc((size_t)s * s),
           *tmp = trc_expert_alloc((size_t)s * s), *Winv = trc_expert_alloc((size_t)s * s),
           *Wc = trc_expert_alloc((size_t)s * s);
    ls->AT = trc_expert_alloc((size_t)s * s);
    ls->W = trc_expert_alloc((size_t)s * s);
    ls->M = trc_expert_alloc((size_t)T * m * s);
    rc = TRC_OK;
    if (!G || !Apow || !tmp || !Winv || !Wc || !ls->AT || !ls->W || !ls->M) {
        rc = trc_fail(TRC_ENOMEM, "min_energy: cannot allocate the plan");
        goto out;
    }
    /* G_k = A^(T-1-k) B, built from k = T-1 down with a running power of A. */
    for (int i = 0; i < s; i++)
        Apow[i * s + i] = 1.0;
    for (int k = T - 1; k >= 0; k--) {
        trc_la_mul(s, s, m, Apow, ls->B, G + (size_t)k * s * m);
        trc_la_mul(s, s, s, Apow, ls->A, tmp);
        memcpy(Apow, tmp, sizeof(double) * s * s);
    }
    memcpy(ls->AT, Apow, sizeof(double) * s * s);
    /* W = sum_k G_k G_k' */
    for (int k = 0; k < T; k++) {
        trc_la_mul_nt(s, m, s, G + (size_t)k * s * m, G + (size_t)k * s * m, tmp);
        for (int i = 0; i < s * s; i++)
            ls->W[i] += tmp[i];
    }
    trc_symmetrize(s, ls->W);
    memcpy(Wc, ls->W, sizeof(double) * s * s);
    for (int i = 0; i < s; i++)
        Winv[i * s + i] = 1.0;
    if (trc_la_solve(s, s, Wc, Winv) != TRC_OK) {
        rc = trc_fail(TRC_EUNSUPPORTED,
                      "min_energy: %s is not controllable in %d step%s (singular reachability "
                      "Gramian); use a longer horizon",
                      p->sys->name, T, T == 1 ? "" : "s");
        goto out;
    }
    /* M_k = G_k' W^-1: [m, s] */
    for (int k = 0; k < T; k++)
        trc_la_mul_tn(m, s, s, G + (size_t)k * s * m, Winv, ls->M + (size_t)k * m * s);
out:
    free(G);
    free(Apow);
    free(tmp);
    free(Winv);
    free(Wc);
    return rc;
}

static int me_accepts(const trc_system *sys) {
    return trc_linear_accepts("min_energy", sys);
}

const trc_expert trc_expert_min_energy = {
    .name = "min_energy",
    .about = "exact discrete minimum-energy controls (reachability Gramian), open loop",
    .cost_label = "sum_u2",
    .accepts = me_accepts,
    .plan = me_plan,
    .solve = trc_linear_open_loop,
    .free = trc_linear_free,
    .info = trc_linear_info,
};
