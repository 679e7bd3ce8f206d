/* two_level and trm_style (model-v2.md): presets, validation, the tensor layout with its named
 * views in state_dict order, allocation, the original initialization, and loading a state_dict
 * (either FFN key spelling) strictly by name. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trc/error.h"
#include "trc/rng.h"
#include "trc/two_level.h"
#include "two_level_layout.h"

#define MAX_DIM 16384
#define MAX_PROBLEM 4096
#define MAX_U (1 << 16)
#define MAX_CYCLES 1024
#define BLOCK_PREFIX "recursive_reasoning.L_level.layers."

static const struct tl_preset {
    const char *arch, *size;
    int d, h, layers, heads, H, L;
} presets[] = {
    /* model-v2.md section 1; the FFN width is int(d * (h / d)) = h for each */
    {"two_level", "small", 64, 128, 2, 2, 3, 4},
    {"two_level", "medium", 128, 256, 2, 4, 3, 4},
    {"two_level", "large", 256, 512, 3, 8, 3, 6},
    /* trm_style asks for expansion 4 but never sets hidden_dim: h = 256 everywhere */
    {"trm_style", "small", 64, 256, 2, 2, 3, 4},
    {"trm_style", "medium", 128, 256, 2, 4, 3, 4},
    {"trm_style", "large", 256, 256, 3, 8, 3, 6},
};
#define NPRESETS (sizeof presets / sizeof presets[0])

static int arch_kind(const char *arch) {
    if (strcmp(arch, "two_level") == 0)
        return TRC_TL_LN_SILU;
    if (strcmp(arch, "trm_style") == 0)
        return TRC_TL_RMS_SWIGLU;
    return -1;
}

/* The original's FFN width rule: int(d * (h / d)) in IEEE double. */
static int width_rule(int d, int h) {
    return (int)((double)d * ((double)h / (double)d));
}

int trc_tl_config_preset(const char *arch, const char *size, int s, int m, int T, float bound,
                         trc_tl_config *cfg) {
    if (!arch || !size || !cfg)
        return trc_fail(TRC_EINVAL, "two-level preset: NULL argument");
    if (arch_kind(arch) < 0)
        return trc_fail(TRC_EINVAL, "arch must be two_level or trm_style, got '%s'", arch);
    for (size_t i = 0; i < NPRESETS; i++) {
        const struct tl_preset *p = &presets[i];
        if (strcmp(p->arch, arch) || strcmp(p->size, size))
            continue;
        memset(cfg, 0, sizeof *cfg);
        snprintf(cfg->arch, sizeof cfg->arch, "%s", arch);
        snprintf(cfg->size, sizeof cfg->size, "%s", size);
        cfg->s = s, cfg->m = m, cfg->T = T, cfg->bound = bound;
        cfg->d = p->d, cfg->h = p->h, cfg->ffn = width_rule(p->d, p->h);
        cfg->layers = p->layers, cfg->heads = p->heads, cfg->H = p->H, cfg->L = p->L;
        cfg->truncate = 1;
        cfg->kind = arch_kind(arch);
        return trc_tl_config_validate(cfg);
    }
    return trc_fail(TRC_EINVAL, "model size must be small, medium or large, got '%s'", size);
}

static int check_range(const char *what, int v, int lo, int hi) {
    if (v < lo || v > hi)
        return trc_fail(TRC_EINVAL, "model config: %s must be in [%d, %d], got %d", what, lo, hi,
                        v);
    return 0;
}

