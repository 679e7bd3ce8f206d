/* Model checkpoints (see checkpoint.h and docs/checkpoints.md): every parameter as float32
 * under its PyTorch name plus __metadata__ with the configuration; loading takes our files and
 * bare PyTorch state_dict exports, whose configuration is inferred from the tensor shapes. */
#include "trc/checkpoint.h"
#include "trc/arch.h"
#include "trc/error.h"
#include "trc/fileio.h"
#include "trc/safetensors.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FORMAT_VERSION "1"

/* ---------------------------------------------------------------- saving */

enum { META_MAX = 24, META_VAL_MAX = 48 };

/* a list of up to TRC_NORM_MAX floats, each at most 16 characters and a comma */
enum { META_LIST_MAX = TRC_NORM_MAX * 17 + 1 };

typedef struct meta_list {
    const char *keys[META_MAX], *values[META_MAX];
    char text[META_MAX][META_VAL_MAX]; /* storage for formatted numbers */
    char lists[4][META_LIST_MAX];      /* storage for the normalisation vectors */
    size_t n, nlists;
} meta_list;

static void meta_str(meta_list *ml, const char *key, const char *value) {
    ml->keys[ml->n] = key;
    ml->values[ml->n++] = value;
}

static void meta_int(meta_list *ml, const char *key, int v) {
    snprintf(ml->text[ml->n], META_VAL_MAX, "%d", v);
    meta_str(ml, key, ml->text[ml->n]);
}

/* Shortest decimal text that reads back as exactly the same double (or float). */
static void meta_double(meta_list *ml, const char *key, double x, int is_float) {
    char *buf = ml->text[ml->n];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, META_VAL_MAX, "%.*g", prec, x);
        if (is_float ? strtof(buf, NULL) == (float)x : strtod(buf, NULL) == x)
            break;
    }
    meta_str(ml, key, buf);
}

/* n floats as "a,b,c", each in its shortest form that reads back as the same float. */
static void meta_floats(meta_list *ml, const char *key, const float *v, int n) {
    char *buf = ml->lists[ml->nlists++];
    size_t len = 0;
    buf[0] = 0;
    for (int i = 0; i < n; i++) {
        char one[32];
        for (int prec = 1; prec <= 9; prec++) {
            snprintf(one, sizeof one, "%.*g", prec, (double)v[i]);
            if (strtof(one, NULL) == v[i])
                break;
        }
        len += (size_t)snprintf(buf + len, META_LIST_MAX - len, "%s%s", i ? "," : "", one);
    }
    meta_str(ml, key, buf);
}

int trc_checkpoint_encode(const trc_model *model, const char *summary_json, uint8_t **buf,
                          size_t *len) {
    return trc_checkpoint_encode_names(model, TRC_NAMES_OLD, summary_json, buf, len);
}

