/* What every architecture's model shares: configuration (presets from the architecture's sizes,
 * validation), the parameter buffer with its named views as the architecture's layout lists
 * them, allocation and the original initialization. */
#include "trc/model.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layout.h"
#include "trc/arch.h"
#include "trc/error.h"
#include "trc/system.h"
#include "trc/rng.h"

/* Limits that keep every size computation far from overflow; far above any real use. */
#define MAX_DIM 16384    /* d, h */
#define MAX_PROBLEM 4096 /* s, m, T */
#define MAX_U (1 << 16)  /* T*m */
#define MAX_CYCLES 1024  /* K, n */

/* "small, medium or large" (the architecture's sizes; with `custom`: "small, medium, large or
 * custom") into buf. */
static void size_names(const trc_arch *a, int custom, char *buf, size_t size) {
    size_t len = 0, n = a->nsizes + (custom ? 1 : 0);
    buf[0] = 0;
    for (size_t i = 0; i < n && len < size; i++)
        len += (size_t)snprintf(buf + len, size - len, "%s%s",
                                i == 0       ? ""
                                : i + 1 == n ? " or "
                                             : ", ",
                                i < a->nsizes ? a->sizes[i].name : "custom");
}

/* The configuration of a named size of an architecture. */
int trc_model_config_preset_arch(const char *arch, const char *size, int s, int m, int T,
                                 float bound, trc_model_config *cfg) {
    if (!size || !cfg)
        return trc_fail(TRC_EINVAL, "model config preset: NULL argument");
    const trc_arch *a = trc_arch_find(arch && arch[0] ? arch : TRC_ARCH_DEFAULT);
    if (!a)
        return TRC_EINVAL;
    const trc_arch_size *p = trc_arch_size_find(a, size);
    if (!p) {
        char known[128];
        size_names(a, 0, known, sizeof known);
        return trc_fail(TRC_EINVAL, "model size must be %s, got '%s'", known, size);
    }
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->arch, sizeof cfg->arch, "%s", a->name);
    snprintf(cfg->size, sizeof cfg->size, "%s", p->name);
    cfg->s = s;
    cfg->m = m;
    cfg->T = T;
    cfg->bound = bound;
    cfg->d = p->d;
    cfg->h = p->h;
    cfg->blocks = p->blocks;
    cfg->heads = p->heads;
    cfg->K = p->K > 0 ? p->K : 3;
    cfg->n = p->n > 0 ? p->n : 3;
    return trc_model_config_validate(cfg);
}

int trc_model_config_preset(const char *size, int s, int m, int T, float bound,
                            trc_model_config *cfg) {
    return trc_model_config_preset_arch(NULL, size, s, m, T, bound, cfg);
}

static int check_range(const char *what, int v, int lo, int hi) {
    if (v < lo || v > hi)
        return trc_fail(TRC_EINVAL, "model config: %s must be in [%d, %d], got %d", what, lo, hi,
                        v);
    return 0;
}

/* Trajectory feedback simulates every cycle's incoming iterate on the model's system, whose
 * final-state error enters through error_embedding's 2 inputs (hard-wired in the original). */
static int check_feedback(const trc_model_config *cfg, const trc_arch *a) {
    if (cfg->feedback == 0)
        return TRC_OK;
    if (cfg->feedback != 1)
        return trc_fail(TRC_EINVAL, "model config: feedback must be 0 or 1, got %d", cfg->feedback);
    if (!a->feedback)
        return trc_fail(TRC_EINVAL,
                        "model config: architecture '%s' has no trajectory feedback (two_level "
                        "and trm_style have)",
                        a->name);
    if (cfg->s != 2)
        return trc_fail(TRC_EINVAL,
                        "model config: trajectory feedback needs s = 2 (error_embedding takes the "
                        "original's 2 error inputs), got s = %d",
                        cfg->s);
    const trc_system *sys = cfg->system[0] ? trc_system_find(cfg->system) : NULL;
    if (!sys)
        return trc_fail(TRC_EINVAL,
                        "model config: trajectory feedback simulates the model's system, but "
                        "system '%s' is %s",
                        cfg->system, cfg->system[0] ? "not a known system" : "not recorded");
    if (sys->s != cfg->s || sys->m != cfg->m || !sys->jacobian)
        return trc_fail(TRC_EINVAL,
                        "model config: trajectory feedback: system '%s' (s=%d m=%d) does not fit "
                        "the model (s=%d m=%d)",
                        sys->name, sys->s, sys->m, cfg->s, cfg->m);
    if (cfg->norm) /* the simulated iterate would be in normalised units */
        return trc_fail(TRC_EUNSUPPORTED,
                        "model config: trajectory feedback with normalisation is not supported");
    return TRC_OK;
}

