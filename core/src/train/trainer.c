/* The public trainer (trc_trainer_*, declared in model.h): the model's architecture computes the
 * iterates and carries gradients back through the network; the objective (trc/objective.h,
 * "mse" unless set) turns the iterates into the loss and its gradient at every iterate. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "nn/layout.h"
#include "trc/arch.h"
#include "trc/error.h"
#include "trc/model.h"
#include "trc/objective.h"

#define MAX_THREADS 64

struct trc_trainer {
    const trc_arch *arch;
    void *impl;
    int threads;
    const trc_objective *objective;
    const trc_system *system;
    double dt;
    const trc_model *model;
    trc_objective_params params;
    double *row_terms;                     /* [max_batch, TRC_OBJECTIVE_MAX_TERMS] */
    double terms[TRC_OBJECTIVE_MAX_TERMS]; /* of the last forward */
    trc_objective_batch batch;             /* of the last forward */
    int ready;                             /* a successful forward to differentiate */
    size_t max_batch;
    float *nbuf;               /* normalised x0, target [max_batch, s] and u_expert [.., U] */
    trc_objective_units units; /* of a normalised model (cfg.norm) */
};

int trc_trainer_create(const trc_model *model, size_t max_batch, trc_trainer **out) {
    if (!out)
        return trc_fail(TRC_EINVAL, "trainer create: NULL output");
    *out = NULL;
    if (!model || !model->params)
        return trc_fail(TRC_EINVAL, "trainer create: model not created");
    if (max_batch == 0 || max_batch > (1u << 20))
        return trc_fail(TRC_EINVAL, "trainer create: max batch must be in [1, %u], got %zu",
                        1u << 20, max_batch);
    int rc = trc_model_config_validate(&model->cfg);
    if (rc)
        return rc;
    trc_layout_builder L = {0, 0, NULL, NULL};
    trc_layout_run(&model->cfg, &L);
    if (L.num_params != model->num_params)
        return trc_fail(TRC_EINVAL, "trainer create: parameter count does not match the config");
    trc_trainer *tr = calloc(1, sizeof *tr);
    if (!tr)
        return trc_fail(TRC_ENOMEM, "trainer create: out of memory");
    tr->arch = trc_arch_of(&model->cfg);
    tr->threads = 1;
    tr->model = model;
    tr->max_batch = max_batch;
    tr->objective = trc_objective_at(0);
    trc_objective_params_default(&tr->params);
    tr->units = (trc_objective_units){model->cfg.x_std, model->cfg.u_mean, model->cfg.u_std,
                                      model->cfg.bound};
    tr->row_terms = calloc(max_batch * TRC_OBJECTIVE_MAX_TERMS, sizeof *tr->row_terms);
    if (!tr->row_terms) {
        free(tr);
        return trc_fail(TRC_ENOMEM, "trainer create: out of memory");
    }
    trc_model_blas_single();
    size_t S = (size_t)model->cfg.s, U = (size_t)model->cfg.T * (size_t)model->cfg.m;
    if (model->cfg.norm && !(tr->nbuf = malloc(max_batch * (2 * S + U) * sizeof *tr->nbuf))) {
        free(tr->row_terms);
        free(tr);
        return trc_fail(TRC_ENOMEM, "trainer create: out of memory");
    }
    if ((rc = tr->arch->trainer_create(model, max_batch, &tr->impl))) {
        free(tr->row_terms);
        free(tr->nbuf);
        free(tr);
        return rc;
    }
    *out = tr;
    return TRC_OK;
}

void trc_trainer_free(trc_trainer *tr) {
    if (!tr)
        return;
    tr->arch->trainer_free(tr->impl);
    free(tr->row_terms);
    free(tr->nbuf);
    free(tr);
}

int trc_trainer_set_threads(trc_trainer *tr, int threads) {
    if (!tr)
        return trc_fail(TRC_EINVAL, "trainer threads: NULL trainer");
    if (threads < 1 || threads > MAX_THREADS)
        return trc_fail(TRC_EINVAL, "trainer threads must be in [1, %d], got %d", MAX_THREADS,
                        threads);
    int rc = tr->arch->trainer_set_threads(tr->impl, threads);
    if (!rc) {
        tr->threads = threads;
        tr->ready = 0;
    }
    return rc;
}

int trc_trainer_threads(const trc_trainer *tr) {
    return tr ? tr->threads : 0;
}

float *trc_trainer_grads(trc_trainer *tr) {
    return tr ? tr->arch->trainer_grads(tr->impl) : NULL;
}

int trc_trainer_set_objective(trc_trainer *tr, const trc_objective *objective,
                              const trc_system *system, double dt) {
    if (!tr || !objective)
        return trc_fail(TRC_EINVAL, "trainer objective: NULL trainer or objective");
    const trc_model_config *c = &tr->model->cfg;
    if ((c->norm && !objective->normalised) || (c->time_left && !objective->time_left)) {
        char can[256];
        trc_objective_names_with(c->norm, c->time_left, can, sizeof can);
        return trc_fail(TRC_EUNSUPPORTED,
                        "objective %s cannot train a model %s (objectives that can: %s)",
                        objective->name,
                        c->norm && !objective->normalised ? "with normalisation"
                                                          : "with a time-left input (tails)",
                        can);
    }
    tr->objective = objective;
    tr->system = system;
    tr->dt = dt;
    tr->ready = 0;
    return TRC_OK;
}