int trc_checkpoint_encode_names(const trc_model *model, const char *names, const char *summary_json,
                                uint8_t **buf, size_t *len) {
    *buf = NULL;
    *len = 0;
    if (!names || (strcmp(names, TRC_NAMES_OLD) && strcmp(names, TRC_NAMES_NEW)))
        return trc_fail(TRC_EINVAL,
                        "checkpoint: names must be " TRC_NAMES_OLD " or " TRC_NAMES_NEW
                        ", got '%s'",
                        names ? names : "(null)");
    int want_new = strcmp(names, TRC_NAMES_NEW) == 0;
    if (!model || !model->params || !model->views || !model->num_views)
        return trc_fail(TRC_EINVAL, "checkpoint: model has no parameters");
    if (summary_json) {
        json_error_t jerr;
        json_t *j = json_loads(summary_json, JSON_REJECT_DUPLICATES, &jerr);
        int is_obj = json_is_object(j);
        json_decref(j);
        if (!is_obj)
            return trc_fail(TRC_EINVAL, "checkpoint: training summary is not a JSON object");
    }
    const trc_model_config *c = &model->cfg;
    meta_list ml = {.n = 0};
    meta_str(&ml, "trc_format", FORMAT_VERSION);
    meta_str(&ml, "arch", c->arch[0] ? c->arch : TRC_ARCH_DEFAULT);
    meta_str(&ml, "names", names);
    meta_str(&ml, "size", c->size);
    meta_int(&ml, "s", c->s);
    meta_int(&ml, "m", c->m);
    meta_int(&ml, "T", c->T);
    meta_double(&ml, "b", c->bound, 1);
    meta_int(&ml, "K", c->K);
    meta_int(&ml, "n", c->n);
    meta_int(&ml, "d", c->d);
    meta_int(&ml, "h", c->h);
    meta_int(&ml, "blocks", c->blocks);
    meta_int(&ml, "heads", c->heads);
    meta_str(&ml, "system", c->system);
    meta_double(&ml, "dt", c->dt, 0);
    if (c->feedback) /* written only when on: files without it read as before */
        meta_str(&ml, "feedback", "true");
    if (c->time_left) /* likewise */
        meta_str(&ml, "time_left", "true");
    if (c->norm) {
        if (c->s > TRC_NORM_MAX || c->m > TRC_NORM_MAX)
            return trc_fail(TRC_EINVAL, "checkpoint: normalisation of s or m above %d",
                            TRC_NORM_MAX);
        meta_floats(&ml, "norm_x_mean", c->x_mean, c->s);
        meta_floats(&ml, "norm_x_std", c->x_std, c->s);
        meta_floats(&ml, "norm_u_mean", c->u_mean, c->m);
        meta_floats(&ml, "norm_u_std", c->u_std, c->m);
    }
    if (summary_json)
        meta_str(&ml, "training", summary_json);

    trc_st_out *outs = calloc(model->num_views, sizeof *outs);
    if (!outs)
        return trc_fail(TRC_ENOMEM, "checkpoint: out of memory");
    int rc = TRC_OK;
    for (size_t i = 0; i < model->num_views && rc == TRC_OK; i++) {
        const trc_param_view *v = &model->views[i];
        const float *p = model->params + v->offset;
        for (size_t j = 0; j < v->numel; j++)
            if (!isfinite(p[j])) {
                rc = trc_fail(TRC_ENUMERIC,
                              "checkpoint: parameter '%s' has a non-finite value at index %zu",
                              v->name, j);
                break;
            }
        /* a view with two spellings: the a273222 one says ffn.fc_in / ffn.fc_out */
        int name_new = strstr(v->name, ".ffn.fc_") != NULL;
        outs[i].name = v->alt[0] && want_new != name_new ? v->alt : v->name;
        outs[i].ndim = v->ndim;
        for (int d = 0; d < v->ndim; d++)
            outs[i].shape[d] = v->shape[d];
        outs[i].data = p;
    }
    if (rc == TRC_OK)
        rc = trc_st_encode(outs, model->num_views, ml.keys, ml.values, ml.n, buf, len);
    free(outs);
    return rc;
}

int trc_checkpoint_save(const char *path, const trc_model *model, const char *summary_json) {
    return trc_checkpoint_save_names(path, model, TRC_NAMES_OLD, summary_json);
}

int trc_checkpoint_save_names(const char *path, const trc_model *model, const char *names,
                              const char *summary_json) {
    uint8_t *buf;
    size_t len;
    int rc = trc_checkpoint_encode_names(model, names, summary_json, &buf, &len);
    if (rc != TRC_OK)
        return trc_fail_prefix(rc, "%s: ", path);
    rc = trc_write_file_atomic(path, buf, len);
    free(buf);
    return rc;
}

/* ---------------------------------------------------------------- configuration from metadata */

