/* A run's saved state, optimizer_state.safetensors: parameters and AdamW moments as tensors,
 * every scalar of the loop (step, epoch, batch, generator, schedule, best loss, patience,
 * history, settings, dataset fingerprint) in __metadata__, doubles printed exactly (%.17g).
 * The file is self-contained so that a resume never mixes two moments of a run. Also the
 * settings themselves and their JSON form live in options.c. */
#include "trc/error.h"
#include "trc/safetensors.h"
#include "train_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STATE_FORMAT "trc-optimizer-state"
#define STATE_VERSION "1"

/* NaN and infinities are not JSON: they become null. */
static json_t *real_or_null(double x) {
    return isfinite(x) ? json_real(x) : json_null();
}

char *trc_train_summary(const trc_run *run, int epoch) {
    const trc_epoch_stats *st = epoch > 0 ? &run->history[epoch - 1] : NULL;
    json_t *j =
        json_pack("{s:i, s:i, s:I, s:o, s:o, s:i, s:o, s:I, s:I, s:o}", "epoch", epoch,
                  "epochs_run", run->epoch_done, "steps", (json_int_t)run->opt.step, "train_loss",
                  real_or_null(st ? st->train_loss : NAN), "val_loss",
                  real_or_null(st ? st->val_loss : NAN), "best_epoch", run->best_epoch, "best_loss",
                  real_or_null(run->best_loss), "n_train", (json_int_t)run->n_train, "n_val",
                  (json_int_t)run->n_val, "settings", trc_train_settings_json(&run->o));
    if (!j)
        return NULL;
    if (epoch == run->epoch_done && run->batch_done > 0)
        json_object_set_new(j, "batches_into_next_epoch",
                            json_integer((json_int_t)run->batch_done));
    char *text = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(12));
    json_decref(j);
    return text;
}