int trc_tl_config_validate(const trc_tl_config *cfg) {
    if (!cfg)
        return trc_fail(TRC_EINVAL, "model config: NULL");
    if (!memchr(cfg->arch, '\0', sizeof cfg->arch) || !memchr(cfg->size, '\0', sizeof cfg->size) ||
        !memchr(cfg->system, '\0', sizeof cfg->system))
        return trc_fail(TRC_EINVAL,
                        "model config: arch, size or system is not a terminated string");
    if (!isfinite(cfg->dt) || cfg->dt < 0.0)
        return trc_fail(TRC_EINVAL, "model config: dt must be >= 0, got %g", cfg->dt);
    int kind = arch_kind(cfg->arch);
    if (kind < 0)
        return trc_fail(TRC_EINVAL, "model config: arch must be two_level or trm_style, got '%s'",
                        cfg->arch);
    if (cfg->kind != kind)
        return trc_fail(TRC_EINVAL, "model config: block kind %d does not belong to arch %s",
                        cfg->kind, cfg->arch);
    int rc;
    if ((rc = check_range("s (state dimension)", cfg->s, 1, MAX_PROBLEM)) ||
        (rc = check_range("m (control dimension)", cfg->m, 1, MAX_PROBLEM)) ||
        (rc = check_range("T (horizon)", cfg->T, 1, MAX_PROBLEM)) ||
        (rc = check_range("d (latent)", cfg->d, 1, MAX_DIM)) ||
        (rc = check_range("h (hidden)", cfg->h, 2, MAX_DIM)) ||
        (rc = check_range("ffn (FFN width)", cfg->ffn, 1, MAX_DIM)) ||
        (rc = check_range("layers", cfg->layers, 1, TRC_TL_MAX_LAYERS)) ||
        (rc = check_range("heads", cfg->heads, 1, MAX_DIM)) ||
        (rc = check_range("H cycles", cfg->H, 1, MAX_CYCLES)) ||
        (rc = check_range("L cycles", cfg->L, 1, MAX_CYCLES)))
        return rc;
    if ((long)cfg->T * cfg->m > MAX_U)
        return trc_fail(TRC_EINVAL, "model config: T*m must be at most %d", MAX_U);
    if (cfg->h % 2)
        return trc_fail(TRC_EINVAL, "model config: h must be even (the error encoder uses h/2)");
    if (cfg->d % cfg->heads)
        return trc_fail(TRC_EINVAL, "model config: d (%d) must be divisible by heads (%d)", cfg->d,
                        cfg->heads);
    if (!isfinite(cfg->bound) || cfg->bound <= 0.0f)
        return trc_fail(TRC_EINVAL, "model config: bound must be a positive number, got %g",
                        (double)cfg->bound);
    if (cfg->truncate != 0 && cfg->truncate != 1)
        return trc_fail(TRC_EINVAL, "model config: truncate must be 0 or 1");
    if (cfg->feedback != 0 && cfg->feedback != 1)
        return trc_fail(TRC_EINVAL, "model config: feedback must be 0 or 1");
    if (cfg->feedback && cfg->s != 2)
        return trc_fail(TRC_EINVAL,
                        "model config: trajectory feedback needs s = 2 (the original's "
                        "error_embedding takes 2 inputs), got s = %d",
                        cfg->s);
    if (strcmp(cfg->size, "custom") != 0) {
        for (size_t i = 0; i < NPRESETS; i++) {
            const struct tl_preset *p = &presets[i];
            if (strcmp(p->arch, cfg->arch) || strcmp(p->size, cfg->size))
                continue;
            if (p->d != cfg->d || p->h != cfg->h || p->layers != cfg->layers ||
                width_rule(p->d, p->h) != cfg->ffn)
                return trc_fail(TRC_EINVAL,
                                "model config: %s %s means d=%d h=%d layers=%d, got d=%d h=%d "
                                "layers=%d ffn=%d (use size \"custom\")",
                                p->arch, p->size, p->d, p->h, p->layers, cfg->d, cfg->h,
                                cfg->layers, cfg->ffn);
            return 0;
        }
        return trc_fail(TRC_EINVAL,
                        "model config: size must be small, medium, large or custom, got '%s'",
                        cfg->size);
    }
    return 0;
}

/* ---------------------------------------------------------------- layout */

typedef struct builder {
    tl_layout *L;
    trc_param_view *views;
    unsigned char *roles;
    tl_init_spec *inits;
} builder;

