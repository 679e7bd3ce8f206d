/* TRC model configuration (presets, validation), the parameter layout with its named views in
 * the order of shared/docs/model.md, allocation and the original initialization. */
#include "trc/model.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_layout.h"
#include "trc/error.h"
#include "trc/rng.h"

/* Limits that keep every size computation far from overflow; far above any real use. */
#define MAX_DIM 16384    /* d, h */
#define MAX_PROBLEM 4096 /* s, m, T */
#define MAX_U (1 << 16)  /* T*m */
#define MAX_CYCLES 1024  /* K, n */

static const struct preset {
    const char *name;
    int d, h, blocks, heads;
} presets[] = {
    {"small", 64, 128, 2, 2},
    {"medium", 128, 256, 3, 4},
    {"large", 256, 512, 4, 8},
};

static const struct preset *find_preset(const char *size) {
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
        if (strcmp(presets[i].name, size) == 0)
            return &presets[i];
    return NULL;
}

int trc_model_config_preset(const char *size, int s, int m, int T, float bound,
                            trc_model_config *cfg) {
    if (!size || !cfg)
        return trc_fail(TRC_EINVAL, "model config preset: NULL argument");
    const struct preset *p = find_preset(size);
    if (!p)
        return trc_fail(TRC_EINVAL, "model size must be small, medium or large, got '%s'", size);
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->size, sizeof cfg->size, "%s", p->name);
    cfg->s = s;
    cfg->m = m;
    cfg->T = T;
    cfg->bound = bound;
    cfg->d = p->d;
    cfg->h = p->h;
    cfg->blocks = p->blocks;
    cfg->heads = p->heads;
    cfg->K = 3;
    cfg->n = 3;
    return trc_model_config_validate(cfg);
}

static int check_range(const char *what, int v, int lo, int hi) {
    if (v < lo || v > hi)
        return trc_fail(TRC_EINVAL, "model config: %s must be in [%d, %d], got %d", what, lo, hi,
                        v);
    return 0;
}

int trc_model_config_validate(const trc_model_config *cfg) {
    if (!cfg)
        return trc_fail(TRC_EINVAL, "model config: NULL");
    if (!memchr(cfg->size, '\0', sizeof cfg->size))
        return trc_fail(TRC_EINVAL, "model config: size is not a terminated string");
    if (!memchr(cfg->system, '\0', sizeof cfg->system))
        return trc_fail(TRC_EINVAL, "model config: system is not a terminated string");
    int rc;
    if ((rc = check_range("s (state dimension)", cfg->s, 1, MAX_PROBLEM)) ||
        (rc = check_range("m (control dimension)", cfg->m, 1, MAX_PROBLEM)) ||
        (rc = check_range("T (horizon)", cfg->T, 1, MAX_PROBLEM)) ||
        (rc = check_range("d (latent)", cfg->d, 1, MAX_DIM)) ||
        (rc = check_range("h (hidden)", cfg->h, 2, MAX_DIM)) ||
        (rc = check_range("blocks", cfg->blocks, 1, TRC_MAX_BLOCKS)) ||
        (rc = check_range("heads", cfg->heads, 1, MAX_DIM)) ||
        (rc = check_range("K (outer cycles)", cfg->K, 1, MAX_CYCLES)) ||
        (rc = check_range("n (inner cycles)", cfg->n, 1, MAX_CYCLES)))
        return rc;
    if ((long)cfg->T * cfg->m > MAX_U)
        return trc_fail(TRC_EINVAL, "model config: T*m must be at most %d, got %ld", MAX_U,
                        (long)cfg->T * cfg->m);
    if (cfg->h % 2 != 0)
        return trc_fail(TRC_EINVAL,
                        "model config: h (hidden) must be even (the error encoder "
                        "uses h/2), got %d",
                        cfg->h);
    if (cfg->d % cfg->heads != 0)
        return trc_fail(TRC_EINVAL, "model config: d (%d) must be divisible by heads (%d)", cfg->d,
                        cfg->heads);
    if (!isfinite(cfg->bound) || cfg->bound <= 0.0f)
        return trc_fail(TRC_EINVAL, "model config: bound must be a positive number, got %g",
                        (double)cfg->bound);
    if (!isfinite(cfg->dt) || cfg->dt < 0.0)
        return trc_fail(TRC_EINVAL, "model config: dt must be >= 0, got %g", cfg->dt);
    if (strcmp(cfg->size, "custom") != 0) {
        const struct preset *p = find_preset(cfg->size);
        if (!p)
            return trc_fail(TRC_EINVAL,
                            "model config: size must be small, medium, large or custom, got '%s'",
                            cfg->size);
        if (p->d != cfg->d || p->h != cfg->h || p->blocks != cfg->blocks)
            return trc_fail(TRC_EINVAL,
                            "model config: size %s means d=%d h=%d blocks=%d, got d=%d h=%d "
                            "blocks=%d (use size \"custom\")",
                            p->name, p->d, p->h, p->blocks, cfg->d, cfg->h, cfg->blocks);
    }
    return 0;
}

