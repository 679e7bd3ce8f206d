/* What trains the two-level networks besides the MSE: the optimizer step that skips absent
 * gradients (as torch does for `grad is None`), the process-supervision loss of model-v2.md
 * section 9 (the original and the corrected variant), and a simulator over the systems table
 * for trajectory feedback and process supervision. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "trc/error.h"
#include "trc/system.h"
#include "trc/two_level.h"
#include "two_level_arch.h"

int trc_tl_optim_step(const trc_tl_model *model, trc_adamw *opt, float *grads, double lr,
                      double max_norm, double *norm_out) {
    if (!model || !opt || !grads)
        return trc_fail(TRC_EINVAL, "two-level optimizer: NULL argument");
    if (opt->n != model->num_floats || !opt->m || !opt->v)
        return trc_fail(TRC_EINVAL, "two-level optimizer: moments are not sized for the model");
    /* clip_grad_norm_ over the present gradients: the norm of the per-tensor norms */
    double ss = 0.0;
    for (size_t i = 0; i < model->num_views; i++)
        if (model->has_grad[i]) {
            const trc_param_view *v = &model->views[i];
            double n = trc_grad_norm(grads + v->offset, v->numel);
            ss += n * n;
        }
    double norm = sqrt(ss);
    if (norm_out)
        *norm_out = norm;
    if (!isfinite(norm))
        return trc_fail(TRC_ENUMERIC, "gradient norm is not finite");
    if (max_norm > 0) {
        double coef = max_norm / (norm + 1e-6);
        if (coef < 1.0)
            for (size_t i = 0; i < model->num_views; i++)
                if (model->has_grad[i]) {
                    const trc_param_view *v = &model->views[i];
                    for (size_t j = 0; j < v->numel; j++)
                        grads[v->offset + j] *= (float)coef;
                }
    }
    /* AdamW tensor by tensor over the same moments: the step count is shared, so every
     * present tensor takes step opt->step + 1; absent ones get no moment update and no decay */
    int64_t step = opt->step;
    for (size_t i = 0; i < model->num_views; i++) {
        if (!model->has_grad[i])
            continue;
        const trc_param_view *v = &model->views[i];
        trc_adamw sub = *opt;
        sub.n = v->numel;
        sub.m = opt->m + v->offset;
        sub.v = opt->v + v->offset;
        sub.step = step;
        sub.nfrozen = 0; /* absent tensors are skipped here already */
        int rc = trc_adamw_step(&sub, model->params + v->offset, grads + v->offset, lr);
        if (rc)
            return rc;
    }
    opt->step = step + 1;
    return TRC_OK;
}

/* c = sum_{t<T} [q |x_t - x*|^2 + r |u_t|^2] + qf |x_T - x*|^2 for one sample (norms weighted by
 * po->wx, po->wu), and, when gu is
 * not NULL, gu += scale * dc/du through the adjoint of the rollout. */
double trc_process_sample_cost(const trc_tl_sim *sim, const trc_process_opts *po, const float *x0,
                               const float *tg, const float *u, float *traj, double *A, double *Bm,
                               float *gu, double scale) {
    int s = sim->s, m = sim->m, T = sim->T;
    sim->rollout(sim->ctx, x0, u, traj, gu ? A : NULL, gu ? Bm : NULL);
    const double *wx = po->wx, *wu = po->wu;
    double c = 0.0;
    for (int t = 0; t <= T; t++) {
        double w = t < T ? po->q : po->qf, e2 = 0.0;
        for (int j = 0; j < s; j++) {
            double e = (double)traj[(size_t)t * s + j] - tg[j];
            e2 += (wx ? wx[j] : 1.0) * e * e;
        }
        c += w * e2;
        if (t < T)
            for (int j = 0; j < m; j++)
                c += po->r * (wu ? wu[j] : 1.0) * (double)u[(size_t)t * m + j] *
                     u[(size_t)t * m + j];
    }
    if (!gu)
        return c;
    double lam[16], nl[16]; /* dc/dx_{t}, backwards; x_0 is a constant */
    for (int j = 0; j < s; j++)
        lam[j] = 2.0 * po->qf * (wx ? wx[j] : 1.0) * ((double)traj[(size_t)T * s + j] - tg[j]);
    for (int t = T - 1; t >= 0; t--) {
        const double *At = A + (size_t)t * s * s, *Bt = Bm + (size_t)t * s * m;
        for (int j = 0; j < m; j++) {
            double g = 2.0 * po->r * (wu ? wu[j] : 1.0) * u[(size_t)t * m + j];
            for (int q = 0; q < s; q++)
                g += Bt[q * m + j] * lam[q];
            gu[(size_t)t * m + j] += (float)(scale * g);
        }
        if (t == 0)
            break;
        for (int q = 0; q < s; q++) {
            double g = 2.0 * po->q * (wx ? wx[q] : 1.0) * ((double)traj[(size_t)t * s + q] - tg[q]);
            for (int p = 0; p < s; p++)
                g += At[p * s + q] * lam[p];
            nl[q] = g;
        }
        memcpy(lam, nl, (size_t)s * sizeof *lam);
    }
    return c;
}