static size_t add(builder *bd, const char *name, int rows, int cols, tl_init_spec init, int role) {
    tl_layout *L = bd->L;
    size_t off = L->num_floats, numel = (size_t)rows * (size_t)(cols > 0 ? cols : 1);
    if (bd->views) {
        trc_param_view *v = &bd->views[L->num_views];
        snprintf(v->name, sizeof v->name, "%s", name);
        v->offset = off;
        v->numel = numel;
        v->ndim = cols > 0 ? 2 : 1;
        v->shape[0] = rows;
        v->shape[1] = cols > 0 ? cols : 0;
    }
    if (bd->roles)
        bd->roles[L->num_views] = (unsigned char)role;
    if (bd->inits)
        bd->inits[L->num_views] = init;
    L->num_floats += numel;
    if (role == TRC_TL_PARAM)
        L->num_trainable += numel;
    L->num_views++;
    return off;
}

static const tl_init_spec ZERO = {TL_INIT_ZERO, 0, 0}, ONE = {TL_INIT_ONE, 0, 0};

static tl_init_spec xavier(float gain) {
    return (tl_init_spec){TL_INIT_XAVIER, gain, 0};
}

static tl_init_spec fanin(int fan_in) {
    return (tl_init_spec){TL_INIT_FANIN, 0, fan_in};
}

static trc_lin_off add_linear(builder *bd, const char *prefix, int in, int out, tl_init_spec wi,
                              tl_init_spec bi) {
    char name[TRC_PARAM_NAME_MAX];
    trc_lin_off o;
    snprintf(name, sizeof name, "%.80s.weight", prefix);
    o.w = add(bd, name, out, in, wi, TRC_TL_PARAM);
    snprintf(name, sizeof name, "%.80s.bias", prefix);
    o.b = add(bd, name, out, 0, bi, TRC_TL_PARAM);
    return o;
}

static trc_lin_off add_linear_default(builder *bd, const char *prefix, int in, int out) {
    return add_linear(bd, prefix, in, out, fanin(in), fanin(in));
}

/* LayerNorm (weight, bias) or RMSNorm (weight only) */
static trc_lin_off add_norm(builder *bd, const char *prefix, int C, int with_bias) {
    char name[TRC_PARAM_NAME_MAX];
    trc_lin_off o;
    snprintf(name, sizeof name, "%.80s.weight", prefix);
    o.w = add(bd, name, C, 0, ONE, TRC_TL_PARAM);
    o.b = TL_NONE;
    if (with_bias) {
        snprintf(name, sizeof name, "%.80s.bias", prefix);
        o.b = add(bd, name, C, 0, ZERO, TRC_TL_PARAM);
    }
    return o;
}