/* Appends parameters to the layout (and, when given, the view and init tables). */
typedef struct builder {
    trc_model_layout *L;
    trc_param_view *views;
    trc_init_spec *inits;
} builder;

static size_t add(builder *bd, const char *name, int rows, int cols, trc_init_spec init) {
    trc_model_layout *L = bd->L;
    size_t off = L->num_params, numel = (size_t)rows * (size_t)(cols > 0 ? cols : 1);
    if (bd->views) {
        trc_param_view *v = &bd->views[L->num_views];
        snprintf(v->name, sizeof v->name, "%s", name);
        v->offset = off;
        v->numel = numel;
        v->ndim = cols > 0 ? 2 : 1;
        v->shape[0] = rows;
        v->shape[1] = cols > 0 ? cols : 0;
    }
    if (bd->inits)
        bd->inits[L->num_views] = init;
    L->num_params += numel;
    L->num_views++;
    return off;
}

static const trc_init_spec ZERO = {TRC_INIT_ZERO, 0, 0}, ONE = {TRC_INIT_ONE, 0, 0};

static trc_init_spec xavier(float gain) {
    return (trc_init_spec){TRC_INIT_XAVIER, gain, 0};
}

static trc_init_spec fanin(int fan_in) {
    return (trc_init_spec){TRC_INIT_FANIN, 0, fan_in};
}

/* Linear(in -> out) under prefix; weight and bias initialized by winit and binit. */
static trc_lin_off add_linear(builder *bd, const char *prefix, int in, int out, trc_init_spec winit,
                              trc_init_spec binit) {
    char name[TRC_PARAM_NAME_MAX];
    trc_lin_off o;
    snprintf(name, sizeof name, "%.80s.weight", prefix);
    o.w = add(bd, name, out, in, winit);
    snprintf(name, sizeof name, "%.80s.bias", prefix);
    o.b = add(bd, name, out, 0, binit);
    return o;
}

/* The default PyTorch Linear: weight and bias uniform in +-1/sqrt(in). */
static trc_lin_off add_linear_default(builder *bd, const char *prefix, int in, int out) {
    return add_linear(bd, prefix, in, out, fanin(in), fanin(in));
}

static trc_lin_off add_ln(builder *bd, const char *prefix, int C) {
    char name[TRC_PARAM_NAME_MAX];
    trc_lin_off o;
    snprintf(name, sizeof name, "%.80s.weight", prefix);
    o.w = add(bd, name, C, 0, ONE);
    snprintf(name, sizeof name, "%.80s.bias", prefix);
    o.b = add(bd, name, C, 0, ZERO);
    return o;
}