int trc_tl_process_loss(const trc_tl_trainer *tr, const trc_tl_sim *sim, const float *x0,
                        const float *target, const float *u_expert, const trc_process_opts *po,
                        float *dU, double *loss, double *bc, double *reward, float *costs) {
    const float *it = trc_tl_trainer_iterates(tr);
    if (!it || !sim || !sim->rollout || !x0 || !target || !u_expert || !po || !dU || !loss)
        return trc_fail(TRC_EINVAL, "process loss: NULL argument or no forward");
    if (sim->s > 16 || sim->s < 1 || sim->m < 1 || sim->T < 1)
        return trc_fail(TRC_EINVAL, "process loss: simulator shape out of range");
    if (!(po->weight >= 0) || !(po->q >= 0) || !(po->r >= 0) || !(po->qf >= 0))
        return trc_fail(TRC_EINVAL, "process loss: weights must be >= 0");
    if (po->variant != TRC_PROCESS_ORIGINAL && po->variant != TRC_PROCESS_CORRECTED)
        return trc_fail(TRC_EINVAL, "process loss: variant must be original or corrected");
    int K = 0;
    size_t B = 0, U = 0;
    trc_tl_trainer_shape(tr, &K, &B, &U);
    if (U != (size_t)sim->T * (size_t)sim->m)
        return trc_fail(TRC_EINVAL, "process loss: simulator has T*m = %d, the model U = %zu",
                        sim->T * sim->m, U);
    size_t s = (size_t)sim->s, nU = B * U;
    double mse = trc_tl_mse(tr, u_expert, dU);
    float *traj = malloc(((size_t)sim->T + 1) * s * sizeof *traj);
    double *A = malloc((size_t)sim->T * (s * s + s * (size_t)sim->m) * sizeof *A);
    double *c = malloc((size_t)(K + 1) * B * sizeof *c);
    if (!traj || !A || !c) {
        free(traj), free(A), free(c);
        return trc_fail(TRC_ENOMEM, "process loss: out of memory");
    }
    double *Bm = A + (size_t)sim->T * s * s;
    for (int k = 0; k <= K; k++)
        for (size_t b = 0; b < B; b++)
            c[(size_t)k * B + b] =
                trc_process_sample_cost(sim, po, x0 + b * s, target + b * s,
                                        it + (size_t)k * nU + b * U, traj, A, Bm, NULL, 0);
    /* n_k = c_k / (c_0 + 1e-6); avg = mean over B x K of n_{k-1} - n_k; loss = mse - lambda avg */
    const double eps = 1e-6, lam = po->weight, BK = (double)B * K;
    double sum = 0.0;
    for (size_t b = 0; b < B; b++) {
        double c0 = c[b] + eps;
        for (int k = 1; k <= K; k++)
            sum += (c[(size_t)(k - 1) * B + b] - c[(size_t)k * B + b]) / c0;
    }
    double avg = sum / BK;
    *loss = mse - lam * avg;
    if (bc)
        *bc = mse;
    if (reward)
        *reward = -avg;
    if (costs)
        for (size_t i = 0; i < (size_t)(K + 1) * B; i++)
            costs[i] = (float)c[i];
    /* gradients with respect to the costs, then through the rollouts to the iterates */
    for (size_t b = 0; b < B; b++) {
        double c0 = c[b] + eps;
        for (int k = 0; k <= K; k++) {
            double g;
            if (po->variant == TRC_PROCESS_ORIGINAL) /* telescoped: only c_0 and c_K count */
                g = k == K ? lam / BK / c0
                           : (k == 0 ? -lam / BK * (c[(size_t)K * B + b] + eps) / (c0 * c0) : 0.0);
            else /* sg on the normaliser and the earlier iterate */
                g = k == 0 ? 0.0 : lam / BK / c0;
            if (g != 0.0)
                trc_process_sample_cost(sim, po, x0 + b * s, target + b * s,
                                        it + (size_t)k * nU + b * U, traj, A, Bm,
                                        dU + (size_t)k * nU + b * U, g);
        }
    }
    free(traj), free(A), free(c);
    return TRC_OK;
}

/* ---- a simulator over the systems table ---- */

static void sys_rollout(void *ctx, const float *x0, const float *u, float *traj, double *A,
                        double *Bm) {
    const trc_tl_sys_ctx *c = ctx;
    const trc_system *sys = c->sys;
    int s = sys->s, m = sys->m;
    double x[TRC_SYSTEM_MAX_S], xn[TRC_SYSTEM_MAX_S], uu[TRC_SYSTEM_MAX_M];
    for (int j = 0; j < s; j++)
        x[j] = x0[j], traj[j] = x0[j];
    for (int t = 0; c->T > t; t++) {
        for (int j = 0; j < m; j++)
            uu[j] = u[(size_t)t * m + j];
        if (A && Bm)
            sys->jacobian(x, uu, c->dt, A + (size_t)t * s * s, Bm + (size_t)t * s * m);
        sys->step(x, uu, c->dt, xn);
        for (int j = 0; j < s; j++)
            x[j] = xn[j], traj[(size_t)(t + 1) * s + j] = (float)xn[j];
    }
}

int trc_tl_sim_system(const char *name, double dt, int T, trc_tl_sys_ctx *ctx, trc_tl_sim *sim) {
    if (!name || !ctx || !sim)
        return trc_fail(TRC_EINVAL, "simulator: NULL argument");
    const trc_system *sys = trc_system_find(name);
    if (!sys)
        return TRC_ENOTFOUND;
    if (!(dt > 0) || !isfinite(dt) || T < 1)
        return trc_fail(TRC_EINVAL, "simulator: dt must be positive and T >= 1");
    ctx->sys = sys;
    ctx->dt = dt;
    ctx->T = T;
    *sim = (trc_tl_sim){sys->s, sys->m, T, sys_rollout, ctx};
    return TRC_OK;
}