void tl_layout_build(const trc_tl_config *cfg, tl_layout *L, trc_param_view *views,
                     unsigned char *roles, tl_init_spec *inits) {
    memset(L, 0, sizeof *L);
    L->s = cfg->s, L->m = cfg->m, L->T = cfg->T, L->U = cfg->T * cfg->m;
    L->d = cfg->d, L->h = cfg->h, L->ffn = cfg->ffn, L->layers = cfg->layers;
    L->H = cfg->H, L->L = cfg->L, L->in_dim = 2 * cfg->s + 1, L->kind = cfg->kind;
    L->truncate = cfg->truncate, L->feedback = cfg->feedback, L->bound = cfg->bound;
    int ln = cfg->kind == TRC_TL_LN_SILU;
    L->fc_in_out = ln ? cfg->ffn : 2 * cfg->ffn;
    builder bd = {L, views, roles, inits};
    int s = cfg->s, U = L->U, d = cfg->d, h = cfg->h, I = cfg->ffn;

    L->enc0 = add_linear(&bd, "state_encoder.encoder.0", L->in_dim, h, xavier(1), ZERO);
    L->enc2 = add_norm(&bd, "state_encoder.encoder.2", h, 1);
    L->enc3 = add_linear(&bd, "state_encoder.encoder.3", h, d, xavier(1), ZERO);
    L->err0 = add_linear_default(&bd, "error_encoder.encoder.0", s, h / 2);
    L->err2 = add_norm(&bd, "error_encoder.encoder.2", h / 2, 1);
    L->err3 = add_linear_default(&bd, "error_encoder.encoder.3", h / 2, d);

    /* two_level: trainable parameters; trm_style: buffers (in the state_dict, never trained) */
    int role = ln ? TRC_TL_PARAM : TRC_TL_BUFFER;
    tl_init_spec normal = {TL_INIT_NORMAL, 0.02f, 0};
    L->H_init = add(&bd, "recursive_reasoning.H_init", d, 0, normal, role);
    L->L_init = add(&bd, "recursive_reasoning.L_init", d, 0, normal, role);
    for (int i = 0; i < cfg->layers; i++) {
        char p[64], name[TRC_PARAM_NAME_MAX];
        tl_block_off *B = &L->blk[i];
        snprintf(p, sizeof p, BLOCK_PREFIX "%d.", i);
        snprintf(name, sizeof name, "%sattention.in_proj_weight", p);
        B->in_w = add(&bd, name, 3 * d, d, xavier(1), TRC_TL_PARAM);
        snprintf(name, sizeof name, "%sattention.in_proj_bias", p);
        B->in_b = add(&bd, name, 3 * d, 0, ZERO, TRC_TL_PARAM);
        snprintf(name, sizeof name, "%sattention.out_proj", p);
        B->out = add_linear(&bd, name, d, d, fanin(d), ZERO);
        snprintf(name, sizeof name, "%snorm1", p);
        B->norm1 = add_norm(&bd, name, d, ln);
        snprintf(name, sizeof name, "%sffn.fc_in", p);
        B->fc_in = add_linear_default(&bd, name, d, L->fc_in_out);
        snprintf(name, sizeof name, "%sffn.fc_out", p);
        B->fc_out = add_linear_default(&bd, name, I, d);
        snprintf(name, sizeof name, "%snorm2", p);
        B->norm2 = add_norm(&bd, name, d, ln);
    }
    L->ctrl_emb = add_linear_default(&bd, "recursive_reasoning.control_embedding", U, d);
    L->err_emb = add_linear_default(&bd, "recursive_reasoning.error_embedding", 2, d);
    L->dec0 = add_linear(&bd, "control_decoder.decoder.0", d + U, h, xavier(0.01f), ZERO);
    L->dec2 = add_norm(&bd, "control_decoder.decoder.2", h, 1);
    L->dec3 = add_linear(&bd, "control_decoder.decoder.3", h, U, xavier(0.01f), ZERO);
    L->gen0 = add_linear(&bd, "initial_control_generator.decoder.0", d, h, xavier(0.1f), ZERO);
    L->gen2 = add_norm(&bd, "initial_control_generator.decoder.2", h, 1);
    L->gen3 = add_linear(&bd, "initial_control_generator.decoder.3", h, U, xavier(0.1f), ZERO);
}

size_t trc_tl_param_count(const trc_tl_config *cfg) {
    if (trc_tl_config_validate(cfg) != 0)
        return 0;
    tl_layout L;
    tl_layout_build(cfg, &L, NULL, NULL, NULL);
    return L.num_trainable;
}

int trc_tl_grad_absent(const trc_tl_config *c, const char *n) {
    if (strncmp(n, "error_encoder.", 14) == 0) /* used by nothing */
        return 1;
    if (strncmp(n, "recursive_reasoning.error_embedding.", 36) == 0)
        return !c->feedback;
    if (!strcmp(n, "recursive_reasoning.H_init") || !strcmp(n, "recursive_reasoning.L_init"))
        return c->kind == TRC_TL_RMS_SWIGLU /* buffers */ || (c->truncate && c->H > 1);
    return 0;
}