int trc_model_config_validate(const trc_model_config *cfg) {
    if (!cfg)
        return trc_fail(TRC_EINVAL, "model config: NULL");
    if (!memchr(cfg->size, '\0', sizeof cfg->size))
        return trc_fail(TRC_EINVAL, "model config: size is not a terminated string");
    if (!memchr(cfg->system, '\0', sizeof cfg->system))
        return trc_fail(TRC_EINVAL, "model config: system is not a terminated string");
    if (!memchr(cfg->arch, '\0', sizeof cfg->arch))
        return trc_fail(TRC_EINVAL, "model config: arch is not a terminated string");
    const trc_arch *a = trc_arch_of(cfg);
    if (!a)
        return trc_fail_prefix(TRC_EINVAL, "model config: ");
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
    if (!isfinite(cfg->bound) || cfg->bound <= 0.0f)
        return trc_fail(TRC_EINVAL, "model config: bound must be a positive number, got %g",
                        (double)cfg->bound);
    if (!isfinite(cfg->dt) || cfg->dt < 0.0)
        return trc_fail(TRC_EINVAL, "model config: dt must be >= 0, got %g", cfg->dt);
    if ((rc = trc_model_norm_check(cfg)))
        return rc;
    if (strcmp(cfg->size, "custom") != 0) {
        const trc_arch_size *p = trc_arch_size_find(a, cfg->size);
        if (!p) {
            char known[128];
            size_names(a, 1, known, sizeof known);
            return trc_fail(TRC_EINVAL, "model config: size must be %s, got '%s'", known,
                            cfg->size);
        }
        if (p->d != cfg->d || p->h != cfg->h || p->blocks != cfg->blocks)
            return trc_fail(TRC_EINVAL,
                            "model config: size %s means d=%d h=%d blocks=%d, got d=%d h=%d "
                            "blocks=%d (use size \"custom\")",
                            p->name, p->d, p->h, p->blocks, cfg->d, cfg->h, cfg->blocks);
    }
    if ((rc = check_feedback(cfg, a)))
        return rc;
    return a->validate ? a->validate(cfg) : TRC_OK;
}

size_t trc_model_param_count(const trc_model_config *cfg) {
    if (trc_model_config_validate(cfg) != 0)
        return 0;
    trc_layout_builder L = {0, 0, NULL, NULL};
    trc_layout_run(cfg, &L);
    return L.num_params;
}

int trc_model_create(const trc_model_config *cfg, trc_model *model) {
    if (!model)
        return trc_fail(TRC_EINVAL, "model create: NULL model");
    memset(model, 0, sizeof *model);
    int rc = trc_model_config_validate(cfg);
    if (rc)
        return rc;
    trc_layout_builder L = {0, 0, NULL, NULL};
    trc_layout_run(cfg, &L);
    model->params = calloc(L.num_params, sizeof *model->params);
    model->views = calloc(L.num_views, sizeof *model->views);
    if (!model->params || !model->views) {
        trc_model_free(model);
        return trc_fail(TRC_ENOMEM, "model create: cannot allocate %zu parameters", L.num_params);
    }
    L.views = model->views;
    trc_layout_run(cfg, &L);
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
    trc_layout_builder L = {0, 0, NULL, NULL};
    trc_layout_run(&model->cfg, &L);
    if (L.num_views != model->num_views || L.num_params != model->num_params)
        return trc_fail(TRC_EINVAL, "model init: view table does not match the configuration");
    trc_init_spec *inits = malloc(L.num_views * sizeof *inits);
    if (!inits)
        return trc_fail(TRC_ENOMEM, "model init: out of memory");
    L.inits = inits;
    trc_layout_run(&model->cfg, &L);
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
        case TRC_INIT_NORMAL:
            for (size_t j = 0; j < v->numel; j++)
                p[j] = (float)(inits[i].gain * trc_rng_normal(&rng));
            continue;
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
        if (strcmp(model->views[i].name, name) == 0 || strcmp(model->views[i].alt, name) == 0)
            return &model->views[i];
    return NULL;
}

static pthread_once_t blas_once = PTHREAD_ONCE_INIT;

static void blas_single_once(void) {
    openblas_set_num_threads(1);
}

void trc_model_blas_single(void) {
    pthread_once(&blas_once, blas_single_once);
}