int trc_trainer_set_objective_params(trc_trainer *tr, const trc_objective_params *p) {
    if (!tr || !p)
        return trc_fail(TRC_EINVAL, "trainer objective weights: NULL trainer or weights");
    int rc = trc_objective_params_check(p);
    if (rc)
        return rc;
    tr->params = *p;
    tr->ready = 0;
    return TRC_OK;
}

int trc_trainer_terms(const trc_trainer *tr, double *out) {
    int n = tr ? trc_objective_nterms(tr->objective) : 0;
    for (int k = 0; k < n; k++)
        out[k] = tr->terms[k];
    return n;
}

/* The objective's rows as the architecture's trainer calls them. */
static double loss_rows(const void *ctx, const float *iterates, size_t r0, size_t r1, float *grad) {
    const trc_trainer *tr = ctx;
    return tr->objective->rows(&tr->batch, iterates, r0, r1, grad);
}

int trc_trainer_forward(trc_trainer *tr, size_t B, const float *x0, const float *target,
                        const float *time_left, const float *u_expert, float *u_out, float *loss) {
    if (!tr)
        return trc_fail(TRC_EINVAL, "trainer forward: NULL trainer");
    if (!x0 || !target || !u_expert || !loss)
        return trc_fail(TRC_EINVAL, "trainer forward: NULL input or loss");
    const trc_model_config *c = &tr->model->cfg;
    tr->ready = 0;
    int rc = trc_model_check_time_left(c, B < tr->max_batch ? B : tr->max_batch, time_left);
    if (rc)
        return trc_fail_prefix(rc, "trainer forward: ");
    const float *x0_sim = x0, *target_sim = target; /* physical, for a simulating objective */
    if (c->norm) {
        /* the network and the loss in normalised units (the objective: see objective.h) */
        size_t S = (size_t)c->s;
        if (B == 0 || B > tr->max_batch)
            return trc_fail(TRC_EINVAL, "trainer forward: batch %zu outside [1, %zu]", B,
                            tr->max_batch);
        float *xn = tr->nbuf, *tn = xn + B * S, *un = tn + B * S;
        trc_model_norm_states(c, B, x0, xn);
        trc_model_norm_states(c, B, target, tn);
        trc_model_norm_controls(c, B * (size_t)c->T, u_expert, un);
        x0 = xn, target = tn, u_expert = un;
    }
    tr->batch = (trc_objective_batch){.B = B,
                                      .K = c->K,
                                      .U = c->T * c->m,
                                      .s = c->s,
                                      .m = c->m,
                                      .T = c->T,
                                      .bound = trc_model_net_bound(c),
                                      .x0 = x0,
                                      .target = target,
                                      .u_expert = u_expert,
                                      .x0_sim = x0_sim,
                                      .target_sim = target_sim,
                                      .units = c->norm ? &tr->units : NULL,
                                      .time_left = time_left,
                                      .system = tr->system,
                                      .dt = tr->dt,
                                      .params = &tr->params,
                                      .terms = tr->row_terms};
    trc_loss_rows lr = {loss_rows, tr, tr->objective->final_only};
    double sum = 0.0;
    rc = tr->arch->trainer_forward(tr->impl, B, x0, target, time_left, &lr, u_out, &sum);
    if (rc)
        return rc;
    if (u_out)
        trc_model_denorm_controls(c, B * (size_t)c->T, u_out);
    *loss = (float)tr->objective->finish(&tr->batch, sum);
    int nt = trc_objective_nterms(tr->objective);
    for (int k = 0; k < nt; k++) { /* in row order, as the loss */
        tr->terms[k] = 0.0;
        for (size_t r = 0; r < B; r++)
            tr->terms[k] += tr->row_terms[r * TRC_OBJECTIVE_MAX_TERMS + k];
    }
    if (!isfinite(*loss))
        return trc_fail(TRC_ENUMERIC, "trainer forward: loss is not finite");
    tr->ready = 1;
    return TRC_OK;
}

int trc_trainer_backward(trc_trainer *tr) {
    if (!tr)
        return trc_fail(TRC_EINVAL, "trainer backward: NULL trainer");
    if (!tr->ready)
        return trc_fail(TRC_EINVAL, "trainer backward: no successful forward to differentiate");
    int rc = tr->arch->trainer_backward(tr->impl);
    if (rc)
        return rc;
    const float *G = tr->arch->trainer_grads(tr->impl);
    size_t n = tr->model->num_params, i = trc_first_nonfinite(G, n);
    if (i < n)
        return trc_fail(TRC_ENUMERIC, "trainer backward: gradient %zu is not finite", i);
    return TRC_OK;
}