/* Which gradients exist (model-v2.md section 6). */
static void mark_grads(trc_tl_model *m) {
    for (size_t i = 0; i < m->num_views; i++)
        m->has_grad[i] = (unsigned char)(m->role[i] == TRC_TL_PARAM &&
                                         !trc_tl_grad_absent(&m->cfg, m->views[i].name));
}

int trc_tl_create(const trc_tl_config *cfg, trc_tl_model *model) {
    if (!model)
        return trc_fail(TRC_EINVAL, "model create: NULL model");
    memset(model, 0, sizeof *model);
    int rc = trc_tl_config_validate(cfg);
    if (rc)
        return rc;
    tl_layout L;
    tl_layout_build(cfg, &L, NULL, NULL, NULL);
    model->params = calloc(L.num_floats, sizeof *model->params);
    model->views = calloc(L.num_views, sizeof *model->views);
    model->role = calloc(L.num_views, 1);
    model->has_grad = calloc(L.num_views, 1);
    if (!model->params || !model->views || !model->role || !model->has_grad) {
        trc_tl_free(model);
        return trc_fail(TRC_ENOMEM, "model create: cannot allocate %zu floats", L.num_floats);
    }
    tl_layout_build(cfg, &L, model->views, model->role, NULL);
    model->cfg = *cfg;
    model->num_floats = L.num_floats;
    model->num_trainable = L.num_trainable;
    model->num_views = L.num_views;
    mark_grads(model);
    return 0;
}

int trc_tl_init(trc_tl_model *model, uint64_t seed) {
    if (!model || !model->params)
        return trc_fail(TRC_EINVAL, "model init: model not created");
    tl_layout L;
    tl_layout_build(&model->cfg, &L, NULL, NULL, NULL);
    tl_init_spec *inits = malloc(L.num_views * sizeof *inits);
    if (!inits)
        return trc_fail(TRC_ENOMEM, "model init: out of memory");
    tl_layout_build(&model->cfg, &L, NULL, NULL, inits);
    trc_rng rng;
    trc_rng_seed(&rng, seed);
    for (size_t i = 0; i < model->num_views; i++) {
        const trc_param_view *v = &model->views[i];
        float *p = model->params + v->offset;
        double a = 0.0;
        switch (inits[i].kind) {
        case TL_INIT_ZERO:
            memset(p, 0, v->numel * sizeof *p);
            continue;
        case TL_INIT_ONE:
            for (size_t j = 0; j < v->numel; j++)
                p[j] = 1.0f;
            continue;
        case TL_INIT_NORMAL:
            for (size_t j = 0; j < v->numel; j++)
                p[j] = (float)(inits[i].a * trc_rng_normal(&rng));
            continue;
        case TL_INIT_XAVIER:
            a = inits[i].a * sqrt(6.0 / (double)(v->shape[0] + v->shape[1]));
            break;
        case TL_INIT_FANIN:
            a = 1.0 / sqrt((double)inits[i].fan_in);
            break;
        }
        for (size_t j = 0; j < v->numel; j++)
            p[j] = (float)trc_rng_range(&rng, -a, a);
    }
    free(inits);
    return 0;
}

void trc_tl_free(trc_tl_model *model) {
    if (!model)
        return;
    free(model->params);
    free(model->views);
    free(model->role);
    free(model->has_grad);
    memset(model, 0, sizeof *model);
}

const trc_param_view *trc_tl_find(const trc_tl_model *model, const char *name) {
    if (!model || !name || !model->views)
        return NULL;
    for (size_t i = 0; i < model->num_views; i++)
        if (strcmp(model->views[i].name, name) == 0)
            return &model->views[i];
    return NULL;
}

/* ---------------------------------------------------------------- loading */