void trc_model_layout_build(const trc_model_config *cfg, trc_model_layout *L, trc_param_view *views,
                            trc_init_spec *inits) {
    memset(L, 0, sizeof *L);
    L->s = cfg->s;
    L->m = cfg->m;
    L->T = cfg->T;
    L->U = cfg->T * cfg->m;
    L->d = cfg->d;
    L->h = cfg->h;
    L->blocks = cfg->blocks;
    L->K = cfg->K;
    L->n = cfg->n;
    L->in_dim = 2 * cfg->s + 1;
    L->bound = cfg->bound;
    builder bd = {L, views, inits};
    int s = cfg->s, U = L->U, d = cfg->d, h = cfg->h;

    L->enc0 = add_linear(&bd, "state_encoder.encoder.0", L->in_dim, h, xavier(1), ZERO);
    L->enc2 = add_ln(&bd, "state_encoder.encoder.2", h);
    L->enc3 = add_linear(&bd, "state_encoder.encoder.3", h, d, xavier(1), ZERO);

    L->err0 = add_linear_default(&bd, "error_encoder.encoder.0", s, h / 2);
    L->err2 = add_ln(&bd, "error_encoder.encoder.2", h / 2);
    L->err3 = add_linear_default(&bd, "error_encoder.encoder.3", h / 2, d);

    for (int i = 0; i < cfg->blocks; i++) {
        char p[56], name[TRC_PARAM_NAME_MAX];
        trc_block_off *B = &L->blk[i];
        snprintf(p, sizeof p, "recursive_reasoning.reasoning_blocks.%d.", i);
        snprintf(name, sizeof name, "%sattention.in_proj_weight", p);
        B->in_w = add(&bd, name, 3 * d, d, xavier(1));
        snprintf(name, sizeof name, "%sattention.in_proj_bias", p);
        B->in_b = add(&bd, name, 3 * d, 0, ZERO);
        snprintf(name, sizeof name, "%sattention.out_proj", p);
        B->out = add_linear(&bd, name, d, d, fanin(d), ZERO);
        snprintf(name, sizeof name, "%snorm1", p);
        B->norm1 = add_ln(&bd, name, d);
        snprintf(name, sizeof name, "%sffn.0", p);
        B->ffn0 = add_linear_default(&bd, name, d, h);
        snprintf(name, sizeof name, "%sffn.3", p);
        B->ffn3 = add_linear_default(&bd, name, h, d);
        snprintf(name, sizeof name, "%snorm2", p);
        B->norm2 = add_ln(&bd, name, d);
    }
    L->ctrl_emb = add_linear_default(&bd, "recursive_reasoning.control_embedding", U, d);
    L->err_emb = add_linear_default(&bd, "recursive_reasoning.error_embedding", 2, d);

    L->gen0 = add_linear(&bd, "initial_control_generator.decoder.0", d, h, xavier(0.1f), ZERO);
    L->gen2 = add_ln(&bd, "initial_control_generator.decoder.2", h);
    L->gen3 = add_linear(&bd, "initial_control_generator.decoder.3", h, U, xavier(0.1f), ZERO);

    L->dec0 = add_linear(&bd, "control_decoder.decoder.0", d + U, h, xavier(0.01f), ZERO);
    L->dec2 = add_ln(&bd, "control_decoder.decoder.2", h);
    L->dec3 = add_linear(&bd, "control_decoder.decoder.3", h, U, xavier(0.01f), ZERO);
}

size_t trc_model_param_count(const trc_model_config *cfg) {
    if (trc_model_config_validate(cfg) != 0)
        return 0;
    trc_model_layout L;
    trc_model_layout_build(cfg, &L, NULL, NULL);
    return L.num_params;
}