static int meta_get_int(const trc_safetensors *st, const char *key, int *out) {
    const char *v = trc_st_meta(st, key);
    if (!v)
        return trc_fail(TRC_EFORMAT, "checkpoint metadata: missing '%s'", key);
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < INT_MIN || x > INT_MAX)
        return trc_fail(TRC_EFORMAT, "checkpoint metadata: '%s' = \"%s\" is not an integer", key,
                        v);
    *out = (int)x;
    return TRC_OK;
}

/* An optional "true" / "false" entry (absent: false). */
static int meta_get_bool(const trc_safetensors *st, const char *key, int *out) {
    const char *v = trc_st_meta(st, key);
    if (v && strcmp(v, "true") != 0 && strcmp(v, "false") != 0)
        return trc_fail(TRC_EFORMAT,
                        "checkpoint metadata: '%s' = \"%s\" is not \"true\" or \"false\"", key, v);
    *out = v && strcmp(v, "true") == 0;
    return TRC_OK;
}

static int meta_get_double(const trc_safetensors *st, const char *key, double *out) {
    const char *v = trc_st_meta(st, key);
    if (!v)
        return trc_fail(TRC_EFORMAT, "checkpoint metadata: missing '%s'", key);
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || !isfinite(x))
        return trc_fail(TRC_EFORMAT, "checkpoint metadata: '%s' = \"%s\" is not a finite number",
                        key, v);
    *out = x;
    return TRC_OK;
}

static int meta_get_str(const trc_safetensors *st, const char *key, char *dst, size_t cap) {
    const char *v = trc_st_meta(st, key);
    if (!v)
        return trc_fail(TRC_EFORMAT, "checkpoint metadata: missing '%s'", key);
    if (strlen(v) >= cap)
        return trc_fail(TRC_EFORMAT, "checkpoint metadata: '%s' longer than %zu characters", key,
                        cap - 1);
    memcpy(dst, v, strlen(v) + 1);
    return TRC_OK;
}

/* A comma-separated list of exactly n finite numbers. */
static int meta_get_floats(const trc_safetensors *st, const char *key, int n, const char *dim,
                           float *out) {
    const char *v = trc_st_meta(st, key), *p = v;
    if (!v)
        return trc_fail(TRC_EFORMAT,
                        "checkpoint metadata: '%s' missing (the normalisation needs "
                        "norm_x_mean, norm_x_std, norm_u_mean and norm_u_std together)",
                        key);
    int count = 0;
    for (;;) {
        char *end;
        errno = 0;
        double x = strtod(p, &end);
        if (errno || end == p || (*end && *end != ',') || !isfinite(x) || !isfinite((float)x))
            return trc_fail(TRC_EFORMAT,
                            "checkpoint metadata: '%s' entry %d is not a finite number (\"%.40s\")",
                            key, count, v);
        if (count < n)
            out[count] = (float)x;
        count++;
        if (!*end)
            break;
        p = end + 1;
    }
    if (count != n)
        return trc_fail(TRC_EFORMAT, "checkpoint metadata: '%s' has %d values, expected %s = %d",
                        key, count, dim, n);
    return TRC_OK;
}

/* The normalisation statistics, when the file has any of their keys. */
static int norm_from_meta(const trc_safetensors *st, trc_model_config *cfg) {
    if (!trc_st_meta(st, "norm_x_mean") && !trc_st_meta(st, "norm_x_std") &&
        !trc_st_meta(st, "norm_u_mean") && !trc_st_meta(st, "norm_u_std"))
        return TRC_OK;
    if (cfg->s < 1 || cfg->s > TRC_NORM_MAX || cfg->m < 1 || cfg->m > TRC_NORM_MAX)
        return trc_fail(TRC_EFORMAT, "checkpoint metadata: normalisation needs s and m in [1, %d]",
                        TRC_NORM_MAX);
    int rc;
    if ((rc = meta_get_floats(st, "norm_x_mean", cfg->s, "s", cfg->x_mean)) ||
        (rc = meta_get_floats(st, "norm_x_std", cfg->s, "s", cfg->x_std)) ||
        (rc = meta_get_floats(st, "norm_u_mean", cfg->m, "m", cfg->u_mean)) ||
        (rc = meta_get_floats(st, "norm_u_std", cfg->m, "m", cfg->u_std)))
        return rc;
    cfg->norm = 1;
    return TRC_OK;
}