/* The a273222 spelling of a key: ".ffn.0." -> ".ffn.fc_in.", ".ffn.3." -> ".ffn.fc_out.". */
static void newer_spelling(const char *name, char *out, size_t cap) {
    const char *p = strstr(name, ".ffn.");
    if (p && (p[5] == '0' || p[5] == '3') && p[6] == '.')
        snprintf(out, cap, "%.*s.ffn.%s%s", (int)(p - name), name, p[5] == '0' ? "fc_in" : "fc_out",
                 p + 6);
    else
        snprintf(out, cap, "%s", name);
}

int trc_tl_load_tensors(const trc_safetensors *st, trc_tl_model *model) {
    const trc_tl_config *c = &model->cfg;
    unsigned char *seen = calloc(model->num_views, 1);
    if (!seen)
        return trc_fail(TRC_ENOMEM, "checkpoint: out of memory");
    int rc = TRC_OK;
    for (size_t i = 0; i < st->count && rc == TRC_OK; i++) {
        const trc_st_tensor *t = &st->tensors[i];
        char name[TRC_PARAM_NAME_MAX + 16];
        newer_spelling(t->name, name, sizeof name);
        const trc_param_view *v = trc_tl_find(model, name);
        if (!v) {
            rc = trc_fail(TRC_EFORMAT,
                          "checkpoint: unexpected tensor '%s' (not a tensor of a %s %s model "
                          "with d=%d h=%d ffn=%d layers=%d)",
                          t->name, c->arch, c->size, c->d, c->h, c->ffn, c->layers);
            break;
        }
        size_t vi = (size_t)(v - model->views);
        if (seen[vi]) {
            rc = trc_fail(TRC_EFORMAT, "checkpoint: tensor '%s' given twice (both key spellings)",
                          v->name);
            break;
        }
        seen[vi] = 1;
        int same = t->ndim == v->ndim;
        for (int k = 0; same && k < v->ndim; k++)
            same = t->shape[k] == v->shape[k];
        if (!same) {
            rc = trc_fail(TRC_EFORMAT,
                          "checkpoint: tensor '%s' has the wrong shape for a %s %s "
                          "model (expected [%d%s%.0d])",
                          t->name, c->arch, c->size, v->shape[0], v->ndim == 2 ? ", " : "",
                          v->ndim == 2 ? v->shape[1] : 0);
            break;
        }
        float *dst = model->params + v->offset;
        if ((rc = trc_st_to_f32(t, dst)) != TRC_OK) {
            rc = trc_fail(rc, "checkpoint: tensor '%s' has a dtype that is not F32/F64/F16/BF16",
                          t->name);
            break;
        }
        for (size_t j = 0; j < v->numel; j++)
            if (!isfinite(dst[j])) {
                rc = trc_fail(TRC_EFORMAT, "checkpoint: tensor '%s' has a non-finite value at %zu",
                              t->name, j);
                break;
            }
    }
    for (size_t i = 0; i < model->num_views && rc == TRC_OK; i++)
        if (!seen[i])
            rc = trc_fail(TRC_EFORMAT, "checkpoint: missing tensor '%s'", model->views[i].name);
    free(seen);
    return rc;
}

static int shape_of(const trc_safetensors *st, const char *name, int ndim, int *dims) {
    char alt[TRC_PARAM_NAME_MAX + 16];
    const trc_st_tensor *t = trc_st_find(st, name);
    if (!t && strstr(name, ".ffn.fc_out.")) { /* the ec6511d spelling */
        const char *p = strstr(name, ".ffn.fc_out.");
        snprintf(alt, sizeof alt, "%.*s.ffn.3.%s", (int)(p - name), name, p + 12);
        t = trc_st_find(st, alt);
    }
    if (!t)
        return trc_fail(TRC_EFORMAT,
                        "checkpoint: missing tensor '%s' (needed to infer the "
                        "configuration)",
                        name);
    if (t->ndim != ndim)
        return trc_fail(TRC_EFORMAT, "checkpoint: tensor '%s' has %d dimensions, expected %d", name,
                        t->ndim, ndim);
    for (int k = 0; k < ndim; k++) {
        if (t->shape[k] <= 0 || t->shape[k] > INT_MAX)
            return trc_fail(TRC_EFORMAT, "checkpoint: tensor '%s' has a bad shape", name);
        dims[k] = (int)t->shape[k];
    }
    return TRC_OK;
}