int trc_model_create(const trc_model_config *cfg, trc_model *model) {
    if (!model)
        return trc_fail(TRC_EINVAL, "model create: NULL model");
    memset(model, 0, sizeof *model);
    int rc = trc_model_config_validate(cfg);
    if (rc)
        return rc;
    trc_model_layout L;
    trc_model_layout_build(cfg, &L, NULL, NULL);
    model->params = calloc(L.num_params, sizeof *model->params);
    model->views = calloc(L.num_views, sizeof *model->views);
    if (!model->params || !model->views) {
        trc_model_free(model);
        return trc_fail(TRC_ENOMEM, "model create: cannot allocate %zu parameters", L.num_params);
    }
    trc_model_layout_build(cfg, &L, model->views, NULL);
    model->cfg = *cfg;
    model->num_params = L.num_params;
    model->num_views = L.num_views;
    return 0;
}

int trc_model_init(trc_model *model, uint64_t seed) {
    if (!model || !model->params || !model->views)
        return trc_fail(TRC_EINVAL, "model init: model not created");
    int rc = trc_model_config_validate(&model->cfg);
    if (rc)
        return rc;
    trc_model_layout L;
    trc_model_layout_build(&model->cfg, &L, NULL, NULL);
    if (L.num_views != model->num_views || L.num_params != model->num_params)
        return trc_fail(TRC_EINVAL, "model init: view table does not match the configuration");
    trc_init_spec *inits = malloc(L.num_views * sizeof *inits);
    if (!inits)
        return trc_fail(TRC_ENOMEM, "model init: out of memory");
    trc_model_layout_build(&model->cfg, &L, NULL, inits);
    trc_rng rng;
    trc_rng_seed(&rng, seed);
    /* Draws go tensor by tensor in view order, element by element in memory order. */
    for (size_t i = 0; i < model->num_views; i++) {
        const trc_param_view *v = &model->views[i];
        float *p = model->params + v->offset;
        double a = 0.0;
        switch (inits[i].kind) {
        case TRC_INIT_ZERO:
            memset(p, 0, v->numel * sizeof *p);
            continue;
        case TRC_INIT_ONE:
            for (size_t j = 0; j < v->numel; j++)
                p[j] = 1.0f;
            continue;
        case TRC_INIT_XAVIER: /* fan_in = shape[1], fan_out = shape[0] */
            a = inits[i].gain * sqrt(6.0 / (double)(v->shape[0] + v->shape[1]));
            break;
        case TRC_INIT_FANIN:
            a = 1.0 / sqrt((double)inits[i].fan_in);
            break;
        }
        for (size_t j = 0; j < v->numel; j++)
            p[j] = (float)trc_rng_range(&rng, -a, a);
    }
    free(inits);
    return 0;
}

void trc_model_free(trc_model *model) {
    if (!model)
        return;
    free(model->params);
    free(model->views);
    model->params = NULL;
    model->views = NULL;
    model->num_params = model->num_views = 0;
}

const trc_param_view *trc_model_find(const trc_model *model, const char *name) {
    if (!model || !name || !model->views)
        return NULL;
    for (size_t i = 0; i < model->num_views; i++)
        if (strcmp(model->views[i].name, name) == 0)
            return &model->views[i];
    return NULL;
}

void trc_model_fuse_attention(const trc_model_layout *L, const float *P, float *fused) {
    int d = L->d;
    for (int i = 0; i < L->blocks; i++) {
        const trc_block_off *o = &L->blk[i];
        float *F = fused + (size_t)i * ((size_t)d * d + d), *fb = F + (size_t)d * d;
        const float *V = P + o->in_w + 2 * (size_t)d * d, *v = P + o->in_b + 2 * d;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, d, d, d, 1.0f, P + o->out.w, d, V, d,
                    0.0f, F, d);
        memcpy(fb, P + o->out.b, (size_t)d * sizeof *fb);
        cblas_sgemv(CblasRowMajor, CblasNoTrans, d, d, 1.0f, P + o->out.w, d, v, 1, 1.0f, fb, 1);
    }
}

static pthread_once_t blas_once = PTHREAD_ONCE_INIT;

static void blas_single_once(void) {
    openblas_set_num_threads(1);
}

void trc_model_blas_single(void) {
    pthread_once(&blas_once, blas_single_once);
}