static json_t *history_json(const trc_epoch_stats *h, int count, const trc_objective *obj) {
    json_t *arr = json_array();
    for (int i = 0; arr && i < count; i++) {
        json_t *e =
            json_pack("{s:i, s:o, s:o, s:o, s:o, s:o}", "epoch", h[i].epoch, "train_loss",
                      real_or_null(h[i].train_loss), "val_loss", real_or_null(h[i].val_loss), "lr",
                      real_or_null(h[i].lr), "seconds", real_or_null(h[i].seconds),
                      "samples_per_sec", real_or_null(h[i].samples_per_sec));
        if (e && h[i].nterms > 0) {
            json_object_set_new(e, "train_terms",
                                trc_train_terms_json(obj, h[i].train_terms, h[i].nterms));
            json_object_set_new(e, "val_terms",
                                trc_train_terms_json(obj, h[i].val_terms, h[i].nterms));
        }
        if (!e || json_array_append_new(arr, e)) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

/* Metadata is string -> string: a small table of formatted values. */
#define MAX_META 24
typedef struct meta {
    const char *keys[MAX_META];
    char *values[MAX_META];
    size_t count;
    int failed;
} meta;

static void meta_put(meta *m, const char *key, char *value) {
    if (!value || m->count == MAX_META) {
        free(value);
        m->failed = 1;
        return;
    }
    m->keys[m->count] = key;
    m->values[m->count++] = value;
}

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...) {
    va_list ap;
    va_start(ap, f);
    char *s = NULL;
    if (vasprintf(&s, f, ap) < 0)
        s = NULL;
    va_end(ap);
    return s;
}

static char *dump_and_free(json_t *j) {
    if (!j)
        return NULL;
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(j);
    return s;
}

int trc_train_state_save(const trc_run *run, const char *path) {
    const int64_t P = (int64_t)run->model.num_params;
    trc_st_out t[3] = {
        {.name = "params", .ndim = 1, .shape = {P}, .data = run->model.params},
        {.name = "adamw.m", .ndim = 1, .shape = {P}, .data = run->opt.m},
        {.name = "adamw.v", .ndim = 1, .shape = {P}, .data = run->opt.v},
    };
    const trc_rng *r = &run->epoch_rng;
    meta m = {0};
    meta_put(&m, "format", fmt("%s", STATE_FORMAT));
    meta_put(&m, "version", fmt("%s", STATE_VERSION));
    meta_put(&m, "settings", dump_and_free(trc_train_settings_json(&run->o)));
    meta_put(&m, "data_path", fmt("%s", run->o.data_path));
    meta_put(&m, "data",
             fmt("%zu %d %d %d %016" PRIx64, run->ds->n, run->ds->s, run->ds->m, run->ds->T,
                 run->data_hash));
    meta_put(&m, "step", fmt("%" PRId64, run->opt.step));
    meta_put(&m, "epoch", fmt("%d", run->epoch_done));
    meta_put(&m, "batch", fmt("%zu", run->batch_done));
    meta_put(&m, "epoch_loss_sum", fmt("%.17g", run->epoch_loss_sum));
    meta_put(&m, "epoch_samples", fmt("%zu", run->epoch_samples));
    meta_put(&m, "epoch_train_seconds", fmt("%.17g", run->epoch_train_seconds));
    if (run->nterms > 0) /* only with named terms: older states read the same */
        meta_put(&m, "epoch_term_sums",
                 fmt("%.17g %.17g %.17g %.17g", run->epoch_term_sum[0], run->epoch_term_sum[1],
                     run->epoch_term_sum[2], run->epoch_term_sum[3]));
    meta_put(&m, "rng",
             fmt("%016" PRIx64 " %016" PRIx64 " %016" PRIx64 " %016" PRIx64, r->s[0], r->s[1],
                 r->s[2], r->s[3]));
    meta_put(&m, "sched",
             fmt("%d %.17g %.17g %d", run->sched.epoch, run->sched.lr, run->sched.best,
                 run->sched.bad_epochs));
    meta_put(&m, "best",
             fmt("%.17g %d %d %d", run->best_loss, run->best_epoch, run->bad_epochs,
                 run->stopped_early));
    meta_put(&m, "history",
             dump_and_free(history_json(run->history, run->epoch_done, run->objective)));
    int rc = m.failed
                 ? trc_fail(TRC_ENOMEM, "%s: cannot format the optimizer state", path)
                 : trc_st_write_file(path, t, 3, m.keys, (const char *const *)m.values, m.count);
    for (size_t i = 0; i < m.count; i++)
        free(m.values[i]);
    return rc;
}

static int need(const trc_safetensors *st, const char *key, const char **out) {
    *out = trc_st_meta(st, key);
    if (!*out)
        return trc_fail(TRC_EFORMAT, "optimizer state: missing metadata '%s'", key);
    return TRC_OK;
}

static int open_state(const char *path, trc_safetensors *st) {
    int rc = trc_st_read_file(path, st);
    if (rc == TRC_EIO)
        return trc_fail(TRC_ENOTFOUND, "%s: no saved run to resume (%s)", path, trc_errmsg());
    if (rc)
        return trc_fail_prefix(rc, "%s: ", path);
    const char *f = trc_st_meta(st, "format"), *v = trc_st_meta(st, "version");
    if (!f || strcmp(f, STATE_FORMAT) != 0) {
        trc_st_free(st);
        return trc_fail(TRC_EFORMAT, "%s: not a TRC optimizer state", path);
    }
    if (!v || strcmp(v, STATE_VERSION) != 0) {
        trc_st_free(st);
        return trc_fail(TRC_EUNSUPPORTED, "%s: optimizer state version %s is not supported", path,
                        v ? v : "(none)");
    }
    return TRC_OK;
}

static int settings_from(const trc_safetensors *st, trc_train_opts *o) {
    const char *text;
    int rc = need(st, "settings", &text);
    if (rc)
        return rc;
    json_error_t err;
    json_t *j = json_loads(text, 0, &err);
    if (!j)
        return trc_fail(TRC_EFORMAT, "optimizer state: settings are not JSON: %s", err.text);
    rc = trc_train_settings_parse(j, o);
    json_decref(j);
    return rc;
}

int trc_train_state_settings(const char *path, trc_train_opts *o) {
    trc_safetensors st;
    int rc = open_state(path, &st);
    if (rc)
        return rc;
    trc_train_opts_default(o);
    rc = settings_from(&st, o);
    const char *dp = trc_st_meta(&st, "data_path");
    if (!rc && dp)
        snprintf(o->data_path, sizeof o->data_path, "%s", dp);
    trc_st_free(&st);
    return rc ? trc_fail_prefix(rc, "%s: ", path) : TRC_OK;
}

int trc_train_saved_settings(const char *out_dir, trc_train_opts *opts) {
    char path[4096];
    int w = snprintf(path, sizeof path, "%s/%s", out_dir, TRC_STATE_FILE);
    if (w < 0 || (size_t)w >= sizeof path)
        return trc_fail(TRC_EINVAL, "output directory path too long");
    int rc = trc_train_state_settings(path, opts);
    if (rc)
        return rc;
    snprintf(opts->out_dir, sizeof opts->out_dir, "%s", out_dir);
    opts->resume = 1;
    return TRC_OK;
}

static int load_tensor(const trc_safetensors *st, const char *name, size_t n, float *dst) {
    const trc_st_tensor *t = trc_st_find(st, name);
    if (!t)
        return trc_fail(TRC_EFORMAT, "optimizer state: missing tensor '%s'", name);
    if (t->dtype != TRC_ST_F32 || t->numel != n)
        return trc_fail(TRC_EFORMAT,
                        "optimizer state: tensor '%s' has %zu values, the model has %zu", name,
                        t->numel, n);
    memcpy(dst, t->data, n * sizeof(float));
    return TRC_OK;
}

static int parse_history(const char *text, trc_run *run, int count) {
    json_error_t err;
    json_t *arr = json_loads(text, 0, &err);
    if (!json_is_array(arr) || json_array_size(arr) != (size_t)count) {
        json_decref(arr);
        return trc_fail(TRC_EFORMAT, "optimizer state: history is not an array of %d epochs",
                        count);
    }
    for (int i = 0; i < count; i++) {
        json_t *e = json_array_get(arr, (size_t)i);
        trc_epoch_stats *h = &run->history[i];
        json_t *f[5] = {json_object_get(e, "train_loss"), json_object_get(e, "val_loss"),
                        json_object_get(e, "lr"), json_object_get(e, "seconds"),
                        json_object_get(e, "samples_per_sec")};
        double *dst[5] = {&h->train_loss, &h->val_loss, &h->lr, &h->seconds, &h->samples_per_sec};
        h->epoch = (int)json_integer_value(json_object_get(e, "epoch"));
        for (int k = 0; k < 5; k++)
            *dst[k] = json_is_number(f[k]) ? json_number_value(f[k]) : NAN;
        h->nterms = run->nterms;
        trc_train_terms_parse(json_object_get(e, "train_terms"), run->objective, h->train_terms,
                              run->nterms);
        trc_train_terms_parse(json_object_get(e, "val_terms"), run->objective, h->val_terms,
                              run->nterms);
        if (h->epoch != i + 1 || !isfinite(h->train_loss)) {
            json_decref(arr);
            return trc_fail(TRC_EFORMAT, "optimizer state: history entry %d is malformed", i + 1);
        }
    }
    json_decref(arr);
    return TRC_OK;
}

static int restore_from(const trc_safetensors *st, trc_run *run) {
    const char *data, *step, *epoch, *batch, *lsum, *lsamp, *lsec, *rng, *sched, *best, *hist;
    int rc;
    if ((rc = need(st, "data", &data)) || (rc = need(st, "step", &step)) ||
        (rc = need(st, "epoch", &epoch)) || (rc = need(st, "batch", &batch)) ||
        (rc = need(st, "epoch_loss_sum", &lsum)) || (rc = need(st, "epoch_samples", &lsamp)) ||
        (rc = need(st, "epoch_train_seconds", &lsec)) || (rc = need(st, "rng", &rng)) ||
        (rc = need(st, "sched", &sched)) || (rc = need(st, "best", &best)) ||
        (rc = need(st, "history", &hist)))
        return rc;

    size_t n;
    int s, m, T;
    uint64_t hash;
    if (sscanf(data, "%zu %d %d %d %" SCNx64, &n, &s, &m, &T, &hash) != 5)
        return trc_fail(TRC_EFORMAT, "optimizer state: malformed 'data'");
    if (n != run->ds->n || s != run->ds->s || m != run->ds->m || T != run->ds->T ||
        hash != run->data_hash)
        return trc_fail(TRC_EINVAL,
                        "resume: the dataset (%zu samples, s=%d m=%d T=%d) is not the one the "
                        "run was trained on (%zu samples, s=%d m=%d T=%d%s)",
                        run->ds->n, run->ds->s, run->ds->m, run->ds->T, n, s, m, T,
                        n == run->ds->n ? ", other values" : "");

    int64_t steps;
    int ep, sched_epoch, sched_bad, best_epoch, bad_epochs, stopped;
    double sched_lr, sched_best, best_loss;
    trc_rng r;
    if (sscanf(step, "%" SCNd64, &steps) != 1 || sscanf(epoch, "%d", &ep) != 1 ||
        sscanf(batch, "%zu", &run->batch_done) != 1 ||
        sscanf(lsum, "%lg", &run->epoch_loss_sum) != 1 ||
        sscanf(lsamp, "%zu", &run->epoch_samples) != 1 ||
        sscanf(lsec, "%lg", &run->epoch_train_seconds) != 1 ||
        sscanf(rng, "%" SCNx64 " %" SCNx64 " %" SCNx64 " %" SCNx64, &r.s[0], &r.s[1], &r.s[2],
               &r.s[3]) != 4 ||
        sscanf(sched, "%d %lg %lg %d", &sched_epoch, &sched_lr, &sched_best, &sched_bad) != 4 ||
        sscanf(best, "%lg %d %d %d", &best_loss, &best_epoch, &bad_epochs, &stopped) != 4)
        return trc_fail(TRC_EFORMAT, "optimizer state: malformed scalar metadata");
    if (ep < 0 || steps < 0 || best_epoch < 0 || best_epoch > ep || sched_epoch != ep)
        return trc_fail(TRC_EFORMAT, "optimizer state: inconsistent epoch counters");
    if (ep > run->o.epochs)
        return trc_fail(TRC_EINVAL,
                        "resume: the run already has %d epochs, more than the budget "
                        "of %d",
                        ep, run->o.epochs);
    const size_t B = (size_t)run->o.batch_size;
    if (run->batch_done * B >= run->n_train + B || run->epoch_samples > run->n_train)
        return trc_fail(TRC_EFORMAT, "optimizer state: batch position out of range");

    const size_t P = run->model.num_params;
    if ((rc = load_tensor(st, "params", P, run->model.params)) ||
        (rc = load_tensor(st, "adamw.m", P, run->opt.m)) ||
        (rc = load_tensor(st, "adamw.v", P, run->opt.v)))
        return rc;
    if ((rc = parse_history(hist, run, ep)) != 0)
        return rc;
    const char *ts = trc_st_meta(st, "epoch_term_sums");
    if (ts && sscanf(ts, "%lg %lg %lg %lg", &run->epoch_term_sum[0], &run->epoch_term_sum[1],
                     &run->epoch_term_sum[2], &run->epoch_term_sum[3]) != 4)
        return trc_fail(TRC_EFORMAT, "optimizer state: malformed 'epoch_term_sums'");
    run->opt.step = steps;
    run->epoch_done = ep;
    run->epoch_rng = r;
    trc_sched_restore(&run->sched, sched_epoch, sched_lr, sched_best, sched_bad);
    run->best_loss = best_loss;
    run->best_epoch = best_epoch;
    run->bad_epochs = bad_epochs;
    run->stopped_early = stopped;
    return TRC_OK;
}

int trc_train_state_load(trc_run *run, const char *path) {
    trc_safetensors st;
    int rc = open_state(path, &st);
    if (rc)
        return rc;
    rc = restore_from(&st, run);
    trc_st_free(&st);
    return rc ? trc_fail_prefix(rc, "%s: ", path) : TRC_OK;
}