int trc_tl_config_from_tensors(const trc_safetensors *st, int m, float bound, trc_tl_config *cfg) {
    int a[2], b[2], c[2], f[2], rc;
    if (m <= 0)
        m = 1;
    if ((rc = shape_of(st, "state_encoder.encoder.0.weight", 2, a)) ||
        (rc = shape_of(st, "state_encoder.encoder.3.weight", 2, b)) ||
        (rc = shape_of(st, "control_decoder.decoder.3.weight", 2, c)) ||
        (rc = shape_of(st, BLOCK_PREFIX "0.ffn.fc_out.weight", 2, f)))
        return rc;
    if (!trc_st_find(st, "recursive_reasoning.H_init"))
        return trc_fail(TRC_EFORMAT, "checkpoint: no 'recursive_reasoning.H_init': not a "
                                     "two_level or trm_style model");
    int in = a[1], h = a[0], d = b[0], U = c[0];
    if (in < 3 || in % 2 == 0)
        return trc_fail(TRC_EFORMAT, "checkpoint: state encoder has %d inputs; expected 2s+1", in);
    if (U % m)
        return trc_fail(TRC_EFORMAT, "checkpoint: %d controls are not a multiple of m = %d", U, m);
    int layers = 0;
    size_t plen = strlen(BLOCK_PREFIX);
    for (size_t i = 0; i < st->count; i++) {
        const char *n = st->tensors[i].name;
        if (strncmp(n, BLOCK_PREFIX, plen))
            continue;
        long idx = 0;
        int digits = 0;
        const char *p = n + plen;
        while (*p >= '0' && *p <= '9' && digits < 4)
            idx = idx * 10 + (*p++ - '0'), digits++;
        if (!digits || *p != '.')
            return trc_fail(TRC_EFORMAT, "checkpoint: unexpected tensor '%s'", n);
        if (idx >= TRC_TL_MAX_LAYERS)
            return trc_fail(TRC_EUNSUPPORTED, "checkpoint: at most %d layers are supported",
                            TRC_TL_MAX_LAYERS);
        if (idx + 1 > layers)
            layers = (int)idx + 1;
    }
    int ln = trc_st_find(st, BLOCK_PREFIX "0.norm1.bias") != NULL;
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->arch, sizeof cfg->arch, "%s", ln ? "two_level" : "trm_style");
    snprintf(cfg->size, sizeof cfg->size, "custom");
    cfg->kind = ln ? TRC_TL_LN_SILU : TRC_TL_RMS_SWIGLU;
    cfg->s = (in - 1) / 2, cfg->m = m, cfg->T = U / m;
    cfg->bound = bound > 0 ? bound : 4.0f;
    cfg->d = d, cfg->h = h, cfg->ffn = f[1], cfg->layers = layers;
    cfg->heads = d % 32 == 0 ? d / 32 : 1;
    cfg->H = 3, cfg->L = 4, cfg->truncate = 1;
    for (size_t i = 0; i < NPRESETS; i++) {
        const struct tl_preset *p = &presets[i];
        if (!strcmp(p->arch, cfg->arch) && p->d == d && p->h == h && p->layers == layers &&
            width_rule(p->d, p->h) == cfg->ffn) {
            snprintf(cfg->size, sizeof cfg->size, "%s", p->size);
            cfg->heads = p->heads, cfg->H = p->H, cfg->L = p->L;
        }
    }
    if ((rc = trc_tl_config_validate(cfg)))
        return trc_fail_prefix(TRC_EFORMAT, "checkpoint: configuration inferred from the shapes: ");
    return TRC_OK;
}
