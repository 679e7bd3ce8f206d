/* two_level / trm_style behind the architectures table: configuration mapping, the layout
 * emitted through the common builder (the FFN keys a273222-spelled, ec6511d as the alternative),
 * the shapes of a bare export, inference and the trainer over the two-level engine
 * (two_level_forward.c, two_level_train.c) on the model's own parameter buffer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layout.h"
#include "trc/error.h"
#include "trc/system.h"
#include "two_level_arch.h"
#include "two_level_layout.h"

static int width_rule(int d, int h) {
    return (int)((double)d * ((double)h / (double)d));
}

void tl_config_from_model(const trc_model_config *c, trc_tl_config *t) {
    memset(t, 0, sizeof *t);
    snprintf(t->arch, sizeof t->arch, "%s", c->arch);
    snprintf(t->size, sizeof t->size, "%s", c->size);
    t->s = c->s, t->m = c->m, t->T = c->T, t->bound = trc_model_net_bound(c);
    t->d = c->d, t->h = c->h, t->ffn = width_rule(c->d, c->h);
    t->layers = c->blocks, t->heads = c->heads, t->H = c->K, t->L = c->n;
    t->truncate = 1;
    t->feedback = c->feedback;
    t->kind = strcmp(c->arch, "trm_style") == 0 ? TRC_TL_RMS_SWIGLU : TRC_TL_LN_SILU;
    snprintf(t->system, sizeof t->system, "%s", c->system);
    t->dt = c->dt;
}

int tl_arch_validate(const trc_model_config *cfg) {
    trc_tl_config t;
    tl_config_from_model(cfg, &t);
    snprintf(t.size, sizeof t.size, "custom"); /* the sizes were checked by the caller */
    if (cfg->blocks > TRC_TL_MAX_LAYERS)
        return trc_fail(TRC_EINVAL, "model config: at most %d layers", TRC_TL_MAX_LAYERS);
    return trc_tl_config_validate(&t);
}

void tl_arch_layout(const trc_model_config *cfg, trc_layout_builder *b) {
    trc_tl_config t;
    tl_config_from_model(cfg, &t);
    tl_layout L;
    tl_layout_build(&t, &L, NULL, NULL, NULL);
    trc_param_view *views = b->views ? calloc(L.num_views, sizeof *views) : NULL;
    tl_init_spec *inits = b->inits ? calloc(L.num_views, sizeof *inits) : NULL;
    if ((b->views && !views) || (b->inits && !inits)) { /* counting still works without them */
        free(views), free(inits);
        views = NULL, inits = NULL;
    }
    tl_layout_build(&t, &L, views, NULL, inits);
    b->num_params = b->num_views = 0;
    if (!b->views && b->inits && !inits) /* inits wanted but no memory: count only */
        b->inits = NULL;
    for (size_t i = 0; i < L.num_views; i++) {
        char name[TRC_PARAM_NAME_MAX] = "", alt[TRC_PARAM_NAME_MAX + 16] = "";
        int rows = 0, cols = 0;
        trc_init_spec init = TRC_INIT_ZEROS;
        if (views) {
            const trc_param_view *v = &views[i];
            snprintf(name, sizeof name, "%s", v->name);
            const char *p;
            if ((p = strstr(name, ".ffn.fc_in.")))
                snprintf(alt, sizeof alt, "%.*s.ffn.0.%s", (int)(p - name), name, p + 11);
            else if ((p = strstr(name, ".ffn.fc_out.")))
                snprintf(alt, sizeof alt, "%.*s.ffn.3.%s", (int)(p - name), name, p + 12);
            rows = v->shape[0], cols = v->ndim == 2 ? v->shape[1] : 0;
        }
        if (inits) {
            static const trc_init_kind kinds[] = {TRC_INIT_ZERO, TRC_INIT_ONE, TRC_INIT_XAVIER,
                                                  TRC_INIT_FANIN, TRC_INIT_NORMAL};
            init.kind = kinds[inits[i].kind];
            init.gain = inits[i].a;
            init.fan_in = inits[i].fan_in;
        }
        if (views) {
            trc_layout_add(b, name, alt[0] ? alt : NULL, rows, cols, init);
        } else {
            if (inits)
                b->inits[b->num_views] = init;
            b->num_views++;
        }
    }
    if (!views)
        b->num_params = L.num_floats;
    free(views);
    free(inits);
}

int tl_arch_from_shapes(const char *arch, const trc_safetensors *st, int m, trc_model_config *cfg) {
    trc_tl_config t;
    if (!trc_st_find(st, "recursive_reasoning.H_init"))
        return trc_fail(TRC_ENOTFOUND, "no recursive_reasoning.H_init: not a %s model", arch);
    int ln = trc_st_find(st, "recursive_reasoning.L_level.layers.0.norm1.bias") != NULL;
    if (ln != (strcmp(arch, "two_level") == 0))
        return trc_fail(TRC_ENOTFOUND, "the blocks' norms are not %s's", arch);
    int rc = trc_tl_config_from_tensors(st, m, 0, &t);
    if (rc)
        return rc;
    if (t.ffn != width_rule(t.d, t.h))
        return trc_fail(TRC_EFORMAT,
                        "checkpoint: FFN width %d is not the original's rule for "
                        "d=%d h=%d",
                        t.ffn, t.d, t.h);
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->arch, sizeof cfg->arch, "%s", t.arch);
    snprintf(cfg->size, sizeof cfg->size, "%s", t.size);
    cfg->s = t.s, cfg->m = t.m, cfg->T = t.T, cfg->bound = t.bound;
    cfg->d = t.d, cfg->h = t.h, cfg->blocks = t.layers, cfg->heads = t.heads;
    cfg->K = t.H, cfg->n = t.L;
    return TRC_OK;
}

