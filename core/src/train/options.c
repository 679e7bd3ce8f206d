/* The training options: defaults, validation, and their JSON form (the settings saved with a
 * run, in training_stats.json, checkpoint summaries and the optimizer state). One home for them,
 * so the loop (train.c) and the saved state (train_state.c) both call here and never each
 * other. */
#include "trc/arch.h"
#include "trc/error.h"
#include "train_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void trc_train_opts_default(trc_train_opts *o) {
    memset(o, 0, sizeof *o);
    snprintf(o->model_size, sizeof o->model_size, "medium");
    o->K = 3;
    o->n = 3;
    o->epochs = 100;
    o->batch_size = 64;
    o->lr = 1e-3;
    o->weight_decay = 1e-5;
    o->grad_clip = 1.0;
    o->scheduler = TRC_SCHED_COSINE;
    o->lr_min = 1e-6;
    o->step_size = 30;
    o->gamma = 0.0; /* the scheduler's own default */
    o->plateau_patience = 10;
    o->patience = 20;
    o->val_split = 0.1;
    o->seed = 42;
    o->threads = 1;
}

double trc_train_effective_gamma(const trc_train_opts *o) {
    if (o->gamma > 0)
        return o->gamma;
    return o->scheduler == TRC_SCHED_PLATEAU ? 0.5 : 0.1;
}

static int terminated(const char *s, size_t cap) {
    return memchr(s, 0, cap) != NULL;
}

int trc_train_opts_validate(const trc_train_opts *o) {
    if (!o)
        return trc_fail(TRC_EINVAL, "training options are NULL");
    if (!terminated(o->arch, sizeof o->arch))
        return trc_fail(TRC_EINVAL, "architecture name is not terminated");
    const trc_arch *a = trc_arch_find(o->arch[0] ? o->arch : TRC_ARCH_DEFAULT);
    if (!a)
        return TRC_EINVAL;
    if (!terminated(o->model_size, sizeof o->model_size) || !trc_arch_size_find(a, o->model_size))
        return trc_fail(TRC_EINVAL, "model size must be small, medium or large");
    if (o->K < 1 || o->K > 64)
        return trc_fail(TRC_EINVAL, "K (outer cycles) must be in 1..64, got %d", o->K);
    if (o->n < 1 || o->n > 64)
        return trc_fail(TRC_EINVAL, "n (inner cycles) must be in 1..64, got %d", o->n);
    if (o->epochs < 1 || o->epochs > 1000000)
        return trc_fail(TRC_EINVAL, "epochs must be in 1..1000000, got %d", o->epochs);
    if (o->batch_size < 1 || o->batch_size > 1 << 20)
        return trc_fail(TRC_EINVAL, "batch size must be in 1..1048576, got %d", o->batch_size);
    if (o->threads < 1 || o->threads > 64)
        return trc_fail(TRC_EINVAL, "threads must be in 1..64, got %d", o->threads);
    if (!(o->lr > 0) || !isfinite(o->lr) || o->lr > 10)
        return trc_fail(TRC_EINVAL, "learning rate must be in (0, 10], got %g", o->lr);
    if (!(o->weight_decay >= 0) || !isfinite(o->weight_decay) || o->weight_decay * o->lr >= 1)
        return trc_fail(TRC_EINVAL, "weight decay must be >= 0 with lr * wd < 1, got %g",
                        o->weight_decay);
    if (!isfinite(o->grad_clip))
        return trc_fail(TRC_EINVAL, "gradient clip must be finite (<= 0 disables), got %g",
                        o->grad_clip);
    if ((unsigned)o->scheduler > TRC_SCHED_NONE)
        return trc_fail(TRC_EINVAL, "unknown scheduler kind %d", (int)o->scheduler);
    if (!(o->lr_min >= 0) || !(o->lr_min <= o->lr))
        return trc_fail(TRC_EINVAL, "lr_min must be in [0, lr], got %g", o->lr_min);
    if (o->step_size < 1)
        return trc_fail(TRC_EINVAL, "step size must be >= 1, got %d", o->step_size);
    double g = trc_train_effective_gamma(o);
    if (!isfinite(o->gamma) || !(g <= 1) || (o->scheduler == TRC_SCHED_PLATEAU && g >= 1))
        return trc_fail(TRC_EINVAL, "gamma must be in (0, 1) (<= 0 for the default), got %g",
                        o->gamma);
    if (o->plateau_patience < 0)
        return trc_fail(TRC_EINVAL, "plateau patience must be >= 0, got %d", o->plateau_patience);
    if (o->patience < 0)
        return trc_fail(TRC_EINVAL, "patience must be >= 0 (0 = off), got %d", o->patience);
    if (!(o->val_split >= 0 && o->val_split < 1))
        return trc_fail(TRC_EINVAL, "validation split must be in [0, 1), got %g", o->val_split);
    if (!isfinite(o->bound))
        return trc_fail(TRC_EINVAL, "control bound must be finite, got %g", o->bound);
    if (!terminated(o->out_dir, sizeof o->out_dir) ||
        !terminated(o->data_path, sizeof o->data_path))
        return trc_fail(TRC_EINVAL, "output directory or data path is not terminated");
    if (o->resume && !o->out_dir[0])
        return trc_fail(TRC_EINVAL, "resume needs the output directory of the run");
    return TRC_OK;
}