static int config_from_meta(const trc_safetensors *st, trc_model_config *cfg) {
    const char *ver = trc_st_meta(st, "trc_format");
    if (strcmp(ver, FORMAT_VERSION))
        return trc_fail(TRC_EUNSUPPORTED,
                        "checkpoint: trc_format version \"%s\" (this build "
                        "reads \"" FORMAT_VERSION "\")",
                        ver);
    memset(cfg, 0, sizeof *cfg);
    double b, dt;
    int rc;
    /* a checkpoint written before architectures had names is the default one */
    snprintf(cfg->arch, sizeof cfg->arch, "%s", TRC_ARCH_DEFAULT);
    if (trc_st_meta(st, "arch") && (rc = meta_get_str(st, "arch", cfg->arch, sizeof cfg->arch)))
        return rc;
    if (!trc_arch_find(cfg->arch))
        return trc_fail_prefix(TRC_EUNSUPPORTED, "checkpoint: ");
    if ((rc = meta_get_str(st, "size", cfg->size, sizeof cfg->size)) ||
        (rc = meta_get_int(st, "s", &cfg->s)) || (rc = meta_get_int(st, "m", &cfg->m)) ||
        (rc = meta_get_int(st, "T", &cfg->T)) || (rc = meta_get_double(st, "b", &b)) ||
        (rc = meta_get_int(st, "K", &cfg->K)) || (rc = meta_get_int(st, "n", &cfg->n)) ||
        (rc = meta_get_int(st, "d", &cfg->d)) || (rc = meta_get_int(st, "h", &cfg->h)) ||
        (rc = meta_get_int(st, "blocks", &cfg->blocks)) ||
        (rc = meta_get_int(st, "heads", &cfg->heads)) ||
        (rc = meta_get_str(st, "system", cfg->system, sizeof cfg->system)) ||
        (rc = meta_get_double(st, "dt", &dt)))
        return rc;
    cfg->bound = (float)b;
    cfg->dt = dt;
    if ((rc = meta_get_bool(st, "feedback", &cfg->feedback)) ||
        (rc = meta_get_bool(st, "time_left", &cfg->time_left)))
        return rc;
    return norm_from_meta(st, cfg);
}

/* ---------------------------------------------------------------- configuration from shapes */

/* ---------------------------------------------------------------- loading */

static int copy_params(const trc_safetensors *st, trc_model *model) {
    const trc_model_config *c = &model->cfg;
    for (size_t i = 0; i < st->count; i++)
        if (!trc_model_find(model, st->tensors[i].name))
            return trc_fail(TRC_EFORMAT,
                            "checkpoint: unexpected tensor '%s' (not a parameter of "
                            "a %s model with d=%d h=%d blocks=%d)",
                            st->tensors[i].name, c->size, c->d, c->h, c->blocks);
    for (size_t i = 0; i < model->num_views; i++) {
        const trc_param_view *v = &model->views[i];
        const trc_st_tensor *t = trc_st_find(st, v->name);
        if (t && v->alt[0] && trc_st_find(st, v->alt))
            return trc_fail(TRC_EFORMAT, "checkpoint: parameter '%s' given twice (also as '%s')",
                            v->name, v->alt);
        if (!t && v->alt[0]) /* the other spelling of the name */
            t = trc_st_find(st, v->alt);
        if (!t)
            return trc_fail(TRC_EFORMAT, "checkpoint: missing parameter '%s'", v->name);
        int same = t->ndim == v->ndim;
        for (int d = 0; same && d < v->ndim; d++)
            same = t->shape[d] == v->shape[d];
        if (!same) {
            char got[128] = "", want[64];
            for (int d = 0, o = 0; d < t->ndim && o < 100; d++)
                o += snprintf(got + o, sizeof got - o, "%s%lld", d ? "," : "",
                              (long long)t->shape[d]);
            if (v->ndim == 2)
                snprintf(want, sizeof want, "%d,%d", v->shape[0], v->shape[1]);
            else
                snprintf(want, sizeof want, "%d", v->shape[0]);
            return trc_fail(TRC_EFORMAT,
                            "checkpoint: parameter '%s' has shape [%s], expected "
                            "[%s] for s=%d m=%d T=%d d=%d h=%d blocks=%d",
                            v->name, got, want, c->s, c->m, c->T, c->d, c->h, c->blocks);
        }
        float *dst = model->params + v->offset;
        int rc = trc_st_to_f32(t, dst);
        if (rc != TRC_OK)
            return trc_fail(rc,
                            "checkpoint: parameter '%s' has dtype that is not F32/F64/F16/"
                            "BF16",
                            v->name);
        for (size_t j = 0; j < v->numel; j++)
            if (!isfinite(dst[j]))
                return trc_fail(TRC_EFORMAT,
                                "checkpoint: parameter '%s' has a non-finite value "
                                "at index %zu",
                                v->name, j);
    }
    return TRC_OK;
}