/* A two-level model over a trc_model's parameters (borrowed, not copied). */
static int wrap(const trc_model *model, trc_tl_model *w) {
    trc_tl_config t;
    tl_config_from_model(&model->cfg, &t);
    int rc = trc_tl_create(&t, w);
    if (rc)
        return rc;
    if (w->num_floats != model->num_params) {
        trc_tl_free(w);
        return trc_fail(TRC_EINVAL, "two-level: parameter count does not match the config");
    }
    free(w->params);
    w->params = model->params;
    return TRC_OK;
}

static void unwrap(trc_tl_model *w) {
    w->params = NULL; /* the trc_model's */
    trc_tl_free(w);
}

/* The simulator trajectory feedback runs: the model's system at its dt. */
static int feedback_sim(const trc_model_config *c, trc_tl_sys_ctx *ctx, trc_tl_sim *sim) {
    const trc_system *sys = trc_system_find(c->system);
    if (!sys)
        return trc_fail(TRC_EINVAL, "trajectory feedback: unknown system '%s'", c->system);
    if (!(c->dt > 0)) /* never the system's default: the caller resolves it (--dt, sidecar) */
        return trc_fail(TRC_EINVAL,
                        "trajectory feedback: the model records no time step for %s (give it "
                        "with --dt or a sidecar <stem>.json)",
                        sys->name);
    return trc_tl_sim_system(c->system, c->dt, c->T, ctx, sim);
}

int tl_arch_infer(const trc_model *model, size_t B, const float *x0, const float *target,
                  const float *time_left, float *u_out, float *iterates, int threads) {
    (void)threads; /* one thread: rows are chunked, results do not depend on it */
    trc_tl_model w;
    trc_tl_sys_ctx ctx;
    trc_tl_sim sim;
    int rc = model->cfg.feedback ? feedback_sim(&model->cfg, &ctx, &sim) : TRC_OK;
    if (rc || (rc = wrap(model, &w)))
        return rc;
    rc = trc_tl_infer(&w, model->cfg.feedback ? &sim : NULL, B, x0, target, time_left, u_out,
                      iterates, NULL);
    unwrap(&w);
    return rc;
}

typedef struct tl_arch_trainer {
    trc_tl_model w;
    trc_tl_trainer *tr;
    float *dU; /* [(K+1), max_batch, U] the loss's iterate gradients */
    size_t B;
    trc_tl_sys_ctx sim_ctx; /* trajectory feedback's simulator (the trainer keeps &sim) */
    trc_tl_sim sim;
} tl_arch_trainer;

int tl_arch_trainer_create(const trc_model *model, size_t max_batch, void **out) {
    tl_arch_trainer *t = calloc(1, sizeof *t);
    if (!t)
        return trc_fail(TRC_ENOMEM, "two-level trainer: out of memory");
    int rc = wrap(model, &t->w);
    if (rc) {
        free(t);
        return rc;
    }
    if ((model->cfg.feedback && (rc = feedback_sim(&model->cfg, &t->sim_ctx, &t->sim))) ||
        (rc = trc_tl_trainer_create(&t->w, max_batch, &t->tr))) {
        unwrap(&t->w);
        free(t);
        return rc;
    }
    if (model->cfg.feedback)
        trc_tl_trainer_set_sim(t->tr, &t->sim);
    size_t n = (size_t)(model->cfg.K + 1) * max_batch * (size_t)(model->cfg.T * model->cfg.m);
    t->dU = malloc(n * sizeof *t->dU);
    if (!t->dU) {
        tl_arch_trainer_free(t);
        return trc_fail(TRC_ENOMEM, "two-level trainer: out of memory");
    }
    *out = t;
    return TRC_OK;
}

void tl_arch_trainer_free(void *p) {
    tl_arch_trainer *t = p;
    if (!t)
        return;
    trc_tl_trainer_free(t->tr);
    unwrap(&t->w);
    free(t->dU);
    free(t);
}

int tl_arch_trainer_set_threads(void *p, int threads) {
    (void)p;
    if (threads < 1 || threads > 64)
        return trc_fail(TRC_EINVAL, "trainer threads must be in [1, 64], got %d", threads);
    return TRC_OK; /* the two-level trainer runs on the calling thread */
}

float *tl_arch_trainer_grads(void *p) {
    return trc_tl_trainer_grads(((tl_arch_trainer *)p)->tr);
}

int tl_arch_trainer_forward(void *p, size_t B, const float *x0, const float *target,
                            const float *time_left, const trc_loss_rows *loss, float *u_out,
                            double *loss_sum) {
    tl_arch_trainer *t = p;
    t->B = 0;
    int rc = trc_tl_trainer_forward(t->tr, B, x0, target, time_left, NULL);
    if (rc)
        return rc;
    const float *it = trc_tl_trainer_iterates(t->tr);
    size_t nU = B * (size_t)(t->w.cfg.T * t->w.cfg.m);
    memset(t->dU, 0, (size_t)(t->w.cfg.H + 1) * nU * sizeof *t->dU);
    *loss_sum = loss->rows(loss->ctx, it, 0, B, t->dU);
    if (u_out)
        memcpy(u_out, it + (size_t)t->w.cfg.H * nU, nU * sizeof *u_out);
    t->B = B;
    return TRC_OK;
}

int tl_arch_trainer_backward(void *p) {
    tl_arch_trainer *t = p;
    if (!t->B)
        return trc_fail(TRC_EINVAL, "trainer backward: no successful forward to differentiate");
    return trc_tl_trainer_backward(t->tr, t->dU);
}

int tl_arch_grad_absent(const trc_model_config *cfg, const char *name) {
    trc_tl_config t;
    tl_config_from_model(cfg, &t);
    return trc_tl_grad_absent(&t, name);
}