json_t *trc_train_settings_json(const trc_train_opts *o) {
    json_t *seed = o->seed <= INT64_MAX ? json_integer((json_int_t)o->seed) : NULL;
    if (!seed) {
        char buf[32];
        snprintf(buf, sizeof buf, "%" PRIu64, o->seed);
        seed = json_string(buf);
    }
    json_t *j = json_pack("{s:s, s:i, s:i, s:i, s:i, s:f, s:f, s:f, s:s, s:f, s:i, s:f, s:i, s:i, "
                          "s:f, s:o, s:f}",
                          "model_size", o->model_size, "K", o->K, "n", o->n, "epochs", o->epochs,
                          "batch_size", o->batch_size, "lr", o->lr, "weight_decay", o->weight_decay,
                          "grad_clip", o->grad_clip, "scheduler", trc_sched_name(o->scheduler),
                          "lr_min", o->lr_min, "step_size", o->step_size, "gamma", o->gamma,
                          "plateau_patience", o->plateau_patience, "patience", o->patience,
                          "val_split", o->val_split, "seed", seed, "bound", o->bound);
    /* the architecture only when it is not the default, so the settings of every run from
     * before architectures had names read the same */
    if (j && o->arch[0] && strcmp(o->arch, TRC_ARCH_DEFAULT) != 0)
        json_object_set_new(j, "arch", json_string(o->arch));
    return j;
}

static int get_int(const json_t *j, const char *key, int *out) {
    json_t *v = json_object_get(j, key);
    if (!json_is_integer(v) || json_integer_value(v) < INT32_MIN ||
        json_integer_value(v) > INT32_MAX)
        return trc_fail(TRC_EFORMAT, "settings: '%s' must be an integer", key);
    *out = (int)json_integer_value(v);
    return TRC_OK;
}

static int get_real(const json_t *j, const char *key, double *out) {
    json_t *v = json_object_get(j, key);
    if (!json_is_number(v))
        return trc_fail(TRC_EFORMAT, "settings: '%s' must be a number", key);
    *out = json_number_value(v);
    return TRC_OK;
}

int trc_train_settings_parse(const json_t *j, trc_train_opts *o) {
    if (!json_is_object(j))
        return trc_fail(TRC_EFORMAT, "settings: not a JSON object");
    const char *size = json_string_value(json_object_get(j, "model_size"));
    const char *sched = json_string_value(json_object_get(j, "scheduler"));
    if (!size || strlen(size) >= sizeof o->model_size)
        return trc_fail(TRC_EFORMAT, "settings: 'model_size' must be a short string");
    snprintf(o->model_size, sizeof o->model_size, "%s", size);
    const char *arch = json_string_value(json_object_get(j, "arch"));
    if (arch && strlen(arch) >= sizeof o->arch)
        return trc_fail(TRC_EFORMAT, "settings: 'arch' must be a short string");
    snprintf(o->arch, sizeof o->arch, "%s", arch ? arch : "");
    int rc = trc_sched_parse(sched, &o->scheduler);
    if (!rc)
        rc = get_int(j, "K", &o->K);
    if (!rc)
        rc = get_int(j, "n", &o->n);
    if (!rc)
        rc = get_int(j, "epochs", &o->epochs);
    if (!rc)
        rc = get_int(j, "batch_size", &o->batch_size);
    if (!rc)
        rc = get_int(j, "step_size", &o->step_size);
    if (!rc)
        rc = get_int(j, "plateau_patience", &o->plateau_patience);
    if (!rc)
        rc = get_int(j, "patience", &o->patience);
    if (!rc)
        rc = get_real(j, "lr", &o->lr);
    if (!rc)
        rc = get_real(j, "weight_decay", &o->weight_decay);
    if (!rc)
        rc = get_real(j, "grad_clip", &o->grad_clip);
    if (!rc)
        rc = get_real(j, "lr_min", &o->lr_min);
    if (!rc)
        rc = get_real(j, "gamma", &o->gamma);
    if (!rc)
        rc = get_real(j, "val_split", &o->val_split);
    if (!rc)
        rc = get_real(j, "bound", &o->bound);
    if (rc)
        return rc;
    json_t *seed = json_object_get(j, "seed");
    if (json_is_integer(seed)) {
        o->seed = (uint64_t)json_integer_value(seed);
    } else if (json_is_string(seed)) {
        errno = 0;
        char *end;
        o->seed = strtoull(json_string_value(seed), &end, 10);
        if (errno || *end || end == json_string_value(seed))
            return trc_fail(TRC_EFORMAT, "settings: 'seed' is not an unsigned integer");
    } else {
        return trc_fail(TRC_EFORMAT, "settings: 'seed' must be an integer");
    }
    return TRC_OK;
}