/* The sane range of every configuration value (see checkpoint.h), one line each. */
static const struct bound {
    const char *key;
    size_t offset;
    char kind; /* 'i' int, 'f' float, 'd' double */
    double lo, hi;
} bounds[] = {
    {"s", offsetof(trc_model_config, s), 'i', 1, TRC_CKPT_MAX_STATE},
    {"m", offsetof(trc_model_config, m), 'i', 1, TRC_CKPT_MAX_STATE},
    {"T", offsetof(trc_model_config, T), 'i', 1, TRC_CKPT_MAX_T},
    {"K", offsetof(trc_model_config, K), 'i', 1, TRC_CKPT_MAX_CYCLES},
    {"n", offsetof(trc_model_config, n), 'i', 1, TRC_CKPT_MAX_CYCLES},
    {"d", offsetof(trc_model_config, d), 'i', 1, TRC_CKPT_MAX_WIDTH},
    {"h", offsetof(trc_model_config, h), 'i', 2, TRC_CKPT_MAX_WIDTH},
    {"blocks", offsetof(trc_model_config, blocks), 'i', 1, TRC_MAX_BLOCKS},
    {"heads", offsetof(trc_model_config, heads), 'i', 1, TRC_CKPT_MAX_HEADS},
    {"b", offsetof(trc_model_config, bound), 'f', 1e-6, TRC_CKPT_MAX_BOUND},
    {"dt", offsetof(trc_model_config, dt), 'd', 0, TRC_CKPT_MAX_DT},
};

/* Refuses a configuration outside the bounds, naming the field (metadata key). */
static int check_bounds(const trc_model_config *cfg) {
    for (size_t i = 0; i < sizeof bounds / sizeof bounds[0]; i++) {
        const struct bound *b = &bounds[i];
        const char *p = (const char *)cfg + b->offset;
        double v;
        if (b->kind == 'i') {
            int x;
            memcpy(&x, p, sizeof x);
            v = x;
        } else if (b->kind == 'f') {
            float x;
            memcpy(&x, p, sizeof x);
            v = x;
        } else {
            memcpy(&v, p, sizeof v);
        }
        if (!(v >= b->lo && v <= b->hi))
            return trc_fail(TRC_EFORMAT, "checkpoint: '%s' = %g is outside the sane range [%g, %g]",
                            b->key, v, b->lo, b->hi);
    }
    if ((long)cfg->T * cfg->m > TRC_CKPT_MAX_U)
        return trc_fail(TRC_EFORMAT, "checkpoint: T*m = %ld is more than %d", (long)cfg->T * cfg->m,
                        TRC_CKPT_MAX_U);
    return TRC_OK;
}

/* From the configuration the file implies (its metadata's, or one architecture's reading of
 * its shapes) to the loaded model. */
static int load_config(const trc_safetensors *st, const trc_load_overrides *ov, int has_meta,
                       trc_model_config cfg, trc_model *out) {
    int rc;
    /* what the file says must be within the sane bounds and a valid configuration (a format
     * error), and so must the result of the overrides (an argument error) */
    if ((rc = check_bounds(&cfg)))
        return rc;
    if ((rc = trc_model_config_validate(&cfg)))
        return trc_fail_prefix(TRC_EFORMAT, "checkpoint: configuration %s: ",
                               has_meta ? "in the metadata" : "inferred from the shapes");
    if (ov && ov->bound > 0)
        cfg.bound = ov->bound;
    if (ov && ov->K > 0)
        cfg.K = ov->K;
    if (ov && ov->n > 0)
        cfg.n = ov->n;
    if ((rc = trc_model_config_validate(&cfg)))
        return trc_fail_prefix(rc, "checkpoint: configuration with the overrides: ");
    if ((rc = check_bounds(&cfg)))
        return rc;
    if ((rc = trc_model_create(&cfg, out)))
        return rc;
    if ((rc = copy_params(st, out)))
        trc_model_free(out);
    return rc;
}

/* A bare export is the first architecture (table order) whose reading of the shapes loads;
 * when none does, the error names them with the default architecture's reason. */
static int load_parsed(const trc_safetensors *st, const trc_load_overrides *ov, trc_model *out) {
    trc_model_config cfg;
    int rc;
    int m = ov && ov->m > 0 ? ov->m : 1;
    if (trc_st_meta(st, "trc_format")) {
        if ((rc = config_from_meta(st, &cfg)))
            return rc;
        if (ov && ov->m > 0 && ov->m != cfg.m)
            return trc_fail(TRC_EINVAL, "checkpoint: m=%d given but the checkpoint has m=%d", ov->m,
                            cfg.m);
        return load_config(st, ov, 1, cfg, out);
    }
    int first = TRC_OK;
    char why[512] = "";
    for (size_t i = 0; i < trc_arch_count(); i++) {
        const trc_arch *a = trc_arch_at(i);
        rc = a->from_shapes(st, m, &cfg);
        if (rc == TRC_OK)
            rc = load_config(st, ov, 0, cfg, out);
        if (rc == TRC_OK)
            return TRC_OK;
        if (i == 0) {
            first = rc;
            snprintf(why, sizeof why, "%s", trc_errmsg());
        }
    }
    char known[128] = "";
    for (size_t i = 0, o = 0; i < trc_arch_count() && o < sizeof known; i++)
        o += (size_t)snprintf(known + o, sizeof known - o, "%s%s", i ? ", " : "",
                              trc_arch_at(i)->name);
    const char *w = strncmp(why, "checkpoint: ", 12) == 0 ? why + 12 : why;
    return trc_fail(first, "checkpoint: the tensors fit no architecture (%s); as %s: %s", known,
                    trc_arch_at(0)->name, w);
}

int trc_checkpoint_decode(const uint8_t *buf, size_t len, const trc_load_overrides *ov,
                          trc_model *out) {
    memset(out, 0, sizeof *out);
    trc_safetensors st;
    int rc = trc_st_parse(buf, len, &st);
    if (rc != TRC_OK)
        return rc;
    rc = load_parsed(&st, ov, out);
    trc_st_free(&st);
    return rc;
}

int trc_checkpoint_load(const char *path, const trc_load_overrides *ov, trc_model *out) {
    memset(out, 0, sizeof *out);
    trc_safetensors st;
    int rc = trc_st_read_file(path, &st);
    if (rc != TRC_OK)
        return rc;
    rc = load_parsed(&st, ov, out);
    trc_st_free(&st);
    if (rc != TRC_OK)
        return trc_fail_prefix(rc, "%s: ", path);
    return TRC_OK;
}
